//! `cvvault token issue | revoke | list`: bearer tokens for the HTTP API (operator actions).

use std::process::ExitCode;

use clap::Subcommand;

use super::Context;
use crate::clock::rfc3339;
use crate::error::Result;
use crate::ids::PrincipalId;
use crate::vault::Vault;

#[derive(Subcommand, Debug)]
pub enum TokenCommand {
    /// Issue a bearer token for a principal. The token is printed once, on standard output;
    /// only its SHA-256 is stored. Send it as `Authorization: Bearer <token>`.
    Issue {
        /// The principal the token authenticates.
        #[arg(long)]
        principal: String,
    },
    /// Revoke a token by its id (the 16 hex digits after `cvv_`); effective immediately.
    Revoke {
        /// Token id, as `token list` shows it.
        token_id: String,
    },
    /// List tokens: ids, principals, times. Never a secret.
    List,
}

pub fn run(ctx: &Context, vault: &Vault, cmd: TokenCommand) -> Result<ExitCode> {
    match cmd {
        TokenCommand::Issue { principal } => {
            let principal: PrincipalId = principal.parse()?;
            let issued = vault.issue_token(&principal)?;
            if ctx.json {
                let json = serde_json::json!({
                    "token_id": issued.token_id,
                    "principal_id": issued.principal_id,
                    "token": issued.token.as_str(),
                });
                println!("{json}");
            } else {
                // The token alone on standard output, so that `$(cvvault token issue ...)` works.
                println!("{}", issued.token.as_str());
                eprintln!(
                    "issued token {} for {}: it is shown only now; store it in a secret store (revoke with `cvvault token revoke {}`)",
                    issued.token_id, issued.principal_id, issued.token_id
                );
            }
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
            let text: Vec<String> = tokens
                .iter()
                .map(|t| {
                    format!(
                        "{}  {:<24} issued {}{}",
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
