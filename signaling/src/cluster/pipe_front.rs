//! The front-end side of a pipe ([`Pipes::run_front`]): one task per
//! socket accepted on a node that does not own the lobby. It waits for an
//! owner to be known, opens the pipe, waits for the acknowledgement, then
//! carries frames both ways until either side closes, the owner changes,
//! or the node shuts down (see `pipe` for the protocol and close codes).

use std::sync::Arc;
use std::sync::atomic::{AtomicU16, Ordering};

use protocol::client::{ErrorCode, SignalingToClient};
use protocol::control::SignalingToRelay;
use protocol::{NodeId, Sensitive};
use tokio::sync::mpsc;
use tokio::time::{Instant, timeout_at};

use super::pipe::{
    ACK_TIMEOUT, CLOSE_ERROR, CLOSE_GOING_AWAY, CLOSE_OVERFLOW, CLOSE_OWNER_CHANGED,
    CLOSE_TRY_AGAIN, FrontEntry, FrontIn, PIPE_QUEUE, Pipes, stopped,
};
use super::socket::{Incoming, NORMAL_CLOSE, Socket};
use super::{NodeMessage, PipeKind};

/// The reason sent with a close code.
fn reason(code: u16) -> &'static str {
    match code {
        CLOSE_OWNER_CHANGED => "lobby owner changed; reconnect",
        CLOSE_TRY_AGAIN => "no lobby owner answered; try again",
        CLOSE_OVERFLOW => "too slow to keep up",
        CLOSE_GOING_AWAY => "shutting down",
        _ => "",
    }
}

/// Removes the pipe's entry when the task ends, however it ends.
struct Entry<'a> {
    pipes: &'a Pipes,
    pipe: u64,
}

impl Drop for Entry<'_> {
    fn drop(&mut self) {
        super::pipe::lock(&self.pipes.front).remove(&self.pipe);
    }
}

impl Pipes {
    /// Pipes `socket`, accepted on this node (its `Origin` already
    /// checked), to the lobby owner, until either side closes. `cookie` is
    /// the upgrade's same-origin session cookie (clients only); the owner
    /// validates it as for a local socket.
    pub async fn run_front<S: Socket>(
        self: Arc<Self>,
        mut socket: S,
        kind: PipeKind,
        cookie: Option<Sensitive<String>>,
    ) {
        if let Some(code) = self.front(&mut socket, kind, cookie).await {
            tracing::debug!(code, ?kind, "piped socket closed by the cluster");
            let _ = socket.send_close(Some((code, reason(code)))).await;
        }
        socket.finish().await;
    }

    /// The pipe's life; `Some(code)` to close the socket with.
    async fn front<S: Socket>(
        &self,
        socket: &mut S,
        kind: PipeKind,
        cookie: Option<Sensitive<String>>,
    ) -> Option<u16> {
        let mut owner_rx = self.owner.clone();
        let mut shutdown = self.shutdown.clone();
        // An owner, now or within the acknowledgement time.
        let deadline = Instant::now() + ACK_TIMEOUT;
        let known = match timeout_at(deadline, owner_rx.wait_for(Option::is_some)).await {
            Ok(Ok(owner)) => owner.clone(),
            _ => None,
        };
        let Some(owner) = known else {
            return Some(CLOSE_TRY_AGAIN);
        };
        if &owner == self.node() {
            // This node is taking the lobby over: reconnecting lands locally.
            return Some(CLOSE_OWNER_CHANGED);
        }
        let pipe = self.next_pipe();
        let (tx, mut rx) = mpsc::channel(PIPE_QUEUE);
        let code = Arc::new(AtomicU16::new(CLOSE_ERROR));
        let entry = FrontEntry {
            owner: owner.clone(),
            tx,
            code: Arc::clone(&code),
        };
        super::pipe::lock(&self.front).insert(pipe, entry);
        let _entry = Entry { pipes: self, pipe };
        let open = NodeMessage::PipeOpen {
            pipe,
            kind,
            cookie_session: cookie,
            origin_ok: true,
        };
        if !self.send(&owner, &open).await {
            return Some(CLOSE_TRY_AGAIN);
        }
        match timeout_at(Instant::now() + ACK_TIMEOUT, rx.recv()).await {
            Ok(Some(FrontIn::Opened)) => {}
            // The owner refused (or the queue overflowed).
            Ok(None) => return Some(code.load(Ordering::Relaxed)),
            Ok(Some(FrontIn::Frame(_))) => {
                self.close_at_owner(&owner, pipe, CLOSE_ERROR).await;
                return Some(CLOSE_ERROR);
            }
            Err(_) => {
                tracing::info!(owner = %owner, pipe, "the lobby owner did not acknowledge a pipe");
                // In case it opens the pipe late.
                self.close_at_owner(&owner, pipe, CLOSE_TRY_AGAIN).await;
                return Some(CLOSE_TRY_AGAIN);
            }
        }
        tracing::debug!(owner = %owner, pipe, ?kind, "pipe open");
        loop {
            tokio::select! {
                incoming = socket.recv() => match incoming {
                    Some(Incoming::Text(text)) if kind == PipeKind::Client
                        && text.as_str().len() > self.max_frame_bytes.load(Ordering::Relaxed) =>
                    {
                        // Answered here as the owner's connection logic
                        // would (`too_large`, socket stays open), so an
                        // oversized frame is never queued towards the owner.
                        let refusal = too_large(text.as_str().len(), self.max_frame_bytes.load(Ordering::Relaxed));
                        if socket.send_text(refusal).await.is_err() {
                            self.close_at_owner(&owner, pipe, NORMAL_CLOSE).await;
                            return None;
                        }
                    }
                    Some(Incoming::Text(text)) => {
                        let text = Sensitive::new(text.as_str().to_owned());
                        if !self.send(&owner, &NodeMessage::Frame { pipe, text }).await {
                            self.close_at_owner(&owner, pipe, CLOSE_ERROR).await;
                            return Some(CLOSE_TRY_AGAIN);
                        }
                    }
                    Some(Incoming::Binary) => {
                        if socket.send_text(binary_refusal(kind)).await.is_err() {
                            self.close_at_owner(&owner, pipe, NORMAL_CLOSE).await;
                            return None;
                        }
                    }
                    Some(Incoming::Control) => {}
                    None => {
                        self.close_at_owner(&owner, pipe, NORMAL_CLOSE).await;
                        return None;
                    }
                },
                item = rx.recv() => match item {
                    Some(FrontIn::Frame(text)) => {
                        if socket.send_text(text.into_inner()).await.is_err() {
                            self.close_at_owner(&owner, pipe, NORMAL_CLOSE).await;
                            return None;
                        }
                    }
                    Some(FrontIn::Opened) => {}
                    // Closed by the owner (its code), or overflowed.
                    None => return Some(code.load(Ordering::Relaxed)),
                },
                changed = owner_rx.changed() => {
                    let same = changed.is_ok() && owner_rx.borrow_and_update().as_ref() == Some(&owner);
                    if !same {
                        tracing::info!(owner = %owner, pipe, "lobby owner changed: closing the pipe");
                        self.close_at_owner(&owner, pipe, CLOSE_OWNER_CHANGED).await;
                        return Some(CLOSE_OWNER_CHANGED);
                    }
                }
                () = stopped(&mut shutdown) => {
                    self.close_at_owner(&owner, pipe, CLOSE_GOING_AWAY).await;
                    return Some(CLOSE_GOING_AWAY);
                }
            }
        }
    }

    /// Tells the owner the pipe is closed (best effort).
    async fn close_at_owner(&self, owner: &NodeId, pipe: u64, code: u16) {
        super::pipe::lock(&self.front).remove(&pipe);
        self.send(owner, &NodeMessage::PipeClose { pipe, code })
            .await;
    }
}

/// The error an oversized client frame gets, worded as the connection
/// logic words it.
fn too_large(len: usize, limit: usize) -> String {
    let message = format!("frame of {len} bytes exceeds the limit of {limit} bytes");
    serde_json::to_string(&SignalingToClient::error(
        ErrorCode::TooLarge,
        message,
        None,
    ))
    .unwrap_or_default()
}

/// The error a binary frame gets (the pipe carries text only), as the
/// connection logic would answer it.
fn binary_refusal(kind: PipeKind) -> String {
    let json = match kind {
        PipeKind::Client => serde_json::to_string(&SignalingToClient::error(
            ErrorCode::BadJson,
            "binary frames are not supported",
            None,
        )),
        PipeKind::Relay => serde_json::to_string(&SignalingToRelay::Error {
            message: "binary control messages are not supported".into(),
        }),
    };
    json.unwrap_or_default()
}
