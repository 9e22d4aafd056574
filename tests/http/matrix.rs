//! Authorization matrix: every endpoint x every role x a related and an unrelated candidate,
//! against an explicit table of expected statuses. No error body holds profile content, and an
//! employer or a provider cannot tell "not yours" (or "protected") from "no such candidate".

use axum::http::Method;

use crate::support::{Api, LIMITS};

/// The candidate-independent and candidate-scoped endpoints.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Endpoint {
    Register,
    Extract,
    Erase,
    ListAssignments,
    OpenAssignment,
    CloseAssignment,
    PlaceHold,
    ReleaseHold,
    SubjectAccess,
    ErasureReceipt,
    AuditSearch,
    AuditExport,
    AuditProof,
    Checkpoint,
}

const ROLES: [&str; 5] = ["caseworker", "provider", "employer", "dpo", "subject"];

/// Expected (related, unrelated) status per role, in the order of [`ROLES`].
///
/// Related: the candidate has an open coaching assignment with the provider's organisation,
/// an open matching assignment with the employer's (and consents to employer contact), and is
/// the subject. Unrelated: a candidate nobody but the agency has to do with.
///
/// The one refusal rule (`Vault::conceal`): employers and providers get 404 for every refusal
/// about a candidate, and a subject for every refusal about a candidate other than their own.
const TABLE: &[(Endpoint, [(u16, u16); 5])] = &[
    //                          caseworker   provider     employer     dpo          subject
    (
        Endpoint::Register,
        [(201, 201), (403, 403), (403, 403), (403, 403), (403, 403)],
    ),
    (
        Endpoint::Extract,
        [(403, 403), (200, 404), (200, 404), (403, 403), (200, 404)],
    ),
    (
        Endpoint::Erase,
        [(204, 204), (404, 404), (404, 404), (403, 403), (403, 404)],
    ),
    (
        Endpoint::ListAssignments,
        [(200, 200), (404, 404), (404, 404), (200, 200), (200, 404)],
    ),
    (
        Endpoint::OpenAssignment,
        [(201, 201), (404, 404), (404, 404), (403, 403), (403, 404)],
    ),
    (
        Endpoint::CloseAssignment,
        [(200, 200), (404, 404), (404, 404), (403, 403), (403, 404)],
    ),
    (
        Endpoint::PlaceHold,
        [(403, 403), (404, 404), (404, 404), (200, 200), (403, 404)],
    ),
    // No hold stands on the table's candidates: the DPO passes policy and is told there is
    // nothing to release (409); everyone else is refused as before.
    (
        Endpoint::ReleaseHold,
        [(403, 403), (404, 404), (404, 404), (409, 409), (403, 404)],
    ),
    (
        Endpoint::SubjectAccess,
        [(403, 403), (404, 404), (404, 404), (200, 200), (200, 404)],
    ),
    (
        Endpoint::ErasureReceipt,
        [(403, 403), (404, 404), (404, 404), (404, 404), (403, 404)],
    ),
    (
        Endpoint::AuditSearch,
        [(403, 403), (404, 404), (404, 404), (200, 200), (403, 404)],
    ),
    (
        Endpoint::AuditExport,
        [(403, 403), (403, 403), (403, 403), (200, 200), (403, 403)],
    ),
    (
        Endpoint::AuditProof,
        [(403, 403), (403, 403), (403, 403), (200, 200), (403, 403)],
    ),
    (
        Endpoint::Checkpoint,
        [(200, 200), (200, 200), (200, 200), (200, 200), (200, 200)],
    ),
];

const MARKER: &str = "MATRIX-MARKER";

fn principal_of(role: &str) -> &'static str {
    match role {
        "caseworker" => "cw",
        "provider" => "coach",
        "employer" => "emp",
        "dpo" => "dpo",
        _ => unreachable!(),
    }
}

fn purpose_of(role: &str) -> &'static str {
    match role {
        "caseworker" | "provider" => "coaching",
        "employer" | "dpo" => "recruitment",
        _ => "subject-access",
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_endpoint_by_every_role_on_related_and_unrelated_candidates() {
    let mut api = Api::new(LIMITS);
    // coach2-org's side assignment is on every target; coach3-org is the one the
    // OpenAssignment cells open (the same one twice is refused as open already).
    for (principal, org) in [("coach2", "coach2-org"), ("coach3", "coach3-org")] {
        api.vault
            .add_principal(
                principal.parse().unwrap(),
                cvvault::vocabulary::Role::Provider,
                org.parse().unwrap(),
                None,
            )
            .unwrap();
    }
    let mut failures = Vec::new();
    let mut cell = 0u32;
    for (endpoint, expected) in TABLE {
        for (r, role) in ROLES.iter().enumerate() {
            let mut bodies_404 = Vec::new();
            for (related, want) in [(true, expected[r].0), (false, expected[r].1)] {
                cell += 1;
                // A fresh world per cell, so that no call changes what another one sees.
                let target_related = api.register(&format!("{MARKER}-{cell}-R"), false, true);
                api.assign(target_related, "coach-org", "coaching", "coaching");
                api.assign(target_related, "emp-org", "matching", "recruitment");
                let target_unrelated = api.register(&format!("{MARKER}-{cell}-U"), false, false);
                let target = if related {
                    target_related
                } else {
                    target_unrelated
                };
                let token = if *role == "subject" {
                    api.subject(target_related)
                } else {
                    api.token(principal_of(role)).to_owned()
                };
                let side_assignment = api.assign(target, "coach2-org", "coaching", "coaching");
                let (method, uri, body) = request(*endpoint, target, side_assignment, role);
                let reply = api
                    .call(
                        method.clone(),
                        &uri,
                        Some(&token),
                        body.as_deref().map(str::as_bytes),
                    )
                    .await;
                let status = reply.status.as_u16();
                if status != want {
                    failures.push(format!(
                        "{endpoint:?} as {role} on {} candidate: want {want}, got {status} ({})",
                        if related { "related" } else { "unrelated" },
                        reply.text()
                    ));
                }
                if status >= 400 {
                    assert!(
                        !reply.text().contains(MARKER),
                        "{endpoint:?} as {role}: profile content in an error body: {}",
                        reply.text()
                    );
                    crate::support::assert_problem(&reply);
                }
                if status == 404 {
                    bodies_404.push(reply.body.clone());
                }
            }
            if matches!(*role, "provider" | "employer") && bodies_404.len() == 2 {
                assert_eq!(
                    bodies_404[0], bodies_404[1],
                    "{endpoint:?} as {role}: a 404 body tells related from unrelated"
                );
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} cell(s) off the table:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

fn request(
    endpoint: Endpoint,
    candidate: cvvault::ids::CandidateId,
    assignment: cvvault::ids::AssignmentId,
    role: &str,
) -> (Method, String, Option<String>) {
    let profile = r#"{"identity":{"name":"Matrix Person"}}"#.to_owned();
    match endpoint {
        Endpoint::Register => (Method::POST, "/v1/candidates".into(), Some(profile)),
        Endpoint::Extract => (Method::GET, format!("/v1/candidates/{candidate}/extract?purpose={}", purpose_of(role)), None),
        Endpoint::Erase => (Method::DELETE, format!("/v1/candidates/{candidate}"), None),
        Endpoint::ListAssignments => (Method::GET, format!("/v1/candidates/{candidate}/assignments"), None),
        Endpoint::OpenAssignment => (
            Method::POST,
            "/v1/assignments".into(),
            Some(serde_json::json!({"candidate_id": candidate, "org": "coach3-org", "kind": "coaching", "purpose": "coaching"}).to_string()),
        ),
        Endpoint::CloseAssignment => (Method::POST, format!("/v1/assignments/{assignment}/close"), Some(r#"{"reason":"done"}"#.into())),
        Endpoint::PlaceHold => (Method::PUT, format!("/v1/candidates/{candidate}/legal-hold"), Some(r#"{"reason":"case 1"}"#.into())),
        Endpoint::ReleaseHold => (Method::DELETE, format!("/v1/candidates/{candidate}/legal-hold"), None),
        Endpoint::SubjectAccess => (Method::GET, format!("/v1/candidates/{candidate}/subject-access"), None),
        Endpoint::ErasureReceipt => (Method::GET, format!("/v1/candidates/{candidate}/erasure-receipt"), None),
        Endpoint::AuditSearch => (Method::GET, format!("/v1/candidates/{candidate}/audit-entries"), None),
        Endpoint::AuditExport => (Method::GET, "/v1/audit/entries".into(), None),
        Endpoint::AuditProof => (Method::GET, "/v1/audit/entries/0/proof".into(), None),
        Endpoint::Checkpoint => (Method::GET, "/v1/audit/checkpoint".into(), None),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_valid_token_every_v1_endpoint_is_401() {
    let api = Api::new(LIMITS);
    let candidate = api.register("M-401", false, false);
    let assignment = api.assign(candidate, "coach-org", "coaching", "coaching");
    for (endpoint, _) in TABLE {
        let (method, uri, body) = request(*endpoint, candidate, assignment, "caseworker");
        for token in [None, Some("cvv_nope")] {
            let reply = api
                .call(
                    method.clone(),
                    &uri,
                    token,
                    body.as_deref().map(str::as_bytes),
                )
                .await;
            assert_eq!(
                reply.status.as_u16(),
                401,
                "{endpoint:?} with {token:?}: {}",
                reply.text()
            );
        }
    }
    // Even a malformed id or body: the token is checked first.
    let reply = api
        .call(
            Method::POST,
            "/v1/assignments",
            Some("cvv_nope"),
            Some(b"{"),
        )
        .await;
    assert_eq!(reply.status.as_u16(), 401);
    let reply = api
        .call(
            Method::DELETE,
            "/v1/candidates/not-an-id",
            Some("cvv_nope"),
            None,
        )
        .await;
    assert_eq!(reply.status.as_u16(), 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_protected_candidate_is_indistinguishable_from_a_missing_one_for_a_provider() {
    let api = Api::new(LIMITS);
    let protected = api.register("M-HIDDEN", true, false);
    api.assign(protected, "coach-org", "coaching", "coaching");
    let missing = uuid::Uuid::new_v4();
    for (suffix, method) in [
        ("/extract?purpose=coaching", Method::GET),
        ("/subject-access", Method::GET),
        ("/assignments", Method::GET),
        ("/legal-hold", Method::DELETE),
        ("", Method::DELETE),
    ] {
        let a = api
            .call(
                method.clone(),
                &format!("/v1/candidates/{protected}{suffix}"),
                Some(api.token("coach")),
                None,
            )
            .await;
        let b = api
            .call(
                method.clone(),
                &format!("/v1/candidates/{missing}{suffix}"),
                Some(api.token("coach")),
                None,
            )
            .await;
        assert_eq!(
            (a.status.as_u16(), &a.body),
            (404, &b.body),
            "{method} {suffix}: {}",
            a.text()
        );
        assert!(!a.text().contains("protected"), "{}", a.text());
    }
}
