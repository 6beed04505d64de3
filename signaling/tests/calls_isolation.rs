//! Tenant isolation of calls over real WebSockets: a clinician of another
//! organisation (or a colleague not in the call, or another patient) gets
//! `not_found` for every call message naming the call, cannot create
//! invites for it, and never receives its roster or relay messages.

mod calls_support;
mod support;

use calls_support::{FakeRelay, admit_into_call, start};
use protocol::client::ErrorCode;
use serde_json::json;

#[tokio::test]
async fn outsiders_cannot_reach_a_call() {
    let cs = start(false).await;
    let _relay = FakeRelay::register(cs.server.addr, "r-eu-1", "eu").await;
    let (mut doc, _) = cs.server.clinician("dr-a").await;
    let (mut patient, p, _) = cs.server.joined_patient("a-gp", "Ann", "cough").await;
    let (pr, _) = admit_into_call(&mut doc, &mut patient, &p).await;
    let call = json!(pr.call);

    let (mut other_org, _) = cs.server.clinician("dr-b").await;
    let (mut colleague, _) = cs.server.clinician("dr-a2").await;
    let (mut other_patient, _, _) = cs.server.joined_patient("b-gp", "Bo", "cough").await;
    let probes = [
        json!({"type": "call_offer", "call": call, "sdp": "v=0"}),
        json!({"type": "call_answer", "call": call, "sdp": "v=0"}),
        json!({"type": "call_candidate", "call": call, "candidate": "candidate:1"}),
        json!({"type": "call_ice_failed", "call": call}),
        json!({"type": "call_mute", "call": call, "audio": true, "video": true}),
        json!({"type": "call_leave", "call": call}),
    ];
    for c in [&mut other_org, &mut colleague] {
        for probe in &probes {
            c.send(probe).await;
            assert_eq!(c.expect_error().await, ErrorCode::NotFound, "{probe}");
        }
        c.send(&json!({"type": "create_invite", "call": call, "request": 2}))
            .await;
        assert_eq!(c.expect_error().await, ErrorCode::NotFound);
    }
    for probe in probes.iter().take(5) {
        other_patient.send(probe).await;
        assert_eq!(
            other_patient.expect_error().await,
            ErrorCode::NotFound,
            "{probe}"
        );
    }
    // Patients cannot create invites at all.
    patient
        .send(&json!({"type": "create_invite", "call": call}))
        .await;
    assert_eq!(patient.expect_error().await, ErrorCode::Forbidden);

    // A roster change reaches only the call's members.
    doc.send(&json!({"type": "call_mute", "call": call, "audio": true, "video": false}))
        .await;
    patient.expect_type("roster").await;
    for c in [&mut other_org, &mut colleague, &mut other_patient] {
        let seen = c.sync().await;
        assert!(
            seen.iter()
                .all(|v| v["type"] != "roster" && v.get("call").is_none()),
            "{seen:?}"
        );
    }
    cs.server.stop().await.unwrap();
}
