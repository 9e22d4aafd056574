//! The server's edges over real sockets on 127.0.0.1: HTTPS with a certificate the test
//! makes (rcgen), plain HTTP refused off loopback, slow and silent clients closed within the
//! bounds of policy/limits.toml while other clients are served, and the budget for requests
//! without a valid token.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{cvvault, stderr};

fn vault(root: &Path) {
    let out = cvvault(root, &["init"]);
    assert!(out.status.success(), "{}", stderr(&out));
    common::add_principals(
        root,
        &[
            ("cw", "caseworker", "agency"),
            ("emp", "employer", "emp-org"),
        ],
    );
}

fn serve(root: &Path, args: &[&str], scheme: &str) -> common::Served {
    common::serve(root, args, scheme)
}

fn token(root: &Path, principal: &str) -> String {
    common::issue_token(root, principal)
}

/// One HTTP/1.1 request on `stream` (closing the connection after it); the whole response.
fn exchange(mut stream: impl Read + Write, request: &str) -> String {
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    String::from_utf8_lossy(&response).into_owned()
}

fn get(path: &str, token: Option<&str>) -> String {
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n{auth}Connection: close\r\n\r\n")
}

fn connect(address: &str) -> TcpStream {
    let stream = TcpStream::connect(address).unwrap();
    // A safety net for a broken server, far above every bound tested.
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    stream
}

/// A TLS client that trusts exactly `cert` (DER), for `localhost`.
fn tls_client(
    address: &str,
    cert: &[u8],
) -> rustls::StreamOwned<rustls::ClientConnection, TcpStream> {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(rustls::pki_types::CertificateDer::from(cert.to_vec()))
        .unwrap();
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let connection = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
    rustls::StreamOwned::new(connection, connect(address))
}

#[test]
fn https_serves_the_api_with_a_certificate_and_plain_http_to_it_gets_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    vault(root);
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    std::fs::write(root.join("cert.pem"), cert.cert.pem()).unwrap();
    std::fs::write(root.join("key.pem"), cert.key_pair.serialize_pem()).unwrap();
    let cw = token(root, "cw");
    let server = serve(
        root,
        &[
            "--bind",
            "127.0.0.1:0",
            "--tls-cert",
            root.join("cert.pem").to_str().unwrap(),
            "--tls-key",
            root.join("key.pem").to_str().unwrap(),
        ],
        "https",
    );
    let der = cert.cert.der().to_vec();
    let live = exchange(tls_client(&server.address, &der), &get("/livez", None));
    assert!(live.starts_with("HTTP/1.1 200"), "{live}");
    // A registration over TLS, with the token.
    let body = r#"{"identity":{"name":"Tls Candidate"}}"#;
    let request = format!(
        "POST /v1/candidates HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {cw}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let created = exchange(tls_client(&server.address, &der), &request);
    assert!(created.starts_with("HTTP/1.1 201"), "{created}");
    // Plain HTTP to the TLS port is no HTTP exchange at all.
    let plain = exchange(connect(&server.address), &get("/livez", None));
    assert!(!plain.contains("200 OK"), "{plain}");
}

#[test]
fn plain_http_off_loopback_is_refused_unless_asked_for_and_bad_tls_files_say_what_to_give() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    vault(root);
    let out = cvvault(root, &["serve", "--bind", "0.0.0.0:0"]);
    assert_eq!(out.status.code(), Some(65), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("not a loopback address") && err.contains("--tls-cert"),
        "{err}"
    );
    // Explicitly insecure (behind a TLS proxy): it serves.
    let server = serve(root, &["--bind", "0.0.0.0:0", "--insecure-http"], "http");
    let port = server.address.rsplit(':').next().unwrap();
    let live = exchange(connect(&format!("127.0.0.1:{port}")), &get("/livez", None));
    assert!(live.starts_with("HTTP/1.1 200"), "{live}");
    drop(server);
    std::fs::write(root.join("not-a-cert.pem"), "hello").unwrap();
    let out = cvvault(
        root,
        &[
            "serve",
            "--tls-cert",
            root.join("not-a-cert.pem").to_str().unwrap(),
            "--tls-key",
            root.join("not-a-cert.pem").to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(65), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("holds no certificate in PEM form"),
        "{}",
        stderr(&out)
    );
    let out = cvvault(root, &["serve", "--bind", "localhost:8080"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("write IP:PORT"), "{}", stderr(&out));
}

/// Seconds from `start` until `stream` is closed by the server (read gives EOF or an error).
fn closed_after(mut stream: TcpStream, start: Instant) -> f64 {
    let mut buffer = [0u8; 4096];
    loop {
        match stream.read(&mut buffer) {
            Ok(0) | Err(_) => return start.elapsed().as_secs_f64(),
            Ok(_) => {}
        }
    }
}

#[test]
fn silent_slow_and_idle_clients_are_closed_within_the_bounds_while_others_are_served() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    vault(root);
    std::fs::write(
        root.join("policy/limits.toml"),
        "[extract]\nextracts = 100\nwindow_seconds = 3600\n\n[http]\nmax_body_bytes = 65536\nheader_timeout_seconds = 1\nbody_timeout_seconds = 1\nrequest_timeout_seconds = 5\n",
    )
    .unwrap();
    let cw = token(root, "cw");
    let server = serve(root, &["--bind", "127.0.0.1:0"], "http");
    let start = Instant::now();
    // Connects and says nothing.
    let silent = connect(&server.address);
    // Sends half its headers.
    let mut half = connect(&server.address);
    half.write_all(b"GET /livez HTTP/1.1\r\nHost: localhost\r\n")
        .unwrap();
    // Sends its headers and a tenth of the body it announced.
    let mut slow_body = connect(&server.address);
    slow_body
        .write_all(
            format!(
                "POST /v1/candidates HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {cw}\r\nContent-Type: application/json\r\nContent-Length: 400\r\n\r\n{{\"identity\":"
            )
            .as_bytes(),
        )
        .unwrap();
    // Finishes a request, then keeps the connection open doing nothing.
    let mut idle = connect(&server.address);
    idle.write_all(
        get("/livez", None)
            .replace("Connection: close\r\n", "")
            .as_bytes(),
    )
    .unwrap();
    // Meanwhile another client is served at once.
    let served = exchange(connect(&server.address), &get("/livez", None));
    assert!(served.starts_with("HTTP/1.1 200"), "{served}");

    // Each is closed by the server within its bound (1 s, with slack for a busy machine);
    // none waits for the 30 s safety net.
    let bound = 10.0;
    for (name, stream) in [
        ("silent", silent),
        ("half headers", half),
        ("idle keep-alive", idle),
    ] {
        let after = closed_after(stream, start);
        assert!(after < bound, "{name} stayed open {after:.1} s");
    }
    let mut answer = Vec::new();
    let _ = slow_body.read_to_end(&mut answer);
    let after = start.elapsed().as_secs_f64();
    assert!(
        after < bound,
        "the unfinished body stayed open {after:.1} s"
    );
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.is_empty()
            || answer.starts_with("HTTP/1.1 408")
            || answer.starts_with("HTTP/1.1 400"),
        "{answer}"
    );
    // Nothing half-sent was registered, and the server still serves.
    let after_all = exchange(connect(&server.address), &get("/livez", None));
    assert!(after_all.starts_with("HTTP/1.1 200"), "{after_all}");
}

#[test]
fn requests_without_a_valid_token_are_limited_per_address() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    vault(root);
    std::fs::write(
        root.join("policy/limits.toml"),
        "[extract]\nextracts = 100\nwindow_seconds = 3600\n\n[http]\nmax_body_bytes = 65536\nunauthenticated_per_minute = 3\n",
    )
    .unwrap();
    let server = serve(root, &["--bind", "127.0.0.1:0"], "http");
    let wrong = format!("cvv_0123456789abcdef_{}", "0".repeat(64));
    let mut statuses = Vec::new();
    for n in 0..5 {
        let token = (n % 2 == 0).then_some(wrong.as_str());
        let reply = exchange(
            connect(&server.address),
            &get("/v1/audit/checkpoint", token),
        );
        statuses.push(reply[9..12].to_owned());
        if n == 4 {
            assert!(
                reply.to_ascii_lowercase().contains("retry-after:"),
                "{reply}"
            );
            assert!(reply.contains("too-many-failed-authentications"), "{reply}");
        }
    }
    assert_eq!(statuses, ["401", "401", "401", "429", "429"]);
    // Operational routes take no token and are not counted.
    let live = exchange(connect(&server.address), &get("/livez", None));
    assert!(live.starts_with("HTTP/1.1 200"), "{live}");
}
