//! The patient page in a real headless Chromium keeps its seat when its
//! signaling node goes away: a close with 1012 (service restart) or 1013
//! (try again later), as a cluster front end sends when the lobby owner
//! changes (issue 7), leads to a reconnect with back-off and jitter and a
//! `resume` of the same seat — never the error screen. A node that keeps
//! closing at once is retried less and less often.
//!
//! The page talks to signaling through a small proxy in this test that can
//! close the browser's WebSocket with a given code, like a node going away.
//! Chromium opens WebRTC sockets (the device check's connection test), so
//! run these inside the loopback-only namespace, as `scripts/test` does.

mod support;
mod web_support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::Result;
use futures_util::{SinkExt as _, StreamExt as _};
use support::{GUARD, TestServer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::broadcast;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use web_support::cdp::Browser;
use web_support::pages::{patient_joins, visible};

/// A proxy in front of signaling: HTTP passes through untouched; each
/// `/ws` is piped to signaling's own `/ws` and can be closed with a code.
struct Proxy {
    addr: SocketAddr,
    state: Arc<ProxyState>,
}

struct ProxyState {
    upstream: SocketAddr,
    /// The next this many sockets are closed with 1013 at once.
    refuse: AtomicUsize,
    /// Sockets opened by the browser so far.
    sockets: AtomicUsize,
    /// Closes every piped socket with this code.
    close: broadcast::Sender<u16>,
}

impl Proxy {
    async fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let state = Arc::new(ProxyState {
            upstream,
            refuse: AtomicUsize::new(0),
            sockets: AtomicUsize::new(0),
            close: broadcast::channel(4).0,
        });
        let shared = Arc::clone(&state);
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                tokio::spawn(serve(tcp, Arc::clone(&shared)));
            }
        });
        Self { addr, state }
    }

    /// Closes the browser's socket(s) with `code`, as a node going away.
    fn close_all(&self, code: u16) {
        let _ = self.state.close.send(code);
    }

    fn sockets(&self) -> usize {
        self.state.sockets.load(Ordering::SeqCst)
    }
}

/// One connection: a `/ws` upgrade is piped, anything else passed through.
async fn serve(tcp: TcpStream, state: Arc<ProxyState>) {
    let mut head = [0u8; 8];
    let is_ws = loop {
        match tcp.peek(&mut head).await {
            Ok(0) | Err(_) => return,
            Ok(n) if n >= head.len() => break &head == b"GET /ws ",
            Ok(_) => tokio::task::yield_now().await,
        }
    };
    if !is_ws {
        let Ok(mut up) = TcpStream::connect(state.upstream).await else {
            return;
        };
        let mut tcp = tcp;
        let _ = tokio::io::copy_bidirectional(&mut tcp, &mut up).await;
        return;
    }
    let Ok(browser) = tokio_tungstenite::accept_async(tcp).await else {
        return;
    };
    state.sockets.fetch_add(1, Ordering::SeqCst);
    let (mut to_browser, mut from_browser) = browser.split();
    let refuse = state
        .refuse
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok();
    let mut close = state.close.subscribe();
    let code = if refuse {
        1013
    } else {
        let url = format!("ws://{}/ws", state.upstream);
        let Ok((up, _)) = tokio_tungstenite::connect_async(url).await else {
            return;
        };
        let (mut to_up, mut from_up) = up.split();
        loop {
            tokio::select! {
                code = close.recv() => break code.unwrap_or(1012),
                m = from_browser.next() => {
                    let Some(Ok(m)) = m else { return };
                    if to_up.send(m).await.is_err() {
                        return;
                    }
                }
                m = from_up.next() => {
                    let Some(Ok(m)) = m else { return };
                    if to_browser.send(m).await.is_err() {
                        return;
                    }
                }
            }
        }
        // Dropping the upstream half ends signaling's side abruptly, as
        // when a node dies.
    };
    let frame = CloseFrame {
        code: CloseCode::from(code),
        reason: "node going away".into(),
    };
    let _ = to_browser.send(Message::Close(Some(frame))).await;
    // Let the browser answer the close before the TCP connection ends.
    let _ = tokio::time::timeout(GUARD, async {
        while let Some(Ok(_)) = from_browser.next().await {}
    })
    .await;
}

/// JS: the close codes the page's socket saw, in order.
const CLOSE_CODES: &str = "Anteroom.debug.closes.map(c => c.code)";

/// JS: empties the live region, which says "your place was kept" after a
/// resume.
const CLEAR_STATUS: &str = "document.getElementById('status').textContent = ''";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_going_away_reconnects_with_jittered_backoff_and_keeps_the_seat() -> Result<()> {
    let server = TestServer::start().await;
    let (mut doc, _) = server.clinician("dr-a").await;
    let proxy = Proxy::start(server.addr).await;
    let browser = Browser::launch().await?;
    let tab = browser
        .tab(&format!("http://{}/r/a-gp", proxy.addr))
        .await?;

    // The back-off: 500 ms doubling to a cap of 8 s, ±30 % jitter.
    let delays = tab
        .eval("[0, 1, 2, 4, 30].flatMap(n => [Anteroom.reconnectDelay(n, 0), Anteroom.reconnectDelay(n, 0.9999)])")
        .await?;
    assert_eq!(
        delays,
        serde_json::json!([350, 650, 700, 1300, 1400, 2600, 5600, 10400, 5600, 10400])
    );
    let spread = tab
        .eval("new Set(Array.from({ length: 20 }, () => Anteroom.reconnectDelay(0))).size")
        .await?;
    assert!(spread.as_u64() > Some(1), "the jitter is random: {spread}");

    let participant = patient_joins(&tab, "Alex Example", Some("Cough for a week")).await?;
    doc.expect(|v| v["type"] == "patient_arrived").await;

    for (round, code) in [1012u16, 1013].into_iter().enumerate() {
        let sockets = proxy.sockets();
        tab.eval(CLEAR_STATUS).await?;
        proxy.close_all(code);
        tab.wait_for(&format!("{CLOSE_CODES}.length === {}", round + 1))
            .await?;
        assert_eq!(
            tab.eval(&format!("{CLOSE_CODES}[{round}]")).await?,
            code,
            "the page saw the node's close code"
        );
        // Signaling saw the patient drop, then come back on the same seat.
        doc.expect(|v| {
            v["type"] == "patient_updated"
                && v["entry"]["participant"] == participant.as_str()
                && v["entry"]["connected"] == false
        })
        .await;
        doc.expect(|v| {
            v["type"] == "patient_updated"
                && v["entry"]["participant"] == participant.as_str()
                && v["entry"]["connected"] == true
        })
        .await;
        tab.wait_for(
            "document.getElementById('status').textContent.includes('your place was kept')",
        )
        .await?;
        assert!(proxy.sockets() > sockets, "a new socket");
        assert_eq!(
            tab.eval("Anteroom.debug.seat.participant").await?,
            participant.as_str()
        );
        assert_eq!(tab.eval(&visible("step-waiting")).await?, true);
        assert_eq!(tab.eval(&visible("step-error")).await?, false);
        // The first retry after a welcomed connection waits 500 ms ± 30 %.
        let wait = tab
            .eval(&format!("Anteroom.debug.closes[{round}].wait"))
            .await?;
        let wait = wait.as_u64().unwrap_or(0);
        assert!((350..=650).contains(&wait), "first wait {wait} ms");
    }

    // A node that closes every socket at once (1013) is retried with a
    // growing wait; the page then resumes the seat on the next good one.
    proxy.state.refuse.store(3, Ordering::SeqCst);
    tab.eval(CLEAR_STATUS).await?;
    proxy.close_all(1012);
    tab.wait_for(&format!("{CLOSE_CODES}.length === 6")).await?;
    tab.wait_for("document.getElementById('status').textContent.includes('your place was kept')")
        .await?;
    let codes = tab.eval(CLOSE_CODES).await?;
    assert_eq!(
        codes,
        serde_json::json!([1012, 1013, 1012, 1013, 1013, 1013])
    );
    let waits = tab
        .eval("Anteroom.debug.closes.slice(2).map(c => c.wait)")
        .await?;
    let waits: Vec<u64> = serde_json::from_value(waits)?;
    let bounds = [(350, 650), (700, 1300), (1400, 2600), (2800, 5200)];
    for (wait, (low, high)) in waits.iter().zip(bounds) {
        assert!(
            (low..=high).contains(wait),
            "waits {waits:?} should double with ±30 % jitter"
        );
    }
    assert_eq!(
        tab.eval("Anteroom.debug.seat.participant").await?,
        participant.as_str()
    );
    assert_eq!(tab.eval(&visible("step-error")).await?, false);
    drop(browser);
    server.stop().await?;
    Ok(())
}
