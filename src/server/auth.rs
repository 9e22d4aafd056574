//! Bearer-token authentication. The extractor only takes the token from
//! `Authorization: Bearer cvv_...` (401 when there is none); [`Bearer::run`] checks it against
//! the store and runs the request's vault call as that principal, in one trip to the blocking
//! pool. So nothing about a request is looked at, and no request body is parsed, before its
//! token is known to be valid.

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use zeroize::Zeroizing;

use super::{blocking, AppState};
use crate::error::{Error, Result};
use crate::policy::PrincipalFacts;
use crate::vault::Vault;

/// The bearer token of a request, not yet checked.
pub struct Bearer(Zeroizing<String>);

impl Bearer {
    /// Authenticates the token, then runs `f` as its principal, off the async workers.
    pub async fn run<T, F>(self, state: &AppState, f: F) -> Result<T>
    where
        F: FnOnce(&Vault, PrincipalFacts) -> Result<T> + Send + 'static,
        T: Send + 'static,
    {
        let vault = state.vault().clone();
        blocking(move || {
            let principal = vault.authenticate(&self.0)?;
            f(&vault, principal)
        })
        .await
    }
}

/// The token of an `Authorization: Bearer <token>` header (scheme case-insensitive, RFC 6750).
fn bearer(parts: &Parts) -> Option<Zeroizing<String>> {
    bearer_token(parts.headers.get(AUTHORIZATION)?.as_bytes())
}

/// The token of an `Authorization` header value, if it is `Bearer <token>` (scheme
/// case-insensitive, RFC 6750): the parser of untrusted header bytes (fuzzed).
pub fn bearer_token(value: &[u8]) -> Option<Zeroizing<String>> {
    let value = std::str::from_utf8(value).ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| Zeroizing::new(token.trim().to_owned()))
}

impl FromRequestParts<AppState> for Bearer {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, _state: &AppState) -> Result<Bearer> {
        bearer(parts).map(Bearer).ok_or(Error::Unauthenticated)
    }
}
