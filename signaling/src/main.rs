//! `signaling` binary: parses the configuration, sets up logging, binds the
//! listener and runs [`signaling::server::serve`] until SIGTERM or Ctrl-C.
//! With `--check-config` it only checks the configuration and exits.
//! The first signal drains gracefully; a second one exits at once.
//!
//! With `--dev` it also starts a relay in-process (unless
//! `--no-embedded-relay`) that dials this server's own `/control`, so one
//! command gives working calls on one machine.
#![forbid(unsafe_code)]

use anyhow::Context as _;
use clap::Parser as _;
use signaling::config::Config;
use signaling::directory::DemoCredentials;
use signaling::server::{Services, serve};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // clap prints help/version/usage errors and exits by itself.
    let mut config = Config::parse();
    if config.dev && config.relay_secret.is_none() {
        // The embedded relay and signaling share a fresh secret.
        let secret: [u8; 24] = rand::random();
        let hex: String = secret
            .iter()
            .flat_map(|b| [b >> 4, b & 0xf])
            .filter_map(|n| char::from_digit(u32::from(n), 16))
            .collect();
        config.relay_secret = Some(protocol::Sensitive::new(hex));
    }
    if let Err(e) = config.validate() {
        eprintln!("{e}");
        std::process::exit(2);
    }
    if config.check_config {
        // Nothing is bound, connected or written (signaling::check).
        if let Err(e) = signaling::check::check_config(&config) {
            eprintln!("config error: {e}");
            std::process::exit(2);
        }
        println!("config ok");
        return Ok(());
    }
    signaling::logging::init(config.log_format, &config.log)?;
    // Issue 7: with --redis-url, refuse to start without the Redis asked for.
    let backends = match signaling::store::backends::Backends::from_config(&config).await {
        Ok(b) => b,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    let listener = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("binding {}", config.listen))?;
    let addr = listener.local_addr()?;
    let (services, demo) = Services::from_config_with(&config, backends)?;
    let tls = services.tls.clone();

    let (first_tx, first_rx) = oneshot::channel::<()>();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("signal received: draining (send it again to exit at once)");
        let _ = first_tx.send(());
        wait_for_signal().await;
        tracing::warn!("second signal: exiting now");
        std::process::exit(130);
    });
    let server = tokio::spawn(serve(listener, services, async {
        let _ = first_rx.await;
    }));
    // Test harnesses wait for this line to learn the OS-chosen port.
    let scheme = if tls.is_some() { "https" } else { "http" };
    println!("listening on {scheme}://{addr}");
    if let Some(tls) = &tls {
        println!("TLS certificate SHA-256 fingerprint: {}", tls.fingerprint());
    }
    // The relay's control link speaks plain ws:// only (docs/relay.md).
    let embedded = config.dev && !config.no_embedded_relay;
    if embedded && tls.is_some() {
        tracing::warn!("--dev-tls: no embedded relay (its control link has no TLS)");
    }
    let relay = if embedded && tls.is_none() {
        Some(start_embedded_relay(&config, addr).await?)
    } else {
        None
    };
    if let Some(demo) = &demo {
        print_banner(&format!("{scheme}://{addr}"), demo, relay.as_ref());
    }
    let result = server.await.context("server task")?;
    if let Some(relay) = relay {
        relay.shutdown().await;
    }
    result?;
    Ok(())
}

/// Starts a relay in this process that registers with our own `/control`.
async fn start_embedded_relay(
    config: &Config,
    addr: SocketAddr,
) -> anyhow::Result<relay::RelayHandle> {
    let secret = config
        .relay_secret
        .as_ref()
        .map(|s| s.expose().clone())
        .context("the embedded relay needs the relay secret")?;
    let node = protocol::NodeId::new("dev-relay-1").context("node id")?;
    let mut relay_config = relay::Config::local(node, secret);
    relay_config.standalone = false;
    relay_config.region = config.region.clone();
    let control_ip = if addr.ip().is_unspecified() {
        IpAddr::V4(Ipv4Addr::LOCALHOST)
    } else {
        addr.ip()
    };
    relay_config.signaling = vec![format!(
        "ws://{}/control",
        SocketAddr::new(control_ip, addr.port())
    )];
    relay::Relay::start(relay_config)
        .await
        .context("starting the embedded relay")
}

/// The `--dev` banner on stdout: URLs and the demo credentials (random,
/// made at this start; real passwords are never printed).
fn print_banner(base: &str, demo: &DemoCredentials, relay: Option<&relay::RelayHandle>) {
    println!("Anteroom signaling (--dev) on {base}/");
    println!("  patient page:  {base}/r/{}", demo.room);
    println!("  clinicians:    {base}/portal   admin: {base}/admin");
    if let Some(relay) = relay {
        let udp: Vec<String> = relay.udp_addrs().iter().map(ToString::to_string).collect();
        println!(
            "  relay:         {} (embedded) UDP {}  metrics http://{}/metrics",
            relay.node_id(),
            udp.join(" "),
            relay.metrics_addr()
        );
    }
    let ws = base.replacen("http", "ws", 1);
    println!("  WebSocket:     {ws}/ws");
    println!("  health:        {base}/healthz  {base}/readyz");
    println!("  login:         POST {base}/api/login");
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
