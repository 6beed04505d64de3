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
//! - Loss (or a new term): the old lobby task is aborted at once (it writes
//!   nothing after that: another node may own the seats now), which closes
//!   the connections it served; the relay pool's control links are closed
//!   (relays reconnect, through a front end, to the new owner).
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
use tokio::sync::mpsc;
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
/// lobby. The task ends when every clone of the handle is gone.
pub fn spawn(parts: LobbyParts, ownership: &Ownership) -> (LobbyHandle, JoinHandle<()>) {
    let (handle, rx) = LobbyHandle::channel();
    let watches = Watches {
        term: ownership.term.clone(),
        store_lost: ownership.store_lost.clone(),
    };
    let task = tokio::spawn(run(parts, watches, rx));
    (handle, task)
}

/// The running term's lobby.
struct Current {
    token: u64,
    handle: LobbyHandle,
    task: JoinHandle<()>,
}

/// What the runner follows from the lease loop.
struct Watches {
    term: tokio::sync::watch::Receiver<Term>,
    store_lost: tokio::sync::watch::Receiver<u64>,
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

async fn run(parts: LobbyParts, watches: Watches, mut rx: mpsc::Receiver<Command>) {
    let Watches {
        mut term,
        mut store_lost,
    } = watches;
    let mut current: Option<Current> = None;
    let first = *term.borrow_and_update();
    follow(&parts, &mut current, first).await;
    let mut bus = gaps(&parts).await;
    let mut watching = true;
    let mut watching_lost = true;
    loop {
        tokio::select! {
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
                follow(&parts, &mut current, now).await;
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
    if let Some(c) = current.take() {
        // Every handle is gone: let the lobby finish its queue and flush.
        drop(c.handle);
        let _ = c.task.await;
    }
}

/// Makes the running lobby match `term`.
async fn follow(parts: &LobbyParts, current: &mut Option<Current>, term: Term) {
    let wanted = match term {
        Term::Owner(token) => Some(token),
        Term::FrontEnd => None,
    };
    if current.as_ref().map(|c| c.token) == wanted {
        return;
    }
    if let Some(old) = current.take() {
        tracing::warn!(
            token = old.token,
            "lobby stopped: this node no longer owns it"
        );
        old.task.abort();
        let _ = old.task.await;
        parts.relays.close_all();
    }
    if let Some(token) = wanted {
        *current = Some(start(parts, token).await);
    }
}

/// Builds and starts the lobby of term `token`.
async fn start(parts: &LobbyParts, token: u64) -> Current {
    let calls = Calls::new(Arc::new(parts.relays.clone()), CallSettings::default());
    let mut lobby = Lobby::new(parts.directory.clone(), parts.settings.clone()).with_calls(calls);
    let (handle, task) = match &parts.seats {
        None => LobbyHandle::spawn(lobby, parts.audit.clone(), parts.clock.clone()),
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
            LobbyHandle::spawn_with_store(
                lobby,
                parts.audit.clone(),
                parts.clock.clone(),
                store.clone(),
            )
        }
    };
    Current {
        token,
        handle,
        task,
    }
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
