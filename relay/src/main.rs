//! The relay binary: parse the configuration, set up logging, run.

use clap::Parser as _;
use relay::{Config, LogFormat};
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::parse();
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    match config.log_format {
        LogFormat::Text => tracing_subscriber::fmt().with_env_filter(filter).init(),
        LogFormat::Json => tracing_subscriber::fmt()
            .json()
            .with_env_filter(filter)
            .init(),
    }
    // Fail before installing signal handlers, with the flag to fix.
    config.validate()?;
    let shutdown = relay::signals::drain_then_force()?;
    relay::run(config, shutdown).await?;
    Ok(())
}
