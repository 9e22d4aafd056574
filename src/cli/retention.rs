//! `cvvault retention run`: the job cron runs.

use std::process::ExitCode;

use clap::Subcommand;

use super::{progress_bar, Context};
use crate::error::Result;
use crate::settings::Retention;
use crate::vault::Vault;

#[derive(Subcommand, Debug)]
pub enum RetentionCommand {
    /// Erase every due candidate (crypto-shredding), per policy/retention.toml. Exit 0 when
    /// every due candidate was erased or held, 1 when some could not be erased, 75 when
    /// another run holds the lock.
    Run {
        /// Report what would be erased; change nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

pub fn run(ctx: &Context, vault: &Vault, cmd: RetentionCommand) -> Result<ExitCode> {
    let RetentionCommand::Run { dry_run } = cmd;
    let settings = Retention::load(&ctx.paths.retention_settings())?;
    let bar = progress_bar(0, "erasing");
    let report =
        crate::vault::retention::run(vault, &settings, dry_run, Some(&ctx.unlock()), &|n| {
            bar.set_position(n)
        })?;
    bar.finish_and_clear();
    let json = serde_json::to_value(&report).unwrap_or_default();
    let per_rule: Vec<String> = report
        .erased
        .iter()
        .map(|(rule, n)| format!("{rule}: {n}"))
        .collect();
    // A dry run says whom and why: one line per candidate it would erase.
    let listing: String = report
        .due
        .iter()
        .map(|due| {
            format!(
                "{}  {}  due since {}\n",
                due.candidate_id, due.rule, due.due_since
            )
        })
        .collect();
    ctx.print(
        &json,
        &format!(
            "{listing}{} {} candidate(s){}; held {}; failures {}; {} ms",
            if dry_run { "would erase" } else { "erased" },
            report.total,
            if per_rule.is_empty() {
                String::new()
            } else {
                format!(" ({})", per_rule.join(", "))
            },
            report.held,
            report.failures,
            report.duration_ms
        ),
    );
    Ok(if report.failures > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
