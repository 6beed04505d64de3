//! Tenant isolation over real WebSockets: a clinician of org B tries every
//! clinician message type on org A's patients and rooms and gets exactly
//! what a nonexistent target gets; org A's clinician sees nothing of org B.

mod support;

use protocol::ParticipantId;
use serde_json::{Value, json};
use support::{Client, TestServer};

/// Every clinician message that names a patient, aimed at `p`.
fn every_action(p: &ParticipantId) -> Vec<Value> {
    vec![
        json!({"type": "get_intake", "participant": p, "request": 1}),
        json!({"type": "admit", "participant": p, "request": 2}),
        json!({"type": "deny", "participant": p, "message": "no", "request": 3}),
        json!({"type": "transfer", "participant": p, "to": {"room": "b-gp"}, "request": 4}),
        json!({"type": "transfer", "participant": p, "to": {"room": "a-nurse"}, "request": 5}),
        json!({"type": "transfer", "participant": p, "to": {"clinician": "dr-b"}, "request": 6}),
        json!({"type": "return_to_queue", "participant": p, "request": 7}),
        json!({"type": "end_consultation", "participant": p, "request": 8}),
    ]
}

/// Sends `msg` and returns the reply (the next message on `c`).
async fn reply(c: &mut Client, msg: &Value) -> Value {
    c.send(msg).await;
    c.next().await.expect("a reply")
}

#[tokio::test]
async fn a_clinician_of_another_org_can_neither_see_nor_act() {
    // Many requests in a row: lift the rate limit out of the way.
    let server = TestServer::start_with(|s| s.ws.rate_burst = 10_000).await;
    let (mut dr_a, _) = server.clinician("dr-a").await;
    let (mut dr_b, snap_b) = server.clinician("dr-b").await;
    assert_eq!(snap_b["rooms"].as_array().unwrap().len(), 1);
    assert_eq!(snap_b["rooms"][0]["room"], "b-gp");

    let (mut waiting, pw, _) = server.joined_patient("a-gp", "Ann", "x").await;
    let (mut admitted, pa, _) = server.joined_patient("a-gp", "Bob", "y").await;
    dr_a.send(&json!({"type": "admit", "participant": pa, "request": 99}))
        .await;
    dr_a.expect(|v| v["type"] == "ok" && v["request"] == 99)
        .await;
    admitted.expect_type("admitted").await;

    let ghost = ParticipantId::new("no-such-patient").unwrap();
    for msg in every_action(&ghost) {
        let r = reply(&mut dr_b, &msg).await;
        assert_eq!(
            (r["type"].as_str(), r["code"].as_str()),
            (Some("error"), Some("not_found")),
            "{msg}"
        );
    }
    // Same reply, word for word, for another organisation's patients.
    for p in [&pw, &pa] {
        for (msg, ghost_msg) in every_action(p).into_iter().zip(every_action(&ghost)) {
            let r = reply(&mut dr_b, &msg).await;
            let g = reply(&mut dr_b, &ghost_msg).await;
            assert_eq!(r, g, "{msg}");
            assert_eq!(r["request"], msg["request"]);
        }
    }
    // Subscribing again still shows only org B.
    dr_b.send(&json!({"type": "subscribe"})).await;
    let snap = dr_b.next().await.unwrap();
    assert_eq!(
        snap["type"], "queue_snapshot",
        "no event about org A arrived first: {snap}"
    );
    assert_eq!(snap["rooms"].as_array().unwrap().len(), 1);

    // Org A's clinician cannot send its patient into org B.
    let to_b_room =
        json!({"type": "transfer", "participant": pw, "to": {"room": "b-gp"}, "request": 20});
    assert_eq!(reply(&mut dr_a, &to_b_room).await["code"], "not_found");
    let to_dr_b =
        json!({"type": "transfer", "participant": pw, "to": {"clinician": "dr-b"}, "request": 21});
    assert_eq!(reply(&mut dr_a, &to_dr_b).await["code"], "not_found");

    // Org B's patient is invisible to org A, and unreachable.
    let (_b_patient, pb, _) = server.joined_patient("b-gp", "Zed", "z").await;
    dr_b.expect(|v| v["type"] == "patient_arrived").await;
    for msg in every_action(&pb) {
        let r = reply(&mut dr_a, &msg).await;
        assert_eq!(r["type"], "error", "{msg} → {r}");
        assert!(
            r["code"] == "not_found" || r["code"] == "bad_request",
            "{r}"
        );
        assert!(!r.to_string().contains("Zed"));
    }
    dr_a.send(&json!({"type": "subscribe"})).await;
    let snap = dr_a.next().await.unwrap();
    assert_eq!(
        snap["type"], "queue_snapshot",
        "no event about org B arrived: {snap}"
    );
    assert!(!snap.to_string().contains(pb.as_str()) && !snap.to_string().contains("b-gp"));

    // Org B's attempts changed nothing for org A's patients: still first in
    // the queue, never told anything else.
    for v in waiting.sync().await {
        assert_eq!(
            (v["type"].as_str(), v["position"].as_u64()),
            (Some("queue_status"), Some(1)),
            "{v}"
        );
    }
    server.stop().await.unwrap();
}
