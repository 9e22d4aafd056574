//! What only the PostgreSQL store has to prove (CVVAULT_TEST_POSTGRES; `.ci/run` starts the
//! server): erasure that holds although deleted rows outlive their deletion, and moving a
//! SQLite vault into PostgreSQL.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::sync::Arc;

use common::{stderr, stdout, Fixture};
use cvvault::settings::Retention;
use cvvault::vault::{retention, Vault};

/// True, with a line saying why, when no PostgreSQL server is given to the tests.
fn skipped_without_postgres() -> bool {
    let skipped = !common::on_postgres();
    if skipped {
        eprintln!("needs PostgreSQL: set CVVAULT_TEST_POSTGRES (.ci/run does)");
    }
    skipped
}

fn raw(url: &str) -> postgres::Client {
    postgres::Client::connect(url, postgres::NoTls).unwrap()
}

/// The wrapped data key of `candidate` in the database at `url`: (KEK version, wrapped).
fn wrapped_key(url: &str, candidate: &cvvault::ids::CandidateId) -> Option<(i64, Vec<u8>)> {
    raw(url)
        .query_opt(
            "SELECT k.kek_version, k.wrapped_dek FROM candidates c
             JOIN candidate_keys k ON k.key_id = c.key_id WHERE c.candidate_id = $1",
            &[&&candidate.as_bytes()[..]],
        )
        .unwrap()
        .map(|row| (row.get(0), row.get(1)))
}

#[test]
fn after_a_retention_run_no_copy_of_the_database_taken_before_it_opens_an_erased_key() {
    if skipped_without_postgres() {
        return;
    }
    let f = Fixture::new();
    let gone = f.register_marked("PGERASED", false, true);
    let kept = f.register_marked("PGKEPT", false, true);
    let assignment = f.assign(gone, "emp-org", "matching", "recruitment");
    f.vault
        .close_assignment(&f.as_("cw"), &assignment, "placed in work")
        .unwrap();
    f.assign(kept, "emp-org", "matching", "recruitment");
    std::fs::write(
        f.paths.retention_settings(),
        "grace_after_close_days = 0\nmax_idle_days = 30\nmax_life_days = 1095\n",
    )
    .unwrap();
    let url = f.pg.as_ref().unwrap().url.clone();
    let before = wrapped_key(&url, &gone).expect("the candidate has a wrapped key");
    assert_eq!(before.0, 1, "wrapped under KEK version 1");

    // A file-level copy of the whole database as it is before the run: what a base backup,
    // a replica or the dead tuples and WAL of the live one still hold after it.
    let Fixture {
        dir,
        paths,
        vault,
        clock,
        pg,
    } = f;
    vault.close().unwrap();
    drop(vault);
    let copy = common::PgDatabase::from_template(pg.as_ref().unwrap());
    let vault = Vault::open_with_clock(
        &paths,
        &Fixture::unlock_for(&paths),
        Arc::new(clock.clone()),
    )
    .unwrap();
    clock.advance(3600);

    let settings = Retention::load(&paths.retention_settings()).unwrap();
    let report = retention::run(
        &vault,
        &settings,
        false,
        Some(&Fixture::unlock_for(&paths)),
        &|_| {},
    )
    .unwrap();
    assert_eq!(report.total, 1, "{report:?}");
    assert_eq!(
        report.kek_destroyed,
        vec![1],
        "the run ends by destroying KEK 1"
    );
    assert!(!report.erasure_pending_rotation);

    // The copy still holds the erased candidate's wrapped key, byte for byte.
    assert_eq!(wrapped_key(&copy.url, &gone), Some(before.clone()));
    assert_eq!(
        wrapped_key(&url, &gone),
        None,
        "gone from the live database"
    );

    // Positive control: the kept candidate's key, rewrapped, opens with the keyring left.
    let live = vault.verify_keys(&|_, _| {}).unwrap();
    assert!(live.failed.is_empty() && live.ok >= 1, "{live:?}");
    let status = vault.keys_status().unwrap();
    assert_eq!(status.keyring_versions, vec![2], "only the new KEK is left");
    vault.close().unwrap();
    drop(vault);

    // The copy, opened with every key that still exists: none of its data keys opens, under
    // the version it records or relabelled as the keyring's own.
    let mut copied_paths = paths.clone();
    copied_paths.postgres = Some(cvvault::paths::PgTarget::parse(&copy.url).unwrap());
    for relabel in [false, true] {
        if relabel {
            raw(&copy.url)
                .batch_execute("UPDATE candidate_keys SET kek_version = 2 WHERE kek_version = 1")
                .unwrap();
        }
        match Vault::open(&copied_paths, &Fixture::unlock_for(&paths)) {
            Ok(old) => {
                let check = old.verify_keys(&|_, _| {}).unwrap();
                assert_eq!(check.ok, 0, "relabelled={relabel}: {check:?}");
                assert_eq!(check.failed.len(), 2, "relabelled={relabel}: {check:?}");
                old.close().unwrap();
            }
            Err(refused) => panic!("relabelled={relabel}: the copy did not open: {refused}"),
        }
    }
    drop((dir, pg));
}

#[test]
fn a_sqlite_vault_moves_into_postgresql_and_the_copy_is_proved() {
    let Some(target) = common::PgDatabase::create() else {
        eprintln!("needs PostgreSQL: set CVVAULT_TEST_POSTGRES (.ci/run does)");
        return;
    };
    // The SQLite vault: made and run without the test's PostgreSQL database.
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let sqlite = |args: &[&str]| {
        let mut cmd = common::vault_command(root);
        cmd.env_remove("CVVAULT_DATABASE_URL").args(args);
        cmd.output().unwrap()
    };
    assert!(sqlite(&["init"]).status.success());
    for (id, role, org) in [
        ("cw", "caseworker", "agency"),
        ("emp", "employer", "emp-org"),
        ("dpo", "dpo", "agency"),
    ] {
        let out = sqlite(&["principal", "add", id, "--role", role, "--org", org]);
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let doc = root.join("ada.json");
    std::fs::write(
        &doc,
        r#"{"identity":{"name":"MIGRATED-MARKER Ada"},"professional":{"headline":"Welder"},"control":{"consents":{"employer_contact":true}}}"#,
    )
    .unwrap();
    let out = sqlite(&["candidate", "add", doc.to_str().unwrap(), "--as", "cw"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let id = stdout(&out).trim().to_owned();
    let out = sqlite(&[
        "assignment",
        "open",
        "--candidate",
        &id,
        "--org",
        "emp-org",
        "--kind",
        "matching",
        "--purpose",
        "recruitment",
        "--as",
        "cw",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));

    let out = sqlite(&["--json", "migrate", "--to", &target.url]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let entries = report["audit_entries"].as_u64().unwrap();
    assert!(entries > 5, "{report}");
    assert!(
        report["checkpoints_verified"].as_u64().unwrap() >= 1,
        "{report}"
    );

    // A second copy into the same database is refused, and changes nothing.
    let again = sqlite(&["migrate", "--to", &target.url]);
    assert_eq!(again.status.code(), Some(5), "{}", stderr(&again));
    assert!(
        stderr(&again).contains("holds a vault already"),
        "{}",
        stderr(&again)
    );

    // The copy is the vault: the same trail (size and root, verified with the DPO's keys),
    // and the candidate opens for the employer its assignment names.
    let on_pg = |args: &[&str]| {
        let mut cmd = common::vault_command(root);
        cmd.env("CVVAULT_DATABASE_URL", &target.url).args(args);
        cmd.output().unwrap()
    };
    let out = on_pg(&["--json", "audit", "verify", "--as", "dpo"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let verified: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        verified["entries"].as_u64().unwrap() > entries,
        "{verified}"
    );
    let out = on_pg(&[
        "extract",
        "--candidate",
        &id,
        "--purpose",
        "recruitment",
        "--as",
        "emp",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("MIGRATED-MARKER"));
    // The source is left as it was, and says so through its own trail.
    let out = sqlite(&["--json", "audit", "verify", "--as", "dpo"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

#[test]
fn the_shared_quota_counts_each_admitted_attempt_once_and_forgets_those_that_left_the_window() {
    if skipped_without_postgres() {
        return;
    }
    let f = Fixture::new();
    let mut c = raw(&f.pg.as_ref().unwrap().url);
    let mut admit = |who: &str, window_ms: i64, limit: i64| -> i64 {
        c.query_one(
            "SELECT cvvault_quota_admit($1, $2, $3)",
            &[&who, &window_ms, &limit],
        )
        .unwrap()
        .get(0)
    };
    let hour = 3_600_000;
    for _ in 0..3 {
        assert_eq!(admit("emp", hour, 3), 0, "admitted");
    }
    // The fourth waits until the oldest attempt leaves the window; refusals are not counted.
    for _ in 0..2 {
        let wait = admit("emp", hour, 3);
        assert!((1..=hour).contains(&wait), "refused for {wait} ms");
    }
    // An operator resets the quota by deleting the principal's attempts: the count follows.
    raw(&f.pg.as_ref().unwrap().url)
        .execute("DELETE FROM quota_attempts WHERE principal_id = 'emp'", &[])
        .unwrap();
    assert_eq!(admit("emp", hour, 3), 0, "admitted again after the reset");
    // Another principal has a window of its own.
    assert_eq!(admit("other", hour, 3), 0);
    // A window of 0 ms: every earlier attempt has left it, and the kept count follows.
    for _ in 0..4 {
        assert_eq!(admit("emp", 0, 1), 0);
    }
    let mut counted = |who: &str| -> (i64, i64) {
        let row = c
            .query_one(
                "SELECT (SELECT used FROM quota_counts WHERE principal_id = $1),
                        (SELECT count(*) FROM quota_attempts WHERE principal_id = $1)",
                &[&who],
            )
            .unwrap();
        (row.get(0), row.get(1))
    };
    assert_eq!(counted("emp"), (1, 1), "the count is the attempts kept");
    assert_eq!(counted("other"), (1, 1));
}

#[test]
fn where_the_server_has_lz4_the_sealed_columns_use_it() {
    if skipped_without_postgres() {
        return;
    }
    let f = Fixture::new();
    let url = f.pg.as_ref().unwrap().url.clone();
    let mut client = raw(&url);
    let has_lz4: bool = client
        .query_one(
            "SELECT 'lz4' = ANY(enumvals) FROM pg_settings WHERE name = 'default_toast_compression'",
            &[],
        )
        .unwrap()
        .get(0);
    let methods: Vec<(String, String)> = client
        .query(
            "SELECT attname::text, attcompression::text FROM pg_attribute \
             WHERE attrelid = 'sealed_profiles'::regclass AND attnum > 0 \
               AND atttypid = 'bytea'::regtype AND attname <> 'candidate_id' ORDER BY attnum",
            &[],
        )
        .unwrap()
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect();
    let expected = if has_lz4 { "l" } else { "" };
    let names: Vec<&str> = methods.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(
        names,
        ["identity", "contact", "professional", "special", "control"]
    );
    for (column, method) in &methods {
        assert_eq!(method, expected, "compression of sealed_profiles.{column}");
    }
}
