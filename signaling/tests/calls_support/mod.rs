//! Helpers of the calls tests: the WebSocket test server of `support` with
//! a relay pool that knows [`SECRET`] (region `eu`, then `us`), fake relays
//! that dial `/control` over a real WebSocket and answer offers, and a few
//! call steps (admit and collect both `call_ready`s).
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use futures_util::{SinkExt as _, StreamExt as _};
use protocol::control::{Heartbeat, Register, RelayToSignaling, SignalingToRelay, register_auth};
use protocol::{Grant, NodeId, PROTOCOL_VERSION, ParticipantId, Region, RoomId};
use serde_json::{Value, json};
use signaling::clock::Clock;
use signaling::config::Config;
use signaling::directory::Directory;
use signaling::relays::{RelayPool, RelaySettings};
use signaling::server::Services;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, connect_async};

use crate::support::{Client, GUARD, PASSWORD, TestServer, action};

/// The relay secret of the test server.
pub const SECRET: &str = "calls-test-relay-secret-0123456789";

/// A test server whose pool accepts relays signed with [`SECRET`].
pub struct CallServer {
    pub server: TestServer,
    pub pool: Arc<RelayPool>,
}

/// Starts the server; `manual` gives the lobby a manual clock.
pub async fn start(manual: bool) -> CallServer {
    start_inner(manual, false).await
}

/// Starts a server whose directory has one organisation `org-m` with a
/// meeting room `m-team` and clinician `dr-m` (password [`PASSWORD`]).
pub async fn start_meeting() -> CallServer {
    start_inner(false, true).await
}

fn meeting_directory() -> Directory {
    let hash = signaling::auth::hash_password(PASSWORD);
    let toml = format!(
        "[[tenant]]\nid = \"org-m\"\nname = \"Org M\"\n\
         [[room]]\nid = \"m-team\"\ntenant = \"org-m\"\nname = \"Team\"\nkind = \"meeting\"\n\
         [[clinician]]\nid = \"dr-m\"\ntenant = \"org-m\"\nusername = \"dr-m\"\n\
         display_name = \"Dr M\"\npassword_hash = \"{hash}\"\n"
    );
    Directory::from_toml_str(&toml).expect("meeting directory")
}

async fn start_inner(manual: bool, meeting: bool) -> CallServer {
    let mut pool = None;
    let server = TestServer::start_with(|s| {
        if meeting {
            let config = Config::parse_args(["signaling", "--config", "unused.toml"]).unwrap();
            *s = Services::new(Arc::new(meeting_directory()), s.audit.clone(), &config);
        }
        let mut settings = RelaySettings::new(SECRET, Region::new("eu").unwrap());
        settings.region_order = vec![Region::new("eu").unwrap(), Region::new("us").unwrap()];
        s.relays = RelayPool::new(settings);
        if manual {
            s.clock = Clock::manual();
        }
        pool = Some(s.relays.clone());
    })
    .await;
    CallServer {
        server,
        pool: pool.expect("pool"),
    }
}

pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

pub fn node(s: &str) -> NodeId {
    NodeId::new(s).unwrap()
}

/// Checks `grant` was signed with [`SECRET`] for `node`; returns it.
pub fn verify(grant: &Value, node: &NodeId) -> Grant {
    let token = grant.as_str().expect("grant string");
    Grant::verify(token, SECRET.as_bytes(), node, unix_now()).expect("grant verifies")
}

/// A relay speaking the control protocol over a real WebSocket.
pub struct FakeRelay {
    pub node: NodeId,
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl FakeRelay {
    /// Connects to `/control` and registers as `id` in `region`.
    pub async fn register(addr: SocketAddr, id: &str, region: &str) -> Self {
        let (ws, _) = connect_async(format!("ws://{addr}/control"))
            .await
            .expect("connect /control");
        let node = node(id);
        let ts = unix_now();
        let reg = Register {
            version: PROTOCOL_VERSION,
            auth: register_auth(SECRET.as_bytes(), &node, ts),
            node: node.clone(),
            region: Region::new(region).unwrap(),
            advertise: vec!["127.0.0.1:5000".into()],
            capacity: 100,
            rooms: Vec::new(),
            ts,
        };
        let mut relay = Self { node, ws };
        relay.send(&RelayToSignaling::Register(reg)).await;
        match relay.recv().await {
            Some(SignalingToRelay::Registered { .. }) => {}
            other => panic!("expected registered, got {other:?}"),
        }
        relay
            .send(&RelayToSignaling::Heartbeat(Heartbeat::default()))
            .await;
        relay
    }

    /// Sends a control message.
    pub async fn send(&mut self, m: &RelayToSignaling) {
        let text = serde_json::to_string(m).unwrap();
        self.ws.send(Message::text(text)).await.expect("send");
    }

    /// The next control message; `None` once the connection closed.
    pub async fn recv(&mut self) -> Option<SignalingToRelay> {
        loop {
            let frame = tokio::time::timeout(GUARD, self.ws.next())
                .await
                .expect("a control message in time");
            match frame {
                Some(Ok(Message::Text(t))) => return Some(serde_json::from_str(&t).unwrap()),
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                _ => return None,
            }
        }
    }

    /// Waits for an offer; answers it with `answer`. Returns the verified
    /// grant and the offer's SDP.
    pub async fn answer_offer(&mut self, answer: &str) -> (Grant, String) {
        loop {
            if let Some(SignalingToRelay::Offer {
                request,
                grant,
                sdp,
            }) = self.recv().await
            {
                let g = Grant::verify(&grant, SECRET.as_bytes(), &self.node, unix_now())
                    .expect("the offer's grant verifies");
                let reply = RelayToSignaling::Answer {
                    request,
                    participant: g.participant.clone(),
                    sdp: answer.to_owned(),
                };
                self.send(&reply).await;
                return (g, sdp);
            }
        }
    }

    /// Skips control messages until one matching `pred`.
    pub async fn expect(&mut self, pred: impl Fn(&SignalingToRelay) -> bool) -> SignalingToRelay {
        loop {
            let m = self.recv().await.expect("control connection open");
            if pred(&m) {
                return m;
            }
        }
    }

    /// Closes the connection (as a killed relay's kernel would).
    pub async fn close(mut self) {
        let _ = self.ws.close(None).await;
    }
}

/// One side of a call: the `call_ready` fields.
#[derive(Debug, Clone)]
pub struct Ready {
    pub call: RoomId,
    pub participant: ParticipantId,
    pub relay: NodeId,
    pub grant: Value,
}

/// Reads a `call_ready` message.
pub fn ready(v: &Value) -> Ready {
    assert_eq!(v["type"], "call_ready", "{v}");
    Ready {
        call: serde_json::from_value(v["call"].clone()).unwrap(),
        participant: serde_json::from_value(v["participant"].clone()).unwrap(),
        relay: serde_json::from_value(v["relay"].clone()).unwrap(),
        grant: v["grant"].clone(),
    }
}

/// `doc` admits `p`; returns the patient's and the clinician's `call_ready`
/// (checking the patient gets `admitted` first and the clinician gets
/// `call_ready` before `ok`).
pub async fn admit_into_call(
    doc: &mut Client,
    patient: &mut Client,
    p: &ParticipantId,
) -> (Ready, Ready) {
    doc.send(&action("admit", p, 7)).await;
    let d = doc
        .expect(|v| v["type"] == "call_ready" || v["type"] == "ok")
        .await;
    let d = ready(&d);
    doc.expect(|v| v["type"] == "ok" && v["request"] == 7).await;
    patient.expect_type("admitted").await;
    let pr = ready(
        &patient
            .next()
            .await
            .expect("call_ready right after admitted"),
    );
    (pr, d)
}

/// Sends a `call_*` message.
pub async fn call_msg(c: &mut Client, ty: &str, call: &RoomId, extra: Value) {
    let mut v = json!({"type": ty, "call": call});
    if let (Some(o), Some(e)) = (v.as_object_mut(), extra.as_object()) {
        o.extend(e.clone());
    }
    c.send(&v).await;
}
