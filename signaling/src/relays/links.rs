//! The pool's side of a relay's control connection, [`RelayLink`]:
//! registering (checked auth and version; a node that reconnects replaces
//! its old connection; rooms it re-announces keep or regain their
//! placement), heartbeats, replies to offers, relay events, and the end of
//! the connection (dropping the link: the relay is down).
//!
//! `/control` pumps a WebSocket through a `RelayLink`; tests (and the calls
//! layer's tests) can drive one in-process as a fake relay.

use std::collections::HashMap;
use std::sync::Arc;

use protocol::control::{
    Heartbeat, Register, RelayToSignaling, RequestId, SignalingToRelay, verify_register_auth,
};
use protocol::{NodeId, PROTOCOL_VERSION};
use tokio::sync::mpsc;

use super::pool::{Link, OfferReply, RelayPool, unix_now};
use super::registry::NodeRecord;
use super::{RelayCallError, RelayEvent};

/// Longest relay error message logged, in characters.
const MAX_LOGGED_ERROR: usize = 200;

/// Why a registration was refused. The message is sent to the relay.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegisterError {
    /// Another protocol version.
    #[error("unsupported protocol version")]
    Version,
    /// Bad HMAC or a timestamp too far from signaling's clock.
    #[error("registration refused: bad auth")]
    Auth,
    /// A capacity of zero.
    #[error("capacity must be positive")]
    Capacity,
}

/// A registered relay's control link: what to send it, and a way to feed
/// it what it sent. Dropping the link marks the relay down (unless the same
/// node registered again meanwhile).
#[derive(Debug)]
pub struct RelayLink {
    pool: Arc<RelayPool>,
    node: NodeId,
    generation: u64,
    outbox: mpsc::UnboundedReceiver<SignalingToRelay>,
}

impl RelayLink {
    /// The relay's node id.
    pub fn node(&self) -> &NodeId {
        &self.node
    }

    /// The `registered` reply to send first.
    pub fn registered(&self) -> SignalingToRelay {
        SignalingToRelay::Registered {
            heartbeat_ms: u64::try_from(self.pool.settings.heartbeat.as_millis())
                .unwrap_or(u64::MAX),
        }
    }

    /// The next message for the relay; `None` once the pool dropped the
    /// link (replaced by a newer connection, declared dead, or shutdown).
    pub async fn recv(&mut self) -> Option<SignalingToRelay> {
        self.outbox.recv().await
    }

    /// A message for the relay, if one is ready now.
    pub fn try_recv(&mut self) -> Option<SignalingToRelay> {
        self.outbox.try_recv().ok()
    }

    /// Handles one text frame from the relay; returns a reply, if any.
    pub fn handle_text(&self, text: &str) -> Option<SignalingToRelay> {
        let Ok(message) = serde_json::from_str::<RelayToSignaling>(text) else {
            tracing::debug!(node = %self.node, len = text.len(), "unparseable control message");
            return Some(SignalingToRelay::Error {
                message: "unparseable control message".into(),
            });
        };
        self.handle(message)
    }

    /// Handles one message from the relay; returns a reply, if any.
    pub fn handle(&self, message: RelayToSignaling) -> Option<SignalingToRelay> {
        let (pool, node, generation) = (&self.pool, &self.node, self.generation);
        match message {
            RelayToSignaling::Heartbeat(beat) => pool.on_heartbeat(node, generation, &beat),
            RelayToSignaling::Answer { request, sdp, .. } => {
                pool.on_reply(node, generation, request, Ok(sdp));
            }
            RelayToSignaling::Refused { request, reason } => {
                tracing::info!(%node, request, "relay refused an offer");
                let reply = Err(RelayCallError::Refused(reason));
                pool.on_reply(node, generation, request, reply);
            }
            RelayToSignaling::ParticipantLeft { room, participant } => {
                pool.whip.left(&room, &participant);
                pool.emit(RelayEvent::ParticipantLeft {
                    call: room,
                    participant,
                });
            }
            RelayToSignaling::Renegotiate {
                room,
                participant,
                sdp,
            } => {
                if pool.whip.contains(&room, &participant) {
                    // WHIP/WHEP have no server-initiated renegotiation.
                    tracing::info!(%node, %room, %participant, "renegotiation for a WHIP/WHEP session cannot be delivered");
                } else {
                    pool.emit(RelayEvent::Renegotiate {
                        call: room,
                        participant,
                        sdp,
                    });
                }
            }
            RelayToSignaling::Error { message } => {
                let message: String = message.chars().take(MAX_LOGGED_ERROR).collect();
                tracing::warn!(%node, %message, "relay reported an error");
            }
            RelayToSignaling::Register(_) => {
                return Some(SignalingToRelay::Error {
                    message: "already registered".into(),
                });
            }
        }
        None
    }
}

impl Drop for RelayLink {
    fn drop(&mut self) {
        self.pool.detach(&self.node, self.generation);
    }
}

impl RelayPool {
    /// Checks a relay's `register` (version, HMAC, clock skew) and opens its
    /// link; a previous link of the same node is replaced.
    pub fn register(self: &Arc<Self>, reg: &Register) -> Result<RelayLink, RegisterError> {
        if reg.version != PROTOCOL_VERSION {
            tracing::warn!(node = %reg.node, version = reg.version, "relay speaks another protocol version");
            return Err(RegisterError::Version);
        }
        if !verify_register_auth(self.settings.secret.expose(), reg, unix_now()) {
            tracing::warn!(node = %reg.node, "relay registration refused: bad auth or clock skew");
            return Err(RegisterError::Auth);
        }
        if reg.capacity == 0 {
            return Err(RegisterError::Capacity);
        }
        let (generation, outbox) = self.attach(reg);
        Ok(RelayLink {
            pool: Arc::clone(self),
            node: reg.node.clone(),
            generation,
            outbox,
        })
    }

    /// Records a verified registration and opens its link.
    fn attach(&self, reg: &Register) -> (u64, mpsc::UnboundedReceiver<SignalingToRelay>) {
        let (tx, outbox) = mpsc::unbounded_channel();
        let mut state = self.lock();
        let generation = state.next_generation;
        state.next_generation += 1;
        let node = reg.node.clone();
        let link = Link {
            generation,
            tx: tx.clone(),
            pending: HashMap::new(),
        };
        if state.links.insert(node.clone(), link).is_some() {
            tracing::info!(%node, "relay reconnected; old control connection replaced");
        }
        self.registry.upsert(NodeRecord::new(
            node.clone(),
            reg.region.clone(),
            reg.advertise.clone(),
            reg.capacity,
            self.settings.clock.now(),
        ));
        for room in &reg.rooms {
            match self.registry.placement(room) {
                Some(current) if current == node => {}
                Some(current) if self.is_alive(&state, &current) => {
                    // The call moved on while this relay was away.
                    let _ = tx.send(SignalingToRelay::CloseRoom { room: room.clone() });
                }
                Some(current) => {
                    self.registry.set_placement(room, &node);
                    self.emit(RelayEvent::CallMoved {
                        call: room.clone(),
                        from: current,
                        to: node.clone(),
                    });
                }
                None => {
                    self.registry.set_placement(room, &node);
                    if let Some(orphan) = state.orphans.remove(room) {
                        self.emit(RelayEvent::CallMoved {
                            call: room.clone(),
                            from: orphan.from,
                            to: node.clone(),
                        });
                    }
                }
            }
        }
        self.place_orphans(&mut state);
        drop(state);
        tracing::info!(%node, region = %reg.region, capacity = reg.capacity, rooms = reg.rooms.len(), "relay registered");
        self.emit(RelayEvent::RelayUp { node });
        (generation, outbox)
    }

    /// Whether `generation` is the current connection of `node`.
    fn is_current(links: &HashMap<NodeId, Link>, node: &NodeId, generation: u64) -> bool {
        links.get(node).is_some_and(|l| l.generation == generation)
    }

    /// A heartbeat on connection `generation` of `node`.
    fn on_heartbeat(&self, node: &NodeId, generation: u64, beat: &Heartbeat) {
        let state = self.lock();
        if Self::is_current(&state.links, node, generation) {
            self.registry
                .heartbeat(node, beat, self.settings.clock.now());
        }
    }

    /// The relay's answer or refusal to offer `request`.
    fn on_reply(&self, node: &NodeId, generation: u64, request: RequestId, reply: OfferReply) {
        let mut state = self.lock();
        let Some(link) = state.links.get_mut(node) else {
            return;
        };
        if link.generation != generation {
            return;
        }
        if let Some(waiter) = link.pending.remove(&request) {
            let _ = waiter.send(reply);
        } else {
            tracing::debug!(%node, request, "reply to an unknown or timed-out offer");
        }
    }

    /// Connection `generation` of `node` ended: unless a newer connection
    /// replaced it, the relay is down and its calls move.
    fn detach(&self, node: &NodeId, generation: u64) {
        let mut state = self.lock();
        if Self::is_current(&state.links, node, generation) {
            tracing::warn!(%node, "relay control connection closed");
            self.relay_down(&mut state, node);
        }
    }
}
