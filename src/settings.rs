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

# Request body limit for the HTTP API, in bytes.
[http]
max_body_bytes = 262144
"#;

/// Settings files written by `cvvault init` where missing.
pub const DEFAULT_FILES: &[(&str, &str)] = &[
    ("retention.toml", DEFAULT_RETENTION),
    ("limits.toml", DEFAULT_LIMITS),
];

/// `policy/retention.toml`.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
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
        load(path, DEFAULT_RETENTION)
    }

    /// Parses settings text (tests).
    pub fn parse(text: &str) -> Result<Retention> {
        parse("retention.toml", text)
    }
}

impl Limits {
    /// Reads `limits.toml`; a missing file means the defaults.
    pub fn load(path: &Path) -> Result<Limits> {
        load(path, DEFAULT_LIMITS)
    }

    /// Parses settings text (tests).
    pub fn parse(text: &str) -> Result<Limits> {
        parse("limits.toml", text)
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
