//! Issue #4: the tamper-evident audit trail. Every decision is an entry; entries carry only
//! pseudonyms; tampering (altered, deleted, truncated) is detected and located; an audit write
//! failure fails the operation closed; proofs, checkpoints and subject access reports work
//! end to end, through the library and through the real binary.

// A test crate: a failed unwrap, expect or index is a failed test (clippy's
// allow-*-in-tests settings cover only `#[test]` functions, not helpers or `common`).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::path::{Path, PathBuf};

use common::{contains, cvvault, stderr, stdout, Fixture};
use cvvault::audit::entry::{Entry, Outcome};
use cvvault::audit::note::NoteVerifier;
use cvvault::ids::CandidateId;
use cvvault::Error;

// ----- helpers -----

/// Every stored entry, in index order, as (index, text).
fn raw_entries(fixture: &Fixture) -> Vec<(u64, String)> {
    common::query_int_text(
        fixture.dir.path(),
        "SELECT entry_index, entry FROM audit_entries ORDER BY entry_index",
    )
    .into_iter()
    .map(|(index, text)| (index as u64, text))
    .collect()
}

fn entry_count(fixture: &Fixture) -> u64 {
    common::query_pair(
        fixture.dir.path(),
        "SELECT count(*), CAST(0 AS BIGINT) FROM audit_entries",
    )
    .0 as u64
}

/// Drops the append-only triggers, as an attacker with write access to the file would.
fn drop_append_only_triggers(conn: &rusqlite::Connection) {
    conn.execute_batch(
        "DROP TRIGGER audit_entries_append_only_update;
         DROP TRIGGER audit_entries_append_only_delete;
         DROP TRIGGER audit_checkpoints_append_only_delete;
         DROP TRIGGER audit_checkpoints_append_only_update;",
    )
    .unwrap();
}

/// Changes exactly one byte of entry `index`: one hex digit of its request id.
fn alter_one_byte(conn: &rusqlite::Connection, index: u64) {
    let text: String = conn
        .query_row(
            "SELECT entry FROM audit_entries WHERE entry_index = ?1",
            [index as i64],
            |r| r.get(0),
        )
        .unwrap();
    let at = text.find("\"request_id\":\"").unwrap() + "\"request_id\":\"".len();
    let mut bytes = text.into_bytes();
    bytes[at] = if bytes[at] == b'a' { b'b' } else { b'a' };
    let altered = String::from_utf8(bytes).unwrap();
    let changed = conn
        .execute(
            "UPDATE audit_entries SET entry = ?2 WHERE entry_index = ?1",
            rusqlite::params![index as i64, altered],
        )
        .unwrap();
    assert_eq!(changed, 1);
}

/// The tree size a signed checkpoint note states (its second line).
fn checkpoint_size(note: &str) -> u64 {
    note.lines().nth(1).unwrap().parse().unwrap()
}

/// The candidate's pseudonym as its register entry recorded it.
fn pseudonym_of(fixture: &Fixture, id: &CandidateId) -> String {
    let entries = fixture.vault.audit_search(&fixture.as_("dpo"), id).unwrap();
    entries[0].candidate.clone().unwrap()
}

fn write_file(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn all_output(o: &std::process::Output) -> String {
    format!("{}{}", stdout(o), stderr(o))
}

/// A fixture with `count` candidates (some assigned, one extract), so the log has content.
fn busy_fixture(count: usize) -> (Fixture, Vec<CandidateId>) {
    let fixture = Fixture::new();
    let mut ids = Vec::new();
    for n in 0..count {
        let id = fixture.register_marked(&format!("BUSYMARK{n:04}"), false, n % 2 == 0);
        fixture.assign(id, "emp-org", "matching", "recruitment");
        ids.push(id);
    }
    (fixture, ids)
}

// ----- every decision is audited -----

#[test]
fn every_decision_is_audited_with_its_outcome_policies_purpose_groups_and_a_pseudonym() {
    let fixture = Fixture::new();
    let cw = fixture.as_("cw");
    let dpo = fixture.as_("dpo");
    let marker = "AUDITMARKq7w3";
    let id = fixture.register_marked(marker, false, false);
    let matching = fixture.assign(id, "emp-org", "matching", "recruitment");
    let coaching = fixture.assign(id, "coach-org", "coaching", "coaching");

    let allowed = fixture
        .vault
        .extract(&fixture.as_("emp"), &id, &"recruitment".parse().unwrap())
        .unwrap();
    assert!(
        contains(&allowed.json, marker.as_bytes()),
        "the professional group carries the marker"
    );
    let wrong_purpose =
        fixture
            .vault
            .extract(&fixture.as_("emp"), &id, &"coaching".parse().unwrap());
    assert!(
        matches!(wrong_purpose, Err(Error::NotFound { .. })),
        "{:?}",
        wrong_purpose.err()
    );
    let other_employer =
        fixture
            .vault
            .extract(&fixture.as_("emp2"), &id, &"recruitment".parse().unwrap());
    assert!(
        matches!(other_employer, Err(Error::NotFound { .. })),
        "{:?}",
        other_employer.err()
    );
    fixture
        .vault
        .close_assignment(&cw, &matching, "placed in work")
        .unwrap();
    fixture
        .vault
        .set_hold(&dpo, &id, true, "case 2026/17")
        .unwrap();
    fixture.vault.set_hold(&dpo, &id, false, "").unwrap();
    let denied_hold = fixture.vault.set_hold(&cw, &id, true, "case 2026/18");
    assert!(
        matches!(denied_hold, Err(Error::Denied { .. })),
        "{denied_hold:?}"
    );
    fixture
        .vault
        .close_assignment(&cw, &coaching, "coaching completed")
        .unwrap();
    fixture.vault.erase(&cw, &id).unwrap();

    let entries = fixture.vault.audit_search(&dpo, &id).unwrap();
    // The search is itself an entry about the candidate, the last one.
    assert_eq!(
        entries.last().map(|e| e.action.as_str()),
        Some("audit.search")
    );
    let summary: Vec<(&str, Outcome)> = entries
        .iter()
        .filter(|e| e.action != "audit.search")
        .map(|e| (e.action.as_str(), e.decision))
        .collect();
    assert_eq!(
        summary,
        [
            ("candidate.register", Outcome::Allow),
            ("assignment.open", Outcome::Allow),
            ("assignment.open", Outcome::Allow),
            ("extract", Outcome::Allow),
            ("extract", Outcome::Deny),
            ("extract", Outcome::Deny),
            ("assignment.close", Outcome::Allow),
            ("hold.place", Outcome::Allow),
            ("hold.release", Outcome::Allow),
            ("hold.place", Outcome::Deny),
            ("assignment.close", Outcome::Allow),
            ("candidate.erase", Outcome::Allow),
        ]
    );
    let pseudonym = entries[0].candidate.clone().unwrap();
    assert!(
        pseudonym.starts_with("hmac-sha256:") && pseudonym.len() == "hmac-sha256:".len() + 64,
        "{pseudonym}"
    );
    for e in &entries {
        assert_eq!(e.candidate.as_deref(), Some(pseudonym.as_str()), "{e:?}");
        assert!(
            e.policy_hash.starts_with("sha256:") && e.policy_hash.len() == 71,
            "{e:?}"
        );
        assert_eq!(e.v, 1);
    }
    let by_kind = |n: usize| &entries[n];
    assert_eq!(by_kind(0).policy_ids, ["caseworker-register"]);
    assert_eq!(by_kind(0).actor, "cw");
    assert_eq!(by_kind(1).policy_ids, ["caseworker-open-assignment"]);
    assert_eq!(by_kind(1).purpose.as_deref(), Some("recruitment"));
    assert!(by_kind(1)
        .assignment
        .as_deref()
        .is_some_and(|a| a.starts_with("hmac-sha256:")));
    assert_eq!(by_kind(2).purpose.as_deref(), Some("coaching"));

    let extract = by_kind(3);
    assert_eq!(
        (extract.actor.as_str(), extract.actor_org.as_deref()),
        ("emp", Some("emp-org"))
    );
    assert_eq!(extract.purpose.as_deref(), Some("recruitment"));
    assert_eq!(
        extract.groups,
        ["professional"],
        "no consent: professional only"
    );
    assert!(
        extract
            .policy_ids
            .contains(&"employer-professional-for-recruitment".to_owned()),
        "{extract:?}"
    );
    assert_eq!(extract.index, allowed.audit_index);

    let wrong = by_kind(4);
    assert_eq!(
        (wrong.actor.as_str(), wrong.purpose.as_deref()),
        ("emp", Some("coaching"))
    );
    assert!(
        !wrong.groups.is_empty(),
        "a denial records what was asked for"
    );
    assert!(!wrong
        .policy_ids
        .contains(&"employer-professional-for-recruitment".to_owned()));
    let other = by_kind(5);
    assert_eq!(
        (other.actor.as_str(), other.actor_org.as_deref()),
        ("emp2", Some("emp2-org"))
    );
    assert_eq!(other.purpose.as_deref(), Some("recruitment"));

    assert_eq!(by_kind(6).policy_ids, ["caseworker-close-assignment"]);
    assert_eq!(by_kind(7).policy_ids, ["dpo-legal-hold"]);
    assert_eq!(by_kind(7).actor, "dpo");
    assert_eq!(by_kind(8).policy_ids, ["dpo-legal-hold"]);
    assert!(
        by_kind(9).policy_ids.is_empty(),
        "nothing permits a caseworker's hold"
    );
    assert_eq!(by_kind(11).policy_ids, ["caseworker-erase-on-request"]);
    assert_eq!(by_kind(11).groups.len(), 5, "the erase covers every group");

    // The raw table agrees, and holds neither the id in clear nor any profile content.
    let raw = raw_entries(&fixture);
    let mine: Vec<&String> = raw
        .iter()
        .map(|(_, t)| t)
        .filter(|t| t.contains(&pseudonym))
        .collect();
    assert_eq!(mine.len(), entries.len());
    for (index, text) in &raw {
        let parsed: Entry = serde_json::from_str(text).unwrap();
        assert_eq!(parsed.index, *index);
        assert_eq!(
            parsed.canonical_bytes(),
            text.as_bytes(),
            "stored text is canonical"
        );
        assert!(
            !text.contains(&id.to_string()),
            "entry {index} names the candidate in clear: {text}"
        );
        assert!(!text.contains(
            &id.as_bytes()
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        ));
        assert!(
            !text.contains(marker),
            "entry {index} holds profile content"
        );
    }
}

// ----- tampering -----

#[test]
fn append_only_triggers_refuse_update_and_delete() {
    crate::sqlite_only!();
    let (fixture, _) = busy_fixture(2);
    fixture.vault.audit_checkpoint().unwrap();
    let conn = fixture.raw();
    for sql in [
        "UPDATE audit_entries SET entry = 'x' WHERE entry_index = 1",
        "DELETE FROM audit_entries WHERE entry_index = 1",
        "DELETE FROM audit_entries",
        "UPDATE audit_checkpoints SET note = 'x'",
        "DELETE FROM audit_checkpoints",
    ] {
        let err = conn.execute(sql, []).unwrap_err().to_string();
        assert!(err.contains("append-only"), "{sql}: {err}");
    }
    fixture
        .vault
        .audit_verify(&fixture.as_("dpo"), vec![], &|_| {})
        .unwrap();
}

#[test]
fn an_altered_entry_is_named_by_its_index() {
    crate::sqlite_only!();
    let (fixture, _) = busy_fixture(6);
    let total = entry_count(&fixture);
    let conn = fixture.raw();
    drop_append_only_triggers(&conn);
    for k in [0, 3, total / 2, total - 1] {
        let before: String = conn
            .query_row(
                "SELECT entry FROM audit_entries WHERE entry_index = ?1",
                [k as i64],
                |r| r.get(0),
            )
            .unwrap();
        alter_one_byte(&conn, k);
        let err = fixture
            .vault
            .audit_verify(&fixture.as_("dpo"), vec![], &|_| {})
            .unwrap_err();
        let Error::AuditTampered(message) = &err else {
            panic!("{err:?}")
        };
        assert!(
            message.contains(&format!("entry {k} was altered")),
            "k = {k}: {message}"
        );
        conn.execute(
            "UPDATE audit_entries SET entry = ?2 WHERE entry_index = ?1",
            rusqlite::params![k as i64, before],
        )
        .unwrap();
        fixture
            .vault
            .audit_verify(&fixture.as_("dpo"), vec![], &|_| {})
            .unwrap();
    }
}

#[test]
fn an_entry_altered_after_the_last_checkpoint_is_still_named() {
    crate::sqlite_only!();
    let (fixture, _) = busy_fixture(2);
    fixture.vault.audit_checkpoint().unwrap();
    fixture.register_marked("LATEMARK01", false, false);
    let last = entry_count(&fixture) - 1;
    let conn = fixture.raw();
    drop_append_only_triggers(&conn);
    alter_one_byte(&conn, last);
    let err = fixture
        .vault
        .audit_verify(&fixture.as_("dpo"), vec![], &|_| {})
        .unwrap_err();
    assert!(
        matches!(&err, Error::AuditTampered(m) if m.contains(&format!("entry {last} was altered"))),
        "{err}"
    );
}

#[test]
fn a_deleted_entry_is_detected_and_located() {
    crate::sqlite_only!();
    let (fixture, _) = busy_fixture(5);
    let conn = fixture.raw();
    drop_append_only_triggers(&conn);
    let k = entry_count(&fixture) / 2;
    conn.execute(
        "DELETE FROM audit_entries WHERE entry_index = ?1",
        [k as i64],
    )
    .unwrap();
    let err = fixture
        .vault
        .audit_verify(&fixture.as_("dpo"), vec![], &|_| {})
        .unwrap_err();
    let Error::AuditTampered(message) = &err else {
        panic!("{err:?}")
    };
    assert!(
        message.contains(&format!("entry {k} is missing")),
        "{message}"
    );
    assert!(message.contains("deleted"), "{message}");

    // The first entry too.
    conn.execute("DELETE FROM audit_entries WHERE entry_index = 0", [])
        .unwrap();
    let err = fixture
        .vault
        .audit_verify(&fixture.as_("dpo"), vec![], &|_| {})
        .unwrap_err();
    assert!(
        matches!(&err, Error::AuditTampered(m) if m.contains("entry 0 is missing")),
        "{err}"
    );
}

#[test]
fn a_deleted_last_entry_stops_the_vault_from_opening() {
    crate::sqlite_only!();
    let (fixture, _) = busy_fixture(2);
    fixture.vault.close().unwrap();
    let conn = fixture.raw();
    drop_append_only_triggers(&conn);
    conn.execute("DELETE FROM audit_entries WHERE entry_index = (SELECT max(entry_index) FROM audit_entries)", [])
        .unwrap();
    drop(conn);
    let reopened = cvvault::vault::Vault::open(&fixture.paths, &fixture.unlock());
    assert!(
        matches!(&reopened, Err(Error::AuditTampered(m)) if m.contains("removed")),
        "{:?}",
        reopened.err()
    );
    let out = cvvault(fixture.dir.path(), &["audit", "verify", "--as", "dpo"]);
    assert_eq!(out.status.code(), Some(17), "{}", all_output(&out));
}

#[test]
fn a_truncated_tail_is_caught_by_a_checkpoint_kept_elsewhere() {
    crate::sqlite_only!();
    let (fixture, _) = busy_fixture(3);
    // The state the attacker will roll back to.
    let kept_size = entry_count(&fixture);
    let (kept_frontier, kept_mac): (Vec<u8>, Vec<u8>) = fixture
        .raw()
        .query_row(
            "SELECT frontier, mac FROM audit_frontier WHERE id = 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    for n in 0..5 {
        fixture.register_marked(&format!("TAILMARK{n}"), false, false);
    }
    // The DPO copies this checkpoint off the machine.
    let note = fixture.vault.audit_checkpoint().unwrap();
    let checkpoint_size = checkpoint_size(&note);
    assert!(checkpoint_size >= kept_size + 5);
    let saved = write_file(fixture.dir.path(), "checkpoint.txt", &note);
    fixture.register_marked("TAILMARK9", false, false);
    fixture.vault.close().unwrap();

    // Remove the tail, roll back the tree edge (with the MAC it had then: a copy of the old
    // database has both) and the newer checkpoints.
    let conn = fixture.raw();
    drop_append_only_triggers(&conn);
    conn.execute(
        "DELETE FROM audit_entries WHERE entry_index >= ?1",
        [kept_size as i64],
    )
    .unwrap();
    conn.execute(
        "UPDATE audit_frontier SET frontier = ?1 WHERE id = 1",
        [&kept_frontier],
    )
    .unwrap();
    drop(conn);
    // The edge alone, without its MAC, is refused: it is not the one cvvault wrote.
    let unproven = cvvault(fixture.dir.path(), &["audit", "verify", "--as", "dpo"]);
    assert_eq!(
        unproven.status.code(),
        Some(17),
        "{}",
        all_output(&unproven)
    );
    assert!(
        stderr(&unproven).contains("audit_frontier"),
        "{}",
        all_output(&unproven)
    );
    let conn = fixture.raw();
    conn.execute(
        "UPDATE audit_frontier SET mac = ?1 WHERE id = 1",
        [&kept_mac],
    )
    .unwrap();
    conn.execute(
        "DELETE FROM audit_checkpoints WHERE tree_size > ?1",
        [kept_size as i64],
    )
    .unwrap();
    drop(conn);

    // The database alone is consistent again: that is why checkpoints are copied elsewhere.
    let alone = cvvault(fixture.dir.path(), &["audit", "verify", "--as", "dpo"]);
    assert_eq!(alone.status.code(), Some(0), "{}", all_output(&alone));

    let out = cvvault(
        fixture.dir.path(),
        &[
            "audit",
            "verify",
            "--as",
            "dpo",
            "--checkpoint",
            saved.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(17), "{}", all_output(&out));
    let message = stderr(&out);
    assert!(message.contains("removed"), "{message}");
    assert!(
        message.contains(&format!("covers {checkpoint_size}")),
        "{message}"
    );
    assert!(
        message.contains("checkpoint.txt"),
        "names the checkpoint's source: {message}"
    );

    // The DPO's offline check catches it too.
    let key = fixture.vault.verifier_key();
    let offline = cvvault(
        fixture.dir.path(),
        &[
            "audit",
            "verify",
            "--key",
            &key,
            "--checkpoint",
            saved.to_str().unwrap(),
        ],
    );
    assert_eq!(offline.status.code(), Some(17), "{}", all_output(&offline));
    assert!(stderr(&offline).contains("removed"), "{}", stderr(&offline));
}

#[test]
fn offline_verification_with_only_the_verifier_key_locates_an_altered_entry() {
    crate::sqlite_only!();
    let fixture = Fixture::new();
    for n in 0..4 {
        fixture.register_marked(&format!("OFFMARKA{n}"), false, false);
    }
    let low = checkpoint_size(&fixture.vault.audit_checkpoint().unwrap());
    for n in 0..4 {
        fixture.register_marked(&format!("OFFMARKB{n}"), false, false);
    }
    let high = checkpoint_size(&fixture.vault.audit_checkpoint().unwrap());
    for n in 0..4 {
        fixture.register_marked(&format!("OFFMARKC{n}"), false, false);
    }
    let key = fixture.vault.verifier_key();
    fixture.vault.close().unwrap();

    let clean = cvvault(fixture.dir.path(), &["audit", "verify", "--key", &key]);
    assert_eq!(clean.status.code(), Some(0), "{}", all_output(&clean));
    assert!(
        stdout(&clean).contains("audit trail verified"),
        "{}",
        stdout(&clean)
    );

    let k = (low + high) / 2;
    let conn = fixture.raw();
    drop_append_only_triggers(&conn);
    alter_one_byte(&conn, k);
    drop(conn);
    // No keyring: make sure the offline path cannot use it.
    std::fs::rename(
        fixture.paths.keyring(),
        fixture.dir.path().join("keyring.away"),
    )
    .unwrap();
    let out = cvvault(fixture.dir.path(), &["audit", "verify", "--key", &key]);
    assert_eq!(out.status.code(), Some(17), "{}", all_output(&out));
    let message = stderr(&out);
    assert!(
        message.contains(&format!("between {low} and {}", high - 1)),
        "k = {k}: {message}"
    );

    // A wrong key is refused rather than trusted.
    let other = Fixture::new().vault.verifier_key();
    let wrong = cvvault(fixture.dir.path(), &["audit", "verify", "--key", &other]);
    assert_eq!(wrong.status.code(), Some(17), "{}", all_output(&wrong));
}

// ----- fail closed -----

#[test]
fn an_unwritable_audit_table_fails_reads_and_writes_closed() {
    crate::sqlite_only!();
    let fixture = Fixture::new();
    let marker = "CLOSEDMARKz9";
    let id = fixture.register_marked(marker, false, true);
    fixture.assign(id, "emp-org", "matching", "recruitment");
    let before = entry_count(&fixture);
    let candidates_before: i64 = fixture
        .raw()
        .query_row("SELECT count(*) FROM candidates", [], |r| r.get(0))
        .unwrap();
    fixture
        .raw()
        .execute_batch("CREATE TRIGGER audit_unwritable BEFORE INSERT ON audit_entries BEGIN SELECT RAISE(ABORT, 'x'); END;")
        .unwrap();
    let fixture = fixture.reopen();

    let recruitment = "recruitment".parse().unwrap();
    let extract = fixture
        .vault
        .extract(&fixture.as_("emp"), &id, &recruitment);
    assert!(
        matches!(extract, Err(Error::AuditWrite { .. })),
        "{:?}",
        extract.err()
    );
    // A denial that cannot be recorded is not answered either.
    let denied = fixture
        .vault
        .extract(&fixture.as_("emp2"), &id, &recruitment);
    assert!(
        matches!(denied, Err(Error::AuditWrite { .. })),
        "{:?}",
        denied.err()
    );
    let register = fixture.vault.register(
        &fixture.as_("cw"),
        &cvvault::synth::Synth::new(3).profile_with_marker("NEWMARKq1"),
    );
    assert!(
        matches!(register, Err(Error::AuditWrite { .. })),
        "{:?}",
        register.err()
    );
    let erase = fixture.vault.erase(&fixture.as_("cw"), &id);
    assert!(
        matches!(erase, Err(Error::AuditWrite { .. })),
        "{:?}",
        erase.err()
    );
    let conn = fixture.raw();
    let candidates_after: i64 = conn
        .query_row("SELECT count(*) FROM candidates", [], |r| r.get(0))
        .unwrap();
    let sealed_after: i64 = conn
        .query_row("SELECT count(*) FROM sealed_profiles", [], |r| r.get(0))
        .unwrap();
    assert_eq!(
        (candidates_after, sealed_after),
        (candidates_before, candidates_before),
        "nothing was written"
    );
    assert_eq!(entry_count(&fixture), before);
    drop(conn);
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
    assert_eq!(out.status.code(), Some(16), "{}", all_output(&out));
    assert!(!contains(&out.stdout, marker.as_bytes()) && !contains(&out.stderr, marker.as_bytes()));
    assert!(
        stderr(&out).contains("audit trail could not be written"),
        "{}",
        stderr(&out)
    );
    let plain = fixture.dir.path().join("extract.json");
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
            "--out",
            plain.to_str().unwrap(),
            "--plaintext",
        ],
    );
    assert_eq!(out.status.code(), Some(16), "{}", all_output(&out));
    assert!(!plain.exists(), "no extract file is written");

    // With the audit table writable again, the same extract goes through and is recorded.
    fixture
        .raw()
        .execute_batch("DROP TRIGGER audit_unwritable;")
        .unwrap();
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
    assert_eq!(out.status.code(), Some(0), "{}", all_output(&out));
    assert!(contains(&out.stdout, marker.as_bytes()));
    assert!(entry_count(&fixture) > before);
}

// ----- inclusion proofs and checkpoints through the binary -----

#[test]
fn inclusion_proof_round_trip_through_the_binary() {
    let (fixture, _) = busy_fixture(4);
    let key = fixture.vault.verifier_key();
    fixture.vault.close().unwrap();
    let root = fixture.dir.path();
    let index = 5u64;

    let out = cvvault(
        root,
        &[
            "audit",
            "prove",
            "--as",
            "dpo",
            "--index",
            &index.to_string(),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", all_output(&out));
    let proof: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(proof["format"], "cvvault-inclusion-proof/v1");
    assert_eq!(proof["index"], index);
    let entry: Entry = serde_json::from_str(proof["entry"].as_str().unwrap()).unwrap();
    assert_eq!(entry.index, index);
    assert!(!proof["proof"].as_array().unwrap().is_empty());
    let good = write_file(root, "proof.json", &stdout(&out));

    let ok = cvvault(root, &["audit", "verify-proof", good.to_str().unwrap()]);
    assert_eq!(ok.status.code(), Some(0), "{}", all_output(&ok));
    assert!(stdout(&ok).contains("proof valid"), "{}", stdout(&ok));
    // Offline, with the verifier key only and no keyring.
    std::fs::rename(fixture.paths.keyring(), root.join("keyring.away")).unwrap();
    let offline = cvvault(
        root,
        &[
            "audit",
            "verify-proof",
            good.to_str().unwrap(),
            "--key",
            &key,
        ],
    );
    assert_eq!(offline.status.code(), Some(0), "{}", all_output(&offline));

    // One flipped character in the entry.
    let mut bad_entry = proof.clone();
    let text = proof["entry"].as_str().unwrap().replacen(
        "\"decision\":\"allow\"",
        "\"decision\":\"deny\"",
        1,
    );
    assert_ne!(text, proof["entry"].as_str().unwrap());
    bad_entry["entry"] = text.into();
    // One flipped character in a proof hash.
    let mut bad_hash = proof.clone();
    let first = proof["proof"][0].as_str().unwrap();
    let flipped: String = first
        .chars()
        .enumerate()
        .map(|(i, c)| {
            if i == 1 {
                if c == 'A' {
                    'B'
                } else {
                    'A'
                }
            } else {
                c
            }
        })
        .collect();
    bad_hash["proof"][0] = flipped.into();
    // The index moved.
    let mut bad_index = proof.clone();
    bad_index["index"] = (index + 1).into();
    for (name, bad) in [
        ("entry", bad_entry),
        ("hash", bad_hash),
        ("index", bad_index),
    ] {
        let file = write_file(
            root,
            &format!("bad-{name}.json"),
            &serde_json::to_string(&bad).unwrap(),
        );
        let out = cvvault(
            root,
            &[
                "audit",
                "verify-proof",
                file.to_str().unwrap(),
                "--key",
                &key,
            ],
        );
        assert_ne!(out.status.code(), Some(0), "{name}: {}", all_output(&out));
        assert_eq!(out.status.code(), Some(17), "{name}: {}", all_output(&out));
    }
    // A proof checked against another log's key fails.
    let other = Fixture::new().vault.verifier_key();
    let out = cvvault(
        root,
        &[
            "audit",
            "verify-proof",
            good.to_str().unwrap(),
            "--key",
            &other,
        ],
    );
    assert_eq!(out.status.code(), Some(17), "{}", all_output(&out));
}

#[test]
fn the_checkpoint_verifies_with_the_published_verifier_key() {
    let (fixture, _) = busy_fixture(2);
    let expected_size = entry_count(&fixture);
    fixture.vault.close().unwrap();
    let root = fixture.dir.path();
    let key_out = cvvault(root, &["audit", "key"]);
    assert_eq!(key_out.status.code(), Some(0), "{}", all_output(&key_out));
    let checkpoint_out = cvvault(root, &["audit", "checkpoint"]);
    assert_eq!(
        checkpoint_out.status.code(),
        Some(0),
        "{}",
        all_output(&checkpoint_out)
    );
    let verifier = NoteVerifier::parse(stdout(&key_out).trim()).unwrap();
    let checkpoint = verifier.verify(&stdout(&checkpoint_out)).unwrap();
    assert_eq!(checkpoint.size, expected_size);
    assert_eq!(checkpoint.origin, verifier.name());
    // And the tree it states is the one recomputed from the entries.
    let offline = cvvault(
        root,
        &[
            "--json",
            "audit",
            "verify",
            "--key",
            stdout(&key_out).trim(),
        ],
    );
    assert_eq!(offline.status.code(), Some(0), "{}", all_output(&offline));
    let report: serde_json::Value = serde_json::from_slice(&offline.stdout).unwrap();
    assert_eq!(report["entries"], expected_size);
    assert_eq!(report["macs_checked"], false);
}

// ----- no profile content and no candidate id in the trail -----

#[test]
fn no_entry_holds_a_marker_or_a_candidate_id_after_every_use_case() {
    crate::sqlite_only!();
    let fixture = Fixture::new();
    let cw = fixture.as_("cw");
    let dpo = fixture.as_("dpo");
    let markers = [
        "LEAKMARKa1x",
        "LEAKMARKb2y",
        "LEAKMARKc3z",
        "LEAKMARKd4w",
        "LEAKMARKe5v",
    ];
    let ids: Vec<CandidateId> = markers
        .iter()
        .enumerate()
        .map(|(n, m)| fixture.register_marked(m, n == 4, n % 2 == 0))
        .collect();
    let recruitment = "recruitment".parse().unwrap();
    let coaching = "coaching".parse().unwrap();
    let mut assignments = Vec::new();
    for id in &ids[..4] {
        assignments.push(fixture.assign(*id, "emp-org", "matching", "recruitment"));
        assignments.push(fixture.assign(*id, "coach-org", "coaching", "coaching"));
        assert!(fixture
            .vault
            .extract(&fixture.as_("emp"), id, &recruitment)
            .is_ok());
        assert!(fixture
            .vault
            .extract(&fixture.as_("coach"), id, &coaching)
            .is_ok());
        assert!(fixture
            .vault
            .extract(&fixture.as_("emp2"), id, &recruitment)
            .is_err());
        fixture
            .vault
            .explain(&fixture.as_("emp"), id, &recruitment)
            .unwrap();
        fixture.vault.subject_access(&dpo, id).unwrap();
    }
    // The protected candidate: matching refused, coaching by the agency only.
    assert!(fixture
        .vault
        .open_assignment(
            &cw,
            cvvault::vault::OpenAssignment {
                candidate_id: ids[4],
                org: "emp-org".parse().unwrap(),
                kind: "matching".parse().unwrap(),
                purpose: "recruitment".parse().unwrap(),
            }
        )
        .is_err());
    let subject_subj0 = fixture
        .vault
        .add_subject(ids[0], "self".parse().unwrap())
        .unwrap();
    let own = fixture
        .vault
        .subject_access(&fixture.as_(subject_subj0.as_str()), &ids[0])
        .unwrap();
    assert!(serde_json::to_string(&own.data)
        .unwrap()
        .contains(markers[0]));
    fixture
        .vault
        .set_hold(&dpo, &ids[1], true, "case 12")
        .unwrap();
    for a in &assignments {
        fixture.vault.close_assignment(&cw, a, "done").unwrap();
    }
    fixture.vault.erase(&cw, &ids[0]).unwrap();
    fixture.clock.advance(40 * 86_400);
    let settings = cvvault::settings::Retention::parse(
        "grace_after_close_days = 2\nmax_idle_days = 30\nmax_life_days = 1095\n",
    )
    .unwrap();
    let report = cvvault::vault::retention::run(
        &fixture.vault,
        &settings,
        false,
        Some(&fixture.unlock()),
        &|_| {},
    )
    .unwrap();
    assert_eq!((report.total, report.held), (3, 1));
    fixture.vault.set_hold(&dpo, &ids[1], false, "").unwrap();
    cvvault::vault::retention::run(
        &fixture.vault,
        &settings,
        false,
        Some(&fixture.unlock()),
        &|_| {},
    )
    .unwrap();
    for id in &ids {
        assert!(fixture
            .vault
            .extract(&fixture.as_("emp"), id, &recruitment)
            .is_err());
        fixture.vault.erasure_receipt(&dpo, id).unwrap();
    }
    fixture.vault.audit_verify(&dpo, vec![], &|_| {}).unwrap();
    assert_eq!(fixture.vault.candidate_count().unwrap(), 0);

    let entries = raw_entries(&fixture);
    assert!(entries.len() > 60, "{}", entries.len());
    let actions: std::collections::BTreeSet<String> = entries
        .iter()
        .map(|(_, t)| serde_json::from_str::<Entry>(t).unwrap().action)
        .collect();
    for action in [
        "candidate.register",
        "assignment.open",
        "assignment.close",
        "extract",
        "subject_access",
        "hold.place",
        "hold.release",
        "candidate.erase",
        "retention.erase",
        "retention.run",
        "audit.receipt",
        "audit.verify",
    ] {
        assert!(
            actions.contains(action),
            "{action} missing from {actions:?}"
        );
    }
    let assignment_ids: Vec<String> = assignments.iter().map(|a| a.to_string()).collect();
    for (index, text) in &entries {
        for marker in markers {
            assert!(
                !text.contains(marker),
                "entry {index} holds profile content: {text}"
            );
        }
        for id in &ids {
            let simple: String = id.as_bytes().iter().map(|b| format!("{b:02x}")).collect();
            assert!(
                !text.contains(&id.to_string()) && !text.contains(&simple),
                "entry {index} names a candidate"
            );
        }
        for a in &assignment_ids {
            assert!(
                !text.contains(a.as_str()),
                "entry {index} names an assignment in clear"
            );
        }
    }
    // Neither do the other audit tables.
    let conn = fixture.raw();
    let notes: Vec<String> = conn
        .prepare("SELECT note FROM audit_checkpoints")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    for note in notes {
        assert!(markers.iter().all(|m| !note.contains(m)));
    }
}

// ----- subject access -----

#[test]
fn subject_access_lists_every_disclosure_and_gives_data_only_to_the_subject() {
    let fixture = Fixture::new();
    let marker = "SARMARKp0k";
    let id = fixture.register_marked(marker, false, true);
    let other = fixture.register_marked("SARMARKother", false, true);
    fixture.assign(id, "emp-org", "matching", "recruitment");
    fixture.assign(id, "coach-org", "coaching", "coaching");
    fixture.clock.advance(86_400);
    let first_time = cvvault::clock::rfc3339(fixture.now());
    fixture
        .vault
        .extract(&fixture.as_("emp"), &id, &"recruitment".parse().unwrap())
        .unwrap();
    fixture.clock.advance(3 * 86_400);
    let second_time = cvvault::clock::rfc3339(fixture.now());
    fixture
        .vault
        .extract(&fixture.as_("coach"), &id, &"coaching".parse().unwrap())
        .unwrap();
    // Refused requests are counted, not listed as disclosures.
    assert!(fixture
        .vault
        .extract(&fixture.as_("emp2"), &id, &"recruitment".parse().unwrap())
        .is_err());
    // Another candidate's disclosure is not in this report.
    fixture.assign(other, "emp-org", "matching", "recruitment");
    fixture
        .vault
        .extract(&fixture.as_("emp"), &other, &"recruitment".parse().unwrap())
        .unwrap();

    let report = fixture
        .vault
        .subject_access(&fixture.as_("dpo"), &id)
        .unwrap();
    assert!(
        report.data.is_none(),
        "a DPO gets categories and disclosures, not the data"
    );
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["data"], serde_json::Value::Null);
    assert!(!serde_json::to_string(&json).unwrap().contains(marker));
    assert!(!report.to_text().contains(marker));
    assert_eq!(report.disclosures.len(), 2, "{:?}", report.disclosures);
    let emp = &report.disclosures[0];
    assert_eq!(
        (
            emp.recipient.as_str(),
            emp.recipient_org.as_deref(),
            emp.recipient_role.as_str()
        ),
        ("emp", Some("emp-org"), "employer")
    );
    assert_eq!(
        (emp.time.as_str(), emp.purpose.as_deref()),
        (first_time.as_str(), Some("recruitment"))
    );
    assert_eq!(
        emp.groups,
        ["identity", "contact", "professional"],
        "consent given: identity and contact too"
    );
    let coach = &report.disclosures[1];
    assert_eq!(
        (coach.recipient.as_str(), coach.recipient_org.as_deref()),
        ("coach", Some("coach-org"))
    );
    assert_eq!(
        (coach.time.as_str(), coach.purpose.as_deref()),
        (second_time.as_str(), Some("coaching"))
    );
    assert_eq!(coach.groups, ["identity", "contact", "professional"]);
    assert_eq!(report.refused_requests, 1);
    assert_eq!(report.assignments.len(), 2);
    let text = report.to_text();
    assert!(
        text.contains("emp-org") && text.contains("coach-org") && text.contains(&first_time),
        "{text}"
    );

    // The subject gets the same report with their own data.
    let subject_subj = fixture
        .vault
        .add_subject(id, "self".parse().unwrap())
        .unwrap();
    let own = fixture
        .vault
        .subject_access(&fixture.as_(subject_subj.as_str()), &id)
        .unwrap();
    let data = own.data.as_ref().unwrap();
    assert!(serde_json::to_string(data).unwrap().contains(marker));
    assert_eq!(data["candidate_id"], id.to_string());
    assert!(
        data["groups"].get("special").is_some(),
        "the subject sees their special categories"
    );
    assert!(data["groups"].get("control").is_none());
    assert!(own.disclosures.len() >= 2);

    // Everyone else is refused, and the refusal is audited. Employers and providers get the
    // same "not found" as for an unknown id.
    let subject_subj2 = fixture
        .vault
        .add_subject(other, "self".parse().unwrap())
        .unwrap();
    let refused = fixture.vault.subject_access(&fixture.as_("cw"), &id);
    assert!(
        matches!(refused, Err(Error::Denied { .. })),
        "{:?}",
        refused.err().map(|e| e.to_string())
    );
    // Another candidate's subject is told what an unknown id would tell it.
    for who in ["coach", "emp", "emp2", subject_subj2.as_str()] {
        let refused = fixture.vault.subject_access(&fixture.as_(who), &id);
        assert!(
            matches!(refused, Err(Error::NotFound { .. })),
            "{who}: {:?}",
            refused.err().map(|e| e.to_string())
        );
    }
    let entries = fixture
        .vault
        .audit_search(&fixture.as_("dpo"), &id)
        .unwrap();
    let refusals = entries
        .iter()
        .filter(|e| e.action == "subject_access" && e.decision == Outcome::Deny)
        .count();
    assert_eq!(refusals, 5);
    assert!(
        entries.iter().any(|e| e.action == "subject_access"
            && e.decision == Outcome::Allow
            && e.actor.starts_with("hmac-sha256:")
            && e.actor != subject_subj.as_str()),
        "the subject is named in the trail by pseudonym, never by principal id"
    );

    // Through the binary as well.
    fixture.vault.close().unwrap();
    let out = cvvault(
        fixture.dir.path(),
        &["--json", "subject-access", &id.to_string(), "--as", "dpo"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", all_output(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["data"], serde_json::Value::Null);
    assert!(report["disclosures"].as_array().unwrap().len() >= 3);
    let out = cvvault(
        fixture.dir.path(),
        &["subject-access", &id.to_string(), "--as", "emp"],
    );
    assert_eq!(out.status.code(), Some(4), "{}", all_output(&out));
    assert!(!contains(&out.stdout, marker.as_bytes()));
    let out = cvvault(
        fixture.dir.path(),
        &["subject-access", &id.to_string(), "--as", "cw"],
    );
    assert_eq!(out.status.code(), Some(3), "{}", all_output(&out));
    assert!(!contains(&out.stdout, marker.as_bytes()));
}

#[test]
fn audit_search_finds_exactly_one_candidates_entries_and_only_for_the_dpo() {
    // The search helper finds exactly a candidate's own entries.
    let (fixture, ids) = busy_fixture(3);
    let a = pseudonym_of(&fixture, &ids[0]);
    let b = pseudonym_of(&fixture, &ids[1]);
    assert_ne!(a, b);
    let found = fixture
        .vault
        .audit_search(&fixture.as_("dpo"), &ids[0])
        .unwrap();
    let found: Vec<_> = found
        .into_iter()
        .filter(|e| e.action != "audit.search")
        .collect();
    assert_eq!(found.len(), 2, "register and assignment");
    assert!(found
        .iter()
        .all(|e| e.candidate.as_deref() == Some(a.as_str())));
    // Refused as every refusal about a candidate is for an employer: as if it did not exist.
    let refused = fixture.vault.audit_search(&fixture.as_("emp"), &ids[0]);
    assert!(matches!(refused, Err(Error::NotFound { .. })));
    let refused = fixture.vault.audit_search(&fixture.as_("cw"), &ids[0]);
    assert!(matches!(refused, Err(Error::Denied { .. })));
}

#[test]
fn an_employer_cannot_tell_a_forbidden_candidate_from_an_unknown_one() {
    let fixture = Fixture::new();
    let known = fixture.register_marked("PROBEMARKa", false, true);
    let unknown = CandidateId::random();
    for who in ["emp", "coach"] {
        let principal = fixture.as_(who);
        let a = fixture
            .vault
            .subject_access(&principal, &known)
            .err()
            .unwrap();
        let b = fixture
            .vault
            .subject_access(&principal, &unknown)
            .err()
            .unwrap();
        assert!(
            matches!((&a, &b), (Error::NotFound { .. }, Error::NotFound { .. })),
            "{a} / {b}"
        );
        assert_eq!(a.to_string(), b.to_string());
        let a = fixture
            .vault
            .set_hold(&principal, &known, true, "case 1")
            .err()
            .unwrap();
        let b = fixture
            .vault
            .set_hold(&principal, &unknown, true, "case 1")
            .err()
            .unwrap();
        assert!(
            matches!((&a, &b), (Error::NotFound { .. }, Error::NotFound { .. })),
            "{a} / {b}"
        );
        assert_eq!(a.to_string(), b.to_string());
    }
    // Every one of those decisions is on record, the unknown id's too.
    let dpo = fixture.as_("dpo");
    for id in [known, unknown] {
        let entries = fixture.vault.audit_search(&dpo, &id).unwrap();
        let denials: Vec<&str> = entries
            .iter()
            .filter(|e| e.decision == Outcome::Deny)
            .map(|e| e.action.as_str())
            .collect();
        assert_eq!(
            denials,
            [
                "subject_access",
                "hold.place",
                "subject_access",
                "hold.place"
            ],
            "{id}"
        );
    }
    // A DPO's hold on an unknown candidate is refused and recorded as well.
    let missing = CandidateId::random();
    assert!(matches!(
        fixture.vault.set_hold(&dpo, &missing, true, "case 2"),
        Err(Error::NotFound { .. })
    ));
    let entries: Vec<_> = fixture
        .vault
        .audit_search(&dpo, &missing)
        .unwrap()
        .into_iter()
        .filter(|e| e.action != "audit.search")
        .collect();
    assert_eq!(entries.len(), 1);
    assert_eq!(
        (entries[0].action.as_str(), entries[0].note.as_deref()),
        ("hold.place", Some("not-found"))
    );
}

#[test]
fn a_changed_candidate_index_column_is_detected() {
    crate::sqlite_only!();
    let fixture = Fixture::new();
    let id = fixture.register_marked("COLMARKa", false, false);
    let other = fixture.register_marked("COLMARKb", false, false);
    fixture.assign(id, "emp-org", "matching", "recruitment");
    fixture.assign(other, "emp-org", "matching", "recruitment");
    let recruitment = "recruitment".parse().unwrap();
    let hidden = fixture
        .vault
        .extract(&fixture.as_("emp"), &id, &recruitment)
        .unwrap()
        .audit_index;
    let planted = fixture
        .vault
        .extract(&fixture.as_("emp"), &other, &recruitment)
        .unwrap()
        .audit_index;
    let dpo = fixture.as_("dpo");
    assert_eq!(
        fixture
            .vault
            .subject_access(&dpo, &id)
            .unwrap()
            .disclosures
            .len(),
        1
    );

    // Hide a disclosure from the candidate's searches and reports.
    let conn = fixture.raw();
    drop_append_only_triggers(&conn);
    conn.execute(
        "UPDATE audit_entries SET candidate_hmac = NULL WHERE entry_index = ?1",
        [hidden as i64],
    )
    .unwrap();
    assert!(
        fixture
            .vault
            .subject_access(&dpo, &id)
            .unwrap()
            .disclosures
            .is_empty(),
        "the report is fooled"
    );
    let err = fixture
        .vault
        .audit_verify(&dpo, vec![], &|_| {})
        .unwrap_err();
    assert!(
        matches!(&err, Error::AuditTampered(m) if m.contains(&format!("entry {hidden}'s candidate index column"))),
        "{err}"
    );

    // Repair it, and attribute another candidate's disclosure to this one instead.
    let original = pseudonym_of(&fixture, &id);
    conn.execute(
        "UPDATE audit_entries SET candidate_hmac = ?2 WHERE entry_index = ?1",
        rusqlite::params![hidden as i64, original],
    )
    .unwrap();
    conn.execute(
        "UPDATE audit_entries SET candidate_hmac = ?2 WHERE entry_index = ?1",
        rusqlite::params![planted as i64, original],
    )
    .unwrap();
    assert_eq!(
        fixture
            .vault
            .subject_access(&dpo, &id)
            .unwrap()
            .disclosures
            .len(),
        2,
        "the report is fooled"
    );
    let err = fixture
        .vault
        .audit_verify(&dpo, vec![], &|_| {})
        .unwrap_err();
    assert!(
        matches!(&err, Error::AuditTampered(m) if m.contains(&format!("entry {planted}'s candidate index column"))),
        "{err}"
    );
    // Offline too, without the audit key.
    let key = fixture.vault.verifier_key();
    fixture.vault.close().unwrap();
    let out = cvvault(fixture.dir.path(), &["audit", "verify", "--key", &key]);
    assert_eq!(out.status.code(), Some(17), "{}", all_output(&out));
    assert!(
        stderr(&out).contains(&format!("entry {planted}'s candidate index column")),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_deleted_entry_with_the_rest_renumbered_is_named() {
    crate::sqlite_only!();
    let (fixture, _) = busy_fixture(4);
    let k = entry_count(&fixture) / 2;
    let conn = fixture.raw();
    drop_append_only_triggers(&conn);
    conn.execute(
        "DELETE FROM audit_entries WHERE entry_index = ?1",
        [k as i64],
    )
    .unwrap();
    conn.execute(
        "UPDATE audit_entries SET entry_index = entry_index - 1 WHERE entry_index > ?1",
        [k as i64],
    )
    .unwrap();
    let err = fixture
        .vault
        .audit_verify(&fixture.as_("dpo"), vec![], &|_| {})
        .unwrap_err();
    assert!(
        matches!(&err, Error::AuditTampered(m) if m.contains(&format!("entry {k} holds the text of entry {}", k + 1))),
        "{err}"
    );
}

#[test]
fn a_consistency_proof_links_a_kept_checkpoint_to_the_latest_through_the_binary() {
    let (fixture, _) = busy_fixture(3);
    let key = fixture.vault.verifier_key();
    // A checkpoint the DPO keeps off the machine, then more entries.
    let kept = fixture.vault.audit_checkpoint().unwrap();
    let kept_size: u64 = kept.lines().nth(1).unwrap().parse().unwrap();
    let kept_root = kept.lines().nth(2).unwrap().to_owned();
    fixture.register_marked("CONSISTENCYLATER", false, false);
    fixture.vault.close().unwrap();
    let root = fixture.dir.path();
    let out = cvvault(
        root,
        &[
            "audit",
            "consistency",
            "--from",
            &kept_size.to_string(),
            "--as",
            "dpo",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", all_output(&out));
    let proof: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(proof["format"], "cvvault-consistency-proof/v1");
    assert_eq!(proof["old_size"], kept_size);
    assert_eq!(
        proof["old_root"],
        kept_root.as_str(),
        "the kept checkpoint's root"
    );
    assert!(proof["new_size"].as_u64().unwrap() > kept_size);
    let good = write_file(root, "consistency.json", &stdout(&out));
    for args in [vec![], vec!["--key", key.as_str()]] {
        let mut full = vec!["audit", "verify-proof", good.to_str().unwrap()];
        full.extend(args.iter().copied());
        let ok = cvvault(root, &full);
        assert_eq!(ok.status.code(), Some(0), "{}", all_output(&ok));
        assert!(stdout(&ok).contains("consistent:"), "{}", stdout(&ok));
    }
    // A root that is not the kept one, or a changed path, fails.
    let mut other_root = proof.clone();
    other_root["old_root"] = proof["proof"][0].clone();
    let mut short = proof.clone();
    short["proof"].as_array_mut().unwrap().pop();
    for (name, bad) in [("old root", other_root), ("path", short)] {
        let file = write_file(root, "bad.json", &bad.to_string());
        let out = cvvault(
            root,
            &[
                "audit",
                "verify-proof",
                file.to_str().unwrap(),
                "--key",
                &key,
            ],
        );
        assert_eq!(out.status.code(), Some(17), "{name}: {}", all_output(&out));
    }
    let out = cvvault(
        root,
        &["audit", "consistency", "--from", "999999", "--as", "dpo"],
    );
    assert_eq!(out.status.code(), Some(65), "{}", all_output(&out));
}

#[test]
fn a_dpo_exports_the_audit_key_with_a_warning_and_it_recomputes_the_pseudonyms() {
    let (fixture, ids) = busy_fixture(2);
    fixture.vault.close().unwrap();
    let root = fixture.dir.path();
    let found = cvvault(
        root,
        &[
            "audit",
            "search",
            "--candidate",
            &ids[0].to_string(),
            "--as",
            "dpo",
        ],
    );
    let first: Entry = serde_json::from_str(stdout(&found).lines().next().unwrap()).unwrap();
    let expected = first.candidate.unwrap();
    let out = cvvault(root, &["audit", "mac-key", "--as", "dpo"]);
    assert_eq!(out.status.code(), Some(0), "{}", all_output(&out));
    assert!(
        stderr(&out).contains("can forge entry MACs"),
        "{}",
        stderr(&out)
    );
    let key = hex::decode(stdout(&out).trim()).unwrap();
    assert_eq!(key.len(), 32);
    // The documented construction, computed here from the exported key alone.
    let tag = ring::hmac::sign(
        &ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &key),
        &[
            b"cvvault/audit/candidate/v1\n".as_slice(),
            ids[0].as_bytes(),
        ]
        .concat(),
    );
    assert_eq!(
        expected,
        format!("hmac-sha256:{}", hex::encode(tag.as_ref()))
    );
    let refused = cvvault(root, &["audit", "mac-key", "--as", "emp"]);
    assert_eq!(refused.status.code(), Some(3), "{}", all_output(&refused));
    assert!(stdout(&refused).is_empty());
}

#[test]
fn an_export_bundle_of_a_window_verifies_alone_and_any_change_to_it_fails() {
    let (fixture, _) = busy_fixture(3);
    let key = fixture.vault.verifier_key();
    fixture.vault.close().unwrap();
    let root = fixture.dir.path();
    // Entries written now (by the system clock), after the fixture's (2026-01-01).
    for id in ["late-one", "late-two"] {
        let out = cvvault(
            root,
            &[
                "principal",
                "add",
                id,
                "--role",
                "employer",
                "--org",
                "late-org",
            ],
        );
        assert_eq!(out.status.code(), Some(0), "{}", all_output(&out));
    }
    let out = cvvault(
        root,
        &[
            "audit",
            "export",
            "--bundle",
            "--macs",
            // The fixture's own entries: its clock stands at 2026-01-01 (`init` used the
            // real one, and so did the commands above).
            "--since",
            "2026-01-01",
            "--until",
            "2026-06-01",
            "--as",
            "dpo",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", all_output(&out));
    let bundle: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(bundle["format"], "cvvault-audit-export/v1");
    assert!(
        bundle["start"].as_u64().unwrap() >= 1,
        "it starts at a checkpoint after init"
    );
    assert!(!bundle["start_subtrees"].as_array().unwrap().is_empty());
    let entries = bundle["entries"].as_array().unwrap();
    assert_eq!(
        bundle["macs"].as_array().unwrap().len(),
        entries.len(),
        "a MAC per entry"
    );
    let good = write_file(root, "bundle.json", &stdout(&out));
    let ok = cvvault(
        root,
        &[
            "audit",
            "verify-proof",
            good.to_str().unwrap(),
            "--key",
            &key,
        ],
    );
    assert_eq!(ok.status.code(), Some(0), "{}", all_output(&ok));
    assert!(stdout(&ok).contains("export valid"), "{}", stdout(&ok));

    let mut changed = bundle.clone();
    let text = entries[0]
        .as_str()
        .unwrap()
        .replacen("\"allow\"", "\"deny\"", 1);
    changed["entries"][0] = text.into();
    let mut dropped = bundle.clone();
    dropped["entries"].as_array_mut().unwrap().remove(0);
    let mut moved = bundle.clone();
    moved["start_subtrees"] = serde_json::json!([]);
    for (name, bad) in [
        ("changed", changed),
        ("dropped", dropped),
        ("subtrees", moved),
    ] {
        let file = write_file(root, "bad-bundle.json", &bad.to_string());
        let out = cvvault(
            root,
            &[
                "audit",
                "verify-proof",
                file.to_str().unwrap(),
                "--key",
                &key,
            ],
        );
        assert_eq!(out.status.code(), Some(17), "{name}: {}", all_output(&out));
    }
    // The whole log as one bundle, from the empty tree.
    let out = cvvault(root, &["audit", "export", "--bundle", "--as", "dpo"]);
    let whole: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(whole["start"], 0);
    assert!(whole["entries"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e.as_str().unwrap().contains("late-two")));
    let file = write_file(root, "whole.json", &stdout(&out));
    let ok = cvvault(
        root,
        &[
            "audit",
            "verify-proof",
            file.to_str().unwrap(),
            "--key",
            &key,
        ],
    );
    assert_eq!(ok.status.code(), Some(0), "{}", all_output(&ok));
}
