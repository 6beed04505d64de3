//! Test helpers: a fake signaling control endpoint on 127.0.0.1 and grants.
#![allow(dead_code)] // each test binary uses a different subset

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{SinkExt as _, StreamExt as _};
use protocol::control::{RelayToSignaling, SignalingToRelay};
use protocol::{Grant, GrantRole, NodeId, ParticipantId, RoomId};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;

pub const SECRET: &str = "relay-test-secret-0123456789";

/// A fake signaling server: hands every accepted control connection to the test.
pub struct FakeSignaling {
    pub url: String,
    conns: mpsc::UnboundedReceiver<Conn>,
}

/// One control connection, seen from signaling.
pub struct Conn {
    ws: WebSocketStream<TcpStream>,
}

impl FakeSignaling {
    pub async fn start() -> Self {
        Self::start_on("127.0.0.1:0").await
    }

    /// A fake signaling server on `addr` (e.g. a port a test freed before).
    pub async fn start_on(addr: &str) -> Self {
        let listener = TcpListener::bind(addr).await.unwrap();
        let url = format!("ws://{}/control", listener.local_addr().unwrap());
        let (tx, conns) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                if let Ok(ws) = tokio_tungstenite::accept_async(stream).await
                    && tx.send(Conn { ws }).is_err()
                {
                    return;
                }
            }
        });
        Self { url, conns }
    }

    /// The next connection the relay makes.
    pub async fn accept(&mut self) -> Conn {
        self.conns.recv().await.expect("fake signaling stopped")
    }
}

impl Conn {
    /// The next message from the relay, `None` when the connection closed.
    pub async fn try_recv(&mut self) -> Option<RelayToSignaling> {
        loop {
            match self.ws.next().await? {
                Ok(Message::Text(text)) => {
                    return Some(serde_json::from_str(&text).expect("relay sent valid JSON"));
                }
                Ok(Message::Close(_)) | Err(_) => return None,
                Ok(_) => {}
            }
        }
    }

    /// The next message from the relay.
    pub async fn recv(&mut self) -> RelayToSignaling {
        self.try_recv().await.expect("connection closed")
    }

    /// The next message that is not a heartbeat.
    pub async fn recv_non_heartbeat(&mut self) -> RelayToSignaling {
        loop {
            match self.recv().await {
                RelayToSignaling::Heartbeat(_) => {}
                other => return other,
            }
        }
    }

    pub async fn send(&mut self, message: &SignalingToRelay) {
        let text = serde_json::to_string(message).unwrap();
        self.ws.send(Message::text(text)).await.unwrap();
    }

    pub async fn send_raw(&mut self, text: &str) {
        self.ws.send(Message::text(text.to_owned())).await.unwrap();
    }

    /// Reads the `register` message and accepts it.
    pub async fn register(&mut self, heartbeat_ms: u64) -> protocol::control::Register {
        let RelayToSignaling::Register(reg) = self.recv().await else {
            panic!("first message is not register");
        };
        self.send(&SignalingToRelay::Registered { heartbeat_ms })
            .await;
        reg
    }
}

pub fn unix_now() -> u64 {
    #[allow(clippy::disallowed_methods)]
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

pub fn node() -> NodeId {
    NodeId::new("relay-test").unwrap()
}

pub fn grant(room: &str, participant: &str) -> Grant {
    Grant {
        room: RoomId::new(room).unwrap(),
        participant: ParticipantId::new(participant).unwrap(),
        role: GrantRole::Participant,
        node: node(),
        exp: unix_now() + 600,
    }
}

/// Generous bound for awaiting something that should happen promptly.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// A client SDP offer (a data channel only) made by a str0m peer that never
/// connects: enough for the relay to create the participant and its room.
pub fn client_offer() -> String {
    #[allow(clippy::disallowed_methods)]
    let now = std::time::Instant::now();
    let mut rtc = str0m::RtcConfig::new().build(now);
    let mut api = rtc.sdp_api();
    api.add_channel("room".into());
    let (offer, _pending) = api.apply().expect("an offer");
    offer.to_sdp_string()
}

/// A plain HTTP/1.1 GET; returns (status, body).
pub async fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: relay\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap();
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}
