//! The socket a connection's logic runs on: [`Socket`], implemented by
//! axum's [`WebSocket`] (a client or relay connected to this node) and by
//! [`PipedSocket`] (a connection accepted by a front-end node and piped to
//! this node, the lobby owner, over the node mailbox; see `pipe`).
//!
//! The client logic (`ws::conn`) and the relay control logic
//! (`relays::control_ws`) only ever see text frames, "binary" (refused),
//! pings (ignored), close frames they send, and the end of the socket; so
//! both run unchanged on either kind. A piped socket carries text frames
//! only, and its frames are [`Sensitive`]: they may hold patient names or
//! session tokens, and `Debug` never shows them.

use std::future::Future;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use protocol::Sensitive;
use tokio::sync::mpsc;

/// Close code sent when a socket ends without an explicit code (normal).
pub const NORMAL_CLOSE: u16 = 1000;

/// One frame received from the peer.
#[derive(Debug)]
pub enum Incoming {
    /// A text frame.
    Text(Utf8Bytes),
    /// A binary frame (the protocols are text only).
    Binary,
    /// A ping or pong (the WebSocket layer answers pings itself).
    Control,
}

/// The peer is gone: nothing more can be sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SocketClosed;

/// A message-oriented, text-framed socket.
pub trait Socket: Send {
    /// The next frame; `None` once the peer closed, the connection broke, or
    /// a frame was beyond the size cap.
    fn recv(&mut self) -> impl Future<Output = Option<Incoming>> + Send;

    /// Sends a text frame.
    fn send_text(&mut self, text: String) -> impl Future<Output = Result<(), SocketClosed>> + Send;

    /// Sends a close frame: `Some((code, reason))`, or none (no status).
    fn send_close(
        &mut self,
        close: Option<(u16, &'static str)>,
    ) -> impl Future<Output = Result<(), SocketClosed>> + Send;

    /// Flushes and ends the socket (closing it if no close was sent yet).
    fn finish(&mut self) -> impl Future<Output = ()> + Send;
}

impl Socket for WebSocket {
    async fn recv(&mut self) -> Option<Incoming> {
        match WebSocket::recv(self).await? {
            Ok(Message::Text(text)) => Some(Incoming::Text(text)),
            Ok(Message::Binary(_)) => Some(Incoming::Binary),
            Ok(Message::Ping(_) | Message::Pong(_)) => Some(Incoming::Control),
            Ok(Message::Close(_)) | Err(_) => None,
        }
    }

    async fn send_text(&mut self, text: String) -> Result<(), SocketClosed> {
        self.send(Message::Text(text.into()))
            .await
            .map_err(|_| SocketClosed)
    }

    async fn send_close(&mut self, close: Option<(u16, &'static str)>) -> Result<(), SocketClosed> {
        let frame = close.map(|(code, reason)| CloseFrame {
            code,
            reason: reason.into(),
        });
        self.send(Message::Close(frame))
            .await
            .map_err(|_| SocketClosed)
    }

    async fn finish(&mut self) {
        let _ = futures_util::SinkExt::close(self).await;
    }
}

/// What a [`PipedSocket`] sends towards its far end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PipeOut {
    /// A text frame.
    Text(Sensitive<String>),
    /// The socket closed with this code; nothing follows.
    Close(u16),
}

/// A socket whose far end is a pipe: text frames come in on one bounded
/// queue, frames and the close code go out on another. Sending waits while
/// the outbound queue is full (backpressure, like a slow TCP peer); the
/// socket ends when the inbound queue's sender is dropped.
#[derive(Debug)]
pub struct PipedSocket {
    inbound: mpsc::Receiver<Sensitive<String>>,
    outbound: mpsc::Sender<PipeOut>,
    closed: bool,
}

/// The far end of a [`PipedSocket`]: feed it frames, read what it sends.
#[derive(Debug)]
pub struct PipeEnd {
    /// Text frames for the socket; drop it to end the socket.
    pub tx: mpsc::Sender<Sensitive<String>>,
    /// What the socket sent, ending with [`PipeOut::Close`].
    pub rx: mpsc::Receiver<PipeOut>,
}

impl PipedSocket {
    /// A socket over these two queues.
    pub fn new(
        inbound: mpsc::Receiver<Sensitive<String>>,
        outbound: mpsc::Sender<PipeOut>,
    ) -> Self {
        Self {
            inbound,
            outbound,
            closed: false,
        }
    }

    /// A socket and its far end, each queue holding `capacity` frames.
    pub fn pair(capacity: usize) -> (Self, PipeEnd) {
        let (in_tx, in_rx) = mpsc::channel(capacity.max(1));
        let (out_tx, out_rx) = mpsc::channel(capacity.max(1));
        (
            Self::new(in_rx, out_tx),
            PipeEnd {
                tx: in_tx,
                rx: out_rx,
            },
        )
    }
}

impl Socket for PipedSocket {
    async fn recv(&mut self) -> Option<Incoming> {
        let text = self.inbound.recv().await?;
        Some(Incoming::Text(text.into_inner().into()))
    }

    async fn send_text(&mut self, text: String) -> Result<(), SocketClosed> {
        if self.closed {
            return Err(SocketClosed);
        }
        self.outbound
            .send(PipeOut::Text(Sensitive::new(text)))
            .await
            .map_err(|_| SocketClosed)
    }

    async fn send_close(&mut self, close: Option<(u16, &'static str)>) -> Result<(), SocketClosed> {
        if self.closed {
            return Err(SocketClosed);
        }
        self.closed = true;
        let code = close.map_or(NORMAL_CLOSE, |(code, _)| code);
        self.outbound
            .send(PipeOut::Close(code))
            .await
            .map_err(|_| SocketClosed)
    }

    async fn finish(&mut self) {
        if !self.closed {
            let _ = self.send_close(None).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_piped_socket_carries_text_both_ways_then_one_close() {
        let (mut socket, mut end) = PipedSocket::pair(4);
        end.tx.send(Sensitive::new("hi".into())).await.unwrap();
        match socket.recv().await {
            Some(Incoming::Text(t)) => assert_eq!(t.as_str(), "hi"),
            other => panic!("{other:?}"),
        }
        socket.send_text("yo".into()).await.unwrap();
        assert_eq!(
            end.rx.recv().await,
            Some(PipeOut::Text(Sensitive::new("yo".into())))
        );
        socket.send_close(Some((1001, "bye"))).await.unwrap();
        socket.finish().await;
        assert_eq!(socket.send_text("late".into()).await, Err(SocketClosed));
        assert_eq!(end.rx.recv().await, Some(PipeOut::Close(1001)));
        drop(socket);
        assert_eq!(
            end.rx.recv().await,
            None,
            "a single close, nothing after it"
        );
        // The far end hanging up ends the socket.
        let (mut socket, end) = PipedSocket::pair(1);
        drop(end.tx);
        assert!(socket.recv().await.is_none());
    }

    #[test]
    fn frames_are_redacted_in_debug() {
        let out = PipeOut::Text(Sensitive::new("Jane Doe".into()));
        assert!(!format!("{out:?}").contains("Jane"));
    }
}
