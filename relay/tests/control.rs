//! The control link against a fake signaling server on 127.0.0.1:
//! registration, heartbeats, reconnect with back-off, refusals and drain.
//!
//! These run on real time with short intervals: with tokio's paused clock,
//! auto-advance races real TCP sockets (the clock jumps to the next timer
//! before loopback data is seen as readable), so heartbeats "arrive" minutes
//! late. Assertions use lower bounds (timers never fire early) and generous
//! upper bounds.

// Real time on purpose (see above): the test reads the clock.
#![allow(clippy::disallowed_methods)]

mod common;

use std::time::Duration;

use common::{FakeSignaling, SECRET, client_offer, grant, node, unix_now};
use protocol::control::{RelayToSignaling, SignalingToRelay, verify_register_auth};
use protocol::{NodeId, ParticipantId, Region, RoomId};
use relay::control::{Backoff, ControlOptions};
use relay::{Config, Relay, RelayHandle};
use std::time::Instant;

/// Back-off of 100, 200, 400, 800 ms, no jitter.
fn options() -> ControlOptions {
    ControlOptions {
        backoff: Backoff::new(Duration::from_millis(100), Duration::from_millis(800), 0.0),
        register_timeout: Duration::from_secs(10),
    }
}

/// Slack for a timer that fired late on a busy machine.
const LATE: Duration = Duration::from_millis(700);

async fn start(signaling: &FakeSignaling) -> RelayHandle {
    let mut config = Config::local(node(), SECRET);
    config.standalone = false;
    config.signaling = vec![signaling.url.clone()];
    config.region = Region::new("eu-west").unwrap();
    config.capacity = 42;
    Relay::start_with(config, options()).await.unwrap()
}

#[tokio::test]
async fn registers_with_valid_auth_then_heartbeats_at_the_interval() {
    let mut signaling = FakeSignaling::start().await;
    let relay = start(&signaling).await;
    let mut conn = signaling.accept().await;

    let reg = conn.register(200).await;
    assert_eq!(reg.version, protocol::PROTOCOL_VERSION);
    assert_eq!(reg.node, node());
    assert_eq!(reg.region.as_str(), "eu-west");
    assert_eq!(reg.capacity, 42);
    assert!(reg.rooms.is_empty());
    let advertised: Vec<String> = relay.udp_addrs().iter().map(ToString::to_string).collect();
    assert_eq!(reg.advertise, advertised);
    assert!(reg.advertise[0].starts_with("127.0.0.1:"));
    assert!(verify_register_auth(SECRET.as_bytes(), &reg, unix_now()));
    assert!(!verify_register_auth(
        b"some-other-secret-000",
        &reg,
        unix_now()
    ));

    // Registered was sent just before `registered`; beat k (from 0) is sent
    // on the interval's schedule: k × 200 ms after that.
    let registered = Instant::now();
    for k in 0..4u32 {
        let RelayToSignaling::Heartbeat(hb) = conn.recv().await else {
            panic!("expected a heartbeat");
        };
        assert!(!hb.draining);
        assert_eq!(hb.load.participants, 0);
        assert_eq!(hb.load.rooms, 0);
        let at = registered.elapsed();
        let due = Duration::from_millis(200) * k;
        assert!(
            at + Duration::from_millis(5) >= due && at < due + LATE,
            "heartbeat {k} at {at:?}, due at {due:?}"
        );
    }
    relay.shutdown().await;
}

#[tokio::test]
async fn reconnects_with_growing_backoff_and_registers_again() {
    let mut signaling = FakeSignaling::start().await;
    let relay = start(&signaling).await;

    // Signaling drops the relay four times before registration completes:
    // the relay waits 100, 200, 400, 800 ms before its next attempts.
    let mut dropped_at = Vec::new();
    let mut accepted_at = Vec::new();
    for _ in 0..4 {
        let mut conn = signaling.accept().await;
        accepted_at.push(Instant::now());
        assert!(matches!(conn.recv().await, RelayToSignaling::Register(_)));
        drop(conn);
        dropped_at.push(Instant::now());
    }
    let mut conn = signaling.accept().await;
    accepted_at.push(Instant::now());
    let gaps: Vec<Duration> = dropped_at
        .iter()
        .zip(&accepted_at[1..])
        .map(|(d, a)| *a - *d)
        .collect();
    for (gap, ms) in gaps.iter().zip([100, 200, 400, 800]) {
        let delay = Duration::from_millis(ms);
        assert!(
            *gap >= delay && *gap < delay + LATE,
            "reconnect gaps {gaps:?}, expected about 100, 200, 400, 800 ms"
        );
    }
    // Registration works on the fifth connection and resets the back-off:
    // after the next drop the relay is back within the initial delay, not 800 ms.
    conn.register(5000).await;
    assert!(matches!(conn.recv().await, RelayToSignaling::Heartbeat(_)));
    drop(conn);
    let dropped = Instant::now();
    let mut conn = signaling.accept().await;
    let gap = dropped.elapsed();
    assert!(
        gap >= Duration::from_millis(100) && gap < Duration::from_millis(700),
        "after a good session the back-off restarts at 100 ms: {gap:?}"
    );
    let reg = conn.register(5000).await;
    assert_eq!(reg.node, node());
    relay.shutdown().await;
}

#[tokio::test]
async fn offers_with_bad_grants_are_refused_with_the_reason() {
    let mut signaling = FakeSignaling::start().await;
    let relay = start(&signaling).await;
    let mut conn = signaling.accept().await;
    conn.register(1000).await;

    let good = grant("room-1", "p-1");
    // A longer expiry with the genuine grant's signature.
    let forged = {
        let genuine = good.sign(SECRET.as_bytes());
        let mut edited = good.clone();
        edited.exp += 10_000;
        let edited = edited.sign(b"x");
        let payload = edited.split_once('.').unwrap().0;
        let signature = genuine.split_once('.').unwrap().1;
        format!("{payload}.{signature}")
    };
    let mut expired = good.clone();
    expired.exp = unix_now() - 1;
    let mut other_node = good.clone();
    other_node.node = NodeId::new("relay-elsewhere").unwrap();
    let cases = [
        (1, forged, "signature"),
        (2, expired.sign(SECRET.as_bytes()), "expired"),
        (3, other_node.sign(SECRET.as_bytes()), "another relay node"),
        (4, "not-a-grant".to_owned(), "malformed"),
    ];
    for (request, token, why) in cases {
        conn.send(&SignalingToRelay::Offer {
            request,
            grant: token,
            sdp: "v=0\r\n".into(),
        })
        .await;
        match conn.recv_non_heartbeat().await {
            RelayToSignaling::Refused { request: r, reason } => {
                assert_eq!(r, request);
                assert!(reason.contains(why), "request {request}: {reason:?}");
            }
            other => panic!("expected refused, got {other:?}"),
        }
    }
    // Garbage does not end the session: the relay reports an error and goes on.
    conn.send_raw("{\"type\":\"offer\"}").await;
    assert!(matches!(
        conn.recv_non_heartbeat().await,
        RelayToSignaling::Error { .. }
    ));
    assert!(matches!(conn.recv().await, RelayToSignaling::Heartbeat(_)));
    relay.shutdown().await;
}

#[tokio::test]
async fn draining_refuses_new_rooms_and_says_so_at_once() {
    let mut signaling = FakeSignaling::start().await;
    let relay = start(&signaling).await;
    let mut conn = signaling.accept().await;
    conn.register(2000).await;
    let RelayToSignaling::Heartbeat(first) = conn.recv().await else {
        panic!("expected a heartbeat");
    };
    assert!(!first.draining);

    let before = Instant::now();
    relay.drain();
    let RelayToSignaling::Heartbeat(hb) = conn.recv().await else {
        panic!("expected a heartbeat");
    };
    assert!(hb.draining);
    assert!(
        before.elapsed() < Duration::from_millis(1500),
        "sent at once, not at the next beat (2 s)"
    );

    let token = grant("room-new", "p-1").sign(SECRET.as_bytes());
    conn.send(&SignalingToRelay::Offer {
        request: 9,
        grant: token,
        sdp: "v=0\r\n".into(),
    })
    .await;
    match conn.recv_non_heartbeat().await {
        RelayToSignaling::Refused { request, reason } => {
            assert_eq!(request, 9);
            assert!(reason.contains("draining"), "{reason:?}");
        }
        other => panic!("expected refused, got {other:?}"),
    }
    let RelayToSignaling::Heartbeat(hb) = conn.recv().await else {
        panic!("expected a heartbeat");
    };
    assert!(hb.draining);
    relay.shutdown().await;
}

#[tokio::test]
async fn offers_are_answered_rooms_reannounced_and_kicks_reported() {
    let mut signaling = FakeSignaling::start().await;
    let relay = start(&signaling).await;
    let mut conn = signaling.accept().await;
    conn.register(200).await;

    let room = RoomId::new("room-a").unwrap();
    let (alice, bob) = (
        ParticipantId::new("alice").unwrap(),
        ParticipantId::new("bob").unwrap(),
    );
    for (request, who) in [(1, &alice), (2, &bob)] {
        conn.send(&SignalingToRelay::Offer {
            request,
            grant: grant("room-a", who.as_str()).sign(SECRET.as_bytes()),
            sdp: client_offer(),
        })
        .await;
        match conn.recv_non_heartbeat().await {
            RelayToSignaling::Answer {
                request: r,
                participant,
                sdp,
            } => {
                assert_eq!((r, &participant), (request, who));
                assert!(sdp.contains("a=ice-lite"), "{sdp}");
                let port = relay.udp_addrs()[0].port().to_string();
                assert!(sdp.contains(&port), "the answer names the worker's port");
            }
            other => panic!("expected an answer, got {other:?}"),
        }
    }
    // Heartbeats report the load.
    loop {
        if let RelayToSignaling::Heartbeat(hb) = conn.recv().await
            && hb.load.participants == 2
        {
            assert_eq!(hb.load.rooms, 1);
            break;
        }
    }

    // Signaling restarts: the relay comes back and re-announces its room.
    drop(conn);
    let mut conn = signaling.accept().await;
    let reg = conn.register(200).await;
    assert_eq!(reg.rooms, vec![room.clone()]);

    // While draining, the existing room still takes joins; a new room does not.
    relay.drain();
    for (request, room_name, answered) in [(3, "room-a", true), (4, "room-b", false)] {
        conn.send(&SignalingToRelay::Offer {
            request,
            grant: grant(room_name, "carol").sign(SECRET.as_bytes()),
            sdp: client_offer(),
        })
        .await;
        match (conn.recv_non_heartbeat().await, answered) {
            (RelayToSignaling::Answer { request: r, .. }, true) => assert_eq!(r, request),
            (RelayToSignaling::Refused { request: r, reason }, false) => {
                assert_eq!(r, request);
                assert!(reason.contains("draining"), "{reason}");
            }
            (other, _) => panic!("offer to {room_name} while draining: {other:?}"),
        }
    }
    conn.send(&SignalingToRelay::Kick {
        room: room.clone(),
        participant: ParticipantId::new("carol").unwrap(),
    })
    .await;
    assert!(matches!(
        conn.recv_non_heartbeat().await,
        RelayToSignaling::ParticipantLeft { .. }
    ));

    // A kick ends alice's session; signaling hears she left.
    conn.send(&SignalingToRelay::Kick {
        room: room.clone(),
        participant: alice.clone(),
    })
    .await;
    assert_eq!(
        conn.recv_non_heartbeat().await,
        RelayToSignaling::ParticipantLeft {
            room: room.clone(),
            participant: alice,
        }
    );
    // Closing the room ends bob's.
    conn.send(&SignalingToRelay::CloseRoom { room: room.clone() })
        .await;
    assert_eq!(
        conn.recv_non_heartbeat().await,
        RelayToSignaling::ParticipantLeft {
            room: room.clone(),
            participant: bob,
        }
    );
    let stats = relay.stats_when(|s| s.participants == 0).await;
    assert_eq!(stats.rooms, 0);
    relay.shutdown().await;
}
