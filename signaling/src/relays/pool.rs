//! [`RelayPool`]: the calls layer's one handle on the relays. It owns the
//! registry, the open control links (one per connected relay) and the
//! offers waiting for an answer, and publishes [`RelayEvent`]s.
//!
//! Compound steps (place, failover, registration) run under one lock, so a
//! call is never placed on two relays at once.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use protocol::control::{RequestId, SignalingToRelay};
use protocol::{Grant, GrantRole, NodeId, ParticipantId, Region, RoomId};
use tokio::sync::{broadcast, mpsc, oneshot};

use super::placement::{self, Criteria};
use super::registry::{MemoryRegistry, NodeRegistry};
use super::{PlacementError, RelayCallError, RelayEvent, RelayInfo, RelaySettings};

/// Events buffered for a slow subscriber before the oldest are lost.
const EVENT_BUFFER: usize = 1024;

/// The answer to one forwarded offer.
pub(super) type OfferReply = Result<String, RelayCallError>;

/// The relays known to this signaling node and the calls placed on them.
#[derive(Debug)]
pub struct RelayPool {
    pub(super) settings: RelaySettings,
    pub(super) registry: Arc<dyn NodeRegistry>,
    pub(super) state: Mutex<State>,
    pub(super) events: broadcast::Sender<RelayEvent>,
    pub(super) whip: super::whip::Sessions,
    next_request: AtomicU64,
}

/// Per-process state guarded by the pool's lock.
#[derive(Debug, Default)]
pub(super) struct State {
    /// The open control connection of each relay.
    pub links: HashMap<NodeId, Link>,
    /// Calls whose relay died with no sibling to take them.
    pub orphans: BTreeMap<RoomId, Orphan>,
    /// Generation of the next control connection.
    pub next_generation: u64,
}

/// One relay's open control connection.
#[derive(Debug)]
pub(super) struct Link {
    /// Distinguishes this connection from an older one of the same node.
    pub generation: u64,
    /// Messages to write to the relay; dropping it closes the connection.
    pub tx: mpsc::UnboundedSender<SignalingToRelay>,
    /// Offers waiting for an answer; dropped (→ `RelayGone`) with the link.
    pub pending: HashMap<RequestId, oneshot::Sender<OfferReply>>,
}

/// A parked call.
#[derive(Debug, Clone)]
pub(super) struct Orphan {
    /// The relay it was on.
    pub from: NodeId,
    /// The region to try first when a relay registers.
    pub region: Region,
}

/// The current Unix time in seconds (grants and registration carry it).
pub(super) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl RelayPool {
    /// A pool over an in-memory registry.
    pub fn new(settings: RelaySettings) -> Arc<Self> {
        Self::with_registry(settings, Arc::new(MemoryRegistry::new()))
    }

    /// A pool over the given registry.
    pub fn with_registry(settings: RelaySettings, registry: Arc<dyn NodeRegistry>) -> Arc<Self> {
        Arc::new(Self {
            settings,
            registry,
            state: Mutex::new(State::default()),
            events: broadcast::channel(EVENT_BUFFER).0,
            whip: super::whip::Sessions::default(),
            next_request: AtomicU64::new(1),
        })
    }

    /// The pool's settings.
    pub fn settings(&self) -> &RelaySettings {
        &self.settings
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(super) fn emit(&self, event: RelayEvent) {
        // No subscriber is fine: nobody is in a call yet.
        let _ = self.events.send(event);
    }

    /// Whether `node` can carry calls now: connected here and fresh
    /// (draining relays still carry their existing calls).
    pub(super) fn is_alive(&self, state: &State, node: &NodeId) -> bool {
        state.links.contains_key(node)
            && self
                .registry
                .get(node)
                .is_some_and(|r| r.is_fresh(self.settings.clock.now(), self.settings.heartbeat))
    }

    /// Chooses a connected relay for a call, preferring `region`, never
    /// `exclude`.
    pub(super) fn choose(
        &self,
        state: &State,
        region: &Region,
        exclude: Option<&NodeId>,
    ) -> Option<NodeId> {
        // Only relays connected to this node can be sent offers.
        let records: Vec<_> = self
            .registry
            .nodes()
            .into_iter()
            .filter(|r| state.links.contains_key(&r.node))
            .collect();
        placement::choose(
            &records,
            &Criteria {
                preferred: region,
                order: &self.settings.region_order,
                now: self.settings.clock.now(),
                heartbeat: self.settings.heartbeat,
                exclude,
            },
        )
    }

    /// The relay of `call`: the current placement if its relay is alive
    /// (draining or not), else a new one — the hint region (or this node's
    /// region) first, least loaded, then the configured region order. Only
    /// fresh, non-draining, non-full relays take new calls.
    ///
    /// If the current relay turned out dead, the whole call is re-placed and
    /// [`RelayEvent::CallMoved`] (or `CallOrphaned`) is emitted as for any
    /// failover. On [`PlacementError::NoRelay`] retry on
    /// [`RelayEvent::RelayUp`].
    pub fn place(
        &self,
        call: &RoomId,
        region_hint: Option<&Region>,
    ) -> Result<NodeId, PlacementError> {
        let mut state = self.lock();
        if let Some(node) = self.registry.placement(call) {
            if self.is_alive(&state, &node) {
                return Ok(node);
            }
            self.relay_down(&mut state, &node);
            return self
                .registry
                .placement(call)
                .ok_or_else(crate::metrics::no_relay);
        }
        if state.orphans.contains_key(call) {
            self.place_orphans(&mut state);
            return self
                .registry
                .placement(call)
                .ok_or_else(crate::metrics::no_relay);
        }
        let region = region_hint.unwrap_or(&self.settings.region);
        let node = self
            .choose(&state, region, None)
            .ok_or_else(crate::metrics::no_relay)?;
        self.registry.set_placement(call, &node);
        tracing::info!(%call, %node, "call placed");
        Ok(node)
    }

    /// A signed grant for `participant` in `call` on `node`, valid for the
    /// configured grant lifetime (default 120 s).
    pub fn grant(
        &self,
        call: &RoomId,
        participant: &ParticipantId,
        role: GrantRole,
        node: &NodeId,
    ) -> String {
        Grant {
            room: call.clone(),
            participant: participant.clone(),
            role,
            node: node.clone(),
            exp: unix_now().saturating_add(self.settings.grant_ttl.as_secs()),
        }
        .sign(self.settings.secret.expose())
    }

    /// Forwards a client's offer (with its grant) to `node` and waits for
    /// the relay's answer, at most the offer timeout (default 5 s).
    pub async fn offer(
        &self,
        node: &NodeId,
        grant: String,
        sdp: String,
    ) -> Result<String, RelayCallError> {
        let request = self.next_request.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        {
            let mut state = self.lock();
            let link = state.links.get_mut(node).ok_or(RelayCallError::RelayGone)?;
            link.tx
                .send(SignalingToRelay::Offer {
                    request,
                    grant,
                    sdp,
                })
                .map_err(|_| RelayCallError::RelayGone)?;
            link.pending.insert(request, tx);
        }
        match tokio::time::timeout(self.settings.offer_timeout, rx).await {
            Ok(Ok(reply)) => reply,
            Ok(Err(_)) => Err(RelayCallError::RelayGone),
            Err(_) => {
                if let Some(link) = self.lock().links.get_mut(node) {
                    link.pending.remove(&request);
                }
                tracing::warn!(%node, request, "relay did not answer an offer in time");
                Err(RelayCallError::Timeout)
            }
        }
    }

    /// Sends `message` to `node` if it is connected; false otherwise.
    pub(super) fn send(&self, node: &NodeId, message: SignalingToRelay) -> bool {
        self.lock()
            .links
            .get(node)
            .is_some_and(|link| link.tx.send(message).is_ok())
    }

    /// Forwards a client's trickled ICE candidate.
    pub fn candidate(
        &self,
        node: &NodeId,
        call: &RoomId,
        participant: &ParticipantId,
        candidate: String,
    ) {
        self.send(
            node,
            SignalingToRelay::Candidate {
                room: call.clone(),
                participant: participant.clone(),
                candidate,
            },
        );
    }

    /// Forwards a client's answer to a [`RelayEvent::Renegotiate`] offer.
    pub fn renegotiate_answer(
        &self,
        node: &NodeId,
        call: &RoomId,
        participant: &ParticipantId,
        sdp: String,
    ) {
        self.send(
            node,
            SignalingToRelay::RenegotiateAnswer {
                room: call.clone(),
                participant: participant.clone(),
                sdp,
            },
        );
    }

    /// Removes a participant from the call on `node`.
    pub fn kick(&self, node: &NodeId, call: &RoomId, participant: &ParticipantId) {
        self.send(
            node,
            SignalingToRelay::Kick {
                room: call.clone(),
                participant: participant.clone(),
            },
        );
    }

    /// Ends a call: `close_room` on its relay, and its placement (or
    /// parking) is forgotten.
    pub fn close_call(&self, call: &RoomId) {
        let mut state = self.lock();
        state.orphans.remove(call);
        if let Some(node) = self.registry.remove_placement(call) {
            if let Some(link) = state.links.get(&node) {
                let _ = link
                    .tx
                    .send(SignalingToRelay::CloseRoom { room: call.clone() });
            }
            tracing::info!(%call, %node, "call closed");
        }
    }

    /// A client of `call` reported that ICE/DTLS with `node` failed. If the
    /// relay is dead or stale, all its calls are re-placed (events follow);
    /// if it is alive nothing changes, and [`RelayPool::place`] returns the
    /// same relay (the client should simply retry with a fresh grant).
    pub fn relay_failed(&self, call: &RoomId, node: &NodeId) {
        let mut state = self.lock();
        if self.is_alive(&state, node) {
            tracing::info!(%call, %node, "client reported ICE failure; relay is alive");
            return;
        }
        tracing::warn!(%call, %node, "client reported ICE failure; relay is not alive");
        self.relay_down(&mut state, node);
    }

    /// Every [`RelayEvent`] from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<RelayEvent> {
        self.events.subscribe()
    }

    /// Every known relay, in node id order.
    pub fn snapshot(&self) -> Vec<RelayInfo> {
        let state = self.lock();
        let now = self.settings.clock.now();
        self.registry
            .nodes()
            .into_iter()
            .map(|r| RelayInfo {
                fresh: r.is_fresh(now, self.settings.heartbeat),
                connected: state.links.contains_key(&r.node),
                calls: self.registry.calls_on(&r.node).len(),
                node: r.node,
                region: r.region,
                advertise: r.advertise,
                capacity: r.capacity,
                load: r.load,
                draining: r.draining,
            })
            .collect()
    }

    /// The relay `call` is placed on now, if any (no side effects).
    pub fn placement_of(&self, call: &RoomId) -> Option<NodeId> {
        self.registry.placement(call)
    }

    /// Closes every relay's control connection (signaling shuts down).
    pub fn close_all(&self) {
        self.lock().links.clear();
    }
}
