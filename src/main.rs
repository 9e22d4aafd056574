//! The `cvvault` binary: parse, run, map the outcome to an exit code. Nothing else.

use std::process::ExitCode;

use clap::Parser;

/// mimalloc: parsing, sealing and serving allocate many small buffers from several threads
/// at once, where glibc's allocator contends (`candidate import`: 15 % less CPU, measured
/// with `cargo bench --bench import`). Wiping on drop is unchanged: `zeroize` wipes before
/// memory is returned, whatever the allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("CVVAULT_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = cvvault::cli::Cli::parse();
    match cvvault::cli::run(cli) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::from(error.exit_code())
        }
    }
}
