//! [`MemoryRegistry`]: the in-process [`NodeRegistry`].

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use protocol::control::Heartbeat;
use protocol::{NodeId, RoomId};

use super::{NodeRecord, NodeRegistry};

/// Relays and placements in this process's memory.
#[derive(Debug, Default)]
pub struct MemoryRegistry {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    nodes: BTreeMap<NodeId, NodeRecord>,
    placements: HashMap<RoomId, NodeId>,
    by_node: HashMap<NodeId, BTreeSet<RoomId>>,
}

impl MemoryRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic elsewhere cannot leave the maps half-updated (every
        // method is one short critical section), so a poisoned lock is usable.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl NodeRegistry for MemoryRegistry {
    fn upsert(&self, record: NodeRecord) {
        self.lock().nodes.insert(record.node.clone(), record);
    }

    fn heartbeat(&self, node: &NodeId, beat: &Heartbeat, at: Instant) -> bool {
        let mut inner = self.lock();
        let placed = inner.by_node.get(node).map_or(0, BTreeSet::len);
        let Some(record) = inner.nodes.get_mut(node) else {
            return false;
        };
        record.load = beat.load.clone();
        record.draining = beat.draining;
        record.last_beat = at;
        // A call becomes a room on the relay only when its first offer
        // arrives; until the beat shows it, keep counting it as expected load
        // (resetting at every beat let two quick calls land on one relay).
        let placed = u32::try_from(placed).unwrap_or(u32::MAX);
        record.reserved = placed.saturating_sub(beat.load.rooms);
        true
    }

    fn remove(&self, node: &NodeId) -> Option<NodeRecord> {
        self.lock().nodes.remove(node)
    }

    fn get(&self, node: &NodeId) -> Option<NodeRecord> {
        self.lock().nodes.get(node).cloned()
    }

    fn nodes(&self) -> Vec<NodeRecord> {
        self.lock().nodes.values().cloned().collect()
    }

    fn placement(&self, call: &RoomId) -> Option<NodeId> {
        self.lock().placements.get(call).cloned()
    }

    fn set_placement(&self, call: &RoomId, node: &NodeId) {
        let mut inner = self.lock();
        let previous = inner.placements.insert(call.clone(), node.clone());
        if previous.as_ref() == Some(node) {
            return;
        }
        if let Some(old) = previous
            && let Some(calls) = inner.by_node.get_mut(&old)
        {
            calls.remove(call);
            if calls.is_empty() {
                inner.by_node.remove(&old);
            }
        }
        inner
            .by_node
            .entry(node.clone())
            .or_default()
            .insert(call.clone());
        if let Some(record) = inner.nodes.get_mut(node) {
            record.reserved = record.reserved.saturating_add(1);
        }
    }

    fn remove_placement(&self, call: &RoomId) -> Option<NodeId> {
        let mut inner = self.lock();
        let node = inner.placements.remove(call)?;
        if let Some(calls) = inner.by_node.get_mut(&node) {
            calls.remove(call);
            if calls.is_empty() {
                inner.by_node.remove(&node);
            }
        }
        Some(node)
    }

    fn calls_on(&self, node: &NodeId) -> Vec<RoomId> {
        self.lock()
            .by_node
            .get(node)
            .map(|calls| calls.iter().cloned().collect())
            .unwrap_or_default()
    }
}
