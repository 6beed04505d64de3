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
use std::time::Duration;

use futures_util::StreamExt as _;
use futures_util::future::BoxFuture;
use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use protocol::{ClinicianId, NodeId, ParticipantId, RoomId, Sensitive, TenantId};
use redis::aio::PubSub;
use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, mpsc};

use super::{RedisHandle, redis_error};
use crate::Error;

/// Events buffered per subscriber before the slowest loses the oldest.
const BUFFER: usize = 1024;

/// Payloads buffered per node-channel subscriber (socket frames are bursty).
const NODE_BUFFER: usize = 8192;

/// First and longest wait between attempts to subscribe again.
const RETRY_MIN: Duration = Duration::from_millis(100);
const RETRY_MAX: Duration = Duration::from_secs(5);

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
    rx: mpsc::Receiver<Received>,
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
    rx: mpsc::Receiver<NodeReceived>,
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

/// The bus over Redis pub/sub (channel `P:events`, JSON messages).
#[derive(Debug)]
pub struct RedisBus {
    handle: RedisHandle,
    channel: String,
    publisher: tokio::sync::OnceCell<redis::aio::ConnectionManager>,
}

impl RedisBus {
    /// A bus on `handle`'s Redis (connects on first use).
    pub fn new(handle: RedisHandle) -> Self {
        let channel = handle.key("events");
        Self {
            handle,
            channel,
            publisher: tokio::sync::OnceCell::new(),
        }
    }
}

impl EventBus for RedisBus {
    fn publish(&self, msg: &BusMessage) -> BoxFuture<'_, Result<(), Error>> {
        let json = serde_json::to_string(msg);
        Box::pin(async move {
            let json = json.map_err(|_| Error::Redis("encoding a bus message".into()))?;
            let mut conn = self.publisher().await?;
            redis::cmd("PUBLISH")
                .arg(&self.channel)
                .arg(json)
                .query_async::<i64>(&mut conn)
                .await
                .map_err(|e| redis_error("publishing an event", &e))?;
            Ok(())
        })
    }

    fn subscribe(&self) -> BoxFuture<'_, Result<Subscription, Error>> {
        Box::pin(async move {
            let first = connect_pubsub(self.handle.client(), &self.channel).await?;
            let (tx, rx) = mpsc::channel(BUFFER);
            tokio::spawn(pump(
                self.handle.client().clone(),
                self.channel.clone(),
                first,
                tx,
                decode_event,
                || Received::Gap,
            ));
            Ok(Subscription { rx })
        })
    }

    fn send_to(&self, to: &NodeId, payload: Sensitive<String>) -> BoxFuture<'_, Result<(), Error>> {
        let channel = self.handle.key(&format!("node:{to}"));
        Box::pin(async move {
            let mut conn = self.publisher().await?;
            redis::cmd("PUBLISH")
                .arg(channel)
                .arg(payload.into_inner())
                .query_async::<i64>(&mut conn)
                .await
                .map_err(|e| redis_error("sending to a node", &e))?;
            Ok(())
        })
    }

    fn subscribe_node(&self, node: &NodeId) -> BoxFuture<'_, Result<NodeInbox, Error>> {
        let channel = self.handle.key(&format!("node:{node}"));
        Box::pin(async move {
            let first = connect_pubsub(self.handle.client(), &channel).await?;
            let (tx, rx) = mpsc::channel(NODE_BUFFER);
            tokio::spawn(pump(
                self.handle.client().clone(),
                channel,
                first,
                tx,
                |payload| Some(NodeReceived::Message(Sensitive::new(payload))),
                || NodeReceived::Gap,
            ));
            Ok(NodeInbox { rx })
        })
    }
}

impl RedisBus {
    /// A connection for `PUBLISH` (the manager reconnects by itself after a
    /// broken connection; commands on it keep their order).
    async fn publisher(&self) -> Result<redis::aio::ConnectionManager, Error> {
        let manager = self
            .publisher
            .get_or_try_init(|| self.handle.client().get_connection_manager())
            .await
            .map_err(|e| redis_error("connecting the event bus", &e))?;
        Ok(manager.clone())
    }
}

#[allow(clippy::needless_pass_by_value)] // the pump's decoder signature
fn decode_event(payload: String) -> Option<Received> {
    let decoded = serde_json::from_str::<BusMessage>(&payload).ok();
    if decoded.is_none() {
        tracing::warn!("event bus: an undecodable message, skipped");
    }
    decoded.map(Received::Message)
}

async fn connect_pubsub(client: &redis::Client, channel: &str) -> Result<PubSub, Error> {
    let mut pubsub = client
        .get_async_pubsub()
        .await
        .map_err(|e| redis_error("connecting the event bus", &e))?;
    pubsub
        .subscribe(channel)
        .await
        .map_err(|e| redis_error("subscribing to events", &e))?;
    Ok(pubsub)
}

/// Forwards a Redis subscription's messages to `tx` (through `decode`,
/// which may skip one); when the connection breaks, subscribes again
/// (back-off with jitter, 100 ms up to 5 s) and yields `gap()`. Ends when
/// the subscriber is dropped.
async fn pump<T: Send + 'static>(
    client: redis::Client,
    channel: String,
    first: PubSub,
    tx: mpsc::Sender<T>,
    decode: fn(String) -> Option<T>,
    gap: fn() -> T,
) {
    let mut pubsub = Some(first);
    let mut backoff = RETRY_MIN;
    loop {
        if let Some(ps) = pubsub.take() {
            let mut messages = ps.into_on_message();
            loop {
                let m = tokio::select! {
                    m = messages.next() => m,
                    // A dropped subscriber ends the subscription at once.
                    () = tx.closed() => return,
                };
                let Some(m) = m else { break };
                let Ok(payload) = m.get_payload::<String>() else {
                    continue;
                };
                let Some(item) = decode(payload) else {
                    continue;
                };
                if tx.send(item).await.is_err() {
                    return;
                }
            }
            tracing::warn!("event bus: Redis subscription lost, subscribing again");
        }
        if tx.is_closed() {
            return;
        }
        match connect_pubsub(&client, &channel).await {
            Ok(ps) => {
                tracing::info!("event bus: subscribed again");
                backoff = RETRY_MIN;
                if tx.send(gap()).await.is_err() {
                    return;
                }
                pubsub = Some(ps);
            }
            Err(e) => {
                tracing::warn!(error = %e, "event bus: Redis unreachable");
                let half = u64::try_from(backoff.as_millis() / 2).unwrap_or(0);
                let jitter = Duration::from_millis(rand::random::<u64>() % (half + 1));
                tokio::time::sleep(backoff / 2 + jitter).await;
                backoff = (backoff * 2).min(RETRY_MAX);
            }
        }
    }
}
