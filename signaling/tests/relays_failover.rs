//! Failover in the relay pool, in-process: stale relays (manual clock) and
//! dropped links move their calls to a sibling in the same region first,
//! then the next region; with no relay calls are parked until one registers;
//! reconnecting relays replace their old link.

mod relays_support;

use std::time::Duration;

use protocol::control::SignalingToRelay;
use relays_support::inproc::{BEAT, beat, next_now, pool, reg};
use relays_support::{node, room};
use signaling::relays::{PlacementError, RelayEvent};

#[tokio::test]
async fn a_stale_relay_s_calls_move_to_a_sibling_in_its_region_first() {
    let (pool, clock) = pool();
    let eu1 = pool.register(&reg("eu-1", "eu", &[])).unwrap();
    let eu2 = pool.register(&reg("eu-2", "eu", &[])).unwrap();
    let us1 = pool.register(&reg("us-1", "us", &[])).unwrap();
    beat(&eu2, 50, false);
    let call = room("c-1");
    assert_eq!(pool.place(&call, None), Ok(node("eu-1")));
    let mut events = pool.subscribe();

    // eu-1 goes silent; the others keep beating.
    for _ in 0..3 {
        clock.advance(BEAT);
        beat(&eu2, 50, false);
        beat(&us1, 0, false);
        pool.sweep();
    }
    assert!(
        events.try_recv().is_err(),
        "3 s without a beat is not yet stale"
    );
    clock.advance(Duration::from_millis(10));
    pool.sweep();
    assert_eq!(
        next_now(&mut events),
        RelayEvent::CallMoved {
            call: call.clone(),
            from: node("eu-1"),
            to: node("eu-2"),
        }
    );
    assert_eq!(pool.placement_of(&call), Some(node("eu-2")));
    assert!(pool.snapshot().iter().all(|r| r.node != node("eu-1")));
    drop(eu1);
    assert!(
        events.try_recv().is_err(),
        "the dead link's end changes nothing more"
    );

    // Then eu-2 dies too (its connection drops): the next region.
    drop(eu2);
    assert_eq!(
        next_now(&mut events),
        RelayEvent::CallMoved {
            call: call.clone(),
            from: node("eu-2"),
            to: node("us-1"),
        }
    );
}

#[tokio::test]
async fn without_any_relay_calls_are_refused_or_parked_until_one_registers() {
    let (pool, _clock) = pool();
    assert_eq!(pool.place(&room("c-0"), None), Err(PlacementError::NoRelay));
    let mut events = pool.subscribe();
    let only = pool.register(&reg("eu-1", "eu", &[])).unwrap();
    assert_eq!(
        next_now(&mut events),
        RelayEvent::RelayUp { node: node("eu-1") }
    );
    let call = room("c-1");
    assert_eq!(pool.place(&call, None), Ok(node("eu-1")));
    drop(only);
    assert_eq!(
        next_now(&mut events),
        RelayEvent::CallOrphaned {
            call: call.clone(),
            from: node("eu-1"),
        }
    );
    assert_eq!(pool.place(&call, None), Err(PlacementError::NoRelay));
    let _us = pool.register(&reg("us-1", "us", &[])).unwrap();
    assert_eq!(
        next_now(&mut events),
        RelayEvent::CallMoved {
            call: call.clone(),
            from: node("eu-1"),
            to: node("us-1"),
        }
    );
    assert_eq!(
        next_now(&mut events),
        RelayEvent::RelayUp { node: node("us-1") }
    );
    assert_eq!(pool.place(&call, None), Ok(node("us-1")));
}

#[tokio::test]
async fn a_reconnecting_relay_replaces_its_old_link_and_keeps_its_calls() {
    let (pool, _clock) = pool();
    let mut old = pool.register(&reg("eu-1", "eu", &[])).unwrap();
    let _sibling = pool.register(&reg("eu-2", "eu", &[])).unwrap();
    let call = room("c-1");
    assert_eq!(pool.place(&call, None), Ok(node("eu-1")));
    let mut events = pool.subscribe();
    let _new = pool.register(&reg("eu-1", "eu", &["c-1"])).unwrap();
    assert_eq!(
        next_now(&mut events),
        RelayEvent::RelayUp { node: node("eu-1") }
    );
    assert_eq!(old.recv().await, None, "the old connection is closed");
    drop(old);
    assert!(
        events.try_recv().is_err(),
        "no failover for a replaced link"
    );
    assert_eq!(pool.place(&call, None), Ok(node("eu-1")));
}

#[tokio::test]
async fn a_returning_relay_is_told_to_close_rooms_that_moved_away() {
    let (pool, _clock) = pool();
    let eu1 = pool.register(&reg("eu-1", "eu", &[])).unwrap();
    let _eu2 = pool.register(&reg("eu-2", "eu", &[])).unwrap();
    let call = room("c-1");
    assert_eq!(pool.place(&call, None), Ok(node("eu-1")));
    drop(eu1);
    assert_eq!(pool.placement_of(&call), Some(node("eu-2")));
    let mut back = pool.register(&reg("eu-1", "eu", &["c-1"])).unwrap();
    assert_eq!(
        back.try_recv(),
        Some(SignalingToRelay::CloseRoom { room: call.clone() })
    );
    assert_eq!(pool.placement_of(&call), Some(node("eu-2")));
}

#[tokio::test]
async fn an_ice_failure_report_moves_the_call_only_if_the_relay_is_dead() {
    let (pool, clock) = pool();
    let eu1 = pool.register(&reg("eu-1", "eu", &[])).unwrap();
    let eu2 = pool.register(&reg("eu-2", "eu", &[])).unwrap();
    let call = room("c-1");
    let at = pool.place(&call, None).unwrap();
    let mut events = pool.subscribe();
    pool.relay_failed(&call, &at);
    assert!(events.try_recv().is_err());
    assert_eq!(pool.place(&call, None), Ok(at.clone()));
    // The relay went silent but the sweep has not run yet.
    clock.advance(BEAT * 4);
    let (alive, silent) = if at == node("eu-1") {
        (&eu2, &eu1)
    } else {
        (&eu1, &eu2)
    };
    beat(alive, 0, false);
    let _ = silent;
    pool.relay_failed(&call, &at);
    assert!(matches!(next_now(&mut events), RelayEvent::CallMoved { from, .. } if from == at));
    assert_ne!(pool.place(&call, None).unwrap(), at);
}
