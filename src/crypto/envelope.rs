//! Envelope encryption: a data key (DEK) per candidate seals each field group separately
//! with AES-256-GCM; the DEK is wrapped by a versioned key-encryption key (KEK).
//!
//! Associated data binds every ciphertext to where it belongs, so a ciphertext moved to
//! another candidate, group, record version or KEK version fails to open:
//! - field group: `frame("cvvault/field/v1", candidate id, group name, record version)`
//! - wrapped DEK: `frame("cvvault/dek/v2", kek id, candidate id)`, where the KEK id is the
//!   key's own fingerprint (see `keyring`): two KEKs that share a version number (two
//!   rotations started at once, say) can never be taken for each other. KEKs from before
//!   key ids existed keep `frame("cvvault/dek/v1", kek version, candidate id)` until rotated.
//!
//! AES-GCM is not key-committing, so a commitment `HMAC-SHA256(DEK, frame("cvvault/commit/v1",
//! candidate id))` is stored beside the wrapped DEK and checked before the DEK is used.

use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use ring::hmac;
use zeroize::Zeroizing;

use super::keyring::{Kek, Keyring};
use super::{fill_random, frame, random_secret};
use crate::error::{Error, Result};
use crate::ids::CandidateId;
use crate::vocabulary::FieldGroup;

const TAG_LEN: usize = 16;
/// Bytes a sealed value adds to its plaintext: nonce and tag.
#[cfg(test)]
pub const SEAL_OVERHEAD: usize = NONCE_LEN + TAG_LEN;

/// A candidate's data key. Wiped on drop; no `Debug`.
pub struct Dek {
    key: Zeroizing<[u8; 32]>,
}

/// A DEK as stored: wrapped under one KEK version, with its key commitment.
#[derive(Clone, PartialEq, Eq)]
pub struct WrappedDek {
    /// The KEK version that wrapped it.
    pub kek_version: u32,
    /// `nonce || ciphertext || tag`.
    pub wrapped: Vec<u8>,
    /// `HMAC-SHA256(DEK, frame("cvvault/commit/v1", candidate id))`.
    pub commitment: Vec<u8>,
}

fn aead_key(key: &[u8; 32]) -> Result<LessSafeKey> {
    let unbound = UnboundKey::new(&AES_256_GCM, key).map_err(|_| Error::DecryptionFailed)?;
    Ok(LessSafeKey::new(unbound))
}

/// `nonce || AES-256-GCM(key, nonce, aad, plaintext) || tag` with a random 96-bit nonce.
fn seal(key: &LessSafeKey, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>> {
    let [nonce] = random_nonces::<1>()?;
    seal_with_nonce(key, nonce, aad, plaintext)
}

/// `nonce || AES-256-GCM(key, nonce, aad, plaintext) || tag`, encrypted in place in the one
/// buffer it is returned in.
fn seal_with_nonce(
    key: &LessSafeKey,
    nonce: [u8; NONCE_LEN],
    aad: &[u8],
    plaintext: &[u8],
) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(NONCE_LEN + plaintext.len() + TAG_LEN);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(plaintext);
    let (_, body) = out.split_at_mut(NONCE_LEN);
    let tag = key
        .seal_in_place_separate_tag(Nonce::assume_unique_for_key(nonce), Aad::from(aad), body)
        .map_err(|_| Error::DecryptionFailed)?;
    out.extend_from_slice(tag.as_ref());
    Ok(out)
}

/// `N` random 96-bit nonces, from one call to the operating system's generator.
fn random_nonces<const N: usize>() -> Result<[[u8; NONCE_LEN]; N]> {
    let mut nonces = [[0u8; NONCE_LEN]; N];
    fill_random(nonces.as_flattened_mut())?;
    Ok(nonces)
}

fn open(key: &LessSafeKey, aad: &[u8], sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    let (nonce, body) = sealed
        .split_at_checked(NONCE_LEN)
        .ok_or(Error::DecryptionFailed)?;
    let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| Error::DecryptionFailed)?;
    let mut buffer = Zeroizing::new(body.to_vec());
    let plaintext_len = key
        .open_in_place(nonce, Aad::from(aad), &mut buffer)
        .map_err(|_| Error::DecryptionFailed)?
        .len();
    buffer.truncate(plaintext_len);
    Ok(buffer)
}

fn field_aad(candidate_id: &CandidateId, group: FieldGroup, record_version: u32) -> Vec<u8> {
    frame(&[
        b"cvvault/field/v1",
        candidate_id.as_bytes(),
        group.as_str().as_bytes(),
        &record_version.to_be_bytes(),
    ])
}

fn dek_aad(kek: &Kek, kek_version: u32, candidate_id: &CandidateId) -> Vec<u8> {
    if kek.binds_id {
        frame(&[b"cvvault/dek/v2", &kek.id, candidate_id.as_bytes()])
    } else {
        frame(&[
            b"cvvault/dek/v1",
            &kek_version.to_be_bytes(),
            candidate_id.as_bytes(),
        ])
    }
}

fn commitment(dek: &[u8; 32], candidate_id: &CandidateId) -> Vec<u8> {
    let key = hmac::Key::new(hmac::HMAC_SHA256, dek);
    hmac::sign(
        &key,
        &frame(&[b"cvvault/commit/v1", candidate_id.as_bytes()]),
    )
    .as_ref()
    .to_vec()
}

impl Dek {
    /// A fresh random 256-bit data key.
    pub fn generate() -> Result<Dek> {
        Ok(Dek {
            key: random_secret()?,
        })
    }

    /// Wraps this DEK under the keyring's current KEK.
    pub fn wrap(&self, keyring: &Keyring, candidate_id: &CandidateId) -> Result<WrappedDek> {
        self.wrap_under(keyring, keyring.current_version(), candidate_id)
    }

    /// Wraps this DEK under a given KEK version (used by rotation).
    pub fn wrap_under(
        &self,
        keyring: &Keyring,
        kek_version: u32,
        candidate_id: &CandidateId,
    ) -> Result<WrappedDek> {
        let kek = keyring.kek(kek_version).ok_or(Error::Corrupt {
            what: "the keyring does not hold the KEK version asked for",
        })?;
        let wrapped = seal(
            &aead_key(&kek.key)?,
            &dek_aad(kek, kek_version, candidate_id),
            self.key.as_ref(),
        )?;
        Ok(WrappedDek {
            kek_version,
            wrapped,
            commitment: commitment(&self.key, candidate_id),
        })
    }

    /// Unwraps a stored DEK and checks its key commitment.
    pub fn unwrap(
        keyring: &Keyring,
        candidate_id: &CandidateId,
        stored: &WrappedDek,
    ) -> Result<Dek> {
        let kek = keyring.kek(stored.kek_version).ok_or_else(|| {
            Error::Conflict(format!(
                "this record is wrapped under KEK version {}, which this process's keyring does not hold: the keys were rotated by another cvvault process; restart this one so that it loads the new keyring",
                stored.kek_version
            ))
        })?;
        let plain = open(
            &aead_key(&kek.key)?,
            &dek_aad(kek, stored.kek_version, candidate_id),
            &stored.wrapped,
        )?;
        let mut key = Zeroizing::new([0u8; 32]);
        if plain.len() != key.len() {
            return Err(Error::DecryptionFailed);
        }
        key.copy_from_slice(&plain);
        let check = hmac::Key::new(hmac::HMAC_SHA256, key.as_ref());
        hmac::verify(
            &check,
            &frame(&[b"cvvault/commit/v1", candidate_id.as_bytes()]),
            &stored.commitment,
        )
        .map_err(|_| Error::DecryptionFailed)?;
        Ok(Dek { key })
    }

    /// A sealer/opener for this candidate's groups, with the AES key schedule computed once.
    pub fn cipher(&self, candidate_id: CandidateId) -> Result<GroupCipher> {
        Ok(GroupCipher {
            key: aead_key(&self.key)?,
            candidate_id,
        })
    }
}

/// Seals and opens one candidate's field groups.
pub struct GroupCipher {
    key: LessSafeKey,
    candidate_id: CandidateId,
}

impl GroupCipher {
    /// Seals one group's serialized JSON.
    pub fn seal(
        &self,
        group: FieldGroup,
        record_version: u32,
        plaintext: &[u8],
    ) -> Result<Vec<u8>> {
        seal(
            &self.key,
            &field_aad(&self.candidate_id, group, record_version),
            plaintext,
        )
    }

    /// Seals every group's serialized JSON, given in [`FieldGroup::ALL`] order: as
    /// [`GroupCipher::seal`] on each, with the nonces drawn in one call.
    pub fn seal_all(
        &self,
        record_version: u32,
        plaintexts: [&[u8]; FieldGroup::ALL.len()],
    ) -> Result<[Vec<u8>; FieldGroup::ALL.len()]> {
        let nonces = random_nonces::<{ FieldGroup::ALL.len() }>()?;
        let mut sealed: [Vec<u8>; FieldGroup::ALL.len()] = Default::default();
        for (((out, group), plaintext), nonce) in sealed
            .iter_mut()
            .zip(FieldGroup::ALL)
            .zip(plaintexts)
            .zip(nonces)
        {
            *out = seal_with_nonce(
                &self.key,
                nonce,
                &field_aad(&self.candidate_id, group, record_version),
                plaintext,
            )?;
        }
        Ok(sealed)
    }

    /// Opens one group; any change to the ciphertext, or its place, fails.
    pub fn open(
        &self,
        group: FieldGroup,
        record_version: u32,
        sealed: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>> {
        open(
            &self.key,
            &field_aad(&self.candidate_id, group, record_version),
            sealed,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn fixture() -> (Keyring, CandidateId, Dek, WrappedDek) {
        let ring = Keyring::generate().unwrap();
        let id = CandidateId::random();
        let dek = Dek::generate().unwrap();
        let wrapped = dek.wrap(&ring, &id).unwrap();
        (ring, id, dek, wrapped)
    }

    #[test]
    fn every_group_round_trips() {
        let (ring, id, dek, wrapped) = fixture();
        let cipher = dek.cipher(id).unwrap();
        let reopened = Dek::unwrap(&ring, &id, &wrapped)
            .unwrap()
            .cipher(id)
            .unwrap();
        for group in FieldGroup::ALL {
            let text = format!("{{\"group\":\"{group}\"}}");
            let sealed = cipher.seal(group, 1, text.as_bytes()).unwrap();
            assert_eq!(sealed.len(), text.len() + SEAL_OVERHEAD);
            assert_eq!(
                &reopened.open(group, 1, &sealed).unwrap()[..],
                text.as_bytes()
            );
        }
    }

    #[test]
    fn seal_all_seals_each_group_in_its_place_under_its_own_nonce() {
        let (_, id, dek, _) = fixture();
        let cipher = dek.cipher(id).unwrap();
        let texts = FieldGroup::ALL.map(|group| format!("{{\"group\":\"{group}\"}}"));
        let sealed = cipher
            .seal_all(1, texts.each_ref().map(|t| t.as_bytes()))
            .unwrap();
        for ((group, text), blob) in FieldGroup::ALL.iter().zip(&texts).zip(&sealed) {
            assert_eq!(&cipher.open(*group, 1, blob).unwrap()[..], text.as_bytes());
            for other in FieldGroup::ALL.iter().filter(|g| *g != group) {
                assert!(
                    cipher.open(*other, 1, blob).is_err(),
                    "{group} opened as {other}"
                );
            }
        }
        let mut nonces: Vec<&[u8]> = sealed.iter().map(|b| &b[..NONCE_LEN]).collect();
        nonces.sort_unstable();
        nonces.dedup();
        assert_eq!(
            nonces.len(),
            FieldGroup::ALL.len(),
            "every group has its own nonce"
        );
    }

    #[test]
    fn a_ciphertext_moved_to_another_candidate_group_or_version_fails() {
        let (_, id, dek, _) = fixture();
        let cipher = dek.cipher(id).unwrap();
        let sealed = cipher.seal(FieldGroup::Special, 1, b"secret").unwrap();
        assert!(matches!(
            cipher.open(FieldGroup::Professional, 1, &sealed),
            Err(Error::DecryptionFailed)
        ));
        assert!(matches!(
            cipher.open(FieldGroup::Special, 2, &sealed),
            Err(Error::DecryptionFailed)
        ));
        let other = dek.cipher(CandidateId::random()).unwrap();
        assert!(matches!(
            other.open(FieldGroup::Special, 1, &sealed),
            Err(Error::DecryptionFailed)
        ));
    }

    #[test]
    fn a_wrapped_dek_moved_to_another_candidate_or_version_fails() {
        let (mut ring, id, _, wrapped) = fixture();
        assert!(matches!(
            Dek::unwrap(&ring, &CandidateId::random(), &wrapped),
            Err(Error::DecryptionFailed)
        ));
        ring.begin_rotation().unwrap();
        let relabelled = WrappedDek {
            kek_version: 2,
            ..wrapped.clone()
        };
        assert!(matches!(
            Dek::unwrap(&ring, &id, &relabelled),
            Err(Error::DecryptionFailed)
        ));
    }

    #[test]
    fn two_keks_of_the_same_version_are_never_confused() {
        // Two rotations started from the same keyring each make their own "version 2" (the
        // loss of every profile in the 2026-12 review): a DEK wrapped under one fails under
        // the other, and the two carry different ids for the database to tell them apart.
        let (ring, id, dek, _) = fixture();
        let (mut first, mut second) = (ring, Keyring::generate().unwrap());
        first.begin_rotation().unwrap();
        second.begin_rotation().unwrap();
        assert_ne!(first.kek_id(2), second.kek_id(2));
        let under_first = dek.wrap(&first, &id).unwrap();
        assert_eq!(under_first.kek_version, 2);
        assert!(matches!(
            Dek::unwrap(&second, &id, &under_first),
            Err(Error::DecryptionFailed)
        ));
        assert!(Dek::unwrap(&first, &id, &under_first).is_ok());
    }

    #[test]
    fn a_forged_commitment_is_refused() {
        let (ring, id, _, mut wrapped) = fixture();
        wrapped.commitment = vec![0u8; 32];
        assert!(matches!(
            Dek::unwrap(&ring, &id, &wrapped),
            Err(Error::DecryptionFailed)
        ));
    }

    proptest! {
        #[test]
        fn any_flipped_bit_in_a_sealed_group_fails(pos in 0usize..64, bit in 0u8..8) {
            let (_, id, dek, _) = fixture();
            let cipher = dek.cipher(id).unwrap();
            let mut sealed = cipher.seal(FieldGroup::Identity, 1, b"{\"name\":\"Anna Lindqvist\"}").unwrap();
            let pos = pos % sealed.len();
            sealed[pos] ^= 1 << bit;
            prop_assert!(matches!(cipher.open(FieldGroup::Identity, 1, &sealed), Err(Error::DecryptionFailed)));
        }

        #[test]
        fn any_flipped_bit_in_a_wrapped_dek_or_commitment_fails(pos in 0usize..120, bit in 0u8..8) {
            let (ring, id, _, mut wrapped) = fixture();
            let total = wrapped.wrapped.len() + wrapped.commitment.len();
            let pos = pos % total;
            if pos < wrapped.wrapped.len() {
                wrapped.wrapped[pos] ^= 1 << bit;
            } else {
                wrapped.commitment[pos - wrapped.wrapped.len()] ^= 1 << bit;
            }
            prop_assert!(matches!(Dek::unwrap(&ring, &id, &wrapped), Err(Error::DecryptionFailed)));
        }
    }
}
