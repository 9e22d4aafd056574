//! The HTTP API (axum).
