//! Calls driven through the lobby with a fake relay pool: admission puts
//! patient and clinician into one call, SDP and candidates go to the call's
//! relay, relay events reach every participant, invites and meeting rooms,
//! and isolation between organisations.

use std::sync::Arc;

use protocol::client::{ClientToSignaling as C, ErrorCode, RosterRole, SignalingToClient as S};
use protocol::{NodeId, ParticipantId, RoomId, Sensitive};

use super::{Harness, admit, error_code};
use crate::calls::OfferDone;
use crate::calls::fake::{FakeRelays, node};
use crate::lobby::ConnId;
use crate::relays::RelayEvent;

/// The `call_ready` in `msgs`: (call, participant, relay, grant).
pub(super) fn ready(msgs: &[S]) -> Option<(RoomId, ParticipantId, NodeId, String)> {
    msgs.iter().find_map(|m| match m {
        S::CallReady {
            call,
            participant,
            relay,
            grant,
        } => Some((
            call.clone(),
            participant.clone(),
            relay.clone(),
            grant.expose().clone(),
        )),
        _ => None,
    })
}

/// The last roster in `msgs` as (participant, role, audio muted).
pub(super) fn roster(msgs: &[S]) -> Option<Vec<(ParticipantId, RosterRole, bool)>> {
    msgs.iter().rev().find_map(|m| match m {
        S::Roster { participants, .. } => Some(
            participants
                .iter()
                .map(|e| (e.participant.clone(), e.role, e.audio_muted))
                .collect(),
        ),
        _ => None,
    })
}

pub(super) fn moved(msgs: &[S]) -> Option<NodeId> {
    msgs.iter().find_map(|m| match m {
        S::RelayMoved { relay, .. } => Some(relay.clone()),
        _ => None,
    })
}

pub(super) fn ended(msgs: &[S], call: &RoomId) -> bool {
    msgs.iter()
        .any(|m| matches!(m, S::CallEnded { call: c } if c == call))
}

/// A clinician of tenant `a` admits a new patient: (harness, fake,
/// clinician conn, patient conn, patient id, call).
pub(super) fn consultation(
    nodes: &[&str],
) -> (
    Harness,
    Arc<FakeRelays>,
    ConnId,
    ConnId,
    ParticipantId,
    RoomId,
) {
    let fake = FakeRelays::new(nodes);
    let mut h = Harness::with_calls(fake.clone());
    let doc = h.clinician("c1", "a");
    let (pc, p, _) = h.join("a-gp", "Ann");
    h.take(pc);
    let out = admit(&mut h, doc, &p);
    let call = match ready(&out) {
        Some((call, ..)) => call,
        None => match out.iter().find_map(|m| match m {
            S::CallWaitingForRelay { call } => Some(call.clone()),
            _ => None,
        }) {
            Some(call) => call,
            None => panic!("no call: {out:?}"),
        },
    };
    (h, fake, doc, pc, p, call)
}

#[test]
fn admit_puts_patient_and_clinician_into_one_call_on_one_relay() {
    let fake = FakeRelays::new(&["r1", "r2"]);
    let mut h = Harness::with_calls(fake);
    let doc = h.clinician("c1", "a");
    let (pc, p, _) = h.join("a-gp", "Ann");
    h.take(pc);
    let out = admit(&mut h, doc, &p);
    let (call, cp, relay, grant) = ready(&out).expect("clinician call_ready");
    assert!(call.as_str().starts_with("c-"));
    assert_ne!(cp, p, "the clinician gets a participant id of its own");
    assert_eq!(relay, node("r1"));
    assert_eq!(grant, format!("grant/{call}/{cp}/r1"));
    let ready_at = out.iter().position(|m| matches!(m, S::CallReady { .. }));
    let ok_at = out.iter().position(|m| matches!(m, S::Ok { .. }));
    assert!(ready_at < ok_at, "call_ready comes before ok: {out:?}");

    let patient = h.take(pc);
    assert!(
        matches!(patient.first(), Some(S::Admitted { .. })),
        "{patient:?}"
    );
    assert!(
        matches!(patient.get(1), Some(S::CallReady { .. })),
        "{patient:?}"
    );
    let (pcall, pp, prelay, _) = ready(&patient).unwrap();
    assert_eq!((pcall, pp, prelay), (call, p.clone(), node("r1")));
    let r = roster(&patient).unwrap();
    assert_eq!(r.len(), 2);
    assert!(r.contains(&(p, RosterRole::Patient, false)));
    assert!(r.contains(&(cp, RosterRole::Clinician, false)));
}

#[test]
fn offers_go_to_the_relay_with_the_grant_and_answers_come_back() {
    let (mut h, fake, doc, pc, p, call) = consultation(&["r1"]);
    h.take(pc);
    let sdp = "v=0 offer".to_owned();
    let out = h.send(
        pc,
        C::CallOffer {
            call: call.clone(),
            sdp,
        },
    );
    assert!(out.is_empty(), "{out:?}");
    let job = h.offers.pop().expect("an offer job");
    assert_eq!(
        (&job.call, &job.participant, &job.node),
        (&call, &p, &node("r1"))
    );
    assert_eq!(job.grant.expose(), &format!("grant/{call}/{p}/r1"));
    h.lobby.handle_offer_done(OfferDone {
        conn: job.conn,
        call: call.clone(),
        participant: p.clone(),
        node: node("r1"),
        result: Ok(Sensitive::new("v=0 answer".into())),
    });
    h.drain();
    let got = h.take(pc);
    assert!(
        matches!(&got[..], [S::CallAnswer { sdp, .. }] if sdp == "v=0 answer"),
        "{got:?}"
    );

    // Candidates and renegotiation answers go to the call's relay.
    let cand = "candidate:1 1 udp 1 127.0.0.1 5000 typ host".to_owned();
    h.send(
        pc,
        C::CallCandidate {
            call: call.clone(),
            candidate: cand,
        },
    );
    h.lobby.handle_relay_event(RelayEvent::Renegotiate {
        call: call.clone(),
        participant: p.clone(),
        sdp: "v=0 relay offer".into(),
    });
    h.drain();
    assert!(matches!(&h.take(pc)[..], [S::CallRenegotiate { .. }]));
    assert!(h.take(doc).is_empty(), "only the addressed participant");
    h.send(
        pc,
        C::CallAnswer {
            call: call.clone(),
            sdp: "v=0 a2".into(),
        },
    );
    let log = fake.log();
    assert!(log.contains(&format!("candidate r1 {call} {p}")), "{log:?}");
    assert!(
        log.contains(&format!("renegotiate_answer r1 {call} {p}")),
        "{log:?}"
    );

    // An answer from the old relay after a move is dropped.
    h.lobby.handle_relay_event(RelayEvent::CallMoved {
        call: call.clone(),
        from: node("r1"),
        to: node("r2"),
    });
    h.drain();
    h.take(pc);
    h.lobby.handle_offer_done(OfferDone {
        conn: job.conn,
        call,
        participant: p,
        node: node("r1"),
        result: Ok(Sensitive::new("stale".into())),
    });
    h.drain();
    assert!(h.take(pc).is_empty());
}

#[test]
fn relay_moves_reach_every_participant_with_a_fresh_grant() {
    let (mut h, _fake, doc, pc, p, call) = consultation(&["r1", "r2"]);
    h.take(pc);
    h.lobby.handle_relay_event(RelayEvent::CallMoved {
        call: call.clone(),
        from: node("r1"),
        to: node("r2"),
    });
    h.drain();
    let patient = h.take(pc);
    assert_eq!(moved(&patient), Some(node("r2")));
    assert!(patient.iter().any(
        |m| matches!(m, S::RelayMoved { grant, .. } if grant.expose() == &format!("grant/{call}/{p}/r2"))
    ));
    assert_eq!(moved(&h.take(doc)), Some(node("r2")));

    h.lobby.handle_relay_event(RelayEvent::CallOrphaned {
        call: call.clone(),
        from: node("r2"),
    });
    h.drain();
    for c in [pc, doc] {
        let got = h.take(c);
        assert!(
            matches!(&got[..], [S::CallWaitingForRelay { .. }]),
            "{got:?}"
        );
    }
    let out = h.send(
        pc,
        C::CallOffer {
            call,
            sdp: "x".into(),
        },
    );
    assert_eq!(error_code(&out), Some(ErrorCode::NoRelay));
}

#[test]
fn without_a_relay_the_call_waits_and_starts_when_one_registers() {
    let (mut h, fake, doc, pc, _p, call) = consultation(&[]);
    let patient = h.take(pc);
    assert!(matches!(patient.first(), Some(S::Admitted { .. })));
    assert!(
        patient
            .iter()
            .any(|m| matches!(m, S::CallWaitingForRelay { call: c } if *c == call))
    );
    fake.add("r9");
    h.lobby
        .handle_relay_event(RelayEvent::RelayUp { node: node("r9") });
    h.drain();
    for c in [pc, doc] {
        let (got, _, relay, _) = ready(&h.take(c)).expect("call_ready after relay up");
        assert_eq!((got, relay), (call.clone(), node("r9")));
    }
}

#[test]
fn ice_failure_on_a_live_relay_reissues_the_same_relay_to_that_client() {
    let (mut h, fake, doc, pc, _p, call) = consultation(&["r1", "r2"]);
    h.take(pc);
    let out = h.send(pc, C::CallIceFailed { call: call.clone() });
    assert_eq!(moved(&out), Some(node("r1")));
    assert!(h.take(doc).is_empty());
    assert!(fake.log().contains(&format!("relay_failed {call} r1")));

    // A dead relay: the pool re-places, and its CallMoved tells everyone.
    fake.kill("r1");
    let out = h.send(pc, C::CallIceFailed { call });
    assert!(moved(&out).is_none(), "{out:?}");
}

#[test]
fn mute_updates_the_roster_of_everyone() {
    let (mut h, _fake, doc, pc, p, call) = consultation(&["r1"]);
    h.take(pc);
    let out = h.send(
        pc,
        C::CallMute {
            call,
            audio: true,
            video: false,
        },
    );
    let r = roster(&out).unwrap();
    assert!(r.contains(&(p.clone(), RosterRole::Patient, true)));
    assert!(
        roster(&h.take(doc))
            .unwrap()
            .contains(&(p, RosterRole::Patient, true))
    );
}

#[test]
fn ending_returning_or_leaving_ends_the_call() {
    let (mut h, fake, doc, pc, p, call) = consultation(&["r1"]);
    assert_eq!(h.lobby.stats().calls, 1);
    h.take(pc);
    let out = h.send(
        doc,
        C::EndConsultation {
            participant: p,
            request: None,
        },
    );
    assert!(ended(&out, &call), "{out:?}");
    let patient = h.take(pc);
    assert!(ended(&patient, &call));
    assert!(patient.iter().any(|m| matches!(m, S::ConsultationEnded)));
    assert!(fake.log().contains(&format!("close {call}")));
    assert_eq!(h.lobby.stats().calls, 0, "the call is forgotten");

    let (mut h, _, doc, pc, p, call) = consultation(&["r1"]);
    h.take(pc);
    h.send(
        doc,
        C::ReturnToQueue {
            participant: p,
            request: None,
        },
    );
    assert!(ended(&h.take(pc), &call));
    let again = h.send(
        pc,
        C::CallOffer {
            call,
            sdp: "x".into(),
        },
    );
    assert_eq!(error_code(&again), Some(ErrorCode::NotFound));

    // A clinician leaving (or disconnecting) leaves the patient in the call.
    let (mut h, fake, doc, pc, p, call) = consultation(&["r1"]);
    h.take(pc);
    let out = h.send(doc, C::CallLeave { call: call.clone() });
    assert!(ended(&out, &call));
    let r = roster(&h.take(pc)).unwrap();
    assert_eq!(r, vec![(p, RosterRole::Patient, false)]);
    assert!(fake.log().iter().any(|l| l.starts_with("kick r1")));
}

#[test]
fn a_resumed_patient_gets_call_ready_again() {
    let fake = FakeRelays::new(&["r1"]);
    let mut h = Harness::with_calls(fake);
    let doc = h.clinician("c1", "a");
    let (pc, p, token) = h.join("a-gp", "Ann");
    admit(&mut h, doc, &p);
    let (call, ..) = ready(&h.take(pc)).unwrap();
    h.disconnect(pc);
    h.take(doc);
    let pc2 = h.patient();
    let out = h.send(
        pc2,
        C::Resume {
            token: Sensitive::new(token),
        },
    );
    let (again, pp, relay, _) = ready(&out).expect("call_ready after resume");
    assert_eq!((again, pp, relay), (call, p, node("r1")));
    let admitted = out.iter().position(|m| matches!(m, S::Admitted { .. }));
    let ready_at = out.iter().position(|m| matches!(m, S::CallReady { .. }));
    assert!(admitted < ready_at);
}
