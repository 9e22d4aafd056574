//! The console's pages as HTML (maud escapes every value it inserts). Each function renders
//! what one vault call returned; none reads anything itself.

use maud::{html, Markup, DOCTYPE};

use super::chart;
use super::session::Flash;
use crate::audit::digest::Alert;
use crate::audit::entry::{Entry, Outcome};
use crate::clock::rfc3339;
use crate::report::breach::BreachReport;
use crate::report::processing::RecordOfProcessing;
use crate::vault::{HeldCandidate, RetentionPreview, SubjectAccessReport, TrailHealth};
use crate::vocabulary::FieldGroup;

/// The pages of the navigation: (id, path, label).
const NAV: [(&str, &str, &str); 7] = [
    ("nav-health", "/console/", "Trail health"),
    ("nav-alerts", "/console/alerts", "Alerts"),
    ("nav-candidate", "/console/candidate", "Candidate"),
    ("nav-holds", "/console/holds", "Legal holds"),
    ("nav-retention", "/console/retention", "Retention"),
    ("nav-breach", "/console/breach", "Breach scope"),
    (
        "nav-processing",
        "/console/processing",
        "Record of processing",
    ),
];

/// A time for people: `2026-11-02 10:00 UTC`.
pub fn when(seconds: i64) -> String {
    let text = rfc3339(seconds);
    match (text.get(..10), text.get(11..16)) {
        (Some(date), Some(time)) => format!("{date} {time} UTC"),
        _ => text,
    }
}

/// How long ago, in the largest whole unit.
pub fn ago(seconds: i64, now: i64) -> String {
    let age = (now - seconds).max(0);
    match age {
        0..=59 => "just now".into(),
        60..=3_599 => format!("{} min ago", age / 60),
        3_600..=86_399 => format!("{} h ago", age / 3_600),
        _ => format!("{} days ago", age / 86_400),
    }
}

/// An audit action in words (the trail's own spelling stays visible beside it).
pub fn action_words(action: &str) -> &'static str {
    match action {
        "extract" => "Profile data requested",
        "candidate.register" => "Registered",
        "candidate.update" => "Profile corrected",
        "candidate.find" => "Looked up by agency reference",
        "candidate.erase" => "Erased on request",
        "retention.erase" => "Erased by retention",
        "retention.run" => "Retention run",
        "assignment.open" => "Assignment opened",
        "assignment.close" => "Assignment closed",
        "assignment.list" => "Assignments listed",
        "hold.place" => "Legal hold placed",
        "hold.release" => "Legal hold released",
        "subject_access" => "Subject access report",
        "audit.search" => "Trail searched (DPO)",
        "audit.receipt" => "Erasure receipt made",
        "audit.verify" => "Trail verified",
        "audit.export" => "Trail exported",
        "policy.explain" => "Decision explained",
        "report.breach" => "Breach report made",
        a if a.starts_with("console.") => "Console page viewed",
        _ => "Other",
    }
}

/// An entry's detail in words, when it is one of the vault's fixed notes.
pub fn note_words(note: &str) -> String {
    let known = match note {
        "not-found" => "no such candidate",
        "not-found-or-unrelated" => {
            "not linked to this organisation by an open assignment (or no such candidate)"
        }
        "quota-exceeded" => "stopped by the extract quota (possible harvesting)",
        "invalid-request" => "malformed request",
        "already-held" => "already under a hold",
        "not-held" => "was not under a hold",
        "legal-hold" => "kept by a legal hold",
        "principal-disabled" => "the account is disabled",
        "unknown-organisation" => "unknown organisation",
        "unknown-purpose" => "unknown purpose",
        _ => "",
    };
    if known.is_empty() {
        note.replace('=', ": ")
    } else {
        known.to_owned()
    }
}

/// An RFC 3339 time from the trail, for people.
pub fn trail_time(text: &str) -> String {
    crate::clock::parse_time(text).map_or_else(|| text.to_owned(), when)
}

fn document(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · cvvault DPO console" }
                link rel="stylesheet" href="/console/style.css";
            }
            body { (body) }
        }
    }
}

/// A page of the console: navigation, logout, one heading, the content.
pub fn page(
    title: &str,
    current: &str,
    csrf: &str,
    flash: Option<&Flash>,
    content: Markup,
) -> Markup {
    document(
        title,
        html! {
            header {
                span.brand { "cvvault · DPO console" }
                nav {
                    @for (id, path, label) in NAV {
                        a id=(id) href=(path) class=[(path == current).then_some("current")] { (label) }
                    }
                }
                form id="logout-form" method="post" action="/console/logout" {
                    input type="hidden" name="csrf" value=(csrf);
                    button id="logout" type="submit" { "Log out" }
                }
            }
            main {
                h1 { (title) }
                @if let Some(flash) = flash {
                    p id="flash" role="status" class=[flash.failed.then_some("bad")] { (flash.text) }
                }
                (content)
            }
            footer {
                "Every page you open here is recorded in the audit trail, like every other decision."
            }
        },
    )
}

/// The login page.
pub fn login(csrf: &str, error: Option<&str>, notice: Option<&str>) -> Markup {
    document(
        "Log in",
        html! {
            main.narrow {
                h1 { "cvvault DPO console" }
                p { "For the data-protection officer: the audit trail, legal holds, retention and the GDPR reports. Nobody reads a CV here." }
                @if let Some(notice) = notice {
                    p id="flash" role="status" { (notice) }
                }
                @if let Some(error) = error {
                    p id="error" role="alert" { (error) }
                }
                form id="login-form" method="post" action="/console/login" {
                    label for="token" { "Your access token (the vault's operator gives it to you)" }
                    input id="token" name="token" type="password" autocomplete="off" required;
                    input type="hidden" name="csrf" value=(csrf);
                    button id="login" type="submit" { "Log in" }
                }
                p.hint { "The session lasts 30 minutes and ends when you log out or your token is revoked." }
            }
        },
    )
}

/// A page that shows no console content: a refusal or an error.
pub fn problem(title: &str, detail: &str, logged_in: bool) -> Markup {
    document(
        title,
        html! {
            main.narrow {
                h1 { (title) }
                p id="error" role="alert" { (detail) }
                @if logged_in {
                    p { a href="/console/" { "Back to the console" } }
                } @else {
                    p { a href="/console/login" { "Log in" } }
                }
            }
        },
    )
}

fn verification(health: &TrailHealth) -> Markup {
    html! {
        @match &health.last_verification {
            None if health.last_verification_unchecked => p.bad id="verification" {
                "The record of the last verification does not check: it was written outside cvvault (or by a cvvault older than this one). Do not rely on it: verify the trail now, and find out who could write the database."
            },
            None => p.warn id="verification" { "The trail has not been verified yet. Verify it now, and have the operator schedule " code { "cvvault audit verify" } " daily." },
            Some(last) if last.verified => p.ok id="verification" {
                "Verified " (ago(last.at, health.now)) " (" (when(last.at)) ") by " (last.by) ": "
                (last.entries.unwrap_or(0)) " entries, every checkpoint and entry MAC checked."
            },
            Some(last) => p.bad id="verification" {
                "Verification FAILED " (ago(last.at, health.now)) " (" (when(last.at)) ", by " (last.by) "): "
                (last.failure.as_deref().unwrap_or(""))
            },
        }
    }
}

/// The trail's health.
pub fn health(health: &TrailHealth, csrf: &str, flash: Option<&Flash>) -> Markup {
    let allowed: u64 = health.per_day.iter().map(|d| d.1).sum();
    let refused: u64 = health.per_day.iter().map(|d| d.2).sum();
    page(
        "Audit trail health",
        "/console/",
        csrf,
        flash,
        html! {
            section.cards {
                div.card { span.figure id="trail-size" { (health.size) } span { "entries in the trail" } }
                div.card { span.figure { (allowed) } span { "allowed in " (health.per_day.len()) " days" } }
                div.card { span.figure.refusals { (refused) } span { "refused in " (health.per_day.len()) " days" } }
            }
            (verification(health))
            @if health.missing > 0 {
                p.bad id="missing" { (health.missing) " entries are missing from the trail (deleted outside cvvault). Verify the trail now: it names where." }
            }
            @if health.unreadable > 0 {
                p.bad { (health.unreadable) " entries do not parse: verify the trail now, it names them." }
            }
            form id="verify-form" method="post" action="/console/verify" {
                input type="hidden" name="csrf" value=(csrf);
                button id="verify" type="submit" { "Verify the trail now" }
                span.hint { " Recomputes every hash and checks every signed checkpoint (about a second per million entries)." }
            }
            h2 { "Decisions per day" }
            p.legend { span.swatch.allowed {} " allowed " span.swatch.refused {} " refused" }
            (chart::decisions_per_day(&health.per_day))
            details {
                summary { "The figures" }
                table {
                    thead { tr { th { "Day" } th.n { "Allowed" } th.n { "Refused" } } }
                    tbody { @for (day, a, r) in &health.per_day { tr { td { (day) } td.n { (a) } td.n { (r) } } } }
                }
            }
            h2 { "Latest signed checkpoints" }
            @if health.checkpoints.is_empty() {
                p.warn { "No checkpoint is signed yet: the server signs one every few minutes while the trail grows." }
            } @else {
                @if let Some(newest) = health.checkpoints.first() {
                    @if newest.size < health.size {
                        p.hint { "The newest checkpoint covers the first " (newest.size) " of " (health.size) " entries; the server signs the next one within minutes. Entries not yet under a checkpoint are protected by their own keyed checksums meanwhile." }
                    }
                }
                table id="checkpoints" {
                    thead { tr { th.n { "Entries covered" } th { "Fingerprint (root hash)" } th { "Signed" } } }
                    tbody {
                        @for c in &health.checkpoints {
                            tr { td.n { (c.size) } td { code.hash title=(c.root) { (c.root.get(..16).unwrap_or(&c.root)) "…" } } td { (ago(c.signed_at, health.now)) " (" (when(c.signed_at)) ")" } }
                        }
                    }
                }
                p.hint { "A checkpoint is a signed fingerprint of the whole trail up to that entry. Copies kept off this machine (the operator's task: " code { "cvvault audit checkpoint" } ") prove later that no entry was changed or removed." }
            }
        },
    )
}

/// Principals with many refusals or quota hits.
pub fn alerts(alerts: &[Alert], hours: u32, min: u64, now: i64, csrf: &str) -> Markup {
    page(
        "Alerts: refusals and quota hits",
        "/console/alerts",
        csrf,
        None,
        html! {
            p { "Accounts refused at least " (min) " times, or stopped by their extract quota (the most profiles one account may request in a window), in the last " (hours) " hours. Many refusals for one account is what an attempt to harvest CVs looks like." }
            form id="alerts-form" method="get" action="/console/alerts" {
                label for="hours" { "Window (hours)" }
                input id="hours" name="hours" type="number" min="1" max="8784" value=(hours);
                label for="min" { "Refusals at least" }
                input id="min" name="min" type="number" min="1" value=(min);
                button type="submit" { "Show" }
            }
            @if alerts.is_empty() {
                p id="no-alerts" { "No account is over these thresholds. Lower the number of refusals to see accounts with fewer." }
            } @else {
                table id="alerts" {
                    thead { tr { th { "Account" } th { "Role" } th { "Organisation" } th.n { "Refused" } th.n { "Stopped by quota" } th { "Last refusal" } th {} } }
                    tbody {
                        @for a in alerts {
                            tr {
                                td { (a.principal) } td { (a.role) } td { (a.org.as_deref().unwrap_or("-")) }
                                td.n { (a.refused) } td.n.refusals[a.quota_hits > 0] { (a.quota_hits) }
                                td { (ago(a.last, now)) " (" (when(a.last)) ")" }
                                td { a href=(format!("/console/breach?scope=principal&value={}", urlencode(&a.principal))) { "What was disclosed to them?" } }
                            }
                        }
                    }
                }
                p.hint { "To stop an account at once, ask the operator to disable it (" code { "cvvault principal disable ID" } "); every server refuses it from then on." }
            }
        },
    )
}

fn outcome(decision: Outcome) -> Markup {
    match decision {
        Outcome::Allow => html! { span.allow { "allowed" } },
        Outcome::Deny => html! { span.deny { "refused" } },
    }
}

/// A candidate's entries.
pub fn candidate(candidate_id: Option<&str>, entries: Option<&[Entry]>, csrf: &str) -> Markup {
    page(
        "A candidate's record in the trail",
        "/console/candidate",
        csrf,
        None,
        html! {
            form id="candidate-search" method="get" action="/console/candidate" {
                label for="candidate_id" { "Candidate id" }
                input id="candidate_id" name="candidate_id" type="text" size="40" required
                    placeholder="candidate id, like 0b6f2c6e-…" value=[candidate_id];
                button id="search" type="submit" { "Find entries" }
            }
            @if let (Some(id), Some(entries)) = (candidate_id, entries) {
                p {
                    (entries.len()) " entries about candidate " code { (id) } ". "
                    a id="subject-access" href=(format!("/console/candidate/report?candidate_id={}", urlencode(id))) { "Subject access report (GDPR Art. 15), printable" }
                }
                table id="entries" {
                    thead { tr { th { "When" } th { "What" } th { "Who (account)" } th { "Role" } th { "Organisation" } th { "Decision" } th { "Field groups (given, or asked for when refused)" } th { "Purpose" } th { "Detail" } th.n title="The entry's position in the trail: its inclusion can be proved" { "Entry" } } }
                    tbody {
                        @for e in entries {
                            tr {
                                td.t { (trail_time(&e.time)) } td { (action_words(&e.action)) br; code.hint { (e.action) } } td { (e.actor) } td { (e.actor_role) }
                                td { (e.actor_org.as_deref().unwrap_or("-")) } td { (outcome(e.decision)) }
                                td { (e.groups.join(", ")) } td { (e.purpose.as_deref().unwrap_or("-")) } td { (e.note.as_deref().map(note_words).unwrap_or_default()) }
                                td.n { (e.index) }
                            }
                        }
                    }
                }
                p.hint { "Field groups: identity (name, birth year), contact, professional (CV), special (special categories, GDPR Art. 9: nationality, asylum status), control (consents, protection)." }
            } @else {
                p.hint { "The trail never stores who a candidate is, only a code derived from the candidate id: give the id (the caseworker finds it by the agency's reference) to see its entries." }
            }
        },
    )
}

/// The subject access report, printable.
pub fn subject_access(report: &SubjectAccessReport, csrf: &str) -> Markup {
    page(
        "Subject access report (GDPR Art. 15)",
        "/console/candidate",
        csrf,
        None,
        html! {
            p.print-only { "cvvault · subject access report" }
            dl {
                dt { "Candidate" } dd { code { (report.candidate_id) } }
                dt { "Generated" } dd { (report.generated_at) " at the request of " (report.requested_by) }
                dt { "Categories of data held" } dd { (report.groups_held.join(", ")) }
                dt { "Retention" } dd { (report.retention) }
                dt { "Legal hold" } dd { @if report.legal_hold { "yes: kept beyond the normal retention period" } @else { "no" } }
                dt { "Refused requests for this data" } dd { (report.refused_requests) }
            }
            h2 { "Assignments" }
            @if report.assignments.is_empty() { p { "None." } } @else {
                table id="assignments" {
                    thead { tr { th { "Kind" } th { "Organisation" } th { "Purpose" } th { "Opened" } th { "Closed" } } }
                    tbody {
                        @for a in &report.assignments {
                            tr {
                                td { (a["kind"].as_str().unwrap_or("")) } td { (a["org"].as_str().unwrap_or("")) }
                                td { (a["purpose"].as_str().unwrap_or("")) } td { (a["opened_at"].as_str().unwrap_or("")) }
                                td { (a["closed_at"].as_str().unwrap_or("open")) }
                            }
                        }
                    }
                }
            }
            h2 { "Disclosures (" (report.disclosures.len()) ")" }
            @if report.disclosures.is_empty() { p { "None: nobody has received this candidate's data." } } @else {
                table id="disclosures" {
                    thead { tr { th { "When" } th { "Recipient" } th { "Role" } th { "Organisation" } th { "Purpose" } th { "Field groups" } } }
                    tbody {
                        @for d in &report.disclosures {
                            tr { td.t { (trail_time(&d.time)) } td { (d.recipient) } td { (d.recipient_role) } td { (d.recipient_org.as_deref().unwrap_or("-")) } td { (d.purpose.as_deref().unwrap_or("-")) } td { (d.groups.join(", ")) } }
                        }
                    }
                }
            }
            p.no-print { "Print this page (Ctrl+P) to file or send it; the navigation is left out of the print." }
        },
    )
}

/// Legal holds, with the forms to place and release them.
pub fn holds(
    held: &[HeldCandidate],
    csrf: &str,
    flash: Option<&Flash>,
    error: Option<&str>,
) -> Markup {
    page(
        "Legal holds",
        "/console/holds",
        csrf,
        flash,
        html! {
            p { "A candidate under a legal hold is not erased by retention until the hold is released. Place one only on a legal ground (a case number, a court order), never for convenience. Releasing takes effect at once: a candidate who is due is erased by the next retention run (see Retention)." }
            @if let Some(error) = error { p id="error" role="alert" { (error) } }
            form id="place-hold" method="post" action="/console/holds" {
                input type="hidden" name="csrf" value=(csrf);
                input type="hidden" name="action" value="place";
                label for="hold-candidate" { "Candidate id" }
                input id="hold-candidate" name="candidate_id" type="text" size="40" required;
                label for="hold-ground" { "Legal ground" }
                input id="hold-ground" name="ground" type="text" size="40" maxlength="200" required placeholder="e.g. court case 2026/123";
                button id="place" type="submit" { "Place hold" }
            }
            @if held.is_empty() {
                p id="no-holds" { "No candidate is under a legal hold." }
            } @else {
                table id="holds" {
                    thead { tr { th { "Candidate" } th { "Legal ground" } th { "Placed" } th { "By (account)" } th {} } }
                    tbody {
                        @for h in held {
                            tr {
                                td { code { (h.candidate_id) } } td { (h.ground.as_deref().unwrap_or("-")) }
                                td.t { (h.placed_at.as_deref().map(trail_time).unwrap_or_else(|| "-".into())) } td { (h.placed_by.as_deref().unwrap_or("-")) }
                                td {
                                    form.release-hold method="post" action="/console/holds" {
                                        input type="hidden" name="csrf" value=(csrf);
                                        input type="hidden" name="action" value="release";
                                        input type="hidden" name="candidate_id" value=(h.candidate_id.to_string());
                                        button.release type="submit" { "Release" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        },
    )
}

fn days(n: u32) -> String {
    match n {
        0 => "(at the next run)".into(),
        1 => "and one day has passed".into(),
        n => format!("and {n} days have passed"),
    }
}

/// Who the next retention run would erase.
pub fn retention(preview: &RetentionPreview, csrf: &str) -> Markup {
    page(
        "Retention preview",
        "/console/retention",
        csrf,
        None,
        html! {
            p { "Who the next retention run would erase, by which rule, and since when each is due (" (trail_time(&preview.at)) "). Erasing destroys the candidate's key, so no copy of the data, backups included, can be read again." }
            ul.rules {
                li { strong { "closed-grace" } ": when the candidate's last assignment closed " (days(preview.settings.grace_after_close_days)) }
                li { strong { "max-idle" } ": after " (preview.settings.max_idle_days) " days without any open assignment" }
                li { strong { "max-life" } ": " (preview.settings.max_life_days) " days after registration, whatever else" }
            }
            section.cards {
                @for (rule, count) in &preview.erased { div.card { span.figure { (count) } span { "due under " (rule) } } }
                div.card { span.figure { (preview.held) } span { "due but kept by a legal hold" } }
            }
            @if preview.due.is_empty() {
                @if preview.held > 0 {
                    p id="nothing-due" { "Nobody else is due: the next run erases no one, and keeps the " (preview.held) " held (see Legal holds)." }
                } @else {
                    p id="nothing-due" { "Nobody is due: the next run erases no one." }
                }
            } @else {
                table id="due" {
                    thead { tr { th { "Candidate" } th { "Rule" } th { "Due since" } } }
                    tbody {
                        @for d in &preview.due {
                            tr { td { code { (d.candidate_id) } } td { (d.rule) } td.t { (trail_time(&d.due_since)) } }
                        }
                    }
                }
            }
            p.hint { "To keep someone, place a legal hold with its ground before the run. The operator runs retention on a schedule (usually nightly) and sets the periods (policy/retention.toml)." }
        },
    )
}

/// The form of the breach page, as it was filled in.
pub struct BreachForm<'f> {
    /// principal, org or token.
    pub scope: &'f str,
    /// Its value.
    pub value: &'f str,
    /// From (a date).
    pub since: &'f str,
    /// To (a date, included).
    pub until: &'f str,
}

/// The breach scope: the form, and the report when one was asked for.
pub fn breach(
    form: &BreachForm<'_>,
    report: Option<&BreachReport>,
    error: Option<&str>,
    csrf: &str,
) -> Markup {
    let query = format!(
        "scope={}&value={}&since={}&until={}",
        urlencode(form.scope),
        urlencode(form.value),
        urlencode(form.since),
        urlencode(form.until)
    );
    page(
        "Breach scope (GDPR Art. 33)",
        "/console/breach",
        csrf,
        None,
        html! {
            p { "When an account, an organisation or an access token may have been misused: which candidates had which field groups disclosed to it, and when. This is what the notification to the supervisory authority (within 72 hours) and to the people concerned needs." }
            form id="breach-search" method="get" action="/console/breach" {
                label for="scope" { "Whose disclosures" }
                select id="scope" name="scope" {
                    @for (value, label) in [("principal", "an account"), ("org", "an organisation"), ("token", "an access token")] {
                        option value=(value) selected[form.scope == value] { (label) }
                    }
                }
                label for="value" { "id" }
                input id="value" name="value" type="text" size="28" required placeholder="e.g. hr@acme, acme or tok_…" value=(form.value);
                label for="since" { "from" }
                input id="since" name="since" type="date" required value=(form.since);
                label for="until" { "to (included)" }
                input id="until" name="until" type="date" required value=(form.until);
                button id="find" type="submit" { "Find disclosures" }
            }
            @if let Some(error) = error { p id="error" role="alert" { (error) } }
            @if let Some(report) = report {
                section.cards {
                    div.card { span.figure id="breach-candidates" { (report.candidates) } span { "candidates concerned" } }
                    div.card { span.figure { (report.candidates_erased) } span { "of them erased since (no longer identifiable)" } }
                    div.card { span.figure { (report.disclosures_total) } span { "disclosures" } }
                }
                @if let Some((from, to)) = &report.token_valid {
                    p { "The token was valid from " (from) " " (to.as_deref().map(|t| format!("until {t}")).unwrap_or_else(|| "and still is".into())) "." }
                }
                @if !report.per_group.is_empty() {
                    p { "Field groups disclosed: "
                        @for (i, (group, count)) in report.per_group.iter().enumerate() {
                            @if i > 0 { ", " } strong { (group) } " (" (count) " times)"
                        }
                    }
                }
                p {
                    a id="download-csv" href=(format!("/console/breach.csv?{query}")) { "Download CSV" } " · "
                    a id="download-json" href=(format!("/console/breach.json?{query}")) { "Download JSON" }
                }
                @if report.disclosures_total == 0 {
                    p id="no-disclosures" { "No disclosure to " (report.scope) " " (report.scope_value) " in this window." }
                } @else {
                    @if report.disclosures_total > report.disclosures.len() {
                        p.warn { "The first " (report.disclosures.len()) " of " (report.disclosures_total) " disclosures are listed: download the CSV or JSON for all of them." }
                    }
                    table id="disclosures" {
                        thead { tr { th { "When" } th { "Candidate" } th { "Recipient" } th { "Organisation" } th { "Purpose" } th { "Field groups" } th.n title="The entry's position in the trail: its inclusion can be proved" { "Entry" } } }
                        tbody {
                            @for r in &report.disclosures {
                                tr {
                                    td.t { (trail_time(&r.time)) }
                                    td { @match r.candidate_id { Some(id) => code { (id) }, None => span.hint { "erased since" } } }
                                    td { (r.recipient) } td { (r.recipient_org.as_deref().unwrap_or("-")) } td { (r.purpose) }
                                    td { (r.groups.join(", ")) } td.n { (r.entry_index) }
                                }
                            }
                        }
                    }
                }
                @for note in &report.notes { p.hint { (note) } }
            }
        },
    )
}

/// A role's disclosures with the purposes that share a group, conditions and policies
/// folded into one row (the JSON keeps one per purpose).
fn same_terms(
    receives: &[crate::report::processing::Disclosure],
) -> Vec<(&crate::report::processing::Disclosure, String)> {
    type Terms<'d> = (FieldGroup, Vec<&'d str>, Vec<&'d str>, bool);
    fn terms(d: &crate::report::processing::Disclosure) -> Terms<'_> {
        let conditions = d.conditions.iter().map(|c| c.text).collect();
        let policies = d
            .permitted_by
            .iter()
            .map(|p| p.policy_id.as_str())
            .collect();
        (d.group, conditions, policies, d.conditions_are_exact)
    }
    let mut rows: Vec<(&crate::report::processing::Disclosure, Vec<String>)> = Vec::new();
    for d in receives {
        match rows.iter_mut().find(|(first, _)| terms(first) == terms(d)) {
            Some((_, purposes)) => purposes.push(d.purpose.to_string()),
            None => rows.push((d, vec![d.purpose.to_string()])),
        }
    }
    rows.into_iter()
        .map(|(d, purposes)| (d, purposes.join(", ")))
        .collect()
}

/// The record of processing activities, generated from the policy in force.
pub fn processing(record: &RecordOfProcessing, csrf: &str) -> Markup {
    page(
        "Record of processing (GDPR Art. 30)",
        "/console/processing",
        csrf,
        None,
        html! {
            p { "Generated " (record.generated_at) " from the policy files in force, which are the rules the vault enforces on every request: not a document kept beside them." }
            p { "Policy hash: " code id="policy-hash" { (record.policy_hash) } " (every audit entry records the hash of the policy that decided it). " a id="download-record" href="/console/processing.json" { "Download JSON" } }
            @if !record.failed_policy_ids.is_empty() {
                p.bad { "Policies whose evaluation failed (the vault refuses then): " (record.failed_policy_ids.join(", ")) }
            }
            @for role in &record.roles {
                section.role id=(format!("role-{}", role.role)) {
                    h2 { (role.role.to_string()) }
                    p { (role.summary.replace('`', "")) }
                    @if !role.receives.is_empty() {
                        table.receives {
                            thead { tr { th { "Field group" } th { "Purpose" } th { "Only when" } th { "Allowed by" } } }
                            tbody {
                                @for (d, purposes) in same_terms(&role.receives) {
                                    tr {
                                        td { strong { (d.group.to_string()) } } td { (purposes) }
                                        td {
                                            @if d.conditions.is_empty() { "always" }
                                            ul { @for c in &d.conditions { li { (c.text) } } }
                                            @if !d.conditions_are_exact { span.hint { "(one of several combinations: see the JSON)" } }
                                        }
                                        td { @for p in &d.permitted_by { div { code { (p.policy_id) } ": " (p.description) } } }
                                    }
                                }
                            }
                        }
                    }
                    @if !role.withheld.is_empty() {
                        p { "Never receives: " }
                        ul { @for w in &role.withheld { li { (w.sentence) } } }
                    }
                    @if !role.other_actions.is_empty() {
                        p { "May also: " (role.other_actions.iter().map(|a| a.replace('_', " ")).collect::<Vec<_>>().join(", ")) }
                    }
                }
            }
            section id="retention" {
                h2 { "Retention" }
                p { (record.retention.summary.replace('`', "")) }
                ul { @for rule in &record.retention.rules { li { strong { (rule.rule) } ": " (rule.text.replace('`', "")) } } }
            }
            details {
                summary { "How this record was derived" }
                p { (record.method.replace('`', "")) }
                ul { @for f in &record.evaluated_facts { li { code { (f.fact.as_str()) } ": " (f.meaning) } } }
            }
        },
    )
}

/// Percent-encodes a query value.
pub fn urlencode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(byte as char)
            }
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

/// The console's style sheet (served from /console/style.css: the CSP allows no inline style).
pub const STYLE: &str = r#"
:root { --ink: #1d2733; --muted: #5b6775; --line: #d5dbe1; --bg: #f6f7f9; --accent: #1f5f99; --ok: #1f7a3a; --bad: #b3261e; --warn: #8a5a00; }
* { box-sizing: border-box; }
body { margin: 0; font: 16px/1.5 system-ui, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; color: var(--ink); background: var(--bg); }
header { display: flex; flex-wrap: wrap; align-items: center; gap: 0.5rem 1.5rem; padding: 0.6rem 1.5rem; background: #fff; border-bottom: 1px solid var(--line); }
.brand { font-weight: 700; }
nav { display: flex; flex-wrap: wrap; gap: 0.25rem; flex: 1; }
nav a { padding: 0.3rem 0.7rem; border-radius: 4px; color: var(--accent); text-decoration: none; }
nav a.current { background: var(--accent); color: #fff; }
nav a:hover { text-decoration: underline; }
main { max-width: 1200px; margin: 0 auto; padding: 1rem 1.5rem 2rem; }
main.narrow { max-width: 34rem; margin-top: 4rem; background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: 1.5rem 2rem; }
h1 { font-size: 1.6rem; margin: 0.5rem 0 1rem; }
h2 { font-size: 1.2rem; margin: 1.8rem 0 0.6rem; }
footer { text-align: center; color: var(--muted); font-size: 0.85rem; padding: 1rem; }
table { border-collapse: collapse; width: 100%; background: #fff; border: 1px solid var(--line); font-size: 0.92rem; }
th, td { text-align: left; padding: 0.4rem 0.6rem; border-bottom: 1px solid var(--line); vertical-align: top; }
th { background: #eef1f4; font-weight: 600; }
.n { text-align: right; font-variant-numeric: tabular-nums; }
td.t { white-space: nowrap; }
code { font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: 0.88em; }
code.hash { word-break: break-all; }
form { margin: 0.8rem 0; display: flex; flex-wrap: wrap; align-items: center; gap: 0.5rem; }
#login-form { flex-direction: column; align-items: stretch; }
#logout-form, form.release-hold { margin: 0; }
input, select, button { font: inherit; padding: 0.35rem 0.55rem; border: 1px solid #aab4bf; border-radius: 4px; }
button { background: var(--accent); color: #fff; border-color: var(--accent); cursor: pointer; }
button.release, #logout { background: #fff; color: var(--accent); }
.cards { display: flex; flex-wrap: wrap; gap: 1rem; margin: 0.5rem 0 1rem; }
.card { background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: 0.8rem 1.2rem; min-width: 12rem; display: flex; flex-direction: column; }
.figure { font-size: 1.8rem; font-weight: 700; }
.figure.refusals, td.refusals, .deny { color: var(--bad); }
.allow { color: var(--ok); }
.ok { color: var(--ok); font-weight: 600; }
.bad, #error { color: var(--bad); font-weight: 600; }
.warn { color: var(--warn); font-weight: 600; }
#flash { background: #e6f2e9; border: 1px solid #9fc9aa; padding: 0.5rem 0.8rem; border-radius: 4px; }
.hint { color: var(--muted); font-size: 0.9rem; }
svg { background: #fff; border: 1px solid var(--line); max-width: 100%; height: auto; }
svg .allowed, .swatch.allowed { fill: #4f8cc9; background: #4f8cc9; }
svg .refused, .swatch.refused { fill: #d9534f; background: #d9534f; }
svg .grid { stroke: #e3e7eb; }
svg .axis { fill: var(--muted); font-size: 11px; }
.swatch { display: inline-block; width: 0.9em; height: 0.9em; vertical-align: middle; border-radius: 2px; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: 0.3rem 1rem; background: #fff; border: 1px solid var(--line); padding: 1rem; }
dt { font-weight: 600; }
dd { margin: 0; }
pre.record { background: #fff; border: 1px solid var(--line); padding: 1rem; white-space: pre-wrap; font-size: 0.9rem; }
.print-only { display: none; }
@media print {
  header, footer, .no-print, #candidate-search { display: none; }
  .print-only { display: block; font-weight: 700; }
  body { background: #fff; }
  main { max-width: none; padding: 0; }
}
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_escaped_in_pages() {
        let html = problem("<script>", "a \"quoted\" <b>detail</b>", false).into_string();
        assert!(!html.contains("<script>"));
        assert!(html.contains("&lt;script&gt;"));
        assert!(html.contains("&lt;b&gt;detail&lt;/b&gt;"));
    }

    #[test]
    fn query_values_are_percent_encoded() {
        assert_eq!(urlencode("hr@acme&x=1 y"), "hr%40acme%26x%3D1%20y");
    }

    #[test]
    fn times_read_as_dates_and_ages() {
        assert_eq!(when(0), "1970-01-01 00:00 UTC");
        assert_eq!(ago(0, 30), "just now");
        assert_eq!(ago(0, 7_200), "2 h ago");
        assert_eq!(ago(0, 3 * 86_400), "3 days ago");
    }
}
