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

/// The bearer token of a request, not yet checked, and the client address it came from
/// (`None` in process, where there is no socket).
pub struct Bearer(Zeroizing<String>, Option<std::net::SocketAddr>);

impl Bearer {
    /// The token a console session keeps, checked as a bearer token on each request.
    pub(crate) fn from_session(
        token: Zeroizing<String>,
        peer: Option<std::net::SocketAddr>,
    ) -> Bearer {
        Bearer(token, peer)
    }

    /// Authenticates the token, then runs `f` as its principal, off the async workers.
    pub async fn run<T, F>(self, state: &AppState, f: F) -> Result<T>
    where
        F: FnOnce(&Vault, PrincipalFacts) -> Result<T> + Send + 'static,
        T: Send + 'static,
    {
        let Bearer(token, peer) = self;
        // An address past its budget of failed authentications is refused before its token is
        // looked up: guessing tokens costs the vault nothing more.
        if let Some(retry_after_secs) = state.auth_failures().blocked(peer) {
            return Err(Error::TooManyFailedAuthentications { retry_after_secs });
        }
        let vault = state.vault().clone();
        let result = blocking(move || {
            let principal = vault.authenticate(&token)?;
            f(&vault, principal)
        })
        .await;
        if matches!(
            result,
            Err(Error::Unauthenticated | Error::TokenExpired { .. })
        ) {
            if let Some(retry_after_secs) = state.auth_failures().failed(peer) {
                return Err(Error::TooManyFailedAuthentications { retry_after_secs });
            }
        }
        result
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

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Bearer> {
        let peer = parts
            .extensions
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map(|info| info.0);
        if let Some(retry_after_secs) = state.auth_failures().blocked(peer) {
            return Err(Error::TooManyFailedAuthentications { retry_after_secs });
        }
        match bearer(parts) {
            Some(token) => Ok(Bearer(token, peer)),
            None => Err(match state.auth_failures().failed(peer) {
                Some(retry_after_secs) => Error::TooManyFailedAuthentications { retry_after_secs },
                None => Error::Unauthenticated,
            }),
        }
    }
}
