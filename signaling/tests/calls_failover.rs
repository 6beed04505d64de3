//! Relay failure seen by call participants, over real WebSockets with fake
//! relays on `/control`: a relay whose control socket drops has its call
//! moved to the sibling and every participant gets `relay_moved` with a fresh
//! grant for it; with no sibling the call waits and resumes when a relay
//! registers; a client reporting ICE failure on a live relay alone gets the
//! same relay again with a fresh grant.

mod calls_support;
mod support;

use calls_support::{FakeRelay, admit_into_call, call_msg, start, verify};
use protocol::NodeId;
use serde_json::{Value, json};

fn relay_of(v: &Value) -> NodeId {
    serde_json::from_value(v["relay"].clone()).expect("relay")
}

#[tokio::test]
async fn a_dead_relays_call_moves_to_the_sibling_for_every_participant() {
    let cs = start(false).await;
    let r1 = FakeRelay::register(cs.server.addr, "r-eu-1", "eu").await;
    let r2 = FakeRelay::register(cs.server.addr, "r-eu-2", "eu").await;
    let (mut doc, _) = cs.server.clinician("dr-a").await;
    let (mut patient, p, _) = cs.server.joined_patient("a-gp", "Ann", "cough").await;
    let (pr, dr) = admit_into_call(&mut doc, &mut patient, &p).await;
    let (dying, survivor) = if pr.relay == r1.node {
        (r1, r2)
    } else {
        (r2, r1)
    };
    assert_eq!(pr.relay, dying.node);

    dying.close().await;
    for (c, me) in [(&mut patient, &pr), (&mut doc, &dr)] {
        let moved = c.expect_type("relay_moved").await;
        assert_eq!(moved["call"], json!(me.call));
        assert_eq!(relay_of(&moved), survivor.node);
        let g = verify(&moved["grant"], &survivor.node);
        assert_eq!(
            (g.room, g.participant),
            (me.call.clone(), me.participant.clone())
        );
    }
    assert_eq!(cs.pool.placement_of(&pr.call), Some(survivor.node.clone()));
    cs.server.stop().await.unwrap();
}

#[tokio::test]
async fn with_no_sibling_the_call_waits_then_resumes_on_a_new_relay() {
    let cs = start(false).await;
    let only = FakeRelay::register(cs.server.addr, "r-eu-1", "eu").await;
    let (mut doc, _) = cs.server.clinician("dr-a").await;
    let (mut patient, p, _) = cs.server.joined_patient("a-gp", "Ann", "cough").await;
    let (pr, _) = admit_into_call(&mut doc, &mut patient, &p).await;
    only.close().await;
    for c in [&mut patient, &mut doc] {
        let w = c.expect_type("call_waiting_for_relay").await;
        assert_eq!(w["call"], json!(pr.call));
    }
    // The waiting room keeps working meanwhile.
    cs.server.joined_patient("a-gp", "Bo", "cough").await;

    let fresh = FakeRelay::register(cs.server.addr, "r-us-1", "us").await;
    for c in [&mut patient, &mut doc] {
        let v = c
            .expect(|v| v["type"] == "relay_moved" || v["type"] == "call_ready")
            .await;
        assert_eq!(relay_of(&v), fresh.node);
        verify(&v["grant"], &fresh.node);
    }
    cs.server.stop().await.unwrap();
}

#[tokio::test]
async fn ice_failure_on_a_live_relay_gets_that_client_a_fresh_grant_for_it() {
    let cs = start(false).await;
    let relay = FakeRelay::register(cs.server.addr, "r-eu-1", "eu").await;
    let (mut doc, _) = cs.server.clinician("dr-a").await;
    let (mut patient, p, _) = cs.server.joined_patient("a-gp", "Ann", "cough").await;
    let (pr, _) = admit_into_call(&mut doc, &mut patient, &p).await;
    doc.sync().await;
    call_msg(&mut patient, "call_ice_failed", &pr.call, json!({})).await;
    let moved = patient.expect_type("relay_moved").await;
    assert_eq!(relay_of(&moved), relay.node);
    let g = verify(&moved["grant"], &relay.node);
    assert_eq!(g.participant, p);
    let seen = doc.sync().await;
    assert!(
        seen.iter().all(|v| v["type"] != "relay_moved"),
        "only the reporting client: {seen:?}"
    );
    cs.server.stop().await.unwrap();
}
