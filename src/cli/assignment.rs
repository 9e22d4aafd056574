//! `cvvault assignment open | close | list`.

use std::process::ExitCode;

use clap::Subcommand;

use super::Context;
use crate::clock::rfc3339;
use crate::error::Result;
use crate::ids::{AssignmentId, CandidateId, OrgId};
use crate::vault::{OpenAssignment, Vault};

#[derive(Subcommand, Debug)]
pub enum AssignmentCommand {
    /// Open an assignment linking an organisation to a candidate, for a purpose. The purpose
    /// binds: the organisation may read the candidate for that purpose only. The default
    /// policy (policy/assignment-kinds.cedar) allows exactly two shapes:
    ///   --kind coaching --purpose coaching     --org <a provider's organisation>
    ///   --kind matching --purpose recruitment  --org <an employer's organisation>
    /// Purposes are declared in policy/vault.cedarschema (entity Purpose); an organisation's
    /// kind is that of the principals registered for it.
    #[command(verbatim_doc_comment)]
    Open {
        /// Candidate id.
        #[arg(long)]
        candidate: String,
        /// The provider's or employer's organisation.
        #[arg(long)]
        org: String,
        /// coaching (a provider) or matching (an employer).
        #[arg(long)]
        kind: String,
        /// coaching (with --kind coaching) or recruitment (with --kind matching).
        #[arg(long)]
        purpose: String,
    },
    /// Close an open assignment. When a candidate's last assignment closes, retention
    /// erases the candidate after the grace period in policy/retention.toml.
    Close {
        /// Assignment id.
        id: String,
        /// Why it ends (no personal details), e.g. "placed in work".
        #[arg(long)]
        reason: String,
    },
    /// List a candidate's assignments.
    List {
        /// Candidate id.
        #[arg(long)]
        candidate: String,
    },
}

pub fn run(ctx: &Context, vault: &Vault, cmd: AssignmentCommand) -> Result<ExitCode> {
    let principal = ctx.acting(vault)?;
    match cmd {
        AssignmentCommand::Open {
            candidate,
            org,
            kind,
            purpose,
        } => {
            let request = OpenAssignment {
                candidate_id: candidate.parse::<CandidateId>()?,
                org: org.parse::<OrgId>()?,
                kind: kind.parse()?,
                purpose: purpose.parse()?,
            };
            let id = vault.open_assignment(&principal, request)?;
            ctx.print(&serde_json::json!({ "assignment_id": id }), &id.to_string());
        }
        AssignmentCommand::Close { id, reason } => {
            let id: AssignmentId = id.parse()?;
            vault.close_assignment(&principal, &id, &reason)?;
            ctx.print(
                &serde_json::json!({ "closed": id }),
                &format!("closed {id}"),
            );
        }
        AssignmentCommand::List { candidate } => {
            let candidate: CandidateId = candidate.parse()?;
            let list = vault.assignments(&principal, &candidate)?;
            let text: Vec<String> = list
                .iter()
                .map(|a| {
                    format!(
                        "{}  {:<8} {:<16} {:<12} opened {}  {}",
                        a.assignment_id,
                        a.kind,
                        a.org_id,
                        a.purpose,
                        rfc3339(a.opened_at),
                        a.closed_at
                            .map(|t| format!("closed {}", rfc3339(t)))
                            .unwrap_or_else(|| "open".into())
                    )
                })
                .collect();
            let json = serde_json::to_value(&list).unwrap_or_default();
            ctx.print(&json, &text.join("\n"));
        }
    }
    Ok(ExitCode::SUCCESS)
}
