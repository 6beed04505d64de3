//! `bench`: parses the command line and runs the scenario (see `bench --help`).
#![forbid(unsafe_code)]

use std::process::ExitCode;

use bench::scenario::cli::{Cli, run};
use clap::Parser;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    run(Cli::parse()).await
}
