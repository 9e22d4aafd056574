//! The `cvvault` binary: parse, run, map the outcome to an exit code. Nothing else.

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches};

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("CVVAULT_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        // Colour only for a person at a terminal: a log file or a pipe gets plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    // The exit-code table comes from the one list the error mapping uses.
    let matches = cvvault::cli::Cli::command()
        .after_help(cvvault::error::exit_codes_help())
        .get_matches();
    let cli = match cvvault::cli::Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    let json = cli.json;
    match cvvault::cli::run(cli) {
        Ok(code) => code,
        Err(error) => {
            let step = cvvault::cli::next_step(&error);
            if json {
                // With --json, a failure is JSON too (on standard error), so that a cron
                // line that logs the JSON logs failures as well as successes.
                eprintln!(
                    "{}",
                    serde_json::json!({
                        "error": error.to_string(),
                        "exit_code": error.exit_code(),
                        "next": step,
                    })
                );
            } else {
                eprintln!("error: {error}");
                if let Some(step) = step {
                    eprintln!("next: {step}");
                }
            }
            ExitCode::from(error.exit_code())
        }
    }
}
