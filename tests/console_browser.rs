//! The DPO console in a real browser: `cvvault serve` as a real process on 127.0.0.1, a
//! headless Chromium driven through chromedriver (tests/common/webdriver.rs). An employer's
//! token gets a refusal that shows nothing of the console; a DPO logs in, opens every page
//! through the nav, searches a candidate, reads the subject access report, places and releases
//! a legal hold, runs a breach search and logs out. A screenshot of every page goes to
//! target/console-screenshots/ for a person to read.

// Test code: a failed step should stop the test loudly (clippy.toml allows this only inside
// #[test] functions, not in their helpers).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::webdriver::{self, Browser, Element};
use common::{cvvault, stderr};
use reqwest::blocking::Client;

const SKIP: &str = "console_browser: skipped, chromium and chromedriver are not installed \
                    (apt-get install chromium chromium-driver)";

/// The nav every console page has: (link id, the path it leads to, the screenshot's name).
const NAV: &[(&str, &str, &str)] = &[
    ("nav-health", "/console/", "health"),
    ("nav-alerts", "/console/alerts", "alerts"),
    ("nav-candidate", "/console/candidate", "candidate"),
    ("nav-holds", "/console/holds", "holds"),
    ("nav-retention", "/console/retention", "retention"),
    ("nav-breach", "/console/breach", "breach"),
    ("nav-processing", "/console/processing", "processing"),
];

/// Profiles carry these markers: no console page may show them (the DPO never reads a CV).
const MARKER: &str = "CONSOLE-MARKER";
const SPECIAL: &str = "CONSOLE-SPECIAL";

/// The browser on the console of one server, and where its screenshots go.
struct Console {
    browser: Browser,
    base: String,
    shots: PathBuf,
}

impl Console {
    fn open(&self, path: &str) {
        self.browser
            .navigate(&format!("{}{path}", self.base))
            .unwrap();
    }

    /// The current page's path and query, without the server's address.
    fn path(&self) -> String {
        let url = self.browser.current_url().unwrap();
        url.strip_prefix(&self.base)
            .unwrap_or_else(|| panic!("left the console's server: {url}"))
            .to_owned()
    }

    /// The path alone, without a query.
    fn route(&self) -> String {
        let path = self.path();
        path.split('?').next().unwrap_or_default().to_owned()
    }

    fn find(&self, css: &str) -> Element {
        self.browser
            .find(css)
            .unwrap_or_else(|e| panic!("{e}\non {}:\n{}", self.path(), self.source()))
    }

    fn has(&self, css: &str) -> bool {
        !self.browser.find_all(css).unwrap().is_empty()
    }

    fn count(&self, css: &str) -> usize {
        self.browser.find_all(css).unwrap().len()
    }

    fn text(&self, css: &str) -> String {
        self.browser.text(&self.find(css)).unwrap()
    }

    fn source(&self) -> String {
        self.browser.page_source().unwrap()
    }

    fn type_into(&self, css: &str, text: &str) {
        self.browser.send_keys(&self.find(css), text).unwrap();
    }

    /// Clicks a link or a button of the console; every one leads to a page.
    fn click(&self, css: &str) {
        self.browser.click_and_load(&self.find(css)).unwrap();
    }

    /// The data rows of the table `table_id` (rows with cells, not the header), as elements
    /// and their rendered text.
    fn rows(&self, table_id: &str) -> Vec<(Element, String)> {
        assert!(
            self.has(&format!("table#{table_id}")),
            "no table #{table_id} on {}",
            self.path()
        );
        self.browser
            .find_all(&format!("#{table_id} tr:has(td)"))
            .unwrap()
            .into_iter()
            .map(|row| {
                let text = self.browser.text(&row).unwrap();
                (row, text)
            })
            .collect()
    }

    fn screenshot(&self, name: &str) {
        self.browser
            .screenshot_whole_page(&self.shots.join(format!("{name}.png")))
            .unwrap();
    }

    /// Submits the login form with `token`.
    fn log_in(&self, token: &str) {
        self.open("/console/login");
        assert!(self.has("form#login-form"), "{}", self.source());
        self.type_into("#login-form input#token", token);
        self.click("#login-form #login");
    }

    /// Whether any part of the console's frame (nav or logout) is on the page.
    fn shows_console(&self) -> bool {
        NAV.iter().any(|(id, _, _)| self.has(&format!("#{id}")))
            || self.has("#logout-form")
            || self.has("#logout")
    }

    /// What every page of a logged-in DPO has: a 200, one `<h1>`, the whole nav with its
    /// links, the logout form; and no profile data.
    fn assert_frame(&self) {
        let page = self.path();
        assert_eq!(self.browser.status().unwrap(), 200, "{page}");
        assert_eq!(self.count("h1"), 1, "one <h1> on {page}");
        for (id, path, _) in NAV {
            let link = self.find(&format!("a#{id}"));
            let href = self.browser.attribute(&link, "href").unwrap().unwrap();
            assert_eq!(href, *path, "#{id} on {page}");
        }
        assert!(self.has("form#logout-form #logout"), "logout on {page}");
        self.assert_no_profile_data();
    }

    fn assert_no_profile_data(&self) {
        let source = self.source();
        assert!(
            !source.contains(MARKER) && !source.contains(SPECIAL),
            "profile data on {}",
            self.path()
        );
    }
}

/// The candidates of the test's vault.
struct Candidates {
    /// Consented to employer contact, matched to the employer, extracted by it.
    matched: String,
    /// Never matched: the employer's extracts are refused.
    unmatched: String,
    /// Protected personal data: the employer's extracts are refused.
    protected: String,
    /// Matched, then its assignment closed: due for erasure at once (the default grace after
    /// the last assignment closes is 0 days).
    closed: String,
}

/// Registers the candidates, matches one to `emp-org`, and makes the extracts: two allowed,
/// three refused (an unmatched and a protected candidate, another employer).
fn populate(client: &Client, url: &dyn Fn(&str) -> String, tokens: &Tokens) -> Candidates {
    let register = |name: &str, control: serde_json::Value| {
        let profile = serde_json::json!({
            "identity": {"name": format!("{MARKER} {name}")},
            "contact": {"email": format!("{}@example.org", name.to_lowercase())},
            "professional": {"headline": "Welder"},
            "special": {"health": SPECIAL},
            "control": control,
        });
        let reply = client
            .post(url("/v1/candidates"))
            .bearer_auth(&tokens.caseworker)
            .json(&profile)
            .send()
            .unwrap();
        assert_eq!(reply.status(), 201);
        reply.json::<serde_json::Value>().unwrap()["candidate_id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let consent = serde_json::json!({"consents": {"employer_contact": true}});
    let candidates = Candidates {
        matched: register("Anna", consent.clone()),
        unmatched: register("Bo", consent.clone()),
        protected: register(
            "Cecilia",
            serde_json::json!({"protected": true, "consents": {"employer_contact": true}}),
        ),
        closed: register("Dan", consent.clone()),
    };
    let assign = |candidate: &str| {
        let reply = client
            .post(url("/v1/assignments"))
            .bearer_auth(&tokens.caseworker)
            .json(&serde_json::json!({
                "candidate_id": candidate, "org": "emp-org",
                "kind": "matching", "purpose": "recruitment",
            }))
            .send()
            .unwrap();
        assert_eq!(reply.status(), 201);
        reply.json::<serde_json::Value>().unwrap()["assignment_id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    assign(&candidates.matched);
    let closing = assign(&candidates.closed);
    let reply = client
        .post(url(&format!("/v1/assignments/{closing}/close")))
        .bearer_auth(&tokens.caseworker)
        .json(&serde_json::json!({"reason": "placed in work"}))
        .send()
        .unwrap();
    assert_eq!(reply.status(), 200);
    let extract = |candidate: &str, token: &str| {
        client
            .get(url(&format!(
                "/v1/candidates/{candidate}/extract?purpose=recruitment"
            )))
            .bearer_auth(token)
            .send()
            .unwrap()
            .status()
    };
    for _ in 0..2 {
        assert_eq!(extract(&candidates.matched, &tokens.employer), 200);
    }
    assert_eq!(extract(&candidates.unmatched, &tokens.employer), 404);
    assert_eq!(extract(&candidates.protected, &tokens.employer), 404);
    assert_eq!(extract(&candidates.matched, &tokens.other_employer), 404);
    candidates
}

struct Tokens {
    caseworker: String,
    employer: String,
    other_employer: String,
    dpo: String,
}

/// The trail as the DPO exports it: its number of entries and the policy hash its last entry
/// was decided under (`sha256:` and 64 hex digits).
fn trail(client: &Client, url: &dyn Fn(&str) -> String, dpo: &str) -> (usize, String) {
    let reply = client
        .get(url("/v1/audit/entries"))
        .bearer_auth(dpo)
        .send()
        .unwrap();
    assert_eq!(reply.status(), 200);
    let text = reply.text().unwrap();
    let last: serde_json::Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    let hash = last["policy_hash"].as_str().unwrap();
    let hex = hash.strip_prefix("sha256:").unwrap().to_owned();
    (text.lines().count(), hex)
}

/// A browser, or `None` (said on stderr) when Chromium or chromedriver is not installed on a
/// developer's machine; on CI they must be (`.ci/run` installs them).
fn browser_or_skip() -> Option<Browser> {
    if !webdriver::installed() {
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "CI=true and {} or {} is missing: .ci/run installs chromium and chromium-driver",
            webdriver::CHROMIUM,
            webdriver::CHROMEDRIVER
        );
        // Past the test harness's capture, so the skip shows in a passing run.
        let _ = writeln!(std::io::stderr(), "{SKIP}");
        return None;
    }
    Some(Browser::start().unwrap())
}

#[test]
fn a_dpo_works_through_every_console_page_in_chromium_and_an_employer_sees_none_of_it() {
    let Some(browser) = browser_or_skip() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let out = cvvault(root, &["init"]);
    assert!(out.status.success(), "{}", stderr(&out));
    common::add_principals(
        root,
        &[
            ("cw", "caseworker", "agency"),
            ("emp", "employer", "emp-org"),
            ("emp2", "employer", "emp2-org"),
            ("dpo", "dpo", "agency"),
        ],
    );
    let tokens = Tokens {
        caseworker: common::issue_token(root, "cw"),
        employer: common::issue_token(root, "emp"),
        other_employer: common::issue_token(root, "emp2"),
        dpo: common::issue_token(root, "dpo"),
    };
    let served = common::serve(root, &["--bind", "127.0.0.1:0"], "http");
    let base = format!("http://{}", served.address);
    let client = Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let url = |path: &str| format!("{base}{path}");
    let candidates = populate(&client, &url, &tokens);
    let (entries_before, policy_hash) = trail(&client, &url, &tokens.dpo);

    let shots = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/console-screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let console = Console {
        browser,
        base: base.clone(),
        shots,
    };

    // Not logged in: the console is its login page, a password field and a CSRF token.
    console.open("/console/");
    assert_eq!(console.route(), "/console/login", "{}", console.source());
    let token_input = console.find("#login-form input#token[name=token]");
    assert_eq!(
        console
            .browser
            .attribute(&token_input, "type")
            .unwrap()
            .as_deref(),
        Some("password")
    );
    let csrf = console.find("#login-form input[type=hidden][name=csrf]");
    assert!(!console
        .browser
        .attribute(&csrf, "value")
        .unwrap()
        .unwrap_or_default()
        .is_empty());
    assert!(!console.shows_console(), "the login page has no nav");
    assert_eq!(console.count("h1"), 1);
    console.screenshot("login");

    // A wrong token: the login page again, with an error.
    console.log_in("cvv_0000_not-a-token");
    assert_eq!(console.route(), "/console/login");
    assert!(console.has("#error"), "{}", console.source());
    assert!(!console.text("#error").trim().is_empty());
    assert!(console.has("form#login-form"));
    console.screenshot("login-wrong-token");

    // An employer's valid token: a 403 that shows nothing of the console.
    console.log_in(&tokens.employer);
    assert_eq!(
        console.browser.status().unwrap(),
        403,
        "{}",
        console.source()
    );
    assert!(!console.shows_console(), "{}", console.source());
    assert!(!console.has("#decisions-chart") && !console.has("#trail-size"));
    console.assert_no_profile_data();
    console.screenshot("forbidden-employer");
    console.open("/console/");
    assert!(
        !console.shows_console(),
        "the employer's login left no session: {}",
        console.source()
    );

    // The DPO: a cookie the page's scripts cannot read and no other site sends, then the
    // health page.
    console.log_in(&tokens.dpo);
    assert_eq!(console.route(), "/console/", "{}", console.source());
    let cookies = console.browser.cookies().unwrap();
    assert!(!cookies.is_empty(), "logging in sets a cookie");
    let session_cookies: Vec<String> = cookies.iter().map(|c| c.name.clone()).collect();
    for cookie in &cookies {
        assert!(cookie.http_only, "{cookie:?}");
        assert_eq!(cookie.same_site.as_deref(), Some("Strict"), "{cookie:?}");
    }
    assert!(
        !console.source().contains(&tokens.dpo),
        "the token is never shown back"
    );
    console.assert_frame();
    assert!(console.has("svg#decisions-chart"), "{}", console.source());
    let trail_size: String = console
        .text("#trail-size")
        .chars()
        .filter(char::is_ascii_digit)
        .collect();
    let trail_size: usize = trail_size.parse().unwrap();
    assert!(
        trail_size >= entries_before,
        "{trail_size} < {entries_before}"
    );
    console.screenshot("health");

    // Every page through the nav, the health page last (back where it started).
    for (id, path, name) in NAV.iter().skip(1).chain(NAV.iter().take(1)) {
        console.click(&format!("a#{id}"));
        assert_eq!(console.route(), *path, "#{id}");
        console.assert_frame();
        console.screenshot(name);
    }
    // Retention: the candidate whose assignment closed is due, the matched one is not.
    console.click("a#nav-retention");
    let due = console.rows("due");
    assert!(
        due.iter()
            .any(|(_, text)| text.contains(&candidates.closed)),
        "{due:?}"
    );
    assert!(
        !due.iter()
            .any(|(_, text)| text.contains(&candidates.matched)),
        "{due:?}"
    );
    console.screenshot("retention");
    console.click("a#nav-processing");
    let shown_hash = console.text("#policy-hash");
    assert!(
        shown_hash.contains(&policy_hash),
        "{shown_hash:?} is not the policy hash of the trail ({policy_hash})"
    );

    // A candidate by id: its entries, then its subject access report.
    console.click("a#nav-candidate");
    let search = console.find("form#candidate-search");
    let method = console
        .browser
        .attribute(&search, "method")
        .unwrap()
        .unwrap_or_default();
    assert!(method.eq_ignore_ascii_case("get"), "{method}");
    console.type_into(
        "#candidate-search input#candidate_id[name=candidate_id]",
        &candidates.matched,
    );
    console.click("#candidate-search #search");
    assert_eq!(console.route(), "/console/candidate");
    assert!(
        console.path().contains(&candidates.matched),
        "{}",
        console.path()
    );
    console.assert_frame();
    // Registered, assigned, extracted twice, refused once to another employer.
    let entries = console.rows("entries");
    assert!(entries.len() >= 5, "{entries:?}");
    console.screenshot("candidate-entries");
    console.click("a#subject-access");
    assert_eq!(
        console.browser.status().unwrap(),
        200,
        "{}",
        console.source()
    );
    assert_eq!(console.count("h1"), 1);
    assert!(
        console.source().contains(&candidates.matched),
        "the report names its candidate"
    );
    console.assert_no_profile_data();
    console.screenshot("subject-access");

    // Two legal holds placed with their grounds, listed one row each; one released and gone,
    // the other still listed (a page with no hold left has no table).
    console.open("/console/holds");
    let place = console.find("form#place-hold");
    let method = console
        .browser
        .attribute(&place, "method")
        .unwrap()
        .unwrap_or_default();
    assert!(method.eq_ignore_ascii_case("post"), "{method}");
    for (candidate, ground) in [
        (
            &candidates.matched,
            "Labour court case 2026-114: keep until judgment",
        ),
        (
            &candidates.closed,
            "Complaint to the supervisory authority, ref. IMY-2026-77",
        ),
    ] {
        console.type_into(
            "#place-hold input#hold-candidate[name=candidate_id]",
            candidate,
        );
        console.type_into("#place-hold #hold-ground[name=ground]", ground);
        console.click("#place-hold #place");
        assert_eq!(console.route(), "/console/holds");
        console.assert_frame();
        assert!(!console.text("#flash").trim().is_empty());
    }
    let holds = console.rows("holds");
    assert_eq!(holds.len(), 2, "{holds:?}");
    let held = |candidate: &str| {
        holds
            .iter()
            .filter(|(_, text)| text.contains(candidate))
            .count()
    };
    assert_eq!(
        (held(&candidates.matched), held(&candidates.closed)),
        (1, 1)
    );
    console.screenshot("holds-placed");
    let (row, _) = holds
        .iter()
        .find(|(_, text)| text.contains(&candidates.matched))
        .unwrap();
    let release = console
        .browser
        .find_in(row, "form.release-hold .release")
        .unwrap();
    console.browser.click_and_load(&release).unwrap();
    assert_eq!(console.route(), "/console/holds");
    console.assert_frame();
    assert!(!console.text("#flash").trim().is_empty());
    let holds = console.rows("holds");
    assert_eq!(holds.len(), 1, "{holds:?}");
    assert!(holds[0].1.contains(&candidates.closed), "{holds:?}");
    console.screenshot("holds-released");
    // What retention makes of the hold still standing (for the person reading the shots).
    console.click("a#nav-retention");
    console.assert_frame();
    console.screenshot("retention-held");

    // A breach at the employer: what it was shown, and nothing it was refused.
    console.click("a#nav-breach");
    let search = console.find("form#breach-search");
    let method = console
        .browser
        .attribute(&search, "method")
        .unwrap()
        .unwrap_or_default();
    assert!(method.eq_ignore_ascii_case("get"), "{method}");
    for scope in ["principal", "org", "token"] {
        assert!(console.has(&format!("select#scope[name=scope] option[value={scope}]")));
    }
    assert!(console.has("#breach-search input[name=since]"));
    assert!(console.has("#breach-search input[name=until]"));
    let principal = console.find("select#scope option[value=principal]");
    console.browser.click(&principal).unwrap();
    console.type_into("#breach-search input#value[name=value]", "emp");
    console.click("#breach-search #find");
    assert_eq!(console.route(), "/console/breach");
    console.assert_frame();
    // The employer's two allowed extracts, one row each.
    let disclosures = console.rows("disclosures");
    assert_eq!(disclosures.len(), 2, "{disclosures:?}");
    assert!(
        disclosures
            .iter()
            .any(|(_, text)| text.contains(&candidates.matched)),
        "{disclosures:?}"
    );
    for refused in [&candidates.unmatched, &candidates.protected] {
        assert!(
            !disclosures
                .iter()
                .any(|(_, text)| text.contains(refused.as_str())),
            "a refused extract disclosed nothing: {disclosures:?}"
        );
    }
    for (link, format) in [("download-csv", "csv"), ("download-json", "json")] {
        let href = console
            .browser
            .attribute(&console.find(&format!("a#{link}")), "href")
            .unwrap()
            .unwrap();
        assert!(
            href.contains("scope=principal") && href.contains("value=emp") && href.contains(format),
            "{href}"
        );
    }
    console.screenshot("breach-results");

    // Logged out: the session's cookie is gone and the console is the login page again.
    console.click("form#logout-form #logout");
    console.open("/console/");
    assert_eq!(console.route(), "/console/login", "{}", console.source());
    assert!(console.has("form#login-form") && !console.shows_console());
    let left = console.browser.cookies().unwrap();
    assert!(
        !left.iter().any(|c| session_cookies.contains(&c.name)),
        "{left:?}"
    );
    console.screenshot("logged-out");
    drop(served);
}
