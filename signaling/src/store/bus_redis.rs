//! [`RedisBus`]: the [`EventBus`] over Redis pub/sub: the broadcast channel
//! `P:events` and one channel per node, `P:node:<id>`. A subscription that
//! breaks is made again with back-off and then yields a gap (see
//! [`super::bus`]).

use std::time::Duration;

use futures_util::StreamExt as _;
use futures_util::future::BoxFuture;
use protocol::{NodeId, Sensitive};
use redis::aio::PubSub;
use tokio::sync::mpsc;

use super::bus::{
    BUFFER, BusMessage, EventBus, NODE_BUFFER, NodeInbox, NodeReceived, Received, Subscription,
};
use super::{RedisHandle, redis_error};
use crate::Error;

/// First and longest wait between attempts to subscribe again.
const RETRY_MIN: Duration = Duration::from_millis(100);
const RETRY_MAX: Duration = Duration::from_secs(5);

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
