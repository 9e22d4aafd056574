//! The encrypted vault core and access by policy, through the library's public API:
//! real SQLite files, the real age format, the shipped Cedar policy.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::{contains, db_and_wal, Fixture};
use cvvault::error::Error;
use cvvault::ids::CandidateId;
use cvvault::profile::Profile;
use cvvault::synth::Synth;
use cvvault::vault::{ImportMode, ImportOptions, RotateIdentity};
use cvvault::vocabulary::{FieldGroup, Purpose};

fn purpose(p: &str) -> Purpose {
    p.parse().unwrap()
}

fn extract_groups(
    f: &Fixture,
    who: &str,
    id: &CandidateId,
    p: &str,
) -> Result<serde_json::Value, Error> {
    let extract = f.vault.extract(&f.as_(who), id, &purpose(p))?;
    Ok(serde_json::from_slice(&extract.json).unwrap())
}

#[test]
fn every_field_group_round_trips_through_the_store() {
    let f = Fixture::new();
    let mut profile = Synth::new(11).profile_with_marker("ROUNDTRIP-MARKER");
    profile.control.protected = false;
    let original: serde_json::Value =
        serde_json::from_slice(&profile.to_json_groups(&FieldGroup::ALL).unwrap()).unwrap();
    let id = f.register(&profile);
    // The subject reads their own profile: every disclosable group.
    let subject_me = f.vault.add_subject(id, "self".parse().unwrap()).unwrap();
    let json = extract_groups(&f, subject_me.as_str(), &id, "subject-access").unwrap();
    for group in FieldGroup::DISCLOSABLE {
        assert_eq!(
            json["groups"][group.as_str()],
            original[group.as_str()],
            "group {group}"
        );
    }
    assert!(
        json["groups"].get("control").is_none(),
        "control is never disclosed"
    );
}

#[test]
fn no_plaintext_reaches_the_database_file_or_its_wal() {
    crate::sqlite_only!();
    let f = Fixture::new();
    let marker = "UNIQUE-MARKER-7d1e5a";
    f.register_marked(marker, false, true);
    let bytes = db_and_wal(&f.db());
    assert!(bytes.len() > 4096, "the database and WAL were read");
    assert!(
        !contains(&bytes, marker.as_bytes()),
        "the marker is in the raw database or WAL"
    );
    // The same holds once the WAL is checkpointed into the main file.
    f.vault.truncate_wal().unwrap();
    assert!(!contains(&db_and_wal(&f.db()), marker.as_bytes()));
}

#[test]
fn a_flipped_byte_in_a_stored_ciphertext_or_wrapped_dek_fails_to_open() {
    crate::sqlite_only!();
    let f = Fixture::new();
    let id = f.register_marked("FLIP", false, true);
    f.assign(id, "emp-org", "matching", "recruitment");
    assert!(extract_groups(&f, "emp", &id, "recruitment").is_ok());
    let own = f.vault.add_subject(id, "self".parse().unwrap()).unwrap();
    let raw = f.raw();
    for (table, column) in [
        ("sealed_profiles", "professional"),
        ("sealed_profiles", "control"),
        ("candidate_keys", "wrapped_dek"),
        ("candidate_keys", "dek_commitment"),
    ] {
        let original: Vec<u8> = raw
            .query_row(
                &format!("SELECT {column} FROM {table} WHERE candidate_id = ?1"),
                [&id.as_bytes()[..]],
                |r| r.get(0),
            )
            .unwrap();
        let mut flipped = original.clone();
        flipped[original.len() / 2] ^= 0x01;
        raw.execute(
            &format!("UPDATE {table} SET {column} = ?1 WHERE candidate_id = ?2"),
            rusqlite::params![flipped, &id.as_bytes()[..]],
        )
        .unwrap();
        // The candidate's own subject is told the record does not open; an employer is told
        // what an unknown id would tell it (a damaged record is no business of theirs).
        let result = extract_groups(&f, own.as_str(), &id, "subject-access");
        assert!(
            matches!(result, Err(Error::DecryptionFailed)),
            "{table}.{column}: {:?}",
            result.err()
        );
        let result = extract_groups(&f, "emp", &id, "recruitment");
        assert!(
            matches!(result, Err(Error::NotFound { .. })),
            "{table}.{column}: {:?}",
            result.err()
        );
        raw.execute(
            &format!("UPDATE {table} SET {column} = ?1 WHERE candidate_id = ?2"),
            rusqlite::params![original, &id.as_bytes()[..]],
        )
        .unwrap();
    }
    assert!(
        extract_groups(&f, "emp", &id, "recruitment").is_ok(),
        "restored rows open again"
    );
}

#[test]
fn a_sealed_group_moved_to_another_candidate_fails_to_open() {
    crate::sqlite_only!();
    let f = Fixture::new();
    let a = f.register_marked("MOVE-A", false, true);
    let b = f.register_marked("MOVE-B", false, true);
    f.assign(b, "emp-org", "matching", "recruitment");
    let raw = f.raw();
    let a_professional: Vec<u8> = raw
        .query_row(
            "SELECT professional FROM sealed_profiles WHERE candidate_id = ?1",
            [&a.as_bytes()[..]],
            |r| r.get(0),
        )
        .unwrap();
    raw.execute(
        "UPDATE sealed_profiles SET professional = ?1 WHERE candidate_id = ?2",
        rusqlite::params![a_professional, &b.as_bytes()[..]],
    )
    .unwrap();
    let own = f.vault.add_subject(b, "self".parse().unwrap()).unwrap();
    assert!(matches!(
        extract_groups(&f, own.as_str(), &b, "subject-access"),
        Err(Error::DecryptionFailed)
    ));
    assert!(matches!(
        extract_groups(&f, "emp", &b, "recruitment"),
        Err(Error::NotFound { .. })
    ));
}

#[test]
fn rotation_rewraps_every_dek_and_retires_the_old_version() {
    crate::sqlite_only!();
    let f = Fixture::new();
    let ids: Vec<CandidateId> = (0..25)
        .map(|i| f.register_marked(&format!("ROT-{i}"), false, true))
        .collect();
    for id in &ids {
        f.assign(*id, "coach-org", "coaching", "coaching");
    }
    let sealed_before: String = f
        .raw()
        .query_row(
            "SELECT group_concat(hex(professional)) FROM sealed_profiles",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let report = f
        .vault
        .rotate_keys(&f.unlock(), RotateIdentity::Keep, &|_, _| {})
        .unwrap();
    assert_eq!(
        (report.new_version, report.rewrapped, report.retired.clone()),
        (2, 25, vec![1])
    );
    let status = f.vault.keys_status().unwrap();
    assert_eq!(status.keyring_versions, vec![2]);
    assert_eq!(
        status.deks_per_version,
        vec![(2, 25)],
        "no DEK remains under version 1"
    );
    let sealed_after: String = f
        .raw()
        .query_row(
            "SELECT group_concat(hex(professional)) FROM sealed_profiles",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(
        sealed_before, sealed_after,
        "data ciphertexts are untouched"
    );
    let f = f.reopen();
    for id in &ids {
        assert!(extract_groups(&f, "coach", id, "coaching").is_ok());
    }
}

fn import_text(f: &Fixture, text: &str, options: &ImportOptions) -> cvvault::vault::ImportReport {
    let owned = text.to_owned();
    let open = move || -> cvvault::Result<Box<dyn std::io::BufRead>> {
        Ok(Box::new(std::io::Cursor::new(owned.clone().into_bytes())))
    };
    f.vault
        .import(&f.as_("cw"), &open, options, &|_, _| {})
        .unwrap()
}

fn five_lines_two_bad() -> Vec<String> {
    let mut synth = Synth::new(3);
    let mut lines: Vec<String> = (0..5)
        .map(|_| {
            String::from_utf8(
                synth
                    .profile()
                    .to_json_groups(&FieldGroup::ALL)
                    .unwrap()
                    .to_vec(),
            )
            .unwrap()
        })
        .collect();
    lines[1] = r#"{"identity":{"name":"A","nationalty":"x"}}"#.into();
    lines[3] = "{not json".into();
    lines
}

#[test]
fn all_or_nothing_import_reports_every_bad_line_and_imports_nothing() {
    let f = Fixture::new();
    let lines = five_lines_two_bad();
    let all_or_nothing = ImportOptions {
        mode: ImportMode::AllOrNothing,
        only_lines: None,
        ..ImportOptions::default()
    };
    let report = import_text(&f, &lines.join("\n"), &all_or_nothing);
    assert_eq!(report.imported, 0);
    let bad: Vec<u64> = report.rejected.iter().map(|(n, _)| *n).collect();
    assert_eq!(bad, vec![2, 4]);
    assert!(
        report.rejected[0].1.contains("$.identity"),
        "{}",
        report.rejected[0].1
    );
    assert_eq!(
        f.vault.candidate_count().unwrap(),
        0,
        "nothing was imported"
    );
}

#[test]
fn default_import_skips_and_reports_bad_lines_then_imports_just_the_fixed_ones() {
    let f = Fixture::new();
    let mut lines = five_lines_two_bad();
    let report = import_text(&f, &lines.join("\n"), &ImportOptions::default());
    assert_eq!(report.imported, 3);
    assert_eq!(
        report.rejected.iter().map(|(n, _)| *n).collect::<Vec<_>>(),
        vec![2, 4]
    );
    assert_eq!(f.vault.candidate_count().unwrap(), 3);
    // Fix the two lines and import only them: no candidate is imported twice.
    let mut synth = Synth::new(99);
    for i in [1, 3] {
        lines[i] = String::from_utf8(
            synth
                .profile()
                .to_json_groups(&FieldGroup::ALL)
                .unwrap()
                .to_vec(),
        )
        .unwrap();
    }
    let only = ImportOptions {
        mode: ImportMode::SkipBad,
        only_lines: Some([2, 4].into_iter().collect()),
        ..ImportOptions::default()
    };
    let report = import_text(&f, &lines.join("\n"), &only);
    assert_eq!((report.imported, report.rejected.len()), (2, 0));
    assert_eq!(f.vault.candidate_count().unwrap(), 5);
}

/// More lines than the workers are given at once (2,000 a batch, two batches ahead of the
/// writer), with bad lines in several batches: every good line is imported once, in file
/// order, each with its registration entry, and every bad one is reported.
#[test]
fn an_import_of_many_batches_keeps_every_line_in_order_with_its_entry() {
    let f = Fixture::new();
    const LINES: u64 = 9_500;
    let bad: Vec<u64> = vec![1, 2_000, 2_001, 4_500, 8_001, LINES];
    let mut synth = Synth::new(21);
    let mut text = String::new();
    for n in 1..=LINES {
        if bad.contains(&n) {
            text.push_str(r#"{"identity":{"name":"x"},"contact":{"emial":"x"}}"#);
        } else {
            let mut profile = synth.profile();
            profile.identity.name = format!("Line {n}");
            profile.control.protected = false;
            text.push_str(
                std::str::from_utf8(&profile.to_json_groups(&FieldGroup::ALL).unwrap()).unwrap(),
            );
        }
        text.push('\n');
    }
    let seen = std::sync::Mutex::new(Vec::new());
    let owned = text.clone();
    let open = move || -> cvvault::Result<Box<dyn std::io::BufRead>> {
        Ok(Box::new(std::io::Cursor::new(owned.clone().into_bytes())))
    };
    let report = f
        .vault
        .import(
            &f.as_("cw"),
            &open,
            &ImportOptions::default(),
            &|_, done| seen.lock().unwrap().push(done),
        )
        .unwrap();

    let good = LINES - bad.len() as u64;
    assert_eq!(report.imported, good);
    assert_eq!(report.ids.len() as u64, good);
    let rejected: Vec<u64> = report.rejected.iter().map(|(n, _)| *n).collect();
    assert_eq!(rejected, bad);
    assert!(report
        .rejected
        .iter()
        .all(|(_, why)| why.contains("$.contact")));
    assert_eq!(f.vault.candidate_count().unwrap(), good);
    let seen = seen.into_inner().unwrap();
    assert!(seen.windows(2).all(|w| w[0] < w[1]), "progress only grows");
    assert_eq!(seen.last(), Some(&good));

    // Ids come in file order: sample the first, the last and one from every batch.
    let good_lines: Vec<u64> = (1..=LINES).filter(|n| !bad.contains(n)).collect();
    let mut entry_indexes = Vec::new();
    for k in [
        0,
        1,
        1_998,
        2_500,
        4_496,
        6_000,
        7_994,
        good_lines.len() - 1,
    ] {
        let id = report.ids[k];
        let me = f.vault.add_subject(id, "self".parse().unwrap()).unwrap();
        let json = extract_groups(&f, me.as_str(), &id, "subject-access").unwrap();
        assert_eq!(
            json["groups"]["identity"]["name"],
            format!("Line {}", good_lines[k])
        );
        let entries = f.vault.audit_search(&f.as_("dpo"), &id).unwrap();
        let registered: Vec<_> = entries
            .iter()
            .filter(|e| e.action == "candidate.register")
            .collect();
        assert_eq!(registered.len(), 1, "one registration entry per candidate");
        assert_eq!(registered[0].note.as_deref(), Some("import"));
        entry_indexes.push(registered[0].index);
    }
    assert!(
        entry_indexes.windows(2).all(|w| w[0] < w[1]),
        "entries in file order: {entry_indexes:?}"
    );
    let verified = f
        .vault
        .audit_verify(&f.as_("dpo"), vec![], &|_| {})
        .unwrap();
    assert!(verified.entries > good);
}

/// A line far over the limit (a file with no line breaks, say) is one bad line: reported with
/// its number, the lines after it imported, and never read into memory whole.
#[test]
fn an_overlong_line_is_reported_like_any_bad_line_in_both_modes() {
    let f = Fixture::new();
    let mut lines = five_lines_two_bad();
    lines[1] = lines[0].clone();
    lines[3] = format!("{{\"identity\":{{\"name\":\"{}\"}}}}", "n".repeat(4 << 20));
    let text = lines.join("\n");
    let all_or_nothing = ImportOptions {
        mode: ImportMode::AllOrNothing,
        only_lines: None,
        ..ImportOptions::default()
    };
    for options in [all_or_nothing, ImportOptions::default()] {
        let report = import_text(&f, &text, &options);
        assert_eq!(report.rejected.len(), 1, "{:?}", report.rejected);
        let (line, why) = &report.rejected[0];
        assert_eq!(*line, 4);
        assert!(why.contains("longer than 512 KiB"), "{why}");
        let expected = if options.mode == ImportMode::AllOrNothing {
            0
        } else {
            4
        };
        assert_eq!(report.imported, expected, "{:?}", options.mode);
    }
    assert_eq!(f.vault.candidate_count().unwrap(), 4);
}

#[test]
fn unknown_fields_are_refused_with_their_json_path_and_no_value() {
    let err = Profile::from_document(
        br#"{"identity":{"name":"Secret Person"},"special":{"nationalty":"SECRETVALUE"}}"#,
    )
    .err()
    .unwrap()
    .to_string();
    assert!(err.contains("$.special"), "{err}");
    assert!(err.contains("nationalty"), "{err}");
    assert!(
        !err.contains("SECRETVALUE") && !err.contains("Secret Person"),
        "{err}"
    );
}

#[test]
fn registering_as_an_employer_grants_nothing() {
    let f = Fixture::new();
    let id = f.register_marked("NOACCESS", false, true);
    for who in ["emp", "coach"] {
        assert!(matches!(
            extract_groups(&f, who, &id, "recruitment"),
            Err(Error::NotFound { .. })
        ));
        assert!(matches!(
            extract_groups(&f, who, &id, "coaching"),
            Err(Error::NotFound { .. })
        ));
    }
    // A random id gets the very same answer: ids cannot be probed.
    assert!(matches!(
        extract_groups(&f, "emp", &CandidateId::random(), "recruitment"),
        Err(Error::NotFound { .. })
    ));
    // Nor may an employer register candidates or open assignments.
    let profile = Synth::new(1).profile();
    assert!(matches!(
        f.vault.register(&f.as_("emp"), &profile),
        Err(Error::Denied { .. })
    ));
}

#[test]
fn extracts_hold_exactly_the_permitted_groups() {
    let f = Fixture::new();
    let consenting = f.register_marked("CONSENT", false, true);
    let private = f.register_marked("PRIVATE", false, false);
    for id in [consenting, private] {
        f.assign(id, "emp-org", "matching", "recruitment");
        f.assign(id, "coach-org", "coaching", "coaching");
    }
    let keys = |v: &serde_json::Value| -> Vec<String> {
        let mut k: Vec<String> = v["groups"].as_object().unwrap().keys().cloned().collect();
        k.sort();
        k
    };
    assert_eq!(
        keys(&extract_groups(&f, "emp", &consenting, "recruitment").unwrap()),
        ["contact", "identity", "professional"]
    );
    assert_eq!(
        keys(&extract_groups(&f, "emp", &private, "recruitment").unwrap()),
        ["professional"]
    );
    assert_eq!(
        keys(&extract_groups(&f, "coach", &private, "coaching").unwrap()),
        ["contact", "identity", "professional"]
    );
    // Other organisation, wrong purpose, after the assignment closed: nothing.
    assert!(matches!(
        extract_groups(&f, "emp2", &consenting, "recruitment"),
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(
        extract_groups(&f, "emp", &consenting, "coaching"),
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(
        extract_groups(&f, "dpo", &consenting, "recruitment"),
        Err(Error::Denied { .. })
    ));
}

#[test]
fn closing_the_assignment_ends_access() {
    let f = Fixture::new();
    let id = f.register_marked("CLOSE", false, true);
    let assignment = f.assign(id, "emp-org", "matching", "recruitment");
    assert!(extract_groups(&f, "emp", &id, "recruitment").is_ok());
    f.vault
        .close_assignment(&f.as_("cw"), &assignment, "placed in work")
        .unwrap();
    assert!(matches!(
        extract_groups(&f, "emp", &id, "recruitment"),
        Err(Error::NotFound { .. })
    ));
    // The state machine refuses wrong steps with a clear message.
    let again = f
        .vault
        .close_assignment(&f.as_("cw"), &assignment, "again")
        .err()
        .unwrap();
    assert!(
        matches!(again, Error::Conflict(_)) && again.to_string().contains("already closed"),
        "{again}"
    );
    let unknown_org = f
        .vault
        .open_assignment(
            &f.as_("cw"),
            cvvault::vault::OpenAssignment {
                candidate_id: id,
                org: "no-such-org".parse().unwrap(),
                kind: "matching".parse().unwrap(),
                purpose: purpose("recruitment"),
            },
        )
        .err()
        .unwrap();
    assert!(
        unknown_org.to_string().contains("unknown organisation"),
        "{unknown_org}"
    );
    f.vault.erase(&f.as_("cw"), &id).unwrap();
    let erased = f
        .vault
        .open_assignment(
            &f.as_("cw"),
            cvvault::vault::OpenAssignment {
                candidate_id: id,
                org: "emp-org".parse().unwrap(),
                kind: "matching".parse().unwrap(),
                purpose: purpose("recruitment"),
            },
        )
        .err()
        .unwrap();
    assert!(matches!(erased, Error::NotFound { .. }), "{erased}");
}

#[test]
fn a_protected_candidate_never_reaches_employers_or_providers() {
    let f = Fixture::new();
    let id = f.register_marked("PROTECTED", true, true);
    f.assign(id, "coach-org", "coaching", "coaching");
    let matching = f.vault.open_assignment(
        &f.as_("cw"),
        cvvault::vault::OpenAssignment {
            candidate_id: id,
            org: "emp-org".parse().unwrap(),
            kind: "matching".parse().unwrap(),
            purpose: purpose("recruitment"),
        },
    );
    assert!(
        matches!(matching, Err(Error::Denied { .. })),
        "matching a protected candidate is refused"
    );
    assert!(matches!(
        extract_groups(&f, "coach", &id, "coaching"),
        Err(Error::NotFound { .. })
    ));
}

#[test]
fn a_permit_everything_file_still_keeps_special_and_protected_candidates_safe() {
    let f = Fixture::new();
    let normal = f.register_marked("PERMITALL-N", false, true);
    let protected = f.register_marked("PERMITALL-P", true, true);
    f.assign(normal, "emp-org", "matching", "recruitment");
    std::fs::write(
        f.paths.policy_dir.join("zz-permit-everything.cedar"),
        "@id(\"permit-everything\")\n@description(\"A careless rule added later.\")\npermit(principal, action, resource);\n",
    )
    .unwrap();
    let f = f.reopen();
    let json = extract_groups(&f, "emp", &normal, "recruitment").unwrap();
    assert!(
        json["groups"].get("special").is_none(),
        "special never reaches an employer"
    );
    for who in ["emp", "emp2", "coach"] {
        let result = extract_groups(&f, who, &protected, "recruitment");
        assert!(
            matches!(result, Err(Error::NotFound { .. })),
            "{who}: {result:?}"
        );
    }
}

#[test]
fn an_invalid_policy_stops_the_vault_from_opening_with_file_and_position() {
    let f = Fixture::new();
    std::fs::write(
        f.paths.policy_dir.join("zz-typo.cedar"),
        "@id(\"typo\")\n@description(\"typo\")\npermit(principal is Employer, action, resource is Candidate)\nwhen { resource.protectd };\n",
    )
    .unwrap();
    f.vault.close().unwrap();
    let err = cvvault::vault::Vault::open(&f.paths, &f.unlock())
        .err()
        .unwrap();
    let text = err.to_string();
    assert!(matches!(err, Error::InvalidPolicy { .. }), "{text}");
    assert!(text.contains("zz-typo.cedar:4:"), "{text}");
    assert_eq!(err.exit_code(), 15);
}

#[test]
fn errors_never_carry_profile_content() {
    let f = Fixture::new();
    let id = f.register_marked("ERRMARKER", false, true);
    let errors = [
        extract_groups(&f, "emp", &id, "recruitment").err().unwrap(),
        extract_groups(&f, "dpo", &id, "recruitment").err().unwrap(),
        f.vault.erase(&f.as_("emp"), &id).err().unwrap(),
    ];
    for e in errors {
        let text = format!("{e} {e:?}");
        assert!(!text.contains("ERRMARKER"), "{text}");
    }
}

#[test]
fn a_legal_hold_blocks_erasure_on_request_until_released() {
    let f = Fixture::new();
    let id = f.register_marked("HOLD", false, false);
    f.vault
        .set_hold(&f.as_("dpo"), &id, true, "case 2026-041")
        .unwrap();
    let refused = f.vault.erase(&f.as_("cw"), &id).err().unwrap();
    assert!(
        matches!(refused, Error::LegalHold) && refused.to_string().contains("legal hold"),
        "{refused}"
    );
    // The library names no command of an edge; the CLI adds its own next step.
    assert!(!refused.to_string().contains("cvvault"), "{refused}");
    assert!(cvvault::cli::next_step(&refused).is_some_and(|s| s.contains("cvvault hold release")));
    assert_eq!(f.vault.candidate_count().unwrap(), 1);
    f.vault.set_hold(&f.as_("dpo"), &id, false, "").unwrap();
    f.vault.erase(&f.as_("cw"), &id).unwrap();
    assert_eq!(f.vault.candidate_count().unwrap(), 0);
}

#[test]
fn refused_state_changes_are_audited_too() {
    crate::sqlite_only!();
    let f = Fixture::new();
    let id = f.register_marked("REFUSALS", false, false);
    let assignment = f.assign(id, "coach-org", "coaching", "coaching");
    f.vault
        .close_assignment(&f.as_("cw"), &assignment, "done")
        .unwrap();
    assert!(f
        .vault
        .close_assignment(&f.as_("cw"), &assignment, "again")
        .is_err());
    assert!(f
        .vault
        .close_assignment(&f.as_("cw"), &cvvault::ids::AssignmentId::random(), "x")
        .is_err());
    let _ = f.vault.open_assignment(
        &f.as_("cw"),
        cvvault::vault::OpenAssignment {
            candidate_id: id,
            org: "nowhere".parse().unwrap(),
            kind: "coaching".parse().unwrap(),
            purpose: purpose("coaching"),
        },
    );
    f.vault
        .explain(&f.as_("emp"), &id, &purpose("recruitment"))
        .unwrap();
    let notes: Vec<String> = f
        .raw()
        .prepare("SELECT entry FROM audit_entries")
        .unwrap()
        .query_map([], |r| r.get::<_, String>(0))
        .unwrap()
        .map(|e| e.unwrap())
        .collect();
    for (action, note) in [
        ("assignment.close", "already-closed"),
        ("assignment.close", "not-found"),
        ("assignment.open", "unknown-organisation"),
        ("policy.explain", "explanation only"),
    ] {
        assert!(
            notes
                .iter()
                .any(|e| e.contains(&format!("\"action\":\"{action}\"")) && e.contains(note)),
            "no {action} entry with {note}"
        );
    }
}

#[test]
fn a_process_holding_an_old_keyring_follows_a_rotation_by_another_without_a_restart() {
    // Before: it refused every registration and extract until restarted, which a vault served
    // by several nodes cannot afford. It must never store under the destroyed KEK either.
    let f = Fixture::new();
    let id = f.register_marked("BEFORE-ROTATION", false, false);
    // A second process (here: a second vault on the same files) rotates the keys.
    let other = cvvault::vault::Vault::open(&f.paths, &f.unlock()).unwrap();
    other
        .rotate_keys(&f.unlock(), RotateIdentity::Keep, &|_, _| {})
        .unwrap();
    other.close().unwrap();
    // The first still holds KEK version 1, which no longer exists: it loads the keyring
    // again and stores under version 2.
    f.register(&Synth::new(8).profile());
    let status = f.vault.keys_status().unwrap();
    assert_eq!(status.keyring_versions, vec![2]);
    assert_eq!(
        status.deks_per_version,
        vec![(2, 2)],
        "nothing under the old KEK"
    );
    // And the candidate from before (rewrapped by the other process) opens, without a restart.
    let subject_me = f.vault.add_subject(id, "self".parse().unwrap()).unwrap();
    assert!(extract_groups(&f, subject_me.as_str(), &id, "subject-access").is_ok());
}

#[test]
fn a_legal_hold_is_never_overwritten_and_a_missing_one_is_not_released() {
    // Before: placing a hold on a held candidate replaced its ground without a word, and
    // releasing a hold that did not exist "succeeded".
    let f = Fixture::new();
    let id = f.register_marked("HOLDTWICE", false, false);
    let dpo = f.as_("dpo");
    let refused = f.vault.set_hold(&dpo, &id, false, "").unwrap_err();
    assert!(matches!(refused, Error::NotHeld), "{refused}");
    assert_eq!(refused.exit_code(), 5);
    f.vault.set_hold(&dpo, &id, true, "case 2026-041").unwrap();
    let refused = f
        .vault
        .set_hold(&dpo, &id, true, "case 2026-099")
        .unwrap_err();
    assert!(
        matches!(&refused, Error::AlreadyHeld { ground } if ground == "case 2026-041"),
        "{refused}"
    );
    assert!(refused.to_string().contains("case 2026-041"), "{refused}");
    assert!(cvvault::cli::next_step(&refused).is_some_and(|s| s.contains("hold release")));
    // The first ground stands; the trail has each ground and each refusal.
    let entries = f.vault.audit_search(&dpo, &id).unwrap();
    let notes: Vec<(String, bool, Option<String>)> = entries
        .iter()
        .filter(|e| e.action.starts_with("hold."))
        .map(|e| {
            (
                e.action.clone(),
                e.decision == cvvault::audit::entry::Outcome::Allow,
                e.note.clone(),
            )
        })
        .collect();
    assert_eq!(
        notes,
        [
            ("hold.release".into(), false, Some("not-held".into())),
            (
                "hold.place".into(),
                true,
                Some("ground=case 2026-041".into())
            ),
            ("hold.place".into(), false, Some("already-held".into())),
        ]
    );
    f.vault.set_hold(&dpo, &id, false, "").unwrap();
    let last = f.vault.audit_search(&dpo, &id).unwrap();
    assert!(last
        .iter()
        .any(|e| e.note.as_deref() == Some("released ground=case 2026-041")));
}

#[test]
fn asking_for_lines_the_file_does_not_have_says_so() {
    // Before: `--only-lines 99` on a file of three lines reported "the file holds no profile".
    let f = Fixture::new();
    let mut lines = Vec::new();
    cvvault::synth::ndjson(3, 11, &mut lines).unwrap();
    let text = String::from_utf8(lines).unwrap();
    let text = text.replacen('\n', "\n\n", 1); // line 2 is blank, the profiles are 1, 3, 4
    for mode in [ImportMode::SkipBad, ImportMode::AllOrNothing] {
        let asked = ImportOptions {
            mode,
            only_lines: Some([2, 3, 99].into_iter().collect()),
            ..ImportOptions::default()
        };
        let report = import_text(&f, &text, &asked);
        let messages: Vec<(u64, String)> = report.rejected.clone();
        assert_eq!(
            messages,
            [
                (2, "the line is blank: there is no profile on it".to_owned()),
                (
                    99,
                    "the file has only 4 line(s), numbered from 1: there is no line 99, so nothing was imported from it"
                        .to_owned()
                ),
            ],
            "{mode:?}"
        );
        assert_eq!(report.not_in_file, vec![2, 99], "{mode:?}");
        // One pass imports the line that is there; all-or-nothing imports nothing.
        let expected = if mode == ImportMode::SkipBad { 1 } else { 0 };
        assert_eq!(report.imported, expected, "{mode:?}");
    }
    assert_eq!(f.vault.candidate_count().unwrap(), 1);
}
