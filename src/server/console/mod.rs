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
        HeaderValue::from_static("same-origin"),
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
fn problem_page(state: &AppState, error: &Error) -> Response {
    match error {
        Error::Unauthenticated | Error::TokenExpired { .. } | Error::PrincipalDisabled { .. } => {
            with_cookie(
                redirect("/console/login"),
                set_cookie(SESSION_COOKIE, "", "/console", 0, state.console_secure()),
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
            let (status, title, detail) = console_words(error);
            html(status, pages::problem(title, &detail, true))
        }
    }
}

/// An error in the console's words: what went wrong and what to do, without the API's or
/// the command line's vocabulary.
fn console_words(error: &Error) -> (StatusCode, &'static str, String) {
    let status =
        StatusCode::from_u16(error.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    match error {
        Error::NotFound { what: "candidate" } => (
            status,
            "No such candidate",
            "No candidate with this id is in the vault (check the id; an erased candidate is found only through its entries).".into(),
        ),
        Error::NotFound { what: "token" } => (
            status,
            "No such token",
            "No access token has this id: the operator's token list shows each token's id (it starts with tok_).".into(),
        ),
        Error::UnknownPrincipal { principal } => (
            status,
            "No such account",
            format!("No account `{principal}` is registered in the vault: check the id."),
        ),
        Error::UnknownOrg { org } => (
            status,
            "No such organisation",
            format!("No account of an organisation `{org}` is registered in the vault: check the id."),
        ),
        Error::InvalidInput { message } => (status, "Check what you entered", message.clone()),
        Error::TooManyFailedAuthentications { retry_after_secs } => (
            status,
            "Too many failed logins",
            format!("Too many failed logins from this address: wait {retry_after_secs} seconds, then try again."),
        ),
        _ if status.is_server_error() => {
            let problem = Problem::from_error(error);
            (status, "Something went wrong", format!("{} The server's log has the details; try again, or tell the operator if it persists.", problem.title))
        }
        _ => (status, "Not possible", error.to_string()),
    }
}

/// A logged-in DPO: the session's bearer token (authenticated again by each call) and its
/// CSRF token. Without a live session, the request goes to the login page.
pub struct Console {
    session_id: String,
    token: Zeroizing<String>,
    csrf: String,
    flash: Option<session::Flash>,
    cross_site: bool,
    peer: Option<std::net::SocketAddr>,
}

/// Whether a request says it comes from another site (Fetch Metadata, or an `Origin` that is
/// not this host): such a request may not send a console form, whatever cookies it carries.
fn cross_site(headers: &HeaderMap) -> bool {
    let fetch_site = headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|site| site != "same-origin" && site != "none");
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    let foreign_origin = headers
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|origin| {
            // `null` says nothing (an opaque origin); Fetch Metadata above still does.
            let origin_host = origin.split_once("://").map_or(origin, |(_, rest)| rest);
            origin != "null" && host != Some(origin_host)
        });
    fetch_site || foreign_origin
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
        let Some(session_id) = cookie(&parts.headers, SESSION_COOKIE) else {
            return Err(redirect("/console/login"));
        };
        let found = state
            .console_sessions()
            .find(session_id, now)
            .map_err(|e| problem_page(state, &e))?;
        match found {
            Some(found) => Ok(Console {
                session_id: session_id.to_owned(),
                token: found.token,
                csrf: found.csrf,
                flash: found.flash,
                cross_site: cross_site(&parts.headers),
                peer,
            }),
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
        self.try_run(state, f)
            .await
            .map_err(|e| problem_page(state, &e))
    }

    /// [`Console::run`], the error as the vault gave it. A token that no longer
    /// authenticates ends the session here (its token leaves memory with it).
    async fn try_run<T, F>(&self, state: &AppState, f: F) -> crate::Result<T>
    where
        F: FnOnce(&crate::vault::Vault, crate::policy::PrincipalFacts) -> crate::Result<T>
            + Send
            + 'static,
        T: Send + 'static,
    {
        let result = Bearer::from_session(self.token.clone(), self.peer)
            .run(state, f)
            .await;
        if let Err(
            Error::Unauthenticated | Error::TokenExpired { .. } | Error::PrincipalDisabled { .. },
        ) = &result
        {
            let _ = state.console_sessions().end(&self.session_id);
        }
        result
    }

    /// Leaves a message for the next page and sends the browser there.
    fn then_show(&self, state: &AppState, to: &str, text: String, failed: bool) -> Response {
        let flash = session::Flash { text, failed };
        match state.console_sessions().set_flash(&self.session_id, flash) {
            Ok(()) => redirect(to),
            Err(e) => problem_page(state, &e),
        }
    }

    /// [`Console::refuse_forged`] for a form that carries only its CSRF token (a form that
    /// does not parse carries none).
    fn refuse_forged_form(&self, form: &Result<Form<CsrfForm>, FormRejection>) -> Option<Response> {
        self.refuse_forged(form.as_ref().map(|f| f.csrf.as_str()).unwrap_or(""))
    }

    /// The refusal of a form that does not carry this session's CSRF token, or that comes
    /// from another site.
    fn refuse_forged(&self, csrf: &str) -> Option<Response> {
        if same_secret(csrf, &self.csrf) && !self.cross_site {
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
        return problem_page(
            state,
            &Error::io("login", std::io::Error::other("no randomness")),
        );
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
    token: Zeroizing<String>,
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
    // The form must come from a login page this browser opened (login CSRF), on this site.
    let bound = cookie(&headers, LOGIN_COOKIE).is_some_and(|c| same_secret(c, &form.csrf))
        && !cross_site(&headers);
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
        Err(Error::PrincipalDisabled { .. }) => {
            return login_page(
                &state,
                Some("This account is disabled: the vault's operator can enable it again."),
                StatusCode::FORBIDDEN,
            )
        }
        Err(e @ Error::TooManyFailedAuthentications { .. }) => {
            let (status, _, detail) = console_words(&e);
            return login_page(&state, Some(&detail), status);
        }
        Err(e) => return problem_page(&state, &e),
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
        Err(e) => problem_page(&state, &e),
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
    if let Some(refused) = console.refuse_forged_form(&form) {
        return refused;
    }
    if let Some(id) = cookie(&headers, SESSION_COOKIE) {
        if let Err(e) = state.console_sessions().end(id) {
            return problem_page(&state, &e);
        }
    }
    with_cookie(
        redirect("/console/login?bye=1"),
        set_cookie(SESSION_COOKIE, "", "/console", 0, state.console_secure()),
    )
}

// ----- pages -----

async fn health(State(state): State<AppState>, console: Console) -> Response {
    match console
        .run(&state, |vault, principal| {
            vault.trail_health(&principal, 30)
        })
        .await
    {
        Ok(health) => html(
            StatusCode::OK,
            pages::health(&health, &console.csrf, console.flash.as_ref()),
        ),
        Err(page) => page,
    }
}

async fn verify(
    State(state): State<AppState>,
    console: Console,
    form: Result<Form<CsrfForm>, FormRejection>,
) -> Response {
    if let Some(refused) = console.refuse_forged_form(&form) {
        return refused;
    }
    match console
        .try_run(&state, |vault, principal| {
            vault.audit_verify(&principal, Vec::new(), &|_| {})
        })
        .await
    {
        Ok(report) => console.then_show(
            &state,
            "/console/",
            format!(
                "The trail verified: {} entries, every entry's checksum and every signed checkpoint check.",
                report.entries
            ),
            false,
        ),
        Err(Error::AuditTampered(finding)) => console.then_show(
            &state,
            "/console/",
            format!("The trail does NOT verify: {finding}"),
            true,
        ),
        Err(e @ (Error::Denied { .. } | Error::Unauthenticated | Error::TokenExpired { .. } | Error::PrincipalDisabled { .. })) => problem_page(&state, &e),
        Err(e) => {
            let (_, _, detail) = console_words(&e);
            console.then_show(
                &state,
                "/console/",
                format!("The verification could not be completed: {detail}"),
                true,
            )
        }
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

/// The candidate id a page was asked about; one that does not parse is still a look at the
/// trail, on the record, before it is refused.
fn asked_candidate(
    vault: &crate::vault::Vault,
    principal: &crate::policy::PrincipalFacts,
    text: &str,
) -> crate::Result<CandidateId> {
    candidate_id(text).or_else(|e| {
        vault.supervise(principal, "console.candidate")?;
        Err(e)
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
            vault.audit_search(&principal, &asked_candidate(vault, &principal, &text)?)
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
            vault.subject_access(&principal, &asked_candidate(vault, &principal, &text)?)
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

async fn holds(State(state): State<AppState>, console: Console) -> Response {
    holds_page(&state, &console, None, StatusCode::OK).await
}

async fn holds_page(
    state: &AppState,
    console: &Console,
    error: Option<&str>,
    status: StatusCode,
) -> Response {
    match console
        .run(state, |vault, principal| vault.legal_holds(&principal))
        .await
    {
        Ok(held) => html(
            status,
            pages::holds(&held, &console.csrf, console.flash.as_ref(), error),
        ),
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
                Some(&e.to_string()),
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
    };
    let ground = form.ground;
    let changed = console
        .try_run(&state, move |vault, principal| {
            vault.set_hold(&principal, &id, place, &ground)
        })
        .await;
    // The vault's refusal, in the page's words (no candidate, no ground, already held).
    let message = match &changed {
        Ok(()) => {
            let text = if place {
                format!("Legal hold placed on candidate {id}.")
            } else {
                format!("Legal hold on candidate {id} released: retention applies to it again.")
            };
            return console.then_show(&state, "/console/holds", text, false);
        }
        Err(Error::NotFound { .. }) => {
            "No such candidate in the vault (check the id; an erased candidate cannot be held).".to_owned()
        }
        Err(Error::BadReason { .. }) => {
            "Give the legal ground of the hold (1 to 200 characters, e.g. a case number; no personal details).".to_owned()
        }
        Err(Error::AlreadyHeld { .. }) => "This candidate is already under a legal hold.".to_owned(),
        Err(Error::NotHeld) => "This candidate is not under a legal hold.".to_owned(),
        Err(e) => return problem_page(&state, e),
    };
    let status = changed
        .err()
        .and_then(|e| StatusCode::from_u16(e.http_status()).ok())
        .unwrap_or(StatusCode::UNPROCESSABLE_ENTITY);
    holds_page(&state, &console, Some(&message), status).await
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
) -> Option<crate::Result<crate::report::breach::BreachReport>> {
    let query = params.query()?;
    Some(
        console
            .try_run(state, move |vault, principal| match query {
                Ok(query) => vault.breach_scope(&principal, &query, limit, &|_| {}),
                // A question that does not parse is still a look at the trail, on the record.
                Err(e) => {
                    vault.supervise(&principal, "report.breach")?;
                    Err(e)
                }
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
        Some(Err(
            e @ (Error::InvalidInput { .. }
            | Error::NotFound { .. }
            | Error::UnknownPrincipal { .. }
            | Error::UnknownOrg { .. }),
        )) => {
            let (status, _, detail) = console_words(&e);
            html(
                status,
                pages::breach(&form, None, Some(&detail), &console.csrf),
            )
        }
        Some(Err(e)) => problem_page(&state, &e),
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

fn json_download(state: &AppState, name: &str, value: &impl serde::Serialize) -> Response {
    match serde_json::to_string_pretty(value) {
        Ok(text) => download("application/json", name, text),
        Err(_) => problem_page(
            state,
            &Error::Internal("the report could not be encoded as JSON"),
        ),
    }
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
            Err(e) => problem_page(&state, &e),
        },
        Some(Err(e)) => problem_page(&state, &e),
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
        Some(Ok(report)) => json_download(&state, "breach-scope.json", &report),
        Some(Err(e)) => problem_page(&state, &e),
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
        Ok(record) => json_download(&state, "record-of-processing.json", &record),
        Err(page) => page,
    }
}
