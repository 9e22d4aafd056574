//! The handlers: parse the request once, call one vault use case off the async workers, render
//! the typed result. No policy, crypto or SQL here (DESIGN.md, "The one data path").
//!
//! This file holds the request and response bodies and the extractors every route shares;
//! the routes are in `candidates.rs`, `assignments.rs`, `audit.rs` and `operations.rs`.

mod assignments;
mod audit;
mod candidates;
mod operations;

pub use assignments::*;
pub use audit::*;
pub use candidates::*;
pub use operations::*;

use axum::body::{Body, Bytes};
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{FromRequest, Path, Query, Request};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::problem::Problem;
use super::AppState;
use crate::error::{Error, Result};
use crate::ids::{AssignmentId, CandidateId, OrgId};
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

/// `200` after an update.
#[derive(Debug, Serialize, ToSchema)]
pub struct CandidateUpdated {
    /// The candidate.
    #[schema(value_type = String, format = Uuid)]
    pub candidate_id: CandidateId,
    /// The groups replaced.
    pub groups: Vec<String>,
}

/// The body of `POST /v1/candidates/find`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"agency_reference": "AF-2026-000731"}))]
pub struct FindRequest {
    /// The agency's reference, as given at registration (`agency_reference`).
    pub agency_reference: String,
}

/// `?group=contact,special` of an update.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct UpdateQuery {
    /// Replace only these groups, comma-separated (identity, contact, professional, special,
    /// control); without it, every group the body holds.
    #[param(example = "contact")]
    pub group: Option<String>,
}

impl UpdateQuery {
    /// The groups named, in order.
    pub fn groups(&self) -> Result<Vec<crate::vocabulary::FieldGroup>> {
        self.group
            .iter()
            .flat_map(|g| g.split(','))
            .filter(|g| !g.trim().is_empty())
            .map(|g| g.trim().parse())
            .collect()
    }
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
