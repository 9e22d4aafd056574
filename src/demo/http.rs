//! `cvvault demo --http`: the lifecycle of `cvvault demo`, driven over the HTTP API. A server
//! runs in this process on 127.0.0.1 (any free port); an HTTP client acts with one bearer
//! token per principal, and each step prints what went over the wire.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use reqwest::blocking::Client;
use reqwest::{Method, StatusCode};

use super::{Demo, DemoArgs};
use crate::cli::Context;
use crate::crypto::keyring::{self, Unlock};
use crate::error::{Error, Result};
use crate::ids::PrincipalId;
use crate::paths::Paths;
use crate::server::{self, AppState};
use crate::settings::Limits;
use crate::synth::Synth;
use crate::vault::{InitOptions, Vault};
use crate::vocabulary::Role;

/// The demo's quota, small enough to show the refusal: a harvesting employer hits it.
const DEMO_LIMITS: &str =
    "[extract]\nextracts = 8\nwindow_seconds = 3600\n\n[http]\nmax_body_bytes = 262144\n";

/// One HTTP exchange, as the demo shows it.
struct Reply {
    status: StatusCode,
    content_type: String,
    retry_after: Option<String>,
    body: Vec<u8>,
}

impl Reply {
    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }

    /// `404 candidate not found` and the like, from a problem+json body.
    fn summary(&self) -> String {
        let detail = self
            .json()
            .get("detail")
            .and_then(|d| d.as_str())
            .map(str::to_owned);
        match detail {
            Some(detail) => format!("{} {detail}", self.status.as_u16()),
            None => format!("{}", self.status),
        }
    }
}

struct Api {
    client: Client,
    base: String,
}

impl Api {
    fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        accept: Option<&str>,
        body: Option<Vec<u8>>,
    ) -> Result<Reply> {
        let mut request = self
            .client
            .request(method.clone(), format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(accept) = accept {
            request = request.header(reqwest::header::ACCEPT, accept);
        }
        if let Some(body) = body {
            request = request
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body);
        }
        let response = request.send().map_err(|e| {
            Error::io(
                format!("HTTP {method} {path}"),
                std::io::Error::other(e.to_string()),
            )
        })?;
        let header = |name: reqwest::header::HeaderName| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let (status, content_type, retry_after) = (
            response.status(),
            header(reqwest::header::CONTENT_TYPE).unwrap_or_default(),
            header(reqwest::header::RETRY_AFTER),
        );
        let body = response
            .bytes()
            .map_err(|e| {
                Error::io(
                    format!("HTTP {method} {path}"),
                    std::io::Error::other(e.to_string()),
                )
            })?
            .to_vec();
        println!("  {method} {path} -> {}", status.as_u16());
        Ok(Reply {
            status,
            content_type,
            retry_after,
            body,
        })
    }

    fn get(&self, path: &str, token: &str) -> Result<Reply> {
        self.call(Method::GET, path, Some(token), None, None)
    }

    fn send_json(
        &self,
        method: Method,
        path: &str,
        token: &str,
        body: &serde_json::Value,
    ) -> Result<Reply> {
        self.call(
            method,
            path,
            Some(token),
            None,
            Some(body.to_string().into_bytes()),
        )
    }
}

/// Expects a status; a demo that goes off script stops with the reply in the message.
fn expect(reply: &Reply, status: u16) -> Result<()> {
    if reply.status.as_u16() == status {
        Ok(())
    } else {
        Err(Error::Conflict(format!(
            "the demo expected HTTP {status} but got {} ({})",
            reply.status.as_u16(),
            String::from_utf8_lossy(&reply.body)
                .chars()
                .take(300)
                .collect::<String>()
        )))
    }
}

/// A member of a JSON object, or null.
fn at<'a>(value: &'a serde_json::Value, key: &str) -> &'a serde_json::Value {
    static NULL: serde_json::Value = serde_json::Value::Null;
    value.get(key).unwrap_or(&NULL)
}

fn text_of(reply: &Reply, key: &str) -> Result<String> {
    reply
        .json()
        .get(key)
        .and_then(|v| v.as_str())
        .map(str::to_owned)
        .ok_or_else(|| Error::Conflict(format!("the demo expected `{key}` in the reply")))
}

fn groups_of(reply: &Reply) -> String {
    reply
        .json()
        .get("groups")
        .and_then(|g| g.as_object())
        .map(|g| g.keys().cloned().collect::<Vec<_>>().join(", "))
        .unwrap_or_default()
}

pub fn run(_ctx: &Context, args: DemoArgs) -> Result<ExitCode> {
    let dir = tempfile::Builder::new()
        .prefix("cvvault-demo-http-")
        .tempdir()
        .map_err(|e| Error::io(std::env::temp_dir(), e))?;
    let paths = Paths::under(dir.path());
    let demo = Demo {
        dir,
        step: std::cell::Cell::new(0),
    };

    demo.say("init a vault; set a small extract quota in policy/limits.toml for the demo");
    let report = Vault::init(
        &paths,
        InitOptions {
            passphrase: None,
            identity: None,
            recovery_recipients: vec![],
        },
    )?;
    std::fs::write(paths.limits_settings(), DEMO_LIMITS)
        .map_err(|e| Error::io(paths.limits_settings(), e))?;
    println!(
        "vault in {}\ncheckpoint verifier key: {}",
        demo.dir.path().display(),
        report.verifier_key
    );
    let vault = Arc::new(Vault::open(
        &paths,
        &Unlock::Identity(paths.default_identity()),
    )?);
    let limits = Limits::load(&paths.limits_settings())?;

    demo.say(
        "principals and their bearer tokens (`cvvault token issue`: shown once, stored as SHA-256)",
    );
    let mut tokens = std::collections::HashMap::new();
    for (id, role, org) in [
        ("cw-lena", Role::Caseworker, "agency"),
        ("coach-omar", Role::Provider, "nystart-coaching"),
        ("hr-bygg", Role::Employer, "norrbygg-ab"),
        ("hr-other", Role::Employer, "other-employer-ab"),
        ("dpo-sara", Role::Dpo, "agency"),
    ] {
        let principal: PrincipalId = id.parse()?;
        vault.add_principal(principal.clone(), role, org.parse()?, None)?;
        let issued = vault.issue_token(&principal)?;
        println!(
            "  {role:<10} {id:<12} of {org:<18} token {}",
            issued.token_id
        );
        tokens.insert(id, issued.token);
    }
    let token = |id: &str| -> Result<String> {
        tokens
            .get(id)
            .map(|t| t.as_str().to_owned())
            .ok_or_else(|| Error::invalid_input(format!("no demo token for {id}")))
    };
    let (employer_identity, employer_recipient) = keyring::generate_identity();
    let identity_path = demo.dir.path().join("hr-bygg-identity.txt");
    keyring::write_private_file(&identity_path, employer_identity.as_bytes())?;
    let recipient_path = paths.principal_recipient(&"hr-bygg".parse()?);
    if let Some(parent) = recipient_path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
    }
    std::fs::write(&recipient_path, format!("{employer_recipient}\n"))
        .map_err(|e| Error::io(&recipient_path, e))?;

    demo.say("serve the API on 127.0.0.1 (any free port), in this process");
    let listener =
        std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| Error::io("127.0.0.1:0", e))?;
    let address = listener
        .local_addr()
        .map_err(|e| Error::io("listen address", e))?;
    listener
        .set_nonblocking(true)
        .map_err(|e| Error::io("listen address", e))?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let state = AppState::new(vault.clone(), &limits);
    let bounds = server::edge::EdgeBounds::from_limits(&limits.http);
    let server = std::thread::Builder::new()
        .name("cvvault-demo-server".into())
        .spawn(move || -> Result<()> {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .map_err(|e| Error::io("tokio runtime", e))?;
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener)
                    .map_err(|e| Error::io("listen address", e))?;
                server::serve(
                    listener,
                    state,
                    (Duration::from_secs(60), bounds, None),
                    async move {
                        let _ = stopped.await;
                    },
                )
                .await
            })
        })
        .map_err(|e| Error::io("server thread", e))?;
    println!("listening on http://{address}");
    let api = Api {
        client: Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| Error::io("HTTP client", std::io::Error::other(e.to_string())))?,
        base: format!("http://{address}"),
    };
    let walked = walk(&demo, &api, &token, &identity_path);

    demo.say("shutdown: drain requests, sign the final checkpoint");
    let _ = stop.send(());
    let served = server.join().map_err(|_| {
        Error::io(
            "server thread",
            std::io::Error::other("the server thread panicked"),
        )
    })?;
    // The final checkpoint: signed now, and `close` stops the writer after it.
    let note = vault.audit_checkpoint()?;
    vault.close()?;
    walked?;
    served?;
    println!(
        "final checkpoint covers {} audit entries",
        note.lines().nth(1).unwrap_or_default()
    );
    if args.keep {
        let kept = demo.dir.keep();
        println!("\nkept the demo vault in {}", kept.display());
    }
    println!("\ndemo over HTTP complete");
    Ok(ExitCode::SUCCESS)
}

fn walk(
    demo: &Demo,
    api: &Api,
    token: &dyn Fn(&str) -> Result<String>,
    identity_path: &std::path::Path,
) -> Result<()> {
    let (cw, coach, employer, other, dpo) = (
        token("cw-lena")?,
        token("coach-omar")?,
        token("hr-bygg")?,
        token("hr-other")?,
        token("dpo-sara")?,
    );

    demo.say("health: /livez, /readyz (database, keyring, policy)");
    let reply = api.call(Method::GET, "/livez", None, None, None)?;
    expect(&reply, 200)?;
    let reply = api.call(Method::GET, "/readyz", None, None, None)?;
    expect(&reply, 200)?;
    println!("  {}", String::from_utf8_lossy(&reply.body));

    demo.say("no token, no entry: 401 problem+json");
    let reply = api.call(Method::GET, "/v1/audit/checkpoint", None, None, None)?;
    expect(&reply, 401)?;
    println!("  {} ({})", reply.summary(), reply.content_type);

    demo.say("register candidates: POST /v1/candidates with a profile document (caseworker)");
    let mut synth = Synth::new(7);
    let mut profile = synth.profile();
    profile.control.protected = false;
    profile.control.consents.employer_contact = true;
    let document = serde_json::to_vec(&profile).map_err(|_| Error::Corrupt {
        what: "a synthetic profile does not serialize",
    })?;
    let reply = api.call(
        Method::POST,
        "/v1/candidates",
        Some(&cw),
        None,
        Some(document),
    )?;
    expect(&reply, 201)?;
    let anna = text_of(&reply, "candidate_id")?;
    println!("  candidate {anna}");
    let mut hidden_profile = synth.profile();
    hidden_profile.control.protected = true;
    let document = serde_json::to_vec(&hidden_profile).map_err(|_| Error::Corrupt {
        what: "a synthetic profile does not serialize",
    })?;
    let reply = api.call(
        Method::POST,
        "/v1/candidates",
        Some(&cw),
        None,
        Some(document),
    )?;
    expect(&reply, 201)?;
    let hidden = text_of(&reply, "candidate_id")?;
    println!("  candidate {hidden} has a protected identity");
    let bad = br#"{"identity":{"name":"Test","nickname":"x"}}"#.to_vec();
    let reply = api.call(Method::POST, "/v1/candidates", Some(&cw), None, Some(bad))?;
    expect(&reply, 422)?;
    println!(
        "  an unknown field is refused: {} (path {})",
        reply.summary(),
        at(&reply.json(), "path")
    );
    let reply = api.call(
        Method::POST,
        "/v1/candidates",
        Some(&employer),
        None,
        Some(b"{}".to_vec()),
    )?;
    expect(&reply, 403)?;
    println!("  an employer may not register: {}", reply.summary());

    demo.say("registering as an employer grants nothing: hr-bygg asks before any assignment");
    let extract_path = format!("/v1/candidates/{anna}/extract?purpose=recruitment");
    let reply = api.get(&extract_path, &employer)?;
    expect(&reply, 404)?;
    println!("  {}", reply.summary());

    demo.say("assignments: POST /v1/assignments (coaching for nystart-coaching, matching for norrbygg-ab)");
    let reply = api.send_json(Method::POST, "/v1/assignments", &cw, &serde_json::json!({"candidate_id": anna, "org": "nystart-coaching", "kind": "coaching", "purpose": "coaching"}))?;
    expect(&reply, 201)?;
    let coaching = text_of(&reply, "assignment_id")?;
    let reply = api.send_json(Method::POST, "/v1/assignments", &cw, &serde_json::json!({"candidate_id": anna, "org": "norrbygg-ab", "kind": "matching", "purpose": "recruitment"}))?;
    expect(&reply, 201)?;
    println!(
        "  coaching {coaching}\n  matching {}",
        text_of(&reply, "assignment_id")?
    );
    let reply = api.send_json(Method::POST, "/v1/assignments", &cw, &serde_json::json!({"candidate_id": hidden, "org": "norrbygg-ab", "kind": "matching", "purpose": "recruitment"}))?;
    expect(&reply, 403)?;
    println!("  matching a protected candidate: {}", reply.summary());

    demo.say("extracts: the coach (coaching), the employer (recruitment: never `special`)");
    let reply = api.get(
        &format!("/v1/candidates/{anna}/extract?purpose=coaching"),
        &coach,
    )?;
    expect(&reply, 200)?;
    println!("  coach sees: {}", groups_of(&reply));
    let reply = api.get(&extract_path, &employer)?;
    expect(&reply, 200)?;
    println!("  employer sees: {}", groups_of(&reply));
    let reply = api.call(
        Method::GET,
        &extract_path,
        Some(&employer),
        Some("application/age"),
        None,
    )?;
    expect(&reply, 200)?;
    let sealed = demo.dir.path().join("extract-hr-bygg.age");
    keyring::write_private_file(&sealed, &reply.body)?;
    println!(
        "  with Accept: application/age -> {} bytes of {} in {} (open: age -d -i {})",
        reply.body.len(),
        reply.content_type,
        sealed.display(),
        identity_path.display()
    );

    demo.say(
        "refused: another employer, a wrong purpose (the same 404 as a missing id), a DPO (403)",
    );
    let unrelated = api.get(&extract_path, &other)?;
    expect(&unrelated, 404)?;
    let missing = api.get(
        &format!(
            "/v1/candidates/{}/extract?purpose=recruitment",
            uuid::Uuid::new_v4()
        ),
        &other,
    )?;
    expect(&missing, 404)?;
    println!(
        "  unrelated and missing bodies identical: {}",
        unrelated.body == missing.body
    );
    let reply = api.get(
        // A declared purpose, but not the one its assignment was opened for: nothing.
        &format!("/v1/candidates/{anna}/extract?purpose=coaching"),
        &employer,
    )?;
    expect(&reply, 404)?;
    let reply = api.get(&extract_path, &dpo)?;
    expect(&reply, 403)?;
    println!("  dpo: {}", reply.summary());

    demo.say("harvesting: hr-other asks for random ids until its quota (8 per hour here) runs out");
    let mut refused = None;
    for _ in 0..8 {
        let reply = api.get(
            &format!(
                "/v1/candidates/{}/extract?purpose=recruitment",
                uuid::Uuid::new_v4()
            ),
            &other,
        )?;
        if reply.status == StatusCode::TOO_MANY_REQUESTS {
            refused = Some(reply);
            break;
        }
    }
    let refused =
        refused.ok_or_else(|| Error::Conflict("the demo expected the quota to refuse".into()))?;
    println!(
        "  {} (Retry-After: {} s); the refusal is audited and logged as an alert",
        refused.summary(),
        refused.retry_after.unwrap_or_default()
    );

    demo.say("the DPO: subject access report, legal hold, audit search");
    let reply = api.get(&format!("/v1/candidates/{anna}/subject-access"), &dpo)?;
    expect(&reply, 200)?;
    let report = reply.json();
    println!(
        "  disclosures {}, refused requests {}, groups held: {}",
        at(&report, "disclosures").as_array().map_or(0, Vec::len),
        at(&report, "refused_requests"),
        at(&report, "groups_held")
    );
    let hold_path = format!("/v1/candidates/{anna}/legal-hold");
    let reply = api.send_json(
        Method::PUT,
        &hold_path,
        &dpo,
        &serde_json::json!({"reason": "case 2026-17"}),
    )?;
    expect(&reply, 200)?;
    let reply = api.call(Method::DELETE, &hold_path, Some(&dpo), None, None)?;
    expect(&reply, 200)?;
    let reply = api.get(&format!("/v1/candidates/{anna}/audit-entries"), &dpo)?;
    expect(&reply, 200)?;
    println!(
        "  {} audit entries about this candidate (found through its HMAC pseudonym)",
        at(&reply.json(), "entries").as_array().map_or(0, Vec::len)
    );

    demo.say(
        "close the coaching assignment; erase the protected candidate; the DPO's erasure receipt",
    );
    let reply = api.send_json(
        Method::POST,
        &format!("/v1/assignments/{coaching}/close"),
        &cw,
        &serde_json::json!({"reason": "coaching completed"}),
    )?;
    expect(&reply, 200)?;
    let reply = api.send_json(
        Method::POST,
        &format!("/v1/assignments/{coaching}/close"),
        &cw,
        &serde_json::json!({"reason": "again"}),
    )?;
    expect(&reply, 409)?;
    println!("  closing twice: {}", reply.summary());
    let reply = api.call(
        Method::DELETE,
        &format!("/v1/candidates/{hidden}"),
        Some(&cw),
        None,
        None,
    )?;
    expect(&reply, 204)?;
    let reply = api.get(&format!("/v1/candidates/{hidden}/erasure-receipt"), &dpo)?;
    expect(&reply, 200)?;
    let index = at(at(&reply.json(), "proof"), "index")
        .as_u64()
        .unwrap_or_default();
    println!("  receipt: erase entry #{index} with an inclusion proof and a signed checkpoint");
    let reply = api.get(&format!("/v1/audit/entries/{index}/proof"), &dpo)?;
    expect(&reply, 200)?;

    demo.say("audit: export (JSON lines, the hashed bytes), checkpoint");
    let reply = api.get("/v1/audit/entries", &dpo)?;
    expect(&reply, 200)?;
    println!(
        "  {} entries exported as {}",
        reply
            .body
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .count(),
        reply.content_type
    );
    let reply = api.get("/v1/audit/checkpoint", &employer)?;
    expect(&reply, 200)?;
    for line in String::from_utf8_lossy(&reply.body).lines().take(3) {
        println!("  | {line}");
    }

    demo.say("metrics: counts by route template and status, no ids");
    let reply = api.call(Method::GET, "/metrics", None, None, None)?;
    expect(&reply, 200)?;
    for line in String::from_utf8_lossy(&reply.body)
        .lines()
        .filter(|l| l.starts_with("cvvault_http_requests_total") && l.contains("extract"))
    {
        println!("  {line}");
    }
    Ok(())
}
