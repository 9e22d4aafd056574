//! Routes that open and close assignments.

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;

use crate::error::Result;
use crate::ids::AssignmentId;
use crate::server::auth::Bearer;
use crate::server::openapi::AuthErrors;
use crate::server::problem::Problem;
use crate::server::AppState;
use crate::vault::OpenAssignment;

use super::*;

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
        (status = 409, description = "The same assignment (organisation, kind and purpose) is open already for this candidate; the problem names it. Nothing was opened: a second one would keep the access alive after the first is closed", body = Problem, content_type = "application/problem+json"),
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
