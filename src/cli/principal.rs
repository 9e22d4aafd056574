//! `cvvault principal add | list | disable | enable`.

use std::process::ExitCode;

use clap::Subcommand;

use super::Context;
use crate::error::Result;
use crate::ids::{CandidateId, OrgId, PrincipalId};
use crate::vault::Vault;
use crate::vocabulary::Role;

#[derive(Subcommand, Debug)]
pub enum PrincipalCommand {
    /// Register a principal. It may act only as policy allows (an employer sees nothing
    /// until an assignment links its organisation to a candidate).
    Add {
        /// Principal id (letters, digits, `-`, `_`, `.`, `@`). Left out for --role subject:
        /// a subject's id is generated (it must be no personal data) and printed.
        id: Option<String>,
        /// caseworker, provider, employer, dpo or subject.
        #[arg(long)]
        role: String,
        /// The organisation it belongs to.
        #[arg(long)]
        org: String,
        /// For --role subject: the candidate this person is.
        #[arg(long)]
        candidate: Option<String>,
    },
    /// List principals.
    List,
    /// Disable a principal: every request by it is refused from now on.
    Disable {
        /// Principal id.
        id: String,
    },
    /// Enable a disabled principal again.
    Enable {
        /// Principal id.
        id: String,
    },
}

pub fn run(ctx: &Context, vault: &Vault, cmd: PrincipalCommand) -> Result<ExitCode> {
    match cmd {
        PrincipalCommand::Add {
            id,
            role,
            org,
            candidate,
        } => {
            let role: Role = role.parse()?;
            let org: OrgId = org.parse()?;
            let candidate = candidate.map(|c| c.parse::<CandidateId>()).transpose()?;
            let id = match (role, id, candidate) {
                (Role::Subject, None, Some(candidate)) => vault.add_subject(candidate, org.clone())?,
                (Role::Subject, Some(given), _) if !given.parse::<PrincipalId>().is_ok_and(|id| id.is_generated_subject()) => {
                    return Err(crate::Error::invalid_input(format!(
                        "`{}` cannot name a subject: a subject's id is generated so that it is no personal data. Leave the id out: `cvvault principal add --role subject --org {org} --candidate ID`",
                        crate::ids::printable(&given)
                    )))
                }
                (Role::Subject, None, None) => {
                    return Err(crate::Error::invalid_input(format!(
                        "--role subject needs the candidate this person is: `cvvault principal add --role subject --org {org} --candidate ID`"
                    )))
                }
                (_, None, _) if role != Role::Subject => {
                    return Err(crate::Error::invalid_input(
                        "principal add needs an ID (e.g. `cvvault principal add emp1 --role employer --org acme-ab`)",
                    ))
                }
                (_, id, candidate) => {
                    let id: PrincipalId = id.unwrap_or_default().parse()?;
                    vault.add_principal(id.clone(), role, org.clone(), candidate)?;
                    id
                }
            };
            // A subject's id is generated: alone on standard output, so that
            // `ID=$(cvvault principal add --role subject ...)` captures it.
            if role == Role::Subject && !ctx.json {
                println!("{id}");
                eprintln!("added subject {id} of {org}: give this id to the candidate, with a token (`cvvault token issue --principal {id}`)");
            } else {
                ctx.print(
                    &serde_json::json!({"principal_id": id, "role": role, "org": org}),
                    &format!("added {role} {id} of {org}"),
                );
            }
        }
        PrincipalCommand::List => {
            let list = vault.list_principals()?;
            let json: Vec<_> = list
                .iter()
                .map(|p| serde_json::json!({"principal_id": p.principal_id, "role": p.role, "org": p.org_id, "disabled": p.disabled}))
                .collect();
            let text: Vec<String> = list
                .iter()
                .map(|p| {
                    format!(
                        "{:<24} {:<11} {:<20}{}",
                        p.principal_id,
                        p.role,
                        p.org_id,
                        if p.disabled { " (disabled)" } else { "" }
                    )
                })
                .collect();
            ctx.print(&serde_json::Value::Array(json), &text.join("\n"));
        }
        PrincipalCommand::Disable { id } => {
            let id: PrincipalId = id.parse()?;
            vault.set_principal_disabled(&id, true)?;
            ctx.print(
                &serde_json::json!({"disabled": id}),
                &format!("disabled {id}"),
            );
        }
        PrincipalCommand::Enable { id } => {
            let id: PrincipalId = id.parse()?;
            vault.set_principal_disabled(&id, false)?;
            ctx.print(
                &serde_json::json!({"enabled": id}),
                &format!("enabled {id}"),
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
