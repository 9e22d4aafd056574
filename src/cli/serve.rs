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

/// Serve the HTTP API. Prints `listening on http://ADDR` as its first line of standard
/// output. On SIGTERM or Ctrl-C it stops accepting, drains the requests in flight, signs a
/// final checkpoint and exits 0.
#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Address and port to listen on (port 0: any free port). Plain HTTP: keep it on
    /// loopback or behind a TLS-terminating proxy.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub bind: SocketAddr,
    /// Sign an audit checkpoint this often, in seconds (if the log grew).
    #[arg(long, value_name = "SECONDS", default_value_t = 60)]
    pub checkpoint_interval: u64,
}

pub fn run(ctx: &Context, args: ServeArgs) -> Result<ExitCode> {
    let limits = Limits::load(&ctx.paths.limits_settings())?;
    let vault = Arc::new(ctx.open()?);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("cvvault-http")
        .build()
        .map_err(|e| Error::io("tokio runtime", e))?;
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
            writeln!(out, "listening on http://{address}")
                .map_err(|e| Error::io("standard output", e))?;
            out.flush().map_err(|e| Error::io("standard output", e))?;
        }
        tracing::info!(%address, "serving the HTTP API");
        let state = AppState::new(vault.clone(), &limits);
        server::serve(
            listener,
            state,
            Duration::from_secs(args.checkpoint_interval),
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
