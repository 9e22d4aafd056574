//! The handlers: parse the request once, call one vault use case off the async workers, render
//! the typed result. No policy, crypto or SQL here (DESIGN.md, "The one data path").

use axum::body::{Body, Bytes};
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{FromRequest, Path, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::auth::Bearer;
use super::openapi::{AuthErrors, CandidateErrors};
use super::problem::Problem;
use super::quota::Admission;
use super::{blocking, AppState};
use crate::clock::parse_time;
use crate::error::{Error, Result};
use crate::ids::{AssignmentId, CandidateId, OrgId};
use crate::vault::{Delivery, ExtractRefusal, OpenAssignment};
use crate::vocabulary::{AssignmentKind, Purpose};

/// The media type of an extract encrypted to the principal's age recipient.
pub const AGE: &str = crate::vault::AGE_MEDIA_TYPE;
/// JSON lines: one audit entry per line, exactly the bytes that were hashed.
pub const NDJSON: &str = "application/x-ndjson";

// ----- request and response bodies -----

/// `POST /v1/assignments`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "candidate_id": "0b6f2c6e-8a4e-4f55-9c43-6f1d2b7a9e10",
    "org": "nystart-coaching",
    "kind": "coaching",
    "purpose": "coaching"
}))]
pub struct OpenAssignmentRequest {
    /// The candidate.
    #[schema(value_type = String, format = Uuid)]
    pub candidate_id: CandidateId,
    /// The provider's or employer's organisation (it must have a registered principal).
    #[schema(value_type = String)]
    pub org: OrgId,
    /// `coaching` (a provider) or `matching` (an employer).
    #[schema(value_type = String, example = "coaching")]
    pub kind: AssignmentKind,
    /// The declared purpose, e.g. `coaching` or `recruitment`.
    #[schema(value_type = String, example = "coaching")]
    pub purpose: Purpose,
}

/// A stated reason: closing an assignment, placing a legal hold. No personal details.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"reason": "coaching completed"}))]
pub struct ReasonRequest {
    /// 1 to 200 characters.
    pub reason: String,
}

/// `201` after registering a candidate.
#[derive(Debug, Serialize, ToSchema)]
pub struct CandidateCreated {
    /// The new candidate's id.
    #[schema(value_type = String, format = Uuid)]
    pub candidate_id: CandidateId,
}

/// `201` after opening an assignment.
#[derive(Debug, Serialize, ToSchema)]
pub struct AssignmentOpened {
    /// The new assignment's id.
    #[schema(value_type = String, format = Uuid)]
    pub assignment_id: AssignmentId,
}

/// `200` after closing an assignment.
#[derive(Debug, Serialize, ToSchema)]
pub struct AssignmentClosed {
    /// The assignment closed.
    #[schema(value_type = String, format = Uuid)]
    pub closed: AssignmentId,
}

/// `200` after placing or releasing a legal hold.
#[derive(Debug, Serialize, ToSchema)]
pub struct LegalHold {
    /// The candidate.
    #[schema(value_type = String, format = Uuid)]
    pub candidate_id: CandidateId,
    /// Whether a hold is now in place.
    pub legal_hold: bool,
}

/// `?purpose=` of an extract.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ExtractQuery {
    /// The declared purpose (GDPR Art. 5(1)(b)), e.g. `coaching` or `recruitment`.
    #[param(example = "recruitment")]
    pub purpose: String,
}

/// `?since=&until=` of an audit export.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ExportQuery {
    /// Only entries at or after this time (RFC 3339 or `YYYY-MM-DD`).
    pub since: Option<String>,
    /// Only entries before this time.
    pub until: Option<String>,
}

/// `/livez` and `/readyz`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// `ok`, `ready` or `not ready`.
    pub status: String,
    /// Per check: `ok`, or what failed (readiness only).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub checks: Option<crate::vault::Readiness>,
}

// ----- extractors and helpers -----

/// A JSON request body parsed strictly: unknown fields are refused and errors name the JSON
/// path (`$.candidate_id`). A body over the limit is refused at once (413); a parse error is
/// kept, and reported only once the request's token has been checked.
pub struct JsonBody<T>(pub Result<T>);

impl<T: DeserializeOwned> FromRequest<AppState> for JsonBody<T> {
    type Rejection = Response;

    async fn from_request(
        request: Request,
        state: &AppState,
    ) -> std::result::Result<Self, Response> {
        let json = declares_json(&request);
        let bytes = Bytes::from_request(request, state).await.map_err(|r| {
            Problem::from_body_rejection(&r, state.max_body_bytes()).into_response()
        })?;
        Ok(JsonBody(json.and_then(|()| parse_json(&bytes))))
    }
}

/// A JSON body must say so: `Content-Type: application/json` (parameters such as a charset
/// allowed). Anything else is [`Error::UnsupportedMediaType`] (415), reported, like a parse
/// error, only once the request's token has been checked.
fn declares_json(request: &Request) -> Result<()> {
    let declared = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase());
    match declared.as_deref() {
        Some("application/json") => Ok(()),
        _ => Err(Error::UnsupportedMediaType {
            expected: "application/json",
        }),
    }
}

/// A raw request body (a profile document, JSON), under the same limit.
pub struct DocumentBody(pub Result<Bytes>);

impl FromRequest<AppState> for DocumentBody {
    type Rejection = Response;

    async fn from_request(
        request: Request,
        state: &AppState,
    ) -> std::result::Result<Self, Response> {
        let json = declares_json(&request);
        Bytes::from_request(request, state)
            .await
            .map(|bytes| DocumentBody(json.map(|()| bytes)))
            .map_err(|r| Problem::from_body_rejection(&r, state.max_body_bytes()).into_response())
    }
}

/// Parses JSON into `T`, naming the path of the first field that does not fit.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value: T = serde_path_to_error::deserialize(&mut deserializer).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let at = if path == "." {
            "$".to_owned()
        } else {
            format!("$.{path}")
        };
        if inner.is_data() {
            Error::invalid_input(format!("invalid request body at {at}: {inner}"))
        } else {
            Error::invalid_input(format!("the request body is not valid JSON: {inner}"))
        }
    })?;
    deserializer
        .end()
        .map_err(|e| Error::invalid_input(format!("the request body is not valid JSON: {e}")))?;
    Ok(value)
}

fn path_text(path: std::result::Result<Path<String>, PathRejection>) -> Result<String> {
    path.map(|Path(text)| text)
        .map_err(|r| Error::invalid_input(format!("the path is not valid: {}", r.body_text())))
}

fn candidate_param(path: std::result::Result<Path<String>, PathRejection>) -> Result<CandidateId> {
    path_text(path)?.parse()
}

fn query<T>(query: std::result::Result<Query<T>, QueryRejection>) -> Result<T> {
    query.map(|Query(q)| q).map_err(|r| {
        Error::invalid_input(format!(
            "the query string is not valid: {}",
            r.body_text()
                .trim_start_matches("Failed to deserialize query string: ")
        ))
    })
}

fn json_response<T: Serialize>(status: StatusCode, value: &T) -> Result<Response> {
    let body = serde_json::to_vec(value).map_err(|_| Error::Corrupt {
        what: "a response could not be encoded as JSON",
    })?;
    Ok(bytes_response(status, "application/json", body))
}

fn bytes_response(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Body>,
) -> Response {
    let mut response = (status, body.into()).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

/// Whether the client asked for an age-encrypted extract.
fn accepts_age(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|range| {
            range
                .split(';')
                .next()
                .is_some_and(|m| m.trim().eq_ignore_ascii_case(AGE))
        })
}

// ----- candidates -----

/// Register a candidate from a profile document (cvvault JSON or JSON Resume).
#[utoipa::path(
    post,
    path = "/v1/candidates",
    tag = "candidates",
    request_body(
        content = Object,
        content_type = "application/json",
        description = "A cvvault profile (groups identity, contact, professional, special, control; unknown fields refused) or a JSON Resume document",
        example = json!({
            "identity": {"name": "Anna Lindqvist", "birth_year": 1990},
            "contact": {"email": "anna@example.org"},
            "professional": {"headline": "Carpenter", "skills": [{"name": "Formwork"}]},
            "control": {"protected": false, "consents": {"employer_contact": true}}
        })
    ),
    responses(
        (status = 201, description = "Registered", body = CandidateCreated),
        (status = 403, description = "The principal may not register candidates (caseworkers may)", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "The body is over limits.http.max_body_bytes", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Not a valid profile: the problem names the JSON path", body = Problem, content_type = "application/problem+json"),
        AuthErrors
    ),
    security(("bearer" = []))
)]
pub async fn register_candidate(
    State(state): State<AppState>,
    bearer: Bearer,
    DocumentBody(document): DocumentBody,
) -> Result<Response> {
    let candidate_id = bearer
        .run(&state, move |vault, principal| {
            vault.register_document(&principal, &document?)
        })
        .await?;
    json_response(StatusCode::CREATED, &CandidateCreated { candidate_id })
}

/// Request an extract: exactly the field groups policy permits, for a declared purpose.
///
/// Every attempt counts against the principal's quota and is audited before anything is
/// released. With `Accept: application/age` the extract is encrypted to the principal's age
/// recipient (keys/recipients/<principal>.txt).
#[utoipa::path(
    get,
    path = "/v1/candidates/{candidate_id}/extract",
    tag = "candidates",
    params(
        ("candidate_id" = String, Path, format = Uuid, description = "Candidate id"),
        ExtractQuery
    ),
    responses(
        (status = 200, description = "The extract: `{\"candidate_id\":..., \"groups\":{...}}` in JSON, or an age file", content(
            (Object = "application/json"),
            (Vec<u8> = "application/age")
        )),
        (status = 403, description = "Refused by policy (e.g. a DPO, a wrong purpose)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such candidate, or (for employers and providers) not theirs: the same answer", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A malformed id or purpose, or no age recipient registered", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Extract quota used up (see Retry-After); audited", body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u64, description = "Seconds until the quota window frees a slot"))),
        AuthErrors
    ),
    security(("bearer" = []))
)]
pub async fn extract(
    State(state): State<AppState>,
    bearer: Bearer,
    path: std::result::Result<Path<String>, PathRejection>,
    query_string: std::result::Result<Query<ExtractQuery>, QueryRejection>,
    headers: HeaderMap,
) -> Result<Response> {
    let candidate = candidate_param(path);
    let purpose = query(query_string).and_then(|q| q.purpose.parse::<Purpose>());
    let encrypt = accepts_age(&headers);
    let shared = state.clone();
    let body = bearer
        .run(&state, move |vault, principal| {
            // INVARIANT: every authenticated attempt is counted before anything else is
            // looked at, and audited whatever its outcome.
            if let Admission::Refuse { retry_after_secs } =
                shared.quota().admit(&principal.principal_id)
            {
                shared.metrics().quota_refused();
                let purpose = purpose.ok();
                vault.refuse_extract(
                    &principal,
                    candidate.ok(),
                    purpose.as_ref(),
                    ExtractRefusal::QuotaExceeded,
                )?;
                return Err(Error::QuotaExceeded {
                    principal: principal.principal_id.to_string(),
                    action: "extract".into(),
                    retry_after_secs,
                });
            }
            let refuse = |id: Option<CandidateId>, purpose: Option<Purpose>, error: Error| {
                vault.refuse_extract(
                    &principal,
                    id,
                    purpose.as_ref(),
                    ExtractRefusal::InvalidRequest,
                )?;
                Err(error)
            };
            let (candidate_id, purpose) = match (candidate, purpose) {
                (Ok(id), Ok(purpose)) => (id, purpose),
                (Ok(id), Err(error)) => return refuse(Some(id), None, error),
                (Err(error), purpose) => return refuse(None, purpose.ok(), error),
            };
            let delivery = if encrypt {
                Delivery::AgeToPrincipal
            } else {
                Delivery::Json
            };
            vault.deliver_extract(&principal, &candidate_id, &purpose, delivery)
        })
        .await?;
    Ok(bytes_response(
        StatusCode::OK,
        body.media_type,
        body.bytes.to_vec(),
    ))
}

/// Erase a candidate now (crypto-shredding), e.g. on the candidate's request.
#[utoipa::path(
    delete,
    path = "/v1/candidates/{candidate_id}",
    tag = "candidates",
    params(("candidate_id" = String, Path, format = Uuid, description = "Candidate id")),
    responses(
        (status = 204, description = "Erased: key and ciphertexts deleted in one transaction with the audit entry"),
        (status = 403, description = "The principal may not erase candidates (caseworkers may; employers and providers get 404)", body = Problem, content_type = "application/problem+json"),
        AuthErrors,
        CandidateErrors
    ),
    security(("bearer" = []))
)]
pub async fn erase_candidate(
    State(state): State<AppState>,
    bearer: Bearer,
    path: std::result::Result<Path<String>, PathRejection>,
) -> Result<Response> {
    let candidate = candidate_param(path);
    bearer
        .run(&state, move |vault, principal| {
            vault.erase(&principal, &candidate?)
        })
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// List a candidate's assignments (caseworkers, DPOs, the candidate).
#[utoipa::path(
    get,
    path = "/v1/candidates/{candidate_id}/assignments",
    tag = "assignments",
    params(("candidate_id" = String, Path, format = Uuid, description = "Candidate id")),
    responses(
        (status = 200, description = "The assignments, open and closed", body = Vec<Object>),
        (status = 403, description = "The principal may not list this candidate's assignments", body = Problem, content_type = "application/problem+json"),
        AuthErrors,
        CandidateErrors
    ),
    security(("bearer" = []))
)]
pub async fn list_assignments(
    State(state): State<AppState>,
    bearer: Bearer,
    path: std::result::Result<Path<String>, PathRejection>,
) -> Result<Response> {
    let candidate = candidate_param(path);
    let list = bearer
        .run(&state, move |vault, principal| {
            vault.assignments(&principal, &candidate?)
        })
        .await?;
    json_response(StatusCode::OK, &list)
}

/// Place a legal hold (DPO): retention skips the candidate until it is released.
#[utoipa::path(
    put,
    path = "/v1/candidates/{candidate_id}/legal-hold",
    tag = "audit",
    params(("candidate_id" = String, Path, format = Uuid, description = "Candidate id")),
    request_body(content = ReasonRequest, description = "The legal ground (e.g. a case reference); no personal details"),
    responses(
        (status = 200, description = "The hold is in place", body = LegalHold),
        (status = 403, description = "Only a DPO may place a legal hold", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such candidate; for an employer or a provider also any refusal about a candidate (the same body: whether an id exists, or is protected, is not theirs to learn)", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "The body is over limits.http.max_body_bytes", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Not a candidate id, or an invalid body (the problem names the JSON path)", body = Problem, content_type = "application/problem+json"),
        AuthErrors
    ),
    security(("bearer" = []))
)]
pub async fn place_hold(
    State(state): State<AppState>,
    bearer: Bearer,
    path: std::result::Result<Path<String>, PathRejection>,
    JsonBody(body): JsonBody<ReasonRequest>,
) -> Result<Response> {
    let candidate = candidate_param(path);
    let candidate_id = bearer
        .run(&state, move |vault, principal| {
            let candidate_id = candidate?;
            let reason = body?.reason;
            vault.set_hold(&principal, &candidate_id, true, &reason)?;
            Ok(candidate_id)
        })
        .await?;
    json_response(
        StatusCode::OK,
        &LegalHold {
            candidate_id,
            legal_hold: true,
        },
    )
}

/// Release a legal hold (DPO).
#[utoipa::path(
    delete,
    path = "/v1/candidates/{candidate_id}/legal-hold",
    tag = "audit",
    params(("candidate_id" = String, Path, format = Uuid, description = "Candidate id")),
    responses(
        (status = 200, description = "No hold is in place now", body = LegalHold),
        (status = 403, description = "Only a DPO may release a legal hold", body = Problem, content_type = "application/problem+json"),
        AuthErrors,
        CandidateErrors
    ),
    security(("bearer" = []))
)]
pub async fn release_hold(
    State(state): State<AppState>,
    bearer: Bearer,
    path: std::result::Result<Path<String>, PathRejection>,
) -> Result<Response> {
    let candidate = candidate_param(path);
    let candidate_id = bearer
        .run(&state, move |vault, principal| {
            let candidate_id = candidate?;
            vault.set_hold(&principal, &candidate_id, false, "")?;
            Ok(candidate_id)
        })
        .await?;
    json_response(
        StatusCode::OK,
        &LegalHold {
            candidate_id,
            legal_hold: false,
        },
    )
}

/// The GDPR Art. 15 report: what is held, every disclosure, refused requests, retention.
/// The candidate's own report also holds the data; a DPO's lists categories only.
#[utoipa::path(
    get,
    path = "/v1/candidates/{candidate_id}/subject-access",
    tag = "audit",
    params(("candidate_id" = String, Path, format = Uuid, description = "Candidate id")),
    responses(
        (status = 200, description = "The report", body = Object),
        (status = 403, description = "Only the candidate and a DPO get the report", body = Problem, content_type = "application/problem+json"),
        AuthErrors,
        CandidateErrors
    ),
    security(("bearer" = []))
)]
pub async fn subject_access(
    State(state): State<AppState>,
    bearer: Bearer,
    path: std::result::Result<Path<String>, PathRejection>,
) -> Result<Response> {
    let candidate = candidate_param(path);
    let report = bearer
        .run(&state, move |vault, principal| {
            vault.subject_access(&principal, &candidate?)
        })
        .await?;
    json_response(StatusCode::OK, &report)
}

/// A proof of erasure (DPO): the erase entry, its inclusion proof and a signed checkpoint.
#[utoipa::path(
    get,
    path = "/v1/candidates/{candidate_id}/erasure-receipt",
    tag = "audit",
    params(("candidate_id" = String, Path, format = Uuid, description = "Candidate id")),
    responses(
        (status = 200, description = "The receipt (cvvault-erasure-receipt/v1)", body = Object),
        (status = 403, description = "Only a DPO reads the audit trail", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "The trail holds no erasure of this candidate; for an employer, a provider or another candidate's subject also the refusal (the same body as for an unknown id)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Not a candidate id", body = Problem, content_type = "application/problem+json"),
        AuthErrors
    ),
    security(("bearer" = []))
)]
pub async fn erasure_receipt(
    State(state): State<AppState>,
    bearer: Bearer,
    path: std::result::Result<Path<String>, PathRejection>,
) -> Result<Response> {
    let candidate = candidate_param(path);
    let receipt = bearer
        .run(&state, move |vault, principal| {
            vault.erasure_receipt(&principal, &candidate?)
        })
        .await?;
    json_response(StatusCode::OK, &receipt)
}

/// The audit entries about one candidate, found through its HMAC pseudonym (DPO).
#[utoipa::path(
    get,
    path = "/v1/candidates/{candidate_id}/audit-entries",
    tag = "audit",
    params(("candidate_id" = String, Path, format = Uuid, description = "Candidate id")),
    responses(
        (status = 200, description = "`{\"entries\": [...]}` in log order", body = Object),
        (status = 403, description = "Only a DPO reads the audit trail", body = Problem, content_type = "application/problem+json"),
        AuthErrors,
        CandidateErrors
    ),
    security(("bearer" = []))
)]
pub async fn audit_search(
    State(state): State<AppState>,
    bearer: Bearer,
    path: std::result::Result<Path<String>, PathRejection>,
) -> Result<Response> {
    let candidate = candidate_param(path);
    let entries = bearer
        .run(&state, move |vault, principal| {
            vault.audit_search(&principal, &candidate?)
        })
        .await?;
    json_response(StatusCode::OK, &serde_json::json!({ "entries": entries }))
}

// ----- assignments -----

/// Open an assignment linking an organisation to a candidate, for a purpose.
#[utoipa::path(
    post,
    path = "/v1/assignments",
    tag = "assignments",
    request_body = OpenAssignmentRequest,
    responses(
        (status = 201, description = "Opened", body = AssignmentOpened),
        (status = 403, description = "Refused by policy (not a caseworker; matching a protected candidate)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such candidate; for an employer or a provider also any refusal about a candidate (the same body: whether an id exists, or is protected, is not theirs to learn)", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "The body is over limits.http.max_body_bytes", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "An invalid body (the problem names the JSON path) or an unknown organisation", body = Problem, content_type = "application/problem+json"),
        AuthErrors
    ),
    security(("bearer" = []))
)]
pub async fn open_assignment(
    State(state): State<AppState>,
    bearer: Bearer,
    JsonBody(body): JsonBody<OpenAssignmentRequest>,
) -> Result<Response> {
    let assignment_id = bearer
        .run(&state, move |vault, principal| {
            let body = body?;
            let request = OpenAssignment {
                candidate_id: body.candidate_id,
                org: body.org,
                kind: body.kind,
                purpose: body.purpose,
            };
            vault.open_assignment(&principal, request)
        })
        .await?;
    json_response(StatusCode::CREATED, &AssignmentOpened { assignment_id })
}

/// Close an open assignment. When a candidate's last one closes, retention erases them
/// after the grace period.
#[utoipa::path(
    post,
    path = "/v1/assignments/{assignment_id}/close",
    tag = "assignments",
    params(("assignment_id" = String, Path, format = Uuid, description = "Assignment id")),
    request_body(content = ReasonRequest, description = "Why it ends, e.g. `placed in work`; no personal details"),
    responses(
        (status = 200, description = "Closed", body = AssignmentClosed),
        (status = 403, description = "The principal may not close assignments (caseworkers may)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such assignment; for an employer or a provider also any refusal (the same body)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Already closed", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "The body is over limits.http.max_body_bytes", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Not an assignment id, or an invalid body", body = Problem, content_type = "application/problem+json"),
        AuthErrors
    ),
    security(("bearer" = []))
)]
pub async fn close_assignment(
    State(state): State<AppState>,
    bearer: Bearer,
    path: std::result::Result<Path<String>, PathRejection>,
    JsonBody(body): JsonBody<ReasonRequest>,
) -> Result<Response> {
    let assignment = path_text(path).and_then(|text| text.parse::<AssignmentId>());
    let assignment_id = bearer
        .run(&state, move |vault, principal| {
            let assignment_id = assignment?;
            let reason = body?.reason;
            vault.close_assignment(&principal, &assignment_id, &reason)?;
            Ok(assignment_id)
        })
        .await?;
    json_response(
        StatusCode::OK,
        &AssignmentClosed {
            closed: assignment_id,
        },
    )
}

// ----- audit -----

fn export_time(text: Option<String>) -> Result<Option<i64>> {
    text.map(|t| {
        parse_time(&t).ok_or_else(|| {
            Error::invalid_input(format!(
                "`{}` is not a time: use RFC 3339 (2026-11-23T08:00:00Z) or a date (2026-11-23)",
                crate::ids::printable(&t)
            ))
        })
    })
    .transpose()
}

/// Export audit entries as JSON lines, exactly the bytes that were hashed (DPO).
#[utoipa::path(
    get,
    path = "/v1/audit/entries",
    tag = "audit",
    params(ExportQuery),
    responses(
        (status = 200, description = "One canonical entry per line, in log order", body = String, content_type = "application/x-ndjson"),
        (status = 403, description = "Only a DPO reads the audit trail", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A time that does not parse", body = Problem, content_type = "application/problem+json"),
        AuthErrors
    ),
    security(("bearer" = []))
)]
pub async fn audit_export(
    State(state): State<AppState>,
    bearer: Bearer,
    query_string: std::result::Result<Query<ExportQuery>, QueryRejection>,
) -> Result<Response> {
    let window = query(query_string);
    // Lines flow through a small channel, so a long trail is never held in memory whole.
    let (sender, mut receiver) = tokio::sync::mpsc::channel::<Result<Bytes>>(8);
    let producer = sender.clone();
    tokio::spawn(async move {
        let exported = bearer
            .run(&state, move |vault, principal| {
                let window = window?;
                let (since, until) = (export_time(window.since)?, export_time(window.until)?);
                let mut chunk = Vec::with_capacity(64 * 1024);
                vault.audit_export(&principal, since, until, &mut |line| {
                    chunk.extend_from_slice(line.as_bytes());
                    chunk.push(b'\n');
                    if chunk.len() >= 60 * 1024 {
                        let full = std::mem::replace(&mut chunk, Vec::with_capacity(64 * 1024));
                        producer
                            .blocking_send(Ok(Bytes::from(full)))
                            .map_err(|_| Error::invalid_input("the client went away"))?;
                    }
                    Ok(())
                })?;
                if !chunk.is_empty() {
                    let _ = producer.blocking_send(Ok(Bytes::from(chunk)));
                }
                Ok(())
            })
            .await;
        if let Err(e) = exported {
            let _ = sender.send(Err(e)).await;
        }
    });
    // The first message tells whether the export was authorized (a refusal comes first).
    let first = match receiver.recv().await {
        None => return Ok(bytes_response(StatusCode::OK, NDJSON, Body::empty())),
        Some(Err(e)) => return Err(e),
        Some(Ok(bytes)) => bytes,
    };
    let rest = futures_util::stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|item| (item, receiver))
    });
    let stream = futures_util::stream::once(async move { Ok(first) })
        .chain(rest)
        .map(|item| {
            item.map_err(|e| {
                tracing::error!(error = %e, "audit export broken off");
                std::io::Error::other("the audit export was broken off")
            })
        });
    Ok(bytes_response(
        StatusCode::OK,
        NDJSON,
        Body::from_stream(stream),
    ))
}

/// An inclusion proof of entry `index` against a fresh signed checkpoint (DPO).
#[utoipa::path(
    get,
    path = "/v1/audit/entries/{index}/proof",
    tag = "audit",
    params(("index" = u64, Path, description = "Entry index, from 0")),
    responses(
        (status = 200, description = "The proof (cvvault-inclusion-proof/v1)", body = Object),
        (status = 403, description = "Only a DPO reads the audit trail", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Not an index, or no such entry", body = Problem, content_type = "application/problem+json"),
        AuthErrors
    ),
    security(("bearer" = []))
)]
pub async fn audit_proof(
    State(state): State<AppState>,
    bearer: Bearer,
    path: std::result::Result<Path<String>, PathRejection>,
) -> Result<Response> {
    let index = path_text(path).and_then(|text| {
        text.parse::<u64>().map_err(|_| {
            Error::invalid_input(format!(
                "`{}` is not an entry index: use a whole number from 0",
                crate::ids::printable(&text)
            ))
        })
    });
    let proof = bearer
        .run(&state, move |vault, principal| {
            vault.audit_prove(&principal, index?)
        })
        .await?;
    json_response(StatusCode::OK, &proof)
}

/// The latest signed checkpoint (a C2SP signed note), signing one if the log grew. Any
/// authenticated principal: it holds a size and a root hash, nothing about anyone.
#[utoipa::path(
    get,
    path = "/v1/audit/checkpoint",
    tag = "audit",
    responses(
        (status = 200, description = "The signed note", body = String, content_type = "text/plain"),
        AuthErrors
    ),
    security(("bearer" = []))
)]
pub async fn audit_checkpoint(State(state): State<AppState>, bearer: Bearer) -> Result<Response> {
    let note = bearer
        .run(&state, |vault, _principal| vault.audit_checkpoint())
        .await?;
    Ok(bytes_response(
        StatusCode::OK,
        "text/plain; charset=utf-8",
        note,
    ))
}

// ----- operations -----

/// Liveness: the process answers.
#[utoipa::path(
    get,
    path = "/livez",
    tag = "operations",
    responses((status = 200, description = "Alive", body = Health))
)]
pub async fn livez() -> Response {
    bytes_response(
        StatusCode::OK,
        "application/json",
        &br#"{"status":"ok"}"#[..],
    )
}

/// Readiness: database open (reads and commits), keyring unlocked, policy valid.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "operations",
    responses(
        (status = 200, description = "Ready", body = Health),
        (status = 503, description = "Not ready; the checks say what failed", body = Health)
    )
)]
pub async fn readyz(State(state): State<AppState>) -> Result<Response> {
    let vault = state.vault().clone();
    let checks = blocking(move || Ok(vault.readiness())).await?;
    let ready = checks.ready();
    let health = Health {
        status: if ready { "ready" } else { "not ready" }.into(),
        checks: Some(checks),
    };
    json_response(
        if ready {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        },
        &health,
    )
}

/// Any path that is not an endpoint.
pub async fn unknown_route() -> Problem {
    Problem::new(
        StatusCode::NOT_FOUND,
        "no-such-endpoint",
        "Not found",
        "no such endpoint: see /openapi.json for the API",
    )
}

/// A known path with a method it does not have.
pub async fn method_not_allowed() -> Problem {
    Problem::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method-not-allowed",
        "Method not allowed",
        "this endpoint does not take that method: see /openapi.json",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_bodies_refuse_unknown_fields_and_name_the_path() {
        let err = parse_json::<ReasonRequest>(br#"{"reason":"x","note":"y"}"#)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("$.note") && err.contains("unknown field"),
            "{err}"
        );
        let err = parse_json::<OpenAssignmentRequest>(
            br#"{"candidate_id":"nope","org":"a","kind":"coaching","purpose":"coaching"}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("$.candidate_id") && err.contains("UUID"),
            "{err}"
        );
        let err = parse_json::<ReasonRequest>(br#"{"reason": "#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("not valid JSON"), "{err}");
        let err = parse_json::<ReasonRequest>(br#"{"reason":"a"} {}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("not valid JSON"), "{err}");
    }

    #[test]
    fn accept_age_is_recognised_among_other_ranges() {
        let mut headers = HeaderMap::new();
        assert!(!accepts_age(&headers));
        headers.insert(
            header::ACCEPT,
            HeaderValue::from_static("application/json, application/age;q=0.9"),
        );
        assert!(accepts_age(&headers));
        headers.insert(header::ACCEPT, HeaderValue::from_static("application/agex"));
        assert!(!accepts_age(&headers));
    }
}
