//! The WebSocket `Origin` check over real sockets (issue 8): by default only
//! the server's own origin (from `Host`) may open `/ws`; with
//! `--allowed-origin` only the listed origins; a handshake without `Origin`
//! (a non-browser client) is always allowed; pages of other origins get 403
//! before any upgrade. The relays' `/control` refuses any `Origin`.

mod support;

use std::net::SocketAddr;

use protocol::PROTOCOL_VERSION;
use serde_json::json;
use signaling::config::Config;
use support::{Client, TestServer};
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::{connect_async, tungstenite};

/// Opens `path` with this `Origin` (none if `None`); `Ok(client)` if upgraded,
/// `Err(status)` if refused with an HTTP status.
async fn open(addr: SocketAddr, path: &str, origin: Option<&str>) -> Result<Client, u16> {
    let mut req = format!("ws://{addr}{path}")
        .into_client_request()
        .expect("request");
    if let Some(origin) = origin {
        req.headers_mut()
            .insert("origin", HeaderValue::from_str(origin).expect("header"));
    }
    match connect_async(req).await {
        Ok((ws, _)) => Ok(Client::from_stream(ws)),
        Err(tungstenite::Error::Http(res)) => Err(res.status().as_u16()),
        Err(e) => panic!("unexpected handshake error: {e}"),
    }
}

/// The socket is usable: `hello` gets `welcome`.
async fn greets(mut c: Client) {
    c.send(&json!({"type": "hello", "version": PROTOCOL_VERSION, "role": "patient"}))
        .await;
    c.expect_type("welcome").await;
}

#[tokio::test]
async fn by_default_only_the_servers_own_origin_may_open_ws() {
    let server = TestServer::start().await;
    let own = format!("http://{}", server.addr);
    greets(
        open(server.addr, "/ws", Some(&own))
            .await
            .expect("own origin"),
    )
    .await;
    greets(
        open(server.addr, "/ws", None)
            .await
            .expect("no Origin: not a browser"),
    )
    .await;
    let other_port = format!("http://127.0.0.1:{}", server.addr.port() + 1);
    let localhost = format!("http://localhost:{}", server.addr.port());
    for origin in ["https://evil.example", "null", &other_port, &localhost] {
        assert_eq!(
            open(server.addr, "/ws", Some(origin)).await.err(),
            Some(403),
            "{origin}"
        );
    }
    server.stop().await.expect("stop");
}

#[tokio::test]
async fn with_allowed_origin_only_the_listed_origins_may_open_ws() {
    let config = Config::parse_args([
        "signaling",
        "--config",
        "unused.toml",
        "--allowed-origin",
        "https://clinic.example",
        "--allowed-origin",
        "https://portal.clinic.example:8443,http://127.0.0.1:1",
    ])
    .expect("flags");
    let ws = config.ws_settings();
    let server = TestServer::start_with(move |s| s.ws = ws).await;
    for origin in [
        "https://clinic.example",
        "HTTPS://Clinic.Example:443",
        "https://portal.clinic.example:8443",
    ] {
        greets(open(server.addr, "/ws", Some(origin)).await.expect(origin)).await;
    }
    greets(open(server.addr, "/ws", None).await.expect("no Origin")).await;
    let own = format!("http://{}", server.addr);
    for origin in [
        own.as_str(),
        "https://evil.example",
        "http://clinic.example",
    ] {
        assert_eq!(
            open(server.addr, "/ws", Some(origin)).await.err(),
            Some(403),
            "{origin}: the list replaces the same-origin default"
        );
    }
    server.stop().await.expect("stop");
}

#[tokio::test]
async fn the_relay_control_socket_refuses_browsers() {
    let server = TestServer::start().await;
    let own = format!("http://{}", server.addr);
    assert_eq!(
        open(server.addr, "/control", Some(&own)).await.err(),
        Some(403)
    );
    // Without Origin the upgrade happens; the relay then has to register
    // with the shared secret (tested in relays_control.rs).
    let relay = open(server.addr, "/control", None).await;
    assert!(relay.is_ok(), "a relay (no Origin) is upgraded");
    server.stop().await.expect("stop");
}

#[test]
fn bad_allowed_origins_are_refused_at_start() {
    for bad in [
        "clinic.example",
        "https://clinic.example/portal",
        "null",
        "ftp://x",
    ] {
        let r = Config::parse_args(["signaling", "--dev", "--allowed-origin", bad]);
        assert!(r.is_err(), "{bad}");
    }
}
