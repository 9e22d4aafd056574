//! `cvvault policy check | explain`.

use std::process::ExitCode;

use clap::Subcommand;

use super::Context;
use crate::error::{Error, Result};
use crate::ids::CandidateId;
use crate::policy::PolicyEngine;
use crate::vocabulary::Purpose;

#[derive(Subcommand, Debug)]
pub enum PolicyCommand {
    /// Parse and validate the policy files (Cedar strict mode) and settings; exit 15 if
    /// invalid.
    ///
    /// Also warns about valid policies a reviewer should look at twice: a permit that applies
    /// to any principal, action or resource, and a permit that would release special
    /// categories or protected candidates if the forbid files were removed. With --strict a
    /// warning fails the check too (exit 15), e.g. in CI before deploying policy changes.
    Check {
        /// Fail (exit 15) on warnings as well as on errors.
        #[arg(long)]
        strict: bool,
    },
    /// Explain, per field group, what a principal may see of a candidate for a purpose, and why.
    Explain {
        /// Candidate id.
        #[arg(long)]
        candidate: String,
        /// The declared purpose.
        #[arg(long)]
        purpose: String,
    },
}

pub fn run(ctx: &Context, cmd: PolicyCommand) -> Result<ExitCode> {
    match cmd {
        PolicyCommand::Check { strict } => {
            let engine = PolicyEngine::load_dir(&ctx.paths.policy_dir)?;
            crate::settings::Retention::load(&ctx.paths.retention_settings())?;
            crate::settings::Limits::load(&ctx.paths.limits_settings())?;
            let hash = hex::encode(engine.policy_hash());
            let warnings = engine.lint();
            let failed = strict && !warnings.is_empty();
            let mut text = String::new();
            for warning in &warnings {
                text.push_str(&format!(
                    "warning: {} ({}): {}\n",
                    warning.policy_id, warning.file, warning.message
                ));
            }
            let dir = ctx.paths.policy_dir.display();
            text.push_str(&if failed {
                format!(
                    "policy in {dir} is valid but has {} warning(s), and --strict makes them fail the check: fix the policies named above",
                    warnings.len()
                )
            } else if warnings.is_empty() {
                format!("policy in {dir} is valid (sha256:{hash})")
            } else {
                format!(
                    "policy in {dir} is valid (sha256:{hash}), with {} warning(s) above",
                    warnings.len()
                )
            });
            ctx.print(
                &serde_json::json!({
                    "valid": !failed,
                    "policy_hash": format!("sha256:{hash}"),
                    "warnings": warnings,
                }),
                &text,
            );
            Ok(if failed {
                ExitCode::from(15)
            } else {
                ExitCode::SUCCESS
            })
        }
        PolicyCommand::Explain { candidate, purpose } => {
            let candidate: CandidateId = candidate.parse()?;
            let purpose: Purpose = purpose.parse()?;
            let vault = ctx.open()?;
            let principal = ctx.acting(&vault)?;
            let explanation = vault.explain(&principal, &candidate, &purpose);
            let closed = vault.close();
            let explanation = explanation?;
            closed?;
            let json = serde_json::to_value(&explanation).map_err(|_| Error::Corrupt {
                what: "an explanation could not be encoded",
            })?;
            let text: Vec<String> = explanation.iter().map(|e| e.sentence.clone()).collect();
            ctx.print(&json, &text.join("\n"));
            Ok(ExitCode::SUCCESS)
        }
    }
}
