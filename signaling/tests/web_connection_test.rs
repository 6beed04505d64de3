//! The patient page's connection test in headless Chromium: the device
//! check asks signaling for a throwaway placement, connects to the relay
//! signaling chose (a real relay, in-process, registered over `/control`),
//! sends the fake camera and microphone, and shows "Good" with the round
//! trip in its live region; with no relay registered it shows a clear
//! failure with what to do, and the patient can still go on to the intake.
//!
//! Chromium and the relay open WebRTC sockets: run inside the loopback-only
//! namespace, as `scripts/test` does.

mod web_support;

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use protocol::Sensitive;
use signaling::config::Config;
use signaling::relays::{RelayEvent, RelayPool};
use signaling::server::{Services, serve};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use web_support::cdp::Browser;

const SECRET: &str = "connection-test-relay-secret";

/// `--dev` signaling on 127.0.0.1 (no embedded relay: that is main.rs's);
/// returns the base URL, the services and a stop handle.
async fn start() -> Result<(
    String,
    Arc<RelayPool>,
    oneshot::Sender<()>,
    tokio::task::JoinHandle<()>,
)> {
    let mut config = Config::dev();
    config.relay_secret = Some(Sensitive::new(SECRET.to_owned()));
    let (services, _demo) = Services::from_config(&config)?;
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let (stop, stopped) = oneshot::channel::<()>();
    let relays = services.relays.clone();
    let server = tokio::spawn(async move {
        let _ = serve(listener, services, async {
            let _ = stopped.await;
        })
        .await;
    });
    Ok((base, relays, stop, server))
}

/// JS: the connection test's result once it has one.
const RESULT: &str = "(() => { const e = document.getElementById('conn-check'); \
    return ['good', 'poor', 'failed'].includes(e.dataset.result) ? [e.dataset.result, e.textContent] : null; })()";

/// Awaits the page's connection-test result: (result, text).
async fn result(tab: &web_support::cdp::Tab) -> Result<(String, String)> {
    let v = tab.wait_for(RESULT).await?;
    Ok((
        v[0].as_str().context("result")?.to_owned(),
        v[1].as_str().context("text")?.to_owned(),
    ))
}

/// Awaits `n` calls placed on the relays (the pool has no event for a
/// placement ending, so this checks it every 20 ms, for at most 10 s).
async fn placed_calls(relays: &RelayPool, n: usize) -> Result<()> {
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            tick.tick().await;
            if relays.snapshot().iter().map(|r| r.calls).sum::<usize>() == n {
                return;
            }
        }
    })
    .await
    .with_context(|| format!("never {n} placed calls: {:?}", relays.snapshot()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_device_check_connection_test_succeeds_through_a_real_relay() -> Result<()> {
    let (base, relays, stop, server) = start().await?;
    let mut events = relays.subscribe();
    let addr = base.trim_start_matches("http://");
    let mut relay_config =
        relay::Config::local(protocol::NodeId::new("ct-relay-1")?, SECRET.to_owned());
    relay_config.standalone = false;
    relay_config.region = Config::dev().region;
    relay_config.signaling = vec![format!("ws://{addr}/control")];
    let relay = relay::Relay::start(relay_config).await?;
    tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            if let Ok(RelayEvent::RelayUp { .. }) = events.recv().await {
                break;
            }
        }
    })
    .await
    .context("the relay never registered")?;

    let browser = Browser::launch().await?;
    let tab = browser.tab(&format!("{base}/r/demo-room")).await?;
    let (outcome, text) = result(&tab).await?;
    if outcome != "good" {
        let stats = tab
            .eval("JSON.stringify(Anteroom.debug.connectionTest)")
            .await?;
        bail!("connection test: {outcome}: {text} ({stats})");
    }
    assert!(text.starts_with("Good: "), "{text}");
    assert!(text.contains("round trip"), "{text}");
    // The page measured a real ICE + DTLS connection that carried media.
    let stats = tab.eval("Anteroom.debug.connectionTest.stats").await?;
    assert_eq!(stats["ice"], "connected", "{stats}");
    assert_eq!(stats["dtls"], "connected", "{stats}");
    assert!(stats["packetsSent"].as_u64().unwrap_or(0) > 0, "{stats}");
    assert!(stats["rttMs"].as_u64().is_some(), "{stats}");
    // The live region carries it to screen readers.
    let live = tab
        .eval("document.getElementById('conn-check').getAttribute('aria-live')")
        .await?;
    assert_eq!(live, "polite");
    tab.wait_for("document.getElementById('conn-retry').hidden === false")
        .await?;
    tab.screenshot(&web_support::screenshot_path("patient-connection-test.png"))
        .await?;
    // Its throwaway placement ended with the test.
    placed_calls(&relays, 0).await?;

    // Moving on to the intake while a test runs stops it at once.
    tab.reload().await?;
    tab.wait_for("document.getElementById('conn-check').dataset.result === 'running'")
        .await?;
    placed_calls(&relays, 1).await?;
    tab.click("#device-next").await?;
    placed_calls(&relays, 0).await?;
    tab.wait_for("document.getElementById('conn-check').dataset.result === 'cancelled'")
        .await?;

    drop(browser);
    relay.shutdown().await;
    let _ = stop.send(());
    let _ = server.await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_connection_test_fails_clearly_without_a_relay() -> Result<()> {
    let (base, _relays, stop, server) = start().await?;
    let browser = Browser::launch().await?;
    let tab = browser.tab(&format!("{base}/r/demo-room")).await?;
    let (outcome, text) = result(&tab).await?;
    assert_eq!(outcome, "failed", "{text}");
    assert!(
        text.starts_with("Failed: no video relay is available"),
        "{text}"
    );
    assert!(
        text.contains("You can still join the waiting room"),
        "{text}"
    );
    // Not a dead end: the retry button and the way on to the intake work.
    tab.wait_for("document.getElementById('conn-retry').hidden === false")
        .await?;
    tab.click("#device-next").await?;
    tab.wait_for("!document.getElementById('step-intake').hidden")
        .await?;

    drop(browser);
    let _ = stop.send(());
    let _ = server.await;
    Ok(())
}
