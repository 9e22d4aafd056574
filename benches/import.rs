//! `cargo bench --bench import [-- COUNT]`: `candidate import` throughput for COUNT profiles
//! of about 4 KiB (default 100,000), and in the same run a plain rusqlite insert of the same
//! number of 4 KiB blobs with the same durability settings: the storage limit of the machine.
//! Two rounds of both; the best run of each is compared. Each phase also reports the bytes
//! it wrote and the CPU time it used (Linux /proc).
//!
//! IMPORT_POSTGRES=URL (a role that may create databases): the import goes into a vault on
//! PostgreSQL, and the reference is a plain `COPY ... FROM STDIN (FORMAT binary)` of the same
//! profile bytes, one row each with a random 16-byte key, in one transaction (bytes written
//! are then this process's only; the CPU of a local server's `postgres` processes is shown
//! beside this process's, read from /proc).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use std::io::{BufReader, BufWriter, Write};
use std::time::Instant;

use cvvault::paths::Paths;
use cvvault::synth::Synth;
use cvvault::vault::Unlock;
use cvvault::vault::{InitOptions, Vault};
use cvvault::vocabulary::{FieldGroup, Role};

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
    // The library's sealing is private to it; the reference here is the plain operation it
    // wraps: AES-256-GCM (ring) over each group's serialized text, under a fresh key per
    // profile.
    let rng = ring::rand::SystemRandom::new();
    for (p, line) in profiles.iter().zip(&lines) {
        let mut key = [0u8; 32];
        ring::rand::SecureRandom::fill(&rng, &mut key).unwrap();
        let key = ring::aead::LessSafeKey::new(
            ring::aead::UnboundKey::new(&ring::aead::AES_256_GCM, &key).unwrap(),
        );
        let texts = p.group_texts(line.len()).unwrap();
        for (n, text) in texts.all().iter().enumerate() {
            let mut nonce = [0u8; 12];
            nonce[0] = n as u8;
            let mut buffer = text.to_vec();
            key.seal_in_place_append_tag(
                ring::aead::Nonce::assume_unique_for_key(nonce),
                ring::aead::Aad::from(b"bench"),
                &mut buffer,
            )
            .unwrap();
            sealed_bytes += buffer.len() + 12;
        }
    }
    let seal = t.elapsed();
    println!(
        "breakdown (1 thread): parse+validate {:.2?}, serialize + raw AES-256-GCM {:.2?} ({} bytes)",
        parse, seal, sealed_bytes
    );
    drop(profiles);
    drop(lines);

    // Two rounds of (plain insert, import), each phase on a clean slate (the files of the one
    // before deleted), and the best of each kind compared: on a shared machine the fastest run
    // is the least disturbed one.
    let blob: Vec<u8> = (0..mean).map(|i| (i * 7 + 13) as u8).collect();
    let mut plains = Vec::new();
    let mut imports = Vec::new();
    let postgres = std::env::var("IMPORT_POSTGRES")
        .ok()
        .filter(|u| !u.is_empty());
    let mut sizes = None;
    for round in 1..=2 {
        match &postgres {
            Some(admin) => {
                let db = fresh_database(admin, "plain");
                plains.push(plain_copy(&db, &file));
                let vault_db = fresh_database(admin, "vault");
                imports.push(import_once(
                    &dir.path().join(format!("vault-{round}")),
                    &file,
                    count,
                    Some(&vault_db),
                ));
                sizes = Some((db, vault_db));
            }
            None => {
                let db = dir.path().join(format!("plain-{round}.db"));
                plains.push(plain_insert(&db, count, &blob));
                remove_database(&db);
                imports.push(import_once(
                    &dir.path().join(format!("vault-{round}")),
                    &file,
                    count,
                    None,
                ));
            }
        }
    }
    let reference = if postgres.is_some() {
        "plain COPY"
    } else {
        "plain insert"
    };

    let rate = |secs: f64| count as f64 / secs;
    let mib = |bytes: u64| bytes as f64 / 1048576.0;
    for (round, (plain, import)) in plains.iter().zip(&imports).enumerate() {
        println!(
            "round {}: {reference} {count} blobs in {:.2} s = {:.0} rows/s ({:.1} MiB/s); wrote {:.0} MiB, {:.2} CPU s (server {:.2})",
            round + 1,
            plain.secs,
            rate(plain.secs),
            total_bytes as f64 / 1048576.0 / plain.secs,
            mib(plain.written),
            plain.cpu_secs,
            plain.server_cpu_secs
        );
        println!(
            "round {}: cvvault import {count} profiles in {:.2} s = {:.0} profiles/s ({:.1} MiB/s); wrote {:.0} MiB, {:.2} CPU s (server {:.2})",
            round + 1,
            import.secs,
            rate(import.secs),
            total_bytes as f64 / 1048576.0 / import.secs,
            mib(import.written),
            import.cpu_secs,
            import.server_cpu_secs
        );
    }
    if let Some((plain_db, vault_db)) = &sizes {
        let size = |url: &str, table: &str| -> (f64, f64) {
            let mut client = postgres::Client::connect(url, postgres::NoTls).unwrap();
            let row = client
                .query_one(
                    "SELECT pg_total_relation_size($1::text::regclass), \
                            pg_database_size(current_database())",
                    &[&table],
                )
                .unwrap();
            let (table, database): (i64, i64) = (row.get(0), row.get(1));
            (mib(table as u64), mib(database as u64))
        };
        let (plain_table, _) = size(plain_db, "blobs");
        let (sealed, database) = size(vault_db, "sealed_profiles");
        println!(
            "on disk: the plain COPY's table {plain_table:.0} MiB; the vault's sealed_profiles {sealed:.0} MiB, its whole database {database:.0} MiB"
        );
    }
    let best = |runs: &[Phase]| runs.iter().map(|r| r.secs).fold(f64::INFINITY, f64::min);
    let (plain, import) = (best(&plains), best(&imports));
    println!(
        "best: cvvault import {:.0} profiles/s, {reference} {:.0} rows/s; ratio (import / plain) = {:.2}  (goal >= 0.60)",
        rate(import),
        rate(plain),
        rate(import) / rate(plain)
    );
}

/// `candidate import` of `file` into a new vault under `dir`, as a caseworker; the vault is
/// closed and deleted afterwards.
fn import_once(
    dir: &std::path::Path,
    file: &std::path::Path,
    count: usize,
    postgres: Option<&str>,
) -> Phase {
    let mut paths = Paths::under(dir);
    paths.postgres = postgres.map(|url| cvvault::paths::PgTarget::parse(url).unwrap());
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
            std::fs::File::open(file).unwrap(),
        )))
    };
    let import = Phase::measure(|| {
        let report = vault
            .import(
                &cw,
                &open,
                &cvvault::vault::ImportOptions::default(),
                &|_, _| {},
            )
            .unwrap();
        assert_eq!(report.imported as usize, count);
        assert!(report.rejected.is_empty());
    });
    vault.close().unwrap();
    // Closed and dropped (its read connections too) before its files are deleted: a deleted
    // file still open keeps its pages cached, which slowed the next phase by a third.
    drop(vault);
    remove_database(&paths.database());
    import
}

/// A plain rusqlite insert of `count` blobs into a rowid table with a random 16-byte key,
/// the same durability pragmas (WAL, synchronous=FULL) and the same 2,000-row transactions.
fn plain_insert(db: &std::path::Path, count: usize, blob: &[u8]) -> Phase {
    let mut conn = rusqlite::Connection::open(db).unwrap();
    conn.pragma_update(None, "journal_mode", "WAL").unwrap();
    conn.pragma_update(None, "synchronous", "FULL").unwrap();
    conn.execute_batch("CREATE TABLE blobs (id BLOB PRIMARY KEY, body BLOB NOT NULL)")
        .unwrap();
    Phase::measure(|| {
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
    })
}

/// A new, empty PostgreSQL database named after `what` (an older one of that name dropped).
fn fresh_database(admin: &str, what: &str) -> String {
    support::fresh_database(admin, &format!("cvvault_import_{what}"))
}

/// A plain `COPY` of every line of `file` into a (random 16-byte key, bytea) table, in one
/// transaction: the bytes the import stores, without parsing, sealing, keys or audit.
fn plain_copy(url: &str, file: &std::path::Path) -> Phase {
    use postgres::types::Type;
    let mut client = postgres::Client::connect(url, postgres::NoTls).unwrap();
    client
        .batch_execute("CREATE TABLE blobs (id BYTEA PRIMARY KEY, body BYTEA NOT NULL)")
        .unwrap();
    let bytes = std::fs::read(file).unwrap();
    Phase::measure(|| {
        let mut tx = client.transaction().unwrap();
        let sink = tx
            .copy_in("COPY blobs (id, body) FROM STDIN (FORMAT binary)")
            .unwrap();
        let mut writer =
            postgres::binary_copy::BinaryCopyInWriter::new(sink, &[Type::BYTEA, Type::BYTEA]);
        for line in bytes.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            let id = uuid::Uuid::new_v4();
            writer.write(&[&&id.as_bytes()[..], &line]).unwrap();
        }
        writer.finish().unwrap();
        tx.commit().unwrap();
    })
}

/// Deletes a database file and its WAL.
fn remove_database(db: &std::path::Path) {
    for suffix in ["", "-wal", "-shm"] {
        let mut path = db.as_os_str().to_owned();
        path.push(suffix);
        let _ = std::fs::remove_file(path);
    }
}

/// Wall time, bytes written to storage and CPU time (all threads) of one phase.
#[derive(Clone, Copy)]
struct Phase {
    secs: f64,
    written: u64,
    cpu_secs: f64,
    server_cpu_secs: f64,
}

impl Phase {
    /// Flushes what earlier phases left dirty, then measures `f`.
    fn measure(f: impl FnOnce()) -> Phase {
        std::process::Command::new("sync").status().unwrap();
        let (written, cpu, server) = (written_bytes(), cpu_secs(), server_cpu_secs());
        let started = Instant::now();
        f();
        Phase {
            secs: started.elapsed().as_secs_f64(),
            written: written_bytes() - written,
            cpu_secs: cpu_secs() - cpu,
            server_cpu_secs: server_cpu_secs() - server,
        }
    }
}

/// User + system CPU seconds of this process, from /proc/self/stat (in clock ticks of 1/100 s).
fn cpu_secs() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    stat_cpu_secs(&stat, false)
}

/// The CPU seconds of a /proc/PID/stat line: user + system, with `children` also those of
/// exited children waited for (fields 14-17 of proc(5), in clock ticks of 1/100 s).
fn stat_cpu_secs(stat: &str, children: bool) -> f64 {
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap()
        .split_whitespace()
        .collect();
    let take = if children { 4 } else { 2 };
    fields[11..11 + take]
        .iter()
        .map(|f| f.parse::<f64>().unwrap())
        .sum::<f64>()
        / 100.0
}

/// CPU seconds of every local process named `postgres` (the postmaster's count includes the
/// backends that have exited); 0 when none is visible, as with a remote server.
fn server_cpu_secs() -> f64 {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return 0.0;
    };
    dir.flatten()
        .filter_map(|e| std::fs::read_to_string(e.path().join("stat")).ok())
        .filter(|stat| stat.contains("(postgres)"))
        .map(|stat| stat_cpu_secs(&stat, true))
        .sum()
}

/// Bytes this process caused to be written to storage, from /proc/self/io.
fn written_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/io")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("write_bytes: "))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}
