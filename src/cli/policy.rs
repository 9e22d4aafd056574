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
    /// Parse and validate the policy files (strict mode) and settings; non-zero exit if invalid.
    Check,
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
        PolicyCommand::Check => {
            let engine = PolicyEngine::load_dir(&ctx.paths.policy_dir)?;
            crate::settings::Retention::load(&ctx.paths.retention_settings())?;
            crate::settings::Limits::load(&ctx.paths.limits_settings())?;
            let hash = hex::encode(engine.policy_hash());
            ctx.print(
                &serde_json::json!({"valid": true, "policy_hash": format!("sha256:{hash}")}),
                &format!(
                    "policy in {} is valid (sha256:{hash})",
                    ctx.paths.policy_dir.display()
                ),
            );
            Ok(ExitCode::SUCCESS)
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
