//! Cryptography: the age keyring, envelope encryption of profiles, extracts to a recipient.
//!
//! Primitives come from `ring` (AES-256-GCM, HMAC-SHA256, SHA-256, Ed25519) and `age`
//! (X25519 and scrypt recipients). Nothing here is hand-rolled beyond the framing of
//! associated data.

pub mod envelope;
pub mod extract;
pub mod integrity;
pub mod keyring;

use ring::rand::{SecureRandom, SystemRandom};
use zeroize::Zeroizing;

use crate::error::{Error, Result};

/// Fills a fresh secret of `N` bytes from the operating system's CSPRNG.
pub(crate) fn random_secret<const N: usize>() -> Result<Zeroizing<[u8; N]>> {
    let mut bytes = Zeroizing::new([0u8; N]);
    fill_random(bytes.as_mut())?;
    Ok(bytes)
}

/// Fills `bytes` from the operating system's CSPRNG.
pub(crate) fn fill_random(bytes: &mut [u8]) -> Result<()> {
    SystemRandom::new().fill(bytes).map_err(|_| Error::Corrupt {
        what: "the operating system's random number generator failed",
    })
}

/// Length-prefixed framing of associated data, so that no two distinct tuples encode alike.
pub(crate) fn frame(parts: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::with_capacity(parts.iter().map(|p| p.len() + 4).sum());
    for part in parts {
        // INVARIANT: every framed part is a label, an id or a small number: far below 4 GiB.
        let len = u32::try_from(part.len()).unwrap_or(u32::MAX);
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(part);
    }
    out
}
