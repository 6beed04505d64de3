//! Signaling over TLS: a rustls client that trusts the server's self-signed
//! certificate gets pages with HSTS, a `__Host-` secure session cookie and a
//! working WSS socket; TLS 1.2 and 1.3 are each accepted; a TLS 1.1
//! ClientHello is refused.

mod support;

use std::net::SocketAddr;
use std::sync::Arc;

use futures_util::{SinkExt as _, StreamExt as _};
use protocol::PROTOCOL_VERSION;
use serde_json::{Value, json};
use signaling::tls::Tls;
use support::{GUARD, PASSWORD, TestServer};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_rustls::rustls::{self, ClientConfig, ProtocolVersion, RootCertStore};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::http::HeaderValue;

async fn tls_server() -> (TestServer, Tls) {
    let tls = Tls::self_signed(&["localhost"]).expect("certificate");
    let t = tls.clone();
    let server = TestServer::start_with(move |s| s.tls = Some(t)).await;
    (server, tls)
}

/// A client trusting only `tls`'s certificate, offering `versions`.
fn connector(tls: &Tls, versions: &[&'static rustls::SupportedProtocolVersion]) -> TlsConnector {
    let mut roots = RootCertStore::empty();
    roots.add(tls.certificate().clone()).expect("trust anchor");
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    TlsConnector::from(Arc::new(config))
}

async fn connect(
    addr: SocketAddr,
    tls: &Tls,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> std::io::Result<TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(addr).await?;
    let name = ServerName::try_from("localhost").expect("name");
    tokio::time::timeout(GUARD, connector(tls, versions).connect(name, tcp))
        .await
        .expect("handshake in time")
}

/// One HTTP/1.1 request over TLS; the status and the raw response.
async fn https(
    addr: SocketAddr,
    tls: &Tls,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> (u16, String) {
    let mut s = connect(addr, tls, rustls::DEFAULT_VERSIONS)
        .await
        .expect("TLS connect");
    let body = body.map(Value::to_string).unwrap_or_default();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await.expect("write");
    let mut out = Vec::new();
    // A peer that closes without close_notify still delivered what it sent.
    let _ = tokio::time::timeout(GUARD, s.read_to_end(&mut out))
        .await
        .expect("reply in time");
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, text)
}

fn header<'a>(response: &'a str, name: &str) -> Vec<&'a str> {
    let head = response.split("\r\n\r\n").next().unwrap_or("");
    head.lines()
        .filter_map(|l| l.split_once(':'))
        .filter(|(k, _)| k.trim().eq_ignore_ascii_case(name))
        .map(|(_, v)| v.trim())
        .collect()
}

#[tokio::test]
async fn https_pages_carry_hsts() {
    let (server, tls) = tls_server().await;
    let (status, res) = https(server.addr, &tls, "GET", "/healthz", None).await;
    assert_eq!(status, 200, "{res}");
    assert!(res.ends_with("ok\n"), "{res}");
    assert_eq!(
        header(&res, "strict-transport-security"),
        ["max-age=31536000"]
    );
    let (status, res) = https(server.addr, &tls, "GET", "/no-such-page", None).await;
    assert_eq!(status, 404);
    assert_eq!(header(&res, "strict-transport-security").len(), 1, "{res}");
    server.stop().await.expect("stop");
}

#[tokio::test]
async fn plain_http_servers_send_no_hsts() {
    let server = TestServer::start().await;
    let (status, head, _) = support::http(server.addr, "GET", "/healthz", None).await;
    assert_eq!(status, 200);
    assert!(
        header(&head, "strict-transport-security").is_empty(),
        "{head}"
    );
    server.stop().await.expect("stop");
}

#[tokio::test]
async fn tls12_and_tls13_are_each_accepted() {
    let (server, tls) = tls_server().await;
    for (versions, want) in [
        (&[&rustls::version::TLS12][..], ProtocolVersion::TLSv1_2),
        (&[&rustls::version::TLS13][..], ProtocolVersion::TLSv1_3),
    ] {
        let s = connect(server.addr, &tls, versions)
            .await
            .expect("handshake");
        let (_, conn) = s.get_ref();
        assert_eq!(conn.protocol_version(), Some(want));
        assert_eq!(conn.alpn_protocol(), Some(&b"http/1.1"[..]));
    }
    server.stop().await.expect("stop");
}

/// A minimal ClientHello with `version` as its highest version (no
/// supported_versions extension), offering ECDHE-ECDSA-AES128-GCM-SHA256 on
/// P-256 with ECDSA-SHA256 signatures: everything else a TLS 1.2 server
/// with the test's ECDSA certificate needs.
fn client_hello(version: [u8; 2]) -> Vec<u8> {
    let mut body = version.to_vec();
    body.extend_from_slice(&[0x42; 32]); // random
    body.push(0); // no session id
    body.extend_from_slice(&[0x00, 0x02, 0xc0, 0x2b]); // one suite
    body.extend_from_slice(&[0x01, 0x00]); // null compression only
    let extensions: &[u8] = &[
        0x00, 0x0a, 0x00, 0x04, 0x00, 0x02, 0x00, 0x17, // supported_groups: secp256r1
        0x00, 0x0b, 0x00, 0x02, 0x01, 0x00, // ec_point_formats: uncompressed
        0x00, 0x0d, 0x00, 0x04, 0x00, 0x02, 0x04, 0x03, // signature_algorithms
    ];
    body.extend_from_slice(&(extensions.len() as u16).to_be_bytes());
    body.extend_from_slice(extensions);
    let mut hs = vec![0x01, 0x00];
    hs.extend_from_slice(&(body.len() as u16).to_be_bytes());
    hs.extend_from_slice(&body);
    let mut record = vec![0x16, 0x03, 0x01];
    record.extend_from_slice(&(hs.len() as u16).to_be_bytes());
    record.extend_from_slice(&hs);
    record
}

/// Sends a ClientHello on a raw TCP connection; the server's first bytes.
async fn first_reply(addr: SocketAddr, hello: &[u8]) -> Vec<u8> {
    let mut tcp = TcpStream::connect(addr).await.expect("connect");
    tcp.write_all(hello).await.expect("write");
    let mut reply = vec![0; 16];
    let n = tokio::time::timeout(GUARD, tcp.read(&mut reply))
        .await
        .expect("server answers in time")
        .unwrap_or(0);
    reply.truncate(n);
    reply
}

#[tokio::test]
async fn tls11_and_older_are_refused() {
    let (server, _tls) = tls_server().await;
    // Control: the same hello as TLS 1.2 gets a ServerHello (handshake
    // record 22, message type 2), so the refusal below is about the version.
    let reply = first_reply(server.addr, &client_hello([0x03, 0x03])).await;
    assert_eq!(reply.first(), Some(&0x16), "TLS 1.2: {reply:02x?}");
    assert_eq!(reply.get(5), Some(&0x02), "TLS 1.2: {reply:02x?}");
    for version in [[0x03, 0x02], [0x03, 0x01], [0x03, 0x00]] {
        let reply = first_reply(server.addr, &client_hello(version)).await;
        // A fatal alert record (content type 21, level 2), no ServerHello.
        assert_eq!(reply.first(), Some(&0x15), "{version:02x?}: {reply:02x?}");
        assert_eq!(reply.get(5), Some(&0x02), "{version:02x?}: {reply:02x?}");
    }
    server.stop().await.expect("stop");
}

#[tokio::test]
async fn login_over_https_sets_a_host_prefixed_secure_cookie() {
    let (server, tls) = tls_server().await;
    let body = json!({"username": "dr-a", "password": PASSWORD});
    let (status, res) = https(server.addr, &tls, "POST", "/api/login", Some(&body)).await;
    assert_eq!(status, 200, "{res}");
    let cookies = header(&res, "set-cookie");
    assert_eq!(cookies.len(), 1, "{res}");
    let cookie = cookies[0];
    assert!(cookie.starts_with("__Host-anteroom_session="), "{cookie}");
    let attrs: Vec<&str> = cookie.split(';').map(str::trim).collect();
    for want in ["Secure", "HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(attrs.contains(&want), "{want} missing: {cookie}");
    }
    assert!(!cookie.to_ascii_lowercase().contains("domain="), "{cookie}");

    // The browser sends that cookie with the WebSocket upgrade: a clinician
    // hello without a token is authenticated by it.
    let pair = cookie.split(';').next().unwrap_or_default().to_owned();
    let stream = connect(server.addr, &tls, rustls::DEFAULT_VERSIONS)
        .await
        .expect("TLS connect");
    let mut req = "wss://localhost/ws".into_client_request().expect("request");
    let port = server.addr.port();
    let h = req.headers_mut();
    h.insert(
        "host",
        HeaderValue::from_str(&format!("localhost:{port}")).unwrap(),
    );
    h.insert(
        "origin",
        HeaderValue::from_str(&format!("https://localhost:{port}")).unwrap(),
    );
    h.insert("cookie", HeaderValue::from_str(&pair).unwrap());
    let (mut ws, _) = tokio_tungstenite::client_async(req, stream)
        .await
        .expect("WSS upgrade");
    let hello = json!({"type": "hello", "version": PROTOCOL_VERSION, "role": "clinician"});
    ws.send(Message::text(hello.to_string()))
        .await
        .expect("send");
    let reply = tokio::time::timeout(GUARD, ws.next())
        .await
        .expect("reply in time")
        .expect("open")
        .expect("frame");
    let reply: Value = serde_json::from_str(reply.to_text().expect("text")).expect("json");
    assert_eq!(reply["type"], "welcome", "{reply}");
    server.stop().await.expect("stop");
}

#[tokio::test]
async fn a_silent_client_does_not_block_other_handshakes() {
    let (server, tls) = tls_server().await;
    // Connections that never send a byte (and one that sends half a record).
    let mut idle = Vec::new();
    for _ in 0..50 {
        idle.push(TcpStream::connect(server.addr).await.expect("connect"));
    }
    let mut half = TcpStream::connect(server.addr).await.expect("connect");
    half.write_all(&client_hello([0x03, 0x03])[..20])
        .await
        .expect("write");
    let (status, _) = https(server.addr, &tls, "GET", "/healthz", None).await;
    assert_eq!(status, 200);
    drop(idle);
    server.stop().await.expect("stop");
}
