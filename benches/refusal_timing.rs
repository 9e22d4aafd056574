//! `cargo bench --bench refusal_timing`: does the time of a refusal tell whether a candidate
//! exists? An unrelated employer asks, through the HTTP router, for the extract and for the
//! assignment listing of candidates that exist (matched to another employer) and of random
//! ids, alternating, and gets the same 404 for both. Reported: both medians, their
//! difference and a Mann-Whitney rank test's p-value, next to the same figures for two
//! samples of random ids (what "no difference" looks like on this machine, this minute).
//! Goal: the existing-vs-random difference within what two random samples show.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::Request;
use http_body_util::BodyExt;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use tower::ServiceExt;

use cvvault::ids::CandidateId;
use cvvault::paths::Paths;
use cvvault::server::{self, AppState};
use cvvault::settings::Limits;
use cvvault::synth::Synth;
use cvvault::vault::Unlock;
use cvvault::vault::{InitOptions, OpenAssignment, Vault};
use cvvault::vocabulary::{FieldGroup, Role};

const EXISTING: usize = 500;
const PER_SAMPLE: usize = 2_500;
const WARM_UP: usize = 300;
const LIMITS: &str =
    "[extract]\nextracts = 10000000\nwindow_seconds = 3600\n\n[http]\nmax_body_bytes = 65536\n";

fn median(sorted: &[Duration]) -> Duration {
    sorted[sorted.len() / 2]
}

/// Two-sided p-value of the Mann-Whitney U test (normal approximation, ties averaged).
fn mann_whitney_p(a: &[Duration], b: &[Duration]) -> f64 {
    let mut all: Vec<(Duration, bool)> = a
        .iter()
        .map(|d| (*d, true))
        .chain(b.iter().map(|d| (*d, false)))
        .collect();
    all.sort_by_key(|(d, _)| *d);
    let mut rank_sum_a = 0.0;
    let mut i = 0;
    while i < all.len() {
        let mut j = i;
        while j + 1 < all.len() && all[j + 1].0 == all[i].0 {
            j += 1;
        }
        let rank = (i + j) as f64 / 2.0 + 1.0;
        for item in &all[i..=j] {
            if item.1 {
                rank_sum_a += rank;
            }
        }
        i = j + 1;
    }
    let (n1, n2) = (a.len() as f64, b.len() as f64);
    let u = rank_sum_a - n1 * (n1 + 1.0) / 2.0;
    let mean = n1 * n2 / 2.0;
    let sd = (n1 * n2 * (n1 + n2 + 1.0) / 12.0).sqrt();
    let z = ((u - mean).abs() - 0.5).max(0.0) / sd;
    erfc(z / std::f64::consts::SQRT_2)
}

/// Complementary error function (Numerical Recipes' erfcc, relative error < 1.2e-7).
fn erfc(x: f64) -> f64 {
    let t = 1.0 / (1.0 + 0.5 * x.abs());
    let y = t
        * (-x * x - 1.265_512_23
            + t * (1.000_023_68
                + t * (0.374_091_96
                    + t * (0.096_784_18
                        + t * (-0.186_288_06
                            + t * (0.278_868_07
                                + t * (-1.135_203_98
                                    + t * (1.488_515_87
                                        + t * (-0.822_152_23 + t * 0.170_872_77)))))))))
            .exp();
    if x >= 0.0 {
        y
    } else {
        2.0 - y
    }
}

async fn timed(router: &axum::Router, uri: &str, token: &str) -> Duration {
    let request = Request::get(uri)
        .header("authorization", format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap();
    let started = Instant::now();
    let response = router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let _ = response.into_body().collect().await.unwrap();
    let elapsed = started.elapsed();
    assert_eq!(status.as_u16(), 404, "{uri}");
    elapsed
}

fn report(what: &str, a_name: &str, a: &mut [Duration], b_name: &str, b: &mut [Duration]) {
    let p = mann_whitney_p(a, b);
    a.sort();
    b.sort();
    let (ma, mb) = (median(a), median(b));
    let diff = ma.as_secs_f64() * 1e6 - mb.as_secs_f64() * 1e6;
    println!(
        "{what:<22} {a_name:>9} median {:>7.1} us | {b_name:>9} median {:>7.1} us | difference {diff:>+7.1} us | rank test p = {p:.3}",
        ma.as_secs_f64() * 1e6,
        mb.as_secs_f64() * 1e6,
    );
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
    let vault = Arc::new(Vault::open(&paths, &Unlock::Identity(paths.default_identity())).unwrap());
    for (id, role, org) in [
        ("cw", Role::Caseworker, "agency"),
        ("emp", Role::Employer, "emp-org"),
        ("emp2", Role::Employer, "emp2-org"),
    ] {
        vault
            .add_principal(id.parse().unwrap(), role, org.parse().unwrap(), None)
            .unwrap();
    }
    let cw = vault.principal(&"cw".parse().unwrap()).unwrap();
    let mut synth = Synth::new(21);
    let existing: Vec<CandidateId> = (0..EXISTING)
        .map(|_| {
            let mut profile = synth.profile();
            profile.control.protected = false;
            let id = vault.register(&cw, &profile).unwrap();
            // Matched to another employer: it exists, and is not the asking employer's.
            vault
                .open_assignment(
                    &cw,
                    OpenAssignment {
                        candidate_id: id,
                        org: "emp2-org".parse().unwrap(),
                        kind: "matching".parse().unwrap(),
                        purpose: "recruitment".parse().unwrap(),
                    },
                )
                .unwrap();
            id
        })
        .collect();
    let _ = FieldGroup::ALL;
    let token = vault.issue_token(&"emp".parse().unwrap()).unwrap();
    let token = token.token.to_string();
    let router = server::router(AppState::new(
        vault.clone(),
        &Limits::parse(LIMITS).unwrap(),
    ));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    println!(
        "refusal timing: {EXISTING} existing candidates matched to another employer; {PER_SAMPLE} requests per sample, alternating; same 404 body for all"
    );
    runtime.block_on(async {
        for (what, suffix) in [
            ("extract", "/extract?purpose=recruitment"),
            ("assignments listing", "/assignments"),
        ] {
            for n in 0..WARM_UP {
                let id = if n % 2 == 0 {
                    existing[n % EXISTING]
                } else {
                    CandidateId::random()
                };
                timed(&router, &format!("/v1/candidates/{id}{suffix}"), &token).await;
            }
            let (mut known, mut random_a, mut random_b, mut random_c) =
                (Vec::new(), Vec::new(), Vec::new(), Vec::new());
            // Each round asks the four samples' ids in a shuffled order, so that no sample
            // always comes right after another (the order alone shifted medians by ~10 us).
            let mut rng = StdRng::seed_from_u64(7);
            for n in 0..PER_SAMPLE {
                let mut order = [0usize, 1, 2, 3];
                order.shuffle(&mut rng);
                for sample in order {
                    let id = if sample == 0 {
                        existing[n % EXISTING]
                    } else {
                        CandidateId::random()
                    };
                    let took =
                        timed(&router, &format!("/v1/candidates/{id}{suffix}"), &token).await;
                    match sample {
                        0 => known.push(took),
                        1 => random_a.push(took),
                        2 => random_b.push(took),
                        _ => random_c.push(took),
                    }
                }
            }
            report(what, "existing", &mut known, "random", &mut random_a);
            report(what, "random", &mut random_b, "random", &mut random_c);
        }
    });
    vault.close().unwrap();
}
