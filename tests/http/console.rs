//! The DPO console in-process: login and its cookie, CSRF on every form, refusals for every
//! other role, and what each page shows over a real vault.

use axum::http::{Method, StatusCode};

use cvvault::audit::entry::Outcome;
use cvvault::ids::CandidateId;

use crate::support::{Api, Reply, LIMITS};

const PAGES: [&str; 8] = [
    "/console/",
    "/console/alerts",
    "/console/candidate",
    "/console/holds",
    "/console/retention",
    "/console/breach",
    "/console/processing",
    "/console/processing.json",
];

/// A browser's cookies and the CSRF token of its session.
struct Browser {
    cookie: String,
    csrf: String,
}

fn set_cookies(reply: &Reply) -> Vec<String> {
    reply
        .headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect()
}

/// The value of the hidden `csrf` field of the first form.
fn csrf_field(html: &str) -> String {
    let at = html.find("name=\"csrf\" value=\"").expect("a csrf field") + 19;
    html[at..].split('"').next().unwrap().to_owned()
}

fn cookie_pair(set_cookie: &str) -> String {
    set_cookie.split(';').next().unwrap().to_owned()
}

async fn login_reply(api: &Api, token: &str) -> Reply {
    let form = api.call(Method::GET, "/console/login", None, None).await;
    form.expect(200);
    let login_cookie = cookie_pair(&set_cookies(&form)[0]);
    let csrf = csrf_field(&form.text());
    let body = format!("token={token}&csrf={csrf}");
    api.call_with(
        Method::POST,
        "/console/login",
        None,
        Some(body.as_bytes()),
        &[
            ("content-type", "application/x-www-form-urlencoded"),
            ("cookie", &login_cookie),
        ],
    )
    .await
}

async fn login(api: &Api, principal: &str) -> Browser {
    let reply = login_reply(api, api.token(principal)).await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.text());
    let session = set_cookies(&reply)
        .into_iter()
        .find(|c| c.starts_with("cvvault_console="))
        .expect("a session cookie");
    let cookie = cookie_pair(&session);
    let page = page(
        api,
        &Browser {
            cookie: cookie.clone(),
            csrf: String::new(),
        },
        "/console/",
    )
    .await;
    Browser {
        csrf: csrf_field(&page.text()),
        cookie,
    }
}

async fn page(api: &Api, browser: &Browser, uri: &str) -> Reply {
    api.call_with(Method::GET, uri, None, None, &[("cookie", &browser.cookie)])
        .await
}

async fn post(api: &Api, browser: &Browser, uri: &str, form: &str) -> Reply {
    api.call_with(
        Method::POST,
        uri,
        None,
        Some(form.as_bytes()),
        &[
            ("content-type", "application/x-www-form-urlencoded"),
            ("cookie", &browser.cookie),
        ],
    )
    .await
}

fn location(reply: &Reply) -> &str {
    reply
        .headers
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

/// A candidate with a subject account of its own: (candidate, the account's id).
fn with_subject(api: &mut Api, marker: &str) -> (CandidateId, String) {
    let candidate = api.register(marker, false, false);
    api.subject(candidate);
    let subject = api
        .tokens
        .keys()
        .find(|k| !["cw", "coach", "emp", "emp2", "dpo"].contains(&k.as_str()))
        .unwrap()
        .clone();
    (candidate, subject)
}

/// Runs "verify now" on the health page, and gives the page it leads to.
async fn verify_now(api: &Api, browser: &Browser) -> String {
    post(
        api,
        browser,
        "/console/verify",
        &format!("csrf={}", browser.csrf),
    )
    .await;
    page(api, browser, "/console/").await.text()
}

/// A vault with a history on SQLite, for tests that change its file behind cvvault's back;
/// `None` on a run on PostgreSQL.
fn sqlite_api_with_history() -> Option<Api> {
    if crate::common::on_postgres() {
        return None;
    }
    let api = Api::new(LIMITS);
    with_history(&api);
    Some(api)
}

/// A vault where the employer received one candidate's professional details and was refused
/// another's, three times.
fn with_history(api: &Api) -> (CandidateId, CandidateId) {
    let matched = api.register("console-matched", false, false);
    api.assign(matched, "emp-org", "matching", "recruitment");
    api.vault
        .extract(&api.facts("emp"), &matched, &"recruitment".parse().unwrap())
        .unwrap();
    let other = api.register("console-other", false, false);
    for _ in 0..3 {
        assert!(api
            .vault
            .extract(&api.facts("emp"), &other, &"recruitment".parse().unwrap())
            .is_err());
    }
    (matched, other)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dpo_token_becomes_an_http_only_strict_session_cookie_that_every_page_needs() {
    let api = Api::new(LIMITS);
    let anonymous = api.call(Method::GET, "/console/", None, None).await;
    assert_eq!(anonymous.status, StatusCode::SEE_OTHER);
    assert_eq!(location(&anonymous), "/console/login");

    let reply = login_reply(&api, api.token("dpo")).await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.text());
    assert_eq!(location(&reply), "/console/");
    let session = set_cookies(&reply)
        .into_iter()
        .find(|c| c.starts_with("cvvault_console="))
        .unwrap();
    for attribute in [
        "HttpOnly",
        "SameSite=Strict",
        "Path=/console",
        "Max-Age=1800",
    ] {
        assert!(session.contains(attribute), "{session}");
    }
    assert!(
        !session.contains(api.token("dpo")),
        "the token never goes to the browser"
    );

    let browser = login(&api, "dpo").await;
    for uri in PAGES {
        let reply = page(&api, &browser, uri).await;
        reply.expect(200);
        let csp = reply.headers["content-security-policy"].to_str().unwrap();
        assert!(
            csp.contains("default-src 'none'") && csp.contains("form-action 'self'"),
            "{csp}"
        );
        assert_eq!(reply.headers["x-frame-options"], "DENY");
        assert_eq!(reply.headers["cache-control"], "no-store");
        if !uri.ends_with(".json") {
            let html = reply.text();
            assert!(!html.contains("<script"), "{uri} needs no script");
            assert!(
                !html.contains("http://") && !html.contains("https://"),
                "{uri} loads nothing from elsewhere"
            );
            assert_eq!(html.matches("<h1>").count(), 1, "{uri}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_other_role_is_refused_sees_nothing_and_the_refusal_is_audited() {
    let mut api = Api::new(LIMITS);
    let (_, subject) = with_subject(&mut api, "console-subject");
    for principal in ["cw", "coach", "emp", subject.as_str()] {
        let reply = login_reply(&api, api.token(principal)).await;
        assert_eq!(
            reply.status,
            StatusCode::FORBIDDEN,
            "{principal}: {}",
            reply.text()
        );
        let html = reply.text();
        assert!(
            !html.contains("nav-health") && !html.contains("logout"),
            "{principal} sees no console"
        );
        assert!(
            set_cookies(&reply)
                .iter()
                .all(|c| !c.starts_with("cvvault_console=")),
            "{principal} gets no session"
        );
    }
    let refused: Vec<String> = api
        .entries()
        .into_iter()
        .filter(|e| e.action == "console.login" && e.decision == Outcome::Deny)
        .map(|e| e.actor)
        .collect();
    assert_eq!(refused.len(), 4, "{refused:?}");
    assert!(refused.contains(&"emp".to_owned()));

    let wrong = login_reply(&api, "cvv_nottoken_nottoken").await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert!(wrong.text().contains("id=\"error\""));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_form_must_come_from_this_browser() {
    let api = Api::new(LIMITS);
    let form = api.call(Method::GET, "/console/login", None, None).await;
    let csrf = csrf_field(&form.text());
    let body = format!("token={}&csrf={csrf}", api.token("dpo"));
    // No login cookie: a form posted from another site, or replayed.
    let reply = api
        .call_with(
            Method::POST,
            "/console/login",
            None,
            Some(body.as_bytes()),
            &[("content-type", "application/x-www-form-urlencoded")],
        )
        .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert!(set_cookies(&reply)
        .iter()
        .all(|c| !c.starts_with("cvvault_console=")));
    // A login cookie of another form.
    let other = api.call(Method::GET, "/console/login", None, None).await;
    let other_cookie = cookie_pair(&set_cookies(&other)[0]);
    let reply = api
        .call_with(
            Method::POST,
            "/console/login",
            None,
            Some(body.as_bytes()),
            &[
                ("content-type", "application/x-www-form-urlencoded"),
                ("cookie", &other_cookie),
            ],
        )
        .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_form_without_the_session_csrf_token_changes_nothing() {
    let api = Api::new(LIMITS);
    let candidate = api.register("console-csrf", false, false);
    let browser = login(&api, "dpo").await;
    for csrf in ["", "not-the-token", &browser.csrf[..browser.csrf.len() - 1]] {
        let form = format!("csrf={csrf}&action=place&candidate_id={candidate}&ground=case-1");
        let reply = post(&api, &browser, "/console/holds", &form).await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN, "{}", reply.text());
    }
    assert!(!api.entries().iter().any(|e| e.action == "hold.place"));
    let logout = post(&api, &browser, "/console/logout", "csrf=wrong").await;
    assert_eq!(logout.status, StatusCode::FORBIDDEN);
    page(&api, &browser, "/console/").await.expect(200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_ends_at_logout_at_expiry_and_when_its_token_is_revoked() {
    let api = Api::new(LIMITS);
    let browser = login(&api, "dpo").await;
    let out = post(
        &api,
        &browser,
        "/console/logout",
        &format!("csrf={}", browser.csrf),
    )
    .await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    assert_eq!(
        location(&page(&api, &browser, "/console/").await),
        "/console/login"
    );

    let browser = login(&api, "dpo").await;
    api.clock.advance(31 * 60);
    assert_eq!(
        location(&page(&api, &browser, "/console/").await),
        "/console/login"
    );

    let browser = login(&api, "dpo").await;
    let token_id = api
        .vault
        .list_tokens()
        .unwrap()
        .into_iter()
        .find(|t| t.principal_id.as_str() == "dpo" && t.revoked_at.is_none())
        .unwrap()
        .token_id;
    api.vault.revoke_token(&token_id).unwrap();
    let reply = page(&api, &browser, "/console/alerts").await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER);
    assert_eq!(location(&reply), "/console/login");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_view_is_an_audited_read_audit_decision() {
    let api = Api::new(LIMITS);
    let browser = login(&api, "dpo").await;
    let before = api.entries().len();
    for uri in PAGES {
        page(&api, &browser, uri).await.expect(200);
    }
    let views: Vec<String> = api.entries()[before..]
        .iter()
        .filter(|e| e.actor == "dpo" && e.decision == Outcome::Allow)
        .map(|e| e.action.clone())
        .collect();
    // `entries()` itself is an export by the DPO: its own entry is the last.
    assert_eq!(
        views,
        vec![
            "console.health",
            "console.alerts",
            "console.candidate",
            "console.holds",
            "console.retention",
            "console.breach",
            "console.processing",
            "console.processing",
            "audit.export",
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_health_page_shows_size_chart_checkpoints_and_the_last_verification() {
    let api = Api::new(LIMITS);
    with_history(&api);
    let browser = login(&api, "dpo").await;
    let html = page(&api, &browser, "/console/").await.text();
    assert!(html.contains("<svg id=\"decisions-chart\""));
    assert!(html.contains("has not been verified yet"), "{html}");
    let size_before: u64 = html
        .split("id=\"trail-size\">")
        .nth(1)
        .and_then(|s| s.split('<').next())
        .unwrap()
        .parse()
        .unwrap();
    assert!(size_before > 5);
    assert!(
        html.contains(": 3 refused") || html.contains("refused"),
        "{html}"
    );

    let verified = post(
        &api,
        &browser,
        "/console/verify",
        &format!("csrf={}", browser.csrf),
    )
    .await;
    assert_eq!(location(&verified), "/console/");
    let html = page(&api, &browser, "/console/").await.text();
    assert!(
        html.contains("id=\"flash\" role=\"status\">The trail verified"),
        "{html}"
    );
    assert!(html.contains("Verified just now"), "{html}");
    let again = page(&api, &browser, "/console/").await.text();
    assert!(!again.contains("id=\"flash\""), "a message is shown once");
    assert!(html.contains("by dpo"));
    assert!(
        html.contains("id=\"checkpoints\""),
        "verify signs a checkpoint: {html}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_alerts_page_names_the_principal_with_many_refusals() {
    let api = Api::new(LIMITS);
    with_history(&api);
    let browser = login(&api, "dpo").await;
    let html = page(&api, &browser, "/console/alerts?hours=24&min=3")
        .await
        .text();
    let table = html.split("id=\"alerts\"").nth(1).expect("an alerts table");
    assert!(table.contains("<td>emp</td>"), "{html}");
    let html = page(&api, &browser, "/console/alerts?hours=24&min=4")
        .await
        .text();
    assert!(html.contains("id=\"no-alerts\""), "{html}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_candidate_page_lists_its_entries_and_links_the_printable_report() {
    let api = Api::new(LIMITS);
    let (matched, _) = with_history(&api);
    let browser = login(&api, "dpo").await;
    let html = page(
        &api,
        &browser,
        &format!("/console/candidate?candidate_id={matched}"),
    )
    .await
    .text();
    let entries = html
        .split("id=\"entries\"")
        .nth(1)
        .expect("an entries table");
    assert!(
        entries.contains("<code class=\"hint\">extract</code>")
            && entries.contains("<code class=\"hint\">candidate.register</code>"),
        "{html}"
    );
    assert!(html.contains(&format!("/console/candidate/report?candidate_id={matched}")));
    let report = page(
        &api,
        &browser,
        &format!("/console/candidate/report?candidate_id={matched}"),
    )
    .await;
    report.expect(200);
    let report = report.text();
    assert!(report.contains("Disclosures (1)"), "{report}");
    assert!(report.contains("<td>emp</td>") && report.contains("professional"));
    assert!(
        !report.contains("console-matched"),
        "the DPO's report holds no profile data"
    );

    let bad = page(
        &api,
        &browser,
        "/console/candidate?candidate_id=%3Cb%3Ex%3C%2Fb%3E",
    )
    .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(!bad.text().contains("<b>x</b>"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hold_is_placed_with_its_ground_listed_and_released() {
    let api = Api::new(LIMITS);
    let candidate = api.register("console-hold", false, false);
    let browser = login(&api, "dpo").await;
    let html = page(&api, &browser, "/console/holds").await.text();
    assert!(html.contains("id=\"no-holds\""));

    let no_ground = format!(
        "csrf={}&action=place&candidate_id={candidate}&ground=",
        browser.csrf
    );
    let reply = post(&api, &browser, "/console/holds", &no_ground).await;
    assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(reply.text().contains("legal ground"));

    let place = format!(
        "csrf={}&action=place&candidate_id={candidate}&ground=court+case+2026%2F7",
        browser.csrf
    );
    let reply = post(&api, &browser, "/console/holds", &place).await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.text());
    assert_eq!(location(&reply), "/console/holds");
    let html = page(&api, &browser, location(&reply)).await.text();
    assert!(html.contains(&format!("Legal hold placed on candidate {candidate}")));
    let table = html.split("id=\"holds\"").nth(1).unwrap();
    assert!(
        table.contains(&candidate.to_string()) && table.contains("court case 2026/7"),
        "{html}"
    );
    assert!(table.contains("<td>dpo</td>"));

    let again = post(&api, &browser, "/console/holds", &place).await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    assert!(again.text().contains("already under a legal hold"));

    let release = format!(
        "csrf={}&action=release&candidate_id={candidate}",
        browser.csrf
    );
    let reply = post(&api, &browser, "/console/holds", &release).await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER);
    let html = page(&api, &browser, "/console/holds").await.text();
    assert!(html.contains("id=\"no-holds\""));
    let unknown = format!(
        "csrf={}&action=place&candidate_id={}&ground=x",
        browser.csrf,
        CandidateId::random()
    );
    assert_eq!(
        post(&api, &browser, "/console/holds", &unknown)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_retention_page_lists_who_the_next_run_erases_and_by_which_rule() {
    let api = Api::new(LIMITS);
    let due = api.register("console-due", false, false);
    let assignment = api.assign(due, "emp-org", "matching", "recruitment");
    api.vault
        .close_assignment(&api.facts("cw"), &assignment, "placed in a job")
        .unwrap();
    let kept = api.register("console-kept", false, false);
    let browser = login(&api, "dpo").await;
    let html = page(&api, &browser, "/console/retention").await.text();
    let table = html
        .split("id=\"due\"")
        .nth(1)
        .expect("a table of who is due");
    assert!(
        table.contains(&due.to_string()) && table.contains("closed-grace"),
        "{html}"
    );
    assert!(!table.contains(&kept.to_string()));
    assert!(!api.entries().iter().any(|e| e.action == "retention.erase"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_breach_page_scopes_disclosures_by_principal_org_and_token_and_downloads_them() {
    let api = Api::new(LIMITS);
    let (matched, other) = with_history(&api);
    let browser = login(&api, "dpo").await;
    let day = &cvvault::clock::rfc3339(api.vault.now())[..10];
    for (scope, value) in [("principal", "emp"), ("org", "emp-org")] {
        let uri = format!("/console/breach?scope={scope}&value={value}&since={day}&until={day}");
        let html = page(&api, &browser, &uri).await.text();
        let table = html
            .split("id=\"disclosures\"")
            .nth(1)
            .expect("a disclosures table");
        assert!(table.contains(&matched.to_string()), "{html}");
        assert!(
            !table.contains(&other.to_string()),
            "a refusal disclosed nothing"
        );
        assert!(html.contains("id=\"breach-candidates\">1<"));
    }
    let token_id = api
        .vault
        .list_tokens()
        .unwrap()
        .into_iter()
        .find(|t| t.principal_id.as_str() == "emp")
        .unwrap()
        .token_id;
    let uri = format!("/console/breach?scope=token&value={token_id}&since={day}&until={day}");
    let html = page(&api, &browser, &uri).await.text();
    assert!(html.contains("The token was valid from"), "{html}");
    assert!(html.contains(&matched.to_string()));

    let query = format!("scope=principal&value=emp&since={day}&until={day}");
    let csv = page(&api, &browser, &format!("/console/breach.csv?{query}")).await;
    csv.expect(200);
    assert!(csv.headers["content-disposition"]
        .to_str()
        .unwrap()
        .contains("attachment"));
    let lines: Vec<String> = csv.text().lines().map(str::to_owned).collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(lines[1].contains(&matched.to_string()) && lines[1].contains("professional"));
    let json = page(&api, &browser, &format!("/console/breach.json?{query}")).await;
    let report: serde_json::Value = serde_json::from_slice(&json.body).unwrap();
    assert_eq!(report["candidates"], 1);
    assert_eq!(
        report["disclosures"][0]["candidate_id"],
        matched.to_string()
    );

    let nobody = format!("/console/breach?scope=principal&value=emp2&since={day}&until={day}");
    assert!(page(&api, &browser, &nobody)
        .await
        .text()
        .contains("id=\"no-disclosures\""));
    let backwards = "/console/breach?scope=principal&value=emp&since=2026-02-01&until=2026-01-01";
    let reply = page(&api, &browser, backwards).await;
    assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
    let unknown_token =
        format!("/console/breach?scope=token&value=tok_nope&since={day}&until={day}");
    assert_eq!(
        page(&api, &browser, &unknown_token).await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_processing_page_carries_the_hash_of_the_policy_in_force() {
    let api = Api::new(LIMITS);
    let browser = login(&api, "dpo").await;
    let html = page(&api, &browser, "/console/processing").await.text();
    let hash = format!("sha256:{}", hex::encode(api.vault.policy().policy_hash()));
    assert!(
        html.contains(&format!("id=\"policy-hash\">{hash}<")),
        "{html}"
    );
    assert!(html.contains("professional") && html.contains("recruitment"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_breach_page_lists_the_first_disclosures_counts_all_and_the_download_has_all() {
    let api = Api::new(LIMITS);
    let id = api.register("console-many", false, false);
    api.assign(id, "emp-org", "matching", "recruitment");
    let recruitment = "recruitment".parse().unwrap();
    let rows = cvvault::server::console::BREACH_PAGE_ROWS;
    for _ in 0..rows + 3 {
        api.vault
            .extract(&api.facts("emp"), &id, &recruitment)
            .unwrap();
    }
    let browser = login(&api, "dpo").await;
    let day = &cvvault::clock::rfc3339(api.vault.now())[..10];
    let query = format!("scope=principal&value=emp&since={day}&until={day}");
    let html = page(&api, &browser, &format!("/console/breach?{query}"))
        .await
        .text();
    assert!(
        html.contains(&format!(
            "The first {rows} of {} disclosures are listed",
            rows + 3
        )),
        "{html}"
    );
    let table = html.split("id=\"disclosures\"").nth(1).unwrap();
    assert_eq!(table.matches("<tr><td class=\"t\">").count(), rows);
    let csv = page(&api, &browser, &format!("/console/breach.csv?{query}"))
        .await
        .text();
    assert_eq!(
        csv.lines().count(),
        rows + 3 + 1,
        "every disclosure and a header"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_verification_record_written_outside_cvvault_is_not_shown_as_a_pass() {
    // Before: the record of the last verification was a plain row, so anyone who could
    // write the database could make a failed (or never run) verification read "Verified".
    // The rewrite below is SQLite's.
    let Some(api) = sqlite_api_with_history() else {
        return;
    };
    let browser = login(&api, "dpo").await;
    let html = verify_now(&api, &browser).await;
    assert!(html.contains("Verified just now"), "{html}");
    let raw = rusqlite::Connection::open(api.paths.database()).unwrap();
    let forged = r#"{"at":1,"by":"dpo","verified":true,"entries":999999,"failure":null}"#;
    raw.execute(
        "UPDATE vault_meta SET value = ?1 WHERE key = 'last_verification'",
        [forged],
    )
    .unwrap();
    let html = page(&api, &browser, "/console/").await.text();
    assert!(!html.contains("Verified"), "{html}");
    assert!(!html.contains("999999"), "{html}");
    assert!(
        html.contains("The record of the last verification does not check"),
        "{html}"
    );
    // A record without its MAC (as an older cvvault stored it) does not check either.
    raw.execute_batch("DELETE FROM vault_meta WHERE key = 'last_verification.mac'")
        .unwrap();
    let html = page(&api, &browser, "/console/").await.text();
    assert!(
        html.contains("The record of the last verification does not check"),
        "{html}"
    );
    // Verifying again writes a record that checks.
    let html = verify_now(&api, &browser).await;
    assert!(html.contains("Verified just now"), "{html}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_health_page_says_when_entries_are_missing_from_the_trail() {
    // The deletion below is SQLite's.
    let Some(api) = sqlite_api_with_history() else {
        return;
    };
    let raw = rusqlite::Connection::open(api.paths.database()).unwrap();
    raw.execute_batch(
        "DROP TRIGGER audit_entries_append_only_delete;
         DELETE FROM audit_entries WHERE entry_index = 3;",
    )
    .unwrap();
    let browser = login(&api, "dpo").await;
    let html = page(&api, &browser, "/console/").await.text();
    assert!(
        html.contains("id=\"missing\">1 entries are missing from the trail"),
        "{html}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_form_from_another_site_is_refused_even_with_the_right_tokens() {
    let api = Api::new(LIMITS);
    let candidate = api.register("console-cross-site", false, false);
    let browser = login(&api, "dpo").await;
    let form = format!(
        "csrf={}&action=place&candidate_id={candidate}&ground=case-1",
        browser.csrf
    );
    for (name, value) in [
        ("sec-fetch-site", "cross-site"),
        ("sec-fetch-site", "same-site"),
        ("origin", "https://evil.example"),
    ] {
        let reply = api
            .call_with(
                Method::POST,
                "/console/holds",
                None,
                Some(form.as_bytes()),
                &[
                    ("content-type", "application/x-www-form-urlencoded"),
                    ("cookie", &browser.cookie),
                    (name, value),
                ],
            )
            .await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN, "{name}: {value}");
    }
    assert!(!api.entries().iter().any(|e| e.action == "hold.place"));
    let same = api
        .call_with(
            Method::POST,
            "/console/holds",
            None,
            Some(form.as_bytes()),
            &[
                ("content-type", "application/x-www-form-urlencoded"),
                ("cookie", &browser.cookie),
                ("sec-fetch-site", "same-origin"),
            ],
        )
        .await;
    assert_eq!(same.status, StatusCode::SEE_OTHER, "{}", same.text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_breach_search_for_an_unknown_account_or_organisation_is_not_answered_no_disclosure() {
    let api = Api::new(LIMITS);
    with_history(&api);
    let browser = login(&api, "dpo").await;
    let day = &cvvault::clock::rfc3339(api.vault.now())[..10];
    for (scope, value, says) in [
        ("principal", "emq", "No account `emq`"),
        (
            "org",
            "emp-orgg",
            "No account of an organisation `emp-orgg`",
        ),
    ] {
        let uri = format!("/console/breach?scope={scope}&value={value}&since={day}&until={day}");
        let reply = page(&api, &browser, &uri).await;
        assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY, "{scope}");
        let html = reply.text();
        assert!(html.contains(says), "{html}");
        assert!(!html.contains("id=\"no-disclosures\""));
    }
    let bad_date = format!("/console/breach?scope=org&value=emp-org&since=soon&until={day}");
    let html = page(&api, &browser, &bad_date).await.text();
    assert!(html.contains("the start `soon` is not a date"), "{html}");
    let on_record = api
        .entries()
        .iter()
        .filter(|e| e.action == "report.breach" && e.actor == "dpo")
        .count();
    assert_eq!(on_record, 3, "each question is on the record");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_breach_search_finds_what_a_candidates_own_account_received() {
    let mut api = Api::new(LIMITS);
    let (candidate, subject) = with_subject(&mut api, "console-own");
    api.vault
        .extract(
            &api.facts(&subject),
            &candidate,
            &"subject-access".parse().unwrap(),
        )
        .unwrap();
    let browser = login(&api, "dpo").await;
    let day = &cvvault::clock::rfc3339(api.vault.now())[..10];
    let uri = format!("/console/breach?scope=principal&value={subject}&since={day}&until={day}");
    let html = page(&api, &browser, &uri).await.text();
    let table = html
        .split("id=\"disclosures\"")
        .nth(1)
        .expect("the subject's own disclosure, found through its pseudonym");
    assert!(table.contains(&candidate.to_string()), "{html}");
}
