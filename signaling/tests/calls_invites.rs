//! Invite links over real WebSockets: a clinician in a call creates one; the
//! invitee waits in the consultation's waiting room (clinicians see the seat
//! with `invited_to`) until admitted into that same call; a link works once
//! and not after it expired; only the call's own clinicians can create one.

mod calls_support;
mod support;

use std::time::Duration;

use calls_support::{FakeRelay, admit_into_call, ready, start, verify};
use protocol::client::ErrorCode;
use serde_json::{Value, json};
use support::{Client, action};

async fn create_invite(doc: &mut Client, call: &protocol::RoomId) -> String {
    doc.send(&json!({"type": "create_invite", "call": call, "request": 4}))
        .await;
    let v = doc.expect_type("invite_created").await;
    assert_eq!(v["request"], 4);
    assert_eq!(v["call"], json!(call));
    assert_eq!(v["expires_in_secs"], 900, "15 minutes by default");
    let token = v["token"].as_str().expect("token").to_owned();
    assert!(token.len() >= 43, "256 bits");
    assert_eq!(v["path"], json!(format!("/i/{token}")));
    token
}

async fn join_invite(c: &mut Client, token: &str) {
    c.send(&json!({"type": "join_invite", "token": token, "display_name": "Ivy Interpreter"}))
        .await;
}

fn roster_len(v: &Value) -> Option<usize> {
    v["participants"].as_array().map(Vec::len)
}

#[tokio::test]
async fn an_invitee_waits_then_is_admitted_into_the_same_call_once() {
    let cs = start(false).await;
    let relay = FakeRelay::register(cs.server.addr, "r-eu-1", "eu").await;
    let (mut doc, _) = cs.server.clinician("dr-a").await;
    let (mut patient, p, _) = cs.server.joined_patient("a-gp", "Ann", "cough").await;
    let (pr, _) = admit_into_call(&mut doc, &mut patient, &p).await;
    let token = create_invite(&mut doc, &pr.call).await;

    let mut invitee = cs.server.patient().await;
    join_invite(&mut invitee, &token).await;
    let joined = invitee.expect_type("joined").await;
    assert_eq!(joined["room"], "a-gp");
    let ip: protocol::ParticipantId =
        serde_json::from_value(joined["participant"].clone()).unwrap();
    invitee.expect_type("queue_status").await;
    let arrived = doc
        .expect(|v| v["type"] == "patient_arrived" && v["entry"]["participant"] == json!(ip))
        .await;
    assert_eq!(arrived["entry"]["invited_to"], json!(pr.call));

    // Used once: a second join with the same link is refused.
    let mut again = cs.server.patient().await;
    join_invite(&mut again, &token).await;
    assert_eq!(again.expect_error().await, ErrorCode::InviteInvalid);

    doc.send(&action("admit", &ip, 8)).await;
    invitee.expect_type("admitted").await;
    let ir = ready(&invitee.next().await.unwrap());
    assert_eq!(
        (&ir.call, &ir.participant, &ir.relay),
        (&pr.call, &ip, &relay.node)
    );
    verify(&ir.grant, &relay.node);
    let roster = invitee.expect_type("roster").await;
    assert_eq!(roster_len(&roster), Some(3));
    let guest = roster["participants"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["participant"] == json!(ip))
        .expect("the invitee is in the roster");
    assert_eq!(guest["role"], "guest");
    let seen = patient
        .expect(|v| v["type"] == "roster" && roster_len(v) == Some(3))
        .await;
    assert_eq!(seen["call"], json!(pr.call));

    // The invitee leaving updates everyone's roster.
    invitee.send(&json!({"type": "leave"})).await;
    invitee.expect_type("call_ended").await;
    patient
        .expect(|v| v["type"] == "roster" && roster_len(v) == Some(2))
        .await;
    cs.server.stop().await.unwrap();
}

#[tokio::test]
async fn an_expired_or_unknown_invite_is_refused() {
    let cs = start(true).await;
    let _relay = FakeRelay::register(cs.server.addr, "r-eu-1", "eu").await;
    let (mut doc, _) = cs.server.clinician("dr-a").await;
    let (mut patient, p, _) = cs.server.joined_patient("a-gp", "Ann", "cough").await;
    let (pr, _) = admit_into_call(&mut doc, &mut patient, &p).await;
    let token = create_invite(&mut doc, &pr.call).await;
    cs.server.clock.advance(Duration::from_secs(15 * 60 + 1));

    let mut late = cs.server.patient().await;
    join_invite(&mut late, &token).await;
    assert_eq!(late.expect_error().await, ErrorCode::InviteInvalid);
    join_invite(&mut late, "not-a-real-token").await;
    assert_eq!(late.expect_error().await, ErrorCode::InviteInvalid);
    cs.server.stop().await.unwrap();
}

#[tokio::test]
async fn an_ended_calls_invite_no_longer_works_and_waiting_invitees_are_told() {
    let cs = start(false).await;
    let _relay = FakeRelay::register(cs.server.addr, "r-eu-1", "eu").await;
    let (mut doc, _) = cs.server.clinician("dr-a").await;
    let (mut patient, p, _) = cs.server.joined_patient("a-gp", "Ann", "cough").await;
    let (pr, _) = admit_into_call(&mut doc, &mut patient, &p).await;
    let used = create_invite(&mut doc, &pr.call).await;
    let unused = create_invite(&mut doc, &pr.call).await;
    let mut waiting = cs.server.patient().await;
    join_invite(&mut waiting, &used).await;
    waiting.expect_type("joined").await;

    doc.send(&action("end_consultation", &p, 9)).await;
    waiting.expect_type("consultation_ended").await;
    let mut late = cs.server.patient().await;
    join_invite(&mut late, &unused).await;
    assert_eq!(late.expect_error().await, ErrorCode::InviteInvalid);
    cs.server.stop().await.unwrap();
}
