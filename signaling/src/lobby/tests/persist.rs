//! Write-through of seat changes to a `SeatStore` and the rebuild of a
//! lobby from it (issue 7): the store follows the lobby's queues through
//! every seat change, and a lobby restored on "another node" gives the same
//! seats, positions, tokens, names and calls.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use protocol::client::{
    ClientToSignaling as C, ErrorCode, SeatState as WireState, SignalingToClient as S,
    TransferTarget,
};
use protocol::{ClinicianId, ParticipantId, Sensitive, TenantId};

use super::calls::ready;
use super::{Harness, admit, error_code, is_ok, join_msg, last_status, rid};
use crate::calls::CallRelays as _;
use crate::calls::fake::{FakeRelays, node};
use crate::lobby::persist::{self, StoredSeat};
use crate::store::WallClock;
use crate::store::seats::{MemorySeats, SeatState, SeatStore};

const TTL: Duration = Duration::from_secs(3600);
const ROOMS: [(&str, &str); 4] = [
    ("a", "a-gp"),
    ("a", "a-nurse"),
    ("a", "a-hidden"),
    ("b", "b-gp"),
];

fn t(s: &str) -> TenantId {
    TenantId::new(s).unwrap()
}

/// Wall time of the first node's "now" in these tests.
fn t0() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_800_000_000)
}

/// Turns write-through on, with the harness's now at [`t0`].
fn recording(h: &mut Harness) {
    h.lobby.record_seat_changes(WallClock::pinned(h.now, t0()));
}

/// Writes the lobby's recorded changes to `store`, in order.
fn write(h: &mut Harness, store: &dyn SeatStore) {
    for change in h.lobby.take_seat_changes() {
        persist::apply(store, &change, TTL).unwrap();
    }
}

/// The store holds exactly the lobby's seats, queues and states.
fn assert_same(h: &mut Harness, store: &dyn SeatStore) {
    write(h, store);
    for (tenant, room) in ROOMS {
        let lobby: Vec<ParticipantId> = h
            .lobby
            .rooms
            .get(&rid(room))
            .map(|q| q.waiting.iter().cloned().collect())
            .unwrap_or_default();
        assert_eq!(
            store.queue(&t(tenant), &rid(room)).unwrap(),
            lobby,
            "{room}"
        );
    }
    let mut stored: Vec<ParticipantId> = ["a", "b"]
        .iter()
        .flat_map(|x| store.seats_of(&t(x)).unwrap())
        .map(|s| s.participant)
        .collect();
    stored.sort();
    let mut seats: Vec<ParticipantId> = h.lobby.seats.keys().cloned().collect();
    seats.sort();
    assert_eq!(stored, seats);
    for (p, seat) in &h.lobby.seats {
        let r = store.get(p).unwrap().unwrap();
        assert_eq!((&r.room, r.token_hash), (&seat.room, seat.token_hash));
        let admitted_by = match &seat.state {
            super::super::seat::SeatState::Waiting => None,
            super::super::seat::SeatState::Admitted { clinician, .. } => Some(clinician),
        };
        let stored_by = match &r.state {
            SeatState::Waiting => None,
            SeatState::Admitted { clinician, .. } => Some(clinician),
        };
        assert_eq!(admitted_by, stored_by);
        assert_eq!(r.call, seat.call);
        let d = store.details(p).unwrap().unwrap();
        assert_eq!(d.display_name, seat.display_name);
    }
}

fn id(s: &str) -> ClinicianId {
    ClinicianId::new(s).unwrap()
}

#[test]
fn the_store_follows_the_lobby_through_every_seat_change() {
    let store = MemorySeats::new();
    let mut h = Harness::new();
    recording(&mut h);
    let doc = h.clinician("c1", "a");
    let doc2 = h.clinician("c2", "a");
    let (_, ann, _) = h.join("a-gp", "Ann");
    let (_, bob, _) = h.join("a-gp", "Bob");
    let (_, cy, _) = h.join("a-gp", "Cy");
    let (dan_c, dan, _) = h.join("a-gp", "Dan");
    let (eve_c, _, _) = h.join("a-nurse", "Eve");
    h.join("b-gp", "Zed");
    assert_same(&mut h, &store);

    // Admitted, then back to the front of the queue.
    assert!(is_ok(&admit(&mut h, doc, &bob)));
    assert_same(&mut h, &store);
    let back = C::ReturnToQueue {
        participant: bob.clone(),
        request: None,
    };
    assert!(is_ok(&h.send(doc, back)));
    assert_same(&mut h, &store);
    assert_eq!(store.queue(&t("a"), &rid("a-gp")).unwrap()[0], bob);

    // Admitted, handed to another clinician, then sent to another room's back.
    assert!(is_ok(&admit(&mut h, doc, &ann)));
    let to_doc2 = C::Transfer {
        participant: ann.clone(),
        to: TransferTarget::Clinician(id("c2")),
        request: None,
    };
    assert!(is_ok(&h.send(doc, to_doc2)));
    assert_same(&mut h, &store);
    let to_room = C::Transfer {
        participant: ann.clone(),
        to: TransferTarget::Room(rid("a-nurse")),
        request: None,
    };
    assert!(is_ok(&h.send(doc2, to_room)));
    assert_same(&mut h, &store);

    // Denied, left, timed out, consultation ended: gone with the details.
    let deny = C::Deny {
        participant: cy.clone(),
        message: None,
        request: None,
    };
    assert!(is_ok(&h.send(doc, deny)));
    h.send(dan_c, C::Leave);
    h.disconnect(eve_c);
    h.advance(Duration::from_secs(121));
    assert!(is_ok(&admit(&mut h, doc, &bob)));
    let end = C::EndConsultation {
        participant: bob.clone(),
        request: None,
    };
    assert!(is_ok(&h.send(doc, end)));
    assert_same(&mut h, &store);
    for p in [&bob, &cy, &dan] {
        assert_eq!(store.details(p).unwrap(), None);
    }
    assert_eq!(h.lobby.seats.len(), 2, "Ann (a-nurse) and Zed are left");
}

/// Node A's seats, read back as node B reads them after A died.
fn killed(mut a: Harness) -> (MemorySeats, Vec<StoredSeat>) {
    let store = MemorySeats::new();
    write(&mut a, &store);
    drop(a);
    let seats = persist::load_tenants(&store, [t("a"), t("b")]).unwrap();
    (store, seats)
}

/// A lobby rebuilt from `seats` one minute after [`t0`].
fn restored(seats: Vec<StoredSeat>) -> Harness {
    let mut b = Harness::new();
    let wall = WallClock::pinned(b.now, t0() + Duration::from_secs(60));
    b.lobby.restore_at(seats, b.now, wall);
    b
}

#[test]
fn a_restored_lobby_has_the_same_seats_positions_estimates_and_tokens() {
    let mut a = Harness::new();
    recording(&mut a);
    let mut joined = Vec::new();
    for name in ["Ann", "Bob", "Cy"] {
        let c = a.patient();
        let out = a.send(c, join_msg("a-gp", name, "a sore throat"));
        let Some(S::Joined {
            participant,
            resume_token,
            ..
        }) = out.first()
        else {
            panic!("{out:?}")
        };
        let status = last_status(&out);
        joined.push((participant.clone(), resume_token.expose().clone(), status));
        a.advance(Duration::from_secs(10));
    }
    a.join("a-hidden", "Hid");
    let (_, zed, zed_token) = a.join("b-gp", "Zed");
    let (_, seats) = killed(a);
    let mut b = restored(seats);

    // Positions and estimates as before, the same seat for the same token.
    for (i, (p, token, status)) in joined.iter().enumerate().rev() {
        let c = b.patient();
        let out = b.send(
            c,
            C::Resume {
                token: Sensitive::new(token.clone()),
            },
        );
        let Some(S::Joined {
            participant,
            resumed,
            room,
            ..
        }) = out.first()
        else {
            panic!("{out:?}")
        };
        assert_eq!((participant, *resumed, room), (p, true, &rid("a-gp")));
        let position = u32::try_from(i + 1).unwrap();
        assert_eq!(
            last_status(&out),
            Some((Some(position), Some(300 * u64::from(position))))
        );
        assert_eq!(last_status(&out), *status, "as node A told the patient");
    }

    // A clinician of `a` sees the same patients, names and waits.
    let doc = b.clinician("c1", "a");
    let snap = b.subscribe(doc);
    let Some(S::QueueSnapshot { rooms, .. }) = snap.first() else {
        panic!("{snap:?}")
    };
    let gp = rooms.iter().find(|r| r.room == rid("a-gp")).unwrap();
    let seen: Vec<_> = gp
        .entries
        .iter()
        .map(|e| {
            (
                e.participant.clone(),
                e.display_name.expose().clone(),
                e.position,
                e.waited_secs,
                e.connected,
            )
        })
        .collect();
    let expected: Vec<_> = joined
        .iter()
        .zip(["Ann", "Bob", "Cy"])
        .enumerate()
        .map(|(i, ((p, ..), name))| {
            let pos = u32::try_from(i + 1).unwrap();
            // Joined 10 s apart; node A stopped 30 s after Ann; B is 60 s on.
            (
                p.clone(),
                name.to_owned(),
                Some(pos),
                60 - 10 * u64::from(pos - 1),
                true,
            )
        })
        .collect();
    assert_eq!(seen, expected);
    let hidden = rooms.iter().find(|r| r.room == rid("a-hidden")).unwrap();
    assert_eq!(hidden.entries.len(), 1);
    assert!(!hidden.entries[0].connected, "not resumed yet");

    // Intake answers are back; the other organisation's seat stays out of reach.
    let intake = b.send(
        doc,
        C::GetIntake {
            participant: joined[0].0.clone(),
            request: None,
        },
    );
    assert!(matches!(intake.first(), Some(S::Intake { answers, .. })
        if answers.expose().get("reason").map(String::as_str) == Some("a sore throat")));
    for msg in [
        C::GetIntake {
            participant: zed.clone(),
            request: None,
        },
        C::Admit {
            participant: zed.clone(),
            request: None,
        },
    ] {
        assert_eq!(error_code(&b.send(doc, msg)), Some(ErrorCode::NotFound));
    }
    let other = b.clinician("z1", "b");
    let snap = b.subscribe(other);
    let Some(S::QueueSnapshot { rooms, .. }) = snap.first() else {
        panic!("{snap:?}")
    };
    let ids: Vec<_> = rooms
        .iter()
        .flat_map(|r| r.entries.iter().map(|e| e.participant.clone()))
        .collect();
    assert_eq!(ids, [zed]);
    let zc = b.patient();
    let out = b.send(
        zc,
        C::Resume {
            token: Sensitive::new(zed_token),
        },
    );
    assert!(matches!(out.first(), Some(S::Joined { resumed: true, .. })));
}

#[test]
fn restored_seats_start_their_grace_period_and_a_resumed_one_keeps_its_place() {
    let mut a = Harness::new();
    recording(&mut a);
    let (_, _ann, _) = a.join("a-gp", "Ann");
    let (_, bob, bob_token) = a.join("a-gp", "Bob");
    let (_, seats) = killed(a);
    let mut b = restored(seats);
    b.advance(Duration::from_secs(100));
    let c = b.patient();
    let out = b.send(
        c,
        C::Resume {
            token: Sensitive::new(bob_token),
        },
    );
    assert!(matches!(out.first(), Some(S::Joined { participant, .. }) if *participant == bob));
    assert_eq!(last_status(&out), Some((Some(2), Some(600))));
    // Ann never came back: her seat goes at the end of the grace period,
    // and Bob moves up.
    b.advance(Duration::from_secs(21));
    assert_eq!(b.lobby.seats.len(), 1);
    assert_eq!(last_status(&b.take(c)), Some((Some(1), Some(300))));
}

#[test]
fn an_admitted_patient_is_restored_in_its_call_and_the_consultation_can_end() {
    let store = MemorySeats::new();
    let mut a = Harness::with_calls(FakeRelays::new(&["r1"]));
    recording(&mut a);
    let doc = a.clinician("c1", "a");
    let (pc, p2, token) = a.join("a-gp", "Ann");
    a.take(pc);
    let out = admit(&mut a, doc, &p2);
    let (call2, ..) = ready(&out).expect("call_ready");
    write(&mut a, &store);
    let r = store.get(&p2).unwrap().unwrap();
    assert_eq!(
        (r.call.as_ref(), r.relay.as_ref()),
        (Some(&call2), Some(&node("r1")))
    );
    drop(a);

    // Node B: the relay re-announced the call; the lobby is rebuilt.
    let fake = FakeRelays::new(&["r1"]);
    fake.place(&call2, None).unwrap();
    let seats = persist::load_tenants(&store, [t("a")]).unwrap();
    let mut b = Harness::with_calls(fake.clone());
    b.lobby.restore(seats, b.now);
    recording(&mut b);
    let doc = b.clinician("c1", "a");
    let snap = b.subscribe(doc);
    let Some(S::QueueSnapshot { rooms, .. }) = snap.first() else {
        panic!("{snap:?}")
    };
    let entry = rooms
        .iter()
        .flat_map(|r| r.entries.iter())
        .find(|e| e.participant == p2)
        .expect("restored seat");
    assert_eq!(
        (entry.state, entry.clinician.clone()),
        (WireState::Admitted, Some(id("c1")))
    );

    // The clinician gets back into the same call; so does the patient.
    let out = admit(&mut b, doc, &p2);
    let (c, _, relay, _) = ready(&out).expect("clinician call_ready");
    assert_eq!((&c, &relay), (&call2, &node("r1")));
    let pc = b.patient();
    let out = b.send(
        pc,
        C::Resume {
            token: Sensitive::new(token),
        },
    );
    assert!(
        out.iter().any(|m| matches!(m, S::Admitted { .. })),
        "{out:?}"
    );
    assert_eq!(ready(&out).map(|r| r.0), Some(call2.clone()));

    // Ending the consultation closes the call on its relay and drops the seat.
    let end = C::EndConsultation {
        participant: p2.clone(),
        request: None,
    };
    assert!(is_ok(&b.send(doc, end)));
    assert!(b.take(pc).iter().any(|m| matches!(m, S::ConsultationEnded)));
    assert!(
        fake.log().contains(&format!("close {call2}")),
        "{:?}",
        fake.log()
    );
    write(&mut b, &store);
    assert_eq!(store.get(&p2).unwrap(), None);
    assert_eq!(store.details(&p2).unwrap(), None);
}

#[test]
fn without_recording_the_lobby_records_nothing() {
    let mut h = Harness::new();
    h.join("a-gp", "Ann");
    assert!(h.lobby.take_seat_changes().is_empty());
}

#[test]
fn a_snapshot_makes_a_stale_or_emptied_store_equal_to_the_lobby() {
    let stale = MemorySeats::new();
    let mut h = Harness::new();
    recording(&mut h);
    let doc = h.clinician("c1", "a");
    let (ann_c, _, _) = h.join("a-gp", "Ann");
    let (_, bob, _) = h.join("a-gp", "Bob");
    h.join("a-nurse", "Cy");
    h.join("b-gp", "Zed");
    write(&mut h, &stale);
    // Writes lost (the store was down): Ann left, Bob was admitted, Dan came.
    h.send(ann_c, C::Leave);
    assert!(is_ok(&admit(&mut h, doc, &bob)));
    h.join("a-gp", "Dan");
    drop(h.lobby.take_seat_changes());
    assert_eq!(stale.seats_of(&t("a")).unwrap().len(), 3, "stale");

    let emptied = MemorySeats::new();
    for store in [&stale, &emptied] {
        for change in h.lobby.seat_snapshot() {
            persist::apply(store, &change, TTL).unwrap();
        }
        assert_same(&mut h, store);
    }
}
