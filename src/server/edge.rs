//! The edge of `cvvault serve`: accepting connections, over TLS (rustls on the ring provider)
//! or plain HTTP on loopback, with a bound on every phase a client controls.
//!
//! - **Connections**: at most `max_connections` open; more wait in the listen backlog.
//! - **Headers**: a request's headers must arrive within `header_timeout` of the connection's
//!   start or of the previous response (hyper's header read timer, which also closes an idle
//!   keep-alive connection), and a TLS handshake within the same time.
//! - **Body and answer**: `body_timeout` to send the body, `request_timeout` for the whole
//!   request ([`router`](super::router) layers); at most `max_requests_in_flight` requests are
//!   handled at once (each holds at most one blocking-pool thread), the rest wait for a slot
//!   within their request timeout.
//! - **Unauthenticated traffic**: requests without a valid token are counted per client
//!   address ([`AuthFailures`]); past the budget, 429 before the token is even looked up.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::ConnectInfo;
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use tower::ServiceExt;

use crate::error::{Error, Result};
use crate::settings::HttpLimits;

/// A TLS server configuration loaded from PEM files.
#[derive(Clone)]
pub struct Tls {
    acceptor: tokio_rustls::TlsAcceptor,
}

impl Tls {
    /// Loads a certificate chain and its private key (PEM). TLS 1.2 and 1.3 with rustls's
    /// safe defaults, on the ring provider (the vault's one crypto backend).
    pub fn from_pem_files(cert: &Path, key: &Path) -> Result<Tls> {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let pem_error = |path: &Path, what: &str| {
            Error::invalid_input(format!(
                "{} holds no {what} in PEM form (-----BEGIN ...-----): give the certificate chain with --tls-cert and its private key with --tls-key",
                path.display()
            ))
        };
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
            .map_err(|_| pem_error(cert, "certificate"))?
            .collect::<std::result::Result<_, _>>()
            .map_err(|_| pem_error(cert, "certificate"))?;
        if certs.is_empty() {
            return Err(pem_error(cert, "certificate"));
        }
        let private_key =
            PrivateKeyDer::from_pem_file(key).map_err(|_| pem_error(key, "private key"))?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|_| Error::Internal("the TLS provider offers no protocol version"))?
            .with_no_client_auth()
            .with_single_cert(certs, private_key)
            .map_err(|e| {
                Error::invalid_input(format!(
                    "the TLS key does not fit the certificate, or is of a kind rustls does not use ({e}): give the certificate's own private key"
                ))
            })?;
        let mut config = config;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Tls {
            acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(config)),
        })
    }
}

/// The bounds of the edge, from `policy/limits.toml` `[http]`.
#[derive(Clone, Copy, Debug)]
pub struct EdgeBounds {
    /// Headers (and idle keep-alive, and a TLS handshake).
    pub header_timeout: Duration,
    /// Connections open at once.
    pub max_connections: usize,
}

impl EdgeBounds {
    /// From the settings.
    pub fn from_limits(http: &HttpLimits) -> EdgeBounds {
        EdgeBounds {
            header_timeout: Duration::from_secs(http.header_timeout_seconds),
            max_connections: http.max_connections,
        }
    }
}

/// Serves `app` on `listener` until `shutdown` completes, then stops accepting and waits (at
/// most 30 s) for the connections in flight to finish their requests.
pub async fn serve_connections(
    listener: tokio::net::TcpListener,
    app: Router,
    bounds: EdgeBounds,
    tls: Option<Tls>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let slots = Arc::new(tokio::sync::Semaphore::new(bounds.max_connections));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(bounds.header_timeout)
        .keep_alive(true);
    tokio::pin!(shutdown);
    loop {
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors, a connection reset before accept: keep serving.
                    tracing::warn!(error = %e, "a connection could not be accepted");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let service = app.clone().map_request(
            move |mut request: axum::http::Request<hyper::body::Incoming>| {
                request.extensions_mut().insert(ConnectInfo(peer));
                request
            },
        );
        let service = hyper_util::service::TowerToHyperService::new(service);
        let (http, tls, watcher) = (http.clone(), tls.clone(), graceful.watcher());
        tokio::spawn(async move {
            let _slot = slot;
            match tls {
                Some(tls) => {
                    let handshake =
                        tokio::time::timeout(bounds.header_timeout, tls.acceptor.accept(stream));
                    let stream = match handshake.await {
                        Ok(Ok(stream)) => stream,
                        Ok(Err(e)) => {
                            tracing::debug!(%peer, error = %e, "TLS handshake failed");
                            return;
                        }
                        Err(_) => {
                            tracing::debug!(%peer, "TLS handshake timed out");
                            return;
                        }
                    };
                    let connection = http.serve_connection(TokioIo::new(stream), service);
                    let _ = watcher.watch(connection).await;
                }
                None => {
                    let connection = http.serve_connection(TokioIo::new(stream), service);
                    let _ = watcher.watch(connection).await;
                }
            }
        });
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(Duration::from_secs(30)) => {
            tracing::warn!("some connections were still open 30 s after shutdown began; closing them");
        }
    }
    Ok(())
}

/// Requests without a valid token (missing, unknown, revoked, expired), counted per client
/// address. Past `per_minute` in a minute, the address is refused with 429 until its budget
/// refills, before any token it sends is looked up. Memory is bounded: idle addresses are
/// forgotten.
pub struct AuthFailures {
    limiter: governor::DefaultKeyedRateLimiter<IpAddr>,
    blocked: std::sync::Mutex<std::collections::HashMap<IpAddr, Instant>>,
}

/// Addresses remembered as blocked before the expired ones are swept out.
const MAX_BLOCKED: usize = 4096;

impl AuthFailures {
    /// A budget of `per_minute` failures per address (a burst of as many).
    pub fn new(per_minute: u32) -> AuthFailures {
        let per_minute = std::num::NonZeroU32::new(per_minute).unwrap_or(std::num::NonZeroU32::MIN);
        AuthFailures {
            limiter: governor::RateLimiter::keyed(governor::Quota::per_minute(per_minute)),
            blocked: std::sync::Mutex::new(std::collections::HashMap::new()),
        }
    }

    /// Seconds until `peer` may try again, if it is over its budget.
    pub fn blocked(&self, peer: Option<SocketAddr>) -> Option<u64> {
        let peer = peer?.ip();
        let blocked = self.blocked.lock().unwrap_or_else(|p| p.into_inner());
        let until = *blocked.get(&peer)?;
        let now = Instant::now();
        (until > now).then(|| (until - now).as_secs().max(1))
    }

    /// Counts one failure of `peer`; returns the seconds to wait when that was one too many.
    pub fn failed(&self, peer: Option<SocketAddr>) -> Option<u64> {
        let peer = peer?.ip();
        let Err(not_until) = self.limiter.check_key(&peer) else {
            return None;
        };
        let wait = not_until.wait_time_from(governor::clock::Clock::now(
            &governor::clock::DefaultClock::default(),
        ));
        let mut blocked = self.blocked.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        if blocked.len() >= MAX_BLOCKED {
            blocked.retain(|_, until| *until > now);
            self.limiter.retain_recent();
        }
        blocked.insert(peer, now + wait);
        Some(wait.as_secs().max(1))
    }
}
