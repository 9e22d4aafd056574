//! The keyring: key-encryption keys, the audit HMAC key and the checkpoint signing key,
//! kept in one age file (`keys/keyring.age`) encrypted to X25519 recipients or a passphrase.
//!
//! Secrets live in `Zeroizing` memory, have no `Debug`, and leave this module only as
//! borrowed byte slices at the point of use.

use std::collections::BTreeMap;
use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use age::secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::random_secret;
use crate::error::{Error, Result};

/// Largest keyring file the vault will read (a keyring is a few KiB).
const MAX_KEYRING_BYTES: u64 = 1 << 20;
const FORMAT: &str = "cvvault-keyring/v1";

/// How the keyring is opened: an age identity file, or a passphrase (age scrypt).
pub enum Unlock {
    /// An age identity file (X25519), e.g. `keys/identity.txt`.
    Identity(PathBuf),
    /// A passphrase, from `CVVAULT_PASSPHRASE`.
    Passphrase(SecretString),
}

impl Unlock {
    /// `CVVAULT_PASSPHRASE` if set, else the identity file from `CVVAULT_IDENTITY` or the default.
    pub fn from_env(default_identity: &Path) -> Unlock {
        if let Ok(pass) = std::env::var("CVVAULT_PASSPHRASE") {
            if !pass.is_empty() {
                return Unlock::Passphrase(SecretString::from(pass));
            }
        }
        match std::env::var_os("CVVAULT_IDENTITY") {
            Some(path) if !path.is_empty() => Unlock::Identity(PathBuf::from(path)),
            _ => Unlock::Identity(default_identity.to_path_buf()),
        }
    }
}

/// How a (re)written keyring is protected.
pub enum Protection {
    /// Encrypted to these age recipients (the operator's identity plus recovery recipients).
    Recipients(Vec<age::x25519::Recipient>),
    /// Encrypted to a passphrase with age's scrypt recipient.
    Passphrase(SecretString),
}

/// A key-encryption key of one version.
pub(crate) struct Kek {
    pub(crate) key: Zeroizing<[u8; 32]>,
}

/// The unlocked keyring. No `Debug`, `Clone` or `Serialize`: it only ever leaves memory
/// sealed by [`Keyring::seal`].
pub struct Keyring {
    keks: BTreeMap<u32, Kek>,
    current: u32,
    audit_key: Zeroizing<[u8; 32]>,
    signing_pkcs8: Zeroizing<Vec<u8>>,
}

/// The JSON inside the age file. Hex strings so that the format is inspectable with `age -d`.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyringDocument {
    format: String,
    current_kek: u32,
    keks: Vec<KekDocument>,
    audit_hmac_key: Zeroizing<String>,
    checkpoint_signing_key: Zeroizing<String>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KekDocument {
    version: u32,
    key: Zeroizing<String>,
}

fn decode_key(hex_text: &str, reason: &'static str, path: &Path) -> Result<Zeroizing<[u8; 32]>> {
    let mut key = Zeroizing::new([0u8; 32]);
    hex::decode_to_slice(hex_text, key.as_mut()).map_err(|_| Error::KeyringCorrupt {
        path: path.to_path_buf(),
        reason,
    })?;
    Ok(key)
}

impl Keyring {
    /// A new keyring: KEK version 1, a fresh audit key and a fresh Ed25519 signing key.
    pub fn generate() -> Result<Keyring> {
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 =
            ring::signature::Ed25519KeyPair::generate_pkcs8(&rng).map_err(|_| Error::Corrupt {
                what: "the operating system's random number generator failed",
            })?;
        let mut keks = BTreeMap::new();
        keks.insert(
            1,
            Kek {
                key: random_secret()?,
            },
        );
        Ok(Keyring {
            keks,
            current: 1,
            audit_key: random_secret()?,
            signing_pkcs8: Zeroizing::new(pkcs8.as_ref().to_vec()),
        })
    }

    /// The version new DEKs are wrapped under.
    pub fn current_version(&self) -> u32 {
        self.current
    }

    /// Every KEK version the keyring still holds, oldest first.
    pub fn versions(&self) -> Vec<u32> {
        self.keks.keys().copied().collect()
    }

    pub(crate) fn kek(&self, version: u32) -> Option<&Kek> {
        self.keks.get(&version)
    }

    /// The key for `hmac-sha256:` pseudonyms in the audit trail.
    pub(crate) fn audit_key(&self) -> &[u8; 32] {
        &self.audit_key
    }

    /// PKCS#8 of the Ed25519 checkpoint signing key.
    pub(crate) fn signing_pkcs8(&self) -> &[u8] {
        &self.signing_pkcs8
    }

    /// Starts a rotation: adds KEK version `current + 1` and makes it current. The old
    /// versions stay until [`Keyring::retire_old`], so an interrupted rotation can resume.
    pub fn begin_rotation(&mut self) -> Result<u32> {
        let next = self.current.checked_add(1).ok_or(Error::Corrupt {
            what: "KEK version counter exhausted",
        })?;
        self.keks.insert(
            next,
            Kek {
                key: random_secret()?,
            },
        );
        self.current = next;
        Ok(next)
    }

    /// Destroys every KEK version but the current one.
    pub fn retire_old(&mut self) -> Vec<u32> {
        let current = self.current;
        let old: Vec<u32> = self
            .keks
            .keys()
            .copied()
            .filter(|v| *v != current)
            .collect();
        self.keks.retain(|v, _| *v == current);
        old
    }

    fn to_document_bytes(&self) -> Result<Zeroizing<Vec<u8>>> {
        let doc = KeyringDocument {
            format: FORMAT.to_owned(),
            current_kek: self.current,
            keks: self
                .keks
                .iter()
                .map(|(version, kek)| KekDocument {
                    version: *version,
                    key: Zeroizing::new(hex::encode(kek.key.as_ref())),
                })
                .collect(),
            audit_hmac_key: Zeroizing::new(hex::encode(self.audit_key.as_ref())),
            checkpoint_signing_key: Zeroizing::new(hex::encode(self.signing_pkcs8.as_slice())),
        };
        // Pre-sized so that serialization never reallocates and leaves copies behind.
        let mut out = Zeroizing::new(Vec::with_capacity(16 * 1024));
        serde_json::to_writer(&mut *out, &doc).map_err(|_| Error::Corrupt {
            what: "the keyring could not be serialized",
        })?;
        Ok(out)
    }

    fn from_document_bytes(bytes: &[u8], path: &Path) -> Result<Keyring> {
        let corrupt = |reason| Error::KeyringCorrupt {
            path: path.to_path_buf(),
            reason,
        };
        let doc: KeyringDocument = serde_json::from_slice(bytes)
            .map_err(|_| corrupt("its contents are not a cvvault keyring"))?;
        if doc.format != FORMAT {
            return Err(corrupt("unknown keyring format version"));
        }
        let mut keks = BTreeMap::new();
        for kek in &doc.keks {
            keks.insert(
                kek.version,
                Kek {
                    key: decode_key(&kek.key, "a KEK is not 32 hex bytes", path)?,
                },
            );
        }
        if !keks.contains_key(&doc.current_kek) {
            return Err(corrupt("the current KEK version is missing"));
        }
        let signing = Zeroizing::new(
            hex::decode(doc.checkpoint_signing_key.as_str())
                .map_err(|_| corrupt("the signing key is not hex"))?,
        );
        ring::signature::Ed25519KeyPair::from_pkcs8(&signing)
            .map_err(|_| corrupt("the signing key is not an Ed25519 PKCS#8 key"))?;
        Ok(Keyring {
            keks,
            current: doc.current_kek,
            audit_key: decode_key(
                &doc.audit_hmac_key,
                "the audit key is not 32 hex bytes",
                path,
            )?,
            signing_pkcs8: signing,
        })
    }

    /// Encrypts the keyring as an age file.
    pub fn seal(&self, protection: &Protection) -> Result<Vec<u8>> {
        let encryptor = match protection {
            Protection::Recipients(recipients) => {
                age::Encryptor::with_recipients(recipients.iter().map(|r| r as &dyn age::Recipient))
                    .map_err(|_| {
                        Error::invalid_input("the keyring needs at least one age recipient")
                    })?
            }
            Protection::Passphrase(pass) => age::Encryptor::with_user_passphrase(pass.clone()),
        };
        let plaintext = self.to_document_bytes()?;
        let mut out = Vec::with_capacity(plaintext.len() + 512);
        let io_err = |e| Error::io("keyring", e);
        let mut writer = encryptor.wrap_output(&mut out).map_err(io_err)?;
        writer.write_all(&plaintext).map_err(io_err)?;
        writer.finish().map_err(io_err)?;
        Ok(out)
    }

    /// Reads and decrypts `keys/keyring.age`.
    pub fn open(path: &Path, unlock: &Unlock) -> Result<Keyring> {
        let file = fs::File::open(path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => Error::KeyringMissing {
                path: path.to_path_buf(),
            },
            _ => Error::io(path, e),
        })?;
        let mut sealed = Vec::new();
        file.take(MAX_KEYRING_BYTES)
            .read_to_end(&mut sealed)
            .map_err(|e| Error::io(path, e))?;
        let corrupt = |reason| Error::KeyringCorrupt {
            path: path.to_path_buf(),
            reason,
        };
        let decryptor = age::Decryptor::new_buffered(&sealed[..])
            .map_err(|_| corrupt("it is not an age file"))?;
        let is_scrypt = decryptor.is_scrypt();
        let reader = match unlock {
            Unlock::Passphrase(pass) => {
                if !is_scrypt {
                    return Err(Error::UnlockMethod(
                        "this keyring is encrypted to an age identity, not a passphrase: unset CVVAULT_PASSPHRASE and set CVVAULT_IDENTITY to the identity file",
                    ));
                }
                let identity = age::scrypt::Identity::new(pass.clone());
                decryptor
                    .decrypt(std::iter::once(&identity as &dyn age::Identity))
                    .map_err(|e| match e {
                        age::DecryptError::ExcessiveWork { .. } => {
                            corrupt("its scrypt work factor is implausibly high")
                        }
                        age::DecryptError::InvalidHeader | age::DecryptError::InvalidMac => {
                            corrupt("its age header is damaged")
                        }
                        _ => Error::WrongPassphrase,
                    })?
            }
            Unlock::Identity(identity_path) => {
                if is_scrypt {
                    return Err(Error::UnlockMethod(
                        "this keyring is protected by a passphrase: set CVVAULT_PASSPHRASE",
                    ));
                }
                let identities = read_identities(identity_path)?;
                decryptor
                    .decrypt(identities.iter().map(|i| i.as_ref() as &dyn age::Identity))
                    .map_err(|e| match e {
                        age::DecryptError::NoMatchingKeys
                        | age::DecryptError::KeyDecryptionFailed => Error::WrongIdentity {
                            path: identity_path.clone(),
                        },
                        _ => corrupt("its age header is damaged"),
                    })?
            }
        };
        let mut plaintext = Zeroizing::new(Vec::with_capacity(16 * 1024));
        let mut limited = reader.take(MAX_KEYRING_BYTES);
        limited
            .read_to_end(&mut plaintext)
            .map_err(|_| corrupt("its payload fails authentication"))?;
        Keyring::from_document_bytes(&plaintext, path)
    }
}

/// Reads an age identity file; a missing or malformed one gets [`Error::IdentityMissing`].
pub fn read_identities(path: &Path) -> Result<Vec<Box<dyn age::Identity>>> {
    let missing = || Error::IdentityMissing {
        path: path.to_path_buf(),
    };
    let text = Zeroizing::new(fs::read_to_string(path).map_err(|_| missing())?);
    let file = age::IdentityFile::from_buffer(text.as_bytes()).map_err(|_| missing())?;
    let identities = file.into_identities().map_err(|_| missing())?;
    if identities.is_empty() {
        return Err(missing());
    }
    Ok(identities)
}

/// The recipients of the X25519 identities in an identity file (to encrypt the keyring to
/// an identity the operator already has). The file's text stays in wiped memory.
pub fn identity_recipients(path: &Path) -> Result<Vec<age::x25519::Recipient>> {
    let missing = || Error::IdentityMissing {
        path: path.to_path_buf(),
    };
    let text = Zeroizing::new(fs::read_to_string(path).map_err(|_| missing())?);
    let recipients: Vec<age::x25519::Recipient> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| age::x25519::Identity::from_str(l).ok())
        .map(|identity| identity.to_public())
        .collect();
    if recipients.is_empty() {
        return Err(missing());
    }
    Ok(recipients)
}

/// Parses an `age1...` recipient string.
pub fn parse_recipient(text: &str) -> Result<age::x25519::Recipient> {
    age::x25519::Recipient::from_str(text.trim()).map_err(|_| {
        Error::invalid_input(format!(
            "`{}` is not an age X25519 recipient: expected a public key starting with age1",
            crate::ids::printable(text.trim())
        ))
    })
}

/// Reads a recipients file: one `age1...` per line, `#` comments and blank lines ignored.
pub fn read_recipients(path: &Path) -> Result<Vec<age::x25519::Recipient>> {
    let text = fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let recipients = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(parse_recipient)
        .collect::<Result<Vec<_>>>()?;
    if recipients.is_empty() {
        return Err(Error::invalid_input(format!(
            "{} lists no age recipient: add the operator's public key (age1...)",
            path.display()
        )));
    }
    Ok(recipients)
}

/// A new X25519 identity, as the text of an identity file, and its recipient.
pub fn generate_identity() -> (Zeroizing<String>, age::x25519::Recipient) {
    let identity = age::x25519::Identity::generate();
    let recipient = identity.to_public();
    let text = Zeroizing::new(format!(
        "# cvvault keyring identity: keep this file secret (mode 0600) and backed up offline\n# public key: {}\n{}\n",
        recipient,
        identity.to_string().expose_secret()
    ));
    (text, recipient)
}

/// Writes `bytes` to `path` atomically (temporary file, fsync, rename) with mode 0600.
pub fn write_private_file(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let tmp = path.with_extension("tmp");
    {
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(|e| Error::io(&tmp, e))?;
        file.write_all(bytes).map_err(|e| Error::io(&tmp, e))?;
        file.sync_all().map_err(|e| Error::io(&tmp, e))?;
    }
    fs::rename(&tmp, path).map_err(|e| Error::io(path, e))?;
    if let Ok(d) = fs::File::open(dir) {
        // Make the rename durable; a failure here is not worth failing the operation.
        let _ = d.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyring_round_trips_through_an_identity() {
        let dir = tempfile::tempdir().unwrap();
        let (id_text, recipient) = generate_identity();
        let id_path = dir.path().join("identity.txt");
        write_private_file(&id_path, id_text.as_bytes()).unwrap();
        let ring = Keyring::generate().unwrap();
        let sealed = ring.seal(&Protection::Recipients(vec![recipient])).unwrap();
        let path = dir.path().join("keyring.age");
        write_private_file(&path, &sealed).unwrap();
        let opened = Keyring::open(&path, &Unlock::Identity(id_path)).unwrap();
        assert_eq!(opened.current_version(), 1);
        assert_eq!(opened.audit_key(), ring.audit_key());
        assert_eq!(opened.signing_pkcs8(), ring.signing_pkcs8());
    }

    #[test]
    fn a_foreign_identity_is_told_apart_from_a_missing_one() {
        let dir = tempfile::tempdir().unwrap();
        let (_, recipient) = generate_identity();
        let (other, _) = generate_identity();
        let other_path = dir.path().join("other.txt");
        write_private_file(&other_path, other.as_bytes()).unwrap();
        let path = dir.path().join("keyring.age");
        let sealed = Keyring::generate()
            .unwrap()
            .seal(&Protection::Recipients(vec![recipient]))
            .unwrap();
        write_private_file(&path, &sealed).unwrap();
        let wrong = Keyring::open(&path, &Unlock::Identity(other_path))
            .err()
            .unwrap();
        assert!(matches!(wrong, Error::WrongIdentity { .. }));
        let missing = Keyring::open(&path, &Unlock::Identity(dir.path().join("nope")))
            .err()
            .unwrap();
        assert!(matches!(missing, Error::IdentityMissing { .. }));
        let no_ring = Keyring::open(
            &dir.path().join("none.age"),
            &Unlock::Identity(dir.path().join("x")),
        );
        assert!(matches!(
            no_ring.err().unwrap(),
            Error::KeyringMissing { .. }
        ));
        fs::write(&path, b"garbage").unwrap();
        let corrupt = Keyring::open(&path, &Unlock::Identity(dir.path().join("x")))
            .err()
            .unwrap();
        assert!(matches!(corrupt, Error::KeyringCorrupt { .. }));
    }

    #[test]
    fn rotation_adds_then_retires_versions() {
        let mut ring = Keyring::generate().unwrap();
        assert_eq!(ring.begin_rotation().unwrap(), 2);
        assert_eq!(ring.versions(), vec![1, 2]);
        assert_eq!(ring.retire_old(), vec![1]);
        assert_eq!(ring.versions(), vec![2]);
    }
}
