//! Relay registry, placement and failover, driven in-process: relays are
//! fake [`RelayLink`]s (no sockets), time is a manual clock.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use protocol::control::{
    Heartbeat, Register, RelayLoad, RelayToSignaling, SignalingToRelay, register_auth,
};
use protocol::{Grant, GrantRole, NodeId, PROTOCOL_VERSION, ParticipantId, Region, RoomId};
use signaling::clock::Clock;
use signaling::relays::placement::{Criteria, choose};
use signaling::relays::registry::NodeRecord;
use signaling::relays::{
    PlacementError, RegisterError, RelayCallError, RelayEvent, RelayLink, RelayPool, RelaySettings,
};
use tokio::sync::broadcast;

const SECRET: &[u8] = b"relay-secret-of-decent-length";
const BEAT: Duration = Duration::from_secs(1);

fn node(s: &str) -> NodeId {
    NodeId::new(s).unwrap()
}
fn region(s: &str) -> Region {
    Region::new(s).unwrap()
}
fn room(s: &str) -> RoomId {
    RoomId::new(s).unwrap()
}
fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn register(id: &str, reg: &str, rooms: &[&str]) -> Register {
    let node = node(id);
    let ts = unix_now();
    Register {
        version: PROTOCOL_VERSION,
        auth: register_auth(SECRET, &node, ts),
        node,
        region: region(reg),
        advertise: vec!["127.0.0.1:5000".into()],
        capacity: 100,
        rooms: rooms.iter().map(|r| room(r)).collect(),
        ts,
    }
}

/// A pool in region `eu` trying `eu`, then `us`, on a manual clock.
fn pool() -> (Arc<RelayPool>, Clock) {
    let clock = Clock::manual();
    let mut settings = RelaySettings::new(SECRET, region("eu"));
    settings.region_order = vec![region("eu"), region("us")];
    settings.clock = clock.clone();
    (RelayPool::new(settings), clock)
}

fn beat(link: &RelayLink, participants: u32, draining: bool) {
    let hb = Heartbeat {
        load: RelayLoad {
            participants,
            ..RelayLoad::default()
        },
        draining,
    };
    assert_eq!(link.handle(RelayToSignaling::Heartbeat(hb)), None);
}

fn record(
    id: &str,
    reg: &str,
    participants: u32,
    capacity: u32,
    at: std::time::Instant,
) -> NodeRecord {
    let mut r = NodeRecord::new(node(id), region(reg), vec![], capacity, at);
    r.load.participants = participants;
    r
}

fn next_event(rx: &mut broadcast::Receiver<RelayEvent>) -> RelayEvent {
    rx.try_recv().expect("an event")
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
    let eu1 = pool.register(&register("eu-1", "eu", &[])).unwrap();
    let eu2 = pool.register(&register("eu-2", "eu", &[])).unwrap();
    let _us1 = pool.register(&register("us-1", "us", &[])).unwrap();
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
    let _a = pool.register(&register("eu-a", "eu", &[])).unwrap();
    let _b = pool.register(&register("eu-b", "eu", &[])).unwrap();
    let first = pool.place(&room("c-1"), None).unwrap();
    let second = pool.place(&room("c-2"), None).unwrap();
    assert_ne!(first, second);
}

#[tokio::test]
async fn a_stale_relay_s_calls_move_to_a_sibling_in_its_region_first() {
    let (pool, clock) = pool();
    let eu1 = pool.register(&register("eu-1", "eu", &[])).unwrap();
    let eu2 = pool.register(&register("eu-2", "eu", &[])).unwrap();
    let us1 = pool.register(&register("us-1", "us", &[])).unwrap();
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
        next_event(&mut events),
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
        next_event(&mut events),
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
    let only = pool.register(&register("eu-1", "eu", &[])).unwrap();
    assert_eq!(
        next_event(&mut events),
        RelayEvent::RelayUp { node: node("eu-1") }
    );
    let call = room("c-1");
    assert_eq!(pool.place(&call, None), Ok(node("eu-1")));
    drop(only);
    assert_eq!(
        next_event(&mut events),
        RelayEvent::CallOrphaned {
            call: call.clone(),
            from: node("eu-1"),
        }
    );
    assert_eq!(pool.place(&call, None), Err(PlacementError::NoRelay));
    let _us = pool.register(&register("us-1", "us", &[])).unwrap();
    assert_eq!(
        next_event(&mut events),
        RelayEvent::CallMoved {
            call: call.clone(),
            from: node("eu-1"),
            to: node("us-1"),
        }
    );
    assert_eq!(
        next_event(&mut events),
        RelayEvent::RelayUp { node: node("us-1") }
    );
    assert_eq!(pool.place(&call, None), Ok(node("us-1")));
}

#[tokio::test]
async fn a_reconnecting_relay_replaces_its_old_link_and_keeps_its_calls() {
    let (pool, _clock) = pool();
    let mut old = pool.register(&register("eu-1", "eu", &[])).unwrap();
    let _sibling = pool.register(&register("eu-2", "eu", &[])).unwrap();
    let call = room("c-1");
    assert_eq!(pool.place(&call, None), Ok(node("eu-1")));
    let mut events = pool.subscribe();
    let _new = pool.register(&register("eu-1", "eu", &["c-1"])).unwrap();
    assert_eq!(
        next_event(&mut events),
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
async fn rooms_re_announced_after_a_signaling_restart_keep_their_relay() {
    let (pool, _clock) = pool();
    let _idle = pool.register(&register("eu-0", "eu", &[])).unwrap();
    let _busy = pool.register(&register("eu-9", "eu", &["c-kept"])).unwrap();
    assert_eq!(pool.place(&room("c-kept"), None), Ok(node("eu-9")));
}

#[tokio::test]
async fn a_returning_relay_is_told_to_close_rooms_that_moved_away() {
    let (pool, _clock) = pool();
    let eu1 = pool.register(&register("eu-1", "eu", &[])).unwrap();
    let _eu2 = pool.register(&register("eu-2", "eu", &[])).unwrap();
    let call = room("c-1");
    assert_eq!(pool.place(&call, None), Ok(node("eu-1")));
    drop(eu1);
    assert_eq!(pool.placement_of(&call), Some(node("eu-2")));
    let mut back = pool.register(&register("eu-1", "eu", &["c-1"])).unwrap();
    assert_eq!(
        back.try_recv(),
        Some(SignalingToRelay::CloseRoom { room: call.clone() })
    );
    assert_eq!(pool.placement_of(&call), Some(node("eu-2")));
}

#[tokio::test]
async fn registration_checks_auth_and_version() {
    let (pool, _clock) = pool();
    let mut bad = register("eu-1", "eu", &[]);
    bad.auth = register_auth(b"another-secret-entirely", &bad.node, bad.ts);
    assert_eq!(pool.register(&bad).err(), Some(RegisterError::Auth));
    let mut old = register("eu-1", "eu", &[]);
    old.ts -= 3600;
    old.auth = register_auth(SECRET, &old.node, old.ts);
    assert_eq!(pool.register(&old).err(), Some(RegisterError::Auth));
    let mut version = register("eu-1", "eu", &[]);
    version.version = PROTOCOL_VERSION + 1;
    assert_eq!(pool.register(&version).err(), Some(RegisterError::Version));
    assert!(pool.snapshot().is_empty());
}

#[tokio::test]
async fn offers_are_forwarded_with_their_grant_and_answered_or_refused() {
    let (pool, _clock) = pool();
    let mut relay = pool.register(&register("eu-1", "eu", &[])).unwrap();
    let call = room("c-1");
    let who = ParticipantId::new("p-1").unwrap();
    let at = pool.place(&call, None).unwrap();
    let grant = pool.grant(&call, &who, GrantRole::Participant, &at);
    let checked = Grant::verify(&grant, SECRET, &at, unix_now()).unwrap();
    assert_eq!(
        (checked.room, checked.participant),
        (call.clone(), who.clone())
    );
    assert!(checked.exp >= unix_now() + 110);

    for refuse in [false, true] {
        let offer = tokio::spawn({
            let (pool, at, grant) = (pool.clone(), at.clone(), grant.clone());
            async move { pool.offer(&at, grant, "v=0 offer".into()).await }
        });
        let Some(SignalingToRelay::Offer {
            request,
            grant: g,
            sdp,
        }) = relay.recv().await
        else {
            panic!("expected an offer");
        };
        assert_eq!((g.as_str(), sdp.as_str()), (grant.as_str(), "v=0 offer"));
        let reply = if refuse {
            RelayToSignaling::Refused {
                request,
                reason: "full".into(),
            }
        } else {
            RelayToSignaling::Answer {
                request,
                participant: who.clone(),
                sdp: "v=0 answer".into(),
            }
        };
        assert_eq!(relay.handle(reply), None);
        let expected = if refuse {
            Err(RelayCallError::Refused("full".into()))
        } else {
            Ok("v=0 answer".to_owned())
        };
        assert_eq!(offer.await.unwrap(), expected);
    }
}

#[tokio::test(start_paused = true)]
async fn an_unanswered_offer_times_out_and_a_dropped_relay_fails_its_offers() {
    let (pool, _clock) = pool();
    let mut relay = pool.register(&register("eu-1", "eu", &[])).unwrap();
    let at = node("eu-1");
    let started = tokio::time::Instant::now();
    let result = pool.offer(&at, "g".into(), "o".into()).await;
    assert_eq!(result, Err(RelayCallError::Timeout));
    assert_eq!(started.elapsed(), Duration::from_secs(5));
    assert!(matches!(
        relay.recv().await,
        Some(SignalingToRelay::Offer { .. })
    ));

    let offer = tokio::spawn({
        let (pool, at) = (pool.clone(), at.clone());
        async move { pool.offer(&at, "g".into(), "o".into()).await }
    });
    assert!(matches!(
        relay.recv().await,
        Some(SignalingToRelay::Offer { .. })
    ));
    drop(relay);
    assert_eq!(offer.await.unwrap(), Err(RelayCallError::RelayGone));
    assert_eq!(
        pool.offer(&at, "g".into(), "o".into()).await,
        Err(RelayCallError::RelayGone)
    );
}

#[tokio::test]
async fn relay_events_and_commands_pass_through() {
    let (pool, _clock) = pool();
    let mut relay = pool.register(&register("eu-1", "eu", &[])).unwrap();
    let mut events = pool.subscribe();
    let call = room("c-1");
    let who = ParticipantId::new("p-1").unwrap();
    let at = pool.place(&call, None).unwrap();
    relay.handle(RelayToSignaling::Renegotiate {
        room: call.clone(),
        participant: who.clone(),
        sdp: "o".into(),
    });
    relay.handle(RelayToSignaling::ParticipantLeft {
        room: call.clone(),
        participant: who.clone(),
    });
    assert_eq!(
        next_event(&mut events),
        RelayEvent::Renegotiate {
            call: call.clone(),
            participant: who.clone(),
            sdp: "o".into()
        }
    );
    assert_eq!(
        next_event(&mut events),
        RelayEvent::ParticipantLeft {
            call: call.clone(),
            participant: who.clone()
        }
    );
    pool.candidate(&at, &call, &who, "candidate:1".into());
    pool.renegotiate_answer(&at, &call, &who, "a".into());
    pool.kick(&at, &call, &who);
    pool.close_call(&call);
    let expected = [
        SignalingToRelay::Candidate {
            room: call.clone(),
            participant: who.clone(),
            candidate: "candidate:1".into(),
        },
        SignalingToRelay::RenegotiateAnswer {
            room: call.clone(),
            participant: who.clone(),
            sdp: "a".into(),
        },
        SignalingToRelay::Kick {
            room: call.clone(),
            participant: who.clone(),
        },
        SignalingToRelay::CloseRoom { room: call.clone() },
    ];
    for e in expected {
        assert_eq!(relay.try_recv(), Some(e));
    }
    assert_eq!(pool.placement_of(&call), None);
    // Garbage from the relay gets an error reply, never a panic.
    assert!(matches!(
        relay.handle_text("{\"type\":\"nope\"}"),
        Some(SignalingToRelay::Error { .. })
    ));
    assert!(matches!(
        relay.handle_text("\u{0}"),
        Some(SignalingToRelay::Error { .. })
    ));
}

#[tokio::test]
async fn an_ice_failure_report_moves_the_call_only_if_the_relay_is_dead() {
    let (pool, clock) = pool();
    let eu1 = pool.register(&register("eu-1", "eu", &[])).unwrap();
    let eu2 = pool.register(&register("eu-2", "eu", &[])).unwrap();
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
    assert!(matches!(next_event(&mut events), RelayEvent::CallMoved { from, .. } if from == at));
    assert_ne!(pool.place(&call, None).unwrap(), at);
}
