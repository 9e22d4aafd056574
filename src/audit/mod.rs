//! The tamper-evident audit trail: every decision, allowed or denied, as an entry in an
//! RFC 6962 Merkle tree kept in SQLite, with C2SP signed checkpoints.
//!
//! - [`digest`]: a summary of the trail in memory, for the DPO's console and reports.
//! - [`entry`]: the canonical entry encoding (documented in SECURITY.md, "Audit format").
//! - [`log`]: appending entries in the caller's transaction (fail closed).
//! - [`merkle`]: RFC 6962 hashing, inclusion and consistency proofs.
//! - [`note`]: checkpoints as C2SP signed notes with Ed25519.
//! - [`verify`]: recomputing the tree, checking checkpoints, proofs, exports, reports.

pub mod digest;
pub mod entry;
pub(crate) mod log;
pub mod merkle;
pub mod note;
#[cfg(test)]
mod vectors;
pub mod verify;
