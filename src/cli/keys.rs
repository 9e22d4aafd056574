//! `cvvault keys rotate | status | verify | recipients`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;

use super::{progress_bar, Context};
use crate::error::Result;
use crate::vault::{mirror_agrees, RotateIdentity, Vault};

#[derive(Subcommand, Debug)]
pub enum KeysCommand {
    /// Rotate the key-encryption key: add a new KEK, rewrap every DEK in batches, destroy the
    /// old KEK. One rotation runs at a time (a second exits 75); safe to interrupt: run it
    /// again to resume. The new keyring is written to the recipients the keyring records
    /// (see `keys recipients`), never to keys/keyring.recipients as edited.
    Rotate {
        /// Also replace the operator's identity with a fresh one (written over the identity
        /// file, mode 0600; recovery recipients stay). Old copies of the keyring left on disk,
        /// in backups or in freed blocks then open only with the old identity: destroy it.
        #[arg(long)]
        new_identity: bool,
    },
    /// Show KEK versions, how many DEKs each wraps, and whom the keyring is encrypted to.
    Status,
    /// Unwrap every stored DEK and check its commitment; list the key slots that fail.
    Verify,
    /// Show, or change, the age recipients the keyring is encrypted to.
    #[command(subcommand)]
    Recipients(RecipientsCommand),
}

#[derive(Subcommand, Debug)]
pub enum RecipientsCommand {
    /// List the recipients the keyring records, and whether keys/keyring.recipients
    /// mirrors them.
    List,
    /// Re-encrypt the keyring to the recipients in FILE (one `age1...` per line). The
    /// identity that unlocks it must be among them. Audited.
    Set {
        /// The recipients file, e.g. keys/keyring.recipients after a deliberate edit.
        file: PathBuf,
    },
}

pub fn run(ctx: &Context, vault: &Vault, cmd: KeysCommand) -> Result<ExitCode> {
    match cmd {
        KeysCommand::Rotate { new_identity } => {
            warn_if_mirror_differs(vault);
            let bar = progress_bar(0, "rewrapping");
            let identity = if new_identity {
                RotateIdentity::New
            } else {
                RotateIdentity::Keep
            };
            let report = vault.rotate_keys(&ctx.unlock(), identity, &|done, total| {
                bar.set_length(total);
                bar.set_position(done);
            })?;
            bar.finish_and_clear();
            let json = serde_json::to_value(&report).unwrap_or_default();
            let mut text = format!(
                "{}KEK version {} is current; {} DEKs rewrapped; destroyed versions {:?}",
                if report.resumed {
                    "resumed an interrupted rotation: "
                } else {
                    ""
                },
                report.new_version,
                report.rewrapped,
                report.retired
            );
            if let Some(path) = &report.new_identity {
                text.push_str(&format!(
                    "\nthe keyring now opens only with the new identity at {}: back it up offline, and destroy every copy of the old identity",
                    path.display()
                ));
            }
            ctx.print(&json, &text);
        }
        KeysCommand::Status => {
            let status = vault.keys_status()?;
            let json = serde_json::to_value(&status).unwrap_or_default();
            let mut text = format!(
                "current KEK version {}\nkeyring holds versions {:?}\n",
                status.current_kek_version, status.keyring_versions
            );
            for (version, count) in &status.deks_per_version {
                text.push_str(&format!("  v{version}: {count} DEKs\n"));
            }
            if status.rotation_pending {
                text.push_str(
                    "a rotation was interrupted: run `cvvault keys rotate` to finish it\n",
                );
            }
            ctx.print(&json, text.trim_end());
        }
        KeysCommand::Verify => {
            let bar = progress_bar(0, "unwrapping");
            let check = vault.verify_keys(&|done, total| {
                bar.set_length(total);
                bar.set_position(done);
            })?;
            bar.finish_and_clear();
            let json = serde_json::to_value(&check).unwrap_or_default();
            let text = if check.failed.is_empty() {
                format!("every data key opens: {} DEKs checked", check.ok)
            } else {
                format!(
                    "{} DEKs open; {} do not ({}): those candidates cannot be read. Restore keys/keyring.age and the database from a backup taken before the damage",
                    check.ok,
                    check.failed.len(),
                    check.failed.join(", ")
                )
            };
            ctx.print(&json, &text);
            if !check.failed.is_empty() {
                return Ok(ExitCode::from(18));
            }
        }
        KeysCommand::Recipients(RecipientsCommand::List) => {
            let status = vault.keys_status()?;
            let agrees = mirror_agrees(&vault.keyring(), &vault.paths().keyring_recipients());
            let json =
                serde_json::json!({"recipients": status.recipients, "mirror_agrees": agrees});
            let mut text = if status.recipients.is_empty() {
                "the keyring records no recipients (a passphrase keyring, or one made by an older cvvault: record them with `cvvault keys recipients set FILE`)".to_owned()
            } else {
                status.recipients.join("\n")
            };
            if !agrees {
                text.push_str(&format!(
                    "\nwarning: {} does not list the same recipients; it is only a mirror and is not used",
                    vault.paths().keyring_recipients().display()
                ));
            }
            ctx.print(&json, &text);
        }
        KeysCommand::Recipients(RecipientsCommand::Set { file }) => {
            let recipients = vault.set_recipients(&ctx.unlock(), &file)?;
            ctx.print(
                &serde_json::json!({"recipients": recipients}),
                &format!(
                    "the keyring is now encrypted to {} recipient(s):\n{}",
                    recipients.len(),
                    recipients.join("\n")
                ),
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn warn_if_mirror_differs(vault: &Vault) {
    if !mirror_agrees(&vault.keyring(), &vault.paths().keyring_recipients()) {
        eprintln!(
            "warning: {} does not list the recipients the keyring records; it is not used. To change recipients, run `cvvault keys recipients set FILE`",
            vault.paths().keyring_recipients().display()
        );
    }
}
