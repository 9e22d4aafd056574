//! Each endpoint's happy path and its errors, in-process.

use std::io::Read;

use axum::http::Method;

use crate::support::{assert_problem, Api, LIMITS};

const PROFILE: &str = r#"{"identity":{"name":"Anna Lindqvist","birth_year":1990},"contact":{"email":"anna@example.org"},"professional":{"headline":"Carpenter"},"control":{"protected":false,"consents":{"employer_contact":true}}}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_returns_201_with_the_new_id_for_cvvault_and_json_resume_documents() {
    let api = Api::new(LIMITS);
    let reply = api
        .call(
            Method::POST,
            "/v1/candidates",
            Some(api.token("cw")),
            Some(PROFILE.as_bytes()),
        )
        .await;
    reply.expect(201);
    let id = reply.json()["candidate_id"].as_str().unwrap().to_owned();
    assert!(id.parse::<cvvault::ids::CandidateId>().is_ok());
    assert_eq!(api.vault.candidate_count().unwrap(), 1);

    let resume = r#"{"basics":{"name":"Omar Haddad","email":"omar@example.org"},"skills":[{"name":"Welding"}]}"#;
    api.call(
        Method::POST,
        "/v1/candidates",
        Some(api.token("cw")),
        Some(resume.as_bytes()),
    )
    .await
    .expect(201);
    assert_eq!(api.vault.candidate_count().unwrap(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_refuses_unknown_fields_with_the_json_path_and_never_echoes_values() {
    let api = Api::new(LIMITS);
    let body = r#"{"identity":{"name":"SECRET-NAME-42","nickname":"SECRET-NICK-42"}}"#;
    let reply = api
        .call(
            Method::POST,
            "/v1/candidates",
            Some(api.token("cw")),
            Some(body.as_bytes()),
        )
        .await;
    reply.expect(422);
    assert_problem(&reply);
    assert_eq!(reply.json()["path"], "$.identity.nickname");
    assert!(!reply.text().contains("SECRET"), "{}", reply.text());

    let reply = api
        .call(
            Method::POST,
            "/v1/candidates",
            Some(api.token("cw")),
            Some(b"{\"identity\": "),
        )
        .await;
    reply.expect(422);
    assert_problem(&reply);
    assert_eq!(api.vault.candidate_count().unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_by_a_role_that_may_not_is_403_before_the_document_is_looked_at() {
    let api = Api::new(LIMITS);
    for role in ["emp", "coach", "dpo"] {
        let reply = api
            .call(
                Method::POST,
                "/v1/candidates",
                Some(api.token(role)),
                Some(b"not even json"),
            )
            .await;
        reply.expect(403);
        assert_problem(&reply);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_over_the_limit_is_413_problem_json() {
    let api = Api::new(
        "[extract]\nextracts = 10\nwindow_seconds = 60\n\n[http]\nmax_body_bytes = 1024\n",
    );
    let big = format!(r#"{{"identity":{{"name":"{}"}}}}"#, "x".repeat(4096));
    let reply = api
        .call(
            Method::POST,
            "/v1/candidates",
            Some(api.token("cw")),
            Some(big.as_bytes()),
        )
        .await;
    reply.expect(413);
    assert_problem(&reply);
    assert!(reply.json()["detail"].as_str().unwrap().contains("1024"));
    let reason = format!(r#"{{"reason":"{}"}}"#, "r".repeat(2000));
    let id = api.register("M-413", false, false);
    let reply = api
        .call(
            Method::PUT,
            &format!("/v1/candidates/{id}/legal-hold"),
            Some(api.token("dpo")),
            Some(reason.as_bytes()),
        )
        .await;
    reply.expect(413);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_token_a_malformed_token_an_unknown_token_and_a_revoked_token_are_401() {
    let mut api = Api::new(LIMITS);
    let id = api.register("M-401", false, false);
    let uri = format!("/v1/candidates/{id}/subject-access");
    let reply = api.call(Method::GET, &uri, None, None).await;
    reply.expect(401);
    assert_problem(&reply);
    assert!(reply.headers["www-authenticate"]
        .to_str()
        .unwrap()
        .starts_with("Bearer"));
    let unknown = format!("cvv_{}_{}", "0".repeat(16), "1".repeat(64));
    for token in ["garbage", "cvv_", unknown.as_str()] {
        api.call(Method::GET, &uri, Some(token), None)
            .await
            .expect(401);
    }
    let reply = api
        .call_with(
            Method::GET,
            &uri,
            None,
            None,
            &[("authorization", &format!("Basic {}", api.token("dpo")))],
        )
        .await;
    reply.expect(401);

    let token = api.issue("dpo");
    api.call(Method::GET, &uri, Some(&token), None)
        .await
        .expect(200);
    let token_id = token.split('_').nth(1).unwrap().to_owned();
    api.vault.revoke_token(&token_id).unwrap();
    api.call(Method::GET, &uri, Some(&token), None)
        .await
        .expect(401);
    // Revocation is audited as an operator action; the token itself is never in the trail.
    let entries = api.entries();
    assert!(entries.iter().any(|e| e.action == "token.revoke"
        && e.note.as_deref() == Some(format!("token_id={token_id}").as_str())));
    let trail: String = entries
        .iter()
        .map(|e| String::from_utf8(e.canonical_bytes()).unwrap())
        .collect();
    assert!(!trail.contains(&token));
    assert!(!trail.contains(token.rsplit('_').next().unwrap()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disabled_principal_is_refused_with_403() {
    let api = Api::new(LIMITS);
    api.vault
        .set_principal_disabled(&"dpo".parse().unwrap(), true)
        .unwrap();
    let reply = api.get("/v1/audit/checkpoint", "dpo").await;
    reply.expect(403);
    assert_problem(&reply);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extract_as_json_and_as_age_to_the_principals_recipient() {
    let api = Api::new(LIMITS);
    let id = api.register("M-EXTRACT", false, true);
    api.assign(id, "emp-org", "matching", "recruitment");
    let uri = format!("/v1/candidates/{id}/extract?purpose=recruitment");

    let reply = api.get(&uri, "emp").await;
    reply.expect(200);
    assert_eq!(reply.content_type(), "application/json");
    assert_eq!(reply.headers["cache-control"], "no-store");
    let json = reply.json();
    assert_eq!(json["candidate_id"], id.to_string());
    let mut groups: Vec<&String> = json["groups"].as_object().unwrap().keys().collect();
    groups.sort();
    assert_eq!(groups, ["contact", "identity", "professional"]);
    assert!(json["groups"].get("special").is_none());

    // No recipient registered yet: refused before anything is disclosed.
    let reply = api
        .call_with(
            Method::GET,
            &uri,
            Some(api.token("emp")),
            None,
            &[("accept", "application/age")],
        )
        .await;
    reply.expect(422);
    assert!(reply.json()["detail"]
        .as_str()
        .unwrap()
        .contains("keys/recipients/emp.txt"));

    let identity = age::x25519::Identity::generate();
    let recipient_file = api.paths.principal_recipient(&"emp".parse().unwrap());
    std::fs::create_dir_all(recipient_file.parent().unwrap()).unwrap();
    std::fs::write(&recipient_file, format!("{}\n", identity.to_public())).unwrap();
    let reply = api
        .call_with(
            Method::GET,
            &uri,
            Some(api.token("emp")),
            None,
            &[("accept", "application/age")],
        )
        .await;
    reply.expect(200);
    assert_eq!(reply.content_type(), "application/age");
    assert!(reply.body.starts_with(b"age-encryption.org/v1\n"));
    assert!(!crate::common::contains(&reply.body, b"M-EXTRACT"));
    let decryptor = age::Decryptor::new(&reply.body[..]).unwrap();
    let mut plain = Vec::new();
    decryptor
        .decrypt(std::iter::once(&identity as &dyn age::Identity))
        .unwrap()
        .read_to_end(&mut plain)
        .unwrap();
    let opened: serde_json::Value = serde_json::from_slice(&plain).unwrap();
    assert_eq!(opened["candidate_id"], id.to_string());
    assert!(String::from_utf8(plain).unwrap().contains("M-EXTRACT"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extract_errors_are_problems_and_every_attempt_is_audited() {
    let api = Api::new(LIMITS);
    let id = api.register("M-ERR", false, false);
    api.assign(id, "coach-org", "coaching", "coaching");
    let before = api.entries().len();
    let cases = [
        (format!("/v1/candidates/{id}/extract"), 422),
        (
            format!("/v1/candidates/{id}/extract?purpose=Bad%20Purpose"),
            422,
        ),
        (
            format!("/v1/candidates/{id}/extract?purpose=coaching&extra=1"),
            422,
        ),
        (
            "/v1/candidates/not-a-uuid/extract?purpose=coaching".to_owned(),
            422,
        ),
        (
            format!(
                "/v1/candidates/{}/extract?purpose=coaching",
                uuid::Uuid::new_v4()
            ),
            404,
        ),
        (
            format!("/v1/candidates/{id}/extract?purpose=recruitment"),
            404,
        ),
        (format!("/v1/candidates/{id}/extract?purpose=coaching"), 200),
    ];
    for (uri, status) in &cases {
        let reply = api.get(uri, "coach").await;
        reply.expect(*status);
        if *status != 200 {
            assert_problem(&reply);
            assert!(!reply.text().contains("M-ERR"));
        }
    }
    let extracts: Vec<_> = api
        .entries()
        .into_iter()
        .skip(before)
        .filter(|e| e.action == "extract")
        .collect();
    assert_eq!(extracts.len(), cases.len(), "one audit entry per attempt");
    let bad = api
        .get(
            "/v1/candidates/not-a-uuid/extract?purpose=coaching",
            "coach",
        )
        .await;
    assert!(
        bad.json()["detail"].as_str().unwrap().contains("UUID"),
        "{}",
        bad.text()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_list_and_close_assignments() {
    let api = Api::new(LIMITS);
    let id = api.register("M-ASSIGN", false, false);
    let reply = api
        .send(Method::POST, "/v1/assignments", "cw", serde_json::json!({"candidate_id": id, "org": "coach-org", "kind": "coaching", "purpose": "coaching"}))
        .await;
    reply.expect(201);
    let assignment = reply.json()["assignment_id"].as_str().unwrap().to_owned();
    // The same assignment again: refused, naming the open one (closing it must end the
    // access, which a second open copy would keep).
    let again = api
        .send(Method::POST, "/v1/assignments", "cw", serde_json::json!({"candidate_id": id, "org": "coach-org", "kind": "coaching", "purpose": "coaching"}))
        .await;
    again.expect(409);
    assert_problem(&again);
    assert!(
        again.json()["detail"]
            .as_str()
            .unwrap()
            .contains(&assignment),
        "{}",
        again.text()
    );

    let reply = api
        .get(&format!("/v1/candidates/{id}/assignments"), "cw")
        .await;
    reply.expect(200);
    assert_eq!(reply.json().as_array().unwrap().len(), 1);
    assert_eq!(reply.json()[0]["org_id"], "coach-org");

    let close = format!("/v1/assignments/{assignment}/close");
    api.send(
        Method::POST,
        &close,
        "cw",
        serde_json::json!({"reason": "coaching completed"}),
    )
    .await
    .expect(200);
    let reply = api
        .send(
            Method::POST,
            &close,
            "cw",
            serde_json::json!({"reason": "again"}),
        )
        .await;
    reply.expect(409);
    assert_problem(&reply);
    let unknown = format!("/v1/assignments/{}/close", uuid::Uuid::new_v4());
    api.send(
        Method::POST,
        &unknown,
        "cw",
        serde_json::json!({"reason": "x"}),
    )
    .await
    .expect(404);
    api.send(
        Method::POST,
        "/v1/assignments/42/close",
        "cw",
        serde_json::json!({"reason": "x"}),
    )
    .await
    .expect(422);
    api.send(
        Method::POST,
        &close,
        "cw",
        serde_json::json!({"reason": ""}),
    )
    .await
    .expect(422);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn assignment_bodies_are_strict_and_errors_name_the_path() {
    let api = Api::new(LIMITS);
    let id = api.register("M-STRICT", false, false);
    let cases = [
        (
            serde_json::json!({"candidate_id": id, "org": "coach-org", "kind": "coaching", "purpose": "coaching", "extra": 1}),
            "$.extra",
        ),
        (
            serde_json::json!({"candidate_id": "x", "org": "coach-org", "kind": "coaching", "purpose": "coaching"}),
            "$.candidate_id",
        ),
        (
            serde_json::json!({"candidate_id": id, "org": "coach-org", "kind": "mentoring", "purpose": "coaching"}),
            "$.kind",
        ),
        (
            serde_json::json!({"candidate_id": id, "org": "coach-org", "kind": "coaching"}),
            "purpose",
        ),
    ];
    for (body, path) in cases {
        let reply = api.send(Method::POST, "/v1/assignments", "cw", body).await;
        reply.expect(422);
        assert_problem(&reply);
        assert!(
            reply.json()["detail"].as_str().unwrap().contains(path),
            "{}",
            reply.text()
        );
    }
    let reply = api
        .call(
            Method::POST,
            "/v1/assignments",
            Some(api.token("cw")),
            Some(b"{\"candidate_id\":"),
        )
        .await;
    reply.expect(422);
    assert!(reply.json()["detail"]
        .as_str()
        .unwrap()
        .contains("not valid JSON"));
    let reply = api
        .send(Method::POST, "/v1/assignments", "cw", serde_json::json!({"candidate_id": id, "org": "nobody-org", "kind": "coaching", "purpose": "coaching"}))
        .await;
    reply.expect(422);
    let reply = api
        .send(Method::POST, "/v1/assignments", "cw", serde_json::json!({"candidate_id": uuid::Uuid::new_v4(), "org": "coach-org", "kind": "coaching", "purpose": "coaching"}))
        .await;
    reply.expect(404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn matching_a_protected_candidate_is_403_for_a_caseworker_and_404_for_an_employer() {
    let api = Api::new(LIMITS);
    let id = api.register("M-PROT", true, false);
    let body = serde_json::json!({"candidate_id": id, "org": "emp-org", "kind": "matching", "purpose": "recruitment"});
    let reply = api
        .send(Method::POST, "/v1/assignments", "cw", body.clone())
        .await;
    reply.expect(403);
    assert!(reply.json()["policy_ids"]
        .to_string()
        .contains("protected-no-matching-assignment"));
    // Nothing tells an employer that the id exists, let alone that it is protected.
    let employer = api.send(Method::POST, "/v1/assignments", "emp", body).await;
    employer.expect(404);
    let missing = api
        .send(Method::POST, "/v1/assignments", "emp", serde_json::json!({"candidate_id": uuid::Uuid::new_v4(), "org": "emp-org", "kind": "matching", "purpose": "recruitment"}))
        .await;
    missing.expect(404);
    assert_eq!(employer.body, missing.body);
    for uri in [
        format!("/v1/candidates/{id}"),
        format!("/v1/candidates/{}", uuid::Uuid::new_v4()),
    ] {
        let reply = api
            .call(Method::DELETE, &uri, Some(api.token("emp")), None)
            .await;
        reply.expect(404);
        assert_eq!(reply.body, missing.body);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn erase_then_the_erasure_receipt() {
    let api = Api::new(LIMITS);
    let id = api.register("M-ERASE", false, false);
    api.get(&format!("/v1/candidates/{id}/erasure-receipt"), "dpo")
        .await
        .expect(404);
    api.call(
        Method::DELETE,
        &format!("/v1/candidates/{id}"),
        Some(api.token("cw")),
        None,
    )
    .await
    .expect(204);
    api.call(
        Method::DELETE,
        &format!("/v1/candidates/{id}"),
        Some(api.token("cw")),
        None,
    )
    .await
    .expect(404);
    api.call(
        Method::DELETE,
        "/v1/candidates/nope",
        Some(api.token("cw")),
        None,
    )
    .await
    .expect(422);
    let reply = api
        .get(&format!("/v1/candidates/{id}/erasure-receipt"), "dpo")
        .await;
    reply.expect(200);
    let receipt = reply.json();
    assert_eq!(receipt["format"], "cvvault-erasure-receipt/v1");
    let proof: cvvault::audit::verify::InclusionProof =
        serde_json::from_value(receipt["proof"].clone()).unwrap();
    cvvault::audit::verify::verify_proof(&proof, &api.vault.note_verifier().unwrap()).unwrap();
    api.get(&format!("/v1/candidates/{id}/erasure-receipt"), "cw")
        .await
        .expect(403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legal_hold_place_and_release() {
    let api = Api::new(LIMITS);
    let id = api.register("M-HOLD", false, false);
    let uri = format!("/v1/candidates/{id}/legal-hold");
    let reply = api
        .send(
            Method::PUT,
            &uri,
            "dpo",
            serde_json::json!({"reason": "case 2026-17"}),
        )
        .await;
    reply.expect(200);
    assert_eq!(reply.json()["legal_hold"], true);
    api.send(Method::PUT, &uri, "dpo", serde_json::json!({"reason": ""}))
        .await
        .expect(422);
    api.send(Method::PUT, &uri, "dpo", serde_json::json!({}))
        .await
        .expect(422);
    api.send(Method::PUT, &uri, "cw", serde_json::json!({"reason": "x"}))
        .await
        .expect(403);
    let reply = api
        .call(Method::DELETE, &uri, Some(api.token("dpo")), None)
        .await;
    reply.expect(200);
    assert_eq!(reply.json()["legal_hold"], false);
    let missing = format!("/v1/candidates/{}/legal-hold", uuid::Uuid::new_v4());
    api.call(Method::DELETE, &missing, Some(api.token("dpo")), None)
        .await
        .expect(404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subject_access_for_the_dpo_lists_categories_and_for_the_subject_holds_the_data() {
    let mut api = Api::new(LIMITS);
    let id = api.register("M-SAR", false, true);
    api.assign(id, "emp-org", "matching", "recruitment");
    api.get(
        &format!("/v1/candidates/{id}/extract?purpose=recruitment"),
        "emp",
    )
    .await
    .expect(200);
    let reply = api
        .get(&format!("/v1/candidates/{id}/subject-access"), "dpo")
        .await;
    reply.expect(200);
    let report = reply.json();
    assert_eq!(report["disclosures"].as_array().unwrap().len(), 1);
    assert_eq!(report["disclosures"][0]["recipient"], "emp");
    assert!(report["data"].is_null());
    assert!(!reply.text().contains("M-SAR"));

    let token = api.subject(id);
    let reply = api
        .call(
            Method::GET,
            &format!("/v1/candidates/{id}/subject-access"),
            Some(&token),
            None,
        )
        .await;
    reply.expect(200);
    assert!(
        reply.text().contains("M-SAR"),
        "the subject's own report holds the data"
    );
    let other = api.register("M-OTHER", false, false);
    api.call(
        Method::GET,
        &format!("/v1/candidates/{other}/subject-access"),
        Some(&token),
        None,
    )
    .await
    // Another candidate's report: the subject learns what an unknown id would tell it.
    .expect(404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_export_search_proof_and_checkpoint() {
    let api = Api::new(LIMITS);
    let id = api.register("M-AUDIT", false, false);
    let reply = api.get("/v1/audit/entries", "dpo").await;
    reply.expect(200);
    assert_eq!(reply.content_type(), "application/x-ndjson");
    let text = reply.text();
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines.len() >= 8, "{lines:?}");
    for line in &lines {
        let entry: cvvault::audit::entry::Entry = serde_json::from_str(line).unwrap();
        assert_eq!(
            entry.canonical_bytes(),
            line.as_bytes(),
            "the exported bytes are the hashed bytes"
        );
    }
    assert!(!reply.text().contains("M-AUDIT"));
    let reply = api.get("/v1/audit/entries?since=2099-01-01", "dpo").await;
    reply.expect(200);
    assert!(reply.body.is_empty());
    api.get("/v1/audit/entries?since=yesterday", "dpo")
        .await
        .expect(422);
    api.get("/v1/audit/entries", "emp").await.expect(403);

    let reply = api
        .get(&format!("/v1/candidates/{id}/audit-entries"), "dpo")
        .await;
    reply.expect(200);
    let entries = reply.json()["entries"].as_array().unwrap().clone();
    assert!(entries.iter().any(|e| e["action"] == "candidate.register"));
    api.get(&format!("/v1/candidates/{id}/audit-entries"), "cw")
        .await
        .expect(403);

    let reply = api.get("/v1/audit/entries/0/proof", "dpo").await;
    reply.expect(200);
    let proof: cvvault::audit::verify::InclusionProof =
        serde_json::from_slice(&reply.body).unwrap();
    cvvault::audit::verify::verify_proof(&proof, &api.vault.note_verifier().unwrap()).unwrap();
    api.get("/v1/audit/entries/999999/proof", "dpo")
        .await
        .expect(422);
    api.get("/v1/audit/entries/minus-one/proof", "dpo")
        .await
        .expect(422);
    api.get("/v1/audit/entries/0/proof", "emp")
        .await
        .expect(403);

    let reply = api.get("/v1/audit/checkpoint", "emp").await;
    reply.expect(200);
    assert!(reply.content_type().starts_with("text/plain"));
    assert!(reply.text().starts_with(api.vault.origin()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_metrics_openapi_and_unknown_routes() {
    let api = Api::new(LIMITS);
    let reply = api.call(Method::GET, "/livez", None, None).await;
    reply.expect(200);
    assert_eq!(reply.json()["status"], "ok");
    let reply = api.call(Method::GET, "/readyz", None, None).await;
    reply.expect(200);
    let ready = reply.json();
    assert_eq!(ready["checks"]["database"], "ok");
    assert_eq!(ready["checks"]["keyring"], "ok");
    assert_eq!(ready["checks"]["policy"], "ok");

    let id = api.register("M-METRICS", false, false);
    api.get(
        &format!("/v1/candidates/{id}/extract?purpose=recruitment"),
        "emp",
    )
    .await
    .expect(404);
    let reply = api.call(Method::GET, "/metrics", None, None).await;
    reply.expect(200);
    let text = reply.text();
    assert!(text.contains(r#"cvvault_http_requests_total{route="/v1/candidates/{candidate_id}/extract",method="GET",status="404"} 1"#), "{text}");
    assert!(
        !text.contains(&id.to_string()) && !text.contains("\"emp\"") && !text.contains("M-METRICS"),
        "{text}"
    );

    let reply = api.call(Method::GET, "/openapi.json", None, None).await;
    reply.expect(200);
    assert!(reply.json()["openapi"].as_str().unwrap().starts_with("3."));

    let reply = api.call(Method::GET, "/v2/anything", None, None).await;
    reply.expect(404);
    assert_problem(&reply);
    let reply = api
        .call(
            Method::PATCH,
            "/v1/assignments",
            Some(api.token("cw")),
            None,
        )
        .await;
    reply.expect(405);
    assert_problem(&reply);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_response_is_marked_no_store_and_nosniff() {
    let api = Api::new(LIMITS);
    for (uri, token) in [
        ("/livez", None),
        ("/v1/audit/checkpoint", Some(api.token("dpo"))),
        ("/nowhere", None),
    ] {
        let reply = api.call(Method::GET, uri, token, None).await;
        assert_eq!(reply.headers["cache-control"], "no-store", "{uri}");
        assert_eq!(reply.headers["x-content-type-options"], "nosniff", "{uri}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_candidate_is_registered_with_a_reference_found_by_it_and_updated() {
    let api = Api::new(LIMITS);
    let with_ref = r#"{"identity":{"name":"Anna Lindqvist"},"agency_reference":"AF-77"}"#;
    let reply = api
        .call(
            Method::POST,
            "/v1/candidates",
            Some(api.token("cw")),
            Some(with_ref.as_bytes()),
        )
        .await;
    reply.expect(201);
    let id = reply.json()["candidate_id"].as_str().unwrap().to_owned();
    // Twice: 409, with where to go instead.
    let again = api
        .call(
            Method::POST,
            "/v1/candidates",
            Some(api.token("cw")),
            Some(with_ref.as_bytes()),
        )
        .await;
    again.expect(409);
    assert_problem(&again);
    assert!(again.json()["type"]
        .as_str()
        .unwrap()
        .ends_with("duplicate-reference"));
    assert!(
        again.text().contains("/v1/candidates/find"),
        "{}",
        again.text()
    );

    let find = |token: String, body: &'static str| {
        let api = &api;
        async move {
            api.call(
                Method::POST,
                "/v1/candidates/find",
                Some(&token),
                Some(body.as_bytes()),
            )
            .await
        }
    };
    let found = find(
        api.token("cw").to_owned(),
        r#"{"agency_reference":"AF-77"}"#,
    )
    .await;
    found.expect(200);
    assert_eq!(found.json()["candidate_id"], id.as_str());
    let employer = find(
        api.token("emp").to_owned(),
        r#"{"agency_reference":"AF-77"}"#,
    )
    .await;
    let unknown = find(
        api.token("cw").to_owned(),
        r#"{"agency_reference":"AF-78"}"#,
    )
    .await;
    assert_eq!(employer.status.as_u16(), 404);
    assert_eq!(unknown.status.as_u16(), 404);
    let unknown_field = find(api.token("cw").to_owned(), r#"{"reference":"AF-77"}"#).await;
    assert_eq!(
        unknown_field.status.as_u16(),
        422,
        "{}",
        unknown_field.text()
    );

    let path = format!("/v1/candidates/{id}");
    let updated = api
        .call(
            Method::PATCH,
            &path,
            Some(api.token("cw")),
            Some(
                br#"{"contact":{"phone":"+46 70 123 45 67"},"professional":{"headline":"Joiner"}}"#,
            ),
        )
        .await;
    updated.expect(200);
    assert_eq!(
        updated.json()["groups"],
        serde_json::json!(["contact", "professional"])
    );
    let only = api
        .call(
            Method::PATCH,
            &format!("{path}?group=professional"),
            Some(api.token("cw")),
            Some(br#"{"contact":{"phone":"1"},"professional":{"headline":"Foreman"}}"#),
        )
        .await;
    only.expect(200);
    assert_eq!(only.json()["groups"], serde_json::json!(["professional"]));
    let bad_group = api
        .call(
            Method::PATCH,
            &format!("{path}?group=hobbies"),
            Some(api.token("cw")),
            Some(br#"{"contact":{}}"#),
        )
        .await;
    assert_eq!(bad_group.status.as_u16(), 422, "{}", bad_group.text());
    let employer = api
        .call(
            Method::PATCH,
            &path,
            Some(api.token("emp")),
            Some(br#"{"contact":{}}"#),
        )
        .await;
    assert_eq!(employer.status.as_u16(), 404, "{}", employer.text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_token_gets_401_saying_so_and_its_successor_works() {
    let mut api = Api::new(LIMITS);
    let emp = api.facts("emp").principal_id;
    let short = api.vault.issue_token_for(&emp, 3_600, None).unwrap();
    let successor = api.vault.rotate_token(&short.token_id, 7 * 86_400).unwrap();
    let checkpoint = |token: String| {
        let api = &api;
        async move {
            api.call(Method::GET, "/v1/audit/checkpoint", Some(&token), None)
                .await
        }
    };
    // Before it lapses, both the token and its successor authenticate.
    assert_eq!(
        checkpoint(short.token.to_string()).await.status.as_u16(),
        200
    );
    assert_eq!(
        checkpoint(successor.token.to_string())
            .await
            .status
            .as_u16(),
        200
    );

    api.clock.advance(3_601);
    let expired = checkpoint(short.token.to_string()).await;
    expired.expect(401);
    assert_problem(&expired);
    assert!(expired.json()["type"]
        .as_str()
        .unwrap()
        .ends_with("token-expired"));
    let detail = expired.json()["detail"].as_str().unwrap().to_owned();
    assert!(
        detail.contains(&short.token_id) && detail.contains("expired"),
        "{detail}"
    );
    assert!(
        !detail.contains("emp"),
        "the principal is not named: {detail}"
    );
    assert_eq!(
        checkpoint(successor.token.to_string())
            .await
            .status
            .as_u16(),
        200
    );

    // The expired attempt is on the record under the token's id.
    let dpo = api.issue("dpo");
    let mut export = api
        .call(Method::GET, "/v1/audit/entries", Some(&dpo), None)
        .await
        .text();
    export.retain(|c| c != '\r');
    assert!(
        export.contains(&format!("expired-token token_id={}", short.token_id)),
        "{export}"
    );
    // The listing shows when each expires.
    let listed = api.vault.list_tokens().unwrap();
    let row = listed
        .iter()
        .find(|t| t.token_id == short.token_id)
        .unwrap();
    assert!(row.expired(api.vault.now()));
}
