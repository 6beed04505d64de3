//! Bad input of every kind gets a clear error on that connection only; the
//! connection (and every other one) keeps working.

mod support;

use std::time::Duration;

use protocol::client::ErrorCode;
use serde_json::json;
use signaling::clock::Clock;
use support::{Client, TestServer, action};

#[tokio::test]
async fn malformed_unknown_oversized_and_binary_frames_get_errors_and_the_connection_survives() {
    let server = TestServer::start().await;
    let (mut bystander, _, _) = server.joined_patient("a-gp", "Bystander", "x").await;
    bystander.expect_type("queue_status").await;
    let mut c = server.patient().await;

    c.send_raw("{this is not json").await;
    assert_eq!(c.expect_error().await, ErrorCode::BadJson);
    c.send_raw("[1, 2, 3]").await;
    assert_eq!(c.expect_error().await, ErrorCode::BadJson);
    c.send_raw(r#"{"type": "launch_rockets"}"#).await;
    let err = c.expect_type("error").await;
    assert_eq!(err["code"], "unknown_type");
    assert!(err["message"].as_str().unwrap().contains("launch_rockets"));
    c.send_raw(r#"{"type": "join", "room": 5}"#).await;
    assert_eq!(c.expect_error().await, ErrorCode::BadRequest);
    let big = format!(
        r#"{{"type":"get_room","room":"{}"}}"#,
        "x".repeat(70 * 1024)
    );
    c.send_raw(&big).await;
    let err = c.expect_type("error").await;
    assert_eq!(err["code"], "too_large");
    assert!(err["message"].as_str().unwrap().contains("65536"));
    c.send_binary(b"\x00\x01").await;
    assert_eq!(c.expect_error().await, ErrorCode::BadJson);

    // Still working, and the bystander noticed nothing.
    c.ping_room("a-gp").await;
    bystander
        .send(&json!({"type": "get_room", "room": "a-gp"}))
        .await;
    assert_eq!(bystander.next().await.unwrap()["type"], "room_info");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn hello_is_required_first_and_checked() {
    let server = TestServer::start().await;
    let mut c = Client::connect(server.addr).await;
    c.send(&json!({"type": "get_room", "room": "a-gp"})).await;
    assert_eq!(c.expect_error().await, ErrorCode::BadRequest);
    c.send(&json!({"type": "hello", "version": 1, "role": "patient"}))
        .await;
    c.expect_type("welcome").await;
    c.send(&json!({"type": "hello", "version": 1, "role": "patient"}))
        .await;
    assert_eq!(c.expect_error().await, ErrorCode::BadRequest);
    c.ping_room("a-gp").await;

    let mut old = Client::connect(server.addr).await;
    old.send(&json!({"type": "hello", "version": 999, "role": "patient"}))
        .await;
    assert_eq!(old.expect_error().await, ErrorCode::VersionMismatch);
    old.expect_closed().await;

    for session in [json!(null), json!("not-a-real-token")] {
        let mut fake = Client::connect(server.addr).await;
        fake.send(&json!({"type": "hello", "version": 1, "role": "clinician", "session": session}))
            .await;
        assert_eq!(fake.expect_error().await, ErrorCode::Unauthenticated);
        fake.expect_closed().await;
    }
    server.stop().await.unwrap();
}

#[tokio::test]
async fn messages_of_the_other_role_are_forbidden() {
    let server = TestServer::start().await;
    let (mut doc, _) = server.clinician("dr-a").await;
    let (mut patient, p, _) = server.joined_patient("a-gp", "Ann", "x").await;
    for ty in [
        "admit",
        "get_intake",
        "deny",
        "return_to_queue",
        "end_consultation",
    ] {
        patient.send(&action(ty, &p, 5)).await;
        let err = patient.expect_type("error").await;
        assert_eq!(
            (err["code"].as_str(), err["request"].as_u64()),
            (Some("forbidden"), Some(5)),
            "{ty}"
        );
    }
    patient.send(&json!({"type": "subscribe"})).await;
    assert_eq!(patient.expect_error().await, ErrorCode::Forbidden);
    doc.send(
        &json!({"type": "join", "room": "a-gp", "display_name": "Eve", "intake": {"reason": "x"}}),
    )
    .await;
    assert_eq!(doc.expect_error().await, ErrorCode::Forbidden);
    doc.send(&json!({"type": "leave"})).await;
    assert_eq!(doc.expect_error().await, ErrorCode::Forbidden);
    // Nobody was admitted; both connections still work.
    patient.ping_room("a-gp").await;
    doc.send(&action("admit", &p, 6)).await;
    doc.expect(|v| v["type"] == "ok" && v["request"] == 6).await;
    patient.expect_type("admitted").await;
    server.stop().await.unwrap();
}

#[tokio::test]
async fn a_flood_is_rate_limited_without_affecting_others() {
    let server = TestServer::start_with(|s| s.clock = Clock::manual()).await;
    let (mut bystander, _, _) = server.joined_patient("a-gp", "Bystander", "x").await;
    bystander.expect_type("queue_status").await;
    let mut flooder = server.patient().await;
    for _ in 0..200 {
        flooder
            .send(&json!({"type": "get_room", "room": "a-gp"}))
            .await;
    }
    // Every frame was read (and judged) before time moves on.
    let mut seen = flooder.sync().await;
    // Others are served meanwhile.
    bystander.ping_room("a-gp").await;

    // After a second the flooder is served again: the connection survived.
    server.clock.advance(Duration::from_secs(2));
    flooder
        .send(&json!({"type": "get_room", "room": "a-nurse"}))
        .await;
    let (mut infos, mut limited) = (0, Vec::new());
    loop {
        let v = if seen.is_empty() {
            flooder.next().await.unwrap()
        } else {
            seen.remove(0)
        };
        match (v["type"].as_str(), v["room"].as_str()) {
            (Some("room_info"), Some("a-gp")) => infos += 1,
            (Some("room_info"), Some("a-nurse")) => break,
            (Some("error"), _) => limited.push(v["code"].clone()),
            _ => panic!("{v}"),
        }
    }
    assert_eq!(infos, 39, "the burst of 40 (hello took one) is served");
    assert_eq!(
        limited,
        [json!("rate_limited")],
        "one error per second, not one per message"
    );
    server.stop().await.unwrap();
}
