//! `cvvault init`.

use std::path::PathBuf;
use std::process::ExitCode;

use age::secrecy::SecretString;
use clap::Args;

use super::Context;
use crate::error::{Error, Result};
use crate::vault::{InitOptions, Vault};

/// Create a new vault. Refuses to overwrite an existing keyring or database.
#[derive(Args, Debug)]
pub struct InitArgs {
    /// Protect the keyring with a passphrase (read from CVVAULT_PASSPHRASE, else one line of
    /// standard input) instead of generating keys/identity.txt.
    #[arg(long)]
    pub passphrase: bool,
    /// Encrypt the keyring to this existing age identity instead of generating one.
    #[arg(long, value_name = "FILE", conflicts_with = "passphrase")]
    pub identity: Option<PathBuf>,
    /// Also encrypt the keyring to this age recipient (an offline recovery key). Repeatable.
    #[arg(long = "recovery-recipient", value_name = "age1...")]
    pub recovery_recipients: Vec<String>,
}

pub fn run(ctx: &Context, args: InitArgs) -> Result<ExitCode> {
    let passphrase = if args.passphrase {
        let text = match std::env::var("CVVAULT_PASSPHRASE") {
            Ok(p) if !p.is_empty() => p,
            _ => {
                let mut line = String::new();
                std::io::stdin()
                    .read_line(&mut line)
                    .map_err(|e| Error::io("standard input", e))?;
                line.trim_end_matches(['\r', '\n']).to_owned()
            }
        };
        if text.chars().count() < 12 {
            return Err(Error::invalid_input(
                "the passphrase must be at least 12 characters: set CVVAULT_PASSPHRASE or type it on standard input",
            ));
        }
        Some(SecretString::from(text))
    } else {
        None
    };
    let report = Vault::init(
        &ctx.paths,
        InitOptions {
            passphrase,
            identity: args.identity,
            recovery_recipients: args.recovery_recipients,
        },
    )?;
    let json = serde_json::json!({
        "keyring": report.keyring,
        "identity_created": report.identity_created,
        "database": report.database,
        "policy_files_written": report.policy_files_written,
        "checkpoint_verifier_key": report.verifier_key,
    });
    let mut text = format!(
        "created keyring  {}\ncreated database {}\n",
        report.keyring.display(),
        report.database
    );
    if let Some(id) = &report.identity_created {
        text.push_str(&format!(
            "created identity {} (mode 0600): keep it secret and back it up offline\n",
            id.display()
        ));
    }
    for file in &report.policy_files_written {
        text.push_str(&format!("wrote policy     {}\n", file.display()));
    }
    text.push_str(&format!(
        "checkpoint verifier key (copy it off this machine):\n  {}",
        report.verifier_key
    ));
    ctx.print(&json, &text);
    Ok(ExitCode::SUCCESS)
}
