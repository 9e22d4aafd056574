//! `cvvault extract`: the only way data leaves the vault.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use super::Context;
use crate::crypto::keyring::write_private_file;
use crate::error::{Error, Result};
use crate::ids::CandidateId;
use crate::vault::{Delivery, Vault};
use crate::vocabulary::Purpose;

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
    // The vault decides how the extract travels: encrypted to the principal's own key when it
    // is written to a file, unless the operator asked for plaintext.
    let delivery = if args.out.is_some() && !args.plaintext {
        Delivery::AgeToPrincipal
    } else {
        Delivery::Json
    };
    if let Some(path) = &args.out {
        super::output_folder_exists(path)?;
    }
    let extract = vault.deliver_extract(&principal, &candidate, &purpose, delivery)?;
    match args.out {
        None => {
            let mut out = std::io::stdout().lock();
            out.write_all(&extract.bytes)
                .map_err(|e| Error::io("standard output", e))?;
            out.write_all(b"\n")
                .map_err(|e| Error::io("standard output", e))?;
        }
        Some(path) => {
            write_private_file(&path, &extract.bytes)?;
            let groups: Vec<String> = extract.groups.iter().map(|g| g.to_string()).collect();
            ctx.print(
                &serde_json::json!({"out": path, "encrypted": extract.encrypted, "groups": groups, "audit_index": extract.audit_index}),
                &format!(
                    "wrote {} ({}; groups: {})",
                    path.display(),
                    if extract.encrypted { "age-encrypted to the principal's key" } else { "plaintext" },
                    groups.join(", ")
                ),
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
