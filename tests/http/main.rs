//! The HTTP API in-process: `server::router(state)` driven with `tower::ServiceExt::oneshot`
//! over a real vault (SQLite file, age keyring, Cedar policy) in a temporary directory.

// Test code: a failed step should stop the test loudly (clippy.toml allows this only inside
// #[test] functions, not in their helpers).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[path = "../common/mod.rs"]
mod common;

mod audited;
mod concealed;
mod console;
mod edges;
mod forged;
mod harvest;
mod matrix;
mod openapi;
mod router;
mod support;
mod two_writers;
