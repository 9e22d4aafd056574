//! An in-process API over a real vault, with a bearer token per principal.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Method, Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use tower::ServiceExt;

use cvvault::ids::{CandidateId, PrincipalId};
use cvvault::paths::Paths;
use cvvault::policy::PrincipalFacts;
use cvvault::server::{self, AppState};
use cvvault::settings::Limits;
use cvvault::synth::Synth;
use cvvault::vault::{OpenAssignment, Vault};

use crate::common::Fixture;

/// Generous limits for tests that are not about quotas.
pub const LIMITS: &str =
    "[extract]\nextracts = 100000\nwindow_seconds = 3600\n\n[http]\nmax_body_bytes = 65536\n";

pub struct Api {
    /// Keeps the vault's temporary directory alive.
    #[allow(dead_code)]
    pub dir: tempfile::TempDir,
    pub paths: Paths,
    pub vault: Arc<Vault>,
    pub router: Router,
    pub tokens: HashMap<String, String>,
    /// The vault's clock (tests move it forward).
    pub clock: cvvault::clock::ManualClock,
    /// The vault's own PostgreSQL database, on a run on PostgreSQL (dropped last).
    #[allow(dead_code)]
    pub pg: Option<crate::common::PgDatabase>,
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|_| panic!("not JSON: {}", self.text()))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn content_type(&self) -> &str {
        self.headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    #[track_caller]
    pub fn expect(&self, status: u16) -> &Self {
        assert_eq!(self.status.as_u16(), status, "body: {}", self.text());
        self
    }
}

impl Api {
    /// A vault with the fixture's principals (cw, coach, emp, emp2, dpo), a token for each.
    pub fn new(limits: &str) -> Api {
        let Fixture {
            dir,
            paths,
            vault,
            clock,
            pg,
        } = Fixture::new();
        let vault = Arc::new(vault);
        let limits = Limits::parse(limits).unwrap();
        let router = server::router(AppState::new(vault.clone(), &limits));
        let mut api = Api {
            dir,
            paths,
            vault,
            router,
            tokens: HashMap::new(),
            clock,
            pg,
        };
        for (id, _, _) in crate::common::PRINCIPALS {
            api.issue(id);
        }
        api
    }

    pub fn issue(&mut self, principal: &str) -> String {
        let issued = self.vault.issue_token(&principal.parse().unwrap()).unwrap();
        self.tokens
            .insert(principal.to_owned(), issued.token.to_string());
        issued.token.to_string()
    }

    pub fn token(&self, principal: &str) -> &str {
        self.tokens
            .get(principal)
            .unwrap_or_else(|| panic!("no token for {principal}"))
    }

    pub fn facts(&self, principal: &str) -> PrincipalFacts {
        self.vault
            .principal(&principal.parse::<PrincipalId>().unwrap())
            .unwrap()
    }

    /// Registers a synthetic profile carrying `marker`.
    pub fn register(&self, marker: &str, protected: bool, consent: bool) -> CandidateId {
        let mut profile = Synth::new(marker.len() as u64 + 7).profile_with_marker(marker);
        profile.control.protected = protected;
        profile.control.consents.employer_contact = consent;
        self.vault.register(&self.facts("cw"), &profile).unwrap()
    }

    pub fn assign(
        &self,
        candidate: CandidateId,
        org: &str,
        kind: &str,
        purpose: &str,
    ) -> cvvault::ids::AssignmentId {
        self.vault
            .open_assignment(
                &self.facts("cw"),
                OpenAssignment {
                    candidate_id: candidate,
                    org: org.parse().unwrap(),
                    kind: kind.parse().unwrap(),
                    purpose: purpose.parse().unwrap(),
                },
            )
            .unwrap()
    }

    /// Adds a subject principal for `candidate` (its id is generated), with a token.
    pub fn subject(&mut self, candidate: CandidateId) -> String {
        let id = self
            .vault
            .add_subject(candidate, "public".parse().unwrap())
            .unwrap();
        self.issue(id.as_str())
    }

    pub async fn call(
        &self,
        method: Method,
        uri: &str,
        token: Option<&str>,
        body: Option<&[u8]>,
    ) -> Reply {
        self.call_with(method, uri, token, body, &[]).await
    }

    pub async fn call_with(
        &self,
        method: Method,
        uri: &str,
        token: Option<&str>,
        body: Option<&[u8]>,
        headers: &[(&str, &str)],
    ) -> Reply {
        let mut request = Request::builder().method(method).uri(uri);
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let typed = headers
            .iter()
            .any(|(name, _)| name.eq_ignore_ascii_case("content-type"));
        let request = match body {
            Some(bytes) if typed => request.body(Body::from(bytes.to_vec())),
            Some(bytes) => request
                .header("content-type", "application/json")
                .body(Body::from(bytes.to_vec())),
            None => request.body(Body::empty()),
        }
        .unwrap();
        let response = self.router.clone().oneshot(request).await.unwrap();
        let (parts, body) = response.into_parts();
        let body = body.collect().await.unwrap().to_bytes();
        Reply {
            status: parts.status,
            headers: parts.headers,
            body,
        }
    }

    pub async fn get(&self, uri: &str, as_: &str) -> Reply {
        self.call(Method::GET, uri, Some(self.token(as_)), None)
            .await
    }

    pub async fn send(
        &self,
        method: Method,
        uri: &str,
        as_: &str,
        body: serde_json::Value,
    ) -> Reply {
        self.call(
            method,
            uri,
            Some(self.token(as_)),
            Some(body.to_string().as_bytes()),
        )
        .await
    }

    /// Every audit entry, parsed.
    pub fn entries(&self) -> Vec<cvvault::audit::entry::Entry> {
        let mut lines = Vec::new();
        self.vault
            .audit_export(&self.facts("dpo"), None, None, &mut |line| {
                lines.push(serde_json::from_str(line).unwrap());
                Ok(())
            })
            .unwrap();
        lines
    }
}

/// Whether a problem+json body is well formed (RFC 9457 members).
#[track_caller]
pub fn assert_problem(reply: &Reply) {
    assert_eq!(
        reply.content_type(),
        "application/problem+json",
        "{}",
        reply.text()
    );
    let body = reply.json();
    assert_eq!(
        body["status"].as_u64(),
        Some(u64::from(reply.status.as_u16())),
        "{body}"
    );
    for member in ["type", "title", "detail"] {
        assert!(
            body[member].as_str().is_some_and(|s| !s.is_empty()),
            "{member} missing: {body}"
        );
    }
}

impl Api {
    /// The `{candidate_id}` operations of the served `/openapi.json`, as (method, template).
    pub async fn candidate_operations(&self) -> Vec<(Method, String)> {
        let spec: serde_json::Value = serde_json::from_slice(
            &self
                .call(Method::GET, "/openapi.json", None, None)
                .await
                .body,
        )
        .unwrap();
        let mut out = Vec::new();
        for (path, item) in spec["paths"].as_object().unwrap() {
            if path.contains("{candidate_id}") {
                for method in item.as_object().unwrap().keys() {
                    out.push((
                        Method::from_bytes(method.to_uppercase().as_bytes()).unwrap(),
                        path.clone(),
                    ));
                }
            }
        }
        assert!(out.len() >= 8, "{out:?}");
        out
    }
}

/// A valid body for a candidate operation that takes one (a legal hold's ground, an update's
/// document); `None` for the others.
pub fn body_for(method: &Method, template: &str) -> Option<Vec<u8>> {
    if template.ends_with("/legal-hold") && method == Method::PUT {
        Some(br#"{"reason":"case 2026-12"}"#.to_vec())
    } else if method == Method::PATCH {
        Some(br#"{"contact":{"phone":"+46 70 000 00 00"}}"#.to_vec())
    } else {
        None
    }
}
