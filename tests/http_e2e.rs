//! End to end over a real socket: the real binary (`init`, `principal add`, `token issue`,
//! `serve --bind 127.0.0.1:0`), the whole lifecycle driven by an HTTP client, a token revoked
//! by the CLI while the server runs, then SIGTERM: exit 0 and a final checkpoint that covers
//! every entry.

// Test code: a failed step should stop the test loudly (clippy.toml allows this only inside
// #[test] functions, not in their helpers).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::io::Read;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::{cvvault, stderr, stdout};
use reqwest::blocking::Client;

struct Server {
    served: common::Served,
    base: String,
}

fn start(root: &Path) -> (Server, std::thread::JoinHandle<String>) {
    let mut served = common::serve(
        root,
        &["--bind", "127.0.0.1:0", "--checkpoint-interval", "1"],
        "http",
    );
    let rest = served.output.take().unwrap();
    let base = format!("http://{}", served.address);
    (Server { served, base }, rest)
}

fn token(root: &Path, principal: &str) -> String {
    common::issue_token(root, principal)
}

#[test]
fn the_real_binary_serves_the_lifecycle_and_signs_a_final_checkpoint_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let out = cvvault(root, &["init"]);
    assert!(out.status.success(), "{}", stderr(&out));
    common::add_principals(
        root,
        &[
            ("cw", "caseworker", "agency"),
            ("emp", "employer", "emp-org"),
            ("emp2", "employer", "emp2-org"),
            ("dpo", "dpo", "agency"),
        ],
    );
    let (cw, emp, emp2, dpo) = (
        token(root, "cw"),
        token(root, "emp"),
        token(root, "emp2"),
        token(root, "dpo"),
    );
    let identity = age::x25519::Identity::generate();
    std::fs::create_dir_all(root.join("keys/recipients")).unwrap();
    std::fs::write(
        root.join("keys/recipients/emp.txt"),
        format!("{}\n", identity.to_public()),
    )
    .unwrap();

    let (server, rest) = start(root);
    let client = Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let url = |path: &str| format!("{}{path}", server.base);

    assert_eq!(client.get(url("/livez")).send().unwrap().status(), 200);
    assert_eq!(client.get(url("/readyz")).send().unwrap().status(), 200);
    assert_eq!(
        client
            .get(url("/v1/audit/checkpoint"))
            .send()
            .unwrap()
            .status(),
        401
    );

    let profile = r#"{"identity":{"name":"E2E-MARKER Person"},"contact":{"email":"e2e@example.org"},"professional":{"headline":"Welder"},"special":{"health":"E2E-SPECIAL"},"control":{"consents":{"employer_contact":true}}}"#;
    let reply = client
        .post(url("/v1/candidates"))
        .bearer_auth(&cw)
        .header("content-type", "application/json")
        .body(profile)
        .send()
        .unwrap();
    assert_eq!(reply.status(), 201);
    let candidate = reply.json::<serde_json::Value>().unwrap()["candidate_id"]
        .as_str()
        .unwrap()
        .to_owned();

    let extract = url(&format!(
        "/v1/candidates/{candidate}/extract?purpose=recruitment"
    ));
    let before = client.get(&extract).bearer_auth(&emp).send().unwrap();
    assert_eq!(before.status(), 404);
    let before = before.bytes().unwrap();

    let reply = client
        .post(url("/v1/assignments"))
        .bearer_auth(&cw)
        .json(&serde_json::json!({"candidate_id": candidate, "org": "emp-org", "kind": "matching", "purpose": "recruitment"}))
        .send()
        .unwrap();
    assert_eq!(reply.status(), 201);
    let assignment = reply.json::<serde_json::Value>().unwrap()["assignment_id"]
        .as_str()
        .unwrap()
        .to_owned();

    let reply = client.get(&extract).bearer_auth(&emp).send().unwrap();
    assert_eq!(reply.status(), 200);
    let text = reply.text().unwrap();
    assert!(
        text.contains("E2E-MARKER") && !text.contains("E2E-SPECIAL"),
        "{text}"
    );

    let reply = client
        .get(&extract)
        .bearer_auth(&emp)
        .header("accept", "application/age")
        .send()
        .unwrap();
    assert_eq!(reply.status(), 200);
    assert_eq!(reply.headers()["content-type"], "application/age");
    let sealed = reply.bytes().unwrap();
    let mut plain = String::new();
    age::Decryptor::new(&sealed[..])
        .unwrap()
        .decrypt(std::iter::once(&identity as &dyn age::Identity))
        .unwrap()
        .read_to_string(&mut plain)
        .unwrap();
    assert!(plain.contains("E2E-MARKER"));

    // Another employer: the same 404 as before the assignment existed.
    let other = client.get(&extract).bearer_auth(&emp2).send().unwrap();
    assert_eq!(other.status(), 404);
    assert_eq!(other.bytes().unwrap(), before);

    // The operator revokes a token with the CLI while the server runs (a second process
    // appending to the same audit trail); the server sees it at once and keeps writing.
    let listed = cvvault(root, &["--json", "token", "list"]);
    let tokens: serde_json::Value = serde_json::from_str(&stdout(&listed)).unwrap();
    let emp2_id = tokens
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["principal_id"] == "emp2")
        .unwrap()["token_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let out = cvvault(root, &["token", "revoke", &emp2_id]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        client
            .get(&extract)
            .bearer_auth(&emp2)
            .send()
            .unwrap()
            .status(),
        401
    );

    let reply = client
        .get(url(&format!("/v1/candidates/{candidate}/subject-access")))
        .bearer_auth(&dpo)
        .send()
        .unwrap();
    assert_eq!(reply.status(), 200);
    assert_eq!(
        reply.json::<serde_json::Value>().unwrap()["disclosures"]
            .as_array()
            .unwrap()
            .len(),
        2
    );

    let reply = client
        .post(url(&format!("/v1/assignments/{assignment}/close")))
        .bearer_auth(&cw)
        .json(&serde_json::json!({"reason": "placed in work"}))
        .send()
        .unwrap();
    assert_eq!(reply.status(), 200);
    assert_eq!(
        client
            .delete(url(&format!("/v1/candidates/{candidate}")))
            .bearer_auth(&cw)
            .send()
            .unwrap()
            .status(),
        204
    );
    let reply = client
        .get(url(&format!("/v1/candidates/{candidate}/erasure-receipt")))
        .bearer_auth(&dpo)
        .send()
        .unwrap();
    assert_eq!(reply.status(), 200);
    let receipt = dir.path().join("receipt.json");
    std::fs::write(&receipt, reply.bytes().unwrap()).unwrap();

    let export = client
        .get(url("/v1/audit/entries"))
        .bearer_auth(&dpo)
        .send()
        .unwrap();
    assert_eq!(export.status(), 200);
    let exported = export.text().unwrap();
    assert!(exported.lines().count() > 15);
    assert!(!exported.contains("E2E-MARKER"));
    let metrics = client.get(url("/metrics")).send().unwrap().text().unwrap();
    assert!(metrics.contains("cvvault_http_requests_total"));
    assert!(!metrics.contains(&candidate));

    // SIGTERM: drain, final checkpoint, exit 0.
    let mut server = server;
    let pid = server.served.child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let status = server.served.child.wait().unwrap();
    assert!(status.success(), "serve exited with {status}");
    assert!(rest.join().unwrap().contains("final checkpoint signed"));

    let (entries, signed) = common::query_pair(
        root,
        "SELECT (SELECT count(*) FROM audit_entries), (SELECT max(tree_size) FROM audit_checkpoints)",
    );
    assert_eq!(signed, entries, "the final checkpoint covers every entry");
    let out = cvvault(root, &["audit", "checkpoint"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let size: u64 = stdout(&out).lines().nth(1).unwrap().parse().unwrap();
    assert_eq!(size as i64, entries);

    // The trail written by two processes verifies, and the receipt verifies offline.
    let out = cvvault(root, &["--as", "dpo", "audit", "verify"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = cvvault(root, &["audit", "verify-proof", receipt.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn token_commands_print_the_token_once_and_refuse_what_they_cannot_do() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    assert!(cvvault(root, &["init"]).status.success());
    let out = cvvault(root, &["token", "issue", "--principal", "ghost"]);
    assert_eq!(out.status.code(), Some(65), "{}", stderr(&out));
    assert!(stderr(&out).contains("principal add"));
    assert!(cvvault(
        root,
        &[
            "principal",
            "add",
            "dpo",
            "--role",
            "dpo",
            "--org",
            "agency"
        ]
    )
    .status
    .success());
    let token = token(root, "dpo");
    let list = stdout(&cvvault(root, &["token", "list"]));
    let token_id = token.split('_').nth(1).unwrap();
    assert!(list.contains(token_id) && list.contains("dpo"));
    assert!(
        !list.contains(token.rsplit('_').next().unwrap()),
        "the secret is never listed"
    );
    assert!(cvvault(root, &["token", "revoke", token_id])
        .status
        .success());
    let again = cvvault(root, &["token", "revoke", token_id]);
    assert_eq!(again.status.code(), Some(5), "{}", stderr(&again));
    let bad = cvvault(root, &["token", "revoke", "../../etc"]);
    assert_eq!(bad.status.code(), Some(65));
    if !common::on_postgres() {
        let db = common::db_and_wal(&root.join("data/vault.db"));
        assert!(
            !common::contains(&db, token.as_bytes()),
            "only the hash is stored"
        );
    }
}

#[test]
fn demo_over_http_walks_the_whole_lifecycle() {
    let dir = tempfile::tempdir().unwrap();
    let out = cvvault(dir.path(), &["demo", "--http"]);
    let text = stdout(&out);
    assert!(out.status.success(), "{text}\n{}", stderr(&out));
    for expected in [
        "listening on http://127.0.0.1:",
        "unrelated and missing bodies identical: true",
        "-> 429",
        "final checkpoint covers",
        "demo over HTTP complete",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
}

#[test]
fn sigterm_right_after_the_address_is_announced_still_exits_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    assert!(cvvault(dir.path(), &["init"]).status.success());
    let (mut server, rest) = start(dir.path());
    let pid = server.served.child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let status = server.served.child.wait().unwrap();
    assert!(status.success(), "serve exited with {status}");
    assert!(rest.join().unwrap().contains("final checkpoint signed"));
}
