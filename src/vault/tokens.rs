//! API bearer tokens: issued and revoked by the operator, stored only as a keyed hash.
//!
//! A token reads `cvv_<token_id>_<secret>`: 16 hex digits that name it (in `token list`, in
//! the audit trail) and 64 hex digits (256 bits) from the operating system's CSPRNG. The store
//! keeps `HMAC-SHA256(integrity key, frame("cvvault/token/v1", SHA-256(token)))` under a
//! unique index and authentication is one lookup of that hash: no stored value is compared
//! byte by byte with the secret, so there is no timing side channel on it; a copy of the
//! database does not hold a usable token; and a database writer without the keyring cannot
//! mint one by inserting the hash of a token it chose. The row itself carries a MAC (see
//! `store::rows`), so a token cannot be re-pointed at another principal or un-revoked.

use zeroize::Zeroizing;

use super::{new_request_id, Vault};
use crate::audit::entry::Outcome;
use crate::audit::log::{Actor, Record};
use crate::error::{Error, Result};
use crate::ids::PrincipalId;
use crate::policy::PrincipalFacts;
use crate::store::rows::{self, TokenRow};

/// The prefix every token starts with (so that a leaked one is recognisable by scanners).
pub const TOKEN_PREFIX: &str = "cvv_";
/// Hex digits of a token id.
const ID_HEX: usize = 16;
/// Hex digits of a token's secret part.
const SECRET_HEX: usize = 64;
/// How long a token lives unless told otherwise: 30 days (SECURITY.md, boundary 7, says why).
pub const DEFAULT_TOKEN_TTL_SECS: i64 = 30 * 86_400;
/// The longest lifetime a token may be given: a year.
pub const MAX_TOKEN_TTL_SECS: i64 = 365 * 86_400;

/// A token lifetime written as `30d`, `12h`, `90m`, `2w` or `3600s`, in seconds; from a
/// minute to [`MAX_TOKEN_TTL_SECS`].
pub fn parse_ttl(text: &str) -> Result<i64> {
    let bad = || {
        Error::invalid_input(format!(
            "`{}` is not a token lifetime: write a number and a unit, e.g. 30d, 12h, 90m or 2w (at most 365d)",
            crate::ids::printable(text)
        ))
    };
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
    let (number, unit) = text.split_at(split);
    let number: i64 = number.parse().map_err(|_| bad())?;
    let unit = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        _ => return Err(bad()),
    };
    let secs = number.checked_mul(unit).ok_or_else(bad)?;
    check_ttl(secs)?;
    Ok(secs)
}

/// The one rule on token lifetimes: from a minute to [`MAX_TOKEN_TTL_SECS`].
fn check_ttl(secs: i64) -> Result<()> {
    if (60..=MAX_TOKEN_TTL_SECS).contains(&secs) {
        Ok(())
    } else {
        Err(Error::invalid_input(
            "a token lifetime must be from 1 minute to 365 days: a token that outlives a year is one nobody remembers to rotate",
        ))
    }
}

/// A token just issued. The token itself exists only here, once; it has no `Debug`.
pub struct IssuedToken {
    /// The public name of the token.
    pub token_id: String,
    /// Whom it authenticates.
    pub principal_id: PrincipalId,
    /// `cvv_<token_id>_<secret>`: show it once, never store or log it.
    pub token: Zeroizing<String>,
    /// When it stops authenticating (Unix seconds).
    pub expires_at: i64,
}

/// The token id of a well-formed token, `None` for anything else.
fn token_id_of(token: &str) -> Option<&str> {
    let rest = token.strip_prefix(TOKEN_PREFIX)?;
    let (id, secret) = rest.split_once('_')?;
    let hex = |s: &str, len: usize| {
        s.len() == len && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    };
    (hex(id, ID_HEX) && hex(secret, SECRET_HEX)).then_some(id)
}

fn valid_token_id(token_id: &str) -> Result<()> {
    if token_id.len() == ID_HEX
        && token_id
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    {
        Ok(())
    } else if let Some(id) = token_id_of(token_id) {
        // A whole token: its secret part is never echoed.
        Err(Error::invalid_input(format!(
            "that is a whole token, not a token id: keep the token secret (it is in your shell history now); its id is {id}"
        )))
    } else if token_id.starts_with(TOKEN_PREFIX) {
        Err(Error::invalid_input(
            "that looks like (part of) a token, not a token id: a token id is the 16 hex digits after `cvv_`, as the token list shows them",
        ))
    } else {
        Err(Error::invalid_input(format!(
            "`{}` is not a token id: it is the 16 hex digits after `cvv_`, as the token list shows them",
            crate::ids::printable(token_id)
        )))
    }
}

impl Vault {
    /// Issues a bearer token for a registered principal that lives
    /// [`DEFAULT_TOKEN_TTL_SECS`] (an operator action, audited).
    pub fn issue_token(&self, principal_id: &PrincipalId) -> Result<IssuedToken> {
        self.issue_token_for(principal_id, DEFAULT_TOKEN_TTL_SECS, None)
    }

    /// Issues a successor of a token: a new token for the same principal, while the old one
    /// keeps working until it expires (or is revoked), so that a client can switch without a
    /// gap. An operator action, audited with both ids.
    pub fn rotate_token(&self, token_id: &str, ttl_secs: i64) -> Result<IssuedToken> {
        valid_token_id(token_id)?;
        let old = self
            .readers()
            .read(|conn| rows::token(conn, self.integrity(), token_id))?
            .ok_or_else(|| {
                Error::invalid_input(format!(
                    "unknown token id `{token_id}`: see `cvvault token list`"
                ))
            })?;
        if old.revoked_at.is_some() {
            return Err(Error::Conflict(format!(
                "token {token_id} is revoked: issue a new token for {} instead of rotating it",
                old.principal_id
            )));
        }
        self.issue_token_for(&old.principal_id, ttl_secs, Some(token_id))
    }

    /// Issues a token for `principal_id` that lives `ttl_secs`, as the successor of
    /// `predecessor` if given.
    pub fn issue_token_for(
        &self,
        principal_id: &PrincipalId,
        ttl_secs: i64,
        predecessor: Option<&str>,
    ) -> Result<IssuedToken> {
        check_ttl(ttl_secs)?;
        let known = self
            .readers()
            .read(|conn| rows::principal(conn, self.integrity(), principal_id))?;
        let Some(known) = known else {
            return Err(Error::UnknownPrincipal {
                principal: principal_id.to_string(),
            });
        };
        let token_id = hex::encode(*crate::crypto::random_secret::<{ ID_HEX / 2 }>()?);
        let secret = crate::crypto::random_secret::<{ SECRET_HEX / 2 }>()?;
        let token = Zeroizing::new(format!("{TOKEN_PREFIX}{token_id}_{}", hex::encode(*secret)));
        let hash = self.integrity().token_hash(&token);
        let (id, principal) = (token_id.clone(), principal_id.clone());
        let name = self.audit_name(principal_id, Some(known.role));
        let predecessor = predecessor.map(str::to_owned);
        let expires_at = self.writer().write(move |ctx| {
            let now = ctx.audit.now();
            let expires_at = now.saturating_add(ttl_secs);
            rows::insert_token(
                ctx.conn,
                ctx.integrity,
                &id,
                &principal,
                &hash,
                (now, expires_at),
            )?;
            let (action, note) = match &predecessor {
                Some(old) => (
                    "token.rotate",
                    format!(
                        "token_id={id} principal={name} expires={expires_at} successor_of={old}"
                    ),
                ),
                None => (
                    "token.issue",
                    format!("token_id={id} principal={name} expires={expires_at}"),
                ),
            };
            let record = super::operator_entry(action, note);
            ctx.audit.append(record).map(|_| expires_at)
        })?;
        Ok(IssuedToken {
            token_id,
            principal_id: principal_id.clone(),
            token,
            expires_at,
        })
    }

    /// Revokes a token by its id (an operator action, audited). Takes effect at the next
    /// request: every request looks its token up.
    pub fn revoke_token(&self, token_id: &str) -> Result<()> {
        valid_token_id(token_id)?;
        let id = token_id.to_owned();
        self.writer().write(move |ctx| {
            match rows::token(ctx.conn, ctx.integrity, &id)? {
                None => {
                    return Err(Error::invalid_input(format!(
                        "unknown token id `{id}`: see `cvvault token list`"
                    )))
                }
                Some(row) if row.revoked_at.is_some() => {
                    return Err(Error::Conflict(format!(
                        "token {id} is already revoked: nothing to do"
                    )))
                }
                Some(_) => {}
            }
            rows::revoke_token(ctx.conn, ctx.integrity, &id, ctx.audit.now())?;
            let record = super::operator_entry("token.revoke", format!("token_id={id}"));
            ctx.audit.append(record).map(|_| ())
        })
    }

    /// Records a refused authentication of an issued token (`note` names it by its id, never
    /// its secret), by an actor nobody is yet.
    fn record_failed_authentication(&self, note: String) -> Result<()> {
        let mut record = Record::new(
            "authenticate",
            &Actor {
                id: "unauthenticated".into(),
                role: "none".into(),
                org: None,
            },
            Outcome::Deny,
            &new_request_id(),
        );
        record.note = Some(note);
        self.record(record)
    }

    /// Every token (ids, principals, times; never a secret).
    pub fn list_tokens(&self) -> Result<Vec<TokenRow>> {
        self.readers()
            .read(|conn| rows::tokens(conn, self.integrity()))
    }

    /// Authenticates a bearer token: well-formed, issued, not revoked, not expired, and its
    /// principal registered and enabled, with both rows intact (their MACs check). Every
    /// failure to identify is [`Error::Unauthenticated`], a forged row included (it is
    /// logged, and `audit verify` names it); an expired token is [`Error::TokenExpired`],
    /// decided before its principal is looked at (so it says nothing about the principal);
    /// a disabled principal is [`Error::PrincipalDisabled`].
    pub fn authenticate(&self, token: &str) -> Result<PrincipalFacts> {
        let Some(token_id) = token_id_of(token) else {
            return Err(Error::Unauthenticated);
        };
        let hash = self.integrity().token_hash(token);
        // One statement: the token and its principal.
        let found = self.readers().autocommit(|conn| {
            match rows::token_and_principal_by_hash(conn, self.integrity(), &hash) {
                Ok(Some((token, _))) if token.expired(self.now()) => Err(Error::TokenExpired {
                    token_id: token.token_id,
                    expired_at: token
                        .expires_at
                        .map(crate::clock::rfc3339)
                        .unwrap_or_else(|| "its issue".into()),
                }),
                Ok(Some((token, principal))) => match principal.transpose() {
                    Ok(row) => Ok(Some((token.token_id, row))),
                    Err(Error::Forged { .. }) => Ok(None),
                    Err(e) => Err(e),
                },
                Ok(None) | Err(Error::Forged { .. }) => Ok(None),
                Err(e) => Err(e),
            }
        });
        let found = match found {
            Err(Error::TokenExpired {
                token_id,
                expired_at,
            }) => {
                // On the record under its id, like a wrong secret: an expired token still in
                // use is a client that missed its rotation, or a leaked token being tried.
                self.record_failed_authentication(format!("expired-token token_id={token_id}"))?;
                return Err(Error::TokenExpired {
                    token_id,
                    expired_at,
                });
            }
            other => other?,
        };
        match found {
            // The hash covers the id, so a match on another id cannot happen; checked anyway.
            Some((stored_id, Some(row))) if stored_id == token_id => {
                if row.disabled {
                    let facts = PrincipalFacts {
                        principal_id: row.principal_id.clone(),
                        role: row.role,
                        org: row.org_id.clone(),
                        subject_of: row.subject_of,
                    };
                    return Err(self.refuse_disabled(&facts)?);
                }
                Ok(PrincipalFacts {
                    principal_id: row.principal_id,
                    role: row.role,
                    org: row.org_id,
                    subject_of: row.subject_of,
                })
            }
            _ => {
                // A well-formed token that names an issued token but does not open it (a wrong
                // or revoked secret, a forged row): on the record, under its id, never the
                // secret. An id that names no token costs a read, not an entry: random
                // guesses must not be able to grow the trail or queue behind the writer.
                let issued = self.readers().read(|conn| {
                    match rows::token(conn, self.integrity(), token_id) {
                        Ok(row) => Ok(row.is_some()),
                        Err(Error::Forged { .. }) => Ok(true),
                        Err(e) => Err(e),
                    }
                })?;
                if !issued {
                    return Err(Error::Unauthenticated);
                }
                self.record_failed_authentication(format!("unknown-token token_id={token_id}"))?;
                Err(Error::Unauthenticated)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_well_formed_tokens_are_looked_up() {
        let id = "0123456789abcdef";
        let good = format!("cvv_{id}_{}", "a".repeat(64));
        assert_eq!(token_id_of(&good), Some(id));
        for bad in [
            String::new(),
            "cvv_".into(),
            format!("cvv_{id}"),
            format!("cvv_{id}_{}", "a".repeat(63)),
            format!("cvv_{id}_{}", "A".repeat(64)),
            format!("xyz_{id}_{}", "a".repeat(64)),
            format!("cvv_{}_{}", "g".repeat(16), "a".repeat(64)),
            format!("cvv_{id}_{}_", "a".repeat(64)),
        ] {
            assert_eq!(token_id_of(&bad), None, "{bad}");
        }
        assert!(valid_token_id(id).is_ok());
        assert!(valid_token_id("../etc").is_err());
    }
}
