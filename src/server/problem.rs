//! Errors as RFC 9457 problem details (`application/problem+json`), rendered in one place.
//!
//! Every [`crate::Error`] becomes a response here, with the status from
//! [`crate::Error::http_status`]. Only errors meant for the caller (invalid input, refusals,
//! not found, conflicts, quotas, authentication) carry their message; anything else is a 500
//! with a fixed detail, and the error itself goes to the log, not to the client.

use axum::extract::rejection::BytesRejection;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::Error;

/// The media type of problem details (RFC 9457 §3).
pub const PROBLEM_JSON: &str = "application/problem+json";

/// A problem details object (RFC 9457). The body never holds profile content: details are
/// built from error messages that carry no field value by construction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[schema(example = json!({
    "type": "urn:cvvault:problem:not-found",
    "title": "Not found",
    "status": 404,
    "detail": "candidate not found"
}))]
pub struct Problem {
    /// A URI naming the kind of problem, `urn:cvvault:problem:<kind>`.
    #[serde(rename = "type")]
    pub problem_type: String,
    /// A short summary of the kind of problem.
    pub title: String,
    /// The HTTP status code.
    pub status: u16,
    /// What went wrong in this case, and what to do instead.
    pub detail: String,
    /// For an invalid document: the JSON path of the offending field (e.g. `$.identity.name`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// For a refusal by policy: the ids of the policies that decided.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy_ids: Option<Vec<String>>,
    /// For 429: seconds until the quota window frees a slot (also in `Retry-After`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u64>,
}

/// The detail of every 500: nothing about the cause reaches the client.
pub const INTERNAL_DETAIL: &str =
    "the request could not be completed and nothing was disclosed; the error was logged for the operator";

impl Problem {
    /// A problem of `kind` (the last part of its type URI).
    pub fn new(status: StatusCode, kind: &str, title: &str, detail: impl Into<String>) -> Problem {
        Problem {
            problem_type: format!("urn:cvvault:problem:{kind}"),
            title: title.to_owned(),
            status: status.as_u16(),
            detail: detail.into(),
            path: None,
            policy_ids: None,
            retry_after: None,
        }
    }

    /// The problem for an error. Logs what it does not show.
    pub fn from_error(error: &Error) -> Problem {
        let status =
            StatusCode::from_u16(error.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        match error {
            Error::InvalidInput { message } => Problem::new(status, "invalid-input", "Invalid input", message.clone()),
            Error::InvalidProfile { path, .. } => Problem {
                path: Some(path.clone()),
                ..Problem::new(status, "invalid-profile", "Invalid profile", error.to_string())
            },
            Error::Denied { policy_ids, .. } => Problem {
                policy_ids: Some(policy_ids.clone()),
                ..Problem::new(status, "denied", "Denied by policy", error.to_string())
            },
            // One text for every caller and every candidate id: it says whom to ask, and
            // nothing about whether the candidate exists.
            Error::NotFound { what: "candidate" } => Problem::new(status, "not-found", "Not found", format!(
                "{error}. Check the candidate id or reference; an erased candidate is not found either. An employer or provider also gets this for a candidate no open assignment links them to, for this purpose: ask the agency's caseworker"
            )),
            Error::NotFound { .. } => Problem::new(status, "not-found", "Not found", error.to_string()),
            Error::Conflict(message) => Problem::new(status, "conflict", "Conflict", message.clone()),
            // The library's message, and this edge's next step.
            Error::LegalHold => Problem::new(status, "legal-hold", "Legal hold", format!(
                "{error}. A DPO releases it with DELETE /v1/candidates/{{candidate_id}}/legal-hold once the legal ground has ended"
            )),
            Error::BadReason { .. } => Problem {
                path: Some("reason".into()),
                ..Problem::new(status, "invalid-input", "Invalid input", format!(
                    "{error}. Send it as `reason` in the JSON body"
                ))
            },
            Error::UnknownOrg { .. } => Problem {
                path: Some("org".into()),
                ..Problem::new(status, "invalid-input", "Invalid input", format!(
                    "{error}. The vault's operator registers a principal of the organisation first"
                ))
            },
            Error::AlreadyHeld { .. }
            | Error::NotHeld
            | Error::KeysRotated { .. }
            | Error::AlreadyOpen { .. } => {
                Problem::new(status, "conflict", "Conflict", error.to_string())
            }
            Error::DuplicateReference => Problem::new(status, "duplicate-reference", "Agency reference already registered", format!(
                "{error}: POST /v1/candidates/find with {{\"agency_reference\": ...}}, then PATCH /v1/candidates/{{id}}"
            )),
            Error::PrincipalDisabled { .. } => Problem {
                policy_ids: Some(Vec::new()),
                ..Problem::new(status, "principal-disabled", "Principal disabled", error.to_string())
            },
            Error::NoRecipient { principal, .. } => Problem::new(status, "no-recipient", "No age recipient", format!(
                "{error}. The vault's operator saves it as keys/recipients/{principal}.txt; or ask for application/json"
            )),
            Error::QuotaExceeded {
                retry_after_secs, ..
            } => Problem {
                retry_after: Some(*retry_after_secs),
                ..Problem::new(
                    status,
                    "quota-exceeded",
                    "Quota exceeded",
                    format!(
                        "too many extract requests in the quota window (policy/limits.toml); the refusal was audited. Retry after {retry_after_secs} s"
                    ),
                )
            },
            Error::Unauthenticated => Problem::new(status, "unauthenticated", "Unauthenticated", error.to_string()),
            Error::TokenExpired { .. } => Problem::new(status, "token-expired", "Token expired", error.to_string()),
            Error::TooManyFailedAuthentications { retry_after_secs } => Problem {
                retry_after: Some(*retry_after_secs),
                ..Problem::new(status, "too-many-failed-authentications", "Too many requests", error.to_string())
            },
            Error::UnsupportedMediaType { .. } => Problem::new(status, "unsupported-media-type", "Unsupported media type", error.to_string()),
            _ => {
                // INVARIANT: the message may name files, SQL errors or states; it is logged only.
                tracing::error!(error = %error, status = status.as_u16(), "request failed");
                if status.is_server_error() {
                    Problem::new(status, "internal", "Internal error", INTERNAL_DETAIL)
                } else {
                    Problem::new(status, "refused", status.canonical_reason().unwrap_or("Refused"), INTERNAL_DETAIL)
                }
            }
        }
    }

    /// The problem for a request body that could not be read (too large, or broken off).
    pub fn from_body_rejection(rejection: &BytesRejection, limit: usize) -> Problem {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            Problem::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload-too-large",
                "Payload too large",
                format!("the request body is larger than {limit} bytes (limits.http.max_body_bytes in policy/limits.toml)"),
            )
        } else {
            Problem::new(
                StatusCode::BAD_REQUEST,
                "bad-request",
                "Bad request",
                "the request body could not be read: send it whole, with a correct Content-Length",
            )
        }
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_vec(&self).unwrap_or_default();
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if status == StatusCode::UNAUTHORIZED {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"cvvault\""),
            );
        }
        if let Some(seconds) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

/// The one rendering of a vault error as an HTTP response.
impl IntoResponse for Error {
    fn into_response(self) -> Response {
        Problem::from_error(&self).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn render(error: Error) -> (StatusCode, axum::http::HeaderMap, serde_json::Value) {
        let response = error.into_response();
        let (parts, body) = response.into_parts();
        let bytes = axum::body::to_bytes(body, 1 << 16).await.unwrap();
        (
            parts.status,
            parts.headers,
            serde_json::from_slice(&bytes).unwrap(),
        )
    }

    #[tokio::test]
    async fn not_found_is_problem_json_with_the_four_members() {
        let (status, headers, body) = render(Error::NotFound { what: "candidate" }).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(headers[header::CONTENT_TYPE], PROBLEM_JSON);
        assert_eq!(
            body,
            serde_json::json!({
                "type": "urn:cvvault:problem:not-found",
                "title": "Not found",
                "status": 404,
                "detail": "candidate not found. Check the candidate id or reference; an erased candidate is not found either. An employer or provider also gets this for a candidate no open assignment links them to, for this purpose: ask the agency's caseworker"
            })
        );
    }

    #[tokio::test]
    async fn statuses_follow_the_one_mapping_and_carry_their_extras() {
        let (status, _, body) = render(Error::InvalidProfile {
            path: "$.identity.nme".into(),
            reason: "unknown field".into(),
        })
        .await;
        assert_eq!(
            (status.as_u16(), body["path"].as_str()),
            (422, Some("$.identity.nme"))
        );

        let (status, _, body) = render(Error::Denied {
            action: "x".into(),
            policy_ids: vec!["p1".into()],
            may: Vec::new(),
        })
        .await;
        assert_eq!(
            (status.as_u16(), body["policy_ids"][0].as_str()),
            (403, Some("p1"))
        );

        let (status, headers, body) = render(Error::QuotaExceeded {
            principal: "emp".into(),
            action: "extract".into(),
            retry_after_secs: 42,
        })
        .await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(headers[header::RETRY_AFTER], "42");
        assert_eq!(body["retry_after"], 42);
        assert!(
            !body["detail"].as_str().unwrap().contains("emp"),
            "the principal is not echoed"
        );

        let (status, headers, _) = render(Error::Unauthenticated).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert!(headers[header::WWW_AUTHENTICATE]
            .to_str()
            .unwrap()
            .starts_with("Bearer"));

        let (status, _, body) = render(Error::Conflict("already closed".into())).await;
        assert_eq!(
            (status.as_u16(), body["detail"].as_str()),
            (409, Some("already closed"))
        );
    }

    #[tokio::test]
    async fn internal_errors_do_not_leak_their_cause() {
        for error in [
            Error::io(
                "/srv/secret/path/vault.db",
                std::io::Error::other("disk on fire"),
            ),
            Error::AuditWrite {
                reason: "SQLITE_FULL at /srv/x".into(),
            },
            Error::DecryptionFailed,
            Error::Corrupt {
                what: "a control group does not parse",
            },
        ] {
            let (status, _, body) = render(error).await;
            assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
            assert_eq!(body["detail"], INTERNAL_DETAIL);
            let text = body.to_string();
            for leak in ["/srv", "disk", "SQLITE", "control", "decrypt"] {
                assert!(!text.contains(leak), "{text}");
            }
        }
    }
}
