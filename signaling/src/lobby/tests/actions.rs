//! Clinician actions: deny, transfer, return to queue, end of consultation,
//! waiting-time refreshes, and the role check on every message.

use std::time::Duration;

use protocol::client::{
    ClientToSignaling as C, ErrorCode, LeftReason, SignalingToClient as S, TransferTarget,
};
use protocol::{ClinicianId, Sensitive};

use super::{Harness, admit, error_code, is_ok, join_msg, last_status, rid};
use crate::audit::AuditAction;

#[test]
fn deny_tells_the_patient_and_releases_the_seat() {
    let mut h = Harness::new();
    let doc = h.clinician("c1", "a");
    h.subscribe(doc);
    let (c1, p1, _) = h.join("a-gp", "Ann");
    h.take(doc);
    let long = C::Deny {
        participant: p1.clone(),
        message: Some("x".repeat(501)),
        request: None,
    };
    assert_eq!(error_code(&h.send(doc, long)), Some(ErrorCode::BadRequest));
    let deny = C::Deny {
        participant: p1.clone(),
        message: Some("Call us".into()),
        request: Some(3),
    };
    let out = h.send(doc, deny);
    assert!(out.contains(&S::Ok { request: Some(3) }));
    assert!(out.iter().any(|m| matches!(
        m,
        S::PatientLeft {
            reason: LeftReason::Denied,
            ..
        }
    )));
    assert!(h.take(c1).contains(&S::Denied {
        message: Some("Call us".into())
    }));
    assert_eq!(h.lobby.stats().seats, 0);
    assert!(matches!(
        h.audit.last().map(|e| &e.action),
        Some(AuditAction::Deny)
    ));
    // The connection may join again.
    assert!(error_code(&h.send(c1, join_msg("a-gp", "Ann", "x"))).is_none());
}

#[test]
fn transfer_to_another_room_or_clinician() {
    let mut h = Harness::new();
    let doc = h.clinician("c1", "a");
    let doc2 = h.clinician("c2", "a");
    h.subscribe(doc);
    let (c1, p1, _) = h.join("a-gp", "Ann");
    let (c2, _, _) = h.join("a-gp", "Bob");
    let (_, _, _) = h.join("a-nurse", "Cat");
    h.take(c1);
    h.take(c2);
    h.take(doc);

    let to_nurse = C::Transfer {
        participant: p1.clone(),
        to: TransferTarget::Room(rid("a-nurse")),
        request: None,
    };
    let seen = h.send(doc, to_nurse);
    assert!(is_ok(&seen));
    let to_patient = h.take(c1);
    assert!(to_patient.contains(&S::Transferred {
        room: rid("a-nurse")
    }));
    assert_eq!(last_status(&to_patient).and_then(|s| s.0), Some(2));
    assert_eq!(last_status(&h.take(c2)).and_then(|s| s.0), Some(1));
    assert!(
        matches!(&seen[..], [S::PatientLeft { reason: LeftReason::Transferred, .. }, S::PatientArrived { room, .. }, S::Ok { .. }] if room == &rid("a-nurse")),
        "{seen:?}"
    );

    let same = C::Transfer {
        participant: p1.clone(),
        to: TransferTarget::Room(rid("a-nurse")),
        request: None,
    };
    assert_eq!(error_code(&h.send(doc, same)), Some(ErrorCode::BadRequest));
    let offline = C::Transfer {
        participant: p1.clone(),
        to: TransferTarget::Clinician(ClinicianId::new("c9").unwrap()),
        request: None,
    };
    assert_eq!(error_code(&h.send(doc, offline)), Some(ErrorCode::NotFound));
    let me = C::Transfer {
        participant: p1.clone(),
        to: TransferTarget::Clinician(ClinicianId::new("c1").unwrap()),
        request: None,
    };
    assert_eq!(error_code(&h.send(doc, me)), Some(ErrorCode::BadRequest));
    let to_c2 = C::Transfer {
        participant: p1.clone(),
        to: TransferTarget::Clinician(ClinicianId::new("c2").unwrap()),
        request: None,
    };
    assert!(is_ok(&h.send(doc, to_c2)));
    assert!(h.take(c1).contains(&S::Admitted {
        room: rid("a-nurse"),
        clinician_name: "Dr c2".into()
    }));
    let e = h.audit.last().unwrap();
    assert!(matches!(e.action, AuditAction::Transfer));
    assert_eq!(e.target_clinician, Some(ClinicianId::new("c2").unwrap()));
    // c2 may end it.
    let end = C::EndConsultation {
        participant: p1,
        request: None,
    };
    assert!(is_ok(&h.send(doc2, end)));
}

#[test]
fn return_to_queue_puts_the_patient_at_the_head() {
    let mut h = Harness::new();
    let doc = h.clinician("c1", "a");
    let (c1, p1, _) = h.join("a-gp", "Ann");
    let (c2, _, _) = h.join("a-gp", "Bob");
    let ret = C::ReturnToQueue {
        participant: p1.clone(),
        request: None,
    };
    assert_eq!(
        error_code(&h.send(doc, ret.clone())),
        Some(ErrorCode::Conflict)
    );
    admit(&mut h, doc, &p1);
    h.take(c1);
    assert_eq!(last_status(&h.take(c2)).and_then(|s| s.0), Some(1));
    assert!(is_ok(&h.send(doc, ret)));
    let out = h.take(c1);
    assert_eq!(out.first(), Some(&S::ReturnedToQueue { room: rid("a-gp") }));
    assert_eq!(last_status(&out).and_then(|s| s.0), Some(1));
    assert_eq!(last_status(&h.take(c2)).and_then(|s| s.0), Some(2));
    assert!(matches!(
        h.audit.last().map(|e| &e.action),
        Some(AuditAction::ReturnToQueue)
    ));
}

#[test]
fn ending_the_consultation_wipes_the_intake() {
    let mut h = Harness::new();
    let doc = h.clinician("c1", "a");
    let (c1, p1, token) = h.join("a-gp", "Ann");
    let get = C::GetIntake {
        participant: p1.clone(),
        request: Some(5),
    };
    let out = h.send(doc, get.clone());
    let Some(S::Intake {
        answers,
        display_name,
        request,
        ..
    }) = out.first()
    else {
        panic!("{out:?}")
    };
    assert_eq!(*request, Some(5));
    assert_eq!(display_name.expose(), "Ann");
    assert_eq!(
        answers.expose().get("reason").map(String::as_str),
        Some("a sore throat")
    );

    let end = C::EndConsultation {
        participant: p1.clone(),
        request: None,
    };
    assert_eq!(
        error_code(&h.send(doc, end.clone())),
        Some(ErrorCode::Conflict),
        "not admitted yet"
    );
    admit(&mut h, doc, &p1);
    assert!(is_ok(&h.send(doc, end)));
    assert!(h.take(c1).contains(&S::ConsultationEnded));
    assert_eq!(error_code(&h.send(doc, get)), Some(ErrorCode::NotFound));
    assert_eq!(h.lobby.stats().seats, 0);
    let c1b = h.patient();
    let out = h.send(
        c1b,
        C::Resume {
            token: Sensitive::new(token),
        },
    );
    assert_eq!(error_code(&out), Some(ErrorCode::NotFound));
    let actions: Vec<_> = h.audit.iter().map(|e| format!("{:?}", e.action)).collect();
    assert_eq!(actions, ["Admit", "EndConsultation"]);
    assert!(h.audit.iter().all(|e| e.participant.as_ref() == Some(&p1)));
}

#[test]
fn subscribed_clinicians_get_waiting_times() {
    let mut h = Harness::new();
    let doc = h.clinician("c1", "a");
    h.subscribe(doc);
    let (_, p1, _) = h.join("a-gp", "Ann");
    h.take(doc);
    h.advance(Duration::from_secs(15));
    let seen = h.take(doc);
    let [S::WaitingTimes { room, entries }] = seen.as_slice() else {
        panic!("{seen:?}")
    };
    assert_eq!(room, &rid("a-gp"));
    assert_eq!(
        (
            &entries[0].participant,
            entries[0].position,
            entries[0].waited_secs
        ),
        (&p1, Some(1), 15)
    );
    h.disconnect(doc);
    h.advance(Duration::from_secs(60));
    assert_eq!(
        h.lobby.poll_timeout(),
        None,
        "no refresh without subscribers"
    );
}

#[test]
fn messages_are_checked_against_the_role() {
    let mut h = Harness::new();
    let doc = h.clinician("c1", "a");
    let (c1, p1, _) = h.join("a-gp", "Ann");
    let out = h.send(
        c1,
        C::Admit {
            participant: p1,
            request: Some(9),
        },
    );
    assert!(matches!(
        &out[..],
        [S::Error {
            code: ErrorCode::Forbidden,
            request: Some(9),
            ..
        }]
    ));
    let out = h.send(doc, join_msg("a-gp", "Eve", "x"));
    assert_eq!(error_code(&out), Some(ErrorCode::Forbidden));
    let out = h.send(doc, C::Leave);
    assert_eq!(error_code(&out), Some(ErrorCode::Forbidden));
    let stranger = super::ConnId(999);
    assert_eq!(
        error_code(&h.send(stranger, C::Leave)),
        Some(ErrorCode::BadRequest)
    );
    let hello = C::Hello {
        version: 1,
        role: protocol::client::Role::Patient,
        session: None,
        region: None,
    };
    assert_eq!(error_code(&h.send(c1, hello)), Some(ErrorCode::BadRequest));
}
