//! Extracts that travel: the permitted fields, encrypted to the recipient's own age key.

use std::io::Write;

use crate::error::{Error, Result};

/// Encrypts `plaintext` to the given recipients.
pub fn encrypt_to(recipients: &[age::x25519::Recipient], plaintext: &[u8]) -> Result<Vec<u8>> {
    let encryptor =
        age::Encryptor::with_recipients(recipients.iter().map(|r| r as &dyn age::Recipient))
            .map_err(|_| Error::invalid_input("an extract needs at least one age recipient"))?;
    let mut out = Vec::with_capacity(plaintext.len() + 256);
    let io_err = |e| Error::io("extract", e);
    let mut writer = encryptor.wrap_output(&mut out).map_err(io_err)?;
    writer.write_all(plaintext).map_err(io_err)?;
    writer.finish().map_err(io_err)?;
    Ok(out)
}
