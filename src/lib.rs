//! cvvault: a privacy-first encrypted CV vault.
//!
//! Candidate profiles are sealed per field group under a per-candidate data key, which is
//! wrapped by a key-encryption key kept in an age-protected keyring. Every access is decided
//! by Cedar policy files and recorded, allowed or denied, in an RFC 6962 Merkle audit log
//! before any plaintext is released. A retention job crypto-shreds a candidate when their
//! last assignment closes. See `SECURITY.md` for the threat model.
//!
//! The library exposes the vault's use cases ([`vault::Vault`]), its two edges ([`server`],
//! [`cli`]) and the types their callers need. The store, its rows and the cryptography are
//! private to the crate: only the vault reaches candidate data, and every store operation that
//! releases or changes it takes the proof of an allowed decision that only [`policy`] can make
//! (see `tests/compile_fail/` for what does not compile).

pub mod audit;
pub mod cli;
pub mod clock;
pub(crate) mod crypto;
pub(crate) mod demo;
pub mod error;
pub(crate) mod files;
pub mod ids;
pub mod paths;
pub mod policy;
pub mod profile;
pub mod report;
pub mod server;
pub mod settings;
pub(crate) mod store;
pub mod synth;
pub mod vault;
pub mod vocabulary;

pub use error::{Error, Result};
