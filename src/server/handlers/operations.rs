//! Operational routes: liveness, readiness, and the answers for unknown routes and methods.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;

use crate::error::Result;
use crate::server::problem::Problem;
use crate::server::{blocking, AppState};

use super::*;

/// Liveness: the process answers.
#[utoipa::path(
    get,
    path = "/livez",
    tag = "operations",
    responses((status = 200, description = "Alive", body = Health))
)]
pub async fn livez() -> Response {
    bytes_response(
        StatusCode::OK,
        "application/json",
        &br#"{"status":"ok"}"#[..],
    )
}

/// Readiness: database open (reads and commits), keyring unlocked, policy valid.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "operations",
    responses(
        (status = 200, description = "Ready", body = Health),
        (status = 503, description = "Not ready; the checks say what failed", body = Health)
    )
)]
pub async fn readyz(State(state): State<AppState>) -> Result<Response> {
    let vault = state.vault().clone();
    let checks = blocking(move || Ok(vault.readiness())).await?;
    let ready = checks.ready();
    let health = Health {
        status: if ready { "ready" } else { "not ready" }.into(),
        checks: Some(checks),
    };
    json_response(
        if ready {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        },
        &health,
    )
}

/// Any path that is not an endpoint.
pub async fn unknown_route() -> Problem {
    Problem::new(
        StatusCode::NOT_FOUND,
        "no-such-endpoint",
        "Not found",
        "no such endpoint: see /openapi.json for the API",
    )
}

/// A known path with a method it does not have.
pub async fn method_not_allowed() -> Problem {
    Problem::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method-not-allowed",
        "Method not allowed",
        "this endpoint does not take that method: see /openapi.json",
    )
}
