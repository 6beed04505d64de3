//! Placement: which relay a call goes to. A pure function of the relay
//! records, so it is tested without sockets or clocks.
//!
//! Regions are tried in this order: the preferred region (the client's
//! hint, the signaling node's own region, or — on failover — the dead
//! relay's region), then the configured `--region-order`, then any other
//! region by name. Within a region, the least loaded placeable relay wins
//! (expected participants / capacity; ties by node id). Placeable means a
//! fresh heartbeat, not draining and not full.

use std::cmp::Ordering;
use std::time::{Duration, Instant};

use protocol::{NodeId, Region};

use super::registry::NodeRecord;

/// Everything one placement decision depends on besides the records.
#[derive(Debug, Clone, Copy)]
pub struct Criteria<'a> {
    /// The region tried first.
    pub preferred: &'a Region,
    /// The configured region order tried next.
    pub order: &'a [Region],
    /// The current time.
    pub now: Instant,
    /// The relays' heartbeat interval (stale after three missed beats).
    pub heartbeat: Duration,
    /// A relay never chosen (the one that just failed).
    pub exclude: Option<&'a NodeId>,
}

/// The regions in the order placement tries them.
pub fn region_sequence(
    records: &[NodeRecord],
    preferred: &Region,
    order: &[Region],
) -> Vec<Region> {
    let mut seq: Vec<Region> = vec![preferred.clone()];
    for region in order {
        if !seq.contains(region) {
            seq.push(region.clone());
        }
    }
    let mut rest: Vec<Region> = records
        .iter()
        .map(|r| r.region.clone())
        .filter(|r| !seq.contains(r))
        .collect();
    rest.sort();
    rest.dedup();
    seq.extend(rest);
    seq
}

/// Compares the load of two relays: expected participants over capacity,
/// by cross-multiplication (no floats); ties by node id.
fn by_load(a: &NodeRecord, b: &NodeRecord) -> Ordering {
    let left = u128::from(a.expected_participants()) * u128::from(b.capacity);
    let right = u128::from(b.expected_participants()) * u128::from(a.capacity);
    left.cmp(&right).then_with(|| a.node.cmp(&b.node))
}

/// The relay to place a call on, if any is placeable.
pub fn choose(records: &[NodeRecord], criteria: &Criteria<'_>) -> Option<NodeId> {
    let placeable: Vec<&NodeRecord> = records
        .iter()
        .filter(|r| Some(&r.node) != criteria.exclude)
        .filter(|r| r.is_placeable(criteria.now, criteria.heartbeat))
        .collect();
    for region in region_sequence(records, criteria.preferred, criteria.order) {
        let best = placeable
            .iter()
            .filter(|r| r.region == region)
            .min_by(|a, b| by_load(a, b));
        if let Some(best) = best {
            return Some(best.node.clone());
        }
    }
    None
}
