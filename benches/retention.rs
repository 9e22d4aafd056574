//! Retention at scale: (1) a run with nothing due over 1,000,000 candidates, (2) erasing
//! 100,000 due candidates among 1,000,000.
//!
//! `cargo bench --bench retention`
//!
//! How the population is built (a shortcut, said plainly): the 100,000 candidates that will be
//! erased are imported through `Vault::import` (real profiles, real sealing, real audit
//! entries), so their erasure does all the work a real one does. The other 900,000 are
//! inserted directly into `candidate_keys`, `candidates` and `sealed_profiles` with rusqlite, using the vault's
//! schema: random 16-byte ids, random bytes of realistic size in place of the wrapped DEK, the
//! key commitment and the five sealed groups (about 1.4 KB per candidate), an open assignment
//! recorded in the lifecycle columns (`open_assignments = 1`, `idle_since = NULL`) but no
//! `assignments` rows. Retention never reads their sealed groups: those rows only have to sit
//! in the tables and indexes as real ones would.

use std::sync::Arc;
use std::time::Instant;

use cvvault::clock::ManualClock;
use cvvault::paths::Paths;
use cvvault::settings::Retention;
use cvvault::vault::Unlock;
use cvvault::vault::{InitOptions, Vault};
use cvvault::vocabulary::Role;
use rand::RngCore;

const TOTAL: usize = 1_000_000;
const DUE: usize = 100_000;
const DAY: i64 = 86_400;
const START: i64 = 1_767_225_600; // 2026-01-01T00:00:00Z

/// Realistic sizes of the sealed groups (identity, contact, professional, special, control),
/// nonce and tag included.
const GROUP_SIZES: [usize; 5] = [140, 190, 900, 160, 90];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let paths = Paths::under(dir.path());
    Vault::init(
        &paths,
        InitOptions {
            passphrase: None,
            identity: None,
            recovery_recipients: vec![],
        },
    )?;
    let clock = ManualClock::at(START);
    let unlock = Unlock::Identity(paths.default_identity());
    let open = || Vault::open_with_clock(&paths, &unlock, Arc::new(clock.clone()));

    // 1. The due candidates: imported, sealed for real, never assigned.
    let started = Instant::now();
    let vault = open()?;
    vault.add_principal("cw".parse()?, Role::Caseworker, "agency".parse()?, None)?;
    let cw = vault.principal(&"cw".parse()?)?;
    let mut lines = Vec::new();
    cvvault::synth::ndjson(DUE, 42, &mut lines)?;
    let owned = lines.clone();
    let reader = move || -> cvvault::Result<Box<dyn std::io::BufRead>> {
        Ok(Box::new(std::io::Cursor::new(owned.clone())))
    };
    let report = vault.import(
        &cw,
        &reader,
        &cvvault::vault::ImportOptions::default(),
        &|_, _| {},
    )?;
    assert_eq!(report.imported as usize, DUE);
    vault.close()?;
    drop(vault);
    eprintln!(
        "imported {DUE} sealed candidates in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    // 2. The rest: direct inserts of realistic rows, with an open assignment.
    let started = Instant::now();
    let mut conn = rusqlite::Connection::open(paths.database())?;
    let mut rng = rand::thread_rng();
    let mut blob = |len: usize| {
        let mut bytes = vec![0u8; len];
        rng.fill_bytes(&mut bytes);
        bytes
    };
    for _ in 0..(TOTAL - DUE) / 50_000 {
        let tx = conn.transaction()?;
        {
            let mut keys = tx.prepare(
                "INSERT INTO candidate_keys (candidate_id, kek_version, wrapped_dek, dek_commitment)
                 VALUES (?1, 1, ?2, ?3)",
            )?;
            let mut lifecycle = tx.prepare(
                "INSERT INTO candidates (candidate_id, key_id, created_at, open_assignments,
                     ever_assigned, idle_since) VALUES (?1, last_insert_rowid(), ?2, 1, 1, NULL)",
            )?;
            let mut sealed = tx
                .prepare(
                    "INSERT INTO sealed_profiles (key_id, candidate_id, record_version, identity, contact,
                         professional, special, control)
                     VALUES (last_insert_rowid(), ?1, 1, ?2, ?3, ?4, ?5, ?6)",
                )
                ?;
            for _ in 0..50_000 {
                let id = blob(16);
                keys.execute(rusqlite::params![id, blob(60), blob(32)])?;
                lifecycle.execute(rusqlite::params![id, START])?;
                let [a, b, c, d, e] = GROUP_SIZES.map(&mut blob);
                sealed.execute(rusqlite::params![id, a, b, c, d, e])?;
            }
        }
        tx.commit()?;
    }
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
    drop(conn);
    let size = std::fs::metadata(paths.database())
        .map(|m| m.len())
        .unwrap_or(0);
    eprintln!(
        "inserted {} more candidates in {:.1} s; database {} MB",
        TOTAL - DUE,
        started.elapsed().as_secs_f64(),
        size / 1_000_000
    );

    let settings =
        Retention::parse("grace_after_close_days = 0\nmax_idle_days = 30\nmax_life_days = 1095\n")?;
    let vault = open()?;
    assert_eq!(vault.candidate_count()? as usize, TOTAL);

    // (1) Nothing due: the imported candidates have been idle for one day only.
    clock.advance(DAY);
    let started = Instant::now();
    let report = cvvault::vault::retention::run(&vault, &settings, false, None, &|_| {})?;
    let nothing_due = started.elapsed();
    assert_eq!(report.total, 0);

    // (2) 100,000 due (idle for 31 days) among 1,000,000.
    clock.advance(30 * DAY);
    let started = Instant::now();
    let report = cvvault::vault::retention::run(&vault, &settings, false, None, &|_| {})?;
    let erasing = started.elapsed();
    assert_eq!(report.total as usize, DUE);
    assert_eq!(vault.candidate_count()? as usize, TOTAL - DUE);
    vault.close()?;

    println!(
        "retention, nothing due over {TOTAL} candidates: {:.3} s",
        nothing_due.as_secs_f64()
    );
    println!(
        "retention, erasing {DUE} due among {TOTAL} candidates: {:.1} s ({:.0} erasures/s)",
        erasing.as_secs_f64(),
        DUE as f64 / erasing.as_secs_f64()
    );
    Ok(())
}
