//! The device check's connection test: a throwaway placement on a relay
//! that takes no seat, ends on stop, on disconnect, when its relay goes and
//! after 60 s, is limited to one at a time per connection; and closed rooms.

use std::time::Duration;

use protocol::client::{ClientToSignaling as C, ErrorCode, SignalingToClient as S};
use protocol::{NodeId, ParticipantId, RoomId};

use super::{Harness, error_code, join_msg, room};
use crate::calls::OfferDone;
use crate::calls::fake::{FakeRelays, node};
use crate::lobby::ConnId;
use crate::lobby::conntest::{MAX_TEST, MAX_TESTS_PER_CONN};
use crate::relays::RelayEvent;

/// The `connection_test_ready` in `msgs`: (call, participant, relay, grant).
fn test_ready(msgs: &[S]) -> Option<(RoomId, ParticipantId, NodeId, String)> {
    msgs.iter().find_map(|m| match m {
        S::ConnectionTestReady {
            call,
            participant,
            relay,
            grant,
            request: Some(5),
        } => Some((
            call.clone(),
            participant.clone(),
            relay.clone(),
            grant.expose().clone(),
        )),
        _ => None,
    })
}

fn start(h: &mut Harness, c: ConnId) -> Vec<S> {
    h.send(c, C::ConnectionTestStart { request: Some(5) })
}

/// A patient connection (no seat) with a running test on relay `r1`.
fn running() -> (
    Harness,
    std::sync::Arc<FakeRelays>,
    ConnId,
    RoomId,
    ParticipantId,
) {
    let fake = FakeRelays::new(&["r1"]);
    let mut h = Harness::with_calls(fake.clone());
    let c = h.patient();
    let out = start(&mut h, c);
    let (call, p, relay, grant) = test_ready(&out).expect("connection_test_ready");
    assert!(call.as_str().starts_with("t-"), "{call}");
    assert_eq!(relay, node("r1"));
    assert_eq!(grant, format!("grant/{call}/{p}/r1"));
    (h, fake, c, call, p)
}

fn closes(fake: &FakeRelays, call: &RoomId) -> usize {
    let want = format!("close {call}");
    fake.log().iter().filter(|l| **l == want).count()
}

fn ended(msgs: &[S], call: &RoomId) -> bool {
    msgs.iter()
        .any(|m| matches!(m, S::CallEnded { call: c } if c == call))
}

#[test]
fn a_test_is_placed_offers_go_to_its_relay_and_no_seat_is_taken() {
    let (mut h, fake, c, call, p) = running();
    assert_eq!(h.lobby.stats().seats, 0, "no seat");
    assert_eq!(h.lobby.stats().calls, 0, "not a call of the waiting rooms");
    // Clinicians of every organisation hear nothing about it.
    let doc = h.clinician("c1", "a");
    h.subscribe(doc);

    let out = h.send(
        c,
        C::CallOffer {
            call: call.clone(),
            sdp: "v=0 test".into(),
        },
    );
    assert!(out.is_empty(), "{out:?}");
    let job = h.offers.pop().expect("an offer job");
    assert_eq!(
        (&job.call, &job.participant, &job.node),
        (&call, &p, &node("r1"))
    );
    h.lobby.handle_offer_done(OfferDone {
        conn: c,
        call: call.clone(),
        participant: p.clone(),
        node: node("r1"),
        result: Ok(protocol::Sensitive::new("v=0 answer".into())),
    });
    h.drain();
    let out = h.take(c);
    assert!(
        matches!(&out[..], [S::CallAnswer { call: a, sdp }] if *a == call && sdp == "v=0 answer"),
        "{out:?}"
    );
    h.send(
        c,
        C::CallCandidate {
            call: call.clone(),
            candidate: "candidate:1 1 udp 1 127.0.0.1 5000 typ host".into(),
        },
    );
    assert!(fake.log().contains(&format!("candidate r1 {call} {p}")));
    assert!(h.take(doc).is_empty(), "the clinician saw nothing");
    assert_eq!(h.lobby.stats().seats, 0);

    // The page can still join afterwards on the same connection.
    let out = h.send(c, join_msg("a-nurse", "Ann", ""));
    assert!(matches!(out.first(), Some(S::Joined { .. })), "{out:?}");
}

#[test]
fn stop_closes_the_relay_room_and_only_the_owner_can_use_or_stop_it() {
    let (mut h, fake, c, call, _) = running();
    let other = h.patient();
    let out = h.send(
        other,
        C::CallOffer {
            call: call.clone(),
            sdp: "x".into(),
        },
    );
    assert_eq!(error_code(&out), Some(ErrorCode::NotFound));
    assert!(h.offers.is_empty());
    let out = h.send(other, C::ConnectionTestStop { call: call.clone() });
    assert_eq!(error_code(&out), Some(ErrorCode::NotFound));
    assert_eq!(closes(&fake, &call), 0);

    let out = h.send(c, C::ConnectionTestStop { call: call.clone() });
    assert!(out.is_empty(), "{out:?}");
    assert_eq!(closes(&fake, &call), 1, "{:?}", fake.log());
    // Gone: further messages for it are not_found, a second stop too.
    let out = h.send(
        c,
        C::CallOffer {
            call: call.clone(),
            sdp: "x".into(),
        },
    );
    assert_eq!(error_code(&out), Some(ErrorCode::NotFound));
    let out = h.send(c, C::ConnectionTestStop { call: call.clone() });
    assert_eq!(error_code(&out), Some(ErrorCode::NotFound));
    // A late answer for it is dropped.
    h.lobby.handle_offer_done(OfferDone {
        conn: c,
        call: call.clone(),
        participant: ParticipantId::random(),
        node: node("r1"),
        result: Ok(protocol::Sensitive::new("late".into())),
    });
    h.drain();
    assert!(h.take(c).iter().all(|m| !matches!(m, S::CallAnswer { .. })));
}

#[test]
fn a_disconnect_ends_the_test() {
    let (mut h, fake, c, call, _) = running();
    h.disconnect(c);
    assert_eq!(closes(&fake, &call), 1, "{:?}", fake.log());
    assert_eq!(h.lobby.poll_timeout(), None, "no timer left");
}

#[test]
fn a_test_ends_after_sixty_seconds_at_most() {
    let (mut h, fake, c, call, _) = running();
    assert!(
        h.lobby
            .poll_timeout()
            .is_some_and(|t| t <= h.now + MAX_TEST)
    );
    h.advance(MAX_TEST.saturating_sub(Duration::from_secs(1)));
    assert_eq!(closes(&fake, &call), 0);
    h.advance(Duration::from_secs(1));
    assert_eq!(closes(&fake, &call), 1);
    assert!(ended(&h.take(c), &call), "the page is told");
    // The next one may start.
    assert!(test_ready(&start(&mut h, c)).is_some());
}

#[test]
fn one_test_at_a_time_per_connection_and_a_few_in_all() {
    let (mut h, _fake, c, call, _) = running();
    let out = start(&mut h, c);
    assert_eq!(error_code(&out), Some(ErrorCode::RateLimited));
    assert!(test_ready(&out).is_none());
    // Another connection may test at the same time.
    let other = h.patient();
    assert!(test_ready(&start(&mut h, other)).is_some());
    // Stop and start again, up to the per-connection cap.
    h.send(c, C::ConnectionTestStop { call });
    for _ in 1..MAX_TESTS_PER_CONN {
        let (call, ..) = test_ready(&start(&mut h, c)).expect("another test");
        h.send(c, C::ConnectionTestStop { call });
    }
    let out = start(&mut h, c);
    assert_eq!(error_code(&out), Some(ErrorCode::RateLimited), "{out:?}");
}

#[test]
fn no_relay_is_a_clear_error_and_a_dead_relay_ends_the_test() {
    let fake = FakeRelays::new(&[]);
    let mut h = Harness::with_calls(fake.clone());
    let c = h.patient();
    let out = start(&mut h, c);
    assert!(
        out.iter().any(|m| matches!(m, S::Error { code: ErrorCode::NoRelay, message, request: Some(5) } if message.contains("no video relay"))),
        "{out:?}"
    );
    // Without calls at all (lobby-only), the same.
    let mut plain = Harness::new();
    let c2 = plain.patient();
    assert_eq!(error_code(&start(&mut plain, c2)), Some(ErrorCode::NoRelay));

    fake.add("r1");
    let (call, ..) = test_ready(&start(&mut h, c)).expect("placed once a relay is up");
    h.lobby.handle_relay_event(RelayEvent::CallOrphaned {
        call: call.clone(),
        from: node("r1"),
    });
    h.drain();
    assert!(ended(&h.take(c), &call));
    assert_eq!(closes(&fake, &call), 1);
}

#[test]
fn clinicians_cannot_start_a_connection_test() {
    let fake = FakeRelays::new(&["r1"]);
    let mut h = Harness::with_calls(fake);
    let doc = h.clinician("c1", "a");
    let out = start(&mut h, doc);
    assert_eq!(error_code(&out), Some(ErrorCode::Forbidden));
}

#[test]
fn a_closed_room_says_so_and_seats_no_new_patient() {
    let (_, mut closed) = room("a-shut", "a", false);
    closed.closed = true;
    let mut h = Harness::build(
        vec![(closed.id.clone(), closed)],
        crate::calls::Calls::disabled(),
    );
    let c = h.patient();
    let out = h.send(
        c,
        C::GetRoom {
            room: RoomId::new("a-shut").unwrap(),
        },
    );
    assert!(
        matches!(&out[..], [S::RoomInfo { closed: true, .. }]),
        "{out:?}"
    );
    let out = h.send(c, join_msg("a-shut", "Ann", ""));
    assert!(
        out.iter().any(|m| matches!(m, S::Error { code: ErrorCode::RoomClosed, message, .. } if message.contains("closed"))),
        "{out:?}"
    );
    assert_eq!(h.lobby.stats().seats, 0);
}

#[test]
fn closing_a_directory_room_keeps_the_waiting_patients_and_reopening_admits_new_ones() {
    use std::sync::Arc;
    let (dir, demo) = crate::directory::Directory::dev_demo();
    let dir = Arc::new(dir);
    let mut lobby = crate::lobby::Lobby::new(dir.clone(), crate::lobby::LobbySettings::default());
    let now = std::time::Instant::now();
    let join = || C::Join {
        room: demo.room.clone(),
        display_name: protocol::Sensitive::new("Ann".into()),
        intake: protocol::Sensitive::new([("reason".to_owned(), "cough".to_owned())].into()),
    };
    let outputs = |lobby: &mut crate::lobby::Lobby| {
        let mut v = Vec::new();
        while let Some(o) = lobby.poll_output() {
            if let crate::lobby::Output::Send(c, m) = o {
                v.push((c, m));
            }
        }
        v
    };
    let (a, b) = (ConnId(1), ConnId(2));
    lobby.handle_hello(a, crate::lobby::Peer::Patient);
    lobby.handle_hello(b, crate::lobby::Peer::Patient);
    lobby.handle_message(a, join(), now);
    assert!(
        outputs(&mut lobby)
            .iter()
            .any(|(_, m)| matches!(m, S::Joined { .. }))
    );

    dir.set_room_closed(&demo.tenant, &demo.room, true).unwrap();
    lobby.handle_message(b, join(), now);
    let out = outputs(&mut lobby);
    assert!(
        out.iter().any(|(c, m)| *c == b
            && matches!(
                m,
                S::Error {
                    code: ErrorCode::RoomClosed,
                    ..
                }
            )),
        "{out:?}"
    );
    assert!(
        out.iter().all(|(c, _)| *c == b),
        "the waiting patient is not disturbed: {out:?}"
    );
    assert_eq!(lobby.stats().seats, 1, "the waiting patient keeps the seat");

    dir.set_room_closed(&demo.tenant, &demo.room, false)
        .unwrap();
    lobby.handle_message(b, join(), now);
    assert!(
        outputs(&mut lobby)
            .iter()
            .any(|(c, m)| *c == b && matches!(m, S::Joined { .. }))
    );
    assert_eq!(lobby.stats().seats, 2);
}

#[test]
fn a_room_created_after_subscribing_reaches_clinicians_with_its_first_patient() {
    use std::sync::Arc;
    let (dir, demo) = crate::directory::Directory::dev_demo();
    let dir = Arc::new(dir);
    let mut lobby = crate::lobby::Lobby::new(dir.clone(), crate::lobby::LobbySettings::default());
    let now = std::time::Instant::now();
    let doc = ConnId(1);
    lobby.handle_hello(
        doc,
        crate::lobby::Peer::Clinician(protocol::client::StaffIdentity {
            clinician: protocol::ClinicianId::new("demo-clinician").unwrap(),
            tenant: demo.tenant.clone(),
            display_name: "Dr Demo".into(),
        }),
    );
    let drain = |lobby: &mut crate::lobby::Lobby| {
        let mut v = Vec::new();
        while let Some(o) = lobby.poll_output() {
            if let crate::lobby::Output::Send(c, m) = o {
                v.push((c, m));
            }
        }
        v
    };
    lobby.handle_message(doc, C::Subscribe { request: Some(1) }, now);
    drain(&mut lobby);
    let settings = crate::directory::rooms::RoomSettings {
        name: "Physio".into(),
        kind: crate::directory::RoomKind::Waiting,
        intake: vec![],
        hide_position: false,
    };
    let room = dir.create_room(&demo.tenant, None, settings).unwrap();
    let join = || C::Join {
        room: room.id.clone(),
        display_name: protocol::Sensitive::new("Ann".into()),
        intake: protocol::Sensitive::new(protocol::client::IntakeAnswers::new()),
    };
    for (n, patient) in [ConnId(2), ConnId(3)].into_iter().enumerate() {
        lobby.handle_hello(patient, crate::lobby::Peer::Patient);
        lobby.handle_message(patient, join(), now);
        let to_doc: Vec<S> = drain(&mut lobby)
            .into_iter()
            .filter(|(c, _)| *c == doc)
            .map(|(_, m)| m)
            .collect();
        let snapshot = to_doc.iter().position(|m| {
            matches!(m, S::QueueSnapshot { request: None, rooms } if rooms.iter().any(|r| r.room == room.id))
        });
        let arrived = to_doc
            .iter()
            .position(|m| matches!(m, S::PatientArrived { room: r, .. } if *r == room.id));
        assert!(arrived.is_some(), "{to_doc:?}");
        if n == 0 {
            assert!(
                snapshot < arrived && snapshot.is_some(),
                "snapshot first: {to_doc:?}"
            );
        } else {
            assert_eq!(snapshot, None, "only once: {to_doc:?}");
        }
    }
}
