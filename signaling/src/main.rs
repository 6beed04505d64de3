//! `signaling` binary: parses the configuration, sets up logging, binds the
//! listener and runs [`signaling::server::serve`] until SIGTERM or Ctrl-C.
//! The first signal drains gracefully; a second one exits at once.
#![forbid(unsafe_code)]

use anyhow::Context as _;
use clap::Parser as _;
use signaling::config::Config;
use signaling::directory::DemoCredentials;
use signaling::server::{Services, serve};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // clap prints help/version/usage errors and exits by itself.
    let config = Config::parse();
    if let Err(e) = config.validate() {
        eprintln!("{e}");
        std::process::exit(2);
    }
    signaling::logging::init(config.log_format, &config.log)?;
    let listener = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("binding {}", config.listen))?;
    let addr = listener.local_addr()?;
    let (services, demo) = Services::from_config(&config)?;
    if let Some(demo) = &demo {
        print_banner(addr, demo);
    }

    let (first_tx, first_rx) = oneshot::channel::<()>();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("signal received: draining (send it again to exit at once)");
        let _ = first_tx.send(());
        wait_for_signal().await;
        tracing::warn!("second signal: exiting now");
        std::process::exit(130);
    });
    serve(listener, services, async {
        let _ = first_rx.await;
    })
    .await?;
    Ok(())
}

/// The `--dev` banner on stdout: URLs and the demo credentials (random,
/// made at this start; real passwords are never printed).
fn print_banner(addr: std::net::SocketAddr, demo: &DemoCredentials) {
    println!("Anteroom signaling (--dev) on http://{addr}/");
    println!("  WebSocket:     ws://{addr}/ws");
    println!("  health:        http://{addr}/healthz  http://{addr}/readyz");
    println!("  login:         POST http://{addr}/api/login");
    println!(
        "  organisation:  {}   waiting room: {}",
        demo.tenant, demo.room
    );
    println!("  clinician:     {} / {}", demo.username, demo.password);
    println!(
        "  admin:         {} / {}",
        demo.admin_username, demo.admin_password
    );
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
