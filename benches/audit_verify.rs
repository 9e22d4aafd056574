//! Audit verification rate: a trail of 1,000,000 entries written by the vault itself (through
//! its public use cases: registrations, assignments, extracts allowed and refused, as a busy
//! vault writes them), then verified with the audit key (`Vault::audit_verify`, as
//! `cvvault audit verify` does) and without it (`audit::verify::verify`, as
//! `audit verify --key` does), timed against raw SHA-256 (ring) over the same entry bytes in
//! memory (best of three rounds each). The goal is a ratio of at least 0.5.
//!
//! It also times `audit search` for one candidate with an entry in each stretch of the trail.
//!
//! `cargo bench --bench audit_verify` (`CVVAULT_BENCH_ENTRIES=N` for a shorter trail)

use std::time::Instant;

use cvvault::audit::note::NoteVerifier;
use cvvault::audit::verify::{verify, CheckpointSource};

mod support;

const ROUNDS: usize = 3;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let entries_wanted: u64 = std::env::var("CVVAULT_BENCH_ENTRIES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1_000_000);
    let dir = tempfile::tempdir()?;
    let started = Instant::now();
    let support::BusyVault {
        paths,
        vault,
        candidates,
        ..
    } = support::busy_vault(dir.path(), entries_wanted)?;
    let dpo = vault.principal(&"dpo".parse()?)?;
    let searched = *candidates
        .get(candidates.len() / 2)
        .ok_or("no candidates")?;
    vault.sign_checkpoint()?;
    let note = vault.audit_checkpoint()?;
    vault.truncate_wal()?;
    let conn = rusqlite::Connection::open_with_flags(
        paths.database(),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )?;
    let total: u64 = conn.query_row("SELECT count(*) FROM audit_entries", [], |r| r.get(0))?;
    // The vault's own connection type, for the offline verification below.
    let store = paths.store().open()?;
    eprintln!(
        "the vault wrote {total} entries in {:.1} s",
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
    let verifier: NoteVerifier = vault.note_verifier()?;
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
        // The first `total` entries: each `audit verify` below appends its own entry (the
        // verifications cover those few more, a difference of under 0.001 %).
        let mut stmt = conn.prepare(
            "SELECT entry_index, entry, entry_mac, candidate_hmac FROM audit_entries
             WHERE entry_index < ?1 ORDER BY entry_index",
        )?;
        let mut rows = stmt.query([total])?;
        while let Some(row) = rows.next()? {
            read += row.get_ref(1)?.as_bytes()?.len();
        }
        reading = reading.min(started.elapsed().as_secs_f64());
        assert_eq!(read as u64, bytes);

        // With the audit key: the vault's own `audit verify` (it appends its own entry).
        let (started, cpu_before) = (Instant::now(), process_cpu_seconds());
        let report = vault.audit_verify(&dpo, Vec::new(), &|_| {})?;
        assert!(report.macs_checked && report.entries >= total);
        with_key = with_key.min(started.elapsed().as_secs_f64());
        if let (Some(before), Some(after)) = (cpu_before, process_cpu_seconds()) {
            with_key_cpu = with_key_cpu.min(after - before);
        }
        // Offline, with the published key only, against the checkpoint signed above.
        let (started, cpu_before) = (Instant::now(), process_cpu_seconds());
        let report = verify(&store, &verifier, None, &sources, &|_| {})?;
        assert!(report.entries >= total);
        offline = offline.min(started.elapsed().as_secs_f64());
        if let (Some(before), Some(after)) = (cpu_before, process_cpu_seconds()) {
            offline_cpu = offline_cpu.min(after - before);
        }
    }
    drop(entries);

    let mut search = f64::MAX;
    let mut found_entries = 0;
    for _ in 0..ROUNDS {
        let started = Instant::now();
        let found = vault.audit_search(&dpo, &searched)?;
        search = search.min(started.elapsed().as_secs_f64());
        found_entries = found.len();
    }
    let mb = bytes as f64 / 1e6;
    println!(
        "{total} entries, {:.0} bytes each on average, {mb:.0} MB (sink {sink})",
        bytes as f64 / total as f64
    );
    println!(
        "raw SHA-256 (ring), in memory:   {raw:.2} s  {:>9.0} entries/s  {:>6.1} MB/s",
        total as f64 / raw,
        mb / raw
    );
    println!(
        "reading the rows from SQLite:    {reading:.2} s  {:>9.0} entries/s  {:>6.1} MB/s",
        total as f64 / reading,
        mb / reading
    );
    for (name, secs, cpu) in [
        ("verify with the audit key:     ", with_key, with_key_cpu),
        ("verify offline (--key):        ", offline, offline_cpu),
    ] {
        println!(
            "{name}{secs:.2} s  {:>9.0} entries/s  {:>6.1} MB/s  ratio to raw SHA-256 {:.2}  \
             (CPU {cpu:.2} s on all threads)",
            total as f64 / secs,
            mb / secs,
            raw / secs
        );
    }
    println!(
        "audit search for one candidate ({} entries found among {total}): {:.2} ms",
        found_entries,
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
