//! `cvvault serve`: the HTTP API until SIGTERM or Ctrl-C, then a final signed checkpoint.

use std::io::Write;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;

use super::Context;
use crate::error::{Error, Result};
use crate::server::{self, AppState};
use crate::settings::Limits;

/// Serve the HTTP API. Prints `listening on https://ADDR` (or `http://` on loopback without
/// TLS) as its first line of standard output. On SIGTERM or Ctrl-C it stops accepting,
/// drains the requests in flight, signs a final checkpoint and exits 0.
///
/// With --tls-cert and --tls-key it serves HTTPS (rustls). Without them it serves plain HTTP,
/// which it does only on a loopback address (127.0.0.1, ::1) unless --insecure-http is given
/// (for a TLS-terminating proxy on a private network). Timeouts, connection and request caps
/// and the budget for unauthenticated requests are in policy/limits.toml [http].
#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Address and port to listen on, as IP:PORT (port 0: any free port), e.g.
    /// 127.0.0.1:8080 or 0.0.0.0:8443.
    #[arg(long, default_value = "127.0.0.1:8080", value_parser = parse_bind)]
    pub bind: SocketAddr,
    /// The server's certificate chain (PEM) for HTTPS.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<std::path::PathBuf>,
    /// The certificate's private key (PEM).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<std::path::PathBuf>,
    /// Serve plain HTTP on a non-loopback address (only behind a TLS-terminating proxy:
    /// tokens and extracts would otherwise cross the network in clear).
    #[arg(long, conflicts_with = "tls_cert")]
    pub insecure_http: bool,
    /// Sign an audit checkpoint this often, in seconds (if the log grew).
    #[arg(long, value_name = "SECONDS", default_value_t = 60)]
    pub checkpoint_interval: u64,
}

/// `--bind` as IP:PORT, with an example when it is not one.
fn parse_bind(text: &str) -> std::result::Result<SocketAddr, String> {
    text.parse().map_err(|_| {
        format!(
            "`{text}` is not an IP address and port: write IP:PORT, e.g. 127.0.0.1:8080 or [::1]:8080 (host names are not accepted; port 0 picks a free one)"
        )
    })
}

pub fn run(ctx: &Context, args: ServeArgs) -> Result<ExitCode> {
    let limits = Limits::load(&ctx.paths.limits_settings())?;
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(server::edge::Tls::from_pem_files(cert, key)?),
        _ => None,
    };
    if tls.is_none() && !args.bind.ip().is_loopback() && !args.insecure_http {
        return Err(Error::invalid_input(format!(
            "refusing to serve plain HTTP on {}, which is not a loopback address: bearer tokens and extracts would cross the network unencrypted. Give --tls-cert FILE --tls-key FILE to serve HTTPS, bind 127.0.0.1, or (only behind a TLS-terminating proxy on a private network) add --insecure-http",
            args.bind
        )));
    }
    if tls.is_none() && !args.bind.ip().is_loopback() {
        tracing::warn!(bind = %args.bind, "serving plain HTTP on a non-loopback address (--insecure-http): keep it behind a TLS-terminating proxy");
    }
    let bounds = server::edge::EdgeBounds::from_limits(&limits.http);
    let vault = Arc::new(ctx.open()?);
    // Blocking work is bounded by the requests in flight (one thread each) and a few for the
    // vault's own jobs (checkpoints), not by how many connections are open.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("cvvault-http")
        .max_blocking_threads(limits.http.max_requests_in_flight.saturating_add(8))
        .build()
        .map_err(|e| Error::io("tokio runtime", e))?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    let served = runtime.block_on(async {
        // Installed before the address is announced: a supervisor may signal at once.
        let shutdown = server::shutdown_signal();
        let listener = tokio::net::TcpListener::bind(args.bind)
            .await
            .map_err(|e| Error::io(format!("listen address {}", args.bind), e))?;
        let address = listener
            .local_addr()
            .map_err(|e| Error::io("listen address", e))?;
        {
            let mut out = std::io::stdout().lock();
            writeln!(out, "listening on {scheme}://{address}")
                .map_err(|e| Error::io("standard output", e))?;
            out.flush().map_err(|e| Error::io("standard output", e))?;
        }
        tracing::info!(%address, "serving the HTTP API");
        let state = AppState::new(vault.clone(), &limits);
        server::serve(
            listener,
            state,
            (Duration::from_secs(args.checkpoint_interval), bounds, tls),
            shutdown,
        )
        .await
    });
    runtime.shutdown_timeout(Duration::from_secs(10));
    // The final checkpoint, also after a failure: whatever was served is on record.
    let closed = vault.close();
    served?;
    closed?;
    // Standard output may be gone by now (a supervisor that read the first line): not an error.
    let _ = writeln!(std::io::stdout(), "stopped; final checkpoint signed");
    Ok(ExitCode::SUCCESS)
}
