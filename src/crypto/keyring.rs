//! The keyring: key-encryption keys, the audit HMAC key, the checkpoint signing key and the
//! integrity key of the vault's own rows, kept in one age file (`keys/keyring.age`)
//! encrypted to X25519 recipients or a passphrase.
//!
//! The keyring vouches for itself: it records the recipients it is encrypted to (a public
//! file may mirror them, but is never read to decide whom to encrypt to), and every KEK
//! carries a fingerprint (`kek_id`) that the database records and that a wrapped DEK's
//! associated data binds, so two KEKs that happen to share a version number cannot be
//! confused.
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
    /// `HMAC-SHA256(key, "cvvault/kek-id/v1")`, first 16 bytes: names this very key.
    pub(crate) id: [u8; 16],
    /// Whether wrapped DEKs bind [`Kek::id`] (`cvvault/dek/v2`). KEKs made before key ids
    /// existed keep the version-number binding (`cvvault/dek/v1`) until rotated away.
    pub(crate) binds_id: bool,
}

impl Kek {
    fn new(key: Zeroizing<[u8; 32]>, binds_id: bool) -> Kek {
        Kek {
            id: kek_fingerprint(&key),
            key,
            binds_id,
        }
    }
}

/// The fingerprint of a KEK: the first 16 bytes of `HMAC-SHA256(KEK, "cvvault/kek-id/v1")`.
/// It reveals nothing about the key and differs between any two keys.
fn kek_fingerprint(key: &[u8; 32]) -> [u8; 16] {
    let tag = ring::hmac::sign(
        &ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key),
        b"cvvault/kek-id/v1",
    );
    let mut id = [0u8; 16];
    id.copy_from_slice(tag.as_ref().get(..16).unwrap_or(&[0u8; 16]));
    id
}

/// The unlocked keyring. No `Debug`, `Clone` or `Serialize`: it only ever leaves memory
/// sealed by [`Keyring::seal`].
pub struct Keyring {
    keks: BTreeMap<u32, Kek>,
    current: u32,
    audit_key: Zeroizing<[u8; 32]>,
    signing_pkcs8: Zeroizing<Vec<u8>>,
    /// The MAC key of the rows authorization depends on (principals, tokens, assignments,
    /// holds, the audit frontier). `None` in a keyring made before it existed: then it is
    /// derived from the signing key (see [`Keyring::integrity_key`]).
    integrity_key: Option<Zeroizing<[u8; 32]>>,
    /// The age recipients this keyring is encrypted to, as it recorded them; `None` for a
    /// passphrase keyring or one made before recipients were recorded.
    recipients: Option<Vec<String>>,
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
    #[serde(default, skip_serializing_if = "Option::is_none")]
    integrity_key: Option<Zeroizing<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    recipients: Option<Vec<String>>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KekDocument {
    version: u32,
    key: Zeroizing<String>,
    /// Present for KEKs whose wrapped DEKs bind the key id; checked against the key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    id: Option<String>,
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
        keks.insert(1, Kek::new(random_secret()?, true));
        Ok(Keyring {
            keks,
            current: 1,
            audit_key: random_secret()?,
            signing_pkcs8: Zeroizing::new(pkcs8.as_ref().to_vec()),
            integrity_key: Some(random_secret()?),
            recipients: None,
        })
    }

    /// The fingerprint of KEK `version`, as hex (what the database records).
    pub fn kek_id(&self, version: u32) -> Option<String> {
        self.keks.get(&version).map(|kek| hex::encode(kek.id))
    }

    /// The recipients the keyring records that it is encrypted to (`age1...`), if it does.
    pub fn recipients(&self) -> Option<&[String]> {
        self.recipients.as_deref()
    }

    /// Records the recipients the keyring is (about to be) encrypted to.
    pub fn set_recipients(&mut self, recipients: &[age::x25519::Recipient]) {
        self.recipients = Some(recipients.iter().map(ToString::to_string).collect());
    }

    /// How to write this keyring again as it is protected now: to the recipients it
    /// records, or to the passphrase that opened it.
    pub fn protection(&self, unlock: &Unlock) -> Result<Protection> {
        match unlock {
            Unlock::Passphrase(pass) => Ok(Protection::Passphrase(pass.clone())),
            Unlock::Identity(_) => {
                let recorded = self.recipients.as_ref().ok_or_else(|| {
                    Error::Conflict(
                        "this keyring does not record whom it is encrypted to (it was made by an older cvvault), so it cannot be rewritten safely: check the recipients in keys/keyring.recipients and record them with `cvvault keys recipients set keys/keyring.recipients`".into(),
                    )
                })?;
                let parsed = recorded
                    .iter()
                    .map(|text| parse_recipient(text))
                    .collect::<Result<Vec<_>>>()?;
                Ok(Protection::Recipients(parsed))
            }
        }
    }

    /// The MAC key of the vault's own rows. A keyring that predates it derives it from the
    /// signing key, which never leaves the keyring: `HMAC-SHA256(PKCS#8 of the signing key,
    /// "cvvault/integrity-key/v1")`.
    pub(crate) fn integrity_key(&self) -> Zeroizing<[u8; 32]> {
        if let Some(key) = &self.integrity_key {
            return key.clone();
        }
        let tag = ring::hmac::sign(
            &ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &self.signing_pkcs8),
            b"cvvault/integrity-key/v1",
        );
        let mut key = Zeroizing::new([0u8; 32]);
        key.copy_from_slice(tag.as_ref());
        key
    }

    /// SHA-256 of the keyring's contents: two keyrings with the same digest hold the same
    /// keys and recipients (used to prove that a file just written opens to what was meant).
    pub fn digest(&self) -> Result<[u8; 32]> {
        let bytes = self.to_document_bytes()?;
        let digest = ring::digest::digest(&ring::digest::SHA256, &bytes);
        let mut out = [0u8; 32];
        out.copy_from_slice(digest.as_ref());
        Ok(out)
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
        self.keks.insert(next, Kek::new(random_secret()?, true));
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
                    id: kek.binds_id.then(|| hex::encode(kek.id)),
                })
                .collect(),
            audit_hmac_key: Zeroizing::new(hex::encode(self.audit_key.as_ref())),
            checkpoint_signing_key: Zeroizing::new(hex::encode(self.signing_pkcs8.as_slice())),
            integrity_key: self
                .integrity_key
                .as_ref()
                .map(|key| Zeroizing::new(hex::encode(key.as_ref()))),
            recipients: self.recipients.clone(),
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
            let key = decode_key(&kek.key, "a KEK is not 32 hex bytes", path)?;
            let kek_value = Kek::new(key, kek.id.is_some());
            if let Some(id) = &kek.id {
                if id != &hex::encode(kek_value.id) {
                    return Err(corrupt("a KEK does not match its recorded id"));
                }
            }
            if keks.insert(kek.version, kek_value).is_some() {
                return Err(corrupt("two KEKs share a version number"));
            }
        }
        if let Some(recipients) = &doc.recipients {
            for text in recipients {
                parse_recipient(text)
                    .map_err(|_| corrupt("a recorded recipient does not parse"))?;
            }
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
            integrity_key: doc
                .integrity_key
                .as_ref()
                .map(|hex_text| decode_key(hex_text, "the integrity key is not 32 hex bytes", path))
                .transpose()?,
            recipients: doc.recipients.clone(),
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
        // INVARIANT: a secret key given by mistake is never echoed, not even in part.
        // An age identity is bech32 with the human-readable part "age-secret-key-" (compared
        // in lower case, as bech32 is case-insensitive), valid or mistyped.
        let hrp = text.trim().split_once('1').map(|(hrp, _)| hrp.to_ascii_lowercase());
        if hrp.as_deref() == Some("age-secret-key-")
            || age::x25519::Identity::from_str(text.trim()).is_ok()
        {
            return Error::invalid_input(
                "that is an age SECRET key, not a recipient: never pass it on a command line (it may be in your shell history now; consider it exposed). Give its public half, which `age-keygen -y FILE` prints (age1...)",
            );
        }
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
        .enumerate()
        .map(|(n, line)| {
            // The line is not echoed: a secret key saved there by mistake must not travel.
            age::x25519::Recipient::from_str(line).map_err(|_| {
                tracing::error!(file = %path.display(), line = n + 1, "a recipients file holds a line that is not an age public key");
                Error::invalid_input(format!(
                    "a recipients file ({}) holds a line that is not an age public key (age1...); the operator must fix it",
                    path.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default()
                ))
            })
        })
        .collect::<Result<Vec<_>>>()?;
    if recipients.is_empty() {
        return Err(Error::invalid_input(format!(
            "a recipients file ({}) lists no age public key (age1...); the operator must add one",
            path.file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_default()
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

pub use crate::files::write_private_file;

/// Writes the public mirror of the keyring's recipients (`keys/keyring.recipients`). The
/// vault never reads it to decide whom to encrypt to; it is there for people and reviews.
pub fn write_recipients_mirror(path: &Path, recipients: &[age::x25519::Recipient]) -> Result<()> {
    let mut text = String::from(
        "# age recipients keys/keyring.age is encrypted to (operator first, then recovery).\n# A mirror of what the keyring records: editing it changes nothing. Change recipients\n# with `cvvault keys recipients set FILE`.\n",
    );
    for r in recipients {
        text.push_str(&format!("{r}\n"));
    }
    crate::files::write_private_file(path, text.as_bytes())?;
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(0o644)).map_err(|e| Error::io(path, e))
}

/// Where `keys rotate --new-identity` keeps the new identity until the keyring encrypted
/// to it is in place: `<identity>.next`.
pub fn pending_identity(identity: &Path) -> PathBuf {
    let mut name = identity.as_os_str().to_owned();
    name.push(".next");
    PathBuf::from(name)
}

/// Opens the keyring; if the identity does not open it but a pending new identity
/// (`<identity>.next`, left by an interrupted `keys rotate --new-identity`) does, finishes
/// the change by moving the new identity into place, and opens with it.
pub fn open_finishing_identity_change(path: &Path, unlock: &Unlock) -> Result<Keyring> {
    match Keyring::open(path, unlock) {
        Err(Error::WrongIdentity { path: identity }) => {
            let pending = pending_identity(&identity);
            if !pending.exists() {
                return Err(Error::WrongIdentity { path: identity });
            }
            let ring = Keyring::open(path, &Unlock::Identity(pending.clone())).map_err(|_| {
                Error::WrongIdentity {
                    path: identity.clone(),
                }
            })?;
            crate::files::commit_temporary(&pending, &identity)?;
            tracing::warn!(identity = %identity.display(), "finished an interrupted identity change: the new identity replaced the old one");
            Ok(ring)
        }
        other => other,
    }
}

/// Seals `ring` with `protection` into a temporary file beside `path`, proves that `unlock`
/// opens that file to exactly `ring`, then renames it into place. Nothing replaces the
/// keyring that the vault could not open again.
pub fn write_keyring(
    path: &Path,
    ring: &Keyring,
    protection: &Protection,
    unlock: &Unlock,
) -> Result<()> {
    let sealed = ring.seal(protection)?;
    let tmp = crate::files::write_temporary(path, &sealed)?;
    let proven = Keyring::open(&tmp, unlock).and_then(|reopened| {
        if reopened.digest()? == ring.digest()? {
            Ok(())
        } else {
            Err(Error::KeyringCorrupt {
                path: tmp.clone(),
                reason: "the keyring just written opens to other keys than were sealed",
            })
        }
    });
    match proven {
        Ok(()) => crate::files::commit_temporary(&tmp, path).inspect_err(|_| {
            let _ = fs::remove_file(&tmp);
        }),
        Err(e) => {
            let _ = fs::remove_file(&tmp);
            Err(match e {
                Error::WrongIdentity { path: identity } => Error::Conflict(format!(
                    "the new keyring would not open with the identity at {}: nothing was changed. Keep that identity among the keyring's recipients (`cvvault keys recipients`)",
                    identity.display()
                )),
                other => other,
            })
        }
    }
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
