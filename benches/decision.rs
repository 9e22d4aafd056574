//! `cargo bench --bench decision`: the decision time of one extract (all five field groups)
//! with 100,000 candidates and 200,000 assignments in the store. Reports the policy call
//! alone and the whole decision path (facts read from the store, DEK unwrapped, control
//! group opened, open assignments looked up, Cedar for every group, or the exact memo of
//! read decisions when the same facts were decided before), and the policy call fresh and
//! remembered.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::io::{BufReader, BufWriter, Write};
use std::time::{Duration, Instant};

use cvvault::ids::CandidateId;
use cvvault::paths::Paths;
use cvvault::synth::Synth;
use cvvault::vault::Unlock;
use cvvault::vault::{InitOptions, OpenAssignment, Vault};
use cvvault::vocabulary::{AssignmentKind, FieldGroup, Purpose, Role};

const CANDIDATES: usize = 100_000;
const EMPLOYERS: usize = 50;
const SAMPLES: usize = 20_000;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p) as usize]
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let paths = Paths::under(dir.path());
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
    for e in 0..EMPLOYERS {
        vault
            .add_principal(
                format!("emp{e}").parse().unwrap(),
                Role::Employer,
                format!("org{e}").parse().unwrap(),
                None,
            )
            .unwrap();
        vault
            .add_principal(
                format!("coach{e}").parse().unwrap(),
                Role::Provider,
                format!("coach-org{e}").parse().unwrap(),
                None,
            )
            .unwrap();
    }
    // 100,000 candidates through the real import (sealed, audited).
    let file = dir.path().join("p.ndjson");
    {
        let mut out = BufWriter::new(std::fs::File::create(&file).unwrap());
        let mut synth = Synth::new(5);
        for _ in 0..CANDIDATES {
            let mut p = synth.profile();
            p.control.protected = false;
            out.write_all(&p.to_json_groups(&FieldGroup::ALL).unwrap())
                .unwrap();
            out.write_all(b"\n").unwrap();
        }
    }
    let cw = vault.principal(&"cw".parse().unwrap()).unwrap();
    let open = || -> cvvault::Result<Box<dyn std::io::BufRead>> {
        Ok(Box::new(BufReader::with_capacity(
            1 << 20,
            std::fs::File::open(&file).unwrap(),
        )))
    };
    let started = Instant::now();
    let ids: Vec<CandidateId> = vault
        .import(
            &cw,
            &open,
            &cvvault::vault::ImportOptions::default(),
            &|_, _| {},
        )
        .unwrap()
        .ids;
    println!(
        "setup: imported {} candidates in {:.1?}",
        ids.len(),
        started.elapsed()
    );
    // 200,000 assignments: two per candidate (one matching, one coaching), opened through
    // the vault's own use case (decided, MACed, audited) from several threads, so that the
    // writer commits them in groups.
    let started = Instant::now();
    let threads = 8;
    std::thread::scope(|scope| {
        for t in 0..threads {
            let (vault, ids, cw) = (&vault, &ids, &cw);
            scope.spawn(move || {
                for (n, id) in ids.iter().enumerate().skip(t).step_by(threads) {
                    for (kind, org, purpose) in [
                        (
                            AssignmentKind::Matching,
                            format!("org{}", n % EMPLOYERS),
                            "recruitment",
                        ),
                        (
                            AssignmentKind::Coaching,
                            format!("coach-org{}", n % EMPLOYERS),
                            "coaching",
                        ),
                    ] {
                        vault
                            .open_assignment(
                                cw,
                                OpenAssignment {
                                    candidate_id: *id,
                                    org: org.parse().unwrap(),
                                    kind,
                                    purpose: purpose.parse().unwrap(),
                                },
                            )
                            .unwrap();
                    }
                }
            });
        }
    });
    println!(
        "setup: opened {} assignments in {:.1?}",
        ids.len() * 2,
        started.elapsed()
    );
    vault.close().unwrap();
    drop(vault);

    let vault = Vault::open(&paths, &Unlock::Identity(paths.default_identity())).unwrap();
    let recruitment: Purpose = "recruitment".parse().unwrap();
    let employers: Vec<_> = (0..EMPLOYERS)
        .map(|e| {
            vault
                .principal(&format!("emp{e}").parse().unwrap())
                .unwrap()
        })
        .collect();
    let mut whole = Vec::with_capacity(SAMPLES);
    let mut policy_only = Vec::with_capacity(SAMPLES);
    let mut allowed_groups = 0usize;
    for s in 0..SAMPLES {
        let n = (s * 7_919) % ids.len();
        let employer = &employers[n % EMPLOYERS];
        let started = Instant::now();
        let grant = vault
            .decide_extract(employer, &ids[n], &recruitment)
            .unwrap()
            .unwrap();
        whole.push(started.elapsed());
        allowed_groups += grant.allowed_groups().len();
    }
    // The Cedar call alone, on facts built once.
    let facts = cvvault::policy::CandidateFacts {
        candidate_id: ids[0],
        protected: false,
        employer_contact_consent: true,
        coaching_orgs: vec!["coach-org0".parse().unwrap()],
        matching_orgs: vec!["org0".parse().unwrap()],
    };
    let mut remembered = Vec::with_capacity(SAMPLES);
    for _ in 0..SAMPLES {
        let started = Instant::now();
        let grant = vault
            .policy()
            .evaluate_read(&employers[0], &facts, &recruitment);
        policy_only.push(started.elapsed());
        assert_eq!(grant.allowed_groups().len(), 3);
        let started = Instant::now();
        let grant = vault
            .policy()
            .decide_read(&employers[0], &facts, &recruitment);
        remembered.push(started.elapsed());
        assert_eq!(grant.allowed_groups().len(), 3);
    }
    whole.sort();
    policy_only.sort();
    remembered.sort();
    println!(
        "groups allowed per extract (mean): {:.2}",
        allowed_groups as f64 / SAMPLES as f64
    );
    println!(
        "policy decision (5 groups, Cedar)      : p50 {:>6.1?}  p99 {:>6.1?}",
        percentile(&policy_only, 0.5),
        percentile(&policy_only, 0.99)
    );
    println!(
        "the same, remembered (exact memo)      : p50 {:>6.1?}  p99 {:>6.1?}",
        percentile(&remembered, 0.5),
        percentile(&remembered, 0.99)
    );
    println!(
        "whole decision path (store + Cedar)    : p50 {:>6.1?}  p99 {:>6.1?}  (goal: p50 <= 100 us)",
        percentile(&whole, 0.5),
        percentile(&whole, 0.99)
    );
    let _ = FieldGroup::ALL;
    vault.close().unwrap();
}
