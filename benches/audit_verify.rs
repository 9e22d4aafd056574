//! Audit verification rate: 1,000,000 entries of realistic size appended through `Appender`
//! in large transactions, then `verify` (with the audit key, as `Vault::audit_verify` does,
//! and without it, as `audit verify --key` does) timed against raw SHA-256 (ring) over the
//! same entry bytes in memory (best of three rounds each). The goal is a ratio of at least 0.5.
//!
//! It also times `audit search` for one candidate with an entry in each batch, so in buckets
//! across the whole log.
//!
//! `cargo bench --bench audit_verify`

use std::sync::Arc;
use std::time::Instant;

use cvvault::audit::entry::Outcome;
use cvvault::audit::log::{Actor, Appender, Pseudonymizer, Record};
use cvvault::audit::note::{generate_pkcs8, Checkpoint, NoteSigner, NoteVerifier};
use cvvault::audit::verify::{verify, CheckpointSource};
use cvvault::clock::ManualClock;
use cvvault::ids::{AssignmentId, CandidateId};

const ENTRIES: u64 = 1_000_000;
const BATCH: u64 = 50_000;
const ORIGIN: &str = "bench.example/cvvault-audit";
const ROUNDS: usize = 3;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("vault.db");
    cvvault::store::create(&path)?;
    let mut conn = cvvault::store::open_connection(&path, false)?;
    let keys = Pseudonymizer::new(&[42; 32]);
    let clock = ManualClock::at(1_767_225_600);
    let integrity = Arc::new(cvvault::crypto::integrity::IntegrityKey::new(&[6; 32]));
    let mut appender = Appender::load(
        &conn,
        keys.clone(),
        integrity,
        [7; 32],
        Arc::new(clock.clone()),
    )?;
    let actor = Actor {
        id: "hr-anna".into(),
        role: "employer".into(),
        org: Some("nordlager-ab".into()),
    };

    // The mix of a busy vault: mostly extracts, with registrations and assignments.
    let searched = CandidateId::random();
    let started = Instant::now();
    for _ in 0..ENTRIES / BATCH {
        let tx = conn.transaction()?;
        for i in 0..BATCH {
            clock.advance(3);
            let (action, decision) = match i % 10 {
                0 => ("candidate.register", Outcome::Allow),
                1 => ("assignment.open", Outcome::Allow),
                2 => ("extract", Outcome::Deny),
                _ => ("extract", Outcome::Allow),
            };
            let mut record =
                Record::new(action, &actor, decision, &uuid::Uuid::new_v4().to_string());
            record.candidate = Some(if i == BATCH / 2 {
                searched
            } else {
                CandidateId::random()
            });
            record.assignment = Some(AssignmentId::random());
            record.groups = vec!["identity".into(), "contact".into(), "professional".into()];
            record.policy_ids = vec![
                "control-never-read".into(),
                "employer-contact-with-consent".into(),
                "employer-professional-for-recruitment".into(),
                "special-never-to-employer".into(),
            ];
            record.purpose = Some("recruitment".into());
            appender.append(&tx, record)?;
        }
        appender.persist(&tx)?;
        tx.commit()?;
    }
    let signer = NoteSigner::from_pkcs8(ORIGIN, &generate_pkcs8()?)?;
    let note = signer.sign(&Checkpoint {
        origin: ORIGIN.into(),
        size: appender.size(),
        root: appender.root(),
    })?;
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
    eprintln!(
        "appended {ENTRIES} entries in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    // The same bytes in memory, for the raw SHA-256 baseline (loading is not timed).
    let entries: Vec<String> = conn
        .prepare("SELECT entry FROM audit_entries ORDER BY entry_index")?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let bytes: u64 = entries.iter().map(|e| e.len() as u64).sum();
    // Each measurement is the best of ROUNDS, interleaved, so that load from other processes
    // on a shared machine disturbs the comparison as little as possible.
    let verifier = NoteVerifier::parse(&signer.verifier_key())?;
    let sources = [CheckpointSource {
        source: "bench".into(),
        note,
    }];
    let mut sink = 0u8;
    let (mut raw, mut reading, mut with_key, mut offline) =
        (f64::MAX, f64::MAX, f64::MAX, f64::MAX);
    let (mut with_key_cpu, mut offline_cpu) = (f64::MAX, f64::MAX);
    for _ in 0..ROUNDS {
        let started = Instant::now();
        for entry in &entries {
            sink ^= ring::digest::digest(&ring::digest::SHA256, entry.as_bytes())
                .as_ref()
                .first()
                .copied()
                .unwrap_or(0);
        }
        raw = raw.min(started.elapsed().as_secs_f64());

        // What reading the rows alone costs (verify cannot go faster than its input).
        let started = Instant::now();
        let mut read = 0usize;
        let mut stmt = conn.prepare(
            "SELECT entry_index, entry, entry_mac, candidate_hmac FROM audit_entries ORDER BY entry_index",
        )?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            read += row.get_ref(1)?.as_bytes()?.len();
        }
        reading = reading.min(started.elapsed().as_secs_f64());
        assert_eq!(read as u64, bytes);

        for (macs, best, cpu) in [
            (Some(&keys), &mut with_key, &mut with_key_cpu),
            (None, &mut offline, &mut offline_cpu),
        ] {
            let (started, cpu_before) = (Instant::now(), process_cpu_seconds());
            let report = verify(&conn, &verifier, macs, &sources, &|_| {})?;
            assert_eq!((report.entries, report.bytes), (ENTRIES, bytes));
            *best = best.min(started.elapsed().as_secs_f64());
            if let (Some(before), Some(after)) = (cpu_before, process_cpu_seconds()) {
                *cpu = cpu.min(after - before);
            }
        }
    }
    drop(entries);

    let pseudonym = keys.candidate(&searched);
    let mut search = f64::MAX;
    for _ in 0..ROUNDS {
        let started = Instant::now();
        let found = cvvault::audit::verify::search(&conn, &pseudonym)?;
        search = search.min(started.elapsed().as_secs_f64());
        assert_eq!(found.len() as u64, ENTRIES / BATCH);
    }

    let mb = bytes as f64 / 1e6;
    println!(
        "{ENTRIES} entries, {:.0} bytes each on average, {mb:.0} MB (sink {sink})",
        bytes as f64 / ENTRIES as f64
    );
    println!(
        "raw SHA-256 (ring), in memory:   {raw:.2} s  {:>9.0} entries/s  {:>6.1} MB/s",
        ENTRIES as f64 / raw,
        mb / raw
    );
    println!(
        "reading the rows from SQLite:    {reading:.2} s  {:>9.0} entries/s  {:>6.1} MB/s",
        ENTRIES as f64 / reading,
        mb / reading
    );
    for (name, secs, cpu) in [
        ("verify with the audit key:     ", with_key, with_key_cpu),
        ("verify offline (--key):        ", offline, offline_cpu),
    ] {
        println!(
            "{name}{secs:.2} s  {:>9.0} entries/s  {:>6.1} MB/s  ratio to raw SHA-256 {:.2}  \
             (CPU {cpu:.2} s on all threads)",
            ENTRIES as f64 / secs,
            mb / secs,
            raw / secs
        );
    }
    println!(
        "audit search for one candidate ({} entries found among {ENTRIES}): {:.2} ms",
        ENTRIES / BATCH,
        search * 1e3
    );
    Ok(())
}

/// CPU time of this process so far, all threads (Linux `/proc/self/stat`, at the usual 100
/// clock ticks per second): wall time depends on how many cores other processes leave free.
fn process_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which is in parentheses): utime and stime are the 12th
    // and 13th of them.
    let rest = stat.get(stat.rfind(')')? + 1..)?;
    let mut fields = rest.split_whitespace().skip(11);
    let user: f64 = fields.next()?.parse().ok()?;
    let system: f64 = fields.next()?.parse().ok()?;
    Some((user + system) / 100.0)
}
