//! A minimal signaling control endpoint, run inside bench, that relays dial into.
//!
//! It speaks `protocol::control`: it accepts `register` (checked with
//! [`verify_register_auth`] and the shared secret), answers `registered`, sends the
//! offers bench's peers make (with grants bench signs), returns the relay's answers,
//! keeps the relay's last heartbeat, and carries the relay's `renegotiate` offers to the
//! peer they are for (its [`LoopSender`]) and the peer's answer back.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::{SinkExt as _, StreamExt as _};
use protocol::control::{
    RelayLoad, RelayToSignaling, RequestId, SignalingToRelay, verify_register_auth,
};
use protocol::{NodeId, ParticipantId, RoomId};
use str0m::change::SdpOffer;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;

use crate::peer::{LoopSender, PeerId};
use crate::{Error, Result};

/// Heartbeat interval asked of relays.
const HEARTBEAT_MS: u64 = 1000;
/// Longest wait for a relay's answer to one offer.
const OFFER_TIMEOUT: Duration = Duration::from_secs(20);

/// Seconds since the Unix epoch.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The control endpoint: a WebSocket listener; every registered relay becomes a
/// [`RelayLink`] returned by [`ControlServer::next_relay`].
#[derive(Debug)]
pub struct ControlServer {
    addr: SocketAddr,
    relays: mpsc::UnboundedReceiver<RelayLink>,
    task: JoinHandle<()>,
}

impl Drop for ControlServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl ControlServer {
    /// Listens on `bind` (use port 0 for an OS-chosen port). Relays must prove they
    /// hold `secret`.
    pub async fn start(bind: SocketAddr, secret: Arc<[u8]>) -> Result<ControlServer> {
        let listener = TcpListener::bind(bind).await?;
        let addr = listener.local_addr()?;
        let (tx, relays) = mpsc::unbounded_channel();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let (secret, tx) = (Arc::clone(&secret), tx.clone());
                tokio::spawn(async move {
                    if let Err(e) = serve(stream, &secret, tx).await {
                        tracing::warn!(error = %e, "relay control connection ended");
                    }
                });
            }
        });
        Ok(ControlServer { addr, relays, task })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The URL to give relays (`--signaling`).
    pub fn url(&self) -> String {
        format!("ws://{}/control", self.addr)
    }

    /// Waits up to `timeout` for the next relay to register.
    pub async fn next_relay(&mut self, timeout: Duration) -> Result<RelayLink> {
        match tokio::time::timeout(timeout, self.relays.recv()).await {
            Ok(Some(link)) => Ok(link),
            _ => Err(Error::Negotiation(format!(
                "no relay registered at {} within {timeout:?}",
                self.url()
            ))),
        }
    }
}

type Pending = HashMap<RequestId, oneshot::Sender<Result<String>>>;

#[derive(Debug)]
struct LinkInner {
    node: NodeId,
    advertise: Vec<String>,
    out: mpsc::UnboundedSender<SignalingToRelay>,
    pending: Mutex<Pending>,
    next_request: AtomicU64,
    peers: Mutex<HashMap<(RoomId, ParticipantId), (LoopSender, PeerId)>>,
    load: Mutex<Option<RelayLoad>>,
    renegotiations: AtomicU64,
    renegotiation_failures: AtomicU64,
    left: AtomicU64,
}

/// One registered relay's control connection.
#[derive(Debug, Clone)]
pub struct RelayLink {
    inner: Arc<LinkInner>,
}

/// Control-link counters, for the report.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct LinkCounters {
    /// Relay offers (renegotiations) answered by bench peers.
    pub renegotiations: u64,
    /// Relay offers bench could not answer.
    pub renegotiation_failures: u64,
    /// `participant_left` reports.
    pub participants_left: u64,
}

impl RelayLink {
    /// The relay's node id (grants must name it).
    pub fn node(&self) -> &NodeId {
        &self.inner.node
    }

    /// The worker addresses the relay advertised.
    pub fn advertise(&self) -> &[String] {
        &self.inner.advertise
    }

    /// The load of the relay's last heartbeat.
    pub fn last_load(&self) -> Option<RelayLoad> {
        self.inner
            .load
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Resolves once the relay's control connection has closed (the relay is gone).
    pub async fn closed(&self) {
        self.inner.out.closed().await;
    }

    /// Counters of this link.
    pub fn counters(&self) -> LinkCounters {
        LinkCounters {
            renegotiations: self.inner.renegotiations.load(Relaxed),
            renegotiation_failures: self.inner.renegotiation_failures.load(Relaxed),
            participants_left: self.inner.left.load(Relaxed),
        }
    }

    /// Says which running peer answers the relay's renegotiations for `participant`.
    pub fn route(&self, room: RoomId, participant: ParticipantId, loop_: LoopSender, peer: PeerId) {
        self.inner
            .peers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert((room, participant), (loop_, peer));
    }

    /// Sends `offer` with `grant`; resolves to the relay's SDP answer.
    pub async fn offer(&self, grant: String, sdp: String) -> Result<String> {
        let request = self.inner.next_request.fetch_add(1, Relaxed);
        let (tx, rx) = oneshot::channel();
        self.inner
            .pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(request, tx);
        self.inner
            .out
            .send(SignalingToRelay::Offer {
                request,
                grant,
                sdp,
            })
            .map_err(|_| Error::Negotiation("relay control connection closed".into()))?;
        match tokio::time::timeout(OFFER_TIMEOUT, rx).await {
            Ok(Ok(answer)) => answer,
            Ok(Err(_)) => Err(Error::Negotiation("relay control connection closed".into())),
            Err(_) => {
                self.take_pending(request);
                Err(Error::Negotiation("relay did not answer in time".into()))
            }
        }
    }

    fn take_pending(&self, request: RequestId) -> Option<oneshot::Sender<Result<String>>> {
        self.inner
            .pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&request)
    }

    fn on_message(&self, msg: RelayToSignaling) {
        match msg {
            RelayToSignaling::Answer { request, sdp, .. } => {
                if let Some(tx) = self.take_pending(request) {
                    let _ = tx.send(Ok(sdp));
                }
            }
            RelayToSignaling::Refused { request, reason } => {
                if let Some(tx) = self.take_pending(request) {
                    let _ = tx.send(Err(Error::Negotiation(format!("relay refused: {reason}"))));
                }
            }
            RelayToSignaling::Heartbeat(beat) => {
                *self
                    .inner
                    .load
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner) = Some(beat.load);
            }
            RelayToSignaling::Renegotiate {
                room,
                participant,
                sdp,
            } => self.renegotiate(room, participant, &sdp),
            RelayToSignaling::ParticipantLeft { .. } => {
                self.inner.left.fetch_add(1, Relaxed);
            }
            RelayToSignaling::Error { message } => {
                tracing::warn!(%message, "relay reported a control error");
            }
            RelayToSignaling::Register(_) => {
                tracing::warn!("relay registered twice on one connection");
            }
        }
    }

    fn renegotiate(&self, room: RoomId, participant: ParticipantId, sdp: &str) {
        let target = self
            .inner
            .peers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&(room.clone(), participant.clone()))
            .cloned();
        let offer = SdpOffer::from_sdp_string(sdp);
        let link = self.clone();
        tokio::spawn(async move {
            let answer = match (target, offer) {
                (Some((loop_, peer)), Ok(offer)) => loop_.renegotiate(peer, offer).await,
                (None, _) => Err(Error::Negotiation(format!("no peer for {participant}"))),
                (_, Err(e)) => Err(e.into()),
            };
            match answer {
                Ok(answer) => {
                    link.inner.renegotiations.fetch_add(1, Relaxed);
                    let _ = link.inner.out.send(SignalingToRelay::RenegotiateAnswer {
                        room,
                        participant,
                        sdp: answer.to_sdp_string(),
                    });
                }
                Err(e) => {
                    link.inner.renegotiation_failures.fetch_add(1, Relaxed);
                    tracing::warn!(%participant, error = %e, "could not answer a relay offer");
                }
            }
        });
    }

    fn close(&self) {
        let pending = std::mem::take(
            &mut *self
                .inner
                .pending
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        );
        for (_, tx) in pending {
            let _ = tx.send(Err(Error::Negotiation(
                "relay control connection closed".into(),
            )));
        }
    }
}

fn text(msg: &SignalingToRelay) -> Message {
    Message::text(serde_json::to_string(msg).unwrap_or_default())
}

/// One relay connection: registration, then both directions until it closes.
async fn serve(
    stream: TcpStream,
    secret: &[u8],
    relays: mpsc::UnboundedSender<RelayLink>,
) -> Result<()> {
    let ws_err = |e: tokio_tungstenite::tungstenite::Error| Error::Negotiation(e.to_string());
    let mut ws = tokio_tungstenite::accept_async(stream)
        .await
        .map_err(ws_err)?;
    let first = tokio::time::timeout(Duration::from_secs(10), ws.next()).await;
    let Ok(Some(Ok(Message::Text(first)))) = first else {
        return Err(Error::Negotiation("no register message".into()));
    };
    let reg = match serde_json::from_str::<RelayToSignaling>(first.as_str()) {
        Ok(RelayToSignaling::Register(reg)) if verify_register_auth(secret, &reg, unix_now()) => {
            reg
        }
        _ => {
            let refusal = SignalingToRelay::Error {
                message: "registration refused".into(),
            };
            let _ = ws.send(text(&refusal)).await;
            return Err(Error::Negotiation("a relay failed registration".into()));
        }
    };
    ws.send(text(&SignalingToRelay::Registered {
        heartbeat_ms: HEARTBEAT_MS,
    }))
    .await
    .map_err(ws_err)?;
    let (out, mut out_rx) = mpsc::unbounded_channel();
    let link = RelayLink {
        inner: Arc::new(LinkInner {
            node: reg.node,
            advertise: reg.advertise,
            out,
            pending: Mutex::default(),
            next_request: AtomicU64::new(1),
            peers: Mutex::default(),
            load: Mutex::default(),
            renegotiations: AtomicU64::new(0),
            renegotiation_failures: AtomicU64::new(0),
            left: AtomicU64::new(0),
        }),
    };
    tracing::info!(node = %link.node(), "relay registered");
    let _ = relays.send(link.clone());
    let result = loop {
        tokio::select! {
            Some(msg) = out_rx.recv() => {
                if let Err(e) = ws.send(text(&msg)).await {
                    break Err(ws_err(e));
                }
            }
            incoming = ws.next() => match incoming {
                None | Some(Ok(Message::Close(_))) => break Ok(()),
                Some(Err(e)) => break Err(ws_err(e)),
                Some(Ok(Message::Text(t))) => match serde_json::from_str(t.as_str()) {
                    Ok(msg) => link.on_message(msg),
                    Err(e) => tracing::warn!(error = %e, "unparseable control message"),
                },
                Some(Ok(_)) => {}
            },
        }
    };
    link.close();
    result
}
