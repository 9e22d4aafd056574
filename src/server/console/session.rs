//! The console's sessions: a DPO's bearer token exchanged once for a random session id, sent
//! back in an HttpOnly, SameSite=Strict cookie that expires, and a CSRF token that every
//! form carries.
//!
//! The session keeps the bearer token (in memory only, wiped when the session ends) and
//! authenticates it again on every request, so that a token revoked or a principal disabled
//! on any node ends its console sessions at once. Only the session id's SHA-256 is a key
//! here: the id itself is never stored. Sessions live in the process that made them: a
//! restart logs everyone out, and behind a load balancer the console needs sticky sessions
//! (README, "Several nodes").

use std::collections::HashMap;
use std::sync::Mutex;

use base64::Engine as _;
use ring::rand::SecureRandom as _;
use zeroize::Zeroizing;

use crate::error::{Error, Result};

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "cvvault_console";
/// The cookie that binds the login form to the browser that asked for it (login CSRF).
pub const LOGIN_COOKIE: &str = "cvvault_console_login";
/// How long a session lasts without a new login.
pub const SESSION_SECONDS: i64 = 30 * 60;
/// How long a login form stays usable.
pub const LOGIN_SECONDS: i64 = 10 * 60;
/// At most this many sessions at once; the oldest goes first.
const MAX_SESSIONS: usize = 256;

/// A logged-in DPO's session.
struct Session {
    /// The bearer token the DPO logged in with.
    token: Zeroizing<String>,
    /// The token every form of this session carries.
    csrf: String,
    /// When it ends (seconds since the epoch).
    expires_at: i64,
    /// What the next page says about the last form sent (shown once).
    flash: Option<Flash>,
}

/// A message about the last form, shown once on the next page.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Flash {
    /// The words.
    pub text: String,
    /// Whether it reports a failure.
    pub failed: bool,
}

/// A live session, as a request finds it.
pub struct Found {
    /// The bearer token to authenticate again.
    pub token: Zeroizing<String>,
    /// The session's CSRF token.
    pub csrf: String,
    /// The message left by the last form, taken.
    pub flash: Option<Flash>,
}

/// The sessions of this process.
#[derive(Default)]
pub struct Sessions {
    by_id_hash: Mutex<HashMap<[u8; 32], Session>>,
}

/// 32 random bytes, base64url without padding.
pub fn random_token() -> Result<String> {
    let mut bytes = Zeroizing::new([0u8; 32]);
    ring::rand::SystemRandom::new()
        .fill(bytes.as_mut())
        .map_err(|_| Error::io("session", std::io::Error::other("no randomness")))?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes.as_ref()))
}

fn id_hash(id: &str) -> [u8; 32] {
    let digest = ring::digest::digest(&ring::digest::SHA256, id.as_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.as_ref());
    out
}

/// Compares two secrets in time that does not depend on where they differ.
pub fn same_secret(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |differ, (x, y)| differ | (x ^ y)) == 0
}

impl Sessions {
    /// Starts a session for `token`; returns its id (for the cookie).
    pub fn start(&self, token: Zeroizing<String>, now: i64) -> Result<String> {
        let id = random_token()?;
        let session = Session {
            token,
            csrf: random_token()?,
            expires_at: now + SESSION_SECONDS,
            flash: None,
        };
        let mut sessions = self.lock()?;
        sessions.retain(|_, s| s.expires_at > now);
        if sessions.len() >= MAX_SESSIONS {
            let oldest = sessions
                .iter()
                .min_by_key(|(_, s)| s.expires_at)
                .map(|(key, _)| *key);
            if let Some(oldest) = oldest {
                sessions.remove(&oldest);
            }
        }
        sessions.insert(id_hash(&id), session);
        Ok(id)
    }

    /// A live session, its message taken; `None` once it has expired or ended.
    pub fn find(&self, id: &str, now: i64) -> Result<Option<Found>> {
        let mut sessions = self.lock()?;
        let key = id_hash(id);
        match sessions.get_mut(&key) {
            Some(s) if s.expires_at > now => Ok(Some(Found {
                token: s.token.clone(),
                csrf: s.csrf.clone(),
                flash: s.flash.take(),
            })),
            Some(_) => {
                sessions.remove(&key);
                Ok(None)
            }
            None => Ok(None),
        }
    }

    /// Leaves a message for the session's next page.
    pub fn set_flash(&self, id: &str, flash: Flash) -> Result<()> {
        if let Some(session) = self.lock()?.get_mut(&id_hash(id)) {
            session.flash = Some(flash);
        }
        Ok(())
    }

    /// Ends a session (logout).
    pub fn end(&self, id: &str) -> Result<()> {
        self.lock()?.remove(&id_hash(id));
        Ok(())
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, HashMap<[u8; 32], Session>>> {
        self.by_id_hash.lock().map_err(|_| Error::Corrupt {
            what: "the console's sessions were left half-updated by a failed request",
        })
    }
}

/// The value of cookie `name` in a `Cookie` header.
pub fn cookie<'h>(headers: &'h axum::http::HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

/// A `Set-Cookie` value: HttpOnly, SameSite=Strict, for `path`, `Secure` over HTTPS.
pub fn set_cookie(name: &str, value: &str, path: &str, max_age: i64, secure: bool) -> String {
    format!(
        "{name}={value}; Path={path}; Max-Age={max_age}; HttpOnly; SameSite=Strict{}",
        if secure { "; Secure" } else { "" }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_is_found_by_its_id_until_it_expires_or_ends() {
        let sessions = Sessions::default();
        let id = sessions
            .start(Zeroizing::new("cvv_t".into()), 1_000)
            .unwrap();
        let found = sessions.find(&id, 1_001).unwrap().unwrap();
        assert_eq!(found.token.as_str(), "cvv_t");
        assert_eq!(found.csrf.len(), 43);
        assert!(found.flash.is_none());
        let flash = Flash {
            text: "done".into(),
            failed: false,
        };
        sessions.set_flash(&id, flash.clone()).unwrap();
        assert_eq!(
            sessions.find(&id, 1_001).unwrap().unwrap().flash,
            Some(flash)
        );
        assert!(
            sessions.find(&id, 1_001).unwrap().unwrap().flash.is_none(),
            "shown once"
        );
        assert!(sessions.find("another", 1_001).unwrap().is_none());
        assert!(sessions
            .find(&id, 1_000 + SESSION_SECONDS)
            .unwrap()
            .is_none());
        let id = sessions
            .start(Zeroizing::new("cvv_t".into()), 1_000)
            .unwrap();
        sessions.end(&id).unwrap();
        assert!(sessions.find(&id, 1_001).unwrap().is_none());
    }

    #[test]
    fn sessions_are_bounded_and_the_oldest_goes_first() {
        let sessions = Sessions::default();
        let first = sessions.start(Zeroizing::new("a".into()), 0).unwrap();
        for i in 0..MAX_SESSIONS {
            sessions
                .start(Zeroizing::new("b".into()), 1 + i as i64)
                .unwrap();
        }
        assert!(sessions.find(&first, 2).unwrap().is_none());
        assert_eq!(sessions.lock().unwrap().len(), MAX_SESSIONS);
    }

    #[test]
    fn cookies_are_read_by_exact_name_and_set_http_only_and_strict() {
        let mut headers = axum::http::HeaderMap::new();
        headers.insert(
            axum::http::header::COOKIE,
            "x_cvvault_console=no; cvvault_console=yes".parse().unwrap(),
        );
        assert_eq!(cookie(&headers, SESSION_COOKIE), Some("yes"));
        let set = set_cookie(SESSION_COOKIE, "v", "/console", 60, true);
        assert_eq!(
            set,
            "cvvault_console=v; Path=/console; Max-Age=60; HttpOnly; SameSite=Strict; Secure"
        );
    }
}
