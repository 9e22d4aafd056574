//! Every request that names a candidate leaves an audit entry about that candidate, allowed
//! or refused, for every role: the 2026-12 probes found listings, disabled principals and
//! `HEAD` of an extract that did not (or that released data without a body).

use axum::http::Method;

use crate::support::{body_for, Api, LIMITS};
use cvvault::ids::CandidateId;

/// Entries about the candidate. Each count is itself a search about the candidate, whose
/// own entry it sees: two counts with nothing in between differ by one.
fn entries_about(api: &Api, id: &CandidateId) -> usize {
    api.vault.audit_search(&api.facts("dpo"), id).unwrap().len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_request_naming_a_candidate_is_audited_for_every_role() {
    let mut api = Api::new(LIMITS);
    let operations = api.candidate_operations().await;
    let mut missing = Vec::new();
    for role in ["cw", "coach", "emp", "dpo", "subject"] {
        for (method, template) in &operations {
            // A fresh candidate per request, linked to the provider and the employer, so that
            // allowed and refused answers both occur; and an id that was never registered.
            let id = api.register("AUDITEDROUTE", false, true);
            api.assign(id, "coach-org", "coaching", "coaching");
            api.assign(id, "emp-org", "matching", "recruitment");
            let token = if role == "subject" {
                api.subject(id)
            } else {
                api.token(role).to_owned()
            };
            let mut path = template.replace("{candidate_id}", &id.to_string());
            if path.ends_with("/extract") {
                path.push_str(if role == "coach" {
                    "?purpose=coaching"
                } else if role == "subject" {
                    "?purpose=subject-access"
                } else {
                    "?purpose=recruitment"
                });
            }
            let before = entries_about(&api, &id);
            let body = body_for(method, template);
            let reply = api
                .call(method.clone(), &path, Some(&token), body.as_deref())
                .await;
            assert!(
                reply.status.as_u16() < 500,
                "{method} {path} as {role}: {}",
                reply.text()
            );
            if entries_about(&api, &id) < before + 2 {
                missing.push(format!("{method} {template} as {role} ({})", reply.status));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "no audit entry for:\n{}",
        missing.join("\n")
    );
}

/// Every entry in the trail (the count is of entries, whatever they are about).
fn trail_size(api: &Api) -> usize {
    let mut n = 0;
    api.vault
        .audit_export(&api.facts("dpo"), None, None, &mut |_| {
            n += 1;
            Ok(())
        })
        .unwrap();
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_naming_a_missing_candidate_or_an_assignment_are_audited_for_every_role() {
    // Before: the walk covered the `{candidate_id}` routes with existing ids only; opening and
    // closing assignments (the candidate in the body, or behind an assignment id) and ids that
    // were never registered went unchecked.
    let mut api = Api::new(LIMITS);
    let operations = api.candidate_operations().await;
    let mut missing_entries = Vec::new();
    for role in ["cw", "coach", "emp", "dpo", "subject"] {
        let own = api.register("AUDITEDSUBJECT", false, true);
        let token = if role == "subject" {
            api.subject(own)
        } else {
            api.token(role).to_owned()
        };
        // A `{candidate_id}` route with an id that was never registered.
        for (method, template) in &operations {
            let id = CandidateId::random();
            let mut path = template.replace("{candidate_id}", &id.to_string());
            if path.ends_with("/extract") {
                path.push_str("?purpose=recruitment");
            }
            let before = entries_about(&api, &id);
            let body = body_for(method, template);
            let reply = api
                .call(method.clone(), &path, Some(&token), body.as_deref())
                .await;
            assert!(
                reply.status.as_u16() < 500,
                "{method} {path}: {}",
                reply.text()
            );
            if entries_about(&api, &id) < before + 2 {
                missing_entries.push(format!("{method} {template} (missing id) as {role}"));
            }
        }
        // Opening an assignment: the candidate is named in the body, existing or not.
        for id in [
            api.register("AUDITEDOPEN", false, true),
            CandidateId::random(),
        ] {
            let before = entries_about(&api, &id);
            let body = serde_json::json!({
                "candidate_id": id, "org": "emp-org", "kind": "matching", "purpose": "recruitment"
            })
            .to_string();
            let reply = api
                .call(
                    Method::POST,
                    "/v1/assignments",
                    Some(&token),
                    Some(body.as_bytes()),
                )
                .await;
            assert!(reply.status.as_u16() < 500, "{}", reply.text());
            if entries_about(&api, &id) < before + 2 {
                missing_entries.push(format!("POST /v1/assignments as {role} ({})", reply.status));
            }
        }
        // Closing one: the candidate is behind the assignment id.
        let id = api.register("AUDITEDCLOSE", false, true);
        let assignment = api.assign(id, "emp-org", "matching", "recruitment");
        let before = entries_about(&api, &id);
        let reply = api
            .call(
                Method::POST,
                &format!("/v1/assignments/{assignment}/close"),
                Some(&token),
                Some(br#"{"reason":"placed in work"}"#),
            )
            .await;
        assert!(reply.status.as_u16() < 500, "{}", reply.text());
        if entries_about(&api, &id) < before + 2 {
            missing_entries.push(format!("POST close as {role} ({})", reply.status));
        }
        // An assignment id that names nothing is on the record too.
        let before = trail_size(&api);
        let reply = api
            .call(
                Method::POST,
                &format!(
                    "/v1/assignments/{}/close",
                    cvvault::ids::AssignmentId::random()
                ),
                Some(&token),
                Some(br#"{"reason":"placed in work"}"#),
            )
            .await;
        assert_eq!(reply.status.as_u16(), 404, "{}", reply.text());
        // The export above is itself one entry.
        if trail_size(&api) < before + 2 {
            missing_entries.push(format!("POST close of a missing assignment as {role}"));
        }
    }
    assert!(
        missing_entries.is_empty(),
        "no audit entry for:\n{}",
        missing_entries.join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn head_of_a_route_that_releases_data_is_refused_and_releases_nothing() {
    let api = Api::new(LIMITS);
    let id = api.register("HEADEXTRACT", false, true);
    api.assign(id, "emp-org", "matching", "recruitment");
    let before = entries_about(&api, &id);
    for path in [
        format!("/v1/candidates/{id}/extract?purpose=recruitment"),
        format!("/v1/candidates/{id}/subject-access"),
        "/v1/audit/entries".to_owned(),
    ] {
        let reply = api
            .call(Method::HEAD, &path, Some(api.token("emp")), None)
            .await;
        assert_eq!(reply.status.as_u16(), 405, "{path}");
    }
    assert_eq!(
        entries_about(&api, &id),
        before + 1,
        "nothing was decided or disclosed (the one more is the count's own search)"
    );
    // The operational routes still answer HEAD.
    let reply = api.call(Method::HEAD, "/livez", None, None).await;
    assert_eq!(reply.status.as_u16(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disabled_principal_and_an_unknown_token_are_refusals_on_the_record() {
    let api = Api::new(LIMITS);
    let id = api.register("DISABLEDREFUSAL", false, true);
    api.vault
        .set_principal_disabled(&"emp".parse().unwrap(), true)
        .unwrap();
    let reply = api
        .call(
            Method::GET,
            &format!("/v1/candidates/{id}/extract?purpose=recruitment"),
            Some(api.token("emp")),
            None,
        )
        .await;
    assert_eq!(reply.status.as_u16(), 403, "{}", reply.text());
    assert!(reply.text().contains("disabled"), "{}", reply.text());
    // A real token's id with a wrong secret is on the record; an id that names no token is
    // not (random guesses must not grow the trail).
    let coach_id = api.token("coach")[4..20].to_owned();
    let unknown = format!("cvv_{coach_id}_{}", "cd".repeat(32));
    let guess = format!("cvv_{}_{}", "0123456789abcdef", "cd".repeat(32));
    let reply = api
        .call(Method::GET, "/v1/audit/checkpoint", Some(&guess), None)
        .await;
    assert_eq!(reply.status.as_u16(), 401);
    let reply = api
        .call(Method::GET, "/v1/audit/checkpoint", Some(&unknown), None)
        .await;
    assert_eq!(reply.status.as_u16(), 401);
    let mut export = Vec::new();
    api.vault
        .audit_export(&api.facts("dpo"), None, None, &mut |line| {
            export.push(line.to_owned());
            Ok(())
        })
        .unwrap();
    assert!(export
        .iter()
        .any(|e| e.contains("\"action\":\"authenticate\"")
            && e.contains("\"actor\":\"emp\"")
            && e.contains("principal-disabled")));
    assert!(export
        .iter()
        .any(|e| e.contains("\"actor\":\"unauthenticated\"")
            && e.contains(&format!("unknown-token token_id={coach_id}"))));
    assert!(
        !export.iter().any(|e| e.contains("0123456789abcdef")),
        "a guessed id writes nothing"
    );
    assert!(
        !export.iter().any(|e| e.contains(&"cd".repeat(32))),
        "never the secret"
    );
}
