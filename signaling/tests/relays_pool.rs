//! The relay pool's link to one relay, in-process: registration checks,
//! offers forwarded with their grant and answered, refused, timed out or
//! failed by a dropped relay, and relay events and commands passed through.

mod relays_support;

use std::time::Duration;

use protocol::control::{RelayToSignaling, SignalingToRelay, register_auth};
use protocol::{Grant, GrantRole, PROTOCOL_VERSION, ParticipantId};
use relays_support::inproc::{next_now, pool, reg};
use relays_support::{SECRET, node, room, unix_now};
use signaling::relays::{RegisterError, RelayCallError, RelayEvent};

#[tokio::test]
async fn registration_checks_auth_and_version() {
    let (pool, _clock) = pool();
    let mut bad = reg("eu-1", "eu", &[]);
    bad.auth = register_auth(b"another-secret-entirely", &bad.node, bad.ts);
    assert_eq!(pool.register(&bad).err(), Some(RegisterError::Auth));
    let mut old = reg("eu-1", "eu", &[]);
    old.ts -= 3600;
    old.auth = register_auth(SECRET.as_bytes(), &old.node, old.ts);
    assert_eq!(pool.register(&old).err(), Some(RegisterError::Auth));
    let mut version = reg("eu-1", "eu", &[]);
    version.version = PROTOCOL_VERSION + 1;
    assert_eq!(pool.register(&version).err(), Some(RegisterError::Version));
    assert!(pool.snapshot().is_empty());
}

#[tokio::test]
async fn offers_are_forwarded_with_their_grant_and_answered_or_refused() {
    let (pool, _clock) = pool();
    let mut relay = pool.register(&reg("eu-1", "eu", &[])).unwrap();
    let call = room("c-1");
    let who = ParticipantId::new("p-1").unwrap();
    let at = pool.place(&call, None).unwrap();
    let grant = pool.grant(&call, &who, GrantRole::Participant, &at);
    let checked = Grant::verify(&grant, SECRET.as_bytes(), &at, unix_now()).unwrap();
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
    let mut relay = pool.register(&reg("eu-1", "eu", &[])).unwrap();
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
    let mut relay = pool.register(&reg("eu-1", "eu", &[])).unwrap();
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
        next_now(&mut events),
        RelayEvent::Renegotiate {
            call: call.clone(),
            participant: who.clone(),
            sdp: "o".into()
        }
    );
    assert_eq!(
        next_now(&mut events),
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
