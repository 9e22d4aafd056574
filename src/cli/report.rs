//! `cvvault report processing`: the GDPR reports of [`crate::report`] at the command line.

use std::process::ExitCode;

use clap::Subcommand;

use super::Context;
use crate::error::{Error, Result};
use crate::report::processing::record_of_processing;
use crate::settings::Retention;
use crate::vault::Vault;

#[derive(Subcommand, Debug)]
pub enum ReportCommand {
    /// The record of processing activities (GDPR Art. 30(1)): per role, which field groups
    /// of a candidate's profile it may receive, for which purposes, under which conditions and
    /// by which policies; the roles that receive nothing; the other actions each role may
    /// take; and the retention rules.
    ///
    /// Generated from the Cedar policy files in force (and policy/retention.toml), never
    /// written by hand: it names the policy hash that every audit entry decided under them
    /// carries. It holds no personal data, so no --as is needed. With --json, the record as
    /// one JSON document (format cvvault-record-of-processing/v1).
    Processing,
    /// The scope of a personal-data breach (GDPR Art. 33): for a principal, an organisation
    /// or a token whose credentials may have been misused, and a time window, which
    /// candidates had which field groups disclosed to it, and when. DPO only (--as), and
    /// recorded in the audit trail like every read of it.
    ///
    /// Built from the trail's allowed extracts; candidates erased since are named by their
    /// audit pseudonym. A token's scope is its principal's disclosures while the token was
    /// valid (the trail records the principal, not the token). The DPO console's breach page
    /// shows the same report.
    ///
    /// Example: cvvault --as dpo report breach --principal hr@acme --since 2026-11-01
    /// --until 2026-11-30 --format csv > breach.csv
    #[command(group(clap::ArgGroup::new("whose").required(true).args(["of_principal", "of_org", "of_token"])))]
    Breach {
        /// A principal id.
        #[arg(long = "principal", value_name = "ID")]
        of_principal: Option<String>,
        /// An organisation: every principal of it.
        #[arg(long = "org", value_name = "ORG")]
        of_org: Option<String>,
        /// A token id (as `cvvault token list` shows it).
        #[arg(long = "token", value_name = "TOKEN_ID")]
        of_token: Option<String>,
        /// From this date (2026-11-01) or time (RFC 3339), included.
        #[arg(long)]
        since: String,
        /// To this date, included, or time, excluded.
        #[arg(long)]
        until: String,
        /// text, json or csv (--json is json too).
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
    },
}

/// How a report is printed.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Words, for reading.
    Text,
    /// One JSON document.
    Json,
    /// CSV with a header, one disclosure per line.
    Csv,
}

pub fn run(ctx: &Context, vault: &Vault, cmd: ReportCommand) -> Result<ExitCode> {
    match cmd {
        ReportCommand::Processing => {
            let retention = Retention::load(&vault.paths().retention_settings())?;
            let record = record_of_processing(
                vault.policy(),
                &retention,
                crate::clock::rfc3339(vault.now()),
            );
            let json = serde_json::to_value(&record)
                .map_err(|_| Error::Internal("the record of processing could not be encoded"))?;
            ctx.print(&json, &record.to_text());
            Ok(ExitCode::SUCCESS)
        }
        ReportCommand::Breach {
            of_principal: principal,
            of_org: org,
            of_token: token,
            since,
            until,
            format,
        } => {
            let acting = ctx.acting(vault)?;
            let (scope, value) = match (principal, org, token) {
                (Some(p), _, _) => ("principal", p),
                (_, Some(o), _) => ("org", o),
                (_, _, Some(t)) => ("token", t),
                // clap requires one of the three.
                _ => return Err(Error::invalid_input("name --principal, --org or --token")),
            };
            let query = crate::report::breach::query(scope, &value, &since, &until)?;
            let bar = super::progress_bar(0, "reading the audit trail");
            let report = vault.breach_scope(&acting, &query, None, &|n| bar.set_position(n));
            bar.finish_and_clear();
            let report = report?;
            let format = if ctx.json { Format::Json } else { format };
            match format {
                Format::Text => print!("{}", report.to_text()),
                Format::Csv => print!("{}", report.to_csv()?),
                Format::Json => println!(
                    "{}",
                    serde_json::to_string_pretty(&report)
                        .map_err(|_| Error::Internal("the breach report could not be encoded"))?
                ),
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
