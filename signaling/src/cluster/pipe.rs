//! Pipes: a WebSocket accepted by a front-end node (one that does not own
//! the lobby) is carried frame by frame to the lobby owner over the node
//! mailbox, where the unchanged connection logic (`ws::conn` for clients,
//! `relays::control_ws` for relays) runs on a [`PipedSocket`].
//!
//! The protocol ([`NodeMessage`]): the front end sends `PipeOpen` (kind,
//! the upgrade's same-origin session cookie); the owner answers
//! `PipeOpened` and starts the logic; then `Frame`s flow both ways, and a
//! `PipeClose {code}` from either side ends the pipe on both.
//!
//! Failure handling:
//! - the owner does not acknowledge within [`ACK_TIMEOUT`]: close 1013;
//! - the owner changes ([`Ownership`]) or the mailbox may have lost
//!   messages (`InboxGap`): every pipe closes with 1012 (service restart),
//!   and clients reconnect and resume;
//! - the owner closes its piped sockets when the front end's pipe closes,
//!   and all of them when its term changes (lost or taken again);
//! - every queue is bounded ([`PIPE_QUEUE`] frames per pipe and
//!   direction): the mailbox reader never waits for one pipe, it closes a
//!   pipe whose queue is full with [`CLOSE_OVERFLOW`].
//!
//! Frames may hold patient names and session tokens: they stay
//! [`Sensitive`] and are never logged. Logs carry pipe numbers and node ids.
//!
//! The front-end task is in `pipe_front`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU16, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use protocol::{NodeId, Sensitive};
use tokio::sync::{mpsc, watch};

use super::owner::Term;
pub use super::pipe_service::{LocalService, PipeService};
use super::socket::{NORMAL_CLOSE, PipeOut, PipedSocket};
use super::{Mailbox, NodeMessage, Ownership, PipeKind};
use crate::Error;
use crate::relays::RelayPool;

/// How long a front end waits for the owner to acknowledge a pipe (or for
/// an owner to be known at all).
pub const ACK_TIMEOUT: Duration = Duration::from_secs(2);
/// Frames queued per pipe and direction before the pipe is closed.
pub const PIPE_QUEUE: usize = 256;
/// Close code: the owner changed, or this node stopped owning the lobby.
pub const CLOSE_OWNER_CHANGED: u16 = 1012;
/// Close code: no owner acknowledged the pipe in time.
pub const CLOSE_TRY_AGAIN: u16 = 1013;
/// Close code: policy violation (the front end's `Origin` check failed).
pub const CLOSE_POLICY: u16 = 1008;
/// Close code: a pipe's queue overflowed (a peer too slow to keep up; a
/// policy violation, as a slow reader is on one node).
pub const CLOSE_OVERFLOW: u16 = CLOSE_POLICY;
/// Close code: the node shuts down.
pub const CLOSE_GOING_AWAY: u16 = 1001;
/// Close code: something failed inside the cluster layer.
pub const CLOSE_ERROR: u16 = 1011;

/// A pipe as the front end's mailbox reader sees it.
#[derive(Debug)]
pub(super) struct FrontEntry {
    /// The node the pipe goes to.
    pub owner: NodeId,
    /// To the front-end task; dropping it ends the pipe with `code`.
    pub tx: mpsc::Sender<FrontIn>,
    /// The close code the task uses when `tx` is dropped.
    pub code: Arc<AtomicU16>,
}

/// What the mailbox reader hands a front-end task.
#[derive(Debug)]
pub(super) enum FrontIn {
    /// The owner accepted the pipe.
    Opened,
    /// A text frame for the socket.
    Frame(Sensitive<String>),
}

/// This node's pipes, in both roles. One per node; cheap to share.
#[derive(Debug)]
pub struct Pipes {
    pub(super) mailbox: Mailbox,
    pub(super) owner: watch::Receiver<Option<NodeId>>,
    term: watch::Receiver<Term>,
    pub(super) shutdown: watch::Receiver<bool>,
    next_pipe: AtomicU64,
    /// Front end: pipe id → entry.
    pub(super) front: Mutex<HashMap<u64, FrontEntry>>,
    /// Owner: (front node, pipe) → the piped socket's inbound queue.
    owned: Arc<Mutex<OwnedPipes>>,
    service: Mutex<Option<Arc<dyn PipeService>>>,
    /// Front end: the largest client frame forwarded to the owner (the
    /// owner's `WsSettings::max_frame_bytes`); larger ones are answered
    /// here with `too_large`, as the owner would, and never queued.
    pub(super) max_frame_bytes: AtomicUsize,
}

/// Owner side: (front node, pipe) → the piped socket's inbound queue.
type OwnedPipes = HashMap<(NodeId, u64), mpsc::Sender<Sensitive<String>>>;

pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Pipes {
    /// Starts this node's pipes on `mailbox`, following `ownership`, until
    /// `shutdown` turns true.
    pub async fn start(
        mailbox: Mailbox,
        ownership: &Ownership,
        shutdown: watch::Receiver<bool>,
    ) -> Result<Arc<Self>, Error> {
        Self::start_with(
            mailbox,
            ownership.rx.clone(),
            ownership.term.clone(),
            shutdown,
        )
        .await
    }

    /// [`Pipes::start`] on explicit watch channels (tests).
    pub async fn start_with(
        mailbox: Mailbox,
        owner: watch::Receiver<Option<NodeId>>,
        term: watch::Receiver<Term>,
        shutdown: watch::Receiver<bool>,
    ) -> Result<Arc<Self>, Error> {
        let inbox = mailbox.subscribe().await?;
        let pipes = Arc::new(Self {
            mailbox,
            owner,
            term,
            shutdown,
            // Random start: ids stay unique across restarts of this node.
            next_pipe: AtomicU64::new(rand::random::<u64>() >> 2),
            front: Mutex::new(HashMap::new()),
            owned: Arc::new(Mutex::new(HashMap::new())),
            service: Mutex::new(None),
            max_frame_bytes: AtomicUsize::new(crate::ws::WsSettings::default().max_frame_bytes),
        });
        tokio::spawn(Arc::clone(&pipes).dispatch(inbox));
        Ok(pipes)
    }

    /// This node's id.
    pub fn node(&self) -> &NodeId {
        self.mailbox.node()
    }

    /// Sets what runs on sockets piped to this node (when it owns the
    /// lobby); `None`: refuse them (1013).
    pub fn set_service(&self, service: Option<Arc<dyn PipeService>>) {
        *lock(&self.service) = service;
    }

    /// Serves piped sockets with this node's own logic ([`LocalService`]).
    /// Also sets the front end's frame limit to the clients' own.
    pub fn serve_locally(&self, clients: &Arc<crate::ws::Shared>, relays: &Arc<RelayPool>) {
        self.max_frame_bytes
            .store(clients.settings.max_frame_bytes, Ordering::Relaxed);
        self.set_service(Some(LocalService::new(clients, relays)));
    }

    /// Whether a socket accepted now should be piped elsewhere: the owner
    /// is another node, or not known yet (the pipe waits for one). `false`:
    /// this node owns the lobby, serve it locally.
    pub fn should_pipe(&self) -> bool {
        !matches!(*self.term.borrow(), Term::Owner(_))
    }

    /// Open pipes: (as front end, as owner).
    pub fn open_pipes(&self) -> (usize, usize) {
        (lock(&self.front).len(), lock(&self.owned).len())
    }

    pub(super) fn next_pipe(&self) -> u64 {
        self.next_pipe.fetch_add(1, Ordering::Relaxed)
    }

    /// Sends `msg` to `to`; a failure is logged (ids only).
    pub(super) async fn send(&self, to: &NodeId, msg: &NodeMessage) -> bool {
        match self.mailbox.send(to, msg).await {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(to = %to, error = %e, "pipe: sending to a node failed");
                false
            }
        }
    }

    /// Reads this node's mailbox until it ends or the node shuts down.
    async fn dispatch(self: Arc<Self>, mut inbox: mpsc::Receiver<(NodeId, NodeMessage)>) {
        let mut term = self.term.clone();
        let mut shutdown = self.shutdown.clone();
        loop {
            tokio::select! {
                item = inbox.recv() => match item {
                    Some((from, msg)) => self.on_message(from, msg).await,
                    None => break,
                },
                changed = term.changed() => {
                    if changed.is_err() {
                        break;
                    }
                    // Lost the lobby, or took it again (a new lobby): the
                    // piped connections belong to the old term.
                    self.close_owned(CLOSE_OWNER_CHANGED).await;
                }
                () = stopped(&mut shutdown) => break,
            }
        }
        // Front-end tasks end on their own (shutdown or owner watch).
        self.close_owned(CLOSE_GOING_AWAY).await;
    }

    async fn on_message(&self, from: NodeId, msg: NodeMessage) {
        match msg {
            NodeMessage::PipeOpen {
                pipe,
                kind,
                cookie_session,
                origin_ok,
            } => {
                self.on_open(from, pipe, kind, cookie_session, origin_ok)
                    .await;
            }
            NodeMessage::PipeOpened { pipe } => {
                if let Some(tx) = self.front_tx(&from, pipe)
                    && tx.try_send(FrontIn::Opened).is_err()
                {
                    self.overflow_front(pipe).await;
                }
            }
            NodeMessage::Frame { pipe, text } => {
                if let Some(tx) = self.front_tx(&from, pipe) {
                    if tx.try_send(FrontIn::Frame(text)).is_err() {
                        self.overflow_front(pipe).await;
                    }
                    return;
                }
                let key = (from, pipe);
                let full = match lock(&self.owned).get(&key) {
                    Some(tx) => tx.try_send(text).is_err(),
                    None => false,
                };
                if full {
                    tracing::info!(front = %key.0, pipe, "pipe queue full: closing the piped socket");
                    lock(&self.owned).remove(&key);
                    let close = NodeMessage::PipeClose {
                        pipe,
                        code: CLOSE_OVERFLOW,
                    };
                    self.send(&key.0, &close).await;
                }
            }
            NodeMessage::PipeClose { pipe, code } => {
                let mut front = lock(&self.front);
                if front.get(&pipe).is_some_and(|e| e.owner == from) {
                    if let Some(entry) = front.remove(&pipe) {
                        entry.code.store(code, Ordering::Relaxed);
                    }
                    return;
                }
                drop(front);
                // Dropping the inbound queue ends the piped socket.
                lock(&self.owned).remove(&(from, pipe));
            }
            NodeMessage::InboxGap => {
                tracing::warn!(node = %self.node(), "pipe: messages may have been lost; closing every pipe");
                self.close_front(CLOSE_OWNER_CHANGED).await;
                self.close_owned(CLOSE_OWNER_CHANGED).await;
            }
        }
    }

    /// The front-end queue of `pipe`, if it goes to `from`.
    fn front_tx(&self, from: &NodeId, pipe: u64) -> Option<mpsc::Sender<FrontIn>> {
        lock(&self.front)
            .get(&pipe)
            .filter(|e| &e.owner == from)
            .map(|e| e.tx.clone())
    }

    /// A front-end pipe's queue is full: close it here and at the owner.
    async fn overflow_front(&self, pipe: u64) {
        let Some(entry) = lock(&self.front).remove(&pipe) else {
            return;
        };
        tracing::info!(owner = %entry.owner, pipe, "pipe queue full: closing the socket");
        entry.code.store(CLOSE_OVERFLOW, Ordering::Relaxed);
        let close = NodeMessage::PipeClose {
            pipe,
            code: CLOSE_OVERFLOW,
        };
        self.send(&entry.owner, &close).await;
    }

    /// Closes every front-end pipe with `code`, telling the owners.
    pub(super) async fn close_front(&self, code: u16) {
        let all: Vec<(u64, FrontEntry)> = lock(&self.front).drain().collect();
        for (pipe, entry) in all {
            entry.code.store(code, Ordering::Relaxed);
            self.send(&entry.owner, &NodeMessage::PipeClose { pipe, code })
                .await;
        }
    }

    /// Closes every piped socket this node serves with `code`, telling
    /// the front ends.
    async fn close_owned(&self, code: u16) {
        let all: Vec<(NodeId, u64)> = lock(&self.owned).drain().map(|(k, _)| k).collect();
        if !all.is_empty() {
            tracing::info!(pipes = all.len(), code, "closing the piped sockets");
        }
        for (front, pipe) in all {
            self.send(&front, &NodeMessage::PipeClose { pipe, code })
                .await;
        }
    }

    /// Owner side: a front end opens a pipe.
    async fn on_open(
        &self,
        front: NodeId,
        pipe: u64,
        kind: PipeKind,
        cookie: Option<Sensitive<String>>,
        origin_ok: bool,
    ) {
        let refuse = if !origin_ok {
            Some(CLOSE_POLICY)
        } else if self.should_pipe() {
            // Not the owner (any more): the front end must look again.
            Some(CLOSE_OWNER_CHANGED)
        } else {
            None
        };
        if let Some(code) = refuse {
            self.send(&front, &NodeMessage::PipeClose { pipe, code })
                .await;
            return;
        }
        let service = lock(&self.service).clone();
        let (in_tx, in_rx) = mpsc::channel(PIPE_QUEUE);
        let (out_tx, out_rx) = mpsc::channel(PIPE_QUEUE);
        let socket = PipedSocket::new(in_rx, out_tx);
        let Some(task) = service.and_then(|s| s.serve(kind, socket, cookie)) else {
            let close = NodeMessage::PipeClose {
                pipe,
                code: CLOSE_TRY_AGAIN,
            };
            self.send(&front, &close).await;
            return;
        };
        let key = (front.clone(), pipe);
        lock(&self.owned).insert(key.clone(), in_tx);
        if !self.send(&front, &NodeMessage::PipeOpened { pipe }).await {
            lock(&self.owned).remove(&key);
            return;
        }
        tracing::debug!(front = %front, pipe, ?kind, "piped socket opened");
        tokio::spawn(task);
        let owned = Arc::clone(&self.owned);
        tokio::spawn(pump_out(self.mailbox.clone(), owned, key, out_rx));
    }
}

/// Resolves once `shutdown` is (or was) true, or its sender is gone.
pub(super) async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|s| *s).await;
}

/// Owner side: carries what a piped socket sends to its front end, ending
/// with one `PipeClose`.
async fn pump_out(
    mailbox: Mailbox,
    owned: Arc<Mutex<OwnedPipes>>,
    key: (NodeId, u64),
    mut rx: mpsc::Receiver<PipeOut>,
) {
    let (front, pipe) = (&key.0, key.1);
    loop {
        let (msg, last) = match rx.recv().await {
            Some(PipeOut::Text(text)) => (NodeMessage::Frame { pipe, text }, false),
            Some(PipeOut::Close(code)) => (NodeMessage::PipeClose { pipe, code }, true),
            // The connection task dropped the socket without a close.
            None => (
                NodeMessage::PipeClose {
                    pipe,
                    code: NORMAL_CLOSE,
                },
                true,
            ),
        };
        if let Err(e) = mailbox.send(front, &msg).await {
            tracing::warn!(front = %front, pipe, error = %e, "pipe: sending to the front end failed");
            break;
        }
        if last {
            break;
        }
    }
    lock(&owned).remove(&key);
    tracing::debug!(front = %front, pipe, "piped socket closed");
}
