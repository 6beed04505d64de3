//! Who runs the lobby: the lease loop on the [`LeaseStore`] lease
//! [`LOBBY_LEASE`], and [`Ownership`], the watch channel it publishes.
//!
//! Every node runs the loop. Each round (every TTL/3) it tries to take or
//! renew the lease; the node that holds it is the owner and runs the lobby,
//! every other node learns the holder's id (to pipe its sockets there).
//! A node stops being the owner when:
//! - a renewal is refused (someone else holds the lease: ours had lapsed),
//! - the fencing token changed (we lost it and took it again in between:
//!   someone may have owned it meanwhile, so our lobby is stale), or
//! - the store failed for so long that the lease may lapse: the owner gives
//!   up at 5/6 of the TTL after its last renewal, before another node can
//!   take it, so two owners never act at once (as far as clocks agree).
//!
//! A renewal that succeeds under a *different* fencing token within the TTL
//! of our last renewal is not a loss: our lease was still live, so only a
//! store that lost it (a restarted, empty Redis) hands out a new token, and
//! a successful acquire means nobody else holds it now. The term is kept
//! (the lobby in memory is the only copy left) and
//! [`Ownership::store_lost`] counts up: the runner writes every seat again.
//! (Should a later take-over after a lapse hand out a token equal to the
//! kept term's number, that round reports a loss, so the term still changes.)
//!
//! The decision is [`LeaseState::step`], a sans-IO step on a given instant
//! (tests drive it on virtual time); [`spawn`] runs it on a [`Clock`].

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use protocol::NodeId;
use tokio::sync::watch;

use crate::clock::Clock;
use crate::store::lease::LeaseStore;

/// The lease's name: one lobby owner for the whole cluster (per-tenant
/// leases, `lobby:<tenant>`, are the next step).
pub const LOBBY_LEASE: &str = "lobby";

/// This node's view of the lease.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Term {
    /// This node owns the lobby under this fencing token; a new token is a
    /// new term (a new lobby, rebuilt from the stores).
    Owner(u64),
    /// Another node (or nobody) owns it.
    FrontEnd,
}

/// Who owns the lobby now, as the lease loop last saw it. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Ownership {
    /// The owner's id (`None`: unknown or nobody, e.g. Redis unreachable).
    pub rx: watch::Receiver<Option<NodeId>>,
    /// This node's own term (changes on every take-over and loss).
    pub term: watch::Receiver<Term>,
    /// Counts the renewals that found the store had lost our lease while
    /// we still owned it (a restarted Redis): write the lobby's state again.
    pub store_lost: watch::Receiver<u64>,
    node: NodeId,
}

impl Ownership {
    /// This node's id.
    pub fn node(&self) -> &NodeId {
        &self.node
    }

    /// The current owner, if known.
    pub fn owner(&self) -> Option<NodeId> {
        self.rx.borrow().clone()
    }

    /// Whether this node runs the lobby now.
    pub fn is_owner(&self) -> bool {
        matches!(*self.term.borrow(), Term::Owner(_))
    }

    /// An ownership that never changes: `node` owns the lobby for good (one
    /// node on memory backends, or tests).
    pub fn single(node: NodeId) -> Self {
        let (_, rx) = watch::channel(Some(node.clone()));
        let (_, term) = watch::channel(Term::Owner(1));
        let (_, store_lost) = watch::channel(0);
        Self {
            rx,
            term,
            store_lost,
            node,
        }
    }
}

/// What a lease round changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Nothing.
    None,
    /// This node took the lease (a new term).
    Took(u64),
    /// This node lost the lease; why (ids and reasons only).
    Lost(&'static str),
    /// This node still owns the lobby (same term) but the store had lost
    /// the lease (e.g. Redis restarted empty): rewrite the lobby's state.
    StoreLost,
}

/// The lease loop's state, without I/O of its own.
#[derive(Debug)]
pub struct LeaseState {
    node: NodeId,
    ttl: Duration,
    /// Our term's token and when it was last renewed.
    held: Option<(u64, Instant)>,
    /// The store's fencing token for our lease (differs from the term's
    /// after the store lost the lease and we took it again in time).
    store_token: u64,
    /// The holder last seen, and when the store last answered.
    owner: Option<NodeId>,
    last_ok: Option<Instant>,
}

impl LeaseState {
    /// A node that holds nothing yet.
    pub fn new(node: NodeId, ttl: Duration) -> Self {
        Self {
            node,
            ttl,
            held: None,
            store_token: 0,
            owner: None,
            last_ok: None,
        }
    }

    /// The owner as last seen.
    pub fn owner(&self) -> Option<&NodeId> {
        self.owner.as_ref()
    }

    /// This node's term.
    pub fn term(&self) -> Term {
        self.held.map_or(Term::FrontEnd, |(t, _)| Term::Owner(t))
    }

    /// One round at `now`: take or renew the lease, learn the holder.
    /// Returns what changed and when to run the next round.
    pub fn step(&mut self, leases: &dyn LeaseStore, now: Instant) -> (Change, Instant) {
        let round = now + self.ttl / 3;
        match leases.acquire(LOBBY_LEASE, &self.node, self.ttl, now) {
            Ok(Some(token)) => {
                self.last_ok = Some(now);
                self.owner = Some(self.node.clone());
                let store_before = std::mem::replace(&mut self.store_token, token);
                let before = self.held.replace((token, now));
                match before {
                    Some((t, _)) if store_before == token => {
                        self.held = Some((t, now));
                        (Change::None, round)
                    }
                    Some((t, renewed)) if now < renewed + self.ttl => {
                        // Our lease was live, yet the store handed out a new
                        // token: it lost the lease (restarted empty). Nobody
                        // else holds it (we just got it): keep the term.
                        self.held = Some((t, now));
                        tracing::warn!(node = %self.node, term = t, token, "lobby lease: the store lost it and it was taken again in time; keeping the lobby, rewriting its state");
                        (Change::StoreLost, round)
                    }
                    Some((t, _)) if t == token => {
                        // Lapsed and retaken under a token equal to our kept
                        // term's (the counter restarted after a store loss):
                        // the term must change, so lose it now; the next
                        // round takes it again as a new term.
                        self.held = None;
                        tracing::warn!(node = %self.node, token, "lobby lease lost: lapsed, and the token was reused");
                        (Change::Lost("fencing token reused"), round)
                    }
                    Some(_) => {
                        // Lost and retaken in between: our lobby is stale.
                        tracing::warn!(node = %self.node, token, "lobby lease: fencing token changed, starting a new term");
                        (Change::Took(token), round)
                    }
                    None => {
                        tracing::info!(node = %self.node, token, "lobby lease taken: this node runs the lobby");
                        (Change::Took(token), round)
                    }
                }
            }
            Ok(None) => {
                self.last_ok = Some(now);
                let change = if self.held.take().is_some() {
                    tracing::warn!(node = %self.node, "lobby lease lost: renewal refused");
                    Change::Lost("renewal refused")
                } else {
                    Change::None
                };
                match leases.holder(LOBBY_LEASE, now) {
                    Ok(h) => self.owner = h,
                    Err(e) => tracing::warn!(error = %e, "lobby lease: reading the holder failed"),
                }
                (change, round)
            }
            Err(e) => {
                tracing::warn!(node = %self.node, error = %e, "lobby lease: store error");
                self.on_error(now, round)
            }
        }
    }

    fn on_error(&mut self, now: Instant, round: Instant) -> (Change, Instant) {
        // Retry sooner than a normal round while something is at stake.
        let retry = now + (self.ttl / 6).max(Duration::from_millis(50));
        if let Some((_, renewed)) = self.held {
            let give_up = renewed + self.ttl * 5 / 6;
            if now >= give_up {
                self.held = None;
                self.owner = None;
                tracing::warn!(node = %self.node, "lobby lease lost: store unreachable for too long");
                return (Change::Lost("store unreachable"), retry);
            }
            return (Change::None, retry.min(give_up));
        }
        // A front end forgets the owner once its lease must have lapsed.
        if self.last_ok.is_none_or(|t| now >= t + self.ttl) {
            self.owner = None;
        }
        (Change::None, retry.min(round))
    }
}

/// The loop's state, shared between its rounds (each on a blocking thread)
/// and [`LeaseLoop::stop`].
#[derive(Debug)]
struct Shared {
    state: Mutex<LeaseState>,
    /// Set by `stop`: no round starts after it.
    stopped: AtomicBool,
}

/// What a round hands back to the loop: the change, the next round, and
/// the state to publish.
type Round = (Change, Instant, Option<NodeId>, Term);

impl Shared {
    /// One round at `now`, unless stopped (`None`). Holds the state's lock
    /// for the whole round, so `stop` waits for a round under way.
    fn round(&self, leases: &dyn LeaseStore, now: Instant) -> Option<Round> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if self.stopped.load(Ordering::SeqCst) {
            return None;
        }
        let (change, at) = state.step(leases, now);
        Some((change, at, state.owner().cloned(), state.term()))
    }
}

/// Runs `f`, which may block on the store, without blocking a tokio worker:
/// on a multi-threaded runtime the worker hands its other tasks off first
/// (a current-thread runtime, as in tests on memory stores, runs it as is).
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(f)
        }
        _ => f(),
    }
}

/// The running lease loop. Dropping it does not stop it: call [`LeaseLoop::stop`].
#[derive(Debug)]
pub struct LeaseLoop {
    task: tokio::task::JoinHandle<()>,
    shared: Arc<Shared>,
    leases: Arc<dyn LeaseStore>,
    node: NodeId,
}

impl LeaseLoop {
    /// Stops the loop and gives the lease up (if held), so that another
    /// node takes over at its next round instead of after the TTL. A round
    /// under way finishes first (a renewal cannot land after the release
    /// and take the lease back); no round starts after this.
    pub fn stop(self) {
        self.shared.stopped.store(true, Ordering::SeqCst);
        self.task.abort();
        blocking(|| {
            // Waits for a round under way (it holds the lock).
            let _round = self
                .shared
                .state
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            match self.leases.release(LOBBY_LEASE, &self.node) {
                Ok(true) => tracing::info!(node = %self.node, "lobby lease released"),
                Ok(false) => {}
                Err(e) => tracing::warn!(error = %e, "lobby lease: releasing failed"),
            }
        });
    }

    /// Stops the loop without giving the lease up, as a crashed node would
    /// (tests): the lease lapses after its TTL.
    pub fn abandon(self) {
        self.shared.stopped.store(true, Ordering::SeqCst);
        self.task.abort();
    }
}

/// Starts the lease loop of `node` on `leases` (a lease of `ttl`, renewed
/// every TTL/3) with time from `clock`. The first round has run when this
/// returns, so [`Ownership`] already says whether this node owns the lobby.
/// Each round's store calls run on a blocking thread, never on a worker.
pub fn spawn(
    leases: Arc<dyn LeaseStore>,
    node: NodeId,
    ttl: Duration,
    clock: Clock,
) -> (Ownership, LeaseLoop) {
    let mut state = LeaseState::new(node.clone(), ttl);
    let (_, mut next) = blocking(|| state.step(leases.as_ref(), clock.now()));
    let (owner_tx, rx) = watch::channel(state.owner().cloned());
    let (term_tx, term) = watch::channel(state.term());
    let (lost_tx, store_lost) = watch::channel(0u64);
    let shared = Arc::new(Shared {
        state: Mutex::new(state),
        stopped: AtomicBool::new(false),
    });
    let task = tokio::spawn({
        let leases = leases.clone();
        let shared = Arc::clone(&shared);
        async move {
            loop {
                clock.sleep_until(next).await;
                let now = clock.now();
                let (shared, leases) = (Arc::clone(&shared), Arc::clone(&leases));
                let round =
                    tokio::task::spawn_blocking(move || shared.round(leases.as_ref(), now)).await;
                let Ok(Some((change, at, owner, term))) = round else {
                    // Stopped (or the round panicked).
                    return;
                };
                next = at;
                if change == Change::StoreLost {
                    lost_tx.send_modify(|n| *n += 1);
                }
                owner_tx.send_if_modified(|o| {
                    let changed = *o != owner;
                    if changed {
                        o.clone_from(&owner);
                    }
                    changed
                });
                term_tx.send_if_modified(|t| {
                    let changed = *t != term;
                    *t = term;
                    changed
                });
            }
        }
    });
    let ownership = Ownership {
        rx,
        term,
        store_lost,
        node: node.clone(),
    };
    (
        ownership,
        LeaseLoop {
            task,
            shared,
            leases,
            node,
        },
    )
}
