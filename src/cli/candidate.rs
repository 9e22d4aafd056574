//! `cvvault candidate add | import | show | erase`.

use std::fs::File;
use std::io::{BufReader, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;

use super::{progress_bar, Context};
use crate::error::{Error, Result};
use crate::ids::CandidateId;
use crate::vault::{ImportMode, ImportOptions, ImportPhase, ImportReport, LineOutcome, Vault};
use crate::vocabulary::{FieldGroup, Purpose};

/// Largest profile document read from a file or standard input.
const MAX_DOCUMENT: u64 = 256 * 1024;

#[derive(Subcommand, Debug)]
pub enum CandidateCommand {
    /// Register one candidate from a profile document (cvvault JSON or JSON Resume); `-` reads
    /// standard input. Prints the new candidate id.
    ///
    /// Give the agency's own reference (its case number) with --ref, or as `agency_reference`
    /// in the document, to find the candidate again with `candidate find --ref`; a reference
    /// that is already registered is refused (exit 5).
    Add {
        /// The document, or `-`.
        file: PathBuf,
        /// The agency's reference for the candidate (e.g. a case number; stored only as a
        /// keyed hash).
        #[arg(long = "ref", value_name = "REF")]
        reference: Option<String>,
    },
    /// Replace field groups of a candidate's profile: a new job, phone number or consent.
    ///
    /// The document is a cvvault document holding the groups to replace, e.g.
    /// `{"contact": {"phone": "+46 70 123 45 67"}}` (a JSON Resume replaces identity, contact
    /// and professional); the groups it leaves out are kept. With --group only the groups
    /// named are replaced. Decided by policy per group and audited; the profile is sealed
    /// anew under a new data key, and the old one is shredded.
    Update {
        /// Candidate id.
        id: String,
        /// The document, or `-`.
        file: PathBuf,
        /// Replace only these groups (identity, contact, professional, special, control).
        #[arg(long, value_delimiter = ',', value_name = "GROUP,...")]
        group: Vec<String>,
    },
    /// Find a candidate by the agency's reference: prints exactly one candidate id, or exits
    /// 4. Decided by policy and audited; there is no listing and no search by name.
    Find {
        /// The agency's reference, as given at registration.
        #[arg(long = "ref", value_name = "REF")]
        reference: String,
    },
    /// Import newline-delimited profiles (cvvault or JSON Resume documents, one per line).
    ///
    /// By default in one pass: every good line is imported and every bad line is skipped and
    /// reported with its number and JSON path (exit code 65 if any); fix those lines and
    /// import just them with --only-lines. With --all-or-nothing every line is validated
    /// first and a file with any bad line imports nothing.
    ///
    /// Give each line an `agency_reference` (the agency's case number) to make the import
    /// idempotent: a line whose reference is already registered is skipped and reported (or,
    /// with --update, replaces the groups it holds of that candidate's profile). A result
    /// file (CSV: line, agency_reference, status, candidate_id, error) lists every line.
    Import {
        /// An .ndjson file: one profile document per line.
        file: PathBuf,
        /// Where to write the result file (default: FILE.results.csv beside the import file).
        #[arg(long, value_name = "CSV")]
        results: Option<PathBuf>,
        /// A line whose agency reference is already registered updates that candidate.
        #[arg(long)]
        update: bool,
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
        CandidateCommand::Add { file, reference } => {
            let principal = ctx.acting(vault)?;
            let bytes = read_document(&file)?;
            let id = vault.register_document(&principal, &bytes, reference.as_deref())?;
            ctx.print(&serde_json::json!({ "candidate_id": id }), &id.to_string());
            Ok(ExitCode::SUCCESS)
        }
        CandidateCommand::Update { id, file, group } => {
            let principal = ctx.acting(vault)?;
            let id: CandidateId = id.parse()?;
            let groups = group
                .iter()
                .map(|g| g.parse::<FieldGroup>())
                .collect::<Result<Vec<_>>>()?;
            let bytes = read_document(&file)?;
            let updated = vault.update(
                &principal,
                &id,
                &bytes,
                (!groups.is_empty()).then_some(&groups[..]),
            )?;
            let names: Vec<String> = updated.groups.iter().map(|g| g.to_string()).collect();
            ctx.print(
                &serde_json::json!({ "updated": id, "groups": names }),
                &format!("updated {id}: {}", names.join(", ")),
            );
            Ok(ExitCode::SUCCESS)
        }
        CandidateCommand::Find { reference } => {
            let principal = ctx.acting(vault)?;
            let id = vault.find_by_reference(&principal, &reference)?;
            ctx.print(&serde_json::json!({ "candidate_id": id }), &id.to_string());
            Ok(ExitCode::SUCCESS)
        }
        CandidateCommand::Import {
            file,
            results,
            update,
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
                update_existing: update,
            };
            // The result file is created before anything is imported: a run whose ids could
            // not be written down must not register anyone. It never replaces an earlier
            // run's file (that one may hold the only record of the ids it registered).
            let results = match results {
                Some(path) => {
                    super::output_folder_exists(&path)?;
                    crate::files::write_new_private_file(&path, b"").map_err(|e| match e {
                        Error::VaultExists { .. } => {
                            Error::invalid_input(format!(
                                "{} exists already: it may hold the ids an earlier import registered. Give another result file",
                                path.display()
                            ))
                        }
                        other => other,
                    })?;
                    path
                }
                None => create_results_beside(&file)?,
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
            write_results(&results, &report)?;
            let summary = import_summary(&report, &results);
            if !ctx.json {
                eprint!("{summary}");
            }
            if !report.rejected.is_empty() {
                let json = serde_json::json!({
                    "imported": report.imported,
                    "results": results,
                    "rejected": report.rejected.iter().map(|(line, message)| serde_json::json!({"line": line, "error": message})).collect::<Vec<_>>(),
                });
                let lines: Vec<String> = report
                    .rejected
                    .iter()
                    .map(|(n, _)| *n)
                    .filter(|n| *n != 0 && !report.not_in_file.contains(n))
                    .map(|n| n.to_string())
                    .collect();
                let whole_file = report.rejected.iter().all(|(line, _)| *line == 0);
                let mut text = if whole_file {
                    format!("nothing imported from {}:\n", file.display())
                } else if options.mode == ImportMode::AllOrNothing {
                    format!(
                        "nothing imported: {} bad line(s) in {}; fix them and run the import again\n",
                        report.rejected.len(),
                        file.display()
                    )
                } else if lines.is_empty() {
                    format!(
                        "imported {} candidates; {} line(s) asked for hold no profile in {}\n",
                        report.imported,
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
                    if *line == 0 {
                        text.push_str(&format!("  {message}\n"));
                    } else {
                        text.push_str(&format!("  line {line}: {message}\n"));
                    }
                }
                if ctx.json {
                    println!("{json}");
                } else {
                    eprint!("{text}");
                }
                return Ok(ExitCode::from(65));
            }
            ctx.print(
                &serde_json::json!({
                    "imported": report.imported,
                    "results": results,
                    "without_reference": report.without_reference,
                    "lines": report.lines,
                }),
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

/// Creates the default result file of an import, empty: `people.ndjson` gives
/// `people.ndjson.results.csv`, or `people.ndjson.results-2.csv` (-3, ...) when an earlier
/// run's file is there.
fn create_results_beside(file: &std::path::Path) -> Result<PathBuf> {
    super::output_folder_exists(file)?;
    for n in 1..10_000u32 {
        let mut name = file.as_os_str().to_owned();
        if n == 1 {
            name.push(".results.csv");
        } else {
            name.push(format!(".results-{n}.csv"));
        }
        let path = PathBuf::from(name);
        match crate::files::write_new_private_file(&path, b"") {
            Ok(()) => return Ok(path),
            Err(Error::VaultExists { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    Err(Error::invalid_input(format!(
        "there are too many result files beside {}: move the old ones away, or give --results",
        file.display()
    )))
}

/// Writes one CSV row per line of the import (private to the user: it holds references).
fn write_results(path: &std::path::Path, report: &ImportReport) -> Result<()> {
    let mut out = csv::Writer::from_writer(Vec::new());
    let header = [
        "line",
        "agency_reference",
        "status",
        "candidate_id",
        "error",
    ];
    let csv_error = |_| Error::Internal("the import results do not serialize");
    out.write_record(header).map_err(csv_error)?;
    for line in &report.lines {
        let (status, id, error) = match &line.outcome {
            LineOutcome::Registered { candidate_id } => ("registered", Some(*candidate_id), ""),
            LineOutcome::AlreadyRegistered { candidate_id } => {
                ("already_registered", *candidate_id, "")
            }
            LineOutcome::Updated { candidate_id } => ("updated", Some(*candidate_id), ""),
            LineOutcome::Rejected { error } => ("rejected", None, error.as_str()),
        };
        let id = id.map(|id| id.to_string()).unwrap_or_default();
        out.write_record([
            line.line.to_string().as_str(),
            line.agency_reference.as_str(),
            status,
            id.as_str(),
            error,
        ])
        .map_err(csv_error)?;
    }
    let bytes = out
        .into_inner()
        .map_err(|_| Error::Internal("the import results do not serialize"))?;
    crate::files::write_private_file(path, &bytes)
}

/// What an import did, in words, with the warning about lines without a reference.
fn import_summary(report: &ImportReport, results: &std::path::Path) -> String {
    let count = |f: fn(&LineOutcome) -> bool| report.lines.iter().filter(|l| f(&l.outcome)).count();
    let skipped = count(|o| matches!(o, LineOutcome::AlreadyRegistered { .. }));
    let updated = count(|o| matches!(o, LineOutcome::Updated { .. }));
    let mut text = String::new();
    if skipped > 0 {
        text.push_str(&format!(
            "{skipped} line(s) name an agency reference that is already registered: skipped (import with --update to replace those profiles)\n"
        ));
    }
    if updated > 0 {
        text.push_str(&format!(
            "updated {updated} candidate(s) already registered\n"
        ));
    }
    if report.without_reference > 0 {
        text.push_str(&format!(
            "warning: {} candidate(s) were registered without an agency_reference: they cannot be found again by reference, and importing the file again registers them again. Their ids are in {}\n",
            report.without_reference,
            results.display()
        ));
    }
    text.push_str(&format!(
        "results, one row per line: {}\n",
        results.display()
    ));
    text
}
