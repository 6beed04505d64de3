//! The per-client task behind a [`super::TestClient`]: it reads the signaling socket,
//! records every message in the [`Inbox`], and plays the client's part of a call
//! (offers, answers, re-offers, relay moves, ICE failure reports). The agent outlives
//! one socket: after a reconnect (see [`super::link`]) it reads the next one and keeps
//! its peer connection.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, anyhow};
use futures_util::StreamExt as _;
use protocol::RoomId;
use protocol::client::{ClientToSignaling, SignalingToClient};
use tokio::sync::{mpsc, watch};
use tokio_tungstenite::tungstenite::Message;
use webrtc::peer_connection::RTCPeerConnectionState;

use super::CallView;
use crate::media::{Direction, MediaLog, MediaPeer};

/// Every message a client received, in order.
#[derive(Debug, Clone)]
pub(super) struct Inbox {
    pub(super) messages: Arc<Mutex<Vec<SignalingToClient>>>,
    pub(super) count: watch::Sender<usize>,
}

impl Inbox {
    pub(super) fn new() -> Self {
        Inbox {
            messages: Arc::default(),
            count: watch::channel(0).0,
        }
    }

    pub(super) fn push(&self, msg: SignalingToClient) {
        let n = {
            let Ok(mut m) = self.messages.lock() else {
                return;
            };
            m.push(msg);
            m.len()
        };
        self.count.send_replace(n);
    }
}

/// The per-client task: socket reader and call player.
pub(super) struct Agent {
    tag: String,
    out: mpsc::UnboundedSender<ClientToSignaling>,
    inbox: Inbox,
    media: MediaLog,
    view: Arc<Mutex<CallView>>,
    peer: Option<MediaPeer>,
    /// The generation for which `call_ice_failed` was sent.
    ice_failed_sent: Option<u32>,
}

pub(super) type WsStream = futures_util::stream::SplitStream<
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
>;

impl Agent {
    pub(super) fn new(
        tag: &str,
        out: mpsc::UnboundedSender<ClientToSignaling>,
        inbox: Inbox,
        media: MediaLog,
        view: Arc<Mutex<CallView>>,
    ) -> Self {
        Agent {
            tag: tag.to_owned(),
            out,
            inbox,
            media,
            view,
            peer: None,
            ice_failed_sent: None,
        }
    }

    /// Reads `stream` until it ends; returns the close code, if the server sent one.
    pub(super) async fn run(&mut self, stream: &mut WsStream) -> Option<u16> {
        loop {
            let mut state = self.peer.as_ref().map(MediaPeer::watch_state);
            let failed = async {
                match &mut state {
                    Some(s) => broken(s).await,
                    None => std::future::pending().await,
                }
            };
            let already = self.ice_failed_sent.is_some()
                && self.ice_failed_sent == self.peer.as_ref().map(|p| p.generation);
            tokio::select! {
                frame = stream.next() => {
                    let Some(Ok(frame)) = frame else { return None };
                    if let Message::Close(close) = &frame {
                        return close.as_ref().map(|c| u16::from(c.code));
                    }
                    let Message::Text(text) = frame else { continue };
                    match serde_json::from_str::<SignalingToClient>(text.as_str()) {
                        Ok(msg) => {
                            self.inbox.push(msg.clone());
                            if let Err(e) = self.on_message(msg).await {
                                self.error(format!("{e:#}"));
                            }
                        }
                        Err(e) => self.error(format!("unparsable message: {e}")),
                    }
                }
                () = failed, if !already => self.on_ice_failed(),
            }
        }
    }

    /// The client's tag.
    pub(super) fn tag(&self) -> &str {
        &self.tag
    }

    fn error(&self, e: String) {
        eprintln!("client {}: {e}", self.tag);
        if let Ok(mut v) = self.view.lock() {
            v.errors.push(e);
        }
    }

    fn on_ice_failed(&mut self) {
        let (Some(peer), Some(call)) = (&self.peer, self.call()) else {
            return;
        };
        self.ice_failed_sent = Some(peer.generation);
        let _ = self.out.send(ClientToSignaling::CallIceFailed { call });
    }

    fn call(&self) -> Option<RoomId> {
        self.view.lock().ok().and_then(|v| v.call.clone())
    }

    async fn on_message(&mut self, msg: SignalingToClient) -> Result<()> {
        match msg {
            SignalingToClient::CallReady {
                call,
                participant,
                relay,
                ..
            } => {
                // As the browser does: `call_ready` again for the call this peer
                // connection carries (after a resume), to the same relay, while it is
                // connected, changes nothing: the media never stopped.
                let keep = self.call().as_ref() == Some(&call)
                    && self.peer.as_ref().is_some_and(|p| {
                        p.relay == relay.as_str() && p.state() == RTCPeerConnectionState::Connected
                    });
                if let Ok(mut v) = self.view.lock() {
                    v.call = Some(call.clone());
                    v.participant = Some(participant);
                    if keep {
                        v.kept_on_ready += 1;
                    }
                }
                if keep {
                    return Ok(());
                }
                self.new_peer(call, relay.as_str()).await
            }
            SignalingToClient::RelayMoved { call, relay, .. } => {
                self.new_peer(call, relay.as_str()).await
            }
            SignalingToClient::CallAnswer { sdp, .. } => {
                let peer = self.peer.as_ref().context("call_answer without a peer")?;
                peer.accept_answer(sdp).await?;
                self.media.mark(peer.generation, "answered");
                Ok(())
            }
            SignalingToClient::CallRenegotiate { call, sdp } => {
                let peer = self.peer.as_ref().context("renegotiation without a peer")?;
                let sdp = peer.answer_offer(sdp).await?;
                self.media.mark(peer.generation, "renegotiated");
                self.out
                    .send(ClientToSignaling::CallAnswer { call, sdp })
                    .map_err(|_| anyhow!("socket closed"))
            }
            SignalingToClient::CallEnded { .. } => {
                if let Some(peer) = self.peer.take() {
                    peer.close();
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// Replaces the peer connection with a new one to `relay` and offers.
    async fn new_peer(&mut self, call: RoomId, relay: &str) -> Result<()> {
        let generation = self.peer.as_ref().map_or(0, |p| p.generation + 1);
        if let Some(old) = self.peer.take() {
            old.close();
        }
        self.media.mark(generation, "placed");
        if let Ok(mut v) = self.view.lock() {
            v.relay = Some(relay.to_owned());
            v.generation = Some(generation);
            v.placements.push((Instant::now(), relay.to_owned()));
        }
        let mut peer = MediaPeer::new(
            &self.tag,
            Direction::SendRecv,
            generation,
            relay,
            self.media.clone(),
        )
        .await?;
        let sdp = peer.offer().await?;
        self.media.mark(generation, "offer_sent");
        self.peer = Some(peer);
        self.out
            .send(ClientToSignaling::CallOffer { call, sdp })
            .map_err(|_| anyhow!("socket closed"))
    }
}

/// How long a `disconnected` peer connection may take to recover before the client
/// reports an ICE failure (browsers wait similarly before acting on it).
const DISCONNECTED_GRACE: Duration = Duration::from_secs(2);

/// Resolves when the connection has failed, or stayed disconnected for
/// [`DISCONNECTED_GRACE`]; never if it was closed by us.
async fn broken(state: &mut watch::Receiver<RTCPeerConnectionState>) {
    use RTCPeerConnectionState::{Connected, Disconnected, Failed};
    loop {
        let seen = state
            .wait_for(|s| matches!(s, Failed | Disconnected))
            .await
            .map(|s| *s == Failed);
        // Err: the connection is gone (closed by us): nothing to report.
        let Ok(failed) = seen else {
            return std::future::pending().await;
        };
        if failed {
            return;
        }
        let recovered = tokio::time::timeout(
            DISCONNECTED_GRACE,
            state.wait_for(|s| matches!(s, Connected | Failed)),
        )
        .await
        .map(|r| r.map(|s| *s == Connected));
        match recovered {
            Ok(Ok(true)) => {}
            Ok(Err(_)) => return std::future::pending().await,
            _ => return,
        }
    }
}
