//! The lobby while this node owns it: [`spawn`] follows [`Ownership`]'s
//! term and runs one lobby task per term behind one stable
//! [`LobbyHandle`] (the one the server's connections and endpoints hold).
//!
//! - A new term (this node took the lease, or took it again under a new
//!   fencing token): a fresh [`Lobby`] with [`Calls`] on the node's relay
//!   pool, rebuilt from the [`SeatStore`] ([`persist::load`] and
//!   [`Lobby::restore`]: same seats, queue order, resume tokens, details;
//!   every seat's grace period starts) and writing every seat change back.
//!   Before it serves, it waits (at most [`RELAY_WAIT`]) for the relays of
//!   the restored calls to register again, so those calls stay where their
//!   media flows.
//!   A takeover that takes a while (loading seats, waiting for relays)
//!   looks at the term again before its lobby is spawned: if the term ended
//!   meanwhile, no lobby is spawned for it.
//! - Loss (or a new term): the old lobby task is aborted at once (it writes
//!   nothing after that: another node may own the seats now), which closes
//!   the connections it served; the relay pool's control links are closed
//!   (relays reconnect, through a front end, to the new owner). A term
//!   change the runner was told of but which shows the same token (lost and
//!   taken again while the runner was busy: the watch only reports real
//!   changes) is treated as a loss too: the lobby is started again.
//! - Shutdown ([`Runner::shutdown`]): the lobby finishes its queue and its
//!   seat writes (bounded), and only then may the caller release the lease.
//!   The lobby task is held by an abort-on-drop guard, so aborting or
//!   dropping the runner never leaves a detached lobby running.
//! - Store lost (a restarted, empty Redis): when the lease loop reports
//!   that the store had lost our lease while we still owned it
//!   ([`Ownership::store_lost`]), or the bus subscription broke and was made
//!   again ([`Received::Gap`]), the current lobby keeps running and gets
//!   [`Command::RewriteSeats`]: every seat and queue is written again from
//!   its memory.
//! - While this node is a front end, commands find no lobby: a `hello`'s
//!   connection is closed, queries answer nothing. Front ends pipe their
//!   sockets to the owner (`cluster::pipe`), so this is only a race.
//!
//! [`owner_only`] answers 503 on the HTTP endpoints that need the lobby
//! (WHIP/WHEP, ingest tokens) on a node that does not own it.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse as _, Response};
use protocol::NodeId;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use super::Ownership;
use super::owner::Term;
use crate::audit::Audit;
use crate::calls::{CallSettings, Calls};
use crate::clock::Clock;
use crate::directory::Directory;
use crate::lobby::{Lobby, LobbySettings, persist};
use crate::relays::RelayPool;
use crate::store::bus::{EventBus, Received, Subscription};
use crate::store::seats::SeatStore;
use crate::ws::LobbyHandle;
use crate::ws::driver::Command;

/// Longest wait on a takeover for the relays of restored calls to register.
pub const RELAY_WAIT: Duration = Duration::from_secs(5);

/// How often a takeover looks for those relays.
const RELAY_POLL: Duration = Duration::from_millis(50);

/// What a lobby is built from, at every term.
#[derive(Debug, Clone)]
pub struct LobbyParts {
    /// Tenants and rooms.
    pub directory: Arc<Directory>,
    /// Lobby tunables.
    pub settings: LobbySettings,
    /// The audit trail.
    pub audit: Audit,
    /// The service's clock.
    pub clock: Clock,
    /// The node's relays (in-memory registry: relays re-announce to a new owner).
    pub relays: Arc<RelayPool>,
    /// Seats are rebuilt from and written through to this store; `None`:
    /// memory only (one node, as without `--redis-url`).
    pub seats: Option<Arc<dyn SeatStore>>,
    /// The event bus whose gaps (Redis reconnected) make the lobby write
    /// its seats again; `None`: memory only.
    pub bus: Option<Arc<dyn EventBus>>,
}

/// Starts the lobby runner: the returned handle reaches the current term's
/// lobby. The runner ends when every clone of the handle is gone or on
/// [`Runner::shutdown`]; dropping the [`Runner`] aborts it (and its lobby).
pub fn spawn(parts: LobbyParts, ownership: &Ownership) -> (LobbyHandle, Runner) {
    let (handle, rx) = LobbyHandle::channel();
    let (stop, stopped) = oneshot::channel();
    let watches = Watches {
        term: ownership.term.clone(),
        store_lost: ownership.store_lost.clone(),
    };
    let task = tokio::spawn(run(parts, watches, rx, stopped));
    (
        handle,
        Runner {
            task,
            stop: Some(stop),
        },
    )
}

/// The running runner task. Dropping it aborts the runner, which aborts
/// its lobby (no lobby task outlives it).
#[derive(Debug)]
pub struct Runner {
    task: JoinHandle<()>,
    stop: Option<oneshot::Sender<()>>,
}

impl Runner {
    /// Stops the runner: the current lobby handles the commands it has,
    /// writes its pending seat changes (and every seat again if writes had
    /// failed) and ends. Returns once the lobby ended, or after `within`,
    /// when the runner and its lobby are aborted (returns `false`; a store
    /// write already under way may still complete). Release the lease only
    /// after this returns.
    pub async fn shutdown(mut self, within: Duration) -> bool {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if tokio::time::timeout(within, &mut self.task).await.is_ok() {
            return true;
        }
        tracing::warn!("lobby did not finish its seat writes in time: aborted");
        self.task.abort();
        let _ = (&mut self.task).await;
        false
    }
}

impl Drop for Runner {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A lobby task that is aborted when this is dropped (a dropped
/// `JoinHandle` would detach it instead).
struct LobbyTask(JoinHandle<()>);

impl LobbyTask {
    /// Waits for the lobby task to end.
    async fn join(&mut self) {
        let _ = (&mut self.0).await;
    }
}

impl Drop for LobbyTask {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The running term's lobby.
struct Current {
    token: u64,
    handle: LobbyHandle,
    task: LobbyTask,
}

/// What the runner follows from the lease loop.
struct Watches {
    term: watch::Receiver<Term>,
    store_lost: watch::Receiver<u64>,
}

/// The bus subscription whose gaps ask for a rewrite (none: memory only,
/// or subscribing failed, which is logged).
async fn gaps(parts: &LobbyParts) -> Option<Subscription> {
    parts.seats.as_ref()?;
    match parts.bus.as_ref()?.subscribe().await {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::warn!(error = %e, "lobby runner: no bus subscription, seats are rewritten only on the lease's word");
            None
        }
    }
}

/// Asks the running lobby (if any) to write every seat again.
async fn rewrite(current: Option<&Current>, why: &'static str) {
    if let Some(c) = current {
        tracing::warn!(
            token = c.token,
            why,
            "lobby: writing every seat to the store again"
        );
        let _ = c.handle.send(Command::RewriteSeats).await;
    }
}

async fn run(
    parts: LobbyParts,
    watches: Watches,
    mut rx: mpsc::Receiver<Command>,
    mut stopped: oneshot::Receiver<()>,
) {
    let Watches {
        mut term,
        mut store_lost,
    } = watches;
    let mut current: Option<Current> = None;
    let first = *term.borrow_and_update();
    follow(&parts, &mut current, first, &term, false).await;
    let mut bus = gaps(&parts).await;
    let mut watching = true;
    let mut watching_lost = true;
    loop {
        tokio::select! {
            _ = &mut stopped => break,
            changed = store_lost.changed(), if watching_lost => {
                if changed.is_err() {
                    watching_lost = false;
                    continue;
                }
                store_lost.borrow_and_update();
                rewrite(current.as_ref(), "the store lost the lobby lease").await;
            }
            item = async { bus.as_mut()?.recv().await }, if bus.is_some() => {
                match item {
                    Some(Received::Gap) => rewrite(current.as_ref(), "the bus reconnected").await,
                    Some(Received::Message(_)) => {}
                    None => bus = None,
                }
            }
            changed = term.changed(), if watching => {
                if changed.is_err() {
                    // A fixed ownership (one node): nothing changes any more.
                    watching = false;
                    continue;
                }
                let now = *term.borrow_and_update();
                // Told of a change: the same token means a loss we missed.
                follow(&parts, &mut current, now, &term, true).await;
            }
            cmd = rx.recv() => {
                let Some(cmd) = cmd else { break };
                if let Some(c) = &current {
                    let _ = c.handle.send(cmd).await;
                }
                // No lobby: dropping the command closes a `hello`'s
                // connection and answers a query with nothing.
            }
        }
    }
    if let Some(mut c) = current.take() {
        // Every handle is gone or shutdown: let the lobby finish its queue
        // and flush its seat writes.
        drop(c.handle);
        c.task.join().await;
    }
}

/// Makes the running lobby match `term` (as read from `watch`); with
/// `missed_loss`, a lobby of the same token is started again (the watch
/// reported a change, so the term ended and came back meanwhile).
async fn follow(
    parts: &LobbyParts,
    current: &mut Option<Current>,
    term: Term,
    watch: &watch::Receiver<Term>,
    missed_loss: bool,
) {
    let wanted = match term {
        Term::Owner(token) => Some(token),
        Term::FrontEnd => None,
    };
    if current.as_ref().map(|c| c.token) == wanted && !(missed_loss && wanted.is_some()) {
        return;
    }
    if let Some(mut old) = current.take() {
        tracing::warn!(
            token = old.token,
            "lobby stopped: this node no longer owns it"
        );
        old.task.0.abort();
        old.task.join().await;
        parts.relays.close_all();
    }
    if let Some(token) = wanted {
        *current = start(parts, token, watch).await;
    }
}

/// Builds and starts the lobby of term `token`; `None` (nothing spawned)
/// when `watch` no longer shows that term once the seats are loaded.
async fn start(parts: &LobbyParts, token: u64, watch: &watch::Receiver<Term>) -> Option<Current> {
    let still_ours = || {
        let ours = *watch.borrow() == Term::Owner(token);
        if !ours {
            tracing::warn!(
                token,
                "lobby not started: the term ended while it was being taken over"
            );
        }
        ours
    };
    let calls = Calls::new(Arc::new(parts.relays.clone()), CallSettings::default());
    let mut lobby = Lobby::new(parts.directory.clone(), parts.settings.clone()).with_calls(calls);
    let (handle, task) = match &parts.seats {
        None => {
            if !still_ours() {
                return None;
            }
            LobbyHandle::spawn(lobby, parts.audit.clone(), parts.clock.clone())
        }
        Some(store) => {
            let (store2, directory) = (store.clone(), parts.directory.clone());
            let loaded =
                tokio::task::spawn_blocking(move || persist::load(store2.as_ref(), &directory))
                    .await;
            match loaded {
                Ok(Ok(seats)) => {
                    let relays: BTreeSet<NodeId> =
                        seats.iter().filter_map(|s| s.seat.relay.clone()).collect();
                    await_relays(&parts.relays, &relays).await;
                    tracing::info!(
                        token,
                        seats = seats.len(),
                        "lobby taken over: seats restored"
                    );
                    lobby.restore(seats, parts.clock.now());
                }
                Ok(Err(e)) => {
                    tracing::error!(token, error = %e, "lobby taken over without its seats: the store failed");
                }
                Err(_) => tracing::error!(
                    token,
                    "lobby taken over without its seats: loading panicked"
                ),
            }
            if !still_ours() {
                return None;
            }
            LobbyHandle::spawn_with_store(
                lobby,
                parts.audit.clone(),
                parts.clock.clone(),
                store.clone(),
            )
        }
    };
    Some(Current {
        token,
        handle,
        task: LobbyTask(task),
    })
}

/// Waits (at most [`RELAY_WAIT`]) until every relay that carries a restored
/// call has registered with this node again, so that the restored calls
/// stay on their relays (and keep their media) instead of being placed
/// anew on whichever relay came back first.
async fn await_relays(pool: &RelayPool, expected: &BTreeSet<NodeId>) {
    if expected.is_empty() {
        return;
    }
    let deadline = tokio::time::Instant::now() + RELAY_WAIT;
    let mut tick = tokio::time::interval(RELAY_POLL);
    loop {
        tick.tick().await;
        let known: BTreeSet<NodeId> = pool.snapshot().into_iter().map(|r| r.node).collect();
        let missing = expected.difference(&known).count();
        if missing == 0 {
            tracing::info!(
                relays = expected.len(),
                "takeover: the calls' relays are back"
            );
            return;
        }
        if tokio::time::Instant::now() >= deadline {
            tracing::warn!(
                missing,
                "takeover: some calls' relays did not come back in time"
            );
            return;
        }
    }
}

#[cfg(test)]
#[path = "runner_tests.rs"]
mod tests;

/// Middleware: on a node that does not own the lobby, the endpoints that
/// need it (`/whip/…`, `/whep/…`, `/api/calls/…`) answer 503 with a message
/// that says so; everything else passes.
pub async fn owner_only(State(ownership): State<Ownership>, req: Request, next: Next) -> Response {
    let path = req.uri().path();
    let needs_lobby = ["/whip/", "/whep/", "/api/calls/"]
        .iter()
        .any(|p| path.starts_with(p));
    if needs_lobby && !ownership.is_owner() {
        let owner = ownership
            .owner()
            .map_or_else(|| "none right now".to_owned(), |o| o.to_string());
        let body = format!(
            "this signaling node ({}) does not run the lobby (owner: {owner}); \
             retry on the owner or shortly",
            ownership.node()
        );
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            [("retry-after", "1")],
            body,
        )
            .into_response();
    }
    next.run(req).await
}
