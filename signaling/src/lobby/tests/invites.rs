//! Invites, isolation and meeting rooms, driven through the lobby with a
//! fake relay pool.

use std::time::Duration;

use protocol::client::{ClientToSignaling as C, ErrorCode, RosterRole, SignalingToClient as S};
use protocol::{RoomId, Sensitive};

use super::calls::{consultation, ended, ready, roster};
use super::{Harness, admit, error_code, is_ok, rid};
use crate::calls::fake::FakeRelays;
use crate::lobby::ConnId;

fn invite(h: &mut Harness, doc: ConnId, call: &RoomId) -> String {
    let out = h.send(
        doc,
        C::CreateInvite {
            call: call.clone(),
            request: Some(5),
        },
    );
    match &out[..] {
        [
            S::InviteCreated {
                request: Some(5),
                token,
                path,
                expires_in_secs: 900,
                call: c,
            },
        ] if c == call && path.expose() == &format!("/i/{}", token.expose()) => {
            token.expose().clone()
        }
        _ => panic!("{out:?}"),
    }
}

fn join_invite(h: &mut Harness, token: &str) -> (ConnId, Vec<S>) {
    let c = h.patient();
    let msg = C::JoinInvite {
        token: Sensitive::new(token.to_owned()),
        display_name: Sensitive::new("Ivy Interpreter".into()),
    };
    let out = h.send(c, msg);
    (c, out)
}

#[test]
fn an_invitee_waits_then_joins_the_same_call_and_the_link_works_once() {
    let (mut h, _fake, doc, pc, p, call) = consultation(&["r1"]);
    h.subscribe(doc);
    h.take(pc);
    let token = invite(&mut h, doc, &call);
    let (ic, out) = join_invite(&mut h, &token);
    let Some(S::Joined {
        participant: ip,
        room,
        ..
    }) = out.first()
    else {
        panic!("{out:?}")
    };
    assert_eq!(room, &rid("a-gp"));
    let ip = ip.clone();
    let arrived = h.take(doc);
    assert!(arrived.iter().any(|m| matches!(m,
        S::PatientArrived { entry, .. } if entry.participant == ip && entry.invited_to.as_ref() == Some(&call))));
    assert!(
        h.take(pc).is_empty(),
        "the call does not see a waiting invitee"
    );

    let (_, reuse) = join_invite(&mut h, &token);
    assert_eq!(error_code(&reuse), Some(ErrorCode::InviteInvalid));

    let out = admit(&mut h, doc, &ip);
    assert!(is_ok(&out));
    assert_eq!(roster(&out).map(|r| r.len()), Some(3));
    let invitee = h.take(ic);
    assert!(matches!(invitee.first(), Some(S::Admitted { .. })));
    let (icall, ipp, ..) = ready(&invitee).unwrap();
    assert_eq!((icall, ipp), (call.clone(), ip.clone()));
    assert!(
        roster(&invitee)
            .unwrap()
            .contains(&(ip, RosterRole::Guest, false))
    );
    assert_eq!(roster(&h.take(pc)).map(|r| r.len()), Some(3));

    // The consultation ends for the invitee too.
    h.send(
        doc,
        C::EndConsultation {
            participant: p,
            request: None,
        },
    );
    let invitee = h.take(ic);
    assert!(ended(&invitee, &call));
    assert!(invitee.iter().any(|m| matches!(m, S::ConsultationEnded)));
}

#[test]
fn expired_and_unknown_invites_are_refused() {
    let (mut h, _fake, doc, _pc, _p, call) = consultation(&["r1"]);
    let token = invite(&mut h, doc, &call);
    h.advance(Duration::from_secs(15 * 60));
    let (_, out) = join_invite(&mut h, &token);
    assert_eq!(error_code(&out), Some(ErrorCode::InviteInvalid));
    let (_, out) = join_invite(&mut h, "made-up");
    assert_eq!(error_code(&out), Some(ErrorCode::InviteInvalid));
    // A bad name does not use the invite up.
    let token = invite(&mut h, doc, &call);
    let c = h.patient();
    let bad = C::JoinInvite {
        token: Sensitive::new(token.clone()),
        display_name: Sensitive::new("  ".into()),
    };
    assert_eq!(error_code(&h.send(c, bad)), Some(ErrorCode::BadRequest));
    let (_, out) = join_invite(&mut h, &token);
    assert!(matches!(out.first(), Some(S::Joined { .. })), "{out:?}");
}

#[test]
fn other_organisations_and_non_members_cannot_reach_a_call() {
    let (mut h, _fake, doc, pc, _p, call) = consultation(&["r1"]);
    let other = h.clinician("b1", "b");
    let colleague = h.clinician("c2", "a");
    for c in [other, colleague] {
        let out = h.send(
            c,
            C::CreateInvite {
                call: call.clone(),
                request: Some(1),
            },
        );
        assert_eq!(error_code(&out), Some(ErrorCode::NotFound));
        for msg in [
            C::CallOffer {
                call: call.clone(),
                sdp: "x".into(),
            },
            C::CallMute {
                call: call.clone(),
                audio: true,
                video: true,
            },
            C::CallLeave { call: call.clone() },
            C::CallIceFailed { call: call.clone() },
        ] {
            assert_eq!(error_code(&h.send(c, msg)), Some(ErrorCode::NotFound));
        }
    }
    // The patient cannot create invites (clinicians only).
    let out = h.send(
        pc,
        C::CreateInvite {
            call: call.clone(),
            request: None,
        },
    );
    assert_eq!(error_code(&out), Some(ErrorCode::Forbidden));
    h.send(
        doc,
        C::CallMute {
            call,
            audio: true,
            video: false,
        },
    );
    assert!(
        h.take(other).is_empty() && h.take(colleague).is_empty(),
        "no roster"
    );
}

#[test]
fn meeting_guests_are_admitted_into_the_rooms_standing_call() {
    let fake = FakeRelays::new(&["r1"]);
    let mut h = Harness::with_calls(fake);
    let host = h.clinician("c1", "a");
    let (g1, p1, _) = h.join("a-meet", "Gail");
    let (g2, p2, _) = h.join("a-meet", "Gus");
    let (call, ..) = ready(&admit(&mut h, host, &p1)).unwrap();
    let out = admit(&mut h, host, &p2);
    assert!(ready(&out).is_none(), "the host is already in the call");
    assert_eq!(roster(&out).map(|r| r.len()), Some(3));
    let (c1, ..) = ready(&h.take(g1)).unwrap();
    let (c2, ..) = ready(&h.take(g2)).unwrap();
    assert_eq!((&c1, &c2), (&call, &call));
    let guests = roster(&out).unwrap();
    assert_eq!(
        guests.iter().filter(|e| e.1 == RosterRole::Guest).count(),
        2
    );
    // A guest leaving keeps the call for the others.
    let left = h.send(g1, C::Leave);
    assert!(ended(&left, &call), "{left:?}");
    let r = roster(&h.take(g2)).unwrap();
    assert_eq!(r.len(), 2);
}
