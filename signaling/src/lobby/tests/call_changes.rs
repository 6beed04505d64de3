//! Calls through the lobby, continued: clinicians rejoining or swapping,
//! WHIP/WHEP participants in the roster, and stale ICE failures.

use protocol::client::{ClientToSignaling as C, ErrorCode, RosterRole};
use protocol::{ParticipantId, RoomId, Sensitive};

use super::calls::{consultation, ended, moved, ready, roster};
use super::{admit, error_code, is_ok};
use crate::calls::fake::node;
use crate::relays::RelayEvent;

#[test]
fn a_clinician_who_lost_the_connection_rejoins_by_admitting_again() {
    let (mut h, _fake, doc, pc, p, call) = consultation(&["r1"]);
    h.take(pc);
    h.disconnect(doc);
    assert_eq!(roster(&h.take(pc)).map(|r| r.len()), Some(1));
    let doc2 = h.clinician("c1", "a");
    let out = admit(&mut h, doc2, &p);
    let (again, ..) = ready(&out).expect("call_ready on rejoin");
    assert_eq!(again, call);
    assert!(is_ok(&out));
    assert_eq!(roster(&h.take(pc)).map(|r| r.len()), Some(2));
    let twice = admit(&mut h, doc2, &p);
    assert_eq!(error_code(&twice), Some(ErrorCode::Conflict));
    // Another clinician cannot take the call this way.
    let other = h.clinician("c2", "a");
    assert_eq!(
        error_code(&admit(&mut h, other, &p)),
        Some(ErrorCode::Conflict)
    );
}

#[test]
fn whip_participants_show_in_the_roster_and_summaries_name_no_one() {
    let (mut h, _fake, doc, pc, _p, call) = consultation(&["r1"]);
    h.take(pc);
    let publisher = ParticipantId::random();
    let name = Sensitive::new("OBS".to_owned());
    h.lobby
        .handle_external_member(&call, publisher.clone(), RosterRole::Publisher, name, true);
    h.drain();
    let r = roster(&h.take(pc)).unwrap();
    assert!(r.contains(&(publisher.clone(), RosterRole::Publisher, false)));
    assert_eq!(roster(&h.take(doc)).map(|r| r.len()), Some(3));
    let s = h.lobby.call_summary(&call).unwrap();
    assert_eq!(s.tenant.as_str(), "a");
    assert_eq!((s.room.as_str(), s.participants), ("a-gp", 3));
    assert_eq!(s.relay, Some(node("r1")));
    assert_eq!(s.clinicians.len(), 1);
    let name = Sensitive::new(String::new());
    h.lobby
        .handle_external_member(&call, publisher, RosterRole::Publisher, name, false);
    h.drain();
    assert_eq!(roster(&h.take(pc)).map(|r| r.len()), Some(2));
    assert!(
        h.lobby
            .call_summary(&RoomId::new("c-none").unwrap())
            .is_none()
    );
}

#[test]
fn an_ice_failure_on_a_relay_already_left_does_not_restart_again() {
    let (mut h, fake, _doc, pc, _p, call) = consultation(&["r1", "r2"]);
    h.take(pc);
    h.send(
        pc,
        C::CallOffer {
            call: call.clone(),
            sdp: "x".into(),
        },
    );
    fake.kill("r1");
    h.lobby.handle_relay_event(RelayEvent::CallMoved {
        call: call.clone(),
        from: node("r1"),
        to: node("r2"),
    });
    h.drain();
    assert_eq!(moved(&h.take(pc)), Some(node("r2")));
    // The old peer connection's failure arrives before the new offer.
    let out = h.send(pc, C::CallIceFailed { call: call.clone() });
    assert!(out.is_empty(), "{out:?}");
    assert!(!fake.log().iter().any(|l| l.starts_with("relay_failed")));
    // Once it offered to r2, a failure is about r2.
    h.send(
        pc,
        C::CallOffer {
            call: call.clone(),
            sdp: "x".into(),
        },
    );
    let out = h.send(pc, C::CallIceFailed { call });
    assert_eq!(moved(&out), Some(node("r2")));
}

#[test]
fn a_transfer_to_another_clinician_keeps_the_call_and_swaps_clinicians() {
    let (mut h, _fake, doc, pc, p, call) = consultation(&["r1"]);
    let doc2 = h.clinician("c2", "a");
    h.take(pc);
    let to = protocol::client::TransferTarget::Clinician(protocol::ClinicianId::new("c2").unwrap());
    let out = h.send(
        doc,
        C::Transfer {
            participant: p.clone(),
            to,
            request: Some(3),
        },
    );
    assert!(ended(&out, &call), "{out:?}");
    let (again, ..) = ready(&h.take(doc2)).expect("the new clinician joins the call");
    assert_eq!(again, call);
    let patient = h.take(pc);
    assert!(
        ready(&patient).is_none(),
        "the patient stays connected: {patient:?}"
    );
    let r = roster(&patient).unwrap();
    assert_eq!(r.len(), 2);
    assert!(r.contains(&(p, RosterRole::Patient, false)));
}
