//! cvvault: a privacy-first encrypted CV vault.
//!
//! Candidate profiles are sealed per field group under a per-candidate data key, which is
//! wrapped by a key-encryption key kept in an age-protected keyring. Every access is decided
//! by Cedar policy files and recorded, allowed or denied, in an RFC 6962 Merkle audit log
//! before any plaintext is released. A retention job crypto-shreds a candidate when their
//! last assignment closes. See `SECURITY.md` for the threat model.

pub mod audit;
pub mod cli;
pub mod clock;
pub mod config;
pub mod crypto;
pub mod error;
pub mod files;
pub mod ids;
pub mod model;
pub mod policy;
pub mod profile;
pub mod retention;
pub mod server;
pub mod settings;
pub mod store;
pub mod synth;
pub mod vault;

pub use error::{Error, Result};
