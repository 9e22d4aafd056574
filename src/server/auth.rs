//! The bearer-token extractor: `Authorization: Bearer cvv_...` becomes the authenticated
//! principal, or the request ends with 401 before any handler runs.

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;

use super::{blocking, AppState};
use crate::error::{Error, Result};
use crate::policy::PrincipalFacts;

/// The principal a request was authenticated as.
pub struct Caller(pub PrincipalFacts);

/// The token of an `Authorization: Bearer <token>` header (scheme case-insensitive, RFC 6750).
fn bearer(parts: &Parts) -> Option<String> {
    let value = parts.headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_owned())
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Caller> {
        let token = bearer(parts).ok_or(Error::Unauthenticated)?;
        let vault = state.vault().clone();
        let principal = blocking(move || vault.authenticate(&token)).await?;
        Ok(Caller(principal))
    }
}
