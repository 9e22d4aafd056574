//! `cvvault extract`: the only way data leaves the vault.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use super::Context;
use crate::crypto::extract::encrypt_to_recipient_file;
use crate::crypto::keyring::write_private_file;
use crate::error::{Error, Result};
use crate::ids::{CandidateId, PrincipalId};
use crate::model::Purpose;
use crate::vault::Vault;

/// Request a decrypted extract: exactly the field groups policy permits the principal.
/// Written to a file it is age-encrypted to the principal's own key in
/// keys/recipients/<principal>.txt; plaintext files only with --plaintext.
#[derive(Args, Debug)]
pub struct ExtractArgs {
    /// Candidate id.
    #[arg(long)]
    pub candidate: String,
    /// The declared purpose (e.g. coaching, recruitment).
    #[arg(long)]
    pub purpose: String,
    /// Write the extract to this file, encrypted to the principal's age recipient.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// With --out: write plaintext JSON instead (the file is then yours to protect).
    #[arg(long, requires = "out")]
    pub plaintext: bool,
}

pub fn run(ctx: &Context, vault: &Vault, args: ExtractArgs) -> Result<ExitCode> {
    let principal = ctx.acting(vault)?;
    let candidate: CandidateId = args.candidate.parse()?;
    let purpose: Purpose = args.purpose.parse()?;
    // Check that the extract can travel before anything is disclosed.
    let recipient = recipient_path(vault, &principal.principal_id);
    if args.out.is_some() && !args.plaintext && !recipient.exists() {
        return Err(Error::invalid_input(format!(
            "no age recipient for {} at {}: save the principal's public key (age1...) there, or use --plaintext",
            principal.principal_id,
            recipient.display()
        )));
    }
    let extract = vault.extract(&principal, &candidate, &purpose)?;
    match args.out {
        None => {
            let mut out = std::io::stdout().lock();
            out.write_all(&extract.json)
                .map_err(|e| Error::io("standard output", e))?;
            out.write_all(b"\n")
                .map_err(|e| Error::io("standard output", e))?;
        }
        Some(path) => {
            let bytes = if args.plaintext {
                extract.json.to_vec()
            } else {
                encrypt_to_recipient_file(&recipient, &extract.json)?
            };
            write_private_file(&path, &bytes)?;
            let groups: Vec<String> = extract.groups.iter().map(|g| g.to_string()).collect();
            ctx.print(
                &serde_json::json!({"out": path, "encrypted": !args.plaintext, "groups": groups, "audit_index": extract.audit_index}),
                &format!(
                    "wrote {} ({}; groups: {})",
                    path.display(),
                    if args.plaintext { "plaintext" } else { "age-encrypted to the principal's key" },
                    groups.join(", ")
                ),
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn recipient_path(vault: &Vault, principal: &PrincipalId) -> PathBuf {
    vault.paths().principal_recipient(principal)
}
