//! Routes about one candidate: register, extract, erase, list assignments, legal holds,
//! subject access, erasure receipts and the candidate's audit entries.

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::error::{Error, Result};
use crate::ids::CandidateId;
use crate::server::auth::Bearer;
use crate::server::openapi::{AuthErrors, CandidateErrors};
use crate::server::problem::Problem;
use crate::server::quota::Admission;
use crate::server::AppState;
use crate::vault::{Delivery, ExtractRefusal};
use crate::vocabulary::Purpose;

use super::*;

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
            vault.register_document(&principal, &document?, None)
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

/// Replace field groups of a candidate's profile (a new job, phone number or consent).
///
/// The body is a cvvault document holding the groups to replace (a JSON Resume replaces
/// identity, contact and professional); the groups it leaves out are kept. `?group=` limits
/// the update to the groups named. Decided by policy per group and audited; the profile is
/// sealed anew under a new data key and the old key is shredded.
#[utoipa::path(
    patch,
    path = "/v1/candidates/{candidate_id}",
    tag = "candidates",
    params(
        ("candidate_id" = String, Path, format = Uuid, description = "Candidate id"),
        UpdateQuery
    ),
    request_body(
        content = Object,
        content_type = "application/json",
        description = "The groups to replace, as in a vault document",
        example = json!({"contact": {"phone": "+46 70 123 45 67"}})
    ),
    responses(
        (status = 200, description = "Updated: the groups replaced", body = CandidateUpdated),
        (status = 403, description = "Policy does not let the principal replace these groups (caseworkers may replace any; a candidate their own identity, contact and professional details)", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "The body is over limits.http.max_body_bytes", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Not a valid document, or a group asked for that it does not hold (the problem names the JSON path)", body = Problem, content_type = "application/problem+json"),
        AuthErrors,
        CandidateErrors
    ),
    security(("bearer" = []))
)]
pub async fn update_candidate(
    State(state): State<AppState>,
    bearer: Bearer,
    path: std::result::Result<Path<String>, PathRejection>,
    groups: std::result::Result<Query<UpdateQuery>, QueryRejection>,
    DocumentBody(document): DocumentBody,
) -> Result<Response> {
    let candidate = candidate_param(path);
    let groups = query(groups).and_then(|q| q.groups());
    let updated = bearer
        .run(&state, move |vault, principal| {
            let groups = groups?;
            vault.update(
                &principal,
                &candidate?,
                &document?,
                (!groups.is_empty()).then_some(&groups[..]),
            )
        })
        .await?;
    json_response(
        StatusCode::OK,
        &CandidateUpdated {
            candidate_id: updated.candidate_id,
            groups: updated.groups.iter().map(|g| g.to_string()).collect(),
        },
    )
}

/// Find a candidate by the agency's own reference (its case number): exactly one id.
///
/// The reference travels in the body, not the URL, so that it stays out of access logs.
/// Decided by policy (`find`) and audited; there is no listing and no search by name.
#[utoipa::path(
    post,
    path = "/v1/candidates/find",
    tag = "candidates",
    request_body(content = FindRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "The candidate with this reference", body = CandidateCreated),
        (status = 404, description = "No candidate has this reference (also: the principal may not find candidates)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Not a valid reference or body", body = Problem, content_type = "application/problem+json"),
        AuthErrors
    ),
    security(("bearer" = []))
)]
pub async fn find_candidate(
    State(state): State<AppState>,
    bearer: Bearer,
    JsonBody(body): JsonBody<FindRequest>,
) -> Result<Response> {
    let candidate_id = bearer
        .run(&state, move |vault, principal| {
            vault.find_by_reference(&principal, &body?.agency_reference)
        })
        .await?;
    json_response(StatusCode::OK, &CandidateCreated { candidate_id })
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
        (status = 409, description = "A hold stands already (the detail names its ground): nothing was overwritten", body = Problem, content_type = "application/problem+json"),
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
    set_hold(
        state,
        bearer,
        candidate_param(path),
        Some(body.map(|b| b.reason)),
    )
    .await
}

/// Release a legal hold (DPO).
#[utoipa::path(
    delete,
    path = "/v1/candidates/{candidate_id}/legal-hold",
    tag = "audit",
    params(("candidate_id" = String, Path, format = Uuid, description = "Candidate id")),
    responses(
        (status = 200, description = "The hold was released", body = LegalHold),
        (status = 403, description = "Only a DPO may release a legal hold", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "No hold stands: nothing to release", body = Problem, content_type = "application/problem+json"),
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
    set_hold(state, bearer, candidate_param(path), None).await
}

/// Places (with the ground given) or releases (`None`) a legal hold, and says where it stands.
async fn set_hold(
    state: AppState,
    bearer: Bearer,
    candidate: Result<CandidateId>,
    ground: Option<Result<String>>,
) -> Result<Response> {
    let legal_hold = ground.is_some();
    let candidate_id = bearer
        .run(&state, move |vault, principal| {
            let candidate_id = candidate?;
            let ground = ground.transpose()?;
            vault.set_hold(
                &principal,
                &candidate_id,
                legal_hold,
                ground.as_deref().unwrap_or(""),
            )?;
            Ok(candidate_id)
        })
        .await?;
    json_response(
        StatusCode::OK,
        &LegalHold {
            candidate_id,
            legal_hold,
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
