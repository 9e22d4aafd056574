//! Keeping candidates current and reachable, through the library's public API: updating field
//! groups (decided, audited, re-keyed with no readable remnant), and the agency reference
//! (stored as a keyed HMAC, unique, found by exact reference only, idempotent imports).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::{contains, db_and_wal, Fixture};
use cvvault::audit::entry::Outcome;
use cvvault::error::Error;
use cvvault::ids::CandidateId;
use cvvault::profile::Profile;
use cvvault::vault::{ImportOptions, LineOutcome};
use cvvault::vocabulary::FieldGroup;

const PROFILE: &str = r#"{
  "identity": {"name": "Amira Haddad", "birth_year": 1991},
  "contact": {"email": "amira@example.org", "phone": "+46 70 111 11 11"},
  "professional": {"headline": "Welder", "skills": [{"name": "TIG welding"}]},
  "special": {"nationality": "SY"},
  "control": {"protected": false, "consents": {"employer_contact": true}}
}"#;

/// A candidate from [`PROFILE`] with an open matching assignment with `emp-org`.
fn matched(f: &Fixture) -> CandidateId {
    let id = f.register(&Profile::from_json(PROFILE.as_bytes()).unwrap());
    f.assign(id, "emp-org", "matching", "recruitment");
    id
}

fn extract(f: &Fixture, id: &CandidateId) -> serde_json::Value {
    let extract = f
        .vault
        .extract(&f.as_("emp"), id, &"recruitment".parse().unwrap())
        .unwrap();
    serde_json::from_slice(&extract.json).unwrap()
}

/// The sealed groups and the wrapped data key of a candidate, read from the file.
fn stored_secrets(f: &Fixture, id: &CandidateId) -> Vec<Vec<u8>> {
    let raw = f.raw();
    let mut secrets: Vec<Vec<u8>> = raw
        .query_row(
            "SELECT s.identity, s.contact, s.professional, s.special, s.control
             FROM candidates c JOIN sealed_profiles s ON s.key_id = c.key_id WHERE c.candidate_id = ?1",
            [&id.as_bytes()[..]],
            |r| Ok((0..5).map(|i| r.get::<_, Vec<u8>>(i).unwrap()).collect::<Vec<_>>()),
        )
        .unwrap();
    secrets.push(
        raw.query_row(
            "SELECT k.wrapped_dek FROM candidates c JOIN candidate_keys k ON k.key_id = c.key_id
             WHERE c.candidate_id = ?1",
            [&id.as_bytes()[..]],
            |r| r.get(0),
        )
        .unwrap(),
    );
    secrets
}

#[test]
fn an_update_replaces_the_groups_given_and_keeps_the_others() {
    let f = Fixture::new();
    let id = matched(&f);
    let before = extract(&f, &id);
    let updated = f
        .vault
        .update(
            &f.as_("cw"),
            &id,
            br#"{"contact": {"email": "amira.h@example.org", "phone": "+46 70 222 22 22"}}"#,
            None,
        )
        .unwrap();
    assert_eq!(updated.groups, vec![FieldGroup::Contact]);
    let after = extract(&f, &id);
    assert_eq!(
        after["groups"]["contact"]["phone"], "+46 70 222 22 22",
        "{after}"
    );
    assert_eq!(after["groups"]["identity"], before["groups"]["identity"]);
    assert_eq!(
        after["groups"]["professional"],
        before["groups"]["professional"]
    );

    // --group takes only the groups named from a fuller document.
    let updated = f
        .vault
        .update(
            &f.as_("cw"),
            &id,
            br#"{"identity": {"name": "Someone Else"}, "professional": {"headline": "Foreman"}}"#,
            Some(&[FieldGroup::Professional]),
        )
        .unwrap();
    assert_eq!(updated.groups, vec![FieldGroup::Professional]);
    let after = extract(&f, &id);
    assert_eq!(after["groups"]["professional"]["headline"], "Foreman");
    assert_eq!(after["groups"]["identity"]["name"], "Amira Haddad");

    // Consent withdrawn (control, a caseworker's to record): the employer loses identity
    // and contact at once.
    f.vault
        .update(
            &f.as_("cw"),
            &id,
            br#"{"control": {"protected": false, "consents": {"employer_contact": false}}}"#,
            None,
        )
        .unwrap();
    let after = extract(&f, &id);
    assert!(after["groups"].get("contact").is_none(), "{after}");

    // Each update is on the record, with the groups it replaced, and the chain verifies.
    let entries = f.vault.audit_search(&f.as_("dpo"), &id).unwrap();
    let updates: Vec<_> = entries
        .iter()
        .filter(|e| e.action == "candidate.update")
        .collect();
    assert_eq!(updates.len(), 3);
    assert!(updates.iter().all(|e| e.decision == Outcome::Allow));
    assert_eq!(updates[0].groups, vec!["contact"]);
    assert_eq!(updates[1].groups, vec!["professional"]);
    assert_eq!(updates[0].policy_ids, vec!["caseworker-update"]);
}

#[test]
fn an_update_leaves_no_readable_copy_of_the_old_ciphertext_or_key_in_the_files() {
    crate::sqlite_only!();
    let f = Fixture::new();
    let id = matched(&f);
    let old = stored_secrets(&f, &id);
    f.vault
        .update(
            &f.as_("cw"),
            &id,
            br#"{"contact": {"phone": "+46 70 333 33 33"}}"#,
            None,
        )
        .unwrap();
    let new = stored_secrets(&f, &id);
    for (n, (old, new)) in old.iter().zip(&new).enumerate() {
        assert_ne!(
            old, new,
            "part {n} is sealed anew (a new key, fresh nonces)"
        );
    }
    let f = f.reopen();
    let files = db_and_wal(&f.db());
    for (n, secret) in old.iter().enumerate() {
        assert!(
            !contains(&files, secret),
            "part {n} of the old record is still in the database files"
        );
    }
    // The old key slot is zeros, as after an erasure, and the new record opens.
    let zeroed: i64 = f
        .raw()
        .query_row(
            "SELECT count(*) FROM candidate_keys WHERE kek_version = 0",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(zeroed, 1);
    assert_eq!(
        extract(&f, &id)["groups"]["contact"]["phone"],
        "+46 70 333 33 33"
    );
}

#[test]
fn an_update_is_decided_per_group_and_refusals_change_nothing() {
    let f = Fixture::new();
    let id = matched(&f);
    let amira = f.vault.add_subject(id, "public".parse().unwrap()).unwrap();
    let amira = f.vault.principal(&amira).unwrap();
    let before = extract(&f, &id);

    // The candidate corrects their own contact details.
    f.vault
        .update(
            &amira,
            &id,
            br#"{"contact": {"phone": "+46 70 444 44 44"}}"#,
            None,
        )
        .unwrap();
    // But not their control group (the protection flag is the agency's to set).
    let refused = f
        .vault
        .update(&amira, &id, br#"{"control": {"protected": false}}"#, None)
        .unwrap_err();
    match &refused {
        Error::Denied { action, .. } => assert!(action.contains("control"), "{action}"),
        other => panic!("expected a refusal, got {other}"),
    }
    // An employer, even one with an assignment, is told only "not found", like for a
    // candidate that does not exist.
    let employer = f
        .vault
        .update(&f.as_("emp"), &id, br#"{"contact": {"phone": "1"}}"#, None)
        .unwrap_err();
    let missing = f
        .vault
        .update(
            &f.as_("emp"),
            &CandidateId::random(),
            br#"{"contact": {"phone": "1"}}"#,
            None,
        )
        .unwrap_err();
    assert_eq!(employer.to_string(), missing.to_string());
    assert!(matches!(employer, Error::NotFound { .. }));

    // Bad documents say what is wrong, with the path, and change nothing.
    type Case<'a> = (&'a [u8], Option<&'a [FieldGroup]>, &'a str);
    let cases: [Case<'_>; 4] = [
        (br#"{}"#, None, "holds no field group"),
        (
            br#"{"contact": {"email": "no-at-sign"}}"#,
            None,
            "$.contact.email",
        ),
        (
            br#"{"contact": {"phone": "1"}}"#,
            Some(&[FieldGroup::Special]),
            "holds no special group",
        ),
        (
            br#"{"agency_reference": "A-1", "contact": {}}"#,
            None,
            "update cannot change it",
        ),
    ];
    for (document, only, says) in cases {
        let error = f
            .vault
            .update(&f.as_("cw"), &id, document, only)
            .unwrap_err();
        assert!(error.to_string().contains(says), "{error}");
    }
    let after = extract(&f, &id);
    assert_eq!(after["groups"]["identity"], before["groups"]["identity"]);
    assert_eq!(after["groups"]["contact"]["phone"], "+46 70 444 44 44");

    let denied = f
        .vault
        .audit_search(&f.as_("dpo"), &id)
        .unwrap()
        .into_iter()
        .filter(|e| e.action == "candidate.update" && e.decision == Outcome::Deny)
        .count();
    assert_eq!(denied, 2, "the subject's and the employer's refusals");
}

#[test]
fn an_agency_reference_is_unique_found_exactly_and_stored_only_as_a_keyed_hash() {
    crate::sqlite_only!();
    let f = Fixture::new();
    let document = br#"{"identity": {"name": "Jonas Berg"}, "agency_reference": "AF-2026-000731"}"#;
    let id = f
        .vault
        .register_document(&f.as_("cw"), document, None)
        .unwrap();
    // The same reference again, in the document or beside it, is refused and stores nothing.
    let count = f.vault.candidate_count().unwrap();
    let again = f
        .vault
        .register_document(
            &f.as_("cw"),
            br#"{"identity": {"name": "Jonas Berg"}}"#,
            Some("AF-2026-000731"),
        )
        .unwrap_err();
    assert!(matches!(again, Error::DuplicateReference), "{again}");
    assert_eq!(f.vault.candidate_count().unwrap(), count);

    assert_eq!(
        f.vault
            .find_by_reference(&f.as_("cw"), "AF-2026-000731")
            .unwrap(),
        id
    );
    // Exact only: no prefix, no case folding.
    for near in ["AF-2026-00073", "af-2026-000731", "AF-2026-0007310"] {
        let e = f.vault.find_by_reference(&f.as_("cw"), near).unwrap_err();
        assert!(matches!(e, Error::NotFound { .. }), "{near}: {e}");
    }
    // An employer learns nothing, whether the reference exists or not.
    let known = f
        .vault
        .find_by_reference(&f.as_("emp"), "AF-2026-000731")
        .unwrap_err();
    let unknown = f
        .vault
        .find_by_reference(&f.as_("emp"), "AF-2026-999999")
        .unwrap_err();
    assert_eq!(known.to_string(), unknown.to_string());
    assert!(matches!(known, Error::NotFound { .. }));
    // A reference that cannot be one is refused with what it must be.
    let bad = f.vault.find_by_reference(&f.as_("cw"), " ").unwrap_err();
    assert!(bad.to_string().contains("case number"), "{bad}");

    // Finds are on the record (allowed and refused), under the candidate's pseudonym.
    let finds: Vec<_> = f
        .vault
        .audit_search(&f.as_("dpo"), &id)
        .unwrap()
        .into_iter()
        .filter(|e| e.action == "candidate.find")
        .map(|e| (e.actor, e.decision))
        .collect();
    assert_eq!(
        finds,
        vec![("cw".into(), Outcome::Allow), ("emp".into(), Outcome::Deny)]
    );

    // The reference is nowhere in the files as written.
    let f = f.reopen();
    assert!(!contains(&db_and_wal(&f.db()), b"AF-2026-000731"));
}

#[test]
fn a_reference_moved_to_another_row_outside_cvvault_is_refused() {
    crate::sqlite_only!();
    let f = Fixture::new();
    let id = f
        .vault
        .register_document(
            &f.as_("cw"),
            br#"{"identity": {"name": "Jonas Berg"}}"#,
            Some("AF-1"),
        )
        .unwrap();
    let other = f.register(&Profile::from_json(PROFILE.as_bytes()).unwrap());
    let raw = f.raw();
    let mac: Vec<u8> = raw
        .query_row(
            "SELECT reference_mac FROM candidates WHERE candidate_id = ?1",
            [&id.as_bytes()[..]],
            |r| r.get(0),
        )
        .unwrap();
    raw.execute(
        "UPDATE candidates SET reference_mac = NULL WHERE candidate_id = ?1",
        [&id.as_bytes()[..]],
    )
    .unwrap();
    raw.execute(
        "UPDATE candidates SET reference_mac = ?2 WHERE candidate_id = ?1",
        rusqlite::params![&other.as_bytes()[..], mac],
    )
    .unwrap();
    drop(raw);
    let moved = f.vault.find_by_reference(&f.as_("cw"), "AF-1").unwrap_err();
    assert!(matches!(moved, Error::Forged { .. }), "{moved}");
}

#[test]
fn importing_a_file_again_registers_no_one_twice_and_update_replaces_profiles() {
    let f = Fixture::new();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("people.ndjson");
    let lines = [
        r#"{"identity": {"name": "Line One"}, "agency_reference": "REF-1"}"#,
        r#"{"identity": {"name": "Line Two"}, "agency_reference": "REF-2"}"#,
        r#"{"identity": {"name": "No Reference"}}"#,
        r#"{"identity": {"name": "Same As One"}, "agency_reference": "REF-1"}"#,
        r#"{"identity": {"name": ""}, "agency_reference": "REF-5"}"#,
    ];
    std::fs::write(&file, lines.join("\n")).unwrap();
    let import = |options: &ImportOptions| {
        let open = || -> cvvault::error::Result<Box<dyn std::io::BufRead>> {
            Ok(Box::new(std::io::BufReader::new(
                std::fs::File::open(&file).unwrap(),
            )))
        };
        f.vault
            .import(&f.as_("cw"), &open, options, &|_, _| {})
            .unwrap()
    };
    let first = import(&ImportOptions::default());
    assert_eq!(first.imported, 3);
    assert_eq!(first.without_reference, 1);
    let outcomes: Vec<(u64, &str, &str)> = first
        .lines
        .iter()
        .map(|l| {
            (
                l.line,
                l.agency_reference.as_str(),
                match l.outcome {
                    LineOutcome::Registered { .. } => "registered",
                    LineOutcome::AlreadyRegistered { .. } => "already",
                    LineOutcome::Updated { .. } => "updated",
                    LineOutcome::Rejected { .. } => "rejected",
                },
            )
        })
        .collect();
    assert_eq!(
        outcomes,
        vec![
            (1, "REF-1", "registered"),
            (2, "REF-2", "registered"),
            (3, "", "registered"),
            (4, "REF-1", "already"),
            (5, "", "rejected"),
        ]
    );
    let one = f.vault.find_by_reference(&f.as_("cw"), "REF-1").unwrap();
    assert_eq!(
        first.lines[3].outcome,
        LineOutcome::AlreadyRegistered {
            candidate_id: Some(one)
        },
        "the line that repeats a reference names the candidate that has it"
    );

    // Again: only the line without a reference is registered again (the warning's case).
    let count = f.vault.candidate_count().unwrap();
    let second = import(&ImportOptions::default());
    assert_eq!(second.imported, 1);
    assert_eq!(f.vault.candidate_count().unwrap(), count + 1);

    // With update: the referenced lines replace what they hold of those profiles.
    let third = import(&ImportOptions {
        update_existing: true,
        ..ImportOptions::default()
    });
    let updated: Vec<u64> = third
        .lines
        .iter()
        .filter(|l| matches!(l.outcome, LineOutcome::Updated { .. }))
        .map(|l| l.line)
        .collect();
    assert_eq!(updated, vec![1, 2, 4]);
    // Line 4 came last, so candidate REF-1 now has its name.
    f.assign(one, "emp-org", "matching", "recruitment");
    f.vault
        .update(
            &f.as_("cw"),
            &one,
            br#"{"control": {"protected": false, "consents": {"employer_contact": true}}}"#,
            None,
        )
        .unwrap();
    assert_eq!(
        extract(&f, &one)["groups"]["identity"]["name"],
        "Same As One"
    );
}
