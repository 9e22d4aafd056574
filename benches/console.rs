//! The DPO console's pages over a trail of 1,000,000 entries: p50, p95 and the slowest of each
//! page, in process through `server::router` (the axum testing path: no socket, so that the
//! figure is the page's own work), logged in as the DPO like a browser.
//!
//! The trail is written by the vault itself (benches/support: registrations, assignments,
//! extracts allowed and one in ten refused, over about three weeks). The console's summary
//! of the trail is built once when the server starts; its build time is reported too, as
//! the cost a restart pays. Goal (issue 16): every page p95 under 100 ms.
//!
//! `cargo bench --bench console` (`CVVAULT_BENCH_ENTRIES=N` for a shorter trail,
//! `CONSOLE_BENCH_VIEWS=N` views per page, 40 by default)

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Method, Request};
use http_body_util::BodyExt;
use tower::ServiceExt;

use cvvault::server::{self, AppState};
use cvvault::settings::Limits;

async fn call(
    router: &axum::Router,
    method: Method,
    uri: &str,
    cookie: &str,
    body: Option<String>,
) -> (u16, Vec<(String, String)>, String) {
    let mut request = Request::builder().method(method).uri(uri);
    if !cookie.is_empty() {
        request = request.header("cookie", cookie);
    }
    let request = match body {
        Some(body) => request
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Body::from(body)),
        None => request.body(Body::empty()),
    }
    .unwrap();
    let response = router.clone().oneshot(request).await.unwrap();
    let status = response.status().as_u16();
    let headers = response
        .headers()
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_owned()))
        .collect();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, headers, String::from_utf8_lossy(&body).into_owned())
}

fn cookie_of(headers: &[(String, String)], name: &str) -> String {
    headers
        .iter()
        .filter(|(k, _)| k == "set-cookie")
        .map(|(_, v)| v.split(';').next().unwrap().to_owned())
        .find(|c| c.starts_with(&format!("{name}=")))
        .unwrap()
}

fn csrf(html: &str) -> String {
    let at = html.find("name=\"csrf\" value=\"").unwrap() + 19;
    html[at..].split('"').next().unwrap().to_owned()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1]
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let entries: u64 = std::env::var("CVVAULT_BENCH_ENTRIES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1_000_000);
    let views: usize = std::env::var("CONSOLE_BENCH_VIEWS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(40);
    let dir = tempfile::tempdir()?;
    let started = Instant::now();
    let busy = tokio::task::spawn_blocking({
        let root = dir.path().to_owned();
        move || support::busy_vault(&root, entries).map_err(|e| e.to_string())
    })
    .await??;
    eprintln!(
        "the vault wrote about {entries} entries in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let vault = Arc::new(busy.vault);
    let dpo_token = vault.issue_token(&"dpo".parse()?)?.token.to_string();
    let employer_token = vault.issue_token(&"hr-anna".parse()?)?;
    // Not a multiple of ten: every tenth attempt is the refused employer's.
    let searched = busy.candidates[busy.candidates.len() / 2 + 1];
    // One candidate under a hold, so that the holds page lists one.
    let dpo = vault.principal(&"dpo".parse()?)?;
    vault.set_hold(&dpo, &busy.candidates[7], true, "court case 2026/7")?;

    // What a server start does: the summary of the trail, built once.
    let built = Instant::now();
    let summarized = vault.summarize_trail(&|_| {})?;
    let build = built.elapsed();

    let limits = Limits::parse(
        "[extract]\nextracts = 100000\nwindow_seconds = 3600\n\n[http]\nmax_body_bytes = 65536\n",
    )?;
    let router = server::router(AppState::new(vault.clone(), &limits));
    let (_, headers, form) = call(&router, Method::GET, "/console/login", "", None).await;
    let login_cookie = cookie_of(&headers, "cvvault_console_login");
    let (status, headers, _) = call(
        &router,
        Method::POST,
        "/console/login",
        &login_cookie,
        Some(format!("token={dpo_token}&csrf={}", csrf(&form))),
    )
    .await;
    assert_eq!(status, 303, "the DPO logs in");
    let session = cookie_of(&headers, "cvvault_console");

    let day = |offset_days: i64| {
        cvvault::clock::rfc3339(vault.now() - offset_days * 86_400)[..10].to_owned()
    };
    let pages = [
        ("health", "/console/".to_owned()),
        ("alerts", "/console/alerts?hours=720&min=5".to_owned()),
        (
            "candidate",
            format!("/console/candidate?candidate_id={searched}"),
        ),
        (
            "subject access",
            format!("/console/candidate/report?candidate_id={searched}"),
        ),
        ("holds", "/console/holds".to_owned()),
        ("retention", "/console/retention".to_owned()),
        (
            "breach, one day",
            format!(
                "/console/breach?scope=principal&value=hr-anna&since={}&until={}",
                day(1),
                day(1)
            ),
        ),
        (
            "breach, whole trail",
            format!(
                "/console/breach?scope=org&value=nordlager-ab&since={}&until={}",
                day(40),
                day(0)
            ),
        ),
        (
            "breach by token",
            format!(
                "/console/breach?scope=token&value={}&since={}&until={}",
                employer_token.token_id,
                day(40),
                day(0)
            ),
        ),
        ("processing", "/console/processing".to_owned()),
    ];
    println!(
        "console over {summarized} audit entries: summary built in {:.2} s at start ({} views per page)",
        build.as_secs_f64(),
        views
    );
    println!(
        "{:<22} {:>9} {:>9} {:>9} {:>10}",
        "page", "p50 ms", "p95 ms", "max ms", "KiB"
    );
    let mut worst = Duration::ZERO;
    for (name, uri) in &pages {
        let (status, _, body) = call(&router, Method::GET, uri, &session, None).await;
        assert_eq!(status, 200, "{name}: {body}");
        if std::env::var_os("CONSOLE_BENCH_SHOW").is_some() {
            eprintln!("----- {name}\n{body}");
        }
        let mut times = Vec::with_capacity(views);
        for _ in 0..views {
            let t = Instant::now();
            let (status, _, _) = call(&router, Method::GET, uri, &session, None).await;
            times.push(t.elapsed());
            assert_eq!(status, 200);
        }
        times.sort();
        let p95 = percentile(&times, 0.95);
        worst = worst.max(p95);
        println!(
            "{:<22} {:>9.2} {:>9.2} {:>9.2} {:>10.1}",
            name,
            percentile(&times, 0.5).as_secs_f64() * 1e3,
            p95.as_secs_f64() * 1e3,
            times.last().unwrap().as_secs_f64() * 1e3,
            body.len() as f64 / 1024.0
        );
    }
    // The downloads carry every row: files, not pages.
    for (name, uri) in [(
        "breach.csv, whole trail",
        pages[7]
            .1
            .replace("/console/breach?", "/console/breach.csv?"),
    )] {
        let t = Instant::now();
        let (status, _, body) = call(&router, Method::GET, &uri, &session, None).await;
        assert_eq!(status, 200);
        println!(
            "{name:<22} {:>9.2} ms once, {:.1} MiB, {} rows",
            t.elapsed().as_secs_f64() * 1e3,
            body.len() as f64 / 1048576.0,
            body.lines().count() - 1
        );
    }
    println!(
        "slowest page p95: {:.2} ms (goal: under 100 ms){}",
        worst.as_secs_f64() * 1e3,
        if worst < Duration::from_millis(100) {
            ""
        } else {
            "  NOT MET"
        }
    );
    vault.close()?;
    Ok(())
}
