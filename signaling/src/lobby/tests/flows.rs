//! Patient flows: join, positions, estimates, resume and grace, admission.

use std::time::Duration;

use protocol::Sensitive;
use protocol::client::{
    ClientToSignaling as C, ErrorCode, LeftReason, SeatState, SignalingToClient as S,
};

use super::{Harness, admit, error_code, is_ok, join_msg, last_status, rid};

#[test]
fn join_gives_a_seat_and_position_and_tells_the_clinicians() {
    let mut h = Harness::new();
    let doc = h.clinician("c1", "a");
    let snap = h.subscribe(doc);
    let Some(S::QueueSnapshot { request, rooms }) = snap.first() else {
        panic!("{snap:?}")
    };
    assert_eq!(*request, Some(1));
    let names: Vec<_> = rooms.iter().map(|r| r.room.as_str()).collect();
    assert_eq!(names, ["a-gp", "a-hidden", "a-nurse"]);
    assert!(rooms.iter().all(|r| r.entries.is_empty()));

    let c1 = h.patient();
    let out = h.send(c1, join_msg("a-gp", "Ann", "cough"));
    let Some(S::Joined {
        participant,
        resume_token,
        grace_secs,
        resumed,
        ..
    }) = out.first()
    else {
        panic!("{out:?}")
    };
    assert!(!resumed);
    assert_eq!(*grace_secs, 120);
    assert!(resume_token.expose().len() >= 43);
    assert_eq!(last_status(&out), Some((Some(1), Some(300))));

    let seen = h.take(doc);
    let [S::PatientArrived { room, entry }] = seen.as_slice() else {
        panic!("{seen:?}")
    };
    assert_eq!(room, &rid("a-gp"));
    assert_eq!(&entry.participant, participant);
    assert_eq!(entry.display_name.expose(), "Ann");
    assert_eq!(
        (entry.state, entry.position, entry.connected),
        (SeatState::Waiting, Some(1), true)
    );

    let (_, _, _) = h.join("a-gp", "Bob");
    h.take(doc);
    let snap = h.subscribe(doc);
    let Some(S::QueueSnapshot { rooms, .. }) = snap.first() else {
        panic!()
    };
    let gp: Vec<_> = rooms[0]
        .entries
        .iter()
        .map(|e| e.display_name.expose().as_str())
        .collect();
    assert_eq!(gp, ["Ann", "Bob"]);
}

#[test]
fn joins_are_validated() {
    let mut h = Harness::new();
    let doc = h.clinician("c1", "a");
    h.subscribe(doc);
    let c = h.patient();
    assert_eq!(
        error_code(&h.send(c, join_msg("nope", "Ann", "x"))),
        Some(ErrorCode::NotFound)
    );
    assert_eq!(
        error_code(&h.send(c, join_msg("a-gp", "Ann", " "))),
        Some(ErrorCode::BadRequest)
    );
    assert_eq!(
        error_code(&h.send(c, join_msg("a-gp", "  ", "x"))),
        Some(ErrorCode::BadRequest)
    );
    let unknown = C::Join {
        room: rid("a-nurse"),
        display_name: Sensitive::new("Ann".into()),
        intake: Sensitive::new([("ssn".to_owned(), "1".to_owned())].into()),
    };
    assert_eq!(error_code(&h.send(c, unknown)), Some(ErrorCode::BadRequest));
    assert!(h.take(doc).is_empty(), "refused joins are invisible");
    assert_eq!(h.lobby.stats().seats, 0);

    assert!(error_code(&h.send(c, join_msg("a-gp", "Ann", "x"))).is_none());
    assert_eq!(
        error_code(&h.send(c, join_msg("a-gp", "Ann", "x"))),
        Some(ErrorCode::Conflict)
    );
    let info = h.send(c, C::GetRoom { room: rid("a-gp") });
    assert!(matches!(&info[..], [S::RoomInfo { intake, .. }] if intake[0].required));
}

#[test]
fn positions_update_when_someone_ahead_leaves_or_is_admitted() {
    let mut h = Harness::new();
    let doc = h.clinician("c1", "a");
    h.subscribe(doc);
    let (c1, _, _) = h.join("a-gp", "Ann");
    let (c2, p2, _) = h.join("a-gp", "Bob");
    let (c3, p3, _) = h.join("a-gp", "Cat");
    h.take(c2);
    h.take(c3);
    h.take(doc);

    assert_eq!(h.send(c1, C::Leave), vec![S::Left]);
    assert_eq!(last_status(&h.take(c2)), Some((Some(1), Some(300))));
    assert_eq!(last_status(&h.take(c3)), Some((Some(2), Some(600))));
    let seen = h.take(doc);
    assert!(
        matches!(
            &seen[..],
            [S::PatientLeft {
                reason: LeftReason::Left,
                ..
            }]
        ),
        "{seen:?}"
    );

    let out = admit(&mut h, doc, &p2);
    assert_eq!(
        out.last(),
        Some(&S::Ok { request: Some(7) }),
        "ok comes after the effects"
    );
    assert!(out.iter().any(|m| matches!(m,
        S::PatientUpdated { entry, .. } if entry.participant == p2 && entry.state == SeatState::Admitted)));
    let to_p2 = h.take(c2);
    assert_eq!(
        to_p2,
        vec![S::Admitted {
            room: rid("a-gp"),
            clinician_name: "Dr c1".into()
        }]
    );
    assert_eq!(last_status(&h.take(c3)).and_then(|s| s.0), Some(1));
    let again = admit(&mut h, doc, &p2);
    assert_eq!(error_code(&again), Some(ErrorCode::Conflict));
    assert!(is_ok(&admit(&mut h, doc, &p3)));
}

#[test]
fn estimated_wait_follows_recent_service_times() {
    let mut h = Harness::new();
    let doc = h.clinician("c1", "a");
    let (_, p1, _) = h.join("a-gp", "Ann");
    let (c2, _, _) = h.join("a-gp", "Bob");
    let (c3, _, _) = h.join("a-gp", "Cat");
    h.take(c2);
    h.take(c3);
    h.advance(Duration::from_secs(60));
    admit(&mut h, doc, &p1);
    // One admission after 60 s: 60 s per patient ahead.
    assert_eq!(last_status(&h.take(c2)), Some((Some(1), Some(60))));
    assert_eq!(last_status(&h.take(c3)), Some((Some(2), Some(120))));
}

#[test]
fn a_hidden_room_tells_no_position() {
    let mut h = Harness::new();
    let doc = h.clinician("c1", "a");
    let (c1, _, _) = h.join("a-hidden", "Ann");
    let c2 = h.patient();
    let out = h.send(c2, join_msg("a-hidden", "Bob", ""));
    assert!(out.iter().any(|m| matches!(
        m,
        S::QueueStatus {
            position: None,
            estimated_wait_secs: None,
            ..
        }
    )));
    h.send(c1, C::Leave);
    assert!(h.take(c2).is_empty(), "no position change is pushed");
    let snap = h.subscribe(doc);
    let Some(S::QueueSnapshot { rooms, .. }) = snap.first() else {
        panic!()
    };
    let hidden = rooms.iter().find(|r| r.room == rid("a-hidden")).unwrap();
    assert!(hidden.hide_position);
    assert_eq!(
        hidden.entries[0].position,
        Some(1),
        "clinicians still see positions"
    );
}

#[test]
fn resume_within_grace_keeps_seat_and_position() {
    let mut h = Harness::new();
    let doc = h.clinician("c1", "a");
    h.subscribe(doc);
    let (c1, p1, token) = h.join("a-gp", "Ann");
    let (c2, _, _) = h.join("a-gp", "Bob");
    h.take(c2);
    h.take(doc);

    h.disconnect(c1);
    let seen = h.take(doc);
    assert!(
        matches!(&seen[..], [S::PatientUpdated { entry, .. }] if !entry.connected && entry.participant == p1)
    );
    h.advance(Duration::from_secs(119));
    assert!(
        h.take(doc)
            .iter()
            .all(|m| !matches!(m, S::PatientLeft { .. }))
    );

    let c1b = h.patient();
    let out = h.send(
        c1b,
        C::Resume {
            token: Sensitive::new(token.clone()),
        },
    );
    let Some(S::Joined {
        participant,
        resumed,
        resume_token,
        ..
    }) = out.first()
    else {
        panic!("{out:?}")
    };
    assert!(resumed);
    assert_eq!(participant, &p1);
    assert_eq!(resume_token.expose(), &token);
    assert_eq!(last_status(&out), Some((Some(1), Some(300))));
    assert!(h.take(c2).is_empty(), "Bob's position did not change");
    let seen = h.take(doc);
    assert!(matches!(&seen[..], [S::PatientUpdated { entry, .. }] if entry.connected));
    // The grace period that was running no longer releases the seat.
    h.advance(Duration::from_secs(10));
    assert_eq!(h.lobby.stats().seats, 2);
}

#[test]
fn resume_replaces_a_stale_connection() {
    let mut h = Harness::new();
    let (c1, p1, token) = h.join("a-gp", "Ann");
    let c1b = h.patient();
    let out = h.send(
        c1b,
        C::Resume {
            token: Sensitive::new(token),
        },
    );
    assert!(matches!(out.first(), Some(S::Joined { participant, .. }) if participant == &p1));
    assert_eq!(error_code(&h.take(c1)), Some(ErrorCode::Replaced));
    assert_eq!(h.closed, vec![c1]);
    // The replaced connection closing later does not start a grace period.
    h.disconnect(c1);
    h.advance(Duration::from_secs(500));
    assert_eq!(h.lobby.stats().seats, 1);
}

#[test]
fn after_the_grace_period_the_seat_is_released_and_clinicians_told() {
    let mut h = Harness::new();
    let doc = h.clinician("c1", "a");
    h.subscribe(doc);
    let (c1, p1, token) = h.join("a-gp", "Ann");
    let (c2, _, _) = h.join("a-gp", "Bob");
    h.take(c2);
    h.disconnect(c1);
    h.take(doc);
    h.advance(Duration::from_secs(121));
    let seen = h.take(doc);
    assert!(
        seen.iter().any(|m| matches!(m,
        S::PatientLeft { participant, reason: LeftReason::TimedOut, .. } if participant == &p1)),
        "{seen:?}"
    );
    assert_eq!(last_status(&h.take(c2)).and_then(|s| s.0), Some(1));
    let c1b = h.patient();
    let out = h.send(
        c1b,
        C::Resume {
            token: Sensitive::new(token),
        },
    );
    assert_eq!(error_code(&out), Some(ErrorCode::NotFound));
    let intake = h.send(
        doc,
        C::GetIntake {
            participant: p1,
            request: None,
        },
    );
    assert_eq!(error_code(&intake), Some(ErrorCode::NotFound));
}

#[test]
fn an_admitted_patient_resumes_into_the_consultation() {
    let mut h = Harness::new();
    let doc = h.clinician("c1", "a");
    let (c1, p1, token) = h.join("a-gp", "Ann");
    admit(&mut h, doc, &p1);
    h.disconnect(c1);
    let c1b = h.patient();
    let out = h.send(
        c1b,
        C::Resume {
            token: Sensitive::new(token),
        },
    );
    assert!(
        out.iter()
            .any(|m| matches!(m, S::Admitted { clinician_name, .. } if clinician_name == "Dr c1"))
    );
}
