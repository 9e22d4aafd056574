//! Checkpoints of the audit log as C2SP signed notes with Ed25519 signatures.
//!
//! A checkpoint ([c2sp.org/tlog-checkpoint](https://c2sp.org/tlog-checkpoint)) is the note
//! text `<origin>\n<tree size>\n<base64 root hash>\n`. A signed note
//! ([c2sp.org/signed-note](https://c2sp.org/signed-note)) is that text, a blank line, then
//! signature lines `— <key name> <base64(key id || signature)>\n` (U+2014, a space).
//!
//! The key id of an Ed25519 key is the first four bytes of
//! `SHA-256(key name || 0x0A || 0x01 || public key)`; a verifier key is written
//! `<name>+<8 hex digits of the key id>+<base64(0x01 || public key)>`. Both are the formats of
//! Go's `golang.org/x/mod/sumdb/note`, so checkpoints can be checked by existing tools.
//!
//! cvvault writes no extension lines, and [`Checkpoint::parse_body`] accepts none.

use std::fmt;

use base64::{engine::general_purpose::STANDARD, Engine as _};
use ring::{
    digest,
    rand::SystemRandom,
    signature::{self, Ed25519KeyPair, KeyPair as _},
};
use zeroize::Zeroizing;

use super::merkle::Hash;

/// Signature type byte of Ed25519 in key ids and verifier keys (signed-note, "Signature types").
const ED25519_TYPE: u8 = 0x01;
/// The prefix of a signature line: em dash U+2014 and a space.
const SIGNATURE_PREFIX: &str = "\u{2014} ";
/// The most signature lines a note may carry; more are refused before any is decoded.
pub const MAX_SIGNATURES: usize = 100;
/// Length of an Ed25519 signature.
const ED25519_SIGNATURE_LEN: usize = 64;

/// Why a key, a checkpoint or a signed note was refused. No variant carries key material.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum NoteError {
    /// A key name that the signed-note format cannot carry.
    #[error("invalid key name: it must be non-empty and contain no spaces, '+' or control characters; use a schema-less URL such as example.com/cvvault-audit")]
    InvalidKeyName,
    /// A checkpoint origin that cannot be written on one line.
    #[error("invalid checkpoint origin: it must be a non-empty single line without control characters; use a schema-less URL such as example.com/cvvault-audit")]
    InvalidOrigin,
    /// The private key bytes are not an Ed25519 key pair.
    #[error("the checkpoint signing key is not a valid Ed25519 PKCS#8 v2 document: restore it from a backup or generate a new key and publish its verifier key")]
    InvalidSigningKey,
    /// The random number generator failed while generating a key.
    #[error("could not generate an Ed25519 key: the operating system's random number generator failed; retry, and check that getrandom or /dev/urandom works")]
    KeyGenerationFailed,
    /// A verifier key string that does not parse.
    #[error("malformed verifier key ({reason}): expected <name>+<8 hex digits>+<base64 key> as printed when the log key was created; copy it again")]
    MalformedVerifierKey {
        /// What is wrong.
        reason: &'static str,
    },
    /// A verifier key whose key id does not match its name and public key.
    #[error("the verifier key's id does not match its name and public key: the key string was altered or mis-copied; copy it again from the log operator")]
    VerifierKeyIdMismatch,
    /// A note that is not a well-formed signed note.
    #[error("malformed signed note ({reason}): the checkpoint was damaged or is not a C2SP signed note; fetch a fresh copy")]
    MalformedNote {
        /// What is wrong.
        reason: &'static str,
    },
    /// A signature line whose signature is not standard base64.
    #[error(
        "a signature line is not valid base64: the checkpoint was damaged; fetch a fresh copy"
    )]
    InvalidSignatureEncoding,
    /// More signature lines than [`MAX_SIGNATURES`].
    #[error("the note has more than {limit} signature lines: refusing to process it")]
    TooManySignatures {
        /// The limit.
        limit: usize,
    },
    /// No signature line by the verifier's key.
    #[error("the note carries no signature by key {key_name}: check that the verifier key is the one of this log")]
    MissingSignature {
        /// The verifier's key name (public).
        key_name: String,
    },
    /// A signature line by the verifier's key that does not verify.
    #[error("the signature by key {key_name} does not verify: the checkpoint was changed after signing or signed with another key; do not trust it")]
    BadSignature {
        /// The verifier's key name (public).
        key_name: String,
    },
    /// Signed text that is not a checkpoint.
    #[error("malformed checkpoint ({reason}): expected exactly three lines, origin, tree size in decimal and base64 root hash, each ending in a newline")]
    MalformedCheckpoint {
        /// What is wrong.
        reason: &'static str,
    },
}

/// A signed statement of the log's size and root hash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    /// The log's identity, e.g. `example.com/cvvault-audit`; one line, non-empty.
    pub origin: String,
    /// The number of entries in the tree.
    pub size: u64,
    /// The RFC 6962 root hash of the tree of `size` entries.
    pub root: Hash,
}

impl Checkpoint {
    /// The note text: `<origin>\n<size>\n<base64 root>\n`.
    ///
    /// Only meaningful for an origin that [`Checkpoint::parse_body`] would accept;
    /// [`NoteSigner::sign`] checks this before signing.
    #[must_use]
    pub fn body(&self) -> String {
        format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            STANDARD.encode(self.root)
        )
    }

    /// Parses a checkpoint body, strictly: exactly three lines, each ending in a newline, a
    /// canonical decimal size, and a standard base64 32-byte root. Extension lines are refused.
    ///
    /// # Errors
    /// [`NoteError::MalformedCheckpoint`] or [`NoteError::InvalidOrigin`].
    pub fn parse_body(text: &str) -> Result<Self, NoteError> {
        let malformed = |reason| NoteError::MalformedCheckpoint { reason };
        let lines = text
            .strip_suffix('\n')
            .ok_or(malformed("the text does not end with a newline"))?;
        let mut lines = lines.split('\n');
        let (Some(origin), Some(size), Some(root)) = (lines.next(), lines.next(), lines.next())
        else {
            return Err(malformed("fewer than three lines"));
        };
        if lines.next().is_some() {
            return Err(malformed(
                "extension lines after the root hash are not supported",
            ));
        }
        check_origin(origin)?;
        let size = parse_canonical_decimal(size).ok_or(malformed(
            "the tree size is not a canonical decimal number (digits only, no leading zeros, at most 2^64-1)",
        ))?;
        let root = STANDARD
            .decode(root)
            .ok()
            .and_then(|bytes| Hash::try_from(bytes).ok())
            .ok_or(malformed(
                "the root hash is not the standard base64 of 32 bytes",
            ))?;
        Ok(Self {
            origin: origin.to_owned(),
            size,
            root,
        })
    }
}

/// Accepts a non-empty origin without control characters (so it stays one line).
fn check_origin(origin: &str) -> Result<(), NoteError> {
    if origin.is_empty() || origin.chars().any(char::is_control) {
        return Err(NoteError::InvalidOrigin);
    }
    Ok(())
}

/// Parses a tree size as the checkpoint format requires: ASCII digits, no sign, no leading
/// zeros (except `0` itself), no overflow.
fn parse_canonical_decimal(text: &str) -> Option<u64> {
    let bytes = text.as_bytes();
    match bytes {
        [] => None,
        [b'0'] => Some(0),
        [b'0', ..] => None,
        _ => bytes.iter().try_fold(0u64, |value, &byte| {
            if byte.is_ascii_digit() {
                value.checked_mul(10)?.checked_add(u64::from(byte - b'0'))
            } else {
                None
            }
        }),
    }
}

/// Accepts a key name the signed-note format can carry: non-empty, no Unicode white space,
/// no `+`, and (so that it stays on its line) no control characters.
fn check_key_name(name: &str) -> Result<(), NoteError> {
    if name.is_empty()
        || name
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '+')
    {
        return Err(NoteError::InvalidKeyName);
    }
    Ok(())
}

/// The signed-note key id of an Ed25519 key:
/// `SHA-256(name || 0x0A || 0x01 || public key)[..4]`.
fn key_id(name: &str, public_key: &[u8]) -> [u8; 4] {
    let mut context = digest::Context::new(&digest::SHA256);
    context.update(name.as_bytes());
    context.update(&[b'\n', ED25519_TYPE]);
    context.update(public_key);
    let digest = context.finish();
    let mut id = [0u8; 4];
    for (slot, byte) in id.iter_mut().zip(digest.as_ref()) {
        *slot = *byte;
    }
    id
}

/// Generates a new Ed25519 key pair as a PKCS#8 v2 document, for [`NoteSigner::from_pkcs8`].
///
/// The returned bytes are the private key: store them only encrypted (the keyring).
///
/// # Errors
/// [`NoteError::KeyGenerationFailed`] if the system random number generator fails.
pub fn generate_pkcs8() -> Result<Zeroizing<Vec<u8>>, NoteError> {
    let document = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
        .map_err(|_| NoteError::KeyGenerationFailed)?;
    Ok(Zeroizing::new(document.as_ref().to_vec()))
}

/// Signs checkpoints with an Ed25519 key under a key name.
///
/// Deliberately not `Debug`-derived: the manual `Debug` shows the name and key id only.
pub struct NoteSigner {
    /// The key name written in signature lines.
    name: String,
    /// The key id derived from the name and public key.
    key_id: [u8; 4],
    /// The private key.
    key_pair: Ed25519KeyPair,
}

impl fmt::Debug for NoteSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NoteSigner")
            .field("name", &self.name)
            .field("key_id", &hex::encode(self.key_id))
            .finish_non_exhaustive()
    }
}

impl NoteSigner {
    /// A signer from a key name and an Ed25519 PKCS#8 v2 document (see [`generate_pkcs8`]).
    ///
    /// # Errors
    /// [`NoteError::InvalidKeyName`] or [`NoteError::InvalidSigningKey`].
    pub fn from_pkcs8(name: &str, pkcs8: &[u8]) -> Result<Self, NoteError> {
        check_key_name(name)?;
        let key_pair =
            Ed25519KeyPair::from_pkcs8(pkcs8).map_err(|_| NoteError::InvalidSigningKey)?;
        Self::from_key_pair(name, key_pair)
    }

    /// A signer from a key name and a ring key pair.
    fn from_key_pair(name: &str, key_pair: Ed25519KeyPair) -> Result<Self, NoteError> {
        check_key_name(name)?;
        Ok(Self {
            name: name.to_owned(),
            key_id: key_id(name, key_pair.public_key().as_ref()),
            key_pair,
        })
    }

    /// The key name written in signature lines.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The verifier key to publish: `<name>+<8 hex key id>+<base64(0x01 || public key)>`.
    #[must_use]
    pub fn verifier_key(&self) -> String {
        let mut typed_key = vec![ED25519_TYPE];
        typed_key.extend_from_slice(self.key_pair.public_key().as_ref());
        format!(
            "{}+{}+{}",
            self.name,
            hex::encode(self.key_id),
            STANDARD.encode(typed_key)
        )
    }

    /// Signs a checkpoint and returns the whole signed note.
    ///
    /// # Errors
    /// [`NoteError::InvalidOrigin`] if the origin is empty or not a single line; signing it
    /// would produce a note that parses as another checkpoint.
    pub fn sign(&self, checkpoint: &Checkpoint) -> Result<String, NoteError> {
        check_origin(&checkpoint.origin)?;
        let body = checkpoint.body();
        Ok(self.sign_text(&body))
    }

    /// Signs note text that ends in a newline; returns text, blank line, signature line.
    fn sign_text(&self, text: &str) -> String {
        let signature = self.key_pair.sign(text.as_bytes());
        let mut blob = Vec::with_capacity(4 + ED25519_SIGNATURE_LEN);
        blob.extend_from_slice(&self.key_id);
        blob.extend_from_slice(signature.as_ref());
        format!(
            "{text}\n{SIGNATURE_PREFIX}{} {}\n",
            self.name,
            STANDARD.encode(blob)
        )
    }
}

/// Checks checkpoints signed by one known Ed25519 key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NoteVerifier {
    /// The key name expected in signature lines.
    name: String,
    /// The key id expected in signatures.
    key_id: [u8; 4],
    /// The Ed25519 public key.
    public_key: [u8; 32],
}

impl NoteVerifier {
    /// Parses a verifier key `<name>+<8 hex key id>+<base64(0x01 || public key)>` and checks
    /// that the key id belongs to the name and key.
    ///
    /// # Errors
    /// [`NoteError::InvalidKeyName`], [`NoteError::MalformedVerifierKey`] or
    /// [`NoteError::VerifierKeyIdMismatch`].
    pub fn parse(vkey: &str) -> Result<Self, NoteError> {
        let malformed = |reason| NoteError::MalformedVerifierKey { reason };
        // The name holds no '+', the key id is hex; the base64 key may contain '+'.
        let mut parts = vkey.splitn(3, '+');
        let (Some(name), Some(id_hex), Some(key_base64)) =
            (parts.next(), parts.next(), parts.next())
        else {
            return Err(malformed("it does not have three '+'-separated parts"));
        };
        check_key_name(name)?;
        if id_hex.len() != 8 {
            return Err(malformed("the key id is not 8 hex digits"));
        }
        let claimed_id: [u8; 4] = hex::decode(id_hex)
            .ok()
            .and_then(|bytes| bytes.try_into().ok())
            .ok_or(malformed("the key id is not 8 hex digits"))?;
        let typed_key = STANDARD
            .decode(key_base64)
            .map_err(|_| malformed("the key is not standard base64"))?;
        let (&key_type, public_key) = typed_key
            .split_first()
            .ok_or(malformed("the key is empty"))?;
        if key_type != ED25519_TYPE {
            return Err(malformed("the key is not an Ed25519 key (type 0x01)"));
        }
        let public_key: [u8; 32] = public_key
            .try_into()
            .map_err(|_| malformed("an Ed25519 public key is 32 bytes"))?;
        if key_id(name, &public_key) != claimed_id {
            return Err(NoteError::VerifierKeyIdMismatch);
        }
        Ok(Self {
            name: name.to_owned(),
            key_id: claimed_id,
            public_key,
        })
    }

    /// The key name this verifier expects.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Verifies a signed checkpoint and returns it.
    ///
    /// Signature lines of other keys are ignored, as the signed-note spec requires; every
    /// line with this verifier's key name and key id must verify, and at least one must be
    /// present. The caller still compares the returned origin with the log it expects.
    ///
    /// # Errors
    /// [`NoteError::MalformedNote`], [`NoteError::InvalidSignatureEncoding`],
    /// [`NoteError::TooManySignatures`], [`NoteError::MissingSignature`],
    /// [`NoteError::BadSignature`] or [`NoteError::MalformedCheckpoint`].
    pub fn verify(&self, note: &str) -> Result<Checkpoint, NoteError> {
        let text = self.open(note)?;
        // Only now, signed by the trusted key, is the text looked at.
        Checkpoint::parse_body(text)
    }

    /// Checks the signatures of a signed note and returns its text (with its final newline).
    fn open<'a>(&self, note: &'a str) -> Result<&'a str, NoteError> {
        let malformed = |reason| NoteError::MalformedNote { reason };
        if note.chars().any(|c| c < ' ' && c != '\n') {
            return Err(malformed(
                "it contains control characters (a carriage return from a text editor?)",
            ));
        }
        // The text ends at the last blank line; the text keeps its final newline.
        let split = note.rfind("\n\n").ok_or(malformed(
            "no blank line between the text and the signatures",
        ))?;
        // INVARIANT: `split` and `split + 2` are ASCII newline boundaries inside `note`.
        let text = note.get(..=split).unwrap_or_default();
        let signatures = note
            .get(split.saturating_add(2)..)
            .unwrap_or_default()
            .strip_suffix('\n')
            .ok_or(malformed(
                "no signature lines, or the last one lacks its newline",
            ))?;

        let lines: Vec<&str> = signatures.split('\n').take(MAX_SIGNATURES + 1).collect();
        if lines.len() > MAX_SIGNATURES {
            return Err(NoteError::TooManySignatures {
                limit: MAX_SIGNATURES,
            });
        }
        let public_key = signature::UnparsedPublicKey::new(&signature::ED25519, self.public_key);
        let mut verified = false;
        for line in lines {
            let (name, blob) = parse_signature_line(line)?;
            let Some((id, signature)) = blob.split_first_chunk::<4>() else {
                return Err(malformed("a signature is shorter than its key id"));
            };
            if name != self.name || *id != self.key_id {
                // A key this verifier does not know: ignored (signed-note, "Signatures").
                continue;
            }
            public_key
                .verify(text.as_bytes(), signature)
                .map_err(|_| NoteError::BadSignature {
                    key_name: self.name.clone(),
                })?;
            verified = true;
        }
        if !verified {
            return Err(NoteError::MissingSignature {
                key_name: self.name.clone(),
            });
        }
        Ok(text)
    }
}

/// Splits a signature line `— <name> <base64>` into the key name and the decoded bytes
/// (at least 5: a 4-byte key id and a signature).
fn parse_signature_line(line: &str) -> Result<(&str, Vec<u8>), NoteError> {
    let malformed = |reason| NoteError::MalformedNote { reason };
    let rest = line.strip_prefix(SIGNATURE_PREFIX).ok_or(malformed(
        "a signature line does not start with an em dash and a space",
    ))?;
    let (name, encoded) = rest.split_once(' ').ok_or(malformed(
        "a signature line has no space between key name and signature",
    ))?;
    check_key_name(name).map_err(|_| malformed("a signature line has an invalid key name"))?;
    let blob = STANDARD
        .decode(encoded)
        .map_err(|_| NoteError::InvalidSignatureEncoding)?;
    if blob.len() < 5 {
        return Err(malformed(
            "a signature is shorter than a key id and one byte",
        ));
    }
    Ok((name, blob))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const ORIGIN: &str = "example.com/cvvault-audit";

    fn signer_from_seed(name: &str, seed: &[u8]) -> NoteSigner {
        let key_pair = Ed25519KeyPair::from_seed_unchecked(seed).unwrap();
        NoteSigner::from_key_pair(name, key_pair).unwrap()
    }

    fn test_signer() -> NoteSigner {
        signer_from_seed(ORIGIN, &[42u8; 32])
    }

    fn checkpoint() -> Checkpoint {
        Checkpoint {
            origin: ORIGIN.to_owned(),
            size: 20_852_163,
            root: [0xab; 32],
        }
    }

    // ----- Known answers -----
    //
    // From golang/mod sumdb/note/note_test.go (TestSign, TestOpen, TestVerifierList), the
    // reference implementation of signed notes.

    const PETER_VKEY: &str = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
    const PETER_SKEY_B64: &str = "AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
    const ENOCH_VKEY: &str = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop";
    const GO_TEXT: &str = "If you think cryptography is the answer to your problem,\n\
                           then you don't know what your problem is.\n";
    const PETER_SIG: &str = "\u{2014} PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";
    const ENOCH_SIG: &str = "\u{2014} EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n";

    fn peter_signer() -> NoteSigner {
        // The Go signer key is "PRIVATE+KEY+PeterNeumann+c74f20a3+" + base64(0x01 || seed).
        let typed_seed = STANDARD.decode(PETER_SKEY_B64).unwrap();
        assert_eq!(typed_seed[0], ED25519_TYPE);
        signer_from_seed("PeterNeumann", &typed_seed[1..])
    }

    #[test]
    fn go_reference_key_gives_the_reference_verifier_key_and_signature() {
        let signer = peter_signer();
        assert_eq!(signer.verifier_key(), PETER_VKEY);
        // Ed25519 is deterministic: the signed note is byte-for-byte Go's.
        assert_eq!(signer.sign_text(GO_TEXT), format!("{GO_TEXT}\n{PETER_SIG}"));
    }

    #[test]
    fn go_reference_note_opens_and_unknown_signatures_are_ignored() {
        let peter = NoteVerifier::parse(PETER_VKEY).unwrap();
        let enoch = NoteVerifier::parse(ENOCH_VKEY).unwrap();
        let note = format!("{GO_TEXT}\n{PETER_SIG}{ENOCH_SIG}");
        assert_eq!(peter.open(&note).unwrap(), GO_TEXT);
        assert_eq!(enoch.open(&note).unwrap(), GO_TEXT);
        // Signed, but not a checkpoint.
        assert!(matches!(
            peter.verify(&note),
            Err(NoteError::MalformedCheckpoint { .. })
        ));
        // 101 signature lines are refused, 100 are not.
        let many = format!("{GO_TEXT}\n{}", PETER_SIG.repeat(101));
        assert_eq!(
            peter.open(&many),
            Err(NoteError::TooManySignatures { limit: 100 })
        );
        let hundred = format!("{GO_TEXT}\n{}", PETER_SIG.repeat(100));
        assert_eq!(peter.open(&hundred).unwrap(), GO_TEXT);
        // Go's "invalid signature" case: four characters inserted into the signature.
        let (head, tail) = PETER_SIG.split_at(60);
        let bad = format!("{GO_TEXT}\n{head}ABCD{tail}");
        assert_eq!(
            peter.open(&bad),
            Err(NoteError::BadSignature {
                key_name: "PeterNeumann".to_owned()
            })
        );
    }

    #[test]
    fn go_reference_malformed_notes_are_refused() {
        let peter = NoteVerifier::parse(PETER_VKEY).unwrap();
        let bad = [
            GO_TEXT.to_owned(),
            format!("{GO_TEXT}\n"),
            format!("{GO_TEXT}\n{}", &PETER_SIG[..PETER_SIG.len() - 1]),
            format!("\u{1}{GO_TEXT}\n{PETER_SIG}"),
            format!("{GO_TEXT}\n\u{2014} Bad Name x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM="),
            format!("{GO_TEXT}\n{PETER_SIG}Unexpected line.\n"),
        ];
        for note in &bad {
            assert!(
                matches!(peter.open(note), Err(NoteError::MalformedNote { .. })),
                "{note:?}"
            );
        }
    }

    #[test]
    fn go_reference_verifier_key_manglings_are_refused() {
        NoteVerifier::parse(PETER_VKEY).unwrap();
        let bytes = PETER_VKEY.as_bytes();
        for i in 0..bytes.len() {
            for j in i + 1..=bytes.len() {
                if i == 0 && j == bytes.len() {
                    continue;
                }
                let part = std::str::from_utf8(&bytes[i..j]).unwrap();
                assert!(NoteVerifier::parse(part).is_err(), "{part:?}");
            }
        }
        for i in 0..bytes.len() {
            let mut mangled = bytes.to_vec();
            mangled[i] = mangled[i].wrapping_add(1);
            if let Ok(text) = std::str::from_utf8(&mangled) {
                assert!(NoteVerifier::parse(text).is_err(), "{text:?}");
            }
        }
        // Wrong key length and unknown algorithm, each with a matching key id (from Go).
        assert!(NoteVerifier::parse(
            "PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY=="
        )
        .is_err());
        assert!(NoteVerifier::parse(
            "PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
        )
        .is_err());
    }

    #[test]
    fn key_id_is_the_truncated_sha256_of_name_newline_type_and_key() {
        let seed: [u8; 32] = core::array::from_fn(|i| i as u8);
        let key_pair = Ed25519KeyPair::from_seed_unchecked(&seed).unwrap();
        let public_key = key_pair.public_key().as_ref().to_vec();
        let name = "example.com/kat";
        // Independently: hash the concatenation in one piece.
        let mut message = name.as_bytes().to_vec();
        message.push(0x0A);
        message.push(0x01);
        message.extend_from_slice(&public_key);
        let expected = digest::digest(&digest::SHA256, &message);
        let signer = NoteSigner::from_key_pair(name, key_pair).unwrap();
        assert_eq!(signer.key_id[..], expected.as_ref()[..4]);
        // And the verifier key spells it out.
        let vkey = signer.verifier_key();
        let parts: Vec<&str> = vkey.splitn(3, '+').collect();
        assert_eq!(parts[0], name);
        assert_eq!(parts[1], hex::encode(&expected.as_ref()[..4]));
        let mut typed = vec![0x01];
        typed.extend_from_slice(&public_key);
        assert_eq!(parts[2], STANDARD.encode(typed));
        // The Go reference key id, c74f20a3, the same way.
        let verifier = NoteVerifier::parse(PETER_VKEY).unwrap();
        let mut message = b"PeterNeumann\n\x01".to_vec();
        message.extend_from_slice(&verifier.public_key);
        assert_eq!(
            digest::digest(&digest::SHA256, &message).as_ref()[..4],
            [0xc7, 0x4f, 0x20, 0xa3]
        );
    }

    // ----- Checkpoints -----

    #[test]
    fn checkpoint_body_has_the_tlog_checkpoint_layout() {
        let cp = Checkpoint {
            origin: "example.com/behind-the-sofa".to_owned(),
            size: 20_852_163,
            root: STANDARD
                .decode("CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=")
                .unwrap()
                .try_into()
                .unwrap(),
        };
        let body =
            "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n";
        assert_eq!(cp.body(), body);
        assert_eq!(Checkpoint::parse_body(body).unwrap(), cp);
    }

    #[test]
    fn checkpoint_parsing_is_strict() {
        let root = STANDARD.encode([1u8; 32]);
        let malformed = |text: &str| {
            matches!(
                Checkpoint::parse_body(text),
                Err(NoteError::MalformedCheckpoint { .. } | NoteError::InvalidOrigin)
            )
        };
        assert!(Checkpoint::parse_body(&format!("o\n0\n{root}\n")).is_ok());
        assert!(Checkpoint::parse_body(&format!("o\n18446744073709551615\n{root}\n")).is_ok());
        assert!(malformed(&format!("o\n1\n{root}"))); // no trailing newline
        assert!(malformed(&format!("o\n1\n{root}\next\n"))); // extension line
        assert!(malformed(&format!("o\n1\n{root}\n\n")));
        assert!(malformed("o\n1\n"));
        assert!(malformed(&format!("\n1\n{root}\n"))); // empty origin
        assert!(malformed(&format!("o\r\n1\n{root}\n")));
        for size in [
            "",
            "01",
            "00",
            "+1",
            "-1",
            " 1",
            "1 ",
            "1_000",
            "0x10",
            "18446744073709551616",
            "１",
        ] {
            assert!(malformed(&format!("o\n{size}\n{root}\n")), "{size:?}");
        }
        let short = STANDARD.encode([1u8; 31]);
        let long = STANDARD.encode([1u8; 33]);
        let unpadded = root.trim_end_matches('=');
        let url_safe = STANDARD
            .encode([0xfb; 32])
            .replace('+', "-")
            .replace('/', "_");
        for bad_root in [
            short.as_str(),
            long.as_str(),
            unpadded,
            url_safe.as_str(),
            "",
            "!!!!",
        ] {
            assert!(malformed(&format!("o\n1\n{bad_root}\n")), "{bad_root:?}");
        }
        // Non-canonical trailing bits in the last base64 character.
        let mut non_canonical = root.clone().into_bytes();
        let last = non_canonical.len() - 2; // before the single '='
        non_canonical[last] = b'B';
        let non_canonical = String::from_utf8(non_canonical).unwrap();
        assert_ne!(non_canonical, root);
        assert!(malformed(&format!("o\n1\n{non_canonical}\n")));
    }

    // ----- Signing and verifying -----

    #[test]
    fn sign_then_verify_round_trips() {
        let signer = test_signer();
        let verifier = NoteVerifier::parse(&signer.verifier_key()).unwrap();
        assert_eq!(verifier.name(), ORIGIN);
        let note = signer.sign(&checkpoint()).unwrap();
        assert!(note.starts_with(&checkpoint().body()));
        assert!(note.contains("\n\n\u{2014} example.com/cvvault-audit "));
        assert_eq!(verifier.verify(&note).unwrap(), checkpoint());
    }

    #[test]
    fn generated_pkcs8_key_signs_and_verifies() {
        let pkcs8 = generate_pkcs8().unwrap();
        let signer = NoteSigner::from_pkcs8(ORIGIN, &pkcs8).unwrap();
        let verifier = NoteVerifier::parse(&signer.verifier_key()).unwrap();
        let cp = Checkpoint {
            size: 0,
            root: crate::audit::merkle::empty_root(),
            ..checkpoint()
        };
        assert_eq!(verifier.verify(&signer.sign(&cp).unwrap()).unwrap(), cp);
        assert_eq!(
            NoteSigner::from_pkcs8(ORIGIN, &pkcs8[..pkcs8.len() - 1]).unwrap_err(),
            NoteError::InvalidSigningKey
        );
        assert_eq!(
            NoteSigner::from_pkcs8(ORIGIN, b"not a key").unwrap_err(),
            NoteError::InvalidSigningKey
        );
    }

    #[test]
    fn debug_output_shows_no_key_material() {
        let pkcs8 = generate_pkcs8().unwrap();
        let signer = NoteSigner::from_pkcs8(ORIGIN, &pkcs8).unwrap();
        let shown = format!("{signer:?}");
        assert!(shown.contains(ORIGIN));
        assert!(!shown.contains(&hex::encode(&pkcs8[..])));
        let public = signer.key_pair.public_key().as_ref().to_vec();
        assert!(!shown.contains(&hex::encode(&public)));
        assert!(!shown.contains(&format!("{public:?}")));
        assert_eq!(
            shown,
            format!(
                "NoteSigner {{ name: \"{ORIGIN}\", key_id: \"{}\", .. }}",
                hex::encode(signer.key_id)
            )
        );
    }

    #[test]
    fn invalid_key_names_and_origins_are_refused() {
        for name in [
            "",
            "a b",
            "a+b",
            "a\tb",
            "a\u{a0}b",
            "a\u{2003}b",
            "a\nb",
            "a\u{7f}b",
        ] {
            assert_eq!(
                NoteSigner::from_key_pair(
                    name,
                    Ed25519KeyPair::from_seed_unchecked(&[1; 32]).unwrap()
                )
                .unwrap_err(),
                NoteError::InvalidKeyName,
                "{name:?}"
            );
        }
        let signer = test_signer();
        for origin in ["", "a\nb", "a\rb", "x\n5\nAAAA"] {
            let cp = Checkpoint {
                origin: origin.to_owned(),
                ..checkpoint()
            };
            assert_eq!(
                signer.sign(&cp),
                Err(NoteError::InvalidOrigin),
                "{origin:?}"
            );
        }
    }

    #[test]
    fn verify_rejects_a_modified_body() {
        let signer = test_signer();
        let verifier = NoteVerifier::parse(&signer.verifier_key()).unwrap();
        let note = signer.sign(&checkpoint()).unwrap();
        let changed = note.replacen("20852163", "20852164", 1);
        assert_eq!(
            verifier.verify(&changed),
            Err(NoteError::BadSignature {
                key_name: ORIGIN.to_owned()
            })
        );
    }

    #[test]
    fn verify_rejects_a_signature_by_another_key() {
        let verifier = NoteVerifier::parse(&test_signer().verifier_key()).unwrap();
        // Same name, other key: a different key id, so an unknown key, so no signature.
        let impostor = signer_from_seed(ORIGIN, &[7u8; 32]);
        let note = impostor.sign(&checkpoint()).unwrap();
        assert_eq!(
            verifier.verify(&note),
            Err(NoteError::MissingSignature {
                key_name: ORIGIN.to_owned()
            })
        );
        // Other key claiming our key id: the signature is checked and fails.
        let mut forged = note.clone();
        let line_start = forged.rfind('\u{2014}').unwrap();
        let blob_start = forged[line_start..].rfind(' ').unwrap() + line_start + 1;
        let mut blob = STANDARD.decode(forged[blob_start..].trim_end()).unwrap();
        blob[..4].copy_from_slice(&verifier.key_id);
        forged.replace_range(blob_start.., &format!("{}\n", STANDARD.encode(blob)));
        assert_eq!(
            verifier.verify(&forged),
            Err(NoteError::BadSignature {
                key_name: ORIGIN.to_owned()
            })
        );
        // A bad line from our key spoils the note even next to a good one.
        let good = test_signer().sign(&checkpoint()).unwrap();
        let forged_line = &forged[line_start..];
        let both = format!("{good}{forged_line}");
        assert!(matches!(
            verifier.verify(&both),
            Err(NoteError::BadSignature { .. })
        ));
    }

    #[test]
    fn verify_ignores_unknown_keys_and_requires_its_own() {
        let signer = test_signer();
        let verifier = NoteVerifier::parse(&signer.verifier_key()).unwrap();
        let note = signer.sign(&checkpoint()).unwrap();
        let witness = signer_from_seed("witness.example/w1", &[9u8; 32]);
        let witness_note = witness.sign(&checkpoint()).unwrap();
        let witness_line = &witness_note[witness_note.rfind('\u{2014}').unwrap()..];
        // Unknown line before and after ours: still verifies.
        assert_eq!(
            verifier.verify(&format!("{note}{witness_line}")).unwrap(),
            checkpoint()
        );
        let (body, ours) = note.split_at(note.rfind('\u{2014}').unwrap());
        assert_eq!(
            verifier
                .verify(&format!("{body}{witness_line}{ours}"))
                .unwrap(),
            checkpoint()
        );
        // Only the unknown line: missing.
        assert_eq!(
            verifier.verify(&witness_note),
            Err(NoteError::MissingSignature {
                key_name: ORIGIN.to_owned()
            })
        );
        // Our line under another name: unknown, so missing.
        let renamed = note.replacen(&format!("\u{2014} {ORIGIN} "), "\u{2014} other.example ", 1);
        assert!(matches!(
            verifier.verify(&renamed),
            Err(NoteError::MissingSignature { .. })
        ));
    }

    #[test]
    fn verify_rejects_malformed_base64() {
        let signer = test_signer();
        let verifier = NoteVerifier::parse(&signer.verifier_key()).unwrap();
        let note = signer.sign(&checkpoint()).unwrap();
        let (body, line) = note.split_at(note.rfind('\u{2014}').unwrap());
        assert!(line.ends_with("=\n"));
        for (from, to) in [("=\n", "\n"), ("=\n", "==\n"), ("=\n", "=!\n")] {
            let bad = format!("{body}{}", line.replacen(from, to, 1));
            assert_eq!(
                verifier.verify(&bad),
                Err(NoteError::InvalidSignatureEncoding),
                "{to:?}"
            );
        }
        // Also in an unknown key's line: the note as a whole is damaged.
        let bad = format!("{note}\u{2014} other.example not*base64\n");
        assert_eq!(
            verifier.verify(&bad),
            Err(NoteError::InvalidSignatureEncoding)
        );
        let short = format!("{note}\u{2014} other.example AAAA\n");
        assert!(matches!(
            verifier.verify(&short),
            Err(NoteError::MalformedNote { .. })
        ));
    }

    #[test]
    fn verify_rejects_a_body_without_its_trailing_newline() {
        let signer = test_signer();
        let verifier = NoteVerifier::parse(&signer.verifier_key()).unwrap();
        let note = signer.sign(&checkpoint()).unwrap();
        // Dropping the blank line's newline leaves no separator.
        let joined = note.replacen("\n\n", "\n", 1);
        assert!(matches!(
            verifier.verify(&joined),
            Err(NoteError::MalformedNote { .. })
        ));
        // A text signed without its trailing newline (not a valid note text) does not open
        // as a checkpoint either.
        let body = checkpoint().body();
        let without = signer.sign_text(body.trim_end_matches('\n'));
        assert!(verifier.verify(&without).is_err());
        // Missing final newline after the signature.
        assert!(matches!(
            verifier.verify(note.trim_end_matches('\n')),
            Err(NoteError::MalformedNote { .. })
        ));
    }

    #[test]
    fn verify_rejects_a_non_canonical_size_even_when_signed() {
        let signer = test_signer();
        let verifier = NoteVerifier::parse(&signer.verifier_key()).unwrap();
        let root = STANDARD.encode([3u8; 32]);
        for size in ["007", "+7", "7 ", "", "18446744073709551616"] {
            let note = signer.sign_text(&format!("{ORIGIN}\n{size}\n{root}\n"));
            assert!(
                matches!(
                    verifier.verify(&note),
                    Err(NoteError::MalformedCheckpoint { .. })
                ),
                "{size:?}"
            );
        }
    }

    #[test]
    fn verify_rejects_more_than_100_signature_lines() {
        let signer = test_signer();
        let verifier = NoteVerifier::parse(&signer.verifier_key()).unwrap();
        let note = signer.sign(&checkpoint()).unwrap();
        let line = &note[note.rfind('\u{2014}').unwrap()..];
        let at_limit = format!("{note}{}", line.repeat(99));
        assert_eq!(verifier.verify(&at_limit).unwrap(), checkpoint());
        let over = format!("{note}{}", line.repeat(100));
        assert_eq!(
            verifier.verify(&over),
            Err(NoteError::TooManySignatures { limit: 100 })
        );
    }

    #[test]
    fn verify_rejects_control_characters() {
        let signer = test_signer();
        let verifier = NoteVerifier::parse(&signer.verifier_key()).unwrap();
        let note = signer.sign(&checkpoint()).unwrap();
        let crlf = note.replace('\n', "\r\n");
        assert!(matches!(
            verifier.verify(&crlf),
            Err(NoteError::MalformedNote { .. })
        ));
    }

    #[test]
    fn verifier_key_parsing_explains_what_is_wrong() {
        let vkey = test_signer().verifier_key();
        let (name, rest) = vkey.split_once('+').unwrap();
        let (id, key) = rest.split_once('+').unwrap();
        let malformed = |k: &str| {
            matches!(
                NoteVerifier::parse(k),
                Err(NoteError::MalformedVerifierKey { .. })
            )
        };
        assert!(malformed(name));
        assert!(malformed(&format!("{name}+{id}")));
        assert!(malformed(&format!("{name}+{}+{key}", &id[..7])));
        assert!(malformed(&format!("{name}+zzzzzzzz+{key}")));
        assert!(malformed(&format!("{name}+{id}+{}", &key[1..])));
        assert_eq!(
            NoteVerifier::parse(&format!("{name}x+{id}+{key}")),
            Err(NoteError::VerifierKeyIdMismatch)
        );
        assert_eq!(
            NoteVerifier::parse(&format!("+{id}+{key}")),
            Err(NoteError::InvalidKeyName)
        );
        // Upper-case hex names the same id.
        assert!(NoteVerifier::parse(&format!("{name}+{}+{key}", id.to_uppercase())).is_ok());
    }

    #[test]
    fn error_messages_carry_no_key_material() {
        let signer = test_signer();
        let vkey = signer.verifier_key();
        let key_b64 = vkey.rsplit_once('+').unwrap().1;
        let verifier = NoteVerifier::parse(&vkey).unwrap();
        let note = signer
            .sign(&checkpoint())
            .unwrap()
            .replacen("20852163", "1", 1);
        let message = verifier.verify(&note).unwrap_err().to_string();
        assert!(!message.contains(key_b64));
        assert!(message.contains("do not trust it"));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn any_checkpoint_round_trips(
            origin in "[a-z0-9.-]{1,20}(/[a-zA-Z0-9._~-]{1,20}){0,3}",
            size in any::<u64>(),
            root in any::<[u8; 32]>(),
        ) {
            let cp = Checkpoint { origin, size, root };
            prop_assert_eq!(Checkpoint::parse_body(&cp.body()).unwrap(), cp.clone());
            let signer = test_signer();
            let verifier = NoteVerifier::parse(&signer.verifier_key()).unwrap();
            prop_assert_eq!(verifier.verify(&signer.sign(&cp).unwrap()).unwrap(), cp);
        }

        /// Any change to any single byte of the note, body or signature line, is caught. A
        /// change that makes the bytes invalid UTF-8 cannot even be passed as a note.
        #[test]
        fn any_flipped_byte_fails_verification(
            size in any::<u64>(),
            root in any::<[u8; 32]>(),
            position in any::<prop::sample::Index>(),
            mask in 1u8..=255,
        ) {
            let signer = test_signer();
            let verifier = NoteVerifier::parse(&signer.verifier_key()).unwrap();
            let cp = Checkpoint { origin: ORIGIN.to_owned(), size, root };
            let note = signer.sign(&cp).unwrap();
            let mut bytes = note.into_bytes();
            let at = position.index(bytes.len());
            bytes[at] ^= mask;
            if let Ok(flipped) = String::from_utf8(bytes) {
                prop_assert!(verifier.verify(&flipped).is_err(), "verified after flipping byte {}", at);
            }
        }

        /// The same, restricted to flips that keep the note valid UTF-8 text, so that every
        /// case reaches the verifier.
        #[test]
        fn any_ascii_substitution_fails_verification(
            size in any::<u64>(),
            root in any::<[u8; 32]>(),
            position in any::<prop::sample::Index>(),
            replacement in 0x20u8..0x7f,
        ) {
            let signer = test_signer();
            let verifier = NoteVerifier::parse(&signer.verifier_key()).unwrap();
            let cp = Checkpoint { origin: ORIGIN.to_owned(), size, root };
            let note = signer.sign(&cp).unwrap();
            let mut bytes = note.clone().into_bytes();
            let ascii: Vec<usize> = (0..bytes.len()).filter(|&i| bytes[i].is_ascii()).collect();
            let at = ascii[position.index(ascii.len())];
            prop_assume!(bytes[at] != replacement);
            bytes[at] = replacement;
            let changed = String::from_utf8(bytes).unwrap();
            prop_assert!(verifier.verify(&changed).is_err(), "verified after changing byte {}", at);
        }

        #[test]
        fn verification_never_panics_on_arbitrary_text(text in "\\PC{0,300}") {
            let verifier = NoteVerifier::parse(&test_signer().verifier_key()).unwrap();
            let _ = verifier.verify(&text);
            let _ = Checkpoint::parse_body(&text);
            let _ = NoteVerifier::parse(&text);
        }
    }
}
