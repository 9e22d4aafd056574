//! The assignment's purpose binds (issue 12, observation 1): `assignment open --purpose
//! statistics` (or a misspelt `recruitmnet`) was accepted and the employer then extracted
//! with `--purpose recruitment`; `--kind coaching --org <an employer>` was accepted too.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::{cvvault, stderr, stdout, Fixture};
use cvvault::vault::OpenAssignment;
use cvvault::Error;

fn open(f: &Fixture, id: &str, org: &str, kind: &str, purpose: &str) -> std::process::Output {
    cvvault(
        f.dir.path(),
        &[
            "--as",
            "cw",
            "assignment",
            "open",
            "--candidate",
            id,
            "--org",
            org,
            "--kind",
            kind,
            "--purpose",
            purpose,
        ],
    )
}

#[test]
fn an_assignment_opens_only_for_its_kinds_purpose_and_organisation() {
    let f = Fixture::new();
    let id = f.register_marked("PURPOSEBINDS", false, true).to_string();
    f.vault.close().unwrap();

    for purpose in ["statistics", "recruitmnet"] {
        let out = open(&f, &id, "emp-org", "matching", purpose);
        assert_eq!(out.status.code(), Some(65), "{purpose}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("the purposes are coaching, recruitment, subject-access"),
            "{}",
            stderr(&out)
        );
    }
    for (org, kind, purpose) in [
        ("emp-org", "coaching", "coaching"),
        ("coach-org", "matching", "recruitment"),
        ("emp-org", "matching", "coaching"),
        ("agency", "matching", "recruitment"),
    ] {
        let out = open(&f, &id, org, kind, purpose);
        assert_eq!(
            out.status.code(),
            Some(3),
            "{org} {kind} {purpose}: {}",
            stderr(&out)
        );
        assert!(
            stderr(&out).contains("assignment-kind-links-its-organisation-for-its-purpose"),
            "{}",
            stderr(&out)
        );
    }
    let out = open(&f, &id, "emp-org", "matching", "recruitment");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let extract = cvvault(
        f.dir.path(),
        &[
            "--as",
            "emp",
            "extract",
            "--candidate",
            &id,
            "--purpose",
            "recruitment",
        ],
    );
    assert_eq!(extract.status.code(), Some(0), "{}", stderr(&extract));
    assert!(stdout(&extract).contains("PURPOSEBINDS"));
    // The same employer, for another declared purpose: nothing.
    let other = cvvault(
        f.dir.path(),
        &[
            "--as",
            "emp",
            "extract",
            "--candidate",
            &id,
            "--purpose",
            "coaching",
        ],
    );
    assert_eq!(other.status.code(), Some(4), "{}", stderr(&other));
    assert!(!stdout(&other).contains("PURPOSEBINDS"));
}

#[test]
fn a_principal_cannot_join_an_organisation_of_another_kind() {
    let f = Fixture::new();
    let refused = f.vault.add_principal(
        "sneaky".parse().unwrap(),
        cvvault::vocabulary::Role::Employer,
        "coach-org".parse().unwrap(),
        None,
    );
    assert!(
        matches!(&refused, Err(Error::InvalidInput { message }) if message.contains("is a job-coaching provider")),
        "{:?}",
        refused.err().map(|e| e.to_string())
    );
}

#[test]
fn an_assignment_from_the_previous_version_with_an_undeclared_purpose_grants_nothing() {
    crate::sqlite_only!();
    let f = Fixture::new();
    let id = f.register_marked("OLDPURPOSE", false, true);
    f.vault
        .open_assignment(
            &f.as_("cw"),
            OpenAssignment {
                candidate_id: id,
                org: "emp-org".parse().unwrap(),
                kind: "matching".parse().unwrap(),
                purpose: "recruitment".parse().unwrap(),
            },
        )
        .unwrap();
    f.vault.close().unwrap();
    // As the previous version stored it: any purpose, no MAC.
    let raw = f.raw();
    raw.execute_batch(
        "ALTER TABLE tokens DROP COLUMN expires_at;
         DROP INDEX candidates_by_reference;
         ALTER TABLE candidates DROP COLUMN reference_mac;
         ALTER TABLE principals DROP COLUMN row_mac;
         ALTER TABLE tokens DROP COLUMN row_mac;
         ALTER TABLE assignments DROP COLUMN row_mac;
         ALTER TABLE candidates DROP COLUMN row_mac;
         ALTER TABLE audit_frontier DROP COLUMN mac;
         UPDATE assignments SET purpose = 'statistics';
         PRAGMA user_version = 3;",
    )
    .unwrap();
    drop(raw);
    let out = cvvault(
        f.dir.path(),
        &[
            "--as",
            "emp",
            "extract",
            "--candidate",
            &id.to_string(),
            "--purpose",
            "recruitment",
        ],
    );
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(!stdout(&out).contains("OLDPURPOSE"));
    assert!(
        stderr(&out).contains("name a purpose the vocabulary does not declare"),
        "the operator is told: {}",
        stderr(&out)
    );
}
