//! Slowloris protection over real sockets (issue 8): with short limits set by
//! flag, a connection that sends a partial request head (or nothing), or
//! trickles a request body, or never finishes its TLS handshake, or opens a
//! WebSocket and never says `hello`, is closed by the server — well before the test's guard, which is
//! shorter than the 10 s defaults — while well-behaved requests on other
//! connections keep being answered.

mod support;

use std::sync::Arc;
use std::time::Duration;

use signaling::config::Config;
use signaling::tls::Tls;
use support::{Client, TestServer};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_rustls::rustls::{self, ClientConfig, RootCertStore};

/// Longest the test waits for the server to close a connection: shorter than
/// the default limits (10 s), so only the flags can make the tests pass.
const CLOSE_GUARD: Duration = Duration::from_secs(5);

/// Limits of 300 ms, set through the real flags.
fn short_limits() -> Config {
    Config::parse_args([
        "signaling",
        "--config",
        "unused.toml",
        "--header-read-timeout-ms",
        "300",
        "--tls-handshake-timeout-ms",
        "300",
        "--hello-timeout-ms",
        "300",
        "--request-timeout-ms",
        "300",
    ])
    .expect("flags")
}

async fn start(tls: Option<Tls>) -> TestServer {
    let config = short_limits();
    TestServer::start_with(move |s| {
        s.listen = config.timeouts.limits();
        s.ws = config.ws_settings();
        s.tls = tls;
    })
    .await
}

/// Reads until the server closes the connection; what it sent. Panics if it
/// is still open after [`CLOSE_GUARD`].
async fn read_until_closed(s: &mut (impl AsyncRead + Unpin)) -> String {
    let mut out = Vec::new();
    let closed = tokio::time::timeout(CLOSE_GUARD, s.read_to_end(&mut out)).await;
    assert!(closed.is_ok(), "the server did not close the connection");
    String::from_utf8_lossy(&out).into_owned()
}

async fn healthz(addr: std::net::SocketAddr) -> String {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .expect("write");
    read_until_closed(&mut s).await
}

#[tokio::test]
async fn a_partial_request_head_is_timed_out_while_others_are_served() {
    let server = start(None).await;
    let mut slow = TcpStream::connect(server.addr).await.expect("connect");
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: 1")
        .await
        .expect("write");
    let mut silent = TcpStream::connect(server.addr).await.expect("connect");
    // A well-behaved client is answered while the slow ones hang.
    assert!(healthz(server.addr).await.starts_with("HTTP/1.1 200"));
    let answer = read_until_closed(&mut slow).await;
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 408"),
        "{answer}"
    );
    let answer = read_until_closed(&mut silent).await;
    assert!(!answer.contains("200 OK"), "{answer}");
    assert!(healthz(server.addr).await.starts_with("HTTP/1.1 200"));
    server.stop().await.expect("stop");
}

#[tokio::test]
async fn a_trickled_request_body_is_timed_out() {
    let server = start(None).await;
    let mut slow = TcpStream::connect(server.addr).await.expect("connect");
    slow.write_all(
        b"POST /api/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
          Content-Length: 100\r\n\r\n{\"username\"",
    )
    .await
    .expect("write");
    assert!(healthz(server.addr).await.starts_with("HTTP/1.1 200"));
    let answer = read_until_closed(&mut slow).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    server.stop().await.expect("stop");
}

fn connector(tls: &Tls) -> TlsConnector {
    let mut roots = RootCertStore::empty();
    roots.add(tls.certificate().clone()).expect("trust anchor");
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    TlsConnector::from(Arc::new(config))
}

#[tokio::test]
async fn tls_handshakes_and_request_heads_are_timed_out() {
    let tls = Tls::self_signed(&["localhost"]).expect("certificate");
    let server = start(Some(tls.clone())).await;
    let connector = connector(&tls);
    let name = ServerName::try_from("localhost").expect("name");

    // Never starts the handshake.
    let mut silent = TcpStream::connect(server.addr).await.expect("connect");
    // Completes the handshake, then sends half a request head.
    let tcp = TcpStream::connect(server.addr).await.expect("connect");
    let mut slow = connector
        .connect(name.clone(), tcp)
        .await
        .expect("handshake");
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n")
        .await
        .expect("write");
    slow.flush().await.expect("flush");

    // Meanwhile a well-behaved HTTPS request is answered.
    let tcp = TcpStream::connect(server.addr).await.expect("connect");
    let mut good = connector.connect(name, tcp).await.expect("handshake");
    good.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .expect("write");
    let mut answer = Vec::new();
    // A peer that closes without close_notify still delivered what it sent.
    let _ = tokio::time::timeout(CLOSE_GUARD, good.read_to_end(&mut answer)).await;
    assert!(answer.starts_with(b"HTTP/1.1 200"));

    assert_eq!(read_until_closed(&mut silent).await, "");
    let mut out = Vec::new();
    let closed = tokio::time::timeout(CLOSE_GUARD, slow.read_to_end(&mut out)).await;
    assert!(closed.is_ok(), "the TLS connection was not closed");
    let out = String::from_utf8_lossy(&out);
    assert!(out.is_empty() || out.starts_with("HTTP/1.1 408"), "{out}");
    server.stop().await.expect("stop");
}

#[tokio::test]
async fn a_websocket_that_never_says_hello_is_closed() {
    let server = start(None).await;
    let mut quiet = Client::connect(server.addr).await;
    let closed = tokio::time::timeout(CLOSE_GUARD, async {
        quiet.expect_error().await;
        quiet.expect_closed().await;
    })
    .await;
    assert!(closed.is_ok(), "still open after {CLOSE_GUARD:?}");
    server.stop().await.expect("stop");
}
