//! `/openapi.json`: the OpenAPI 3.1 document, generated from the handlers' `#[utoipa::path]`
//! attributes, so that it cannot drift from the code (a test calls every operation it lists).

use std::sync::OnceLock;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::handlers;
use super::metrics;
use super::problem::Problem;

/// The API description.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "cvvault",
        description = "A privacy-first encrypted CV vault. Every request is authenticated with a bearer token from `cvvault token issue`, decided by Cedar policy and audited before anything is released. Errors are RFC 9457 problem details.",
        license(name = "Apache-2.0", identifier = "Apache-2.0")
    ),
    paths(
        handlers::register_candidate,
        handlers::extract,
        handlers::erase_candidate,
        handlers::update_candidate,
        handlers::find_candidate,
        handlers::list_assignments,
        handlers::place_hold,
        handlers::release_hold,
        handlers::subject_access,
        handlers::erasure_receipt,
        handlers::audit_search,
        handlers::open_assignment,
        handlers::close_assignment,
        handlers::audit_export,
        handlers::audit_proof,
        handlers::audit_checkpoint,
        handlers::livez,
        handlers::readyz,
        metrics::serve,
        serve,
    ),
    components(schemas(
        Problem,
        handlers::OpenAssignmentRequest,
        handlers::ReasonRequest,
        handlers::CandidateCreated,
        handlers::CandidateUpdated,
        handlers::FindRequest,
        handlers::AssignmentOpened,
        handlers::AssignmentClosed,
        handlers::LegalHold,
        handlers::Health,
    )),
    modifiers(&BearerAuth),
    tags(
        (name = "candidates", description = "Register, update, find by agency reference, extract, erase"),
        (name = "assignments", description = "The only link between an organisation and a candidate"),
        (name = "audit", description = "The DPO's tools and the data subject's report"),
        (name = "operations", description = "Health, metrics, this document")
    )
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

/// The document as JSON, rendered once.
pub fn document() -> &'static str {
    static DOCUMENT: OnceLock<String> = OnceLock::new();
    DOCUMENT.get_or_init(|| ApiDoc::openapi().to_json().unwrap_or_default())
}

/// `GET /openapi.json`.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "operations",
    responses((status = 200, description = "This document", body = Object))
)]
pub async fn serve() -> Response {
    let mut response = (StatusCode::OK, document()).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// A problem+json response description referring to the `Problem` schema.
fn problem_response(description: &str) -> utoipa::openapi::RefOr<utoipa::openapi::Response> {
    use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/problem+json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("Problem")))
                .build(),
        )
        .build()
        .into()
}

/// The errors every authenticated endpoint can give: 401 and 500.
pub struct AuthErrors;

impl utoipa::IntoResponses for AuthErrors {
    fn responses(
    ) -> std::collections::BTreeMap<String, utoipa::openapi::RefOr<utoipa::openapi::Response>> {
        [
            ("401".to_owned(), problem_response("No valid bearer token")),
            (
                "500".to_owned(),
                problem_response("Internal error (details are logged, not returned)"),
            ),
        ]
        .into_iter()
        .collect()
    }
}

/// The errors of an endpoint about one candidate named in the path: 404 (the same for an
/// unknown id and, for employers, providers and another candidate's subject, any refusal)
/// and 422 for a malformed id.
pub struct CandidateErrors;

impl utoipa::IntoResponses for CandidateErrors {
    fn responses(
    ) -> std::collections::BTreeMap<String, utoipa::openapi::RefOr<utoipa::openapi::Response>> {
        [
            (
                "404".to_owned(),
                problem_response(
                    "No such candidate; for an employer, a provider or another candidate's subject also any refusal about a candidate (the same body: whether an id exists, is protected or is damaged is not theirs to learn)",
                ),
            ),
            ("422".to_owned(), problem_response("Not a candidate id")),
        ]
        .into_iter()
        .collect()
    }
}
