//! The edges of the HTTP API that the 2026-12 probes found open: `/metrics` labels taken from
//! requests (it grew without bound, without a token), and JSON bodies accepted under any
//! media type.

use axum::http::Method;

use crate::support::{Api, LIMITS};

async fn metrics_text(api: &Api) -> String {
    let reply = api.call(Method::GET, "/metrics", None, None).await;
    assert_eq!(reply.status.as_u16(), 200);
    reply.text()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_stay_the_same_size_whatever_methods_and_paths_are_sent() {
    let api = Api::new(LIMITS);
    // One request of each kind first, so that every series that can exist does.
    for method in ["BREW", "GET"] {
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        api.call(method, "/no/such/path/0", None, None).await;
    }
    api.call(Method::from_bytes(b"BREW").unwrap(), "/livez", None, None)
        .await;
    metrics_text(&api).await;
    let before = metrics_text(&api).await;
    for n in 0..10_000u32 {
        // A distinct invented method and a distinct path every time.
        let method = Method::from_bytes(format!("M{n:05}X").as_bytes()).unwrap();
        let path = if n % 2 == 0 {
            format!("/no/such/path/{n}")
        } else {
            "/livez".to_owned()
        };
        api.call(method, &path, None, None).await;
    }
    let long = Method::from_bytes("X".repeat(60_000).as_bytes()).unwrap();
    api.call(long, &format!("/{}", "p".repeat(4_000)), None, None)
        .await;
    let after = metrics_text(&api).await;
    assert_eq!(
        before.lines().count(),
        after.lines().count(),
        "no new series:\n{after}"
    );
    // Only the counts' digits may differ.
    assert!(
        after.len() < before.len() + 400,
        "{} -> {}",
        before.len(),
        after.len()
    );
    assert!(!after.contains("M00001X") && !after.contains("XXXX") && !after.contains("/no/such"));
    assert!(after.contains("method=\"other\""), "{after}");
    assert!(after.contains("route=\"unmatched\""), "{after}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_json_body_under_another_media_type_gets_415() {
    let api = Api::new(LIMITS);
    let id = api.register("MEDIATYPE", false, false);
    let body = serde_json::json!({
        "candidate_id": id, "org": "emp-org", "kind": "matching", "purpose": "recruitment"
    })
    .to_string();
    for content_type in [
        "text/plain",
        "application/x-www-form-urlencoded",
        "application/jsonx",
    ] {
        let reply = api
            .call_with(
                Method::POST,
                "/v1/assignments",
                Some(api.token("cw")),
                Some(body.as_bytes()),
                &[("content-type", content_type)],
            )
            .await;
        assert_eq!(
            reply.status.as_u16(),
            415,
            "{content_type}: {}",
            reply.text()
        );
        assert!(
            reply.text().contains("Content-Type: application/json"),
            "{}",
            reply.text()
        );
    }
    // The same body as JSON is taken, a charset parameter included.
    let reply = api
        .call_with(
            Method::POST,
            "/v1/assignments",
            Some(api.token("cw")),
            Some(body.as_bytes()),
            &[("content-type", "application/json; charset=utf-8")],
        )
        .await;
    assert_eq!(reply.status.as_u16(), 201, "{}", reply.text());
    // A profile document too; and without a token the answer stays 401.
    let reply = api
        .call_with(
            Method::POST,
            "/v1/candidates",
            Some(api.token("cw")),
            Some(b"{}"),
            &[("content-type", "text/csv")],
        )
        .await;
    assert_eq!(reply.status.as_u16(), 415, "{}", reply.text());
    let reply = api
        .call_with(
            Method::POST,
            "/v1/candidates",
            None,
            Some(b"{}"),
            &[("content-type", "text/csv")],
        )
        .await;
    assert_eq!(reply.status.as_u16(), 401, "{}", reply.text());
}
