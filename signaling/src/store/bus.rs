//! The cross-node event bus: [`EventBus`] carries [`ClusterEvent`]s from
//! the signaling node where something happened to every other node (a
//! patient arrived through node B; node A's clinicians must see it).
//!
//! [`MemoryBus`] serves one process (every "node" holds the same bus);
//! [`RedisBus`] uses Redis pub/sub on the channel `P:events`. Pub/sub is
//! at-most-once: a node that is disconnected misses events. A Redis
//! subscription that breaks is made again by itself, and the subscriber then
//! receives [`Received::Gap`]: it must re-read the shared stores (seats,
//! registry) rather than trust the bus alone. Events carry ids only, never names or answers.
//!
//! Besides the broadcast channel, every node has a channel of its own
//! (`P:node:<id>`, [`EventBus::send_to`] / [`EventBus::subscribe_node`]):
//! the node mailbox ([`crate::cluster::mailbox`]) that pipes sockets between
//! front ends and the lobby owner. Its payloads are opaque
//! [`Sensitive`] strings (they may carry patient data and tokens): they are
//! never logged, and pub/sub stores nothing. Delivery is at-most-once, in
//! order per sender; a broken subscription is made again and yields
//! [`NodeReceived::Gap`].

use std::fmt;

use futures_util::future::BoxFuture;
use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use protocol::{ClinicianId, NodeId, ParticipantId, RoomId, Sensitive, TenantId};
use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, mpsc};

pub use super::bus_redis::RedisBus;
use crate::Error;

/// Events buffered per subscriber before the slowest loses the oldest.
pub(super) const BUFFER: usize = 1024;

/// Payloads buffered per node-channel subscriber (socket frames are bursty).
pub(super) const NODE_BUFFER: usize = 8192;

/// Something another node must know. Ids only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClusterEvent {
    /// A patient took a seat (or resumed) in a waiting room.
    PatientArrived {
        /// The room's organisation.
        tenant: TenantId,
        /// The waiting room.
        room: RoomId,
        /// The seat.
        participant: ParticipantId,
    },
    /// A seat is gone (left, denied, timed out, consultation ended).
    PatientLeft {
        /// The room's organisation.
        tenant: TenantId,
        /// The seat.
        participant: ParticipantId,
    },
    /// A clinician admitted a patient.
    PatientAdmitted {
        /// The room's organisation.
        tenant: TenantId,
        /// The seat.
        participant: ParticipantId,
        /// Who admitted.
        clinician: ClinicianId,
    },
    /// A call moved to another relay.
    RelayMoved {
        /// The call.
        call: RoomId,
        /// Its new relay.
        to: NodeId,
    },
    /// Sessions of this clinician ended early (logout, account disabled):
    /// every node re-checks its open WebSockets' sessions
    /// ([`crate::auth::Auth::watch_cluster`]).
    SessionsRevoked {
        /// Whose sessions.
        clinician: ClinicianId,
    },
    /// An admin disabled or re-enabled an account: every node applies it to
    /// its own in-memory directory ([`crate::auth::Auth::watch_cluster`];
    /// audited once, by the node where the admin did it).
    AccountEnabled {
        /// The account's organisation.
        tenant: TenantId,
        /// The account.
        clinician: ClinicianId,
        /// Enabled (`true`) or disabled.
        enabled: bool,
    },
}

/// One message on the bus: the event and the node that sent it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BusMessage {
    /// The signaling node that published it (a node skips its own).
    pub origin: NodeId,
    /// What happened.
    pub event: ClusterEvent,
}

/// What a subscription yields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Received {
    /// A message, in publication order per publisher.
    Message(BusMessage),
    /// Messages may have been lost (the subscriber lagged, or the Redis
    /// connection broke and was made again): re-read the shared stores.
    /// Everything published after this item arrives normally.
    Gap,
}

/// Receives the bus's messages.
#[derive(Debug)]
pub struct Subscription {
    pub(super) rx: mpsc::Receiver<Received>,
}

impl Subscription {
    /// The next item; `None` once the bus is gone.
    pub async fn recv(&mut self) -> Option<Received> {
        self.rx.recv().await
    }
}

/// What a node's own channel yields.
#[derive(Clone, PartialEq, Eq)]
pub enum NodeReceived {
    /// A payload sent to this node, in order per sender.
    Message(Sensitive<String>),
    /// Payloads may have been lost (the subscriber lagged, or the Redis
    /// connection broke and was made again).
    Gap,
}

impl fmt::Debug for NodeReceived {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Message(m) => write!(f, "Message({} bytes)", m.expose().len()),
            Self::Gap => f.write_str("Gap"),
        }
    }
}

/// Receives what is sent to one node.
#[derive(Debug)]
pub struct NodeInbox {
    pub(super) rx: mpsc::Receiver<NodeReceived>,
}

impl NodeInbox {
    /// The next item; `None` once the bus is gone.
    pub async fn recv(&mut self) -> Option<NodeReceived> {
        self.rx.recv().await
    }
}

/// Publish/subscribe between signaling nodes.
pub trait EventBus: Send + Sync + fmt::Debug {
    /// Sends `msg` to every current subscriber (on every node).
    fn publish(&self, msg: &BusMessage) -> BoxFuture<'_, Result<(), Error>>;

    /// A new subscription; it receives what is published after this returns.
    fn subscribe(&self) -> BoxFuture<'_, Result<Subscription, Error>>;

    /// Sends `payload` to the subscribers of node `to`'s own channel (none
    /// listening is not an error: the payload is dropped). Payloads from one
    /// caller arrive in the order of its (awaited) calls.
    fn send_to(&self, to: &NodeId, payload: Sensitive<String>) -> BoxFuture<'_, Result<(), Error>>;

    /// A subscription to node `node`'s own channel; it receives what is
    /// sent after this returns.
    fn subscribe_node(&self, node: &NodeId) -> BoxFuture<'_, Result<NodeInbox, Error>>;
}

/// The bus inside one process.
#[derive(Debug)]
pub struct MemoryBus {
    tx: broadcast::Sender<BusMessage>,
    nodes: Mutex<HashMap<NodeId, broadcast::Sender<Sensitive<String>>>>,
}

impl Default for MemoryBus {
    fn default() -> Self {
        Self {
            tx: broadcast::channel(BUFFER).0,
            nodes: Mutex::new(HashMap::new()),
        }
    }
}

impl MemoryBus {
    /// A bus with no subscribers.
    pub fn new() -> Self {
        Self::default()
    }

    fn node_channel(&self, node: &NodeId) -> broadcast::Sender<Sensitive<String>> {
        self.nodes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(node.clone())
            .or_insert_with(|| broadcast::channel(NODE_BUFFER).0)
            .clone()
    }
}

impl EventBus for MemoryBus {
    fn publish(&self, msg: &BusMessage) -> BoxFuture<'_, Result<(), Error>> {
        // No subscriber is fine: nobody listens yet.
        let _ = self.tx.send(msg.clone());
        Box::pin(async { Ok(()) })
    }

    fn subscribe(&self) -> BoxFuture<'_, Result<Subscription, Error>> {
        let mut from = self.tx.subscribe();
        let (tx, rx) = mpsc::channel(BUFFER);
        tokio::spawn(async move {
            loop {
                match from.recv().await {
                    Ok(m) => {
                        if tx.send(Received::Message(m)).await.is_err() {
                            break;
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        tracing::warn!(missed = n, "event bus: a slow subscriber lost events");
                        if tx.send(Received::Gap).await.is_err() {
                            break;
                        }
                    }
                    Err(broadcast::error::RecvError::Closed) => break,
                }
            }
        });
        Box::pin(async { Ok(Subscription { rx }) })
    }

    fn send_to(&self, to: &NodeId, payload: Sensitive<String>) -> BoxFuture<'_, Result<(), Error>> {
        // No subscriber is fine, as with pub/sub.
        let _ = self.node_channel(to).send(payload);
        Box::pin(async { Ok(()) })
    }

    fn subscribe_node(&self, node: &NodeId) -> BoxFuture<'_, Result<NodeInbox, Error>> {
        let mut from = self.node_channel(node).subscribe();
        let (tx, rx) = mpsc::channel(NODE_BUFFER);
        tokio::spawn(async move {
            loop {
                let item = match from.recv().await {
                    Ok(m) => NodeReceived::Message(m),
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        tracing::warn!(missed = n, "node mailbox: a slow subscriber lost messages");
                        NodeReceived::Gap
                    }
                    Err(broadcast::error::RecvError::Closed) => break,
                };
                if tx.send(item).await.is_err() {
                    break;
                }
            }
        });
        Box::pin(async { Ok(NodeInbox { rx }) })
    }
}
