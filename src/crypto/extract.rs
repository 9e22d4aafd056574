//! Extracts that travel: the permitted fields, encrypted to the recipient's own age key.

use std::io::Write;
use std::path::Path;

use crate::error::{Error, Result};

/// Encrypts `plaintext` to the age recipients listed in `recipient_file` (binary age format,
/// readable by `age -d -i identity`).
pub fn encrypt_to_recipient_file(recipient_file: &Path, plaintext: &[u8]) -> Result<Vec<u8>> {
    if !recipient_file.exists() {
        return Err(Error::invalid_input(format!(
            "no age recipient registered at {}: the recipient must send its public key (age1...) and an operator must save it there",
            recipient_file.display()
        )));
    }
    let recipients = super::keyring::read_recipients(recipient_file)?;
    encrypt_to(&recipients, plaintext)
}

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
