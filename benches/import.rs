//! `cargo bench --bench import [-- COUNT]`: `candidate import` throughput for COUNT profiles
//! of about 4 KiB (default 100,000), and in the same run a plain rusqlite insert of the same
//! number of 4 KiB blobs with the same durability settings: the storage limit of the machine.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::io::{BufReader, BufWriter, Write};
use std::time::Instant;

use cvvault::config::Paths;
use cvvault::crypto::keyring::Unlock;
use cvvault::model::{FieldGroup, Role};
use cvvault::synth::Synth;
use cvvault::vault::{InitOptions, Vault};

fn main() {
    let count: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(100_000);
    let dir = tempfile::tempdir().unwrap();

    // The input: COUNT profiles of about 4 KiB, one per line.
    let file = dir.path().join("profiles.ndjson");
    let mut total_bytes = 0usize;
    {
        let mut out = BufWriter::new(std::fs::File::create(&file).unwrap());
        let mut synth = Synth::new(42);
        for _ in 0..count {
            let json = synth
                .profile_of_size(4096)
                .to_json_groups(&FieldGroup::ALL)
                .unwrap();
            total_bytes += json.len() + 1;
            out.write_all(&json).unwrap();
            out.write_all(b"\n").unwrap();
        }
    }
    let mean = total_bytes / count.max(1);
    println!(
        "input: {count} profiles, mean {mean} bytes, {:.1} MiB",
        total_bytes as f64 / 1048576.0
    );

    // Phase costs, single-threaded, for the breakdown.
    let lines: Vec<Vec<u8>> = std::fs::read(&file)
        .unwrap()
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| l.to_vec())
        .collect();
    let t = Instant::now();
    let profiles: Vec<_> = lines
        .iter()
        .map(|l| cvvault::profile::Profile::from_document(l).unwrap())
        .collect();
    let parse = t.elapsed();
    let t = Instant::now();
    let mut sealed_bytes = 0usize;
    for p in &profiles {
        let dek = cvvault::crypto::envelope::Dek::generate().unwrap();
        let c = dek.cipher(cvvault::ids::CandidateId::random()).unwrap();
        for g in FieldGroup::ALL {
            sealed_bytes += c.seal(g, 1, &p.group_json(g).unwrap()).unwrap().len();
        }
    }
    let seal = t.elapsed();
    println!(
        "breakdown (1 thread): parse+validate {:.2?}, serialize+seal {:.2?} ({} bytes)",
        parse, seal, sealed_bytes
    );
    drop(profiles);

    // 1. cvvault: validate every line, seal per group, insert with one audit entry each.
    let paths = Paths::under(&dir.path().join("vault"));
    Vault::init(
        &paths,
        InitOptions {
            passphrase: None,
            identity: None,
            recovery_recipients: vec![],
        },
    )
    .unwrap();
    let vault = Vault::open(&paths, &Unlock::Identity(paths.default_identity())).unwrap();
    vault
        .add_principal(
            "cw".parse().unwrap(),
            Role::Caseworker,
            "agency".parse().unwrap(),
            None,
        )
        .unwrap();
    let cw = vault.principal(&"cw".parse().unwrap()).unwrap();
    let open = || -> cvvault::Result<Box<dyn std::io::BufRead>> {
        Ok(Box::new(BufReader::with_capacity(
            1 << 20,
            std::fs::File::open(&file).unwrap(),
        )))
    };
    let started = Instant::now();
    let validated = std::cell::Cell::new(None);
    let report = vault
        .import(
            &cw,
            &open,
            &cvvault::vault::ImportOptions::default(),
            &|phase, _| {
                if phase == cvvault::vault::ImportPhase::Write && validated.get().is_none() {
                    validated.set(Some(started.elapsed()));
                }
            },
        )
        .unwrap();
    let vault_secs = started.elapsed().as_secs_f64();
    let validate_secs = validated.get().map_or(0.0, |d| d.as_secs_f64());
    println!(
        "import passes  : validate {validate_secs:.2} s, seal+write {:.2} s",
        vault_secs - validate_secs
    );
    assert_eq!(report.imported as usize, count);
    vault.close().unwrap();

    // 2. Plain rusqlite: the same number of blobs of the same size, same pragmas, same batches.
    let db = dir.path().join("plain.db");
    let mut conn = rusqlite::Connection::open(&db).unwrap();
    conn.pragma_update(None, "journal_mode", "WAL").unwrap();
    conn.pragma_update(None, "synchronous", "FULL").unwrap();
    conn.execute_batch("CREATE TABLE blobs (id BLOB PRIMARY KEY, body BLOB NOT NULL)")
        .unwrap();
    let blob: Vec<u8> = (0..mean).map(|i| (i * 7 + 13) as u8).collect();
    let started = Instant::now();
    for batch in (0..count).collect::<Vec<_>>().chunks(2_000) {
        let tx = conn.transaction().unwrap();
        {
            let mut stmt = tx
                .prepare_cached("INSERT INTO blobs (id, body) VALUES (?1, ?2)")
                .unwrap();
            for _ in batch {
                stmt.execute(rusqlite::params![
                    &uuid::Uuid::new_v4().as_bytes()[..],
                    blob
                ])
                .unwrap();
            }
        }
        tx.commit().unwrap();
    }
    let plain_secs = started.elapsed().as_secs_f64();

    let rate = |secs: f64| count as f64 / secs;
    println!(
        "cvvault import : {count} profiles in {vault_secs:.2} s = {:.0} profiles/s ({:.1} MiB/s)",
        rate(vault_secs),
        total_bytes as f64 / 1048576.0 / vault_secs
    );
    println!(
        "plain insert   : {count} blobs    in {plain_secs:.2} s = {:.0} rows/s ({:.1} MiB/s)",
        rate(plain_secs),
        total_bytes as f64 / 1048576.0 / plain_secs
    );
    println!(
        "ratio (import / plain) = {:.2}  (goal >= 0.60)",
        rate(vault_secs) / rate(plain_secs)
    );
}
