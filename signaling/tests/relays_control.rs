//! The relays' control WebSocket (`/control`) on a real server: fake relays
//! register (or are refused), beat, answer forwarded offers, and drop —
//! moving their calls to a sibling, or parking them until a relay registers.

mod relays_support;

use protocol::control::{Heartbeat, RelayToSignaling, SignalingToRelay};
use protocol::{Grant, GrantRole, PROTOCOL_VERSION, ParticipantId};
use relays_support::{FakeRelay, SECRET, Server, next_event, node, register, room, unix_now};
use std::time::Duration;

use protocol::Region;
use signaling::clock::Clock;
use signaling::relays::{RelayEvent, RelayPool, RelaySettings};

#[tokio::test]
async fn a_registered_relay_beats_and_answers_forwarded_offers() {
    let server = Server::start().await;
    let mut relay = server.relay("eu-1", "eu", &[]).await;
    relay.beat(7, false).await;

    let call = room("c-1");
    let who = ParticipantId::new("p-1").unwrap();
    let at = server.pool.place(&call, None).unwrap();
    assert_eq!(at, node("eu-1"));
    let grant = server.pool.grant(&call, &who, GrantRole::Participant, &at);
    let offer = tokio::spawn({
        let (pool, at, grant) = (server.pool.clone(), at.clone(), grant);
        async move { pool.offer(&at, grant, "v=0 offer".into()).await }
    });
    let Some(SignalingToRelay::Offer {
        request,
        grant,
        sdp,
    }) = relay.recv().await
    else {
        panic!("expected an offer");
    };
    assert_eq!(sdp, "v=0 offer");
    let checked = Grant::verify(&grant, SECRET.as_bytes(), &at, unix_now()).unwrap();
    assert_eq!(
        (checked.room, checked.participant),
        (call.clone(), who.clone())
    );
    relay
        .send(&RelayToSignaling::Answer {
            request,
            participant: who,
            sdp: "v=0 answer".into(),
        })
        .await;
    assert_eq!(offer.await.unwrap().as_deref(), Ok("v=0 answer"));
    // The heartbeat sent before the answer has been applied.
    let info = server.pool.snapshot();
    assert_eq!(info.len(), 1);
    assert_eq!(info[0].load.participants, 7);
    assert!(info[0].connected && info[0].fresh);
    assert_eq!(info[0].calls, 1);
    server.stop().await;
}

#[tokio::test]
async fn bad_auth_wrong_version_or_no_register_get_an_error_and_close() {
    let server = Server::start().await;
    let cases = [
        (
            RelayToSignaling::Register(register("eu-1", "eu", &[], b"not-the-relay-secret")),
            "bad auth",
        ),
        (
            RelayToSignaling::Register({
                let mut r = register("eu-1", "eu", &[], SECRET.as_bytes());
                r.version = PROTOCOL_VERSION + 1;
                r
            }),
            "version",
        ),
        (
            RelayToSignaling::Heartbeat(Heartbeat::default()),
            "first message must be register",
        ),
    ];
    for (first, expected) in cases {
        let mut relay = FakeRelay::connect(server.addr).await;
        relay.send(&first).await;
        match relay.recv().await {
            Some(SignalingToRelay::Error { message }) => {
                assert!(message.contains(expected), "{message}");
            }
            other => panic!("expected an error, got {other:?}"),
        }
        assert_eq!(relay.recv().await, None, "the connection closes");
    }
    let mut garbage = FakeRelay::connect(server.addr).await;
    garbage.send_text("{{{").await;
    assert!(matches!(
        garbage.recv().await,
        Some(SignalingToRelay::Error { .. })
    ));
    assert_eq!(garbage.recv().await, None);
    assert!(server.pool.snapshot().is_empty());
    server.stop().await;
}

#[tokio::test]
async fn garbage_from_a_registered_relay_gets_errors_and_the_link_stays() {
    let server = Server::start().await;
    let mut relay = server.relay("eu-1", "eu", &[]).await;
    relay.send_text("not json").await;
    assert!(matches!(
        relay.recv().await,
        Some(SignalingToRelay::Error { .. })
    ));
    relay.send_binary(vec![0, 1, 2]).await;
    assert!(matches!(
        relay.recv().await,
        Some(SignalingToRelay::Error { .. })
    ));
    relay
        .send(&RelayToSignaling::Register(register(
            "eu-1",
            "eu",
            &[],
            SECRET.as_bytes(),
        )))
        .await;
    assert!(
        matches!(relay.recv().await, Some(SignalingToRelay::Error { message }) if message.contains("already"))
    );
    // An answer to an offer nobody made is ignored.
    relay
        .send(&RelayToSignaling::Refused {
            request: 999,
            reason: "x".into(),
        })
        .await;
    let call = room("c-1");
    let at = server.pool.place(&call, None).unwrap();
    let offer = tokio::spawn({
        let (pool, at) = (server.pool.clone(), at.clone());
        async move { pool.offer(&at, "g".into(), "o".into()).await }
    });
    let Some(SignalingToRelay::Offer { request, .. }) = relay.recv().await else {
        panic!("expected an offer");
    };
    relay
        .send(&RelayToSignaling::Refused {
            request,
            reason: "relay is full".into(),
        })
        .await;
    assert_eq!(
        offer.await.unwrap(),
        Err(signaling::relays::RelayCallError::Refused(
            "relay is full".into()
        ))
    );
    server.stop().await;
}

#[tokio::test]
async fn a_dropped_relay_s_call_moves_to_its_sibling_then_parks_until_a_relay_registers() {
    let server = Server::start().await;
    let mut events = server.pool.subscribe();
    let eu1 = server.relay("eu-1", "eu", &[]).await;
    let mut eu2 = server.relay("eu-2", "eu", &[]).await;
    eu2.beat(10, false).await;
    eu2.sync(&server.pool, &node("eu-2")).await;
    assert_eq!(
        next_event(&mut events).await,
        RelayEvent::RelayUp { node: node("eu-1") }
    );
    assert_eq!(
        next_event(&mut events).await,
        RelayEvent::RelayUp { node: node("eu-2") }
    );

    let call = room("c-1");
    assert_eq!(server.pool.place(&call, None), Ok(node("eu-1")));
    eu1.close().await;
    assert_eq!(
        next_event(&mut events).await,
        RelayEvent::CallMoved {
            call: call.clone(),
            from: node("eu-1"),
            to: node("eu-2")
        }
    );
    drop(eu2);
    assert_eq!(
        next_event(&mut events).await,
        RelayEvent::CallOrphaned {
            call: call.clone(),
            from: node("eu-2")
        }
    );
    assert!(server.pool.place(&call, None).is_err());
    let _us1 = server.relay("us-1", "us", &[]).await;
    assert_eq!(
        next_event(&mut events).await,
        RelayEvent::CallMoved {
            call: call.clone(),
            from: node("eu-2"),
            to: node("us-1")
        }
    );
    assert_eq!(
        next_event(&mut events).await,
        RelayEvent::RelayUp { node: node("us-1") }
    );
    assert_eq!(server.pool.place(&call, None), Ok(node("us-1")));
    server.stop().await;
}

#[tokio::test]
async fn a_relay_reconnecting_with_the_same_id_replaces_its_old_connection() {
    let server = Server::start().await;
    let mut events = server.pool.subscribe();
    let mut old = server.relay("eu-1", "eu", &[]).await;
    let _sibling = server.relay("eu-2", "eu", &[]).await;
    let call = room("c-1");
    assert_eq!(server.pool.place(&call, None), Ok(node("eu-1")));
    let _new = server.relay("eu-1", "eu", &["c-1"]).await;
    assert_eq!(old.recv().await, None, "the old connection is closed");
    for expected in ["eu-1", "eu-2", "eu-1"] {
        assert_eq!(
            next_event(&mut events).await,
            RelayEvent::RelayUp {
                node: node(expected)
            }
        );
    }
    assert_eq!(server.pool.place(&call, None), Ok(node("eu-1")));
    assert!(events.try_recv().is_err(), "the call did not move");
    server.stop().await;
}

#[tokio::test]
async fn shutdown_closes_relay_connections() {
    let server = Server::start().await;
    let mut relay = server.relay("eu-1", "eu", &[]).await;
    let stopping = tokio::spawn(server.stop());
    assert_eq!(relay.recv().await, None);
    stopping.await.unwrap();
}

#[tokio::test]
async fn the_sweeper_moves_calls_off_a_relay_whose_heartbeat_went_stale_and_closes_it() {
    let clock = Clock::manual();
    let server = Server::start_with(|services| {
        let mut settings = RelaySettings::new(SECRET, Region::new("eu").unwrap());
        settings.clock = clock.clone();
        services.relays = RelayPool::new(settings);
    })
    .await;
    let mut events = server.pool.subscribe();
    let mut eu1 = server.relay("eu-1", "eu", &[]).await;
    let mut eu2 = server.relay("eu-2", "eu", &[]).await;
    for expected in ["eu-1", "eu-2"] {
        assert_eq!(
            next_event(&mut events).await,
            RelayEvent::RelayUp {
                node: node(expected)
            }
        );
    }
    let call = room("c-1");
    assert_eq!(server.pool.place(&call, None), Ok(node("eu-1")));

    // eu-1 falls silent; eu-2 beats at 2 s.
    clock.advance(Duration::from_secs(2));
    eu2.beat(0, false).await;
    eu2.sync(&server.pool, &node("eu-2")).await;
    clock.advance(Duration::from_millis(1500));
    assert_eq!(
        next_event(&mut events).await,
        RelayEvent::CallMoved {
            call: call.clone(),
            from: node("eu-1"),
            to: node("eu-2")
        }
    );
    assert_eq!(
        eu1.recv().await,
        None,
        "signaling closed the stale relay's connection"
    );
    assert_eq!(server.pool.snapshot().len(), 1);
    server.stop().await;
}
