//! The node mailbox: messages from one signaling node to another over the
//! node's own bus channel (`P:node:<id>`, [`EventBus::send_to`]). Front ends
//! pipe their WebSockets to the lobby owner through it (see
//! [`crate::cluster`]).
//!
//! A message travels as JSON `{"from": <node>, "msg": <NodeMessage>}`.
//! Frames may carry patient names, intake answers and session tokens: every
//! such field is [`Sensitive`] (its `Debug` is redacted), nothing of a
//! payload is ever logged, and Redis pub/sub stores nothing. Delivery is
//! at-most-once and in order per sender (as long as the sender awaits each
//! [`Mailbox::send`] before the next); when messages may have been lost
//! (Redis reconnected, the reader lagged) the receiver gets
//! [`NodeMessage::InboxGap`] from this node itself.

use std::sync::Arc;

use protocol::{NodeId, Sensitive};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::Error;
use crate::store::bus::{EventBus, NodeReceived};

pub use super::owner::Ownership;

/// Messages buffered for the mailbox's reader.
const INBOX: usize = 8192;

/// What a piped socket is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PipeKind {
    /// A browser or test client on `/ws`.
    Client,
    /// A relay's control link on `/control`.
    Relay,
}

/// One message between signaling nodes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum NodeMessage {
    /// Front end → owner: a socket was accepted.
    PipeOpen {
        /// Unique per front end; (front node, pipe) is the key on the owner.
        pipe: u64,
        /// Client or relay.
        kind: PipeKind,
        /// The session cookie of a same-origin upgrade (clients only).
        cookie_session: Option<Sensitive<String>>,
        /// Whether the front end's `Origin` check passed.
        origin_ok: bool,
    },
    /// Owner → front end: the pipe is accepted.
    PipeOpened {
        /// The pipe.
        pipe: u64,
    },
    /// Either way: one text frame.
    Frame {
        /// The pipe.
        pipe: u64,
        /// The frame (may hold patient data or tokens: never logged).
        text: Sensitive<String>,
    },
    /// Either way: the socket is closed (or must be) with `code`.
    PipeClose {
        /// The pipe.
        pipe: u64,
        /// WebSocket close code (1012: the owner changed).
        code: u16,
    },
    /// Never sent: the mailbox yields it (from this node) when messages to
    /// this node may have been lost; every open pipe should be closed.
    InboxGap,
}

/// What travels on the bus.
#[derive(Serialize, Deserialize)]
struct Envelope {
    from: NodeId,
    msg: NodeMessage,
}

/// One node's inbox/outbox on the bus (`P:node:<id>`). Cheap to clone.
#[derive(Debug, Clone)]
pub struct Mailbox {
    bus: Arc<dyn EventBus>,
    node: NodeId,
}

impl Mailbox {
    /// The mailbox of `node` on `bus`.
    pub fn new(bus: Arc<dyn EventBus>, node: NodeId) -> Self {
        Self { bus, node }
    }

    /// This node's id.
    pub fn node(&self) -> &NodeId {
        &self.node
    }

    /// Sends `msg` to node `to` (dropped if nobody listens there).
    pub async fn send(&self, to: &NodeId, msg: &NodeMessage) -> Result<(), Error> {
        let envelope = EnvelopeRef {
            from: &self.node,
            msg,
        };
        let json = serde_json::to_string(&envelope)
            .map_err(|_| Error::Redis("encoding a node message".into()))?;
        self.bus.send_to(to, Sensitive::new(json)).await
    }

    /// Messages addressed to this node, in order per sender. The receiver
    /// ends when the bus does; [`NodeMessage::InboxGap`] marks possible loss.
    pub async fn subscribe(&self) -> Result<mpsc::Receiver<(NodeId, NodeMessage)>, Error> {
        let mut inbox = self.bus.subscribe_node(&self.node).await?;
        let (tx, rx) = mpsc::channel(INBOX);
        let me = self.node.clone();
        tokio::spawn(async move {
            loop {
                let item = tokio::select! {
                    item = inbox.recv() => item,
                    () = tx.closed() => return,
                };
                let out = match item {
                    None => return,
                    Some(NodeReceived::Gap) => (me.clone(), NodeMessage::InboxGap),
                    Some(NodeReceived::Message(json)) => {
                        let Ok(e) = serde_json::from_str::<Envelope>(json.expose()) else {
                            // Never the payload: it may hold patient data.
                            tracing::warn!(node = %me, "node mailbox: an undecodable message, skipped");
                            continue;
                        };
                        (e.from, e.msg)
                    }
                };
                if tx.send(out).await.is_err() {
                    return;
                }
            }
        });
        Ok(rx)
    }
}

/// [`Envelope`] by reference, to send without cloning frames.
#[derive(Serialize)]
struct EnvelopeRef<'a> {
    from: &'a NodeId,
    msg: &'a NodeMessage,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_frames_or_cookies() {
        let frame = NodeMessage::Frame {
            pipe: 7,
            text: Sensitive::new(r#"{"name":"Jane Doe"}"#.into()),
        };
        let open = NodeMessage::PipeOpen {
            pipe: 7,
            kind: PipeKind::Client,
            cookie_session: Some(Sensitive::new("tok-secret".into())),
            origin_ok: true,
        };
        let shown = format!("{frame:?} {open:?}");
        assert!(
            !shown.contains("Jane") && !shown.contains("tok-secret"),
            "{shown}"
        );
        let json = serde_json::to_string(&open).unwrap();
        assert!(json.contains(r#""type":"pipe_open""#), "{json}");
        assert!(json.contains(r#""kind":"client""#), "{json}");
    }
}
