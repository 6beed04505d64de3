//! Relay placement: region order, least loaded, freshness, draining,
//! stickiness — the pure choice and the pool, driven in-process (fake relay
//! links, manual clock).

mod relays_support;

use std::time::{Duration, Instant};

use relays_support::inproc::{BEAT, beat, pool, reg, region};
use relays_support::{node, room};
use signaling::clock::Clock;
use signaling::relays::placement::{Criteria, choose};
use signaling::relays::registry::NodeRecord;

fn record(id: &str, reg: &str, participants: u32, capacity: u32, at: Instant) -> NodeRecord {
    let mut r = NodeRecord::new(node(id), region(reg), vec![], capacity, at);
    r.load.participants = participants;
    r
}

#[test]
fn regions_are_tried_hint_first_then_in_configured_order_then_by_name() {
    let now = Clock::manual().now();
    let records = vec![
        record("ap-1", "ap", 0, 100, now),
        record("eu-1", "eu", 50, 100, now),
        record("us-1", "us", 0, 100, now),
        record("zz-1", "zz", 0, 100, now),
    ];
    let order = [region("eu"), region("us")];
    let pick = |preferred: &str, records: &[NodeRecord]| {
        let preferred = region(preferred);
        choose(
            records,
            &Criteria {
                preferred: &preferred,
                order: &order,
                now,
                heartbeat: BEAT,
                exclude: None,
            },
        )
        .map(|n| n.to_string())
    };
    // The hint region wins even when busier than others.
    assert_eq!(pick("eu", &records).as_deref(), Some("eu-1"));
    assert_eq!(pick("zz", &records).as_deref(), Some("zz-1"));
    // A region without relays: the configured order.
    assert_eq!(pick("mars", &records).as_deref(), Some("eu-1"));
    // Nothing in the configured order: other regions by name.
    let rest = vec![records[0].clone(), records[3].clone()];
    assert_eq!(pick("eu", &rest).as_deref(), Some("ap-1"));
    assert_eq!(pick("eu", &[]), None);
}

#[test]
fn the_least_loaded_relay_by_participants_over_capacity_wins() {
    let now = Clock::manual().now();
    let records = vec![
        record("a", "eu", 10, 100, now), // 10 %
        record("b", "eu", 30, 500, now), // 6 %
        record("c", "eu", 6, 100, now),  // 6 %, but "b" < "c"
    ];
    let eu = region("eu");
    let criteria = Criteria {
        preferred: &eu,
        order: &[],
        now,
        heartbeat: BEAT,
        exclude: None,
    };
    assert_eq!(choose(&records, &criteria), Some(node("b")));
    let without_b = Criteria {
        exclude: Some(&node("b")),
        ..criteria
    };
    assert_eq!(choose(&records, &without_b), Some(node("c")));
}

#[test]
fn a_relay_is_stale_after_three_missed_beats_and_draining_or_full_ones_take_no_calls() {
    let clock = Clock::manual();
    let t0 = clock.now();
    let r = record("a", "eu", 0, 100, t0);
    assert!(r.is_placeable(t0 + BEAT * 3, BEAT));
    assert!(!r.is_fresh(t0 + BEAT * 3 + Duration::from_millis(1), BEAT));
    let mut draining = r.clone();
    draining.draining = true;
    assert!(draining.is_fresh(t0, BEAT) && !draining.is_placeable(t0, BEAT));
    let full = record("a", "eu", 100, 100, t0);
    assert!(!full.is_placeable(t0, BEAT));
}

#[tokio::test]
async fn calls_are_placed_least_loaded_in_the_local_region_and_stay_put() {
    let (pool, _clock) = pool();
    let eu1 = pool.register(&reg("eu-1", "eu", &[])).unwrap();
    let eu2 = pool.register(&reg("eu-2", "eu", &[])).unwrap();
    let _us1 = pool.register(&reg("us-1", "us", &[])).unwrap();
    beat(&eu1, 10, false);
    beat(&eu2, 20, false);

    let c1 = room("c-1");
    assert_eq!(pool.place(&c1, None), Ok(node("eu-1")));
    // A region hint wins over the local region.
    assert_eq!(
        pool.place(&room("c-us"), Some(&region("us"))),
        Ok(node("us-1"))
    );
    // eu-1 gets busier; the placed call sticks, new calls go to eu-2.
    beat(&eu1, 90, false);
    assert_eq!(pool.place(&c1, None), Ok(node("eu-1")));
    assert_eq!(pool.place(&room("c-2"), None), Ok(node("eu-2")));
    // A draining relay keeps its calls but gets no new ones.
    beat(&eu2, 0, true);
    assert_eq!(pool.place(&room("c-2"), None), Ok(node("eu-2")));
    assert_eq!(pool.place(&room("c-3"), None), Ok(node("eu-1")));
    let info = pool.snapshot();
    assert_eq!(info.len(), 3);
    assert!(info.iter().all(|r| r.fresh && r.connected));
    assert!(info.iter().any(|r| r.node == node("eu-2") && r.draining));
}

#[tokio::test]
async fn calls_placed_between_heartbeats_spread_over_equal_relays() {
    let (pool, _clock) = pool();
    let _a = pool.register(&reg("eu-a", "eu", &[])).unwrap();
    let _b = pool.register(&reg("eu-b", "eu", &[])).unwrap();
    let first = pool.place(&room("c-1"), None).unwrap();
    let second = pool.place(&room("c-2"), None).unwrap();
    assert_ne!(first, second);
}

#[tokio::test]
async fn rooms_re_announced_after_a_signaling_restart_keep_their_relay() {
    let (pool, _clock) = pool();
    let _idle = pool.register(&reg("eu-0", "eu", &[])).unwrap();
    let _busy = pool.register(&reg("eu-9", "eu", &["c-kept"])).unwrap();
    assert_eq!(pool.place(&room("c-kept"), None), Ok(node("eu-9")));
}
