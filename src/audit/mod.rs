//! The tamper-evident audit trail: RFC 6962 Merkle log, signed checkpoints, verification.

pub mod merkle;
pub mod note;
