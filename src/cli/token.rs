//! `cvvault token issue | rotate | revoke | list`: bearer tokens for the HTTP API (operator
//! actions).

use std::process::ExitCode;

use clap::Subcommand;

use super::Context;
use crate::clock::rfc3339;
use crate::error::Result;
use crate::ids::PrincipalId;
use crate::vault::{parse_ttl, Vault};

#[derive(Subcommand, Debug)]
pub enum TokenCommand {
    /// Issue a bearer token for a principal. The token is printed once, on standard output;
    /// only a keyed hash of it is stored. Send it as `Authorization: Bearer <token>`.
    ///
    /// Every token expires (default 30 days, at most 365): issue its successor with `token
    /// rotate` before then.
    Issue {
        /// The principal the token authenticates.
        #[arg(long)]
        principal: String,
        /// How long the token lives: e.g. 30d, 12h, 90m, 2w.
        #[arg(long, default_value = "30d", value_name = "DURATION")]
        ttl: String,
    },
    /// Issue the successor of a token (same principal) before it lapses; the old one keeps
    /// working until it expires, so the client can switch without a gap. Revoke the old one
    /// once the client uses the new one.
    Rotate {
        /// The id of the token to succeed, as `token list` shows it.
        token_id: String,
        /// How long the successor lives.
        #[arg(long, default_value = "30d", value_name = "DURATION")]
        ttl: String,
    },
    /// Revoke a token by its id (the 16 hex digits after `cvv_`); effective immediately.
    Revoke {
        /// Token id, as `token list` shows it.
        token_id: String,
    },
    /// List tokens: ids, principals, issue and expiry times, revocations. Never a secret.
    List,
}

/// Prints a token just issued: alone on standard output (so that `$(cvvault token issue ...)`
/// works), what it is on standard error.
fn print_issued(ctx: &Context, issued: &crate::vault::IssuedToken, what: &str) {
    if ctx.json {
        let json = serde_json::json!({
            "token_id": issued.token_id,
            "principal_id": issued.principal_id,
            "token": issued.token.as_str(),
            "expires_at": rfc3339(issued.expires_at),
        });
        println!("{json}");
    } else {
        println!("{}", issued.token.as_str());
        eprintln!(
            "{what} token {} for {}, valid until {}: it is shown only now; store it in a secret store (revoke with `cvvault token revoke {}`, rotate before it lapses with `cvvault token rotate {}`)",
            issued.token_id,
            issued.principal_id,
            rfc3339(issued.expires_at),
            issued.token_id,
            issued.token_id
        );
    }
}

pub fn run(ctx: &Context, vault: &Vault, cmd: TokenCommand) -> Result<ExitCode> {
    match cmd {
        TokenCommand::Issue { principal, ttl } => {
            let principal: PrincipalId = principal.parse()?;
            let ttl = parse_ttl(&ttl)?;
            let issued = vault.issue_token_for(&principal, ttl, None)?;
            print_issued(ctx, &issued, "issued");
        }
        TokenCommand::Rotate { token_id, ttl } => {
            let ttl = parse_ttl(&ttl)?;
            let issued = vault.rotate_token(&token_id, ttl)?;
            print_issued(
                ctx,
                &issued,
                &format!("rotated {token_id}: issued its successor"),
            );
        }
        TokenCommand::Revoke { token_id } => {
            vault.revoke_token(&token_id)?;
            ctx.print(
                &serde_json::json!({ "revoked": token_id }),
                &format!("revoked token {token_id}"),
            );
        }
        TokenCommand::List => {
            let tokens = vault.list_tokens()?;
            let json = serde_json::to_value(&tokens).unwrap_or_default();
            let now = vault.now();
            let text: Vec<String> = tokens
                .iter()
                .map(|t| {
                    let expiry = match t.expires_at {
                        Some(at) if at <= now => format!("  EXPIRED {}", rfc3339(at)),
                        Some(at) => format!("  expires {}", rfc3339(at)),
                        None => "  EXPIRED (issued before tokens expired)".to_owned(),
                    };
                    format!(
                        "{}  {:<24} issued {}{expiry}{}",
                        t.token_id,
                        t.principal_id,
                        rfc3339(t.created_at),
                        t.revoked_at
                            .map(|r| format!("  revoked {}", rfc3339(r)))
                            .unwrap_or_default()
                    )
                })
                .collect();
            ctx.print(&json, &text.join("\n"));
        }
    }
    Ok(ExitCode::SUCCESS)
}
