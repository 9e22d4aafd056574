//! Load test of the HTTP API over loopback: audited extracts per second and their latency,
//! with `/livez` in the same run as the ceiling of the HTTP stack itself.
//!
//! `cargo bench --bench http_load` sets up a vault (10,000 synthetic candidates, each with an
//! open coaching assignment for one provider), starts the real `cvvault serve`, then drives it
//! with 64 keep-alive connections for 10 s per phase. Every extract's audit entry is durable
//! (WAL, synchronous=FULL, group commit) before its response is sent; the run checks the trail
//! afterwards holds an allow entry for every 200 the client saw.
//!
//! Knobs (environment): HTTP_LOAD_CANDIDATES (10000), HTTP_LOAD_CONNECTIONS (64),
//! HTTP_LOAD_SECONDS (10), HTTP_LOAD_WRK=1 to also run /usr/bin/wrk with benches/extract.lua,
//! HTTP_LOAD_PERF=FILE to record a `perf` profile of the server during the extract phase.
//!
//! On PostgreSQL: HTTP_LOAD_POSTGRES=URL (a role that may create databases; the vault gets a
//! database of its own, dropped at the end) and HTTP_LOAD_NODES=N to serve it with N `serve`
//! processes, the connections spread over them. HTTP_LOAD_PEER=1 runs the PostgreSQL +
//! pgcrypto peer (`../shared/bench/peer_pg.sh`, or PEER_PG=FILE) before and after the extract
//! phase, on the same machine in the same minutes, and prints the ratio to its raw-AES figure.
//!
//! Soak: HTTP_LOAD_SOAK_MINUTES=N then drives a mixed load for N minutes (of every 20
//! requests: 18 extracts by the provider, one registration by the caseworker, and one
//! assignment change: an employer's assignment opened, or the oldest one opened closed) and prints, minute by minute, the requests answered, p99, the server's resident
//! memory and the database's size. HTTP_LOAD_SOAK_BESIDE=retention@M,rotate@M runs
//! `cvvault retention run` or `cvvault keys rotate` from the CLI beside the server at minute M;
//! HTTP_LOAD_SOAK_DUE=N (default 20,000 with a retention beside) registers N more candidates
//! whose assignment closed, so that the retention run has them to erase. The goals of issue
//! 17: p99 at most 2x while a run is beside, throughput at the end within 10 % of the first
//! minute, memory flat within 10 %. `HTTP_LOAD_SOAK_MINUTES=30 HTTP_LOAD_SOAK_BESIDE=
//! retention@10,rotate@20 cargo bench --bench http_load`

// A measuring harness, like a test: any failure should stop it loudly.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cvvault::ids::CandidateId;
use cvvault::paths::Paths;
use cvvault::vault::Unlock;
use cvvault::vault::{InitOptions, OpenAssignment, Vault};
use cvvault::vocabulary::Role;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn knob(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    // `cargo bench` passes `--bench`; a plain `cargo test --benches` run passes nothing and
    // should not spend a minute here.
    if !std::env::args().any(|a| a == "--bench") {
        println!("http_load: run with `cargo bench --bench http_load`");
        return;
    }
    let candidates = knob("HTTP_LOAD_CANDIDATES", 10_000);
    let connections = knob("HTTP_LOAD_CONNECTIONS", 64);
    let seconds = knob("HTTP_LOAD_SECONDS", 10) as u64;
    let nodes = knob("HTTP_LOAD_NODES", 1).max(1);
    let postgres = std::env::var("HTTP_LOAD_POSTGRES")
        .ok()
        .filter(|u| !u.is_empty())
        .map(|admin| BenchDatabase::create(&admin));
    let peer = std::env::var("HTTP_LOAD_PEER").is_ok_and(|v| v == "1");

    let dir = tempfile::Builder::new()
        .prefix("cvvault-bench-")
        .tempdir()
        .unwrap();
    let database_url = postgres.as_ref().map(|db| db.url.clone());
    let soak_minutes = knob("HTTP_LOAD_SOAK_MINUTES", 0);
    let beside: Vec<(String, usize)> = std::env::var("HTTP_LOAD_SOAK_BESIDE")
        .unwrap_or_default()
        .split(',')
        .filter_map(|item| {
            let (what, minute) = item.trim().split_once('@')?;
            Some((what.to_owned(), minute.parse().ok()?))
        })
        .collect();
    let due = knob(
        "HTTP_LOAD_SOAK_DUE",
        if beside.iter().any(|(what, _)| what == "retention") {
            20_000
        } else {
            0
        },
    );
    let SetUp {
        ids,
        token,
        caseworker_token,
    } = set_up(dir.path(), candidates, due, database_url.as_deref());
    let root = dir.path();
    println!(
        "store: {}, {nodes} node(s)",
        if postgres.is_some() {
            "PostgreSQL"
        } else {
            "SQLite"
        }
    );

    let mut servers = Vec::new();
    let mut drains = Vec::new();
    let mut addresses = Vec::new();
    for _ in 0..nodes {
        let mut command = Command::new(env!("CARGO_BIN_EXE_cvvault"));
        command
            .args([
                "serve",
                "--bind",
                "127.0.0.1:0",
                "--checkpoint-interval",
                "5",
            ])
            .env("CVVAULT_KEYS_DIR", root.join("keys"))
            .env("CVVAULT_DATA_DIR", root.join("data"))
            .env("CVVAULT_POLICY_DIR", root.join("policy"))
            .env("CVVAULT_LOG", "warn")
            .env_remove("CVVAULT_PASSPHRASE")
            .env_remove("CVVAULT_IDENTITY")
            .env_remove("CVVAULT_DATABASE_URL")
            .stdout(Stdio::piped());
        if let Some(url) = &database_url {
            command.env("CVVAULT_DATABASE_URL", url);
        }
        let mut server = command.spawn().unwrap();
        let mut first = String::new();
        let mut lines = BufReader::new(server.stdout.take().unwrap());
        lines.read_line(&mut first).unwrap();
        // Keep reading, so that the server's last words do not hit a closed pipe.
        drains.push(std::thread::spawn(move || {
            std::io::copy(&mut lines, &mut std::io::sink())
        }));
        let address = first
            .trim()
            .strip_prefix("listening on http://")
            .unwrap()
            .to_owned();
        println!("server: {address} (pid {})", server.id());
        addresses.push(address);
        servers.push(server);
    }
    let address = addresses[0].clone();
    let server_ids: Vec<u32> = servers.iter().map(std::process::Child::id).collect();
    let peer_before = peer.then(run_peer);

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let livez = runtime.block_on(load(
        &addresses,
        connections,
        Duration::from_secs(seconds),
        Arc::new(|_| "/livez".to_owned()),
        None,
    ));
    report("GET /livez", &livez);
    let paths: Arc<Vec<String>> = Arc::new(
        ids.iter()
            .map(|id| format!("/v1/candidates/{id}/extract?purpose=coaching"))
            .collect(),
    );
    let extract_paths = paths.clone();
    // HTTP_LOAD_PERF=FILE: profile the server during the extract phase (perf record -g).
    let perf = std::env::var("HTTP_LOAD_PERF").ok().map(|file| {
        Command::new("perf")
            .args([
                "record",
                "-F",
                "499",
                "-g",
                "--call-graph",
                "dwarf,16384",
                "-o",
                &file,
                "-p",
                &server_ids[0].to_string(),
                "--",
                "sleep",
                &seconds.to_string(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    });
    let cpu_before: f64 = server_ids.iter().map(|id| cpu_seconds(*id)).sum();
    let extracts = runtime.block_on(load(
        &addresses,
        connections,
        Duration::from_secs(seconds),
        Arc::new(move |n| extract_paths[n % extract_paths.len()].clone()),
        Some(token.clone()),
    ));
    report("GET /v1/candidates/{id}/extract (audited)", &extracts);
    let cpu = server_ids.iter().map(|id| cpu_seconds(*id)).sum::<f64>() - cpu_before;
    println!(
        "server CPU during the extract phase: {cpu:.1} s ({:.0} us per extract)",
        cpu * 1e6 / extracts.ok.max(1) as f64
    );
    let extract_rate = extracts.ok as f64 / extracts.elapsed.as_secs_f64();
    if let Some(before) = peer_before {
        let after = run_peer();
        let runs: Vec<&Peer> = before.iter().chain(after.iter()).collect();
        if !runs.is_empty() {
            let mean =
                |f: fn(&Peer) -> f64| runs.iter().map(|p| f(p)).sum::<f64>() / runs.len() as f64;
            let (raw, pgp) = (mean(|p| p.raw), mean(|p| p.pgp));
            let each = |f: fn(&Peer) -> f64| {
                runs.iter()
                    .map(|p| format!("{:.0}/s", f(p)))
                    .collect::<Vec<_>>()
                    .join(" and ")
            };
            println!(
                "\n== peer (PostgreSQL + pgcrypto, audit row per extract, 64 connections), before and after\nraw AES {}, pgp_sym_encrypt {}\ncvvault {extract_rate:.0}/s over {nodes} node(s): {:.2}x the peer's raw AES, {:.2}x its pgp_sym_encrypt",
                each(|p| p.raw),
                each(|p| p.pgp),
                extract_rate / raw.max(1.0),
                extract_rate / pgp.max(1.0)
            );
        }
    }
    if let Some(mut perf) = perf {
        let _ = perf.wait();
    }

    if std::env::var("HTTP_LOAD_WRK").is_ok_and(|v| v == "1") && Path::new("/usr/bin/wrk").exists()
    {
        let ids_file = root.join("ids.txt");
        std::fs::write(
            &ids_file,
            ids.iter().map(|i| format!("{i}\n")).collect::<String>(),
        )
        .unwrap();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/extract.lua");
        let duration = format!("{seconds}s");
        let url = format!("http://{address}");
        for (what, args) in [
            (
                "wrk /livez",
                vec![
                    "-t2",
                    "-c",
                    &connections.to_string(),
                    "-d",
                    &duration,
                    "--latency",
                    &format!("{url}/livez"),
                ],
            ),
            (
                "wrk extract",
                vec![
                    "-t2",
                    "-c",
                    &connections.to_string(),
                    "-d",
                    &duration,
                    "--latency",
                    "-s",
                    script.to_str().unwrap(),
                    &url,
                ],
            ),
        ] {
            let out = Command::new("/usr/bin/wrk")
                .args(&args)
                .env("CVVAULT_TOKEN", &token)
                .env("CVVAULT_IDS", &ids_file)
                .output()
                .unwrap();
            println!(
                "\n== {what}: wrk {}\n{}",
                args.join(" "),
                String::from_utf8_lossy(&out.stdout)
            );
        }
    }

    if soak_minutes > 0 {
        soak(
            &runtime,
            (&addresses, &server_ids, root, database_url.as_deref()),
            (&ids, &token, &caseworker_token),
            (soak_minutes, connections, &beside),
        );
    }

    // SIGTERM: drain, final checkpoint, exit 0.
    for mut server in servers {
        let status = Command::new("kill")
            .args(["-TERM", &server.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let exit = server.wait().unwrap();
        assert!(exit.success(), "serve exited with {exit}");
    }
    for drain in drains {
        let _ = drain.join();
    }

    // Every 200 had its audit entry committed before the response: count them.
    let count_allowed = "SELECT count(*) FROM audit_entries WHERE entry LIKE '{\"action\":\"extract\",%' AND entry LIKE '%\"decision\":\"allow\"%'";
    let sizes = "SELECT (SELECT count(*) FROM audit_entries), (SELECT max(tree_size) FROM audit_checkpoints)";
    let (allowed, size, checkpoint): (u64, u64, u64) = match &database_url {
        Some(url) => {
            let mut client = postgres::Client::connect(url, postgres::NoTls).unwrap();
            let allowed: i64 = client.query_one(count_allowed, &[]).unwrap().get(0);
            let row = client.query_one(sizes, &[]).unwrap();
            (
                allowed as u64,
                row.get::<_, i64>(0) as u64,
                row.get::<_, i64>(1) as u64,
            )
        }
        None => {
            let conn = rusqlite::Connection::open(root.join("data/vault.db")).unwrap();
            let allowed: u64 = conn.query_row(count_allowed, [], |r| r.get(0)).unwrap();
            let (size, checkpoint): (u64, u64) = conn
                .query_row(sizes, [], |r| Ok((r.get(0)?, r.get(1)?)))
                .unwrap();
            (allowed, size, checkpoint)
        }
    };
    println!(
        "\naudit: {allowed} extract allow entries for {} HTTP 200s; log size {size}, final checkpoint {checkpoint}",
        extracts.ok
    );
    assert!(
        allowed >= extracts.ok,
        "an extract was answered without its audit entry"
    );
    assert_eq!(
        size, checkpoint,
        "the final checkpoint covers the whole log"
    );
}

/// The server's resident memory (VmRSS), in MiB.
fn resident_mib(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .unwrap_or(0.0)
        / 1024.0
}

/// The SQLite database's size (file and WAL) in MiB; on PostgreSQL, the database's.
fn database_mib(root: &Path, database_url: Option<&str>) -> f64 {
    match database_url {
        Some(url) => postgres::Client::connect(url, postgres::NoTls)
            .and_then(|mut c| c.query_one("SELECT pg_database_size(current_database())", &[]))
            .map(|row| row.get::<_, i64>(0) as f64 / 1_048_576.0)
            .unwrap_or(0.0),
        None => ["data/vault.db", "data/vault.db-wal"]
            .iter()
            .filter_map(|f| std::fs::metadata(root.join(f)).ok())
            .map(|m| m.len() as f64 / 1_048_576.0)
            .sum(),
    }
}

/// The soak: a mixed load minute by minute, with CLI runs beside it (see the module doc).
fn soak(
    runtime: &tokio::runtime::Runtime,
    (addresses, server_ids, root, database_url): (&[String], &[u32], &Path, Option<&str>),
    (ids, token, caseworker_token): (&[CandidateId], &str, &str),
    (minutes, connections, beside): (usize, usize, &[(String, usize)]),
) {
    let mut synth = cvvault::synth::Synth::new(77);
    let bodies: Vec<String> = (0..1_000)
        .map(|_| {
            let mut profile = synth.profile();
            profile.control.protected = false;
            serde_json::to_string(&profile).unwrap()
        })
        .collect();
    let requests: Arc<dyn Requests> = Arc::new(Mix {
        ids: ids.to_vec(),
        bodies,
        token: token.to_owned(),
        caseworker: caseworker_token.to_owned(),
        open: std::sync::Mutex::new(std::collections::VecDeque::new()),
    });
    println!(
        "\n== soak: {minutes} min of mixed load (18 extracts, 1 registration, 1 assignment opened or closed per 20), {connections} connections\nminute  answered/s  p50 ms  p99 ms  other            server MiB  database MiB  beside"
    );
    let mut running: Vec<(String, std::thread::JoinHandle<String>)> = Vec::new();
    let mut first: Option<(f64, f64)> = None;
    let mut memory = Vec::new();
    for minute in 1..=minutes {
        for (what, at) in beside {
            if *at == minute {
                let what = what.clone();
                let mut command = Command::new(env!("CARGO_BIN_EXE_cvvault"));
                command
                    .env("CVVAULT_KEYS_DIR", root.join("keys"))
                    .env("CVVAULT_DATA_DIR", root.join("data"))
                    .env("CVVAULT_POLICY_DIR", root.join("policy"))
                    .env_remove("CVVAULT_PASSPHRASE")
                    .env_remove("CVVAULT_IDENTITY")
                    .stdout(Stdio::null())
                    .stderr(Stdio::piped());
                if let Some(url) = database_url {
                    command.env("CVVAULT_DATABASE_URL", url);
                }
                match what.as_str() {
                    "retention" => command.args(["retention", "run"]),
                    "rotate" => command.args(["keys", "rotate"]),
                    other => panic!("HTTP_LOAD_SOAK_BESIDE: `{other}` is not retention or rotate"),
                };
                let label = what.clone();
                running.push((
                    label,
                    std::thread::spawn(move || {
                        let started = Instant::now();
                        let out = command.output().unwrap();
                        format!(
                            "{what} ended in {:.1} s ({})",
                            started.elapsed().as_secs_f64(),
                            if out.status.success() {
                                "ok".to_owned()
                            } else {
                                String::from_utf8_lossy(&out.stderr).trim().to_owned()
                            }
                        )
                    }),
                ));
            }
        }
        let during: Vec<String> = running.iter().map(|(what, _)| what.clone()).collect();
        let outcome = runtime.block_on(load_requests(
            addresses,
            connections,
            Duration::from_secs(60),
            requests.clone(),
        ));
        let mut l = outcome.latencies_us.clone();
        l.sort_unstable();
        let pct = |p: f64| quantile_ms(&l, p);
        let rate = outcome.ok as f64 / outcome.elapsed.as_secs_f64();
        let rss = server_ids.iter().map(|id| resident_mib(*id)).sum::<f64>();
        memory.push(rss);
        let mut finished = Vec::new();
        running.retain_mut(|(_, handle)| {
            if handle.is_finished() {
                finished.push(std::mem::replace(handle, std::thread::spawn(String::new)));
                false
            } else {
                true
            }
        });
        let done: Vec<String> = finished.into_iter().map(|h| h.join().unwrap()).collect();
        println!(
            "{minute:>6}  {rate:>10.0}  {:>6.2}  {:>6.2}  {:<16} {rss:>10.1}  {:>12.1}  {}{}",
            pct(0.5),
            pct(0.99),
            format!("{:?}", outcome.statuses),
            database_mib(root, database_url),
            during.join("+"),
            if done.is_empty() {
                String::new()
            } else {
                format!(" [{}]", done.join("; "))
            }
        );
        first.get_or_insert((rate, pct(0.99)));
    }
    for (_, handle) in running {
        println!("beside: {}", handle.join().unwrap());
    }
    if let (Some((rate, _)), Some(last_rss), Some(first_rss)) =
        (first, memory.last(), memory.get(1).or(memory.first()))
    {
        println!(
            "soak: first minute {rate:.0}/s; memory from {first_rss:.1} MiB (minute 2) to {last_rss:.1} MiB ({:+.1} %)",
            (last_rss / first_rss - 1.0) * 100.0
        );
    }
}

/// A database of the bench's own on a PostgreSQL server, dropped at the end.
struct BenchDatabase {
    admin: String,
    name: String,
    url: String,
}

impl BenchDatabase {
    fn create(admin: &str) -> BenchDatabase {
        let name = format!("cvvault_bench_{}", std::process::id());
        BenchDatabase {
            admin: admin.to_owned(),
            url: support::fresh_database(admin, &name),
            name,
        }
    }
}

impl Drop for BenchDatabase {
    fn drop(&mut self) {
        if let Ok(mut client) = postgres::Client::connect(&self.admin, postgres::NoTls) {
            let _ = client.batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ));
        }
    }
}

/// The peer's audited extracts per second: raw AES and pgp_sym_encrypt.
struct Peer {
    raw: f64,
    pgp: f64,
}

/// Runs the PostgreSQL + pgcrypto peer once (it prints one summary line) and reads its
/// audited-extract figures.
fn run_peer() -> Option<Peer> {
    let script = std::env::var("PEER_PG").unwrap_or_else(|_| {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../shared/bench/peer_pg.sh")
            .display()
            .to_string()
    });
    let out = Command::new("bash").arg(&script).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    println!("peer: {}", text.trim());
    // "... audited extracts at 64 connections: pgp_sym 1781/s, raw 3058/s"; a run whose
    // pgbench failed (e.g. too few connections left on the server) prints no figure there.
    let extracts = text.split("audited extracts").nth(1).unwrap_or("");
    let pick = |label: &str| -> Option<f64> {
        extracts
            .split(label)
            .nth(1)
            .and_then(|rest| rest.trim_start().split('/').next())
            .and_then(|n| n.trim().parse().ok())
    };
    match (pick("raw"), pick("pgp_sym")) {
        (Some(raw), Some(pgp)) => Some(Peer { raw, pgp }),
        _ => {
            println!("peer: no audited-extract figure (is max_connections high enough for the peer's connections beside the vault's?)");
            None
        }
    }
}

/// User + system CPU time of a process so far (Linux /proc; 0 elsewhere).
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // Fields 14 and 15 (utime, stime), counted after the `(comm)` field; 100 ticks per second.
    (ticks(11) + ticks(12)) / 100.0
}

/// Vault with `count` candidates, each with an open coaching assignment for `coach`.
/// Opens a coaching assignment for `coach-org` for each of `ids` on 16 threads (so that group
/// commit batches them), and with `close` closes it again.
fn assign_in_parallel(
    vault: &Arc<Vault>,
    caseworker: &cvvault::policy::PrincipalFacts,
    ids: &[CandidateId],
    close: bool,
) {
    std::thread::scope(|scope| {
        for chunk in ids.chunks(ids.len().div_ceil(16).max(1)) {
            scope.spawn(move || {
                for id in chunk {
                    let assignment = vault
                        .open_assignment(
                            caseworker,
                            OpenAssignment {
                                candidate_id: *id,
                                org: "coach-org".parse().unwrap(),
                                kind: "coaching".parse().unwrap(),
                                purpose: "coaching".parse().unwrap(),
                            },
                        )
                        .unwrap();
                    if close {
                        vault
                            .close_assignment(caseworker, &assignment, "coaching completed")
                            .unwrap();
                    }
                }
            });
        }
    });
}

/// What the set-up made: the candidates, the provider's token and the caseworker's.
struct SetUp {
    ids: Vec<CandidateId>,
    token: String,
    caseworker_token: String,
}

fn set_up(root: &Path, count: usize, due: usize, database: Option<&str>) -> SetUp {
    let started = Instant::now();
    let mut paths = Paths::under(root);
    paths.postgres = database.map(|url| cvvault::paths::PgTarget::parse(url).unwrap());
    Vault::init(
        &paths,
        InitOptions {
            passphrase: None,
            identity: None,
            recovery_recipients: vec![],
        },
    )
    .unwrap();
    // Quotas high enough not to interfere with the measurement.
    std::fs::write(
        paths.limits_settings(),
        "[extract]\nextracts = 4000000000\nwindow_seconds = 3600\n\n[http]\nmax_body_bytes = 262144\n",
    )
    .unwrap();
    let vault = Arc::new(Vault::open(&paths, &Unlock::Identity(paths.default_identity())).unwrap());
    vault
        .add_principal(
            "cw".parse().unwrap(),
            Role::Caseworker,
            "agency".parse().unwrap(),
            None,
        )
        .unwrap();
    vault
        .add_principal(
            "coach".parse().unwrap(),
            Role::Provider,
            "coach-org".parse().unwrap(),
            None,
        )
        .unwrap();
    // The employer the soak's assignment changes link candidates to.
    vault
        .add_principal(
            "emp".parse().unwrap(),
            Role::Employer,
            "emp-org".parse().unwrap(),
            None,
        )
        .unwrap();
    let caseworker = vault.principal(&"cw".parse().unwrap()).unwrap();
    // Synthetic profiles, none protected: a provider may never see a protected one, and the
    // bench measures disclosures.
    let mut synth = cvvault::synth::Synth::new(2026);
    let mut ndjson = Vec::new();
    for _ in 0..count + due {
        let mut profile = synth.profile();
        profile.control.protected = false;
        serde_json::to_writer(&mut ndjson, &profile).unwrap();
        ndjson.push(b'\n');
    }
    let ndjson = Arc::new(ndjson);
    let open = || -> cvvault::Result<Box<dyn std::io::BufRead>> {
        Ok(Box::new(std::io::Cursor::new(ndjson.as_ref().clone())))
    };
    let report = vault
        .import(
            &caseworker,
            &open,
            &cvvault::vault::ImportOptions::default(),
            &|_, _| {},
        )
        .unwrap();
    assert_eq!(
        report.imported as usize,
        count + due,
        "{:?}",
        report.rejected
    );
    let mut ids = report.ids.clone();
    // The last `due` candidates: an assignment opened and closed, so retention erases them.
    let due_ids = ids.split_off(count);
    // Open the assignments from many threads, so that group commit batches them; the due
    // candidates' are closed again at once.
    assign_in_parallel(&vault, &caseworker, &ids, false);
    assign_in_parallel(&vault, &caseworker, &due_ids, true);
    let token = vault
        .issue_token(&"coach".parse().unwrap())
        .unwrap()
        .token
        .to_string();
    let caseworker_token = vault
        .issue_token(&"cw".parse().unwrap())
        .unwrap()
        .token
        .to_string();
    vault.close().unwrap();
    println!(
        "set-up: {count} candidates, {count} open coaching assignments, {due} due for retention, in {:.1?}",
        started.elapsed()
    );
    SetUp {
        ids,
        token,
        caseworker_token,
    }
}

#[derive(Default)]
struct Outcome {
    ok: u64,
    other: u64,
    statuses: std::collections::BTreeMap<u16, u64>,
    elapsed: Duration,
    latencies_us: Vec<u32>,
}

/// The `p` quantile of sorted latencies in microseconds, in milliseconds.
fn quantile_ms(sorted_us: &[u32], p: f64) -> f64 {
    sorted_us
        .get(((sorted_us.len() as f64 * p) as usize).min(sorted_us.len().saturating_sub(1)))
        .copied()
        .unwrap_or(0) as f64
        / 1000.0
}

fn report(what: &str, o: &Outcome) {
    let mut l = o.latencies_us.clone();
    l.sort_unstable();
    let pct = |p: f64| quantile_ms(&l, p);
    println!(
        "\n== {what}\n{} x 200, {} other {:?}, in {:.1?}: {:.0} req/s; latency p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        o.ok,
        o.other,
        o.statuses,
        o.elapsed,
        o.ok as f64 / o.elapsed.as_secs_f64(),
        pct(0.50),
        pct(0.90),
        pct(0.99),
        l.last().copied().unwrap_or(0) as f64 / 1000.0
    );
}

/// A GET of `path`, with `token` as its bearer token.
fn get(host: &str, path: &str, token: Option<&str>) -> String {
    let auth = token
        .map(|t| format!("authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    format!("GET {path} HTTP/1.1\r\nhost: {host}\r\n{auth}\r\n")
}

/// A POST of a JSON `body` to `path` with `token`.
fn post(host: &str, path: &str, token: &str, body: &str) -> String {
    format!(
        "POST {path} HTTP/1.1\r\nhost: {host}\r\nauthorization: Bearer {token}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
}

/// What a load sends as request `n` to `host`, and what it learns from the answer.
trait Requests: Send + Sync {
    fn request(&self, n: usize, host: &str) -> String;
    /// Whether request `n`'s answer is handed to [`Requests::answered`].
    fn wants_answer(&self, _n: usize) -> bool {
        false
    }
    fn answered(&self, _n: usize, _status: u16, _body: &[u8]) {}
}

impl<F: Fn(usize, &str) -> String + Send + Sync> Requests for F {
    fn request(&self, n: usize, host: &str) -> String {
        self(n, host)
    }
}

/// The soak's mix, of every 20 requests: 18 extracts by the provider, one registration by
/// the caseworker, and one assignment change: an employer's matching assignment opened for
/// the next candidate, or the oldest one it opened closed (as a placement ends), so that
/// the open assignments stay a few per candidate, as in an agency's work.
struct Mix {
    ids: Vec<CandidateId>,
    bodies: Vec<String>,
    token: String,
    caseworker: String,
    /// The assignments this mix opened and has not closed yet, oldest first.
    open: std::sync::Mutex<std::collections::VecDeque<String>>,
}

impl Mix {
    fn opens(n: usize) -> bool {
        n % 20 == 1 && (n / 20).is_multiple_of(2)
    }
}

impl Requests for Mix {
    fn request(&self, n: usize, host: &str) -> String {
        match n % 20 {
            0 => post(
                host,
                "/v1/candidates",
                &self.caseworker,
                &self.bodies[n / 20 % self.bodies.len()],
            ),
            1 => {
                let oldest = if Mix::opens(n) {
                    None
                } else {
                    self.open.lock().unwrap().pop_front()
                };
                match oldest {
                    Some(assignment) => post(
                        host,
                        &format!("/v1/assignments/{assignment}/close"),
                        &self.caseworker,
                        r#"{"reason":"placement ended"}"#,
                    ),
                    None => post(
                        host,
                        "/v1/assignments",
                        &self.caseworker,
                        &format!(
                            r#"{{"candidate_id":"{}","org":"emp-org","kind":"matching","purpose":"recruitment"}}"#,
                            self.ids[n / 20 % self.ids.len()]
                        ),
                    ),
                }
            }
            _ => get(
                host,
                &format!(
                    "/v1/candidates/{}/extract?purpose=coaching",
                    self.ids[n % self.ids.len()]
                ),
                Some(&self.token),
            ),
        }
    }

    fn wants_answer(&self, n: usize) -> bool {
        // A close slot that found nothing to close opens instead: every such answer.
        n % 20 == 1
    }

    fn answered(&self, _n: usize, status: u16, body: &[u8]) {
        if status != 201 {
            return;
        }
        let opened: serde_json::Value = serde_json::from_slice(body).unwrap();
        if let Some(id) = opened["assignment_id"].as_str() {
            self.open.lock().unwrap().push_back(id.to_owned());
        }
    }
}

/// `connections` keep-alive HTTP/1.1 connections sending `path(n)` back to back for `span`.
async fn load(
    addresses: &[String],
    connections: usize,
    span: Duration,
    path: Arc<dyn Fn(usize) -> String + Send + Sync>,
    token: Option<String>,
) -> Outcome {
    let requests: Arc<dyn Requests> =
        Arc::new(move |n: usize, host: &str| get(host, &path(n), token.as_deref()));
    load_requests(addresses, connections, span, requests).await
}

/// [`load`] with requests of any kind: a 2xx counts as answered.
async fn load_requests(
    addresses: &[String],
    connections: usize,
    span: Duration,
    requests: Arc<dyn Requests>,
) -> Outcome {
    let deadline = Instant::now() + span;
    let started = Instant::now();
    let local = tokio::task::LocalSet::new();
    let mut handles = Vec::new();
    for c in 0..connections {
        let address = addresses[c % addresses.len()].clone();
        let requests = requests.clone();
        handles.push(local.spawn_local(async move {
            let mut stream = tokio::net::TcpStream::connect(&address).await.unwrap();
            stream.set_nodelay(true).unwrap();
            let mut out = Outcome::default();
            let mut buffer = Vec::with_capacity(16 * 1024);
            let mut n = c * 7919;
            while Instant::now() < deadline {
                n += 1;
                let request = requests.request(n, &address);
                let sent = Instant::now();
                stream.write_all(request.as_bytes()).await.unwrap();
                let (status, body) =
                    read_response(&mut stream, &mut buffer, requests.wants_answer(n)).await;
                if let Some(body) = body {
                    requests.answered(n, status, &body);
                }
                out.latencies_us
                    .push(sent.elapsed().as_micros().min(u32::MAX as u128) as u32);
                if (200..300).contains(&status) {
                    out.ok += 1;
                } else {
                    out.other += 1;
                    *out.statuses.entry(status).or_default() += 1;
                }
            }
            out
        }));
    }
    local
        .run_until(async move {
            let mut total = Outcome::default();
            for h in handles {
                let o = h.await.unwrap();
                total.ok += o.ok;
                total.other += o.other;
                for (status, n) in o.statuses {
                    *total.statuses.entry(status).or_default() += n;
                }
                total.latencies_us.extend(o.latencies_us);
            }
            total.elapsed = started.elapsed();
            total
        })
        .await
}

/// Reads one response with a Content-Length body; returns its status, and its body if
/// `keep`.
async fn read_response(
    stream: &mut tokio::net::TcpStream,
    buffer: &mut Vec<u8>,
    keep: bool,
) -> (u16, Option<Vec<u8>>) {
    loop {
        if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = std::str::from_utf8(&buffer[..end])
                .unwrap()
                .to_ascii_lowercase();
            let status: u16 = head[9..12].parse().unwrap();
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .map(|v| v.trim().parse().unwrap())
                .unwrap_or(0);
            let total = end + 4 + length;
            while buffer.len() < total {
                fill(stream, buffer).await;
            }
            let body = keep.then(|| buffer[end + 4..total].to_vec());
            buffer.drain(..total);
            return (status, body);
        }
        fill(stream, buffer).await;
    }
}

async fn fill(stream: &mut tokio::net::TcpStream, buffer: &mut Vec<u8>) {
    let mut chunk = [0u8; 16 * 1024];
    let n = stream.read(&mut chunk).await.unwrap();
    assert!(n > 0, "the server closed the connection");
    buffer.extend_from_slice(&chunk[..n]);
}
