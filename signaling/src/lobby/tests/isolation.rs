//! Tenant isolation: a clinician of tenant B can neither see nor act on
//! tenant A's rooms and patients, through any message type.

use protocol::client::{ClientToSignaling as C, ErrorCode, SignalingToClient as S, TransferTarget};
use protocol::{ClinicianId, ParticipantId};

use super::{Harness, error_code, rid};

/// Every clinician message that names a patient, aimed at `p`.
fn every_action(p: &ParticipantId) -> Vec<C> {
    let p = p.clone();
    vec![
        C::GetIntake {
            participant: p.clone(),
            request: Some(1),
        },
        C::Admit {
            participant: p.clone(),
            request: Some(2),
        },
        C::Deny {
            participant: p.clone(),
            message: Some("no".into()),
            request: Some(3),
        },
        C::Transfer {
            participant: p.clone(),
            to: TransferTarget::Room(rid("b-gp")),
            request: Some(4),
        },
        C::Transfer {
            participant: p.clone(),
            to: TransferTarget::Room(rid("a-nurse")),
            request: Some(5),
        },
        C::Transfer {
            participant: p.clone(),
            to: TransferTarget::Clinician(ClinicianId::new("b1").unwrap()),
            request: Some(6),
        },
        C::ReturnToQueue {
            participant: p.clone(),
            request: Some(7),
        },
        C::EndConsultation {
            participant: p,
            request: Some(8),
        },
    ]
}

#[test]
fn another_tenants_clinician_sees_and_reaches_nothing() {
    let mut h = Harness::new();
    let a_doc = h.clinician("a1", "a");
    let b_doc = h.clinician("b1", "b");
    h.subscribe(a_doc);
    let snap = h.subscribe(b_doc);
    let Some(S::QueueSnapshot { rooms, .. }) = snap.first() else {
        panic!()
    };
    assert_eq!(
        rooms.iter().map(|r| r.room.as_str()).collect::<Vec<_>>(),
        ["b-gp"]
    );

    let (_, waiting, _) = h.join("a-gp", "Ann");
    let (_, admitted, _) = h.join("a-gp", "Bob");
    h.send(
        a_doc,
        C::Admit {
            participant: admitted.clone(),
            request: None,
        },
    );
    let before = h.lobby.stats();

    for p in [&waiting, &admitted] {
        for msg in every_action(p) {
            let name = msg.type_name();
            let request = msg.request();
            let out = h.send(b_doc, msg);
            assert!(
                matches!(&out[..], [S::Error { code: ErrorCode::NotFound, request: r, .. }] if *r == request),
                "{name} on another tenant's patient: {out:?}"
            );
        }
    }
    // Same answer as for a patient that does not exist at all.
    let ghost = ParticipantId::new("no-such-patient").unwrap();
    for msg in every_action(&ghost) {
        assert_eq!(error_code(&h.send(b_doc, msg)), Some(ErrorCode::NotFound));
    }
    assert_eq!(h.lobby.stats(), before, "nothing changed");

    // A's clinician cannot move A's patient into B's room or to B's clinician.
    let out = h.send(
        a_doc,
        C::Transfer {
            participant: waiting.clone(),
            to: TransferTarget::Room(rid("b-gp")),
            request: None,
        },
    );
    assert_eq!(error_code(&out), Some(ErrorCode::NotFound));
    let out = h.send(
        a_doc,
        C::Transfer {
            participant: waiting.clone(),
            to: TransferTarget::Clinician(ClinicianId::new("b1").unwrap()),
            request: None,
        },
    );
    assert_eq!(error_code(&out), Some(ErrorCode::NotFound));

    // B's patients and events never reach A, and A's never reach B.
    let (_, b_patient, _) = h.join("b-gp", "Zed");
    h.send(a_doc, C::Leave);
    for msg in every_action(&b_patient) {
        let out = h.send(a_doc, msg);
        assert!(
            out.iter()
                .all(|m| !matches!(m, S::Ok { .. } | S::Intake { .. })),
            "{out:?}"
        );
    }
    h.advance(std::time::Duration::from_secs(30));
    let seen_by_b = format!("{:?}", h.take(b_doc));
    assert!(!seen_by_b.contains(waiting.as_str()) && !seen_by_b.contains(admitted.as_str()));
    assert!(!seen_by_b.contains("a-gp"), "{seen_by_b}");
    let seen_by_a = format!("{:?}", h.take(a_doc));
    assert!(
        !seen_by_a.contains(b_patient.as_str()) && !seen_by_a.contains("b-gp"),
        "{seen_by_a}"
    );
}
