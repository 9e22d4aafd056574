//! `cvvault keys rotate | status`.

use std::process::ExitCode;

use clap::Subcommand;

use super::{progress_bar, Context};
use crate::error::Result;
use crate::vault::Vault;

#[derive(Subcommand, Debug)]
pub enum KeysCommand {
    /// Rotate the key-encryption key: add a new version, rewrap every DEK in batches, destroy
    /// the old version. Safe to interrupt: run it again to resume.
    Rotate,
    /// Show KEK versions and how many DEKs each wraps.
    Status,
}

pub fn run(ctx: &Context, vault: &Vault, cmd: KeysCommand) -> Result<ExitCode> {
    match cmd {
        KeysCommand::Rotate => {
            let bar = progress_bar(0, "rewrapping");
            let report = vault.rotate_keys(&ctx.unlock(), &|done, total| {
                bar.set_length(total);
                bar.set_position(done);
            })?;
            bar.finish_and_clear();
            let json = serde_json::to_value(&report).unwrap_or_default();
            ctx.print(
                &json,
                &format!(
                    "{}KEK version {} is current; {} DEKs rewrapped; destroyed versions {:?}",
                    if report.resumed {
                        "resumed an interrupted rotation: "
                    } else {
                        ""
                    },
                    report.new_version,
                    report.rewrapped,
                    report.retired
                ),
            );
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
    }
    Ok(ExitCode::SUCCESS)
}
