//! `cvvault candidate add | import | show | erase`.

use std::fs::File;
use std::io::{BufReader, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;

use super::{progress_bar, Context};
use crate::error::{Error, Result};
use crate::ids::CandidateId;
use crate::vault::{ImportMode, ImportOptions, ImportPhase, Vault};
use crate::vocabulary::Purpose;

/// Largest profile document read from a file or standard input.
const MAX_DOCUMENT: u64 = 256 * 1024;

#[derive(Subcommand, Debug)]
pub enum CandidateCommand {
    /// Register one candidate from a profile document (cvvault JSON or JSON Resume); `-` reads
    /// standard input. Prints the new candidate id.
    Add {
        /// The document, or `-`.
        file: PathBuf,
    },
    /// Import newline-delimited profiles (cvvault or JSON Resume documents, one per line).
    ///
    /// By default in one pass: every good line is imported and every bad line is skipped and
    /// reported with its number and JSON path (exit code 65 if any); fix those lines and
    /// import just them with --only-lines. With --all-or-nothing every line is validated
    /// first and a file with any bad line imports nothing.
    Import {
        /// An .ndjson file: one profile document per line.
        file: PathBuf,
        /// Validate the whole file first; import nothing if any line is bad.
        #[arg(long)]
        all_or_nothing: bool,
        /// Import only these line numbers, e.g. `--only-lines 2,17,40` after fixing them.
        #[arg(long, value_delimiter = ',', value_name = "N,...")]
        only_lines: Vec<u64>,
    },
    /// Show the field groups of one candidate that policy permits the acting principal.
    Show {
        /// Candidate id.
        id: String,
        /// The declared purpose (e.g. coaching, recruitment).
        #[arg(long)]
        purpose: String,
    },
    /// Print the JSON Schema of a vault profile document (every field group, `special` and
    /// `control` included). Needs no vault.
    Schema,
    /// Erase one candidate now (crypto-shredding). Decided by policy and audited.
    Erase {
        /// Candidate id.
        id: String,
    },
}

/// `candidate schema`: the JSON Schema of a vault profile document.
pub fn print_schema() -> Result<ExitCode> {
    let schema = serde_json::to_string_pretty(&crate::profile::json_schema())
        .map_err(|_| Error::Internal("the profile schema does not serialize"))?;
    println!("{schema}");
    Ok(ExitCode::SUCCESS)
}

pub fn run(ctx: &Context, vault: &Vault, cmd: CandidateCommand) -> Result<ExitCode> {
    match cmd {
        CandidateCommand::Schema => print_schema(),
        CandidateCommand::Add { file } => {
            let principal = ctx.acting(vault)?;
            let bytes = read_document(&file)?;
            let id = vault.register_document(&principal, &bytes)?;
            ctx.print(&serde_json::json!({ "candidate_id": id }), &id.to_string());
            Ok(ExitCode::SUCCESS)
        }
        CandidateCommand::Import {
            file,
            all_or_nothing,
            only_lines,
        } => {
            let principal = ctx.acting(vault)?;
            let open = || -> Result<Box<dyn std::io::BufRead>> {
                Ok(Box::new(BufReader::with_capacity(
                    1 << 20,
                    File::open(&file).map_err(|e| Error::io(&file, e))?,
                )))
            };
            let options = ImportOptions {
                mode: if all_or_nothing {
                    ImportMode::AllOrNothing
                } else {
                    ImportMode::SkipBad
                },
                only_lines: (!only_lines.is_empty()).then(|| only_lines.into_iter().collect()),
            };
            let size = std::fs::metadata(&file)
                .map_err(|e| Error::io(&file, e))?
                .len();
            let bar = progress_bar(0, "validating");
            bar.set_length(size / 4096 + 1);
            let report = vault.import(&principal, &open, &options, &|phase, done| {
                if phase == ImportPhase::Write && bar.message() != "importing" {
                    bar.set_message("importing");
                    bar.set_position(0);
                }
                if bar.length().is_some_and(|l| done > l) {
                    bar.set_length(done);
                }
                bar.set_position(done);
            })?;
            bar.finish_and_clear();
            if !report.rejected.is_empty() {
                let json = serde_json::json!({
                    "imported": report.imported,
                    "rejected": report.rejected.iter().map(|(line, message)| serde_json::json!({"line": line, "error": message})).collect::<Vec<_>>(),
                });
                let lines: Vec<String> =
                    report.rejected.iter().map(|(n, _)| n.to_string()).collect();
                let mut text = if options.mode == ImportMode::AllOrNothing {
                    format!(
                        "nothing imported: {} bad line(s) in {}; fix them and run the import again\n",
                        report.rejected.len(),
                        file.display()
                    )
                } else {
                    format!(
                        "imported {} candidates; skipped {} bad line(s) in {}; fix them and import just those with --only-lines {}\n",
                        report.imported,
                        report.rejected.len(),
                        file.display(),
                        lines.join(",")
                    )
                };
                for (line, message) in &report.rejected {
                    text.push_str(&format!("  line {line}: {message}\n"));
                }
                if ctx.json {
                    println!("{json}");
                } else {
                    eprint!("{text}");
                }
                return Ok(ExitCode::from(65));
            }
            ctx.print(
                &serde_json::json!({ "imported": report.imported }),
                &format!("imported {} candidates", report.imported),
            );
            Ok(ExitCode::SUCCESS)
        }
        CandidateCommand::Show { id, purpose } => {
            let principal = ctx.acting(vault)?;
            let id: CandidateId = id.parse()?;
            let purpose: Purpose = purpose.parse()?;
            let extract = vault.extract(&principal, &id, &purpose)?;
            let mut out = std::io::stdout().lock();
            out.write_all(&extract.json)
                .map_err(|e| Error::io("standard output", e))?;
            out.write_all(b"\n")
                .map_err(|e| Error::io("standard output", e))?;
            Ok(ExitCode::SUCCESS)
        }
        CandidateCommand::Erase { id } => {
            let principal = ctx.acting(vault)?;
            let id: CandidateId = id.parse()?;
            vault.erase(&principal, &id)?;
            ctx.print(
                &serde_json::json!({ "erased": id }),
                &format!("erased {id}"),
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Reads a document from a file or `-`, refusing anything over [`MAX_DOCUMENT`].
pub(crate) fn read_document(file: &PathBuf) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    let read = if file.as_os_str() == "-" {
        std::io::stdin()
            .take(MAX_DOCUMENT + 1)
            .read_to_end(&mut bytes)
    } else {
        File::open(file).and_then(|f| f.take(MAX_DOCUMENT + 1).read_to_end(&mut bytes))
    };
    read.map_err(|e| Error::io(file, e))?;
    if bytes.len() as u64 > MAX_DOCUMENT {
        return Err(Error::invalid_input(format!(
            "{} is larger than 256 KiB: a profile document must be smaller",
            file.display()
        )));
    }
    Ok(bytes)
}
