//! Issue #5: retention by crypto-shredding. Each rule erases exactly the due candidates, on the
//! injected clock; runs are idempotent, previewable and safe to kill; legal holds keep a
//! candidate; nothing of an erased candidate stays in the database file or its WAL; every
//! erasure is audited and provable.

// A test crate: a failed unwrap, expect or index is a failed test (clippy's
// allow-*-in-tests settings cover only `#[test]` functions, not helpers or `common`).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;

use common::{contains, cvvault, db_and_wal, stderr, stdout, Fixture, START};
use cvvault::audit::entry::Outcome;
use cvvault::ids::{AssignmentId, CandidateId};
use cvvault::settings::Retention;
use cvvault::synth::Synth;
use cvvault::vault::retention::{self, RetentionReport};
use cvvault::vault::Vault;
use cvvault::Error;
use rand::Rng;

const DAY: i64 = 86_400;

// ----- helpers -----

fn settings(grace: u32, idle: u32, life: u32) -> Retention {
    Retention::parse(&format!(
        "grace_after_close_days = {grace}\nmax_idle_days = {idle}\nmax_life_days = {life}\n"
    ))
    .unwrap()
}

/// Writes `policy/retention.toml` (what the binary reads).
fn write_settings(fixture: &Fixture, grace: u32, idle: u32, life: u32) {
    std::fs::write(
        fixture.paths.retention_settings(),
        format!(
            "grace_after_close_days = {grace}\nmax_idle_days = {idle}\nmax_life_days = {life}\n"
        ),
    )
    .unwrap();
}

fn run(fixture: &Fixture, settings: &Retention) -> RetentionReport {
    retention::run(
        &fixture.vault,
        settings,
        false,
        Some(&fixture.unlock()),
        &|_| {},
    )
    .unwrap()
}

fn dry_run(fixture: &Fixture, settings: &Retention) -> RetentionReport {
    retention::run(&fixture.vault, settings, true, None, &|_| {}).unwrap()
}

fn erased(report: &RetentionReport, rule: &str) -> u64 {
    report.erased.get(rule).copied().unwrap_or(0)
}

/// Rows a candidate has in (candidates, sealed_profiles, assignments).
fn rows_of(conn: &rusqlite::Connection, id: &CandidateId) -> (i64, i64, i64) {
    let count = |table: &str| -> i64 {
        conn.query_row(
            &format!("SELECT count(*) FROM {table} WHERE candidate_id = ?1"),
            [&id.as_bytes()[..]],
            |r| r.get(0),
        )
        .unwrap()
    };
    (
        count("candidates"),
        count("sealed_profiles"),
        count("assignments"),
    )
}

fn exists(fixture: &Fixture, id: &CandidateId) -> bool {
    let id = common::blob_literal(id.as_bytes());
    let (keys, sealed) = common::query_pair(
        fixture.dir.path(),
        &format!(
            "SELECT (SELECT count(*) FROM candidates WHERE candidate_id = {id}),
                    (SELECT count(*) FROM sealed_profiles WHERE candidate_id = {id})"
        ),
    );
    assert_eq!(keys, sealed, "a candidate is whole or gone");
    keys == 1
}

fn close(fixture: &Fixture, assignment: &AssignmentId) {
    fixture
        .vault
        .close_assignment(&fixture.as_("cw"), assignment, "assignment completed")
        .unwrap();
}

/// The stored entry texts, in order.
fn raw_entries(conn: &rusqlite::Connection) -> Vec<String> {
    let mut stmt = conn
        .prepare("SELECT entry FROM audit_entries ORDER BY entry_index")
        .unwrap();
    let rows = stmt.query_map([], |r| r.get::<_, String>(0)).unwrap();
    rows.map(Result::unwrap).collect()
}

fn integrity_ok(conn: &rusqlite::Connection) {
    let result: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(result, "ok");
    let violations = conn
        .prepare("PRAGMA foreign_key_check")
        .unwrap()
        .query_map([], |_| Ok(()))
        .unwrap()
        .count();
    assert_eq!(violations, 0, "foreign keys hold");
}

fn all_output(o: &std::process::Output) -> String {
    format!("{}{}", stdout(o), stderr(o))
}

/// `n` profiles carrying `prefix`-numbered markers, as import lines.
fn marked_ndjson(prefix: &str, n: usize, seed: u64) -> (Vec<u8>, Vec<String>) {
    let mut synth = Synth::new(seed);
    let mut out = Vec::new();
    let mut markers = Vec::new();
    for i in 0..n {
        let marker = format!("{prefix}{i:05}");
        let mut profile = synth.profile_with_marker(&marker);
        profile.control.protected = false;
        serde_json::to_writer(&mut out, &profile).unwrap();
        out.push(b'\n');
        markers.push(marker);
    }
    (out, markers)
}

fn import(
    vault: &Vault,
    principal: &cvvault::policy::PrincipalFacts,
    lines: &[u8],
) -> Vec<CandidateId> {
    let owned = lines.to_vec();
    let open = move || -> cvvault::Result<Box<dyn std::io::BufRead>> {
        Ok(Box::new(std::io::Cursor::new(owned.clone())))
    };
    let report = vault
        .import(
            principal,
            &open,
            &cvvault::vault::ImportOptions::default(),
            &|_, _| {},
        )
        .unwrap();
    assert!(report.rejected.is_empty(), "{:?}", report.rejected);
    report.ids
}

/// Opens a coaching assignment for each candidate, from several threads (so the writer
/// commits them in groups).
fn assign_all_coaching(vault: &Vault, cw: &cvvault::policy::PrincipalFacts, ids: &[CandidateId]) {
    std::thread::scope(|scope| {
        for part in ids.chunks(ids.len().div_ceil(8).max(1)) {
            scope.spawn(move || {
                for id in part {
                    vault
                        .open_assignment(
                            cw,
                            cvvault::vault::OpenAssignment {
                                candidate_id: *id,
                                org: "coach-org".parse().unwrap(),
                                kind: "coaching".parse().unwrap(),
                                purpose: "coaching".parse().unwrap(),
                            },
                        )
                        .unwrap();
                }
            });
        }
    });
}

// ----- the rules -----

#[test]
fn each_rule_erases_exactly_the_due_candidates_and_a_second_run_nothing() {
    crate::sqlite_only!();
    let fixture = Fixture::new();
    let rules = settings(2, 30, 1095);
    // closed: its only assignment closes today; due in 2 days (closed-grace).
    let closed = fixture.register_marked("RULEMARKclosed", false, false);
    let closed_assignment = fixture.assign(closed, "coach-org", "coaching", "coaching");
    // half_open: one assignment closed, one open; stays.
    let half_open = fixture.register_marked("RULEMARKhalf", false, false);
    let half_coaching = fixture.assign(half_open, "coach-org", "coaching", "coaching");
    let half_matching = fixture.assign(half_open, "emp-org", "matching", "recruitment");
    // never: never assigned; due after 30 days (max-idle).
    let never = fixture.register_marked("RULEMARKnever", false, false);
    // open: an open assignment throughout; due after 1095 days (max-life).
    let open = fixture.register_marked("RULEMARKopen", false, false);
    fixture.assign(open, "coach-org", "coaching", "coaching");
    close(&fixture, &closed_assignment);
    close(&fixture, &half_coaching);

    fixture.clock.advance(DAY);
    let report = run(&fixture, &rules);
    assert_eq!(
        (report.total, report.held, report.failures),
        (0, 0, 0),
        "{report:?}"
    );
    assert!([closed, half_open, never, open]
        .iter()
        .all(|id| exists(&fixture, id)));

    fixture.clock.advance(DAY); // exactly the grace period since the close
    let report = run(&fixture, &rules);
    assert_eq!(
        (report.total, erased(&report, "closed-grace")),
        (1, 1),
        "{report:?}"
    );
    assert!(!exists(&fixture, &closed));
    assert!([half_open, never, open]
        .iter()
        .all(|id| exists(&fixture, id)));
    assert_eq!(
        rows_of(&fixture.raw(), &closed),
        (0, 0, 0),
        "assignments go with the candidate"
    );
    let again = run(&fixture, &rules);
    assert_eq!(again.total, 0, "{again:?}");

    fixture.clock.advance(27 * DAY); // day 29: not yet idle for 30 days
    assert_eq!(run(&fixture, &rules).total, 0);
    fixture.clock.advance(DAY); // day 30
    let report = run(&fixture, &rules);
    assert_eq!(
        (report.total, erased(&report, "max-idle")),
        (1, 1),
        "{report:?}"
    );
    assert!(!exists(&fixture, &never));
    assert!(exists(&fixture, &half_open) && exists(&fixture, &open));
    assert_eq!(run(&fixture, &rules).total, 0);

    // half_open's last assignment closes: erased two days later, under closed-grace.
    close(&fixture, &half_matching);
    fixture.clock.advance(DAY);
    assert_eq!(run(&fixture, &rules).total, 0);
    fixture.clock.advance(DAY);
    let report = run(&fixture, &rules);
    assert_eq!(
        (report.total, erased(&report, "closed-grace")),
        (1, 1),
        "{report:?}"
    );
    assert!(!exists(&fixture, &half_open) && exists(&fixture, &open));

    // open reaches the longest life, open assignment or not.
    fixture.clock.advance((1095 - 32 - 1) * DAY);
    assert_eq!(run(&fixture, &rules).total, 0);
    fixture.clock.advance(DAY);
    let report = run(&fixture, &rules);
    assert_eq!(
        (report.total, erased(&report, "max-life")),
        (1, 1),
        "{report:?}"
    );
    assert_eq!(fixture.vault.candidate_count().unwrap(), 0);
    assert_eq!(run(&fixture, &rules).total, 0);

    // One retention.erase entry per erasure, naming the rule; one retention.run per real run.
    let conn = fixture.raw();
    let entries: Vec<cvvault::audit::entry::Entry> = raw_entries(&conn)
        .iter()
        .map(|t| serde_json::from_str(t).unwrap())
        .collect();
    let erasures: Vec<&str> = entries
        .iter()
        .filter(|e| e.action == "retention.erase")
        .map(|e| e.note.as_deref().unwrap())
        .collect();
    assert_eq!(
        erasures,
        [
            "rule=closed-grace",
            "rule=max-idle",
            "rule=closed-grace",
            "rule=max-life"
        ]
    );
    for e in entries.iter().filter(|e| e.action == "retention.erase") {
        assert_eq!((e.actor.as_str(), e.decision), ("system", Outcome::Allow));
        assert_eq!(e.policy_ids, ["system-retention-erase"]);
        assert!(e.candidate.as_deref().unwrap().starts_with("hmac-sha256:"));
    }
    assert_eq!(
        entries
            .iter()
            .filter(|e| e.action == "retention.run")
            .count(),
        11
    );
    fixture
        .vault
        .audit_verify(&fixture.as_("dpo"), vec![], &|_| {})
        .unwrap();
}

#[test]
fn a_dry_run_changes_nothing_and_counts_what_a_real_run_then_erases() {
    crate::sqlite_only!();
    let fixture = Fixture::new();
    let rules = settings(2, 30, 400);
    let mut ids = Vec::new();
    for n in 0..3 {
        let id = fixture.register_marked(&format!("DRYMARKc{n}"), false, false);
        let a = fixture.assign(id, "coach-org", "coaching", "coaching");
        close(&fixture, &a);
        ids.push(id);
    }
    for n in 0..2 {
        ids.push(fixture.register_marked(&format!("DRYMARKi{n}"), false, false));
    }
    let old_open = fixture.register_marked("DRYMARKlife", false, false);
    fixture.assign(old_open, "coach-org", "coaching", "coaching");
    let held = fixture.register_marked("DRYMARKheld", false, false);
    fixture
        .vault
        .set_hold(&fixture.as_("dpo"), &held, true, "case 7")
        .unwrap();
    fixture.clock.advance(400 * DAY);
    let young = fixture.register_marked("DRYMARKyoung", false, false);
    fixture.assign(young, "coach-org", "coaching", "coaching");

    let before = db_and_wal(&fixture.db());
    let conn = fixture.raw();
    let entries_before = raw_entries(&conn).len();
    let preview = dry_run(&fixture, &rules);
    assert!(preview.dry_run);
    assert_eq!(preview.checkpoint, None);
    assert_eq!(
        raw_entries(&conn).len(),
        entries_before,
        "a dry run writes nothing to the trail"
    );
    assert_eq!(
        db_and_wal(&fixture.db()),
        before,
        "a dry run changes no byte of the database"
    );
    assert_eq!(fixture.vault.candidate_count().unwrap(), 8);
    assert_eq!(
        (
            erased(&preview, "closed-grace"),
            erased(&preview, "max-idle"),
            erased(&preview, "max-life")
        ),
        (3, 2, 1),
        "{preview:?}"
    );
    assert_eq!((preview.total, preview.held), (6, 1));
    // A second preview says the same.
    let again = dry_run(&fixture, &rules);
    assert_eq!(
        (again.erased.clone(), again.total, again.held),
        (preview.erased.clone(), 6, 1)
    );

    let real = run(&fixture, &rules);
    assert!(!real.dry_run);
    assert_eq!(
        real.erased, preview.erased,
        "the preview counted exactly what the run erased"
    );
    assert_eq!(
        (real.total, real.held, real.failures),
        (preview.total, preview.held, 0)
    );
    assert!(real.checkpoint.is_some(), "a real run signs a checkpoint");
    assert!(ids
        .iter()
        .chain([&old_open])
        .all(|id| !exists(&fixture, id)));
    assert!(exists(&fixture, &young) && exists(&fixture, &held));
    assert_eq!(dry_run(&fixture, &rules).total, 0);
}

#[test]
fn a_legal_hold_keeps_a_candidate_until_it_is_released() {
    let fixture = Fixture::new();
    let rules = settings(0, 30, 1095);
    let dpo = fixture.as_("dpo");
    let held = fixture.register_marked("HOLDMARKheld", false, false);
    let a = fixture.assign(held, "coach-org", "coaching", "coaching");
    close(&fixture, &a);
    let free = fixture.register_marked("HOLDMARKfree", false, false);
    let b = fixture.assign(free, "coach-org", "coaching", "coaching");
    close(&fixture, &b);

    // Only a DPO places holds.
    let refused = fixture
        .vault
        .set_hold(&fixture.as_("cw"), &held, true, "case 1");
    assert!(matches!(refused, Err(Error::Denied { .. })), "{refused:?}");
    fixture
        .vault
        .set_hold(&dpo, &held, true, "case 2026/41")
        .unwrap();
    fixture.clock.advance(DAY);
    let report = run(&fixture, &rules);
    assert_eq!((report.total, report.held), (1, 1), "{report:?}");
    assert!(exists(&fixture, &held) && !exists(&fixture, &free));
    // Still held long after every limit.
    fixture.clock.advance(2000 * DAY);
    let report = run(&fixture, &rules);
    assert_eq!(
        (report.total, report.held),
        (0, 1),
        "counted once though several rules apply: {report:?}"
    );
    assert!(exists(&fixture, &held));
    let report = fixture.vault.subject_access(&dpo, &held).unwrap();
    assert!(report.legal_hold);

    fixture.vault.set_hold(&dpo, &held, false, "").unwrap();
    let preview = dry_run(&fixture, &rules);
    assert_eq!((preview.total, preview.held), (1, 0));
    let report = run(&fixture, &rules);
    assert_eq!(
        (report.total, report.held, erased(&report, "closed-grace")),
        (1, 0, 1),
        "{report:?}"
    );
    assert!(!exists(&fixture, &held));
    let entries = fixture.vault.audit_search(&dpo, &held).unwrap();
    let actions: Vec<&str> = entries
        .iter()
        .map(|e| e.action.as_str())
        .filter(|a| *a != "subject_access" && *a != "audit.search")
        .collect();
    assert!(
        actions.ends_with(&["hold.place", "hold.release", "retention.erase"]),
        "{actions:?}"
    );
}

// ----- crash safety -----

fn spawn_retention(root: &Path) -> std::process::Child {
    common::vault_command(root)
        .args(["retention", "run"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn open_vault(fixture: &Fixture) -> Vault {
    Vault::open_with_clock(
        &fixture.paths,
        &fixture.unlock(),
        Arc::new(fixture.clock.clone()),
    )
    .unwrap()
}

/// Every candidate whole (keys, sealed groups and its assignment) or gone (no row anywhere).
fn whole_or_gone(conn: &rusqlite::Connection, ids: &[CandidateId]) -> (Vec<CandidateId>, usize) {
    let mut present = Vec::new();
    let mut gone = 0;
    for id in ids {
        match rows_of(conn, id) {
            (1, 1, 1) => present.push(*id),
            (0, 0, 0) => gone += 1,
            other => panic!("candidate {id} is half erased: {other:?}"),
        }
    }
    (present, gone)
}

#[test]
fn killed_runs_leave_every_candidate_whole_or_gone() {
    crate::sqlite_only!();
    const KILLS: usize = 12;
    let fixture = Fixture::new();
    let cw = fixture.as_("cw");
    // The binary runs on the system clock: place the candidates relative to it. Reading the
    // wall clock here sets up data; nothing asserts on elapsed time.
    let system_now = time::OffsetDateTime::now_utc().unix_timestamp();
    fixture.clock.advance(system_now - 20 * DAY - START);
    let (lines, _) = marked_ndjson("CRASHOLD", 6_000, 11);
    let old = import(&fixture.vault, &cw, &lines);
    assign_all_coaching(&fixture.vault, &cw, &old);
    fixture.clock.advance(19 * DAY);
    let (lines, young_markers) = marked_ndjson("CRASHYOUNG", 40, 12);
    let young = import(&fixture.vault, &cw, &lines);
    assign_all_coaching(&fixture.vault, &cw, &young);
    // Old candidates (20 days) outlive max_life_days = 5; the young (1 day) do not.
    write_settings(&fixture, 0, 30, 5);
    fixture.vault.close().unwrap();

    let coaching = "coaching".parse().unwrap();
    let mut rng = rand::thread_rng();
    let mut kills = 0;
    let mut finished = false;
    for round in 0..16 {
        let mut child = spawn_retention(fixture.dir.path());
        if round < KILLS {
            // Random, not timed: each kill lands somewhere in start-up, a batch, or the end.
            std::thread::sleep(std::time::Duration::from_millis(rng.gen_range(5..=300)));
            let _ = child.kill(); // SIGKILL; a child that already finished is simply reaped
            kills += 1;
        }
        let output = child.wait_with_output().unwrap();
        if output.status.success() {
            finished = round >= KILLS;
        } else {
            assert!(
                output.status.code().is_none(),
                "only the kill may stop a run: {}",
                stderr(&output)
            );
        }

        // The invariants hold after every kill.
        let conn = fixture.raw();
        integrity_ok(&conn);
        let (present, gone) = whole_or_gone(&conn, &old);
        let (young_present, _) = whole_or_gone(&conn, &young);
        assert_eq!(young_present.len(), young.len(), "nothing young is erased");
        let audited: usize = raw_entries(&conn)
            .iter()
            .filter(|e| e.contains("\"retention.erase\""))
            .count();
        assert_eq!(
            audited, gone,
            "exactly one erase entry per erased candidate"
        );
        drop(conn);
        let vault = open_vault(&fixture); // loads and checks the tree edge against the entries
        for id in present.iter().take(15) {
            let extract = vault.extract(&fixture.as_("coach"), id, &coaching).unwrap();
            assert!(!extract.groups.is_empty());
        }
        vault
            .audit_verify(&fixture.as_("dpo"), vec![], &|_| {})
            .unwrap();
        vault.close().unwrap();
        eprintln!("round {round}: {gone} of {} erased", old.len());
        if finished && present.is_empty() {
            break;
        }
    }
    assert!(finished && kills == KILLS, "the unkilled runs completed");

    let conn = fixture.raw();
    let (present, gone) = whole_or_gone(&conn, &old);
    assert_eq!((present.len(), gone), (0, old.len()));
    let lock_free: i64 = conn
        .query_row("SELECT count(*) FROM candidates", [], |r| r.get(0))
        .unwrap();
    assert_eq!(lock_free as usize, young.len());
    integrity_ok(&conn);
    drop(conn);
    let vault = open_vault(&fixture);
    for (id, marker) in young.iter().zip(&young_markers) {
        let extract = vault.extract(&fixture.as_("coach"), id, &coaching).unwrap();
        assert!(
            contains(&extract.json, marker.as_bytes()),
            "young candidates are fully readable"
        );
    }
    vault.close().unwrap();
    let out = cvvault(fixture.dir.path(), &["audit", "verify", "--as", "dpo"]);
    assert_eq!(out.status.code(), Some(0), "{}", all_output(&out));
}

// ----- nothing remains -----

#[test]
fn erased_candidates_leave_no_marker_or_wrapped_key_in_the_database_or_its_wal() {
    crate::sqlite_only!();
    let fixture = Fixture::new();
    let cw = fixture.as_("cw");
    // Enough candidates that the tables and indexes span many pages.
    let (lines, markers) = marked_ndjson("SHREDMARK", 600, 21);
    let ids = import(&fixture.vault, &cw, &lines);
    let keep: BTreeSet<CandidateId> = ids.iter().step_by(10).copied().collect();
    assign_all_coaching(
        &fixture.vault,
        &cw,
        &keep.iter().copied().collect::<Vec<_>>(),
    );
    let conn = fixture.raw();
    let mut secrets: Vec<(CandidateId, Vec<u8>, Vec<u8>)> = Vec::new();
    for id in &ids {
        let (wrapped, commitment): (Vec<u8>, Vec<u8>) = conn
            .query_row(
                "SELECT wrapped_dek, dek_commitment FROM candidate_keys WHERE candidate_id = ?1",
                [&id.as_bytes()[..]],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        secrets.push((*id, wrapped, commitment));
    }
    drop(conn);
    let before = db_and_wal(&fixture.db());
    assert!(
        secrets.iter().all(|(_, w, _)| contains(&before, w)),
        "the search finds wrapped keys while held"
    );

    // One by hand, the rest by retention (never assigned, idle past 30 days).
    let by_hand = ids[1];
    fixture.vault.erase(&cw, &by_hand).unwrap();
    fixture.clock.advance(31 * DAY);
    let report = run(&fixture, &settings(0, 30, 1095));
    assert_eq!(report.total as usize, ids.len() - keep.len() - 1);

    let after = db_and_wal(&fixture.db());
    for ((id, wrapped, commitment), marker) in secrets.iter().zip(&markers) {
        assert!(!contains(&after, marker.as_bytes()), "marker of {id} found");
        if keep.contains(id) {
            assert!(contains(&after, wrapped), "a kept candidate keeps its key");
            continue;
        }
        assert!(
            !contains(&after, wrapped),
            "the wrapped key of erased candidate {id} is still in the file"
        );
        assert!(
            !contains(&after, commitment),
            "the key commitment of erased candidate {id} is still in the file"
        );
    }
}

// ----- refusals and receipts -----

#[test]
fn an_extract_of_an_erased_candidate_is_refused_with_not_found_and_audited() {
    let fixture = Fixture::new();
    let id = fixture.register_marked("GONEMARKx", false, true);
    let a = fixture.assign(id, "emp-org", "matching", "recruitment");
    let recruitment = "recruitment".parse().unwrap();
    fixture
        .vault
        .extract(&fixture.as_("emp"), &id, &recruitment)
        .unwrap();
    close(&fixture, &a);
    fixture.clock.advance(DAY);
    assert_eq!(run(&fixture, &settings(0, 30, 1095)).total, 1);

    for who in ["emp", "coach", "cw"] {
        let refused = fixture.vault.extract(&fixture.as_(who), &id, &recruitment);
        assert!(
            matches!(refused, Err(Error::NotFound { .. })),
            "{who}: {:?}",
            refused.err()
        );
    }
    let entries = fixture
        .vault
        .audit_search(&fixture.as_("dpo"), &id)
        .unwrap();
    let pseudonym = entries[0].candidate.clone().unwrap();
    let refusals: Vec<_> = entries
        .iter()
        .filter(|e| e.action == "extract" && e.decision == Outcome::Deny)
        .collect();
    assert_eq!(refusals.len(), 3);
    for e in refusals {
        assert_eq!(e.candidate.as_deref(), Some(pseudonym.as_str()));
        assert_eq!(e.note.as_deref(), Some("not-found"));
        assert_eq!(e.purpose.as_deref(), Some("recruitment"));
    }
    // The same through the binary.
    fixture.vault.close().unwrap();
    let out = cvvault(
        fixture.dir.path(),
        &[
            "extract",
            "--as",
            "emp",
            "--candidate",
            &id.to_string(),
            "--purpose",
            "recruitment",
        ],
    );
    assert_eq!(out.status.code(), Some(4), "{}", all_output(&out));
    assert!(!all_output(&out).contains("GONEMARKx"));
}

#[test]
fn an_erasure_receipt_verifies_and_a_kept_candidate_has_none() {
    let fixture = Fixture::new();
    let erased_id = fixture.register_marked("RECEIPTMARKa", false, false);
    let kept = fixture.register_marked("RECEIPTMARKb", false, false);
    fixture.assign(kept, "coach-org", "coaching", "coaching");
    let by_hand = fixture.register_marked("RECEIPTMARKc", false, false);
    fixture.vault.erase(&fixture.as_("cw"), &by_hand).unwrap();
    fixture.clock.advance(31 * DAY);
    assert_eq!(run(&fixture, &settings(0, 30, 1095)).total, 1);
    let key = fixture.vault.verifier_key();
    fixture.vault.close().unwrap();
    let root = fixture.dir.path();

    for (id, action) in [(erased_id, "retention.erase"), (by_hand, "candidate.erase")] {
        let out = cvvault(
            root,
            &[
                "audit",
                "receipt",
                "--as",
                "dpo",
                "--candidate",
                &id.to_string(),
            ],
        );
        assert_eq!(out.status.code(), Some(0), "{}", all_output(&out));
        let receipt: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(receipt["format"], "cvvault-erasure-receipt/v1");
        assert_eq!(receipt["candidate_id"], id.to_string());
        let entry: cvvault::audit::entry::Entry =
            serde_json::from_str(receipt["proof"]["entry"].as_str().unwrap()).unwrap();
        assert_eq!(
            (entry.action.as_str(), entry.decision),
            (action, Outcome::Allow)
        );
        assert_eq!(
            entry.candidate.as_deref(),
            receipt["candidate_pseudonym"].as_str()
        );
        let file = root.join(format!("receipt-{id}.json"));
        std::fs::write(&file, &out.stdout).unwrap();
        let ok = cvvault(root, &["audit", "verify-proof", file.to_str().unwrap()]);
        assert_eq!(ok.status.code(), Some(0), "{}", all_output(&ok));
        let offline = cvvault(
            root,
            &[
                "audit",
                "verify-proof",
                file.to_str().unwrap(),
                "--key",
                &key,
                "--allow-unbound",
            ],
        );
        assert_eq!(offline.status.code(), Some(0), "{}", all_output(&offline));
    }

    let out = cvvault(
        root,
        &[
            "audit",
            "receipt",
            "--as",
            "dpo",
            "--candidate",
            &kept.to_string(),
        ],
    );
    assert_eq!(out.status.code(), Some(4), "{}", all_output(&out));
    assert!(
        stderr(&out).contains("has not been erased"),
        "{}",
        stderr(&out)
    );
    let never = CandidateId::random();
    let out = cvvault(
        root,
        &[
            "audit",
            "receipt",
            "--as",
            "dpo",
            "--candidate",
            &never.to_string(),
        ],
    );
    assert_eq!(out.status.code(), Some(4), "{}", all_output(&out));
    let out = cvvault(
        root,
        &[
            "audit",
            "receipt",
            "--as",
            "emp",
            "--candidate",
            &erased_id.to_string(),
        ],
    );
    assert_eq!(
        out.status.code(),
        Some(4),
        "only a DPO reads the trail, and an employer is told what an unknown id would tell it: {}",
        all_output(&out)
    );
}

// ----- the job's edges -----

#[test]
fn a_held_retention_lock_makes_a_run_exit_75() {
    let fixture = Fixture::new();
    let id = fixture.register_marked("LOCKMARKa", false, false);
    // Due at once: its only assignment closed, with no grace after the close.
    let assignment = fixture.assign(id, "coach-org", "coaching", "coaching");
    fixture
        .vault
        .close_assignment(&fixture.as_("cw"), &assignment, "coaching completed")
        .unwrap();
    fixture.vault.close().unwrap();
    write_settings(&fixture, 0, 30, 1095);
    // The lock another run would hold (a file on SQLite, an advisory lock on PostgreSQL).
    let lock = fixture
        .paths
        .store()
        .try_lock("retention", &fixture.paths.retention_lock())
        .unwrap()
        .unwrap();
    let out = cvvault(fixture.dir.path(), &["retention", "run"]);
    assert_eq!(out.status.code(), Some(75), "{}", all_output(&out));
    assert!(
        stderr(&out).contains("another retention run is in progress"),
        "{}",
        stderr(&out)
    );
    assert!(exists(&fixture, &id), "the refused run erased nothing");
    let dry = cvvault(fixture.dir.path(), &["retention", "run", "--dry-run"]);
    assert_eq!(dry.status.code(), Some(75), "{}", all_output(&dry));
    // The README's cron line runs with --json: its failure is JSON too, so the log has it.
    let cron = cvvault(fixture.dir.path(), &["--json", "retention", "run"]);
    assert_eq!(cron.status.code(), Some(75), "{}", all_output(&cron));
    let failure: serde_json::Value = serde_json::from_str(stderr(&cron).trim()).unwrap();
    assert_eq!(failure["exit_code"], 75);
    assert!(
        failure["error"]
            .as_str()
            .unwrap()
            .contains("another retention run is in progress"),
        "{failure}"
    );

    drop(lock);
    // A dry run says whom it would erase, under which rule, and since when.
    let dry = cvvault(fixture.dir.path(), &["retention", "run", "--dry-run"]);
    assert_eq!(dry.status.code(), Some(0), "{}", all_output(&dry));
    let line = stdout(&dry);
    assert!(
        line.contains(&format!("{id}  closed-grace  due since ")),
        "{line}"
    );
    let dry = cvvault(
        fixture.dir.path(),
        &["--json", "retention", "run", "--dry-run"],
    );
    let report: serde_json::Value = serde_json::from_str(stdout(&dry).trim()).unwrap();
    assert_eq!(report["due"][0]["candidate_id"], id.to_string());
    assert_eq!(report["due"][0]["rule"], "closed-grace");
    assert!(report["due"][0]["due_since"]
        .as_str()
        .unwrap()
        .ends_with('Z'));
    let out = cvvault(fixture.dir.path(), &["retention", "run"]);
    assert_eq!(out.status.code(), Some(0), "{}", all_output(&out));
    assert!(!exists(&fixture, &id));
}

#[test]
fn the_json_report_has_counts_per_rule_held_failures_and_duration() {
    let fixture = Fixture::new();
    let system_now = time::OffsetDateTime::now_utc().unix_timestamp();
    fixture.clock.advance(system_now - 40 * DAY - START);
    let closed = fixture.register_marked("JSONMARKa", false, false);
    let a = fixture.assign(closed, "coach-org", "coaching", "coaching");
    close(&fixture, &a);
    fixture.register_marked("JSONMARKb", false, false);
    let held = fixture.register_marked("JSONMARKc", false, false);
    fixture
        .vault
        .set_hold(&fixture.as_("dpo"), &held, true, "case 9")
        .unwrap();
    fixture.register_marked("JSONMARKd", false, false);
    fixture.vault.close().unwrap();
    // grace 2 days, idle 30 days: one closed-grace, two max-idle, one held, nothing max-life.
    write_settings(&fixture, 2, 30, 1095);

    let out = cvvault(
        fixture.dir.path(),
        &["--json", "retention", "run", "--dry-run"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", all_output(&out));
    let preview: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let out = cvvault(fixture.dir.path(), &["--json", "retention", "run"]);
    assert_eq!(out.status.code(), Some(0), "{}", all_output(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for r in [&preview, &report] {
        assert_eq!(r["erased"]["closed-grace"], 1, "{r}");
        assert_eq!(r["erased"]["max-idle"], 2, "{r}");
        assert_eq!(
            r["erased"]["max-life"], 0,
            "every rule is reported, zero included: {r}"
        );
        assert_eq!(
            (
                r["total"].as_u64(),
                r["held"].as_u64(),
                r["failures"].as_u64()
            ),
            (Some(3), Some(1), Some(0))
        );
        assert!(r["duration_ms"].is_u64(), "{r}");
        assert!(r["started_at"].is_string());
    }
    assert_eq!(
        (preview["dry_run"].as_bool(), report["dry_run"].as_bool()),
        (Some(true), Some(false))
    );
    assert!(
        report["checkpoint"]
            .as_str()
            .is_some_and(|c| c.contains('\u{2014}')),
        "{report}"
    );
    let text = cvvault(fixture.dir.path(), &["retention", "run"]);
    assert_eq!(text.status.code(), Some(0));
    assert!(
        stdout(&text).contains("erased 0 candidate(s)") && stdout(&text).contains("held 1"),
        "{}",
        stdout(&text)
    );
}

#[test]
fn a_receipt_that_does_not_prove_its_candidates_erasure_is_refused() {
    let fixture = Fixture::new();
    let a = fixture.register_marked("FORGEMARKa", false, false);
    let b = fixture.register_marked("FORGEMARKb", false, false);
    let kept = fixture.register_marked("FORGEMARKc", false, false);
    fixture.assign(kept, "coach-org", "coaching", "coaching");
    fixture.clock.advance(31 * DAY);
    assert_eq!(run(&fixture, &settings(0, 30, 1095)).total, 2);
    let key = fixture.vault.verifier_key();
    let dpo = fixture.as_("dpo");
    let receipt = |id: &CandidateId| {
        serde_json::to_value(fixture.vault.erasure_receipt(&dpo, id).unwrap()).unwrap()
    };
    let (receipt_a, receipt_b) = (receipt(&a), receipt(&b));
    // A valid proof of an entry that is not an erasure (the kept candidate's registration).
    let kept_register = fixture.vault.audit_search(&dpo, &kept).unwrap()[0].index;
    let register_proof =
        serde_json::to_value(fixture.vault.audit_prove(&dpo, kept_register).unwrap()).unwrap();
    let kept_pseudonym = fixture.vault.audit_search(&dpo, &kept).unwrap()[0]
        .candidate
        .clone()
        .unwrap();
    fixture.vault.close().unwrap();
    let root = fixture.dir.path();

    // b's id and pseudonym with a's erase entry.
    let mut swapped_proof = receipt_b.clone();
    swapped_proof["proof"] = receipt_a["proof"].clone();
    // The kept candidate's id and pseudonym with a's erase entry and a's pseudonym's place taken.
    let mut claims_kept = receipt_a.clone();
    claims_kept["candidate_id"] = kept.to_string().into();
    claims_kept["candidate_pseudonym"] = kept_pseudonym.clone().into();
    // The kept candidate's own, genuine, registration entry.
    let mut not_an_erasure = receipt_a.clone();
    not_an_erasure["candidate_id"] = kept.to_string().into();
    not_an_erasure["candidate_pseudonym"] = kept_pseudonym.into();
    not_an_erasure["proof"] = register_proof;
    // a's genuine proof, claimed for the kept candidate's id (only the audit key can tell).
    let mut wrong_id = receipt_a.clone();
    wrong_id["candidate_id"] = kept.to_string().into();

    for (name, forged, offline_detects) in [
        ("swapped-proof", swapped_proof, true),
        ("claims-kept", claims_kept, true),
        ("not-an-erasure", not_an_erasure, true),
        ("wrong-id", wrong_id, false),
    ] {
        let file = root.join(format!("{name}.json"));
        std::fs::write(&file, serde_json::to_vec(&forged).unwrap()).unwrap();
        let out = cvvault(root, &["audit", "verify-proof", file.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(17), "{name}: {}", all_output(&out));
        let offline = cvvault(
            root,
            &[
                "audit",
                "verify-proof",
                file.to_str().unwrap(),
                "--key",
                &key,
            ],
        );
        // Offline, a receipt's candidate id cannot be confirmed: it fails either way (before,
        // the relabelled receipt printed "proof valid" and exited 0).
        assert_eq!(
            offline.status.code(),
            Some(17),
            "{name}: {}",
            all_output(&offline)
        );
        if !offline_detects {
            assert!(
                all_output(&offline).contains("is NOT confirmed"),
                "{name}: {}",
                all_output(&offline)
            );
        }
        let unbound = cvvault(
            root,
            &[
                "audit",
                "verify-proof",
                file.to_str().unwrap(),
                "--key",
                &key,
                "--allow-unbound",
            ],
        );
        let expected = if offline_detects { Some(17) } else { Some(0) };
        assert_eq!(
            unbound.status.code(),
            expected,
            "{name}: {}",
            all_output(&unbound)
        );
    }
    for (id, genuine) in [(a, &receipt_a), (b, &receipt_b)] {
        let file = root.join(format!("genuine-{id}.json"));
        std::fs::write(&file, serde_json::to_vec(genuine).unwrap()).unwrap();
        let out = cvvault(root, &["audit", "verify-proof", file.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(0), "{}", all_output(&out));
        let offline = cvvault(
            root,
            &[
                "audit",
                "verify-proof",
                file.to_str().unwrap(),
                "--key",
                &key,
            ],
        );
        assert_eq!(offline.status.code(), Some(17), "{}", all_output(&offline));
        assert!(all_output(&offline).contains(&format!("candidate id {id} is NOT confirmed")));
    }
}
