//! The relay registry: which relays exist, their last heartbeat and load,
//! and which relay carries which call (the placements).
//!
//! [`NodeRegistry`] is a trait so that several signaling nodes can later
//! share one registry (Redis, issue 7); [`MemoryRegistry`] is the
//! in-process implementation. The registry only stores facts: decisions
//! (placement, failover) are made by [`super::RelayPool`], which serialises
//! its compound operations itself.

mod memory;

use std::fmt;
use std::time::{Duration, Instant};

use protocol::control::{Heartbeat, RelayLoad};
use protocol::{NodeId, Region, RoomId};

pub use memory::MemoryRegistry;

/// What signaling knows about one registered relay.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeRecord {
    /// The relay's node id.
    pub node: NodeId,
    /// The region it serves.
    pub region: Region,
    /// UDP addresses it advertises (`ip:port`).
    pub advertise: Vec<String>,
    /// Participants it accepts in all.
    pub capacity: u32,
    /// Load from its last heartbeat.
    pub load: RelayLoad,
    /// Whether it drains (takes no new calls).
    pub draining: bool,
    /// When its last heartbeat (or its registration) arrived.
    pub last_beat: Instant,
    /// Calls placed on it that its last heartbeat did not show yet (placed
    /// calls minus reported rooms): their participants are not in `load`, so
    /// placement counts them as expected load.
    pub reserved: u32,
}

impl NodeRecord {
    /// A record for a relay that registered at `at`, with no load yet.
    pub fn new(
        node: NodeId,
        region: Region,
        advertise: Vec<String>,
        capacity: u32,
        at: Instant,
    ) -> Self {
        Self {
            node,
            region,
            advertise,
            capacity,
            load: RelayLoad::default(),
            draining: false,
            last_beat: at,
            reserved: 0,
        }
    }

    /// Whether the heartbeat is fresh at `now`: fewer than three beats of
    /// `interval` missed (stale once more than `3 × interval` passed).
    pub fn is_fresh(&self, now: Instant, interval: Duration) -> bool {
        now.saturating_duration_since(self.last_beat) <= interval * STALE_AFTER_BEATS
    }

    /// Participants expected on this relay: reported plus reserved for
    /// calls placed since the last beat.
    pub fn expected_participants(&self) -> u64 {
        u64::from(self.load.participants) + u64::from(self.reserved) * u64::from(RESERVED_PER_CALL)
    }

    /// Whether a new call may go here at `now`: fresh, not draining, not full.
    pub fn is_placeable(&self, now: Instant, interval: Duration) -> bool {
        self.is_fresh(now, interval)
            && !self.draining
            && self.expected_participants() < u64::from(self.capacity)
    }
}

/// Missed heartbeats after which a relay is stale.
pub const STALE_AFTER_BEATS: u32 = 3;

/// Participants a freshly placed call is expected to bring (a consultation).
pub const RESERVED_PER_CALL: u32 = 2;

/// Storage of relay records and call placements.
///
/// Every method is a single, atomic step; callers that need several steps
/// to be atomic together hold their own lock around them.
pub trait NodeRegistry: Send + Sync + fmt::Debug {
    /// Adds or replaces the record of `record.node`.
    fn upsert(&self, record: NodeRecord);

    /// Records a heartbeat at `at` (load, draining; `reserved` becomes the
    /// placed calls the beat does not show as rooms yet).
    /// Returns false if the node is unknown.
    fn heartbeat(&self, node: &NodeId, beat: &Heartbeat, at: Instant) -> bool;

    /// Forgets a relay (its placements stay until moved or removed).
    fn remove(&self, node: &NodeId) -> Option<NodeRecord>;

    /// The record of one relay.
    fn get(&self, node: &NodeId) -> Option<NodeRecord>;

    /// Every relay record, in node id order.
    fn nodes(&self) -> Vec<NodeRecord>;

    /// The relay `call` is placed on.
    fn placement(&self, call: &RoomId) -> Option<NodeId>;

    /// Places `call` on `node`; counts it as reserved load on `node` if the
    /// placement changed.
    fn set_placement(&self, call: &RoomId, node: &NodeId);

    /// Forgets the placement of `call`, returning where it was.
    fn remove_placement(&self, call: &RoomId) -> Option<NodeId>;

    /// The calls placed on `node`, in id order.
    fn calls_on(&self, node: &NodeId) -> Vec<RoomId>;
}
