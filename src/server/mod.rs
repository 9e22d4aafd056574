//! The HTTP API (axum): `router(state)` for tests and `serve` for the `cvvault serve` command.
//!
//! Every `/v1` request is authenticated by a bearer token ([`auth`]), handled by calling one
//! vault use case on tokio's blocking pool ([`handlers`]; rusqlite blocks, the async workers
//! must not), and every error is rendered once, as problem+json ([`problem`]). Extract
//! quotas ([`quota`]), Prometheus metrics ([`metrics`]) and the OpenAPI document ([`openapi`])
//! sit beside them. The vault signs a checkpoint on an interval and once more at shutdown.

pub mod auth;
pub mod console;
pub mod edge;
pub mod handlers;
pub mod metrics;
pub mod openapi;
pub mod problem;
pub mod quota;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware;
use axum::response::Response;
use axum::routing::{delete, get, post, put};
use axum::Router;

use crate::error::{Error, Result};
use crate::settings::Limits;
use crate::vault::Vault;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

struct Shared {
    vault: Arc<Vault>,
    quota: quota::QuotaTracker,
    metrics: metrics::Metrics,
    max_body_bytes: usize,
    body_timeout: Duration,
    request_timeout: Duration,
    max_in_flight: usize,
    auth_failures: edge::AuthFailures,
    console_sessions: console::session::Sessions,
    /// Whether the console's cookies are marked `Secure` (served over HTTPS).
    console_secure: std::sync::atomic::AtomicBool,
}

impl AppState {
    /// State over an open vault, with the quotas and body limit of `limits`.
    pub fn new(vault: Arc<Vault>, limits: &Limits) -> AppState {
        AppState(Arc::new(Shared {
            quota: quota::QuotaTracker::for_store(&limits.extract, &vault.paths().store()),
            vault,
            metrics: metrics::Metrics::default(),
            max_body_bytes: limits.http.max_body_bytes,
            body_timeout: Duration::from_secs(limits.http.body_timeout_seconds),
            request_timeout: Duration::from_secs(limits.http.request_timeout_seconds),
            max_in_flight: limits.http.max_requests_in_flight,
            auth_failures: edge::AuthFailures::new(limits.http.unauthenticated_per_minute),
            console_sessions: Default::default(),
            console_secure: Default::default(),
        }))
    }

    /// Requests without a valid token, per client address.
    pub fn auth_failures(&self) -> &edge::AuthFailures {
        &self.0.auth_failures
    }

    /// The DPO console's sessions.
    pub fn console_sessions(&self) -> &console::session::Sessions {
        &self.0.console_sessions
    }

    /// Whether the console's cookies are marked `Secure`.
    pub fn console_secure(&self) -> bool {
        self.0
            .console_secure
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The vault.
    pub fn vault(&self) -> &Arc<Vault> {
        &self.0.vault
    }

    /// The extract quotas.
    pub fn quota(&self) -> &quota::QuotaTracker {
        &self.0.quota
    }

    /// The request metrics.
    pub fn metrics(&self) -> &metrics::Metrics {
        &self.0.metrics
    }

    /// The request body limit.
    pub fn max_body_bytes(&self) -> usize {
        self.0.max_body_bytes
    }
}

/// Runs a vault call on the blocking pool and waits for it without blocking a worker.
pub async fn blocking<T, F>(f: F) -> Result<T>
where
    F: FnOnce() -> Result<T> + Send + 'static,
    T: Send + 'static,
{
    tokio::task::spawn_blocking(f).await.map_err(|e| {
        let what = if e.is_panic() {
            "a request task panicked"
        } else {
            "a request task was cancelled"
        };
        Error::io("request task", std::io::Error::other(what))
    })?
}

/// The whole API.
pub fn router(state: AppState) -> Router {
    let max_body = state.max_body_bytes();
    let (body_timeout, request_timeout, in_flight) = (
        state.0.body_timeout,
        state.0.request_timeout,
        state.0.max_in_flight,
    );
    Router::new()
        .route("/v1/candidates", post(handlers::register_candidate))
        .route("/v1/candidates/find", post(handlers::find_candidate))
        .route(
            "/v1/candidates/{candidate_id}",
            delete(handlers::erase_candidate).patch(handlers::update_candidate),
        )
        .route(
            "/v1/candidates/{candidate_id}/extract",
            get(handlers::extract),
        )
        .route(
            "/v1/candidates/{candidate_id}/assignments",
            get(handlers::list_assignments),
        )
        .route(
            "/v1/candidates/{candidate_id}/legal-hold",
            put(handlers::place_hold).delete(handlers::release_hold),
        )
        .route(
            "/v1/candidates/{candidate_id}/subject-access",
            get(handlers::subject_access),
        )
        .route(
            "/v1/candidates/{candidate_id}/erasure-receipt",
            get(handlers::erasure_receipt),
        )
        .route(
            "/v1/candidates/{candidate_id}/audit-entries",
            get(handlers::audit_search),
        )
        .route("/v1/assignments", post(handlers::open_assignment))
        .route(
            "/v1/assignments/{assignment_id}/close",
            post(handlers::close_assignment),
        )
        .route("/v1/audit/entries", get(handlers::audit_export))
        .route(
            "/v1/audit/entries/{index}/proof",
            get(handlers::audit_proof),
        )
        .route("/v1/audit/checkpoint", get(handlers::audit_checkpoint))
        .route("/livez", get(handlers::livez))
        .route("/readyz", get(handlers::readyz))
        .route("/metrics", get(metrics::serve))
        .route("/openapi.json", get(openapi::serve))
        .merge(console::routes())
        .fallback(handlers::unknown_route)
        .method_not_allowed_fallback(handlers::method_not_allowed)
        .layer(DefaultBodyLimit::max(max_body))
        .layer(tower_http::timeout::RequestBodyTimeoutLayer::new(
            body_timeout,
        ))
        .layer(tower::limit::GlobalConcurrencyLimitLayer::new(in_flight))
        // Outside the concurrency limit, so that waiting for a slot counts too.
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            request_timeout,
        ))
        .layer(middleware::from_fn(no_head_on_data))
        .layer(middleware::map_response(protective_headers))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            metrics::track,
        ))
        .with_state(state)
}

/// `HEAD` is refused (405) on every `/v1` and console route: axum answers `HEAD` by running
/// the `GET` handler, so a `HEAD` of an extract decrypted, counted against the quota and was
/// audited as a disclosure while sending no body. Only the operational routes answer it.
async fn no_head_on_data(request: axum::extract::Request, next: middleware::Next) -> Response {
    let path = request.uri().path();
    let data = path.starts_with("/v1/") || path.starts_with("/console");
    if request.method() == axum::http::Method::HEAD && data {
        return axum::response::IntoResponse::into_response(handlers::method_not_allowed().await);
    }
    next.run(request).await
}

/// No response is cached by a browser or proxy, and none is sniffed into another type.
async fn protective_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

/// Serves until `shutdown` completes, then drains the requests in flight. Signs a checkpoint
/// every `checkpoint_every` meanwhile. The caller closes the vault afterwards (which signs the
/// final checkpoint).
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    (checkpoint_every, bounds, tls): (Duration, edge::EdgeBounds, Option<edge::Tls>),
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let vault = state.vault().clone();
    // Over HTTPS, or off loopback (behind a TLS-terminating proxy, `--insecure-http`), the
    // browser reaches the console over HTTPS: its cookies are `Secure`.
    let off_loopback = listener
        .local_addr()
        .is_ok_and(|address| !address.ip().is_loopback());
    state.0.console_secure.store(
        tls.is_some() || off_loopback,
        std::sync::atomic::Ordering::Relaxed,
    );
    // The console's summary of the trail is built beside the first requests, not before them.
    let summarizing = vault.clone();
    tokio::task::spawn_blocking(move || {
        let started = std::time::Instant::now();
        match summarizing.summarize_trail(&|_| {}) {
            Ok(entries) => tracing::info!(
                entries,
                ms = started.elapsed().as_millis() as u64,
                "the console's summary of the audit trail is ready"
            ),
            Err(e) => {
                tracing::warn!(error = %e, "the console's summary of the audit trail could not be built; its pages will try again")
            }
        }
    });
    let (stop, mut stopped) = tokio::sync::watch::channel(false);
    let signer = tokio::spawn(async move {
        let mut ticker = tokio::time::interval(checkpoint_every.max(Duration::from_secs(1)));
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticker.tick().await;
        loop {
            tokio::select! {
                _ = ticker.tick() => {
                    let vault = vault.clone();
                    match blocking(move || vault.sign_checkpoint()).await {
                        Ok(Some(_)) => tracing::debug!("checkpoint signed"),
                        Ok(None) => {}
                        Err(e) => tracing::error!(error = %e, "the periodic checkpoint could not be signed"),
                    }
                }
                _ = stopped.changed() => break,
            }
        }
    });
    let served = edge::serve_connections(listener, router(state), bounds, tls, shutdown).await;
    let _ = stop.send(true);
    let _ = signer.await;
    served
}

/// A future that completes on SIGTERM or Ctrl-C (SIGINT). The handlers are installed when
/// this is called (inside the runtime), so a signal that arrives before the future is first
/// polled is not lost and does not kill the process with the default action.
pub fn shutdown_signal() -> impl Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    let (mut terminate, mut interrupt) = {
        use tokio::signal::unix::{signal, SignalKind};
        (
            signal(SignalKind::terminate()).ok(),
            signal(SignalKind::interrupt()).ok(),
        )
    };
    async move {
        #[cfg(unix)]
        {
            let term = async {
                match terminate.as_mut() {
                    Some(signal) => {
                        signal.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            let int = async {
                match interrupt.as_mut() {
                    Some(signal) => {
                        signal.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                _ = term => {}
                _ = int => {}
            }
        }
        #[cfg(not(unix))]
        {
            if tokio::signal::ctrl_c().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
        tracing::info!("shutting down: draining requests in flight");
    }
}
