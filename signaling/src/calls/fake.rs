//! A fake [`CallRelays`] for unit tests: relays are names in a list,
//! placement takes the first live one, offers are answered at once, and
//! every forwarded operation is recorded.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use protocol::{GrantRole, NodeId, ParticipantId, Region, RoomId};
use tokio::sync::broadcast;

use super::{CallRelays, OfferFuture};
use crate::relays::{PlacementError, RelayEvent};

#[derive(Default)]
struct State {
    nodes: Vec<NodeId>,
    dead: HashSet<NodeId>,
    placements: HashMap<RoomId, NodeId>,
    log: Vec<String>,
}

/// See the module documentation.
pub(crate) struct FakeRelays {
    state: Mutex<State>,
    events: broadcast::Sender<RelayEvent>,
}

pub(crate) fn node(s: &str) -> NodeId {
    NodeId::new(s).unwrap()
}

impl FakeRelays {
    /// Relays `nodes`, all alive.
    pub(crate) fn new(nodes: &[&str]) -> Arc<Self> {
        let state = State {
            nodes: nodes.iter().map(|n| node(n)).collect(),
            ..State::default()
        };
        Arc::new(Self {
            state: Mutex::new(state),
            events: broadcast::channel(64).0,
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds a relay.
    pub(crate) fn add(&self, n: &str) {
        self.lock().nodes.push(node(n));
    }

    /// Marks a relay dead: placement skips it.
    pub(crate) fn kill(&self, n: &str) {
        self.lock().dead.insert(node(n));
    }

    /// Every operation so far, as `op call participant` strings.
    pub(crate) fn log(&self) -> Vec<String> {
        self.lock().log.clone()
    }

    fn record(&self, s: String) {
        self.lock().log.push(s);
    }
}

impl CallRelays for FakeRelays {
    fn place(&self, call: &RoomId, _hint: Option<&Region>) -> Result<NodeId, PlacementError> {
        let mut s = self.lock();
        if let Some(n) = s.placements.get(call).filter(|n| !s.dead.contains(*n)) {
            return Ok(n.clone());
        }
        let n = s
            .nodes
            .iter()
            .find(|n| !s.dead.contains(*n))
            .cloned()
            .ok_or(PlacementError::NoRelay)?;
        s.placements.insert(call.clone(), n.clone());
        Ok(n)
    }

    fn placement_of(&self, call: &RoomId) -> Option<NodeId> {
        self.lock().placements.get(call).cloned()
    }

    fn grant(&self, call: &RoomId, p: &ParticipantId, _role: GrantRole, node: &NodeId) -> String {
        format!("grant/{call}/{p}/{node}")
    }

    fn offer(&self, node: NodeId, grant: String, _sdp: String) -> OfferFuture {
        self.record(format!("offer {grant}"));
        Box::pin(async move { Ok(format!("answer from {node}")) })
    }

    fn candidate(&self, node: &NodeId, call: &RoomId, p: &ParticipantId, _c: String) {
        self.record(format!("candidate {node} {call} {p}"));
    }

    fn renegotiate_answer(&self, node: &NodeId, call: &RoomId, p: &ParticipantId, _sdp: String) {
        self.record(format!("renegotiate_answer {node} {call} {p}"));
    }

    fn kick(&self, node: &NodeId, call: &RoomId, p: &ParticipantId) {
        self.record(format!("kick {node} {call} {p}"));
    }

    fn close_call(&self, call: &RoomId) {
        self.lock().placements.remove(call);
        self.record(format!("close {call}"));
    }

    fn relay_failed(&self, call: &RoomId, node: &NodeId) {
        self.record(format!("relay_failed {call} {node}"));
    }

    fn subscribe(&self) -> broadcast::Receiver<RelayEvent> {
        self.events.subscribe()
    }
}
