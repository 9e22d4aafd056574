//! Plain settings files in `policy/`: `retention.toml` and `limits.toml`. Unknown keys are
//! refused, so a misspelled setting never silently falls back to a default.

use std::path::Path;

use serde::Deserialize;

use crate::error::{Error, Result};

/// The default `policy/retention.toml`.
pub const DEFAULT_RETENTION: &str = r#"# Retention rules for `cvvault retention run` (durations in days).
# A candidate stays while any of their assignments is open (and never while under legal hold).

# Erase this many days after the candidate's last open assignment closes (0: at the next run).
grace_after_close_days = 0
# Longest life without any open assignment (e.g. registered but never assigned).
max_idle_days = 30
# Longest life at all, whatever is open.
max_life_days = 1095
"#;

/// The default `policy/limits.toml`.
pub const DEFAULT_LIMITS: &str = r#"# Extract quotas per principal: at most `extracts` within `window_seconds`.
# Past the quota a request is refused (HTTP 429), audited, and logged as an alert.
[extract]
extracts = 100
window_seconds = 3600

# The HTTP API's edge (SECURITY.md, boundary 7). Each is optional; these are the defaults.
[http]
# Largest request body, in bytes.
max_body_bytes = 262144
# A client must send a request's headers within this many seconds of the connection opening
# or of its previous response (so it is also the idle keep-alive time), ...
header_timeout_seconds = 10
# ... its body within this many seconds ...
body_timeout_seconds = 30
# ... and get its answer within this many (else 408 or 503, and the connection closes).
request_timeout_seconds = 60
# Open connections at most (more wait to be accepted), and requests handled at once.
max_connections = 1024
max_requests_in_flight = 256
# Requests whose token is missing, wrong or expired, per client address and minute; past
# it, 429 before the token is even looked up.
unauthenticated_per_minute = 30
"#;

/// Settings files written by `cvvault init` where missing.
pub const DEFAULT_FILES: &[(&str, &str)] = &[
    ("retention.toml", DEFAULT_RETENTION),
    ("limits.toml", DEFAULT_LIMITS),
];

/// `policy/retention.toml`.
#[derive(Clone, Debug, Deserialize, serde::Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Retention {
    /// Days after the last assignment closes.
    pub grace_after_close_days: u32,
    /// Days without any open assignment.
    pub max_idle_days: u32,
    /// Days since registration.
    pub max_life_days: u32,
}

/// `policy/limits.toml`.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Extract quota.
    pub extract: Quota,
    /// HTTP limits.
    pub http: HttpLimits,
}

/// A quota: at most `extracts` per `window_seconds`.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Quota {
    /// Extracts allowed in the window.
    pub extracts: u32,
    /// Window length.
    pub window_seconds: u64,
}

/// HTTP limits.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct HttpLimits {
    /// Largest request body.
    pub max_body_bytes: usize,
    /// Seconds to send a request's headers (from the connection's start or the previous
    /// response: also the idle keep-alive time).
    #[serde(default = "default_header_timeout")]
    pub header_timeout_seconds: u64,
    /// Seconds to send a request's body.
    #[serde(default = "default_body_timeout")]
    pub body_timeout_seconds: u64,
    /// Seconds for the whole request, answer included.
    #[serde(default = "default_request_timeout")]
    pub request_timeout_seconds: u64,
    /// Connections open at once.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// Requests handled at once (each holds at most one blocking-pool thread).
    #[serde(default = "default_max_in_flight")]
    pub max_requests_in_flight: usize,
    /// Failed or missing authentications per client address per minute.
    #[serde(default = "default_unauthenticated")]
    pub unauthenticated_per_minute: u32,
}

fn default_header_timeout() -> u64 {
    10
}
fn default_body_timeout() -> u64 {
    30
}
fn default_request_timeout() -> u64 {
    60
}
fn default_max_connections() -> usize {
    1024
}
fn default_max_in_flight() -> usize {
    256
}
fn default_unauthenticated() -> u32 {
    30
}

fn parse<T: for<'de> Deserialize<'de>>(file: &str, text: &str) -> Result<T> {
    toml::from_str(text).map_err(|e| Error::InvalidSettings {
        file: file.to_owned(),
        message: e.to_string().trim().replace('\n', " "),
    })
}

fn load<T: for<'de> Deserialize<'de>>(path: &Path, default: &str) -> Result<T> {
    let name = path.display().to_string();
    match std::fs::read_to_string(path) {
        Ok(text) => parse(&name, &text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => parse(&name, default),
        Err(e) => Err(Error::io(path, e)),
    }
}

impl Retention {
    /// Reads `retention.toml`; a missing file means the defaults.
    pub fn load(path: &Path) -> Result<Retention> {
        load(path, DEFAULT_RETENTION).and_then(Retention::checked)
    }

    /// Parses settings text (tests).
    pub fn parse(text: &str) -> Result<Retention> {
        parse("retention.toml", text).and_then(Retention::checked)
    }

    /// Refuses `max_idle_days = 0` and `max_life_days = 0`: zero does not mean "no limit", it
    /// makes every candidate due at the next run, even with an assignment open.
    fn checked(self) -> Result<Retention> {
        for (name, days) in [
            ("max_idle_days", self.max_idle_days),
            ("max_life_days", self.max_life_days),
        ] {
            if days == 0 {
                return Err(Error::InvalidSettings {
                    file: "retention.toml".into(),
                    message: format!(
                        "{name} = 0 would erase every candidate at the next retention run (0 is not \"no limit\"): give the number of days, at least 1"
                    ),
                });
            }
        }
        Ok(self)
    }
}

impl Limits {
    /// Reads `limits.toml`; a missing file means the defaults.
    pub fn load(path: &Path) -> Result<Limits> {
        load(path, DEFAULT_LIMITS).and_then(Limits::checked)
    }

    /// Parses settings text (tests).
    pub fn parse(text: &str) -> Result<Limits> {
        parse("limits.toml", text).and_then(Limits::checked)
    }

    /// Refuses a zero bound, which would refuse every request or close every connection.
    fn checked(self) -> Result<Limits> {
        let http = &self.http;
        let zero = [
            ("max_body_bytes", http.max_body_bytes == 0),
            ("header_timeout_seconds", http.header_timeout_seconds == 0),
            ("body_timeout_seconds", http.body_timeout_seconds == 0),
            ("request_timeout_seconds", http.request_timeout_seconds == 0),
            ("max_connections", http.max_connections == 0),
            ("max_requests_in_flight", http.max_requests_in_flight == 0),
            (
                "unauthenticated_per_minute",
                http.unauthenticated_per_minute == 0,
            ),
        ];
        if let Some((name, _)) = zero.iter().find(|(_, is_zero)| *is_zero) {
            return Err(Error::InvalidSettings {
                file: "limits.toml".into(),
                message: format!(
                    "[http] {name} must be at least 1: a zero bound would refuse every request"
                ),
            });
        }
        Ok(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_parse() {
        let r = Retention::parse(DEFAULT_RETENTION).unwrap();
        assert_eq!(
            (r.grace_after_close_days, r.max_idle_days, r.max_life_days),
            (0, 30, 1095)
        );
        let l = Limits::parse(DEFAULT_LIMITS).unwrap();
        assert_eq!(l.extract.extracts, 100);
    }

    #[test]
    fn unknown_and_missing_keys_are_refused_with_the_file_named() {
        let err = Retention::parse(
            "grace_after_close_days = 0\nmax_idle_days = 30\nmax_life_days = 9\nmax_lyfe = 1\n",
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("retention.toml") && err.contains("max_lyfe"),
            "{err}"
        );
        assert!(Retention::parse("grace_after_close_days = 0\n").is_err());
        assert!(Retention::parse(
            "grace_after_close_days = -1\nmax_idle_days = 30\nmax_life_days = 9\n"
        )
        .is_err());
    }
}
