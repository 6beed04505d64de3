//! The relay binary: parse the configuration, set up logging, run (or, with
//! `--check-config`, only check the configuration).

use clap::Parser as _;
use relay::{Config, LogFormat};
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::parse();
    if config.check_config {
        // Nothing is bound and signaling is not contacted.
        if let Err(e) = config.validate() {
            eprintln!("config error: {e}");
            std::process::exit(2);
        }
        println!("config ok");
        return Ok(());
    }
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    match config.log_format {
        LogFormat::Text => tracing_subscriber::fmt().with_env_filter(filter).init(),
        LogFormat::Json => tracing_subscriber::fmt()
            .json()
            // Each line names the span it was logged in and its parents
            // (e.g. `http` with `route` and `status`), as signaling's do.
            .with_current_span(true)
            .with_span_list(true)
            .with_env_filter(filter)
            .init(),
    }
    // Fail before installing signal handlers, with the flag to fix.
    config.validate()?;
    let shutdown = relay::signals::drain_then_force()?;
    relay::run(config, shutdown).await?;
    Ok(())
}
