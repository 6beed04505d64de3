//! Meeting rooms over real WebSockets: guests join a `kind = "meeting"` room
//! like patients and wait in its lobby; the host's `admit` puts each into the
//! room's single standing call, with one roster for all.

mod calls_support;
mod support;

use calls_support::{FakeRelay, ready, start_meeting, verify};
use serde_json::{Value, json};
use support::action;

fn roster_len(v: &Value) -> Option<usize> {
    v["participants"].as_array().map(Vec::len)
}

#[tokio::test]
async fn guests_are_admitted_into_the_meeting_rooms_one_call() {
    let cs = start_meeting().await;
    let relay = FakeRelay::register(cs.server.addr, "r-eu-1", "eu").await;
    let (mut host, snap) = cs.server.clinician("dr-m").await;
    assert_eq!(snap["rooms"][0]["room"], "m-team");
    let (mut g1, p1, _) = cs.server.joined_patient("m-team", "Gail", "").await;
    let (mut g2, p2, _) = cs.server.joined_patient("m-team", "Gus", "").await;

    host.send(&action("admit", &p1, 1)).await;
    let hr = ready(&host.expect_type("call_ready").await);
    host.expect(|v| v["type"] == "ok" && v["request"] == 1)
        .await;
    g1.expect_type("admitted").await;
    let r1 = ready(&g1.next().await.unwrap());
    host.send(&action("admit", &p2, 2)).await;
    g2.expect_type("admitted").await;
    let r2 = ready(&g2.next().await.unwrap());
    assert_eq!(
        (&r1.call, &r2.call),
        (&hr.call, &hr.call),
        "one standing call"
    );
    verify(&r2.grant, &relay.node);

    let roster = g1
        .expect(|v| v["type"] == "roster" && roster_len(v) == Some(3))
        .await;
    let guests = roster["participants"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["role"] == "guest")
        .count();
    assert_eq!(guests, 2);

    // A guest leaving keeps the call for the others.
    g1.send(&json!({"type": "leave"})).await;
    g1.expect_type("call_ended").await;
    g2.expect(|v| v["type"] == "roster" && roster_len(v) == Some(2))
        .await;
    cs.server.stop().await.unwrap();
}
