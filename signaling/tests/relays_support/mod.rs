//! Helpers of the relay tests: a signaling server on 127.0.0.1 (region `eu`,
//! order `eu,us`, a known relay secret), fake relays speaking the control
//! protocol over a real WebSocket, and a raw HTTP/1.1 request helper.
#![allow(dead_code)]

pub mod inproc;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::{SinkExt as _, StreamExt as _};
use protocol::control::{
    Heartbeat, Register, RelayLoad, RelayToSignaling, SignalingToRelay, register_auth,
};
use protocol::{NodeId, PROTOCOL_VERSION, Region, RoomId};
use signaling::config::Config;
use signaling::relays::{RelayEvent, RelayPool};
use signaling::server::{Services, serve};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{broadcast, oneshot};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, connect_async};

/// The relay secret of the test server.
pub const SECRET: &str = "relay-secret-of-decent-length";

/// Longest wait for something expected (a guard against hangs).
pub const GUARD: Duration = Duration::from_secs(10);

/// A running signaling server.
pub struct Server {
    pub addr: SocketAddr,
    pub pool: Arc<RelayPool>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), signaling::Error>>>,
}

impl Server {
    /// Starts signaling (`--dev` directory) in region `eu`, order `eu,us`.
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// [`Server::start`] after `tweak` adjusted the services.
    pub async fn start_with(tweak: impl FnOnce(&mut Services)) -> Self {
        let config = Config::parse_args([
            "signaling",
            "--dev",
            "--listen",
            "127.0.0.1:0",
            "--relay-secret",
            SECRET,
            "--region",
            "eu",
            "--region-order",
            "eu,us",
        ])
        .expect("config");
        let (mut services, _) = Services::from_config(&config).expect("services");
        tweak(&mut services);
        let pool = services.relays.clone();
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(serve(listener, services, async {
            let _ = stopped.await;
        }));
        Self {
            addr,
            pool,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// A fake relay `node` in `region` that registered (and got `registered`).
    pub async fn relay(&self, node: &str, region: &str, rooms: &[&str]) -> FakeRelay {
        let mut relay = FakeRelay::connect(self.addr).await;
        relay
            .send(&RelayToSignaling::Register(register(
                node,
                region,
                rooms,
                SECRET.as_bytes(),
            )))
            .await;
        match relay.recv().await {
            Some(SignalingToRelay::Registered { heartbeat_ms }) => assert_eq!(heartbeat_ms, 1000),
            other => panic!("expected registered, got {other:?}"),
        }
        relay
    }

    /// Stops the server.
    pub async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take() {
            t.await.expect("server task").expect("serve");
        }
    }
}

pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

pub fn node(s: &str) -> NodeId {
    NodeId::new(s).unwrap()
}

pub fn room(s: &str) -> RoomId {
    RoomId::new(s).unwrap()
}

/// A `register` message signed with `secret`.
pub fn register(id: &str, region: &str, rooms: &[&str], secret: &[u8]) -> Register {
    let node = node(id);
    let ts = unix_now();
    Register {
        version: PROTOCOL_VERSION,
        auth: register_auth(secret, &node, ts),
        node,
        region: Region::new(region).unwrap(),
        advertise: vec!["127.0.0.1:5000".into()],
        capacity: 100,
        rooms: rooms.iter().map(|r| room(r)).collect(),
        ts,
    }
}

/// The next pool event (guarded).
pub async fn next_event(rx: &mut broadcast::Receiver<RelayEvent>) -> RelayEvent {
    tokio::time::timeout(GUARD, rx.recv())
        .await
        .expect("an event in time")
        .expect("event channel open")
}

/// A relay speaking the control protocol over a real WebSocket.
pub struct FakeRelay {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl FakeRelay {
    /// Connects to `/control` without registering.
    pub async fn connect(addr: SocketAddr) -> Self {
        let (ws, _) = connect_async(format!("ws://{addr}/control"))
            .await
            .expect("connect /control");
        Self { ws }
    }

    /// Sends a control message.
    pub async fn send(&mut self, message: &RelayToSignaling) {
        self.send_text(&serde_json::to_string(message).unwrap())
            .await;
    }

    /// Sends a raw text frame.
    pub async fn send_text(&mut self, text: &str) {
        self.ws.send(Message::text(text)).await.expect("send");
    }

    /// Sends a raw binary frame.
    pub async fn send_binary(&mut self, bytes: Vec<u8>) {
        self.ws.send(Message::binary(bytes)).await.expect("send");
    }

    /// A heartbeat reporting `participants` and `draining`.
    pub async fn beat(&mut self, participants: u32, draining: bool) {
        let hb = Heartbeat {
            load: RelayLoad {
                participants,
                ..RelayLoad::default()
            },
            draining,
        };
        self.send(&RelayToSignaling::Heartbeat(hb)).await;
    }

    /// Returns once everything this relay sent before has been applied: an
    /// offer round trip (the relay refuses a probe offer).
    pub async fn sync(&mut self, pool: &RelayPool, node: &NodeId) {
        let probe = pool.offer(node, "probe".into(), "probe".into());
        let refuse = async {
            let Some(SignalingToRelay::Offer { request, .. }) = self.recv().await else {
                panic!("expected the probe offer");
            };
            self.send(&RelayToSignaling::Refused {
                request,
                reason: "probe".into(),
            })
            .await;
        };
        let (result, ()) = tokio::join!(probe, refuse);
        assert!(result.is_err(), "the probe is refused");
    }

    /// The next control message; `None` once the connection closed.
    pub async fn recv(&mut self) -> Option<SignalingToRelay> {
        loop {
            let frame = tokio::time::timeout(GUARD, self.ws.next())
                .await
                .expect("a message in time");
            match frame {
                Some(Ok(Message::Text(t))) => {
                    return Some(serde_json::from_str(&t).expect("valid control message"));
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                _ => return None,
            }
        }
    }

    /// Closes the connection (as a killed relay's kernel would).
    pub async fn close(mut self) {
        let _ = self.ws.close(None).await;
    }
}

/// A header's value from a response head (case-insensitive name).
pub fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}
