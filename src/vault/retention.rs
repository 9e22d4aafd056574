//! The retention job: crypto-shredding of candidates whose assignments have closed.
//!
//! Run by cron or a systemd timer (`cvvault retention run`). Each due candidate is erased in
//! its own savepoint with its audit entry naming the rule; erasures are grouped into batched
//! transactions. A killed run leaves every candidate either fully present or fully gone, and
//! the next run continues. Candidates are found through indexes on lifecycle columns, so a
//! run with nothing due reads no profile and decrypts nothing.

use std::collections::BTreeMap;

use crate::store::sql::Db;
use serde::Serialize;

use crate::audit::entry::Outcome;
use crate::audit::log::{Actor, Record};
use crate::crypto::keyring::Unlock;
use crate::error::{Error, Result};
use crate::ids::CandidateId;
use crate::policy::{Action, Request};
use crate::settings::Retention;
use crate::store::rows;
use crate::vault::keys::RotateIdentity;
use crate::vault::{new_request_id, system_principal, Vault};
use crate::vocabulary::FieldGroup;

/// The retention job's actor in its entries.
fn system_actor() -> Actor {
    Actor {
        id: "system".into(),
        role: "system".into(),
        org: None,
    }
}

const BATCH: usize = 500;
const DAY: i64 = 86_400;

/// Why a candidate is due.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Rule {
    /// The last assignment closed and the grace period has passed.
    ClosedGrace,
    /// No open assignment for longer than `max_idle_days`.
    MaxIdle,
    /// Registered longer ago than `max_life_days`.
    MaxLife,
}

impl Rule {
    /// The rule's name in reports and audit entries.
    pub fn as_str(self) -> &'static str {
        match self {
            Rule::ClosedGrace => "closed-grace",
            Rule::MaxIdle => "max-idle",
            Rule::MaxLife => "max-life",
        }
    }
}

/// What a run did (or, with `--dry-run`, would do).
#[derive(Debug, Serialize)]
pub struct RetentionReport {
    /// Nothing was changed.
    pub dry_run: bool,
    /// When the run started (RFC 3339).
    pub started_at: String,
    /// Erased (or due, in a dry run) per rule.
    pub erased: BTreeMap<&'static str, u64>,
    /// Total erased (or due).
    pub total: u64,
    /// Due but kept under legal hold.
    pub held: u64,
    /// Due but not erased because of an error (see the log).
    pub failures: u64,
    /// Wall time in milliseconds.
    pub duration_ms: u64,
    /// The checkpoint signed after the run.
    pub checkpoint: Option<String>,
    /// On PostgreSQL: the KEK versions destroyed at the end of the run, after every live
    /// data key was rewrapped under a new one. The erased candidates' data keys were wrapped
    /// under them, so no copy of them (dead tuples, WAL, base backups) opens any more.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub kek_destroyed: Vec<u32>,
    /// On PostgreSQL, when the run erased candidates but could not rotate the keys (no way to
    /// unlock the keyring was given): their wrapped data keys still open with the current
    /// KEK in older copies of the database until the next rotation.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub erasure_pending_rotation: bool,
    /// In a dry run: every candidate that would be erased, with its rule and since when it
    /// is due (a candidate due under several rules is listed under the first).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub due: Vec<DueCandidate>,
}

/// A candidate a dry run would erase.
#[derive(Debug, Serialize)]
pub struct DueCandidate {
    /// Whom.
    pub candidate_id: CandidateId,
    /// Under which rule.
    pub rule: &'static str,
    /// Since when it is due (RFC 3339): when the rule's period ended.
    pub due_since: String,
}

/// The period a rule allows, in seconds.
fn period(rule: Rule, settings: &Retention) -> i64 {
    let days = match rule {
        Rule::ClosedGrace => settings.grace_after_close_days,
        Rule::MaxIdle => settings.max_idle_days,
        Rule::MaxLife => settings.max_life_days,
    };
    i64::from(days) * DAY
}

fn cutoff(rule: Rule, settings: &Retention, now: i64) -> i64 {
    now - period(rule, settings)
}

const RULES: [Rule; 3] = [Rule::ClosedGrace, Rule::MaxIdle, Rule::MaxLife];

fn due(
    conn: &Db,
    rule: Rule,
    settings: &Retention,
    now: i64,
    held: bool,
    limit: i64,
) -> Result<Vec<CandidateId>> {
    Ok(due_since(conn, rule, settings, now, held, limit)?
        .into_iter()
        .map(|(id, _)| id)
        .collect())
}

/// [`due`], each with the time the rule counts from.
fn due_since(
    conn: &Db,
    rule: Rule,
    settings: &Retention,
    now: i64,
    held: bool,
    limit: i64,
) -> Result<Vec<(CandidateId, i64)>> {
    rows::due_candidates(conn, rule, cutoff(rule, settings, now), held, limit)
}

/// Who the next run would erase, by which rule, since when (the dry run's list and the DPO
/// console's retention page): each candidate once, under the first rule that makes it due.
pub struct Preview {
    /// Due per rule, zero included.
    pub erased: BTreeMap<&'static str, u64>,
    /// Every candidate due, rule by rule.
    pub due: Vec<DueCandidate>,
    /// Due, but kept by a legal hold.
    pub held: u64,
}

/// [`Preview`] at `now`. Reads only: it takes no lock and writes no entry (a caller that
/// shows it to a DPO records that decision).
pub fn preview(vault: &Vault, settings: &Retention, now: i64) -> Result<Preview> {
    let mut seen = std::collections::BTreeSet::new();
    let mut preview = Preview {
        erased: RULES.iter().map(|rule| (rule.as_str(), 0)).collect(),
        due: Vec::new(),
        held: 0,
    };
    vault.readers().read(|conn| {
        for rule in RULES {
            for (id, since) in due_since(conn, rule, settings, now, false, i64::MAX)? {
                if seen.insert(id) {
                    *preview.erased.entry(rule.as_str()).or_default() += 1;
                    preview.due.push(DueCandidate {
                        candidate_id: id,
                        rule: rule.as_str(),
                        due_since: crate::clock::rfc3339(
                            since.saturating_add(period(rule, settings)),
                        ),
                    });
                }
            }
        }
        Ok(())
    })?;
    preview.held = held_due(vault, settings, now)?;
    Ok(preview)
}

/// Candidates due under some rule but kept by a legal hold, each counted once.
fn held_due(vault: &Vault, settings: &Retention, now: i64) -> Result<u64> {
    vault.readers().read(|conn| {
        let mut held = std::collections::BTreeSet::new();
        for rule in RULES {
            held.extend(due(conn, rule, settings, now, true, i64::MAX)?);
        }
        Ok(held.len() as u64)
    })
}

/// Runs retention once. `progress(erased so far)`.
///
/// On PostgreSQL, a run that erased someone ends by rotating the KEK and destroying the old
/// one (`unlock` opens the keyring for that; without it the report says the erasure waits for
/// the next rotation): deleted rows outlive their deletion there, in dead tuples, the WAL and
/// base backups, so an erasure is complete only once no key that still exists can unwrap
/// any copy of the candidate's data key (SECURITY.md, "Erasure on PostgreSQL").
pub fn run(
    vault: &Vault,
    settings: &Retention,
    dry_run: bool,
    unlock: Option<&Unlock>,
    progress: &dyn Fn(u64),
) -> Result<RetentionReport> {
    let started = std::time::Instant::now();
    // One run at a time, across every process and node of the vault.
    let lock = vault
        .paths()
        .store()
        .try_lock("retention", &vault.paths().retention_lock())?
        .map_err(|lock| Error::RetentionLocked { lock })?;

    let now = vault.now();
    let mut report = RetentionReport {
        dry_run,
        started_at: crate::clock::rfc3339(now),
        // Every rule is reported, zero included, so monitoring can read each count.
        erased: RULES.iter().map(|rule| (rule.as_str(), 0)).collect(),
        total: 0,
        held: 0,
        failures: 0,
        duration_ms: 0,
        checkpoint: None,
        kek_destroyed: Vec::new(),
        erasure_pending_rotation: false,
        due: Vec::new(),
    };
    if dry_run {
        let preview = preview(vault, settings, now)?;
        report.held = preview.held;
        report.erased = preview.erased;
        report.total = preview.due.len() as u64;
        report.due = preview.due;
    } else {
        report.held = held_due(vault, settings, now)?;
        let system = system_principal();
        let request_id = new_request_id();
        // Candidates that failed are not retried in this run (so a bad row cannot loop), nor
        // are those found held or no longer due when their erasure was written.
        let mut failed = std::collections::BTreeSet::new();
        let mut skipped = std::collections::BTreeSet::new();
        for rule in RULES {
            loop {
                let batch: Vec<CandidateId> = vault
                    .readers()
                    .read(|conn| {
                        due(
                            conn,
                            rule,
                            settings,
                            now,
                            false,
                            (BATCH + failed.len() + skipped.len()) as i64,
                        )
                    })?
                    .into_iter()
                    .filter(|id| !failed.contains(id) && !skipped.contains(id))
                    .take(BATCH)
                    .collect();
                if batch.is_empty() {
                    break;
                }
                // Policy decides each erasure (the system principal may erase; nothing else is
                // assumed). Facts need the control group: only due candidates are opened.
                let mut decided = Vec::with_capacity(batch.len());
                for id in batch {
                    // Erasure needs no plaintext: a candidate whose control group no longer
                    // opens is decided on the most restrictive facts (see `erasure_facts`).
                    let facts = vault.readers().read(|conn| vault.erasure_facts(conn, &id));
                    let decision = match facts {
                        Ok(Some((facts, _))) => vault.policy().decide(&Request::on_candidate(
                            &system,
                            Action::RetentionErase,
                            &facts,
                        )),
                        Ok(None) => continue,
                        Err(e) => {
                            tracing::error!(error = %e, rule = rule.as_str(), "retention could not read a due candidate; it is kept and counted as a failure");
                            failed.insert(id);
                            continue;
                        }
                    };
                    let Some(allowed) = decision.allowed() else {
                        tracing::error!(rule = rule.as_str(), "policy refused a retention erasure; check the system principal's permit in policy/");
                        failed.insert(id);
                        continue;
                    };
                    decided.push((id, allowed));
                }
                let request_id = request_id.clone();
                let actor = system_actor();
                let cutoff = cutoff(rule, settings, now);
                let (erased, held_now, passed) = vault.writer().write(move |ctx| {
                    let (mut erased, mut held_now, mut passed) = (0u64, Vec::new(), Vec::new());
                    for (id, allowed) in decided {
                        // INVARIANT: hold and rule are checked again in the erasing
                        // transaction: a hold acknowledged before it is never overtaken.
                        let condition = rows::EraseCondition::Due { rule, cutoff };
                        match rows::erase_candidate(ctx.conn, ctx.integrity, &allowed, condition)? {
                            rows::Erasure::Erased => {}
                            rows::Erasure::Held => {
                                held_now.push(id);
                                continue;
                            }
                            rows::Erasure::NotDue | rows::Erasure::Gone => {
                                passed.push(id);
                                continue;
                            }
                        }
                        let mut record =
                            Record::new("retention.erase", &actor, Outcome::Allow, &request_id);
                        record.candidate = Some(id);
                        record.groups = FieldGroup::ALL.iter().map(|g| g.to_string()).collect();
                        record.policy_ids = allowed.policy_ids().to_vec();
                        record.note = Some(format!("rule={}", rule.as_str()));
                        ctx.audit.append(record)?;
                        erased += 1;
                    }
                    Ok((erased, held_now, passed))
                })?;
                // Held since the batch was selected: kept, counted, and not selected again.
                report.held += held_now.len() as u64;
                skipped.extend(held_now);
                skipped.extend(passed);
                *report.erased.entry(rule.as_str()).or_default() += erased;
                report.total += erased;
                progress(report.total);
            }
        }
        report.failures = failed.len() as u64;
        if vault.paths().store().is_postgres() && report.total > 0 {
            match unlock {
                Some(unlock) => {
                    let rotation = vault.rotate_keys(unlock, RotateIdentity::Keep, &|_, _| {})?;
                    report.kek_destroyed = rotation.retired;
                }
                None => {
                    tracing::warn!("the erased candidates' data keys are deleted, but older copies of the PostgreSQL database still hold them wrapped under the current KEK: run `cvvault keys rotate` to finish the erasure");
                    report.erasure_pending_rotation = true;
                }
            }
        }
        let summary = match report.kek_destroyed.as_slice() {
            [] => format!(
                "erased={} held={} failures={}",
                report.total, report.held, report.failures
            ),
            destroyed => format!(
                "erased={} held={} failures={} kek_destroyed={}",
                report.total,
                report.held,
                report.failures,
                destroyed
                    .iter()
                    .map(u32::to_string)
                    .collect::<Vec<_>>()
                    .join(",")
            ),
        };
        vault.writer().write(move |ctx| {
            let mut record = Record::new(
                "retention.run",
                &system_actor(),
                Outcome::Allow,
                &new_request_id(),
            );
            record.note = Some(summary);
            ctx.audit.append(record).map(|_| ())
        })?;
        vault.truncate_wal()?;
        report.checkpoint = vault.sign_checkpoint()?;
    }
    report.duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    drop(lock);
    Ok(report)
}
