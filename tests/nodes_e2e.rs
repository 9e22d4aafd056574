//! Several nodes, one vault: two real `cvvault serve` processes on one PostgreSQL database
//! (CVVAULT_TEST_POSTGRES; `.ci/run` starts the server), driven at once over loopback.
//!
//! - one audit trail: after concurrent registrations, assignment changes and extracts through
//!   both, `audit verify` passes and every acknowledged 2xx has its entry;
//! - nothing acknowledged is lost when a node is killed (SIGKILL) in the middle of writes;
//! - a revoked token and a disabled principal are refused by both nodes at once, the extract
//!   quota counts across nodes, and a key rotation is followed without a restart.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::path::Path;
use std::sync::{Arc, Mutex};

use common::{cvvault, stderr, stdout};
use reqwest::blocking::Client;

struct Node {
    served: common::Served,
    base: String,
}

impl Node {
    fn start(root: &Path) -> Node {
        let served = common::serve(root, &["--bind", "127.0.0.1:0"], "http");
        let base = format!("http://{}", served.address);
        Node { served, base }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn stop(mut self) {
        let pid = self.served.child.id().to_string();
        assert!(std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success());
        assert!(self.served.child.wait().unwrap().success());
    }

    fn kill(mut self) {
        self.served.child.kill().unwrap();
        self.served.child.wait().unwrap();
    }
}

/// A vault on its own database with a caseworker, two employers and a DPO, and tokens.
struct Setup {
    dir: tempfile::TempDir,
    cw: String,
    emp: String,
    emp2: String,
}

fn setup(quota: u32) -> Option<Setup> {
    if !common::on_postgres() {
        eprintln!("several nodes need PostgreSQL: set CVVAULT_TEST_POSTGRES (.ci/run does)");
        return None;
    }
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
    let limits = root.join("policy/limits.toml");
    let text = std::fs::read_to_string(&limits).unwrap();
    std::fs::write(
        &limits,
        text.replace("extracts = 100", &format!("extracts = {quota}")),
    )
    .unwrap();
    let token = |principal: &str| common::issue_token(root, principal);
    Some(Setup {
        cw: token("cw"),
        emp: token("emp"),
        emp2: token("emp2"),
        dir,
    })
}

/// What a client was told: 2xx answers, by kind, with the candidate they name.
#[derive(Default)]
struct Acknowledged {
    registered: Vec<String>,
    opened: Vec<String>,
    extracted: Vec<String>,
    closed: Vec<String>,
}

/// One candidate's cycle through two nodes: registered on `a`, assignment opened on `b`,
/// extracted on `a`, closed on `b`. Stops at the first step that is not acknowledged (a
/// node that went away), and records only what was.
fn cycle(
    client: &Client,
    a: &str,
    b: &str,
    s: &SetupTokens,
    acked: &Mutex<Acknowledged>,
    n: usize,
) {
    let profile = format!(
        r#"{{"identity":{{"name":"NODES-MARKER {n}"}},"professional":{{"headline":"Welder"}},"control":{{"consents":{{"employer_contact":true}}}}}}"#
    );
    let Ok(reply) = client
        .post(format!("{a}/v1/candidates"))
        .bearer_auth(&s.cw)
        .header("content-type", "application/json")
        .body(profile)
        .send()
    else {
        return;
    };
    if reply.status() != 201 {
        return;
    }
    let id = reply.json::<serde_json::Value>().unwrap()["candidate_id"]
        .as_str()
        .unwrap()
        .to_owned();
    acked.lock().unwrap().registered.push(id.clone());
    let Ok(reply) = client
        .post(format!("{b}/v1/assignments"))
        .bearer_auth(&s.cw)
        .json(&serde_json::json!({"candidate_id": id, "org": "emp-org", "kind": "matching", "purpose": "recruitment"}))
        .send()
    else {
        return;
    };
    if reply.status() != 201 {
        return;
    }
    let assignment = reply.json::<serde_json::Value>().unwrap()["assignment_id"]
        .as_str()
        .unwrap()
        .to_owned();
    acked.lock().unwrap().opened.push(id.clone());
    let Ok(reply) = client
        .get(format!(
            "{a}/v1/candidates/{id}/extract?purpose=recruitment"
        ))
        .bearer_auth(&s.emp)
        .send()
    else {
        return;
    };
    if reply.status() != 200 {
        return;
    }
    assert!(reply.text().unwrap().contains(&format!("NODES-MARKER {n}")));
    acked.lock().unwrap().extracted.push(id.clone());
    let Ok(reply) = client
        .post(format!("{b}/v1/assignments/{assignment}/close"))
        .bearer_auth(&s.cw)
        .json(&serde_json::json!({"reason": "placed"}))
        .send()
    else {
        return;
    };
    if reply.status().is_success() {
        acked.lock().unwrap().closed.push(id);
    }
}

#[derive(Clone)]
struct SetupTokens {
    cw: String,
    emp: String,
}

/// The actions of a candidate's allowed entries, from `audit search` as the DPO.
fn allowed_actions(root: &Path, candidate: &str) -> Vec<String> {
    let out = cvvault(
        root,
        &[
            "--json",
            "audit",
            "search",
            "--candidate",
            candidate,
            "--as",
            "dpo",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    stdout(&out)
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .flat_map(|value| match value {
            serde_json::Value::Array(entries) => entries,
            other => vec![other],
        })
        .filter(|entry| entry["decision"] == "allow")
        .map(|entry| entry["action"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// Every acknowledged step has its allowed entry in the one trail, and the trail verifies.
fn every_acknowledged_step_is_on_the_record(root: &Path, acked: &Acknowledged) {
    let verified = cvvault(root, &["audit", "verify", "--as", "dpo"]);
    assert_eq!(verified.status.code(), Some(0), "{}", stderr(&verified));
    for id in &acked.registered {
        let actions = allowed_actions(root, id);
        let count = |action: &str| actions.iter().filter(|a| a.as_str() == action).count();
        let want = |list: &Vec<String>| list.iter().filter(|x| *x == id).count();
        assert!(count("candidate.register") >= 1, "{id}: {actions:?}");
        assert!(
            count("assignment.open") >= want(&acked.opened),
            "{id}: {actions:?}"
        );
        assert!(
            count("extract") >= want(&acked.extracted),
            "{id}: {actions:?}"
        );
        assert!(
            count("assignment.close") >= want(&acked.closed),
            "{id}: {actions:?}"
        );
    }
}

#[test]
fn two_nodes_on_one_database_keep_one_audit_trail_under_concurrent_writes() {
    let Some(s) = setup(100_000) else { return };
    let root = s.dir.path();
    let (a, b) = (Node::start(root), Node::start(root));
    let tokens = SetupTokens {
        cw: s.cw.clone(),
        emp: s.emp.clone(),
    };
    let acked = Arc::new(Mutex::new(Acknowledged::default()));
    let workers: Vec<_> = (0..4)
        .map(|t| {
            let (first, second) = if t % 2 == 0 {
                (a.base.clone(), b.base.clone())
            } else {
                (b.base.clone(), a.base.clone())
            };
            let (tokens, acked) = (tokens.clone(), acked.clone());
            std::thread::spawn(move || {
                let client = Client::new();
                for i in 0..8 {
                    let (x, y) = if i % 2 == 0 {
                        (&first, &second)
                    } else {
                        (&second, &first)
                    };
                    cycle(&client, x, y, &tokens, &acked, t * 100 + i);
                }
            })
        })
        .collect();
    for worker in workers {
        worker.join().unwrap();
    }
    let acked = Arc::try_unwrap(acked).ok().unwrap().into_inner().unwrap();
    assert_eq!(acked.registered.len(), 32, "every cycle was acknowledged");
    assert_eq!(acked.closed.len(), 32);
    a.stop();
    b.stop();
    every_acknowledged_step_is_on_the_record(root, &acked);
}

#[test]
fn a_node_killed_during_writes_loses_nothing_it_acknowledged() {
    let Some(s) = setup(100_000) else { return };
    let root = s.dir.path();
    let (a, b) = (Node::start(root), Node::start(root));
    let tokens = SetupTokens {
        cw: s.cw.clone(),
        emp: s.emp.clone(),
    };
    let acked = Arc::new(Mutex::new(Acknowledged::default()));
    let (a_base, b_base) = (a.base.clone(), b.base.clone());
    let workers: Vec<_> = (0..4)
        .map(|t| {
            let (tokens, acked) = (tokens.clone(), acked.clone());
            let (a_base, b_base) = (a_base.clone(), b_base.clone());
            std::thread::spawn(move || {
                let client = Client::new();
                for i in 0..12 {
                    // Every step of the first half through the node that is killed.
                    let (x, y) = if i % 2 == 0 {
                        (&a_base, &a_base)
                    } else {
                        (&a_base, &b_base)
                    };
                    cycle(&client, x, y, &tokens, &acked, t * 100 + i);
                }
            })
        })
        .collect();
    // Kill the node once some of its writes were acknowledged, while others are in flight.
    loop {
        if acked.lock().unwrap().registered.len() >= 6 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    a.kill();
    for worker in workers {
        worker.join().unwrap();
    }
    let acked = Arc::try_unwrap(acked).ok().unwrap().into_inner().unwrap();
    assert!(acked.registered.len() >= 6, "{}", acked.registered.len());
    // The surviving node goes on serving the same vault.
    let client = Client::new();
    for id in &acked.registered {
        let reply = client
            .get(b.url(&format!("/v1/candidates/{id}/extract?purpose=recruitment")))
            .bearer_auth(&s.emp)
            .send()
            .unwrap();
        assert!(
            [200, 404].contains(&reply.status().as_u16()),
            "{id}: {}",
            reply.status()
        );
    }
    b.stop();
    every_acknowledged_step_is_on_the_record(root, &acked);
    // Every acknowledged registration is there, whole, on the surviving store.
    let out = cvvault(root, &["--json", "keys", "verify"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

#[test]
fn revocation_disabling_quotas_and_rotation_hold_on_every_node_at_once() {
    let Some(s) = setup(6) else { return };
    let root = s.dir.path();
    let (a, b) = (Node::start(root), Node::start(root));
    let client = Client::new();
    let register = |node: &Node, n: usize| -> String {
        let reply = client
            .post(node.url("/v1/candidates"))
            .bearer_auth(&s.cw)
            .header("content-type", "application/json")
            .body(format!(r#"{{"identity":{{"name":"ROT-{n}"}},"control":{{"consents":{{"employer_contact":true}}}}}}"#))
            .send()
            .unwrap();
        assert_eq!(reply.status(), 201, "{}", reply.text().unwrap_or_default());
        reply.json::<serde_json::Value>().unwrap()["candidate_id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let id = register(&a, 1);
    let reply = client
        .post(b.url("/v1/assignments"))
        .bearer_auth(&s.cw)
        .json(&serde_json::json!({"candidate_id": id, "org": "emp-org", "kind": "matching", "purpose": "recruitment"}))
        .send()
        .unwrap();
    assert_eq!(reply.status(), 201);
    let extract = |node: &Node, token: &str| {
        client
            .get(node.url(&format!("/v1/candidates/{id}/extract?purpose=recruitment")))
            .bearer_auth(token)
            .send()
            .unwrap()
            .status()
            .as_u16()
    };

    // A key rotation from the CLI beside both nodes: each follows it without a restart.
    let out = cvvault(root, &["keys", "rotate"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(extract(&a, &s.emp), 200);
    assert_eq!(extract(&b, &s.emp), 200);
    register(&b, 2);
    register(&a, 3);

    // The quota (6 extracts a window) counts the attempts of both nodes: 2 above, 4 more.
    for node in [&a, &b, &a, &b] {
        assert_eq!(extract(node, &s.emp), 200);
    }
    assert_eq!(extract(&b, &s.emp), 429, "the 7th attempt, whichever node");
    assert_eq!(extract(&a, &s.emp), 429);

    // A revoked token is refused by both nodes at once.
    let listed = cvvault(root, &["--json", "token", "list"]);
    let tokens: serde_json::Value = serde_json::from_str(&stdout(&listed)).unwrap();
    let emp2_token = tokens
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["principal_id"] == "emp2")
        .unwrap()["token_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(extract(&a, &s.emp2), 404, "unrelated employer: not found");
    let out = cvvault(root, &["token", "revoke", &emp2_token]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(extract(&a, &s.emp2), 401);
    assert_eq!(extract(&b, &s.emp2), 401);

    // A principal disabled from the CLI is refused by both nodes at once.
    let out = cvvault(root, &["principal", "disable", "cw"]);
    assert!(out.status.success(), "{}", stderr(&out));
    for node in [&a, &b] {
        let reply = client
            .post(node.url("/v1/candidates"))
            .bearer_auth(&s.cw)
            .header("content-type", "application/json")
            .body(r#"{"identity":{"name":"DISABLED"}}"#)
            .send()
            .unwrap();
        assert_eq!(reply.status(), 403, "{}", node.base);
    }

    // The database drops every connection (a restart, a failover): each node's next request
    // finds its pooled connections and its writer's closed, connects again and is served.
    let url = common::database_url(root).unwrap();
    let mut admin = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    // With a timeout, pg_terminate_backend returns once the backend has ended (PostgreSQL 14
    // and later); only the clients' backends, not the server's own workers.
    let ended: Vec<bool> = admin
        .query(
            "SELECT pg_terminate_backend(pid, 10000) FROM pg_stat_activity
             WHERE datname = current_database() AND pid <> pg_backend_pid()
               AND backend_type = 'client backend'",
            &[],
        )
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert!(
        ended.iter().any(|e| *e),
        "the nodes' connections ended: {ended:?}"
    );
    for node in [&a, &b] {
        // The employer may not list who works with the candidate: a 404, and a refusal on
        // the record. So a read, then the writer's group, both on new connections.
        let reply = client
            .get(node.url(&format!("/v1/candidates/{id}/assignments")))
            .bearer_auth(&s.emp)
            .send()
            .unwrap();
        let status = reply.status();
        assert_eq!(
            status,
            404,
            "{}: {}",
            node.base,
            reply.text().unwrap_or_default()
        );
    }
    a.stop();
    b.stop();
    let verified = cvvault(root, &["audit", "verify", "--as", "dpo"]);
    assert_eq!(verified.status.code(), Some(0), "{}", stderr(&verified));
}
