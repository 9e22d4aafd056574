//! `/console/`: the data-protection officer's web console, served by `cvvault serve`.
//!
//! Server-rendered HTML ([`pages`]), usable without JavaScript, with no external asset and a
//! strict Content-Security-Policy. A DPO logs in with a bearer token, exchanged for a session
//! cookie ([`session`]); every form carries the session's CSRF token. Every page is one vault
//! call, which decides `read_audit` (or the hold actions) and records that decision, so that
//! the console can show nothing the API would not: any other role is refused (403) and sees
//! nothing of it.

pub mod chart;
pub mod pages;
pub mod session;

use axum::extract::rejection::{FormRejection, QueryRejection};
use axum::extract::{ConnectInfo, FromRequestParts, Query, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Form, Router};
use maud::Markup;
use serde::Deserialize;
use zeroize::Zeroizing;

use super::auth::Bearer;
use super::problem::Problem;
use super::AppState;
use crate::error::Error;
use crate::ids::CandidateId;
use crate::vault::BreachQuery;
use session::{cookie, same_secret, set_cookie, LOGIN_COOKIE, SESSION_COOKIE};

/// What the console's responses may load and do: its own style sheet, nothing else; forms
/// post only to the console; no framing.
const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The console's routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/console", get(|| async { redirect("/console/") }))
        .route("/console/", get(health))
        .route("/console/style.css", get(style))
        .route("/console/login", get(login_form).post(login))
        .route("/console/logout", axum::routing::post(logout))
        .route("/console/verify", axum::routing::post(verify))
        .route("/console/alerts", get(alerts))
        .route("/console/candidate", get(candidate))
        .route("/console/candidate/report", get(subject_access))
        .route("/console/holds", get(holds).post(change_hold))
        .route("/console/retention", get(retention))
        .route("/console/breach", get(breach))
        .route("/console/breach.csv", get(breach_csv))
        .route("/console/breach.json", get(breach_json))
        .route("/console/processing", get(processing))
        .route("/console/processing.json", get(processing_json))
}

/// The console's headers on every response it makes.
fn secured(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

fn html(status: StatusCode, markup: Markup) -> Response {
    secured(
        (
            status,
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            markup.into_string(),
        )
            .into_response(),
    )
}

fn redirect(to: &str) -> Response {
    secured((StatusCode::SEE_OTHER, [(header::LOCATION, to.to_owned())]).into_response())
}

fn with_cookie(mut response: Response, cookie: String) -> Response {
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

/// An error as a page: a refusal shows nothing of the console; a session that no longer
/// authenticates goes back to the login.
fn problem_page(error: &Error) -> Response {
    match error {
        Error::Unauthenticated | Error::TokenExpired { .. } | Error::PrincipalDisabled { .. } => {
            with_cookie(
                redirect("/console/login"),
                set_cookie(SESSION_COOKIE, "", "/console", 0, false),
            )
        }
        Error::Denied { .. } => html(
            StatusCode::FORBIDDEN,
            pages::problem(
                "Not for this role",
                "The console is for the data-protection officer. This attempt was refused and recorded in the audit trail.",
                false,
            ),
        ),
        _ => {
            let problem = Problem::from_error(error);
            let status = StatusCode::from_u16(problem.status)
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            html(status, pages::problem(&problem.title, &problem.detail, true))
        }
    }
}

/// A logged-in DPO: the session's bearer token (authenticated again by each call) and its
/// CSRF token. Without a live session, the request goes to the login page.
pub struct Console {
    token: Zeroizing<String>,
    csrf: String,
    peer: Option<std::net::SocketAddr>,
}

/// The client's address, when there is a socket (not in process).
pub struct Peer(Option<std::net::SocketAddr>);

impl FromRequestParts<AppState> for Peer {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &AppState) -> Result<Peer, Self::Rejection> {
        Ok(Peer(
            parts
                .extensions
                .get::<ConnectInfo<std::net::SocketAddr>>()
                .map(|info| info.0),
        ))
    }
}

impl FromRequestParts<AppState> for Console {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Console, Response> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<std::net::SocketAddr>>()
            .map(|info| info.0);
        let now = state.vault().now();
        let found = cookie(&parts.headers, SESSION_COOKIE)
            .map(|id| state.console_sessions().find(id, now))
            .transpose()
            .map_err(|e| problem_page(&e))?
            .flatten();
        match found {
            Some((token, csrf)) => Ok(Console { token, csrf, peer }),
            None => Err(redirect("/console/login")),
        }
    }
}

impl Console {
    /// Runs `f` as the session's principal (its token authenticated again first), off the
    /// async workers.
    async fn run<T, F>(&self, state: &AppState, f: F) -> Result<T, Response>
    where
        F: FnOnce(&crate::vault::Vault, crate::policy::PrincipalFacts) -> crate::Result<T>
            + Send
            + 'static,
        T: Send + 'static,
    {
        Bearer::from_session(self.token.clone(), self.peer)
            .run(state, f)
            .await
            .map_err(|e| problem_page(&e))
    }

    /// The refusal of a form that does not carry this session's CSRF token.
    fn refuse_forged(&self, csrf: &str) -> Option<Response> {
        if same_secret(csrf, &self.csrf) {
            return None;
        }
        Some(html(
            StatusCode::FORBIDDEN,
            pages::problem(
                "This form has expired",
                "The form did not come from this console session (or the session was renewed). Open the page again and send the form from there.",
                true,
            ),
        ))
    }
}

async fn style() -> Response {
    secured(
        (
            [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
            pages::STYLE,
        )
            .into_response(),
    )
}

// ----- login and logout -----

/// `?bye=1` after a logout.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct LoginQuery {
    bye: Option<u8>,
}

async fn login_form(
    State(state): State<AppState>,
    query: Result<Query<LoginQuery>, QueryRejection>,
) -> Response {
    let bye = query.is_ok_and(|q| q.0.bye.is_some());
    let notice = bye.then_some("You are logged out.");
    login_page_with(&state, None, notice, StatusCode::OK)
}

fn login_page(state: &AppState, error: Option<&str>, status: StatusCode) -> Response {
    login_page_with(state, error, None, status)
}

fn login_page_with(
    state: &AppState,
    error: Option<&str>,
    notice: Option<&str>,
    status: StatusCode,
) -> Response {
    let Ok(csrf) = session::random_token() else {
        return problem_page(&Error::io("login", std::io::Error::other("no randomness")));
    };
    with_cookie(
        html(status, pages::login(&csrf, error, notice)),
        set_cookie(
            LOGIN_COOKIE,
            &csrf,
            "/console/login",
            session::LOGIN_SECONDS,
            state.console_secure(),
        ),
    )
}

/// The login form.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginForm {
    token: String,
    csrf: String,
}

async fn login(
    State(state): State<AppState>,
    Peer(peer): Peer,
    headers: HeaderMap,
    form: Result<Form<LoginForm>, FormRejection>,
) -> Response {
    let Ok(Form(form)) = form else {
        return login_page(
            &state,
            Some("The login form was not complete: give your token and try again."),
            StatusCode::UNPROCESSABLE_ENTITY,
        );
    };
    let token = Zeroizing::new(form.token.trim().to_owned());
    drop(form.token);
    // The form must come from a login page this browser opened (login CSRF).
    let bound = cookie(&headers, LOGIN_COOKIE).is_some_and(|c| same_secret(c, &form.csrf));
    if !bound {
        return login_page(
            &state,
            Some("The login form expired or did not come from this browser: try again."),
            StatusCode::FORBIDDEN,
        );
    }
    let checked = Bearer::from_session(token.clone(), peer)
        .run(&state, |vault, principal| {
            vault.supervise(&principal, "console.login")
        })
        .await;
    match checked {
        Ok(()) => {}
        Err(Error::Unauthenticated | Error::TokenExpired { .. }) => {
            return login_page(
                &state,
                Some("That token is not valid: mistyped, expired or revoked. Ask the vault's operator for a new one."),
                StatusCode::UNAUTHORIZED,
            )
        }
        Err(e) => return problem_page(&e),
    }
    let now = state.vault().now();
    match state.console_sessions().start(token, now) {
        Ok(id) => with_cookie(
            with_cookie(
                redirect("/console/"),
                set_cookie(
                    SESSION_COOKIE,
                    &id,
                    "/console",
                    session::SESSION_SECONDS,
                    state.console_secure(),
                ),
            ),
            set_cookie(
                LOGIN_COOKIE,
                "",
                "/console/login",
                0,
                state.console_secure(),
            ),
        ),
        Err(e) => problem_page(&e),
    }
}

/// A form that only carries the CSRF token.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CsrfForm {
    csrf: String,
}

async fn logout(
    State(state): State<AppState>,
    console: Console,
    headers: HeaderMap,
    form: Result<Form<CsrfForm>, FormRejection>,
) -> Response {
    if let Some(refused) =
        console.refuse_forged(form.as_ref().map(|f| f.csrf.as_str()).unwrap_or(""))
    {
        return refused;
    }
    if let Some(id) = cookie(&headers, SESSION_COOKIE) {
        if let Err(e) = state.console_sessions().end(id) {
            return problem_page(&e);
        }
    }
    with_cookie(
        redirect("/console/login?bye=1"),
        set_cookie(SESSION_COOKIE, "", "/console", 0, state.console_secure()),
    )
}

// ----- pages -----

/// `?done=` after a form: a fixed message, never text from the request.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Done {
    done: Option<String>,
    candidate_id: Option<CandidateId>,
}

impl Done {
    fn message(&self) -> Option<String> {
        let who = self
            .candidate_id
            .map(|id| id.to_string())
            .unwrap_or_default();
        Some(match self.done.as_deref()? {
            "verified" => "The trail verified: every entry, MAC and checkpoint checks.".into(),
            "placed" => format!("Legal hold placed on candidate {who}."),
            "released" => format!("Legal hold on candidate {who} released."),
            _ => return None,
        })
    }
}

async fn health(
    State(state): State<AppState>,
    console: Console,
    done: Result<Query<Done>, QueryRejection>,
) -> Response {
    let flash = done.map(|d| d.0).unwrap_or_default().message();
    match console
        .run(&state, |vault, principal| {
            vault.trail_health(&principal, 30)
        })
        .await
    {
        Ok(health) => html(
            StatusCode::OK,
            pages::health(&health, &console.csrf, flash.as_deref()),
        ),
        Err(page) => page,
    }
}

async fn verify(
    State(state): State<AppState>,
    console: Console,
    form: Result<Form<CsrfForm>, FormRejection>,
) -> Response {
    if let Some(refused) =
        console.refuse_forged(form.as_ref().map(|f| f.csrf.as_str()).unwrap_or(""))
    {
        return refused;
    }
    match console
        .run(&state, |vault, principal| {
            vault.audit_verify(&principal, Vec::new(), &|_| {})
        })
        .await
    {
        Ok(_) => redirect("/console/?done=verified"),
        // A trail that does not verify is shown on the health page, which reads the result.
        Err(_) => redirect("/console/"),
    }
}

/// `?hours=24&min=5` of the alerts page.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertsQuery {
    hours: Option<u32>,
    min: Option<u64>,
}

async fn alerts(
    State(state): State<AppState>,
    console: Console,
    query: Result<Query<AlertsQuery>, QueryRejection>,
) -> Response {
    let (hours, min) = match &query {
        Ok(Query(q)) => (
            q.hours.unwrap_or(24).clamp(1, 8_784),
            q.min.unwrap_or(5).max(1),
        ),
        Err(_) => (24, 5),
    };
    match console
        .run(&state, move |vault, principal| {
            Ok((vault.refusal_alerts(&principal, hours, min)?, vault.now()))
        })
        .await
    {
        Ok((alerts, now)) => html(
            StatusCode::OK,
            pages::alerts(&alerts, hours, min, now, &console.csrf),
        ),
        Err(page) => page,
    }
}

/// `?candidate_id=` of the candidate pages.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CandidateQuery {
    candidate_id: Option<String>,
}

fn candidate_id(text: &str) -> crate::Result<CandidateId> {
    text.trim().parse::<CandidateId>().map_err(|_| {
        Error::invalid_input(format!(
            "`{}` is not a candidate id: it looks like 0b6f2c6e-8a4e-4f55-9c43-6f1d2b7a9e10",
            crate::ids::printable(text.trim())
        ))
    })
}

async fn candidate(
    State(state): State<AppState>,
    console: Console,
    query: Result<Query<CandidateQuery>, QueryRejection>,
) -> Response {
    let asked = query
        .ok()
        .and_then(|q| q.0.candidate_id)
        .filter(|t| !t.trim().is_empty());
    let Some(text) = asked else {
        return match console
            .run(&state, |vault, principal| {
                vault.supervise(&principal, "console.candidate")
            })
            .await
        {
            Ok(()) => html(StatusCode::OK, pages::candidate(None, None, &console.csrf)),
            Err(page) => page,
        };
    };
    let shown = text.trim().to_owned();
    match console
        .run(&state, move |vault, principal| {
            vault.audit_search(&principal, &candidate_id(&text)?)
        })
        .await
    {
        Ok(entries) => html(
            StatusCode::OK,
            pages::candidate(Some(&shown), Some(&entries), &console.csrf),
        ),
        Err(page) => page,
    }
}

async fn subject_access(
    State(state): State<AppState>,
    console: Console,
    query: Result<Query<CandidateQuery>, QueryRejection>,
) -> Response {
    let text = query
        .ok()
        .and_then(|q| q.0.candidate_id)
        .unwrap_or_default();
    match console
        .run(&state, move |vault, principal| {
            vault.subject_access(&principal, &candidate_id(&text)?)
        })
        .await
    {
        Ok(report) => html(
            StatusCode::OK,
            pages::subject_access(&report, &console.csrf),
        ),
        Err(page) => page,
    }
}

async fn holds(
    State(state): State<AppState>,
    console: Console,
    done: Result<Query<Done>, QueryRejection>,
) -> Response {
    let flash = done.map(|d| d.0).unwrap_or_default().message();
    holds_page(&state, &console, flash.as_deref(), None, StatusCode::OK).await
}

async fn holds_page(
    state: &AppState,
    console: &Console,
    flash: Option<&str>,
    error: Option<&str>,
    status: StatusCode,
) -> Response {
    match console
        .run(state, |vault, principal| vault.legal_holds(&principal))
        .await
    {
        Ok(held) => html(status, pages::holds(&held, &console.csrf, flash, error)),
        Err(page) => page,
    }
}

/// The forms of the holds page.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HoldForm {
    csrf: String,
    action: String,
    candidate_id: String,
    #[serde(default)]
    ground: String,
}

async fn change_hold(
    State(state): State<AppState>,
    console: Console,
    form: Result<Form<HoldForm>, FormRejection>,
) -> Response {
    let Ok(Form(form)) = form else {
        return holds_page(
            &state,
            &console,
            None,
            Some("The form was not complete: give the candidate id and, to place a hold, its legal ground."),
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    };
    if let Some(refused) = console.refuse_forged(&form.csrf) {
        return refused;
    }
    let place = match form.action.as_str() {
        "place" => true,
        "release" => false,
        _ => {
            return holds_page(
                &state,
                &console,
                None,
                Some("Unknown action: use the page's buttons."),
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
    };
    let id = match candidate_id(&form.candidate_id) {
        Ok(id) => id,
        Err(e) => {
            return holds_page(
                &state,
                &console,
                None,
                Some(&e.to_string()),
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
    };
    let ground = form.ground;
    let changed = console
        .run(&state, move |vault, principal| {
            vault.set_hold(&principal, &id, place, &ground)
        })
        .await;
    match changed {
        Ok(()) => redirect(&format!(
            "/console/holds?done={}&candidate_id={id}",
            if place { "placed" } else { "released" }
        )),
        Err(page) if page.status() == StatusCode::SEE_OTHER => page,
        Err(page) => {
            // The vault's refusal, in the page's words (no candidate, no ground, already held).
            let status = page.status();
            let message = match status {
                StatusCode::NOT_FOUND => "No such candidate in the vault (check the id; an erased candidate cannot be held).".to_owned(),
                StatusCode::UNPROCESSABLE_ENTITY => "Give the legal ground of the hold (1 to 200 characters, e.g. a case number; no personal details).".to_owned(),
                StatusCode::CONFLICT if place => "This candidate is already under a legal hold.".to_owned(),
                StatusCode::CONFLICT => "This candidate is not under a legal hold.".to_owned(),
                _ => return page,
            };
            holds_page(&state, &console, None, Some(&message), status).await
        }
    }
}

async fn retention(State(state): State<AppState>, console: Console) -> Response {
    match console
        .run(&state, |vault, principal| {
            vault.retention_preview(&principal)
        })
        .await
    {
        Ok(preview) => html(StatusCode::OK, pages::retention(&preview, &console.csrf)),
        Err(page) => page,
    }
}

/// The breach form's fields.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct BreachParams {
    scope: Option<String>,
    value: Option<String>,
    since: Option<String>,
    until: Option<String>,
}

impl BreachParams {
    /// The question, when the form was filled in; Err says what is wrong with it.
    fn query(&self) -> Option<crate::Result<BreachQuery>> {
        let value = self
            .value
            .as_deref()
            .map(str::trim)
            .filter(|v| !v.is_empty())?;
        Some(crate::report::breach::query(
            self.scope.as_deref().unwrap_or("principal"),
            value,
            self.since.as_deref().unwrap_or(""),
            self.until.as_deref().unwrap_or(""),
        ))
    }
}

/// Disclosures a breach page lists; the downloads carry every one.
pub const BREACH_PAGE_ROWS: usize = 500;

async fn breach_report(
    state: &AppState,
    console: &Console,
    params: &BreachParams,
    limit: Option<usize>,
) -> Option<Result<crate::report::breach::BreachReport, Response>> {
    let query = params.query()?;
    Some(
        console
            .run(state, move |vault, principal| {
                vault.breach_scope(&principal, &query?, limit)
            })
            .await,
    )
}

async fn breach(
    State(state): State<AppState>,
    console: Console,
    params: Result<Query<BreachParams>, QueryRejection>,
) -> Response {
    let params = params.map(|p| p.0).unwrap_or_default();
    let now = state.vault().now();
    let default_since = pages::when(now - 30 * 86_400);
    let default_until = pages::when(now);
    let form = pages::BreachForm {
        scope: params.scope.as_deref().unwrap_or("principal"),
        value: params.value.as_deref().unwrap_or(""),
        since: params
            .since
            .as_deref()
            .unwrap_or(default_since.get(..10).unwrap_or("")),
        until: params
            .until
            .as_deref()
            .unwrap_or(default_until.get(..10).unwrap_or("")),
    };
    match breach_report(&state, &console, &params, Some(BREACH_PAGE_ROWS)).await {
        None => match console
            .run(&state, |vault, principal| {
                vault.supervise(&principal, "console.breach")
            })
            .await
        {
            Ok(()) => html(
                StatusCode::OK,
                pages::breach(&form, None, None, &console.csrf),
            ),
            Err(page) => page,
        },
        Some(Ok(report)) => html(
            StatusCode::OK,
            pages::breach(&form, Some(&report), None, &console.csrf),
        ),
        Some(Err(page))
            if page.status() == StatusCode::UNPROCESSABLE_ENTITY
                || page.status() == StatusCode::NOT_FOUND =>
        {
            let message = if page.status() == StatusCode::NOT_FOUND {
                "No such token: give the token id that `cvvault token list` shows (it starts with tok_)."
            } else {
                "Check the dates (from must come before to) and the scope."
            };
            html(
                page.status(),
                pages::breach(&form, None, Some(message), &console.csrf),
            )
        }
        Some(Err(page)) => page,
    }
}

fn download(content_type: &str, name: &str, body: String) -> Response {
    secured(
        (
            [
                (header::CONTENT_TYPE, content_type.to_owned()),
                (
                    header::CONTENT_DISPOSITION,
                    format!("attachment; filename=\"{name}\""),
                ),
            ],
            body,
        )
            .into_response(),
    )
}

async fn breach_csv(
    State(state): State<AppState>,
    console: Console,
    params: Result<Query<BreachParams>, QueryRejection>,
) -> Response {
    let params = params.map(|p| p.0).unwrap_or_default();
    match breach_report(&state, &console, &params, None).await {
        Some(Ok(report)) => match report.to_csv() {
            Ok(csv) => download("text/csv; charset=utf-8", "breach-scope.csv", csv),
            Err(e) => problem_page(&e),
        },
        Some(Err(page)) => page,
        None => redirect("/console/breach"),
    }
}

async fn breach_json(
    State(state): State<AppState>,
    console: Console,
    params: Result<Query<BreachParams>, QueryRejection>,
) -> Response {
    let params = params.map(|p| p.0).unwrap_or_default();
    match breach_report(&state, &console, &params, None).await {
        Some(Ok(report)) => download(
            "application/json",
            "breach-scope.json",
            serde_json::to_string_pretty(&report).unwrap_or_default(),
        ),
        Some(Err(page)) => page,
        None => redirect("/console/breach"),
    }
}

async fn processing_record(
    state: &AppState,
    console: &Console,
) -> Result<crate::report::processing::RecordOfProcessing, Response> {
    console
        .run(state, |vault, principal| {
            vault.supervise(&principal, "console.processing")?;
            let retention = crate::settings::Retention::load(&vault.paths().retention_settings())?;
            Ok(crate::report::processing::record_of_processing(
                vault.policy(),
                &retention,
                crate::clock::rfc3339(vault.now()),
            ))
        })
        .await
}

async fn processing(State(state): State<AppState>, console: Console) -> Response {
    match processing_record(&state, &console).await {
        Ok(record) => html(StatusCode::OK, pages::processing(&record, &console.csrf)),
        Err(page) => page,
    }
}

async fn processing_json(State(state): State<AppState>, console: Console) -> Response {
    match processing_record(&state, &console).await {
        Ok(record) => download(
            "application/json",
            "record-of-processing.json",
            serde_json::to_string_pretty(&record).unwrap_or_default(),
        ),
        Err(page) => page,
    }
}
