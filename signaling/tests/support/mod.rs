//! Shared helpers of the WebSocket tests: a signaling server on 127.0.0.1
//! with an OS-chosen port, two organisations and an in-memory audit trail,
//! and a small JSON WebSocket client.
//!
//! Organisations: `org-a` (rooms `a-gp` with a required question, `a-nurse`,
//! `a-hidden` which hides positions; clinicians `dr-a`, `dr-a2`) and `org-b`
//! (room `b-gp`; clinician `dr-b`). Every account's password is [`PASSWORD`].
#![allow(dead_code)]

pub mod cluster;
pub mod logs;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use futures_util::{SinkExt as _, StreamExt as _};
use protocol::client::{ClientToSignaling, ErrorCode, SignalingToClient};
use protocol::{PROTOCOL_VERSION, ParticipantId};
use serde_json::{Value, json};
use signaling::audit::{Audit, AuditBuffer};
use signaling::auth::Auth;
use signaling::clock::Clock;
use signaling::config::Config;
use signaling::directory::Directory;
use signaling::server::{Services, serve};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, connect_async};

/// Password of every test account.
pub const PASSWORD: &str = "test-password-of-decent-length";

/// How long a test waits for an expected message before failing (a guard
/// against hangs, not a way to wait for something).
pub const GUARD: Duration = Duration::from_secs(10);

fn directory_toml() -> &'static str {
    static TOML: OnceLock<String> = OnceLock::new();
    TOML.get_or_init(|| {
        let hash = signaling::auth::hash_password(PASSWORD);
        let clinician = |id: &str, tenant: &str| {
            format!(
                "[[clinician]]\nid = \"{id}\"\ntenant = \"{tenant}\"\nusername = \"{id}\"\n\
                 display_name = \"Dr {id}\"\npassword_hash = \"{hash}\"\n"
            )
        };
        format!(
            r#"
[[tenant]]
id = "org-a"
name = "Org A"
[[tenant]]
id = "org-b"
name = "Org B"

[[room]]
id = "a-gp"
tenant = "org-a"
name = "A GP"
intake = [{{ id = "reason", label = "Why are you here?", required = true }}]
[[room]]
id = "a-nurse"
tenant = "org-a"
name = "A nurse"
[[room]]
id = "a-hidden"
tenant = "org-a"
name = "A hidden"
hide_position = true
[[room]]
id = "b-gp"
tenant = "org-b"
name = "B GP"
intake = [{{ id = "reason", label = "Why are you here?", required = true }}]

{}{}{}"#,
            clinician("dr-a", "org-a"),
            clinician("dr-a2", "org-a"),
            clinician("dr-b", "org-b"),
        )
    })
}

/// A running signaling server.
pub struct TestServer {
    pub addr: SocketAddr,
    pub auth: Arc<Auth>,
    pub audit: AuditBuffer,
    /// The server's clock (manual if the test set one up).
    pub clock: Clock,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), signaling::Error>>>,
}

impl TestServer {
    /// Starts a server with default settings.
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// Starts a server after `tweak` adjusted its services (limits, grace…).
    pub async fn start_with(tweak: impl FnOnce(&mut Services)) -> Self {
        let directory = Arc::new(Directory::from_toml_str(directory_toml()).expect("directory"));
        let (audit, buffer) = Audit::memory();
        let config = Config::parse_args(["signaling", "--config", "unused.toml"]).expect("config");
        let mut services = Services::new(directory, audit, &config);
        tweak(&mut services);
        let auth = services.auth.clone();
        let clock = services.clock.clone();
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(serve(listener, services, async {
            let _ = stopped.await;
        }));
        Self {
            addr,
            auth,
            audit: buffer,
            clock,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// Logs in (directly against the server's `Auth`) and returns the token.
    pub fn login(&self, username: &str) -> String {
        let local = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let (token, _) = self
            .auth
            .login(username, PASSWORD, local, self.clock.now())
            .expect("login");
        token
    }

    /// A patient connection that said hello.
    pub async fn patient(&self) -> Client {
        let mut c = Client::connect(self.addr).await;
        c.send(&json!({"type": "hello", "version": PROTOCOL_VERSION, "role": "patient"}))
            .await;
        c.expect_type("welcome").await;
        c
    }

    /// A patient that joined `room`; returns the client and its participant id.
    pub async fn joined_patient(
        &self,
        room: &str,
        name: &str,
        reason: &str,
    ) -> (Client, ParticipantId, String) {
        let mut c = self.patient().await;
        let intake = if room.ends_with("gp") {
            json!({"reason": reason})
        } else {
            json!({})
        };
        c.send(&json!({"type": "join", "room": room, "display_name": name, "intake": intake}))
            .await;
        let joined = c.expect_type("joined").await;
        let p: ParticipantId =
            serde_json::from_value(joined["participant"].clone()).expect("participant");
        let token = joined["resume_token"].as_str().expect("token").to_owned();
        (c, p, token)
    }

    /// A clinician connection (logged in as `username`) that subscribed;
    /// returns it with the snapshot.
    pub async fn clinician(&self, username: &str) -> (Client, Value) {
        let token = self.login(username);
        self.clinician_with(&token).await
    }

    /// A clinician connection using session `token`, subscribed; returns it
    /// with the snapshot.
    pub async fn clinician_with(&self, token: &str) -> (Client, Value) {
        let mut c = Client::connect(self.addr).await;
        c.send(
            &json!({"type": "hello", "version": PROTOCOL_VERSION, "role": "clinician",
                       "session": token}),
        )
        .await;
        c.expect_type("welcome").await;
        c.send(&json!({"type": "subscribe", "request": 1})).await;
        let snap = c.expect_type("queue_snapshot").await;
        (c, snap)
    }

    /// Triggers graceful shutdown and waits for `serve` to return.
    pub async fn stop(mut self) -> Result<(), signaling::Error> {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        match self.task.take() {
            Some(t) => t.await.expect("server task"),
            None => Ok(()),
        }
    }

    /// Audit lines as JSON.
    pub fn audit_json(&self) -> Vec<Value> {
        self.audit
            .lines()
            .iter()
            .map(|l| serde_json::from_str(l).expect("audit line is JSON"))
            .collect()
    }
}

/// A JSON WebSocket client.
pub struct Client {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl Client {
    /// Connects to `/ws`.
    pub async fn connect(addr: SocketAddr) -> Self {
        let (ws, _) = connect_async(format!("ws://{addr}/ws"))
            .await
            .expect("connect");
        Self { ws }
    }

    /// Wraps an already connected stream.
    pub fn from_stream(ws: WebSocketStream<MaybeTlsStream<TcpStream>>) -> Self {
        Self { ws }
    }

    /// Sends a JSON value.
    pub async fn send(&mut self, v: &Value) {
        self.send_raw(&v.to_string()).await;
    }

    /// Sends a typed message.
    pub async fn send_msg(&mut self, m: &ClientToSignaling) {
        self.send_raw(&serde_json::to_string(m).expect("encode"))
            .await;
    }

    /// Sends a text frame as is.
    pub async fn send_raw(&mut self, text: &str) {
        self.ws.send(Message::text(text)).await.expect("send");
    }

    /// Sends a binary frame.
    pub async fn send_binary(&mut self, data: &[u8]) {
        self.ws
            .send(Message::binary(data.to_vec()))
            .await
            .expect("send");
    }

    /// The next JSON message; `Err` if the connection closed first.
    pub async fn next(&mut self) -> Result<Value> {
        loop {
            let frame = tokio::time::timeout(GUARD, self.ws.next())
                .await
                .context("no message within the guard time")?;
            match frame {
                Some(Ok(Message::Text(t))) => return Ok(serde_json::from_str(t.as_str())?),
                Some(Ok(Message::Close(_))) | None => bail!("closed"),
                Some(Ok(_)) => {}
                Some(Err(e)) => bail!("socket error: {e}"),
            }
        }
    }

    /// Sends a WebSocket ping and waits for its pong: the server has then
    /// read (and rate-limited, parsed, forwarded) every frame sent before.
    /// Returns the JSON messages that arrived meanwhile.
    pub async fn sync(&mut self) -> Vec<Value> {
        self.ws
            .send(Message::Ping(b"sync".to_vec().into()))
            .await
            .expect("ping");
        let mut seen = Vec::new();
        loop {
            let frame = tokio::time::timeout(GUARD, self.ws.next())
                .await
                .expect("no pong");
            match frame {
                Some(Ok(Message::Pong(_))) => return seen,
                Some(Ok(Message::Text(t))) => {
                    seen.push(serde_json::from_str(t.as_str()).expect("json"));
                }
                Some(Ok(_)) => {}
                other => panic!("connection ended while syncing: {other:?}"),
            }
        }
    }

    /// The next message, parsed (checks the server sends valid messages).
    pub async fn next_msg(&mut self) -> SignalingToClient {
        let v = self.next().await.expect("a message");
        serde_json::from_value(v.clone()).unwrap_or_else(|e| panic!("bad message {v}: {e}"))
    }

    /// Skips messages until one of type `ty` arrives.
    pub async fn expect_type(&mut self, ty: &str) -> Value {
        loop {
            let v = self
                .next()
                .await
                .unwrap_or_else(|e| panic!("waiting for {ty}: {e}"));
            if v["type"] == ty {
                return v;
            }
            assert!(v["type"] != "error", "waiting for {ty}, got {v}");
        }
    }

    /// Skips messages until one matching `pred`.
    pub async fn expect(&mut self, pred: impl Fn(&Value) -> bool) -> Value {
        loop {
            let v = self
                .next()
                .await
                .unwrap_or_else(|e| panic!("waiting for a match: {e}"));
            if pred(&v) {
                return v;
            }
        }
    }

    /// Skips messages until an `error`; returns its code.
    pub async fn expect_error(&mut self) -> ErrorCode {
        let v = self.expect_type("error").await;
        serde_json::from_value(v["code"].clone()).expect("error code")
    }

    /// Asserts the server closes the connection (after any messages).
    pub async fn expect_closed(&mut self) {
        loop {
            match self.next().await {
                Ok(_) => {}
                Err(e) => {
                    assert!(
                        e.to_string().contains("closed") || e.to_string().contains("socket"),
                        "{e}"
                    );
                    return;
                }
            }
        }
    }

    /// Round trip that proves the connection still works: asks for a room.
    pub async fn ping_room(&mut self, room: &str) {
        self.send(&json!({"type": "get_room", "room": room})).await;
        self.expect_type("room_info").await;
    }

    /// Closes the connection.
    pub async fn close(mut self) {
        let _ = self.ws.close(None).await;
        // Wait for the server's close reply so the server saw the close.
        while let Ok(Some(Ok(_))) = tokio::time::timeout(GUARD, self.ws.next()).await {}
    }
}

/// One HTTP/1.1 request over a fresh connection with a JSON body (if any);
/// returns the status code, the raw head and the body.
pub async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> (u16, String, String) {
    let body = body.map(Value::to_string).unwrap_or_default();
    http_raw(
        addr,
        method,
        path,
        &[("Content-Type", "application/json")],
        &body,
    )
    .await
}

/// One HTTP/1.1 request with a JSON body (none if `body` is null) and extra
/// `headers`; returns the status code, the raw head and the parsed JSON reply
/// (null if the reply is not JSON).
pub async fn http_json(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &Value,
) -> (u16, String, Value) {
    let mut h = vec![("Content-Type", "application/json")];
    h.extend_from_slice(headers);
    let body = if body.is_null() {
        String::new()
    } else {
        body.to_string()
    };
    let (status, head, text) = http_raw(addr, method, path, &h, &body).await;
    (
        status,
        head,
        serde_json::from_str(&text).unwrap_or(Value::Null),
    )
}

/// One HTTP/1.1 request with extra `headers` and a raw `body`; returns the
/// status code, the raw head and the body.
pub async fn http_raw(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String, String) {
    use std::fmt::Write as _;

    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        let _ = write!(req, "{k}: {v}\r\n");
    }
    let _ = write!(req, "Content-Length: {}\r\n\r\n{body}", body.len());
    let mut s = TcpStream::connect(addr).await.expect("connect");
    s.write_all(req.as_bytes()).await.expect("write");
    let mut out = Vec::new();
    tokio::time::timeout(GUARD, s.read_to_end(&mut out))
        .await
        .expect("reply in time")
        .expect("read");
    let text = String::from_utf8_lossy(&out).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, head.to_owned(), body.to_owned())
}

/// A clinician request naming a patient, as JSON.
pub fn action(ty: &str, p: &ParticipantId, request: u64) -> Value {
    json!({"type": ty, "participant": p, "request": request})
}
