//! Patient → wait → admit over real WebSockets, position updates, resume
//! within and after the grace period.

mod support;

use std::time::Duration;

use protocol::client::ErrorCode;
use serde_json::json;
use support::{TestServer, action};

#[tokio::test]
async fn full_patient_wait_admit_flow() {
    let server = TestServer::start().await;
    let (mut doc, snap) = server.clinician("dr-a").await;
    let rooms: Vec<_> = snap["rooms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["room"].clone())
        .collect();
    assert_eq!(rooms, [json!("a-gp"), json!("a-hidden"), json!("a-nurse")]);
    // The snapshot carries each room's intake questions, so the portal can
    // label the answers.
    assert_eq!(
        snap["rooms"][0]["intake"],
        json!([{"id": "reason", "label": "Why are you here?", "required": true}])
    );

    let (mut patient, p, _) = server
        .joined_patient("a-gp", "Ann Example", "a cough")
        .await;
    let status = patient.expect_type("queue_status").await;
    assert_eq!(
        (
            status["position"].as_u64(),
            status["estimated_wait_secs"].as_u64()
        ),
        (Some(1), Some(300))
    );

    let arrived = doc.expect_type("patient_arrived").await;
    assert_eq!(arrived["entry"]["participant"], json!(p));
    assert_eq!(arrived["entry"]["display_name"], "Ann Example");
    assert_eq!(arrived["entry"]["position"], 1);

    doc.send(&action("get_intake", &p, 10)).await;
    let intake = doc.expect_type("intake").await;
    assert_eq!(intake["request"], 10);
    assert_eq!(intake["answers"], json!({"reason": "a cough"}));

    doc.send(&action("admit", &p, 11)).await;
    let updated = doc.expect_type("patient_updated").await;
    assert_eq!(updated["entry"]["state"], "admitted");
    assert_eq!(updated["entry"]["clinician"], "dr-a");
    assert_eq!(doc.expect_type("ok").await["request"], 11);
    let admitted = patient.expect_type("admitted").await;
    assert_eq!(
        admitted,
        json!({"type": "admitted", "room": "a-gp", "clinician_name": "Dr dr-a"})
    );

    doc.send(&action("end_consultation", &p, 12)).await;
    let left = doc.expect_type("patient_left").await;
    assert_eq!(
        (left["participant"].clone(), left["reason"].clone()),
        (json!(p), json!("ended"))
    );
    assert_eq!(doc.expect_type("ok").await["request"], 12);
    patient.expect_type("consultation_ended").await;

    // The intake answers are gone with the seat.
    doc.send(&action("get_intake", &p, 13)).await;
    assert_eq!(doc.expect_error().await, ErrorCode::NotFound);

    let actions: Vec<_> = server
        .audit_json()
        .iter()
        .map(|l| l["action"].clone())
        .collect();
    assert_eq!(
        actions,
        [json!("login"), json!("admit"), json!("end_consultation")]
    );
    server.stop().await.unwrap();
}

#[tokio::test]
async fn positions_update_when_someone_ahead_leaves_or_is_admitted() {
    let server = TestServer::start().await;
    let (mut doc, _) = server.clinician("dr-a").await;
    let (mut first, _, _) = server.joined_patient("a-gp", "First", "x").await;
    let (mut second, p2, _) = server.joined_patient("a-gp", "Second", "x").await;
    let (mut third, _, _) = server.joined_patient("a-gp", "Third", "x").await;
    assert_eq!(second.expect_type("queue_status").await["position"], 2);
    assert_eq!(third.expect_type("queue_status").await["position"], 3);

    first.send(&json!({"type": "leave"})).await;
    first.expect_type("left").await;
    assert_eq!(second.expect_type("queue_status").await["position"], 1);
    assert_eq!(third.expect_type("queue_status").await["position"], 2);
    doc.expect(|v| v["type"] == "patient_left" && v["reason"] == "left")
        .await;

    doc.send(&action("admit", &p2, 1)).await;
    second.expect_type("admitted").await;
    let status = third.expect_type("queue_status").await;
    assert_eq!(status["position"], 1);
    first.ping_room("a-gp").await;
    server.stop().await.unwrap();
}

#[tokio::test]
async fn resume_within_grace_keeps_the_seat_and_position() {
    let server = TestServer::start().await;
    let (mut doc, _) = server.clinician("dr-a").await;
    let (first, p1, token) = server.joined_patient("a-gp", "First", "x").await;
    let (mut second, _, _) = server.joined_patient("a-gp", "Second", "x").await;
    assert_eq!(second.expect_type("queue_status").await["position"], 2);

    first.close().await;
    let gone = doc
        .expect(|v| v["type"] == "patient_updated" && v["entry"]["connected"] == false)
        .await;
    assert_eq!(gone["entry"]["participant"], json!(p1));

    let mut again = server.patient().await;
    again.send(&json!({"type": "resume", "token": token})).await;
    let joined = again.expect_type("joined").await;
    assert_eq!(
        (joined["participant"].clone(), joined["resumed"].clone()),
        (json!(p1), json!(true))
    );
    assert_eq!(again.expect_type("queue_status").await["position"], 1);
    let back = doc
        .expect(|v| v["type"] == "patient_updated" && v["entry"]["connected"] == true)
        .await;
    assert_eq!(back["entry"]["position"], 1);
    // The second patient kept position 2 throughout: the next thing it hears
    // is the answer to its own request.
    second
        .send(&json!({"type": "get_room", "room": "a-gp"}))
        .await;
    assert_eq!(second.next().await.unwrap()["type"], "room_info");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn after_the_grace_period_the_seat_is_released_and_clinicians_told() {
    let server = TestServer::start_with(|s| s.lobby.grace = Duration::from_millis(200)).await;
    let (mut doc, _) = server.clinician("dr-a").await;
    let (first, p1, token) = server.joined_patient("a-gp", "First", "x").await;
    let (mut second, _, _) = server.joined_patient("a-gp", "Second", "x").await;
    first.close().await;
    let left = doc.expect(|v| v["type"] == "patient_left").await;
    assert_eq!(
        (left["participant"].clone(), left["reason"].clone()),
        (json!(p1), json!("timed_out"))
    );
    assert_eq!(
        second
            .expect(|v| v["type"] == "queue_status" && v["position"] == 1)
            .await["position"],
        1
    );

    let mut late = server.patient().await;
    late.send(&json!({"type": "resume", "token": token})).await;
    assert_eq!(late.expect_error().await, ErrorCode::NotFound);
    doc.send(&action("get_intake", &p1, 1)).await;
    assert_eq!(doc.expect_error().await, ErrorCode::NotFound);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn a_room_can_hide_the_position() {
    let server = TestServer::start().await;
    let (_a, _, _) = server.joined_patient("a-hidden", "First", "x").await;
    let (mut b, _, _) = server.joined_patient("a-hidden", "Second", "x").await;
    let status = b.expect_type("queue_status").await;
    assert_eq!(status, json!({"type": "queue_status", "room": "a-hidden"}));
    server.stop().await.unwrap();
}
