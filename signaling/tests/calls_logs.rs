//! Logs of a full call flow at TRACE level (every crate) carry ids only:
//! no patient or invitee name, no grant, no invite token, no SDP and no ICE
//! candidate. Its own test binary because it installs the global subscriber.

mod calls_support;
mod support;

use calls_support::{FakeRelay, admit_into_call, call_msg, start};
use serde_json::json;
use support::action;
use support::logs::CapturedLogs;

const NAME: &str = "Zebulon Quixote-Callpatient";
const GUEST: &str = "Ivy Interpreter-Guestname";
const OFFER: &str = "v=0 xyzzy-offer-sdp a=ice-pwd:secretpwd";
const ANSWER: &str = "v=0 plugh-answer-sdp";
const CANDIDATE: &str = "candidate:77 1 udp 99 127.0.0.1 45678 typ host frobnitz";

#[tokio::test]
async fn a_call_flow_logs_no_names_tokens_grants_or_sdp() {
    let logs = CapturedLogs::install();
    let cs = start(false).await;
    let mut relay = FakeRelay::register(cs.server.addr, "r-eu-1", "eu").await;
    let (mut doc, _) = cs.server.clinician("dr-a").await;
    let (mut patient, p, _) = cs.server.joined_patient("a-gp", NAME, "cough").await;
    let (pr, dr) = admit_into_call(&mut doc, &mut patient, &p).await;

    call_msg(&mut patient, "call_offer", &pr.call, json!({"sdp": OFFER})).await;
    relay.answer_offer(ANSWER).await;
    patient.expect_type("call_answer").await;
    call_msg(
        &mut patient,
        "call_candidate",
        &pr.call,
        json!({"candidate": CANDIDATE}),
    )
    .await;
    call_msg(
        &mut doc,
        "call_mute",
        &dr.call,
        json!({"audio": true, "video": true}),
    )
    .await;
    patient.expect_type("roster").await;

    doc.send(&json!({"type": "create_invite", "call": pr.call}))
        .await;
    let invite = doc.expect_type("invite_created").await;
    let token = invite["token"].as_str().unwrap().to_owned();
    let mut guest = cs.server.patient().await;
    guest
        .send(&json!({"type": "join_invite", "token": token, "display_name": GUEST}))
        .await;
    let joined = guest.expect_type("joined").await;
    let gp: protocol::ParticipantId =
        serde_json::from_value(joined["participant"].clone()).unwrap();
    doc.send(&action("admit", &gp, 5)).await;
    let ready = guest.expect_type("call_ready").await;
    let guest_grant = ready["grant"].as_str().unwrap().to_owned();
    // A reused token (logged attempts must not show it either).
    let mut again = cs.server.patient().await;
    again
        .send(&json!({"type": "join_invite", "token": token, "display_name": GUEST}))
        .await;
    again.expect_type("error").await;

    doc.send(&action("end_consultation", &p, 6)).await;
    patient.expect_type("consultation_ended").await;
    let audit = cs.server.audit.lines();
    cs.server.stop().await.unwrap();

    let text = logs.text();
    assert!(
        text.contains(pr.call.as_str()),
        "the flow was logged (by id)"
    );
    let grants = [
        pr.grant.as_str().unwrap().to_owned(),
        dr.grant.as_str().unwrap().to_owned(),
        guest_grant,
    ];
    let secrets = [
        NAME, GUEST, &token, OFFER, "xyzzy", ANSWER, "plugh", CANDIDATE, "frobnitz",
    ];
    for s in secrets
        .iter()
        .copied()
        .chain(grants.iter().map(String::as_str))
    {
        assert!(!text.contains(s), "the logs contain {s:?}");
    }
    for line in audit {
        for s in [NAME, GUEST, token.as_str(), "xyzzy"] {
            assert!(!line.contains(s), "the audit trail contains {s:?}");
        }
    }
}
