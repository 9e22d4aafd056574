//! MACs over the vault's own state: the rows that authorization depends on (principals,
//! tokens, assignments, candidates with their holds), the audit trail's stored frontier,
//! and keyed token hashes.
//!
//! Whoever can write the database file but holds no keyring can then no longer grant
//! access: a principal, token or assignment row it inserts or changes fails its MAC and is
//! refused where it is read, and `cvvault audit verify` names it. Such a writer can still
//! delete rows (which the audit trail and its checkpoints reveal) but not forge them.
//!
//! `MAC = HMAC-SHA256(integrity key, frame(domain, field, field, ...))`, with the
//! length-prefixed framing of associated data (`crypto::frame`), so that no two rows of
//! different content encode alike.

use ring::{digest, hmac};

use super::frame;

/// The key, from the keyring ([`super::keyring::Keyring::integrity_key`]). No `Debug`.
pub struct IntegrityKey {
    key: hmac::Key,
}

/// What a MAC covers: the domain names the table (and format version) of the row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Domain {
    /// A principal: id, role, organisation, subject link, disabled flag.
    Principal,
    /// A token: id, principal, keyed hash, revocation time.
    Token,
    /// An assignment: ids, organisation, kind, purpose, open and close times.
    Assignment,
    /// A candidate's lifecycle row: id, key slot, legal hold and its ground.
    Candidate,
    /// The audit trail's right edge (`audit_frontier`).
    Frontier,
    /// The record of the last `audit verify`, which the DPO's console shows.
    Verification,
}

impl Domain {
    fn label(self) -> &'static [u8] {
        match self {
            Domain::Principal => b"cvvault/row/principal/v1",
            Domain::Token => b"cvvault/row/token/v1",
            Domain::Assignment => b"cvvault/row/assignment/v1",
            Domain::Candidate => b"cvvault/row/candidate/v1",
            Domain::Frontier => b"cvvault/audit/frontier/v1",
            Domain::Verification => b"cvvault/meta/last-verification/v1",
        }
    }
}

/// An optional value in a MAC: absent and present-but-empty encode differently.
pub fn optional(value: Option<&[u8]>) -> Vec<u8> {
    match value {
        None => vec![0],
        Some(bytes) => {
            let mut out = Vec::with_capacity(bytes.len() + 1);
            out.push(1);
            out.extend_from_slice(bytes);
            out
        }
    }
}

impl IntegrityKey {
    /// From the keyring's integrity key.
    pub fn new(key: &[u8; 32]) -> IntegrityKey {
        IntegrityKey {
            key: hmac::Key::new(hmac::HMAC_SHA256, key),
        }
    }

    fn message(domain: Domain, fields: &[&[u8]]) -> Vec<u8> {
        let mut parts: Vec<&[u8]> = Vec::with_capacity(fields.len() + 1);
        parts.push(domain.label());
        parts.extend_from_slice(fields);
        frame(&parts)
    }

    /// The MAC of a row's fields.
    pub fn mac(&self, domain: Domain, fields: &[&[u8]]) -> Vec<u8> {
        hmac::sign(&self.key, &Self::message(domain, fields))
            .as_ref()
            .to_vec()
    }

    /// Checks a stored MAC in constant time; a missing one fails.
    pub fn verify(&self, domain: Domain, fields: &[&[u8]], mac: Option<&[u8]>) -> bool {
        mac.is_some_and(|mac| hmac::verify(&self.key, &Self::message(domain, fields), mac).is_ok())
    }

    /// What the store keeps of a bearer token: `HMAC-SHA256(key, frame("cvvault/token/v1",
    /// SHA-256(token)))`. Keyed, so a database writer cannot mint a token by inserting the
    /// hash of one it chose; built on the SHA-256 the previous version stored, so that
    /// migration keys the stored hashes without knowing any token.
    pub fn token_hash(&self, token: &str) -> [u8; 32] {
        let inner = digest::digest(&digest::SHA256, token.as_bytes());
        let mut unkeyed = [0u8; 32];
        unkeyed.copy_from_slice(inner.as_ref());
        self.key_token_hash(&unkeyed)
    }

    /// What the store keeps of an agency reference (a case number), to find the candidate by:
    /// `HMAC-SHA256(key, frame("cvvault/agency-reference/v1", reference))`. Keyed, so that
    /// the references cannot be guessed from the database by trying case numbers.
    pub fn reference_mac(&self, reference: &str) -> [u8; 32] {
        let tag = hmac::sign(
            &self.key,
            &frame(&[b"cvvault/agency-reference/v1", reference.as_bytes()]),
        );
        let mut out = [0u8; 32];
        out.copy_from_slice(tag.as_ref());
        out
    }

    /// Keys an unkeyed SHA-256 token hash (schema migration 4).
    pub fn key_token_hash(&self, unkeyed: &[u8; 32]) -> [u8; 32] {
        let tag = hmac::sign(&self.key, &frame(&[b"cvvault/token/v1", unkeyed]));
        let mut out = [0u8; 32];
        out.copy_from_slice(tag.as_ref());
        out
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn every_field_domain_and_key_changes_the_mac() {
        let key = IntegrityKey::new(&[7u8; 32]);
        let mac = key.mac(Domain::Principal, &[b"emp1", b"employer", b"acme"]);
        assert!(key.verify(
            Domain::Principal,
            &[b"emp1", b"employer", b"acme"],
            Some(&mac)
        ));
        assert!(!key.verify(Domain::Principal, &[b"emp1", b"dpo", b"acme"], Some(&mac)));
        assert!(!key.verify(Domain::Token, &[b"emp1", b"employer", b"acme"], Some(&mac)));
        assert!(!key.verify(Domain::Principal, &[b"emp1", b"employer", b"acme"], None));
        // Moving a byte between fields changes the framing, so the MAC.
        assert!(!key.verify(
            Domain::Principal,
            &[b"emp", b"1employer", b"acme"],
            Some(&mac)
        ));
        let other = IntegrityKey::new(&[8u8; 32]);
        assert!(!other.verify(
            Domain::Principal,
            &[b"emp1", b"employer", b"acme"],
            Some(&mac)
        ));
        assert_ne!(optional(None), optional(Some(b"")));
    }

    #[test]
    fn a_token_hash_is_keyed_and_migrates_from_its_sha256() {
        let key = IntegrityKey::new(&[7u8; 32]);
        let token = "cvv_0123456789abcdef_00";
        let sha = digest::digest(&digest::SHA256, token.as_bytes());
        let mut unkeyed = [0u8; 32];
        unkeyed.copy_from_slice(sha.as_ref());
        assert_eq!(key.token_hash(token), key.key_token_hash(&unkeyed));
        assert_ne!(
            key.token_hash(token),
            unkeyed,
            "the stored hash is not plain SHA-256"
        );
        assert_ne!(
            key.token_hash(token),
            IntegrityKey::new(&[8u8; 32]).token_hash(token)
        );
    }
}
