//! `cvvault audit ...`, `cvvault subject-access`, `cvvault hold ...`: the DPO's commands.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;

use super::{progress_bar, Context};
use crate::audit::note::NoteVerifier;
use crate::audit::verify::{self, CheckpointSource, InclusionProof};
use crate::clock::parse_time;
use crate::error::{Error, Result};
use crate::ids::CandidateId;
use crate::vault::Vault;

#[derive(Subcommand, Debug)]
pub enum AuditCommand {
    /// Recompute the Merkle tree from every entry, check every stored checkpoint and each
    /// --checkpoint FILE kept elsewhere, and every entry's MAC. Names the first entry that
    /// was altered or deleted, and a truncated tail.
    Verify {
        /// A signed checkpoint kept off this machine. Repeatable.
        #[arg(long = "checkpoint", value_name = "FILE")]
        checkpoints: Vec<PathBuf>,
        /// Verify with only this verifier key and the database, without the keyring (a DPO's
        /// own check; altered entries are then located to a range between checkpoints).
        #[arg(long, value_name = "VERIFIER_KEY")]
        key: Option<String>,
    },
    /// Print the latest signed checkpoint (signing one if the log grew).
    Checkpoint,
    /// Print the checkpoint verifier key (copy it off the machine).
    Key,
    /// Write an inclusion proof of entry N with its checkpoint (JSON).
    Prove {
        /// Entry index.
        #[arg(long)]
        index: u64,
    },
    /// Check an inclusion proof offline: the checkpoint's signature and the audit path.
    ///
    /// An erasure receipt is also checked to be an erasure of the candidate pseudonym it
    /// names. Where the vault is (the keyring at hand), the receipt's candidate id is checked
    /// against that pseudonym. With --key alone (offline, no keyring) the candidate id cannot
    /// be confirmed, so a receipt fails (exit 17) unless --allow-unbound accepts the proven
    /// erasure without its candidate id.
    VerifyProof {
        /// The proof (or erasure receipt) file.
        file: PathBuf,
        /// The verifier key (default: this vault's, which needs the keyring).
        #[arg(long, value_name = "VERIFIER_KEY")]
        key: Option<String>,
        /// Offline: accept a receipt whose candidate id cannot be confirmed without the
        /// keyring (the erasure of its pseudonym is still proven).
        #[arg(long, requires = "key")]
        allow_unbound: bool,
    },
    /// Print the audit key (hex) for a DPO's own verifier: it recomputes entry MACs and
    /// pseudonyms (SECURITY.md). A secret: whoever holds it can forge entry MACs and test a
    /// guessed candidate id against the trail. Audited.
    MacKey,
    /// Write an RFC 9162 consistency proof (JSON) from a tree of --from entries to the latest
    /// signed checkpoint (or the stored one of --to entries): with it, a checkpoint kept off
    /// this machine is checked against the log without the entries. `verify-proof` checks it.
    Consistency {
        /// The older tree's size, e.g. that of a checkpoint kept elsewhere.
        #[arg(long, value_name = "SIZE")]
        from: u64,
        /// The newer tree's size (default: the latest checkpoint's).
        #[arg(long, value_name = "SIZE")]
        to: Option<u64>,
    },
    /// Write entries as JSON lines (the exact bytes that were hashed).
    ///
    /// With --bundle, one JSON document instead that carries its own proof: the entries of
    /// the window widened to the signed checkpoints around it, the right edge of the tree
    /// before them and both checkpoints (and with --macs the entry MACs); `verify-proof`
    /// checks it with the verifier key alone (SECURITY.md, audit format).
    Export {
        /// Only entries at or after this time (RFC 3339 or YYYY-MM-DD).
        #[arg(long)]
        since: Option<String>,
        /// Only entries before this time.
        #[arg(long)]
        until: Option<String>,
        /// Write a self-verifying bundle (JSON) instead of bare entry lines.
        #[arg(long)]
        bundle: bool,
        /// With --bundle: include each entry's MAC (checked with the audit key).
        #[arg(long, requires = "bundle")]
        macs: bool,
    },
    /// Find a candidate's entries through its HMAC pseudonym.
    Search {
        /// Candidate id.
        #[arg(long)]
        candidate: String,
    },
    /// Proof of erasure of a candidate: the erase entry, its inclusion proof, a checkpoint.
    Receipt {
        /// Candidate id.
        #[arg(long)]
        candidate: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum HoldCommand {
    /// Place a legal hold: retention skips the candidate until it is released.
    Place {
        /// Candidate id.
        id: String,
        /// The legal ground (e.g. a case reference); no personal details.
        #[arg(long)]
        reason: String,
    },
    /// Release a legal hold.
    Release {
        /// Candidate id.
        id: String,
    },
}

fn print_json<T: serde::Serialize>(value: &T) -> Result<()> {
    let text = serde_json::to_string_pretty(value).map_err(|_| Error::Corrupt {
        what: "output could not be encoded",
    })?;
    println!("{text}");
    Ok(())
}

/// Reads checkpoint files kept elsewhere. A file that is not even shaped like a checkpoint is
/// a wrong input (exit 65), not evidence of tampering; its signature and root are checked by
/// the verification itself.
fn read_checkpoints(files: &[PathBuf]) -> Result<Vec<CheckpointSource>> {
    files
        .iter()
        .map(|f| {
            let note = std::fs::read_to_string(f).map_err(|e| Error::io(f, e))?;
            let body = note.split_once("\n\n").map(|(body, _)| format!("{body}\n"));
            if body
                .as_deref()
                .is_none_or(|b| crate::audit::note::Checkpoint::parse_body(b).is_err())
            {
                return Err(Error::invalid_input(format!(
                    "{} is not a signed checkpoint: it should be the text the vault's checkpoint command printed (an origin, a size and a root on three lines, a blank line, then signature lines); fetch a fresh copy of the one kept off this machine",
                    f.display()
                )));
            }
            Ok(CheckpointSource {
                source: f.display().to_string(),
                note,
            })
        })
        .collect()
}

/// `audit verify --key`: database and verifier key only, no keyring.
pub fn verify_offline(ctx: &Context, key: &str, files: &[PathBuf]) -> Result<ExitCode> {
    let verifier =
        NoteVerifier::parse(key).map_err(|e| Error::invalid_input(format!("--key: {e}")))?;
    let conn = ctx.paths.store().open()?;
    let mut sources = verify::stored_checkpoints(&conn)?;
    sources.extend(read_checkpoints(files)?);
    let bar = progress_bar(0, "verifying");
    let report = verify::verify(&conn, &verifier, None, &sources, &|n| bar.set_position(n))?;
    bar.finish_and_clear();
    report_verified(ctx, &report)
}

fn report_verified(ctx: &Context, report: &verify::VerifyReport) -> Result<ExitCode> {
    ctx.print(
        &serde_json::to_value(report).unwrap_or_default(),
        &format!(
            "audit trail verified: {} entries, root {}, {} checkpoint(s) consistent{}",
            report.entries,
            report.root,
            report.checkpoints.len(),
            if report.macs_checked {
                ", every entry MAC valid"
            } else {
                ""
            }
        ),
    );
    Ok(ExitCode::SUCCESS)
}

pub fn run(ctx: &Context, vault: &Vault, cmd: AuditCommand) -> Result<ExitCode> {
    match cmd {
        AuditCommand::Verify {
            checkpoints,
            key: _,
        } => {
            let principal = ctx.acting(vault)?;
            let bar = progress_bar(0, "verifying");
            let report = vault.audit_verify(&principal, read_checkpoints(&checkpoints)?, &|n| {
                bar.set_position(n)
            })?;
            bar.finish_and_clear();
            report_verified(ctx, &report)
        }
        AuditCommand::Checkpoint => {
            print!("{}", vault.audit_checkpoint()?);
            Ok(ExitCode::SUCCESS)
        }
        AuditCommand::Key => {
            println!("{}", vault.verifier_key());
            Ok(ExitCode::SUCCESS)
        }
        AuditCommand::MacKey => {
            let principal = ctx.acting(vault)?;
            let key = vault.audit_mac_key(&principal)?;
            let warning = "this is the audit key: whoever holds it can forge entry MACs and test a guessed candidate id against the trail. Keep it as secret as the keyring, only where your verifier runs";
            if ctx.json {
                println!(
                    "{}",
                    serde_json::json!({"audit_key": key.as_str(), "warning": warning})
                );
            } else {
                println!("{}", key.as_str());
                eprintln!("warning: {warning}");
            }
            Ok(ExitCode::SUCCESS)
        }
        AuditCommand::Consistency { from, to } => {
            let principal = ctx.acting(vault)?;
            print_json(&vault.audit_consistency(&principal, from, to)?)?;
            Ok(ExitCode::SUCCESS)
        }
        AuditCommand::Prove { index } => {
            let principal = ctx.acting(vault)?;
            print_json(&vault.audit_prove(&principal, index)?)?;
            Ok(ExitCode::SUCCESS)
        }
        AuditCommand::VerifyProof { file, .. } => {
            // `--key` is handled without the keyring by `verify_proof_offline`.
            if let Some(done) = verify_consistency_file(ctx, &file, &vault.note_verifier()?)? {
                return Ok(done);
            }
            let checkpoint = verify_proof_file(&file, &vault.note_verifier()?)?;
            // With the keyring at hand, a receipt's pseudonym is also checked against its id.
            if let Some((candidate_id, pseudonym)) = receipt_claim(&file)? {
                if vault.pseudonyms().candidate(&candidate_id) != pseudonym {
                    return Err(Error::AuditTampered(format!(
                        "the receipt names candidate {candidate_id} but its erase entry is about another candidate"
                    )));
                }
            }
            proof_valid(ctx, &checkpoint)
        }
        AuditCommand::Export {
            since,
            until,
            bundle,
            macs,
        } => {
            let principal = ctx.acting(vault)?;
            let since = since
                .map(|s| parse_time(&s).ok_or_else(|| bad_time(&s)))
                .transpose()?;
            let until = until
                .map(|s| parse_time(&s).ok_or_else(|| bad_time(&s)))
                .transpose()?;
            if bundle {
                print_json(&vault.audit_export_bundle(&principal, (since, until), macs)?)?;
                return Ok(ExitCode::SUCCESS);
            }
            let stdout = std::io::stdout();
            let mut out = std::io::BufWriter::new(stdout.lock());
            vault.audit_export(&principal, since, until, &mut |line| {
                writeln!(out, "{line}").map_err(|e| Error::io("standard output", e))
            })?;
            out.flush().map_err(|e| Error::io("standard output", e))?;
            Ok(ExitCode::SUCCESS)
        }
        AuditCommand::Search { candidate } => {
            let principal = ctx.acting(vault)?;
            let id: CandidateId = candidate.parse()?;
            for entry in vault.audit_search(&principal, &id)? {
                println!("{}", String::from_utf8_lossy(&entry.canonical_bytes()));
            }
            Ok(ExitCode::SUCCESS)
        }
        AuditCommand::Receipt { candidate } => {
            let principal = ctx.acting(vault)?;
            let id: CandidateId = candidate.parse()?;
            print_json(&vault.erasure_receipt(&principal, &id)?)?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `audit verify-proof --key`: the proof and the public verifier key, no keyring.
///
/// A receipt's candidate id is bound to its pseudonym only by a keyed HMAC, which cannot be
/// recomputed here: the proof is checked, and the id is reported as not confirmed (exit 17
/// unless `allow_unbound`).
pub fn verify_proof_offline(
    ctx: &Context,
    file: &PathBuf,
    key: &str,
    allow_unbound: bool,
) -> Result<ExitCode> {
    let verifier =
        NoteVerifier::parse(key).map_err(|e| Error::invalid_input(format!("--key: {e}")))?;
    if let Some(done) = verify_consistency_file(ctx, file, &verifier)? {
        return Ok(done);
    }
    let checkpoint = verify_proof_file(file, &verifier)?;
    let Some((candidate_id, pseudonym)) = receipt_claim(file)? else {
        return proof_valid(ctx, &checkpoint);
    };
    let text = format!(
        "the erasure of pseudonym {pseudonym} is in the log of {} entries signed by {}, but the receipt's candidate id {candidate_id} is NOT confirmed: only the vault's keyring binds an id to its pseudonym",
        checkpoint.size, checkpoint.origin
    );
    ctx.print(
        &serde_json::json!({
            "valid": allow_unbound,
            "tree_size": checkpoint.size,
            "erasure_of_pseudonym": pseudonym,
            "candidate_id_confirmed": false,
        }),
        &text,
    );
    if allow_unbound {
        return Ok(ExitCode::SUCCESS);
    }
    eprintln!(
        "next: run `cvvault audit verify-proof FILE` where the vault is (it checks the id with the keyring), or accept the proven erasure without its id with --allow-unbound"
    );
    Ok(ExitCode::from(17))
}

/// Checks `file` if it is a consistency proof (`None` if it is another kind of proof).
fn verify_consistency_file(
    ctx: &Context,
    file: &PathBuf,
    verifier: &NoteVerifier,
) -> Result<Option<ExitCode>> {
    let value = read_json(file)?;
    if value.get("format").and_then(|f| f.as_str()) == Some(verify::BUNDLE_FORMAT) {
        let bundle: verify::ExportBundle = serde_json::from_value(value).map_err(|e| {
            Error::invalid_input(format!("{} is not an export bundle: {e}", file.display()))
        })?;
        let checkpoint = verify::verify_bundle(&bundle, verifier)?;
        ctx.print(
            &serde_json::json!({"valid": true, "start": bundle.start, "end": bundle.end}),
            &format!(
                "export valid: entries {} to {} lead from the signed checkpoint of {} entries to the one of {} signed by {}{}",
                bundle.start,
                bundle.end.saturating_sub(1),
                bundle.start,
                bundle.end,
                checkpoint.origin,
                if bundle.macs.is_some() { " (MACs not checked: that needs the audit key)" } else { "" }
            ),
        );
        return Ok(Some(ExitCode::SUCCESS));
    }
    if value.get("format").and_then(|f| f.as_str()) != Some(verify::CONSISTENCY_FORMAT) {
        return Ok(None);
    }
    let proof: verify::ConsistencyProof = serde_json::from_value(value).map_err(|e| {
        Error::invalid_input(format!(
            "{} is not a consistency proof: {e}",
            file.display()
        ))
    })?;
    let (checkpoint, old_root) = verify::verify_consistency_proof(&proof, verifier)?;
    let old_root = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, old_root);
    ctx.print(
        &serde_json::json!({
            "valid": true,
            "old_size": proof.old_size,
            "old_root": old_root,
            "new_size": checkpoint.size,
        }),
        &format!(
            "consistent: the log of {} entries signed by {} extends the log of {} entries whose root is {old_root}; compare that root with your checkpoint of {} entries",
            checkpoint.size, checkpoint.origin, proof.old_size, proof.old_size
        ),
    );
    Ok(Some(ExitCode::SUCCESS))
}

fn proof_valid(ctx: &Context, checkpoint: &crate::audit::note::Checkpoint) -> Result<ExitCode> {
    ctx.print(
        &serde_json::json!({"valid": true, "tree_size": checkpoint.size}),
        &format!(
            "proof valid: the entry is in the log of {} entries signed by {}",
            checkpoint.size, checkpoint.origin
        ),
    );
    Ok(ExitCode::SUCCESS)
}

fn bad_time(text: &str) -> Error {
    Error::invalid_input(format!(
        "`{}` is not a time: use RFC 3339 (2026-11-23T08:00:00Z) or a date (2026-11-23)",
        crate::ids::printable(text)
    ))
}

const RECEIPT_FORMAT: &str = "cvvault-erasure-receipt/v1";

fn read_json(file: &PathBuf) -> Result<serde_json::Value> {
    let text = std::fs::read_to_string(file).map_err(|e| Error::io(file, e))?;
    serde_json::from_str(&text).map_err(|_| {
        Error::invalid_input(format!(
            "{} is not JSON: expected an inclusion proof or receipt",
            file.display()
        ))
    })
}

fn is_receipt(value: &serde_json::Value) -> bool {
    value.get("format").and_then(|f| f.as_str()) == Some(RECEIPT_FORMAT)
}

/// Reads a proof file, or an erasure receipt (whose `proof` field is the proof). A receipt
/// must also prove what it claims: its entry is an allowed erasure of its candidate pseudonym.
pub fn verify_proof_file(
    file: &PathBuf,
    verifier: &NoteVerifier,
) -> Result<crate::audit::note::Checkpoint> {
    let value = read_json(file)?;
    let receipt = is_receipt(&value);
    let pseudonym = value
        .get("candidate_pseudonym")
        .and_then(|p| p.as_str())
        .map(str::to_owned);
    let proof_value = if receipt {
        value.get("proof").cloned().unwrap_or_default()
    } else {
        value
    };
    let proof: InclusionProof = serde_json::from_value(proof_value).map_err(|e| {
        Error::invalid_input(format!("{} is not an inclusion proof: {e}", file.display()))
    })?;
    let checkpoint = verify::verify_proof(&proof, verifier)?;
    if receipt {
        let entry: Option<crate::audit::entry::Entry> = serde_json::from_str(&proof.entry).ok();
        let erases = entry.is_some_and(|e| {
            matches!(e.action.as_str(), "candidate.erase" | "retention.erase")
                && e.decision == crate::audit::entry::Outcome::Allow
                && pseudonym.is_some()
                && e.candidate == pseudonym
        });
        if !erases {
            return Err(Error::AuditTampered(
                "the receipt's entry is in the log but is not an erasure of the candidate the receipt names".into(),
            ));
        }
    }
    Ok(checkpoint)
}

/// A receipt's (candidate id, candidate pseudonym), or `None` for a plain proof.
fn receipt_claim(file: &PathBuf) -> Result<Option<(CandidateId, String)>> {
    let value = read_json(file)?;
    if !is_receipt(&value) {
        return Ok(None);
    }
    let field = |name: &str| value.get(name).and_then(|v| v.as_str()).map(str::to_owned);
    match (field("candidate_id"), field("candidate_pseudonym")) {
        (Some(id), Some(pseudonym)) => Ok(Some((id.parse()?, pseudonym))),
        _ => Err(Error::invalid_input(format!(
            "{} is not a complete erasure receipt: it lacks candidate_id or candidate_pseudonym",
            file.display()
        ))),
    }
}

pub fn run_subject_access(ctx: &Context, vault: &Vault, id: &str) -> Result<ExitCode> {
    let principal = ctx.acting(vault)?;
    let id: CandidateId = id.parse()?;
    let report = vault.subject_access(&principal, &id)?;
    if ctx.json {
        print_json(&report)?;
    } else {
        print!("{}", report.to_text());
    }
    Ok(ExitCode::SUCCESS)
}

pub fn run_hold(ctx: &Context, vault: &Vault, cmd: HoldCommand) -> Result<ExitCode> {
    let principal = ctx.acting(vault)?;
    match cmd {
        HoldCommand::Place { id, reason } => {
            let id: CandidateId = id.parse()?;
            vault.set_hold(&principal, &id, true, &reason)?;
            ctx.print(
                &serde_json::json!({"held": id}),
                &format!("legal hold placed on {id}"),
            );
        }
        HoldCommand::Release { id } => {
            let id: CandidateId = id.parse()?;
            vault.set_hold(&principal, &id, false, "")?;
            ctx.print(
                &serde_json::json!({"released": id}),
                &format!("legal hold released on {id}"),
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
