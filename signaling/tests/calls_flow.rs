//! A consultation's call over real WebSockets on 127.0.0.1, with a fake
//! relay on `/control`: admission gives both parties `call_ready` with grants
//! for the same call on the same relay; offers, answers, candidates and
//! renegotiations are forwarded; the roster follows mute changes; ending the
//! consultation closes the relay room; a resumed patient gets `call_ready`
//! again; without any relay, both wait and the call starts when one registers.

mod calls_support;
mod support;

use calls_support::{FakeRelay, admit_into_call, call_msg, ready, start, verify};
use protocol::control::{RelayToSignaling, SignalingToRelay};
use protocol::{GrantRole, PROTOCOL_VERSION};
use serde_json::json;
use support::action;

#[tokio::test]
async fn admit_places_one_call_and_forwards_sdp_both_ways() {
    let cs = start(false).await;
    let mut relay = FakeRelay::register(cs.server.addr, "r-eu-1", "eu").await;
    let (mut doc, _) = cs.server.clinician("dr-a").await;
    let (mut patient, p, _) = cs.server.joined_patient("a-gp", "Ann", "cough").await;
    let (pr, dr) = admit_into_call(&mut doc, &mut patient, &p).await;

    assert_eq!(pr.call, dr.call, "one call");
    assert_eq!(pr.participant, p, "the patient keeps its seat id");
    assert_ne!(dr.participant, p);
    assert_eq!((&pr.relay, &dr.relay), (&relay.node, &relay.node));
    for r in [&pr, &dr] {
        let g = verify(&r.grant, &relay.node);
        assert_eq!((&g.room, &g.participant), (&r.call, &r.participant));
        assert_eq!(g.role, GrantRole::Participant);
    }
    let roster = patient.expect_type("roster").await;
    assert_eq!(roster["participants"].as_array().map(Vec::len), Some(2));

    // Offer → relay (with the patient's grant) → answer → patient.
    call_msg(
        &mut patient,
        "call_offer",
        &pr.call,
        json!({"sdp": "v=0 patient-offer"}),
    )
    .await;
    let (g, sdp) = relay.answer_offer("v=0 relay-answer").await;
    assert_eq!(
        (g.participant, sdp.as_str()),
        (p.clone(), "v=0 patient-offer")
    );
    let answer = patient.expect_type("call_answer").await;
    assert_eq!(answer["sdp"], "v=0 relay-answer");
    assert_eq!(answer["call"], json!(pr.call));

    // Candidates are forwarded with the call and participant.
    let cand = "candidate:1 1 udp 2130706431 127.0.0.1 50000 typ host";
    call_msg(
        &mut patient,
        "call_candidate",
        &pr.call,
        json!({"candidate": cand}),
    )
    .await;
    let got = relay
        .expect(|m| matches!(m, SignalingToRelay::Candidate { .. }))
        .await;
    let SignalingToRelay::Candidate {
        room,
        participant,
        candidate,
    } = got
    else {
        unreachable!()
    };
    assert_eq!(
        (room, participant, candidate.as_str()),
        (pr.call.clone(), p.clone(), cand)
    );

    // The relay renegotiates with the clinician; its answer goes back.
    let reneg = RelayToSignaling::Renegotiate {
        room: dr.call.clone(),
        participant: dr.participant.clone(),
        sdp: "v=0 relay-offer".into(),
    };
    relay.send(&reneg).await;
    let r = doc.expect_type("call_renegotiate").await;
    assert_eq!(r["sdp"], "v=0 relay-offer");
    call_msg(
        &mut doc,
        "call_answer",
        &dr.call,
        json!({"sdp": "v=0 doc-answer"}),
    )
    .await;
    let got = relay
        .expect(|m| matches!(m, SignalingToRelay::RenegotiateAnswer { .. }))
        .await;
    let SignalingToRelay::RenegotiateAnswer {
        participant, sdp, ..
    } = got
    else {
        unreachable!()
    };
    assert_eq!(
        (participant, sdp.as_str()),
        (dr.participant.clone(), "v=0 doc-answer")
    );

    // Mute shows in everyone's roster.
    call_msg(
        &mut doc,
        "call_mute",
        &dr.call,
        json!({"audio": true, "video": false}),
    )
    .await;
    let roster = patient
        .expect(|v| {
            v["type"] == "roster"
                && v["participants"]
                    .as_array()
                    .is_some_and(|ps| ps.iter().any(|e| e["audio_muted"] == true))
        })
        .await;
    let muted: Vec<_> = roster["participants"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["audio_muted"] == true)
        .map(|e| e["role"].clone())
        .collect();
    assert_eq!(muted, [json!("clinician")]);

    // Ending the consultation closes the relay room and ends the call.
    doc.send(&action("end_consultation", &p, 9)).await;
    let ended = doc.expect_type("call_ended").await;
    assert_eq!(ended["call"], json!(dr.call));
    patient.expect_type("call_ended").await;
    patient.expect_type("consultation_ended").await;
    let closed = relay
        .expect(|m| matches!(m, SignalingToRelay::CloseRoom { .. }))
        .await;
    assert!(matches!(closed, SignalingToRelay::CloseRoom { room } if room == pr.call));
    cs.server.stop().await.unwrap();
}

#[tokio::test]
async fn a_resumed_patient_gets_call_ready_again_with_a_fresh_grant() {
    let cs = start(false).await;
    let relay = FakeRelay::register(cs.server.addr, "r-eu-1", "eu").await;
    let (mut doc, _) = cs.server.clinician("dr-a").await;
    let (mut patient, p, token) = cs.server.joined_patient("a-gp", "Ann", "cough").await;
    let (pr, _) = admit_into_call(&mut doc, &mut patient, &p).await;
    patient.close().await;

    let mut again = cs.server.patient().await;
    again.send(&json!({"type": "resume", "token": token})).await;
    again.expect_type("admitted").await;
    let r = ready(&again.expect_type("call_ready").await);
    assert_eq!(
        (&r.call, &r.participant, &r.relay),
        (&pr.call, &p, &relay.node)
    );
    verify(&r.grant, &relay.node);
    cs.server.stop().await.unwrap();
}

#[tokio::test]
async fn without_a_relay_both_wait_and_the_call_starts_when_one_registers() {
    let cs = start(false).await;
    let (mut doc, _) = cs.server.clinician("dr-a").await;
    let (mut patient, p, _) = cs.server.joined_patient("a-gp", "Ann", "cough").await;
    doc.send(&action("admit", &p, 3)).await;
    let waiting = doc.expect_type("call_waiting_for_relay").await;
    patient.expect_type("admitted").await;
    let pw = patient.expect_type("call_waiting_for_relay").await;
    assert_eq!(waiting["call"], pw["call"]);

    // An offer meanwhile is refused clearly; the waiting room keeps working.
    patient
        .send(&json!({"type": "call_offer", "call": pw["call"], "sdp": "v=0"}))
        .await;
    assert_eq!(
        patient.expect_error().await,
        protocol::client::ErrorCode::NoRelay
    );
    let (_other, _, _) = cs.server.joined_patient("a-gp", "Bo", "cough").await;

    let relay = FakeRelay::register(cs.server.addr, "r-eu-9", "eu").await;
    for c in [&mut patient, &mut doc] {
        let r = ready(&c.expect_type("call_ready").await);
        assert_eq!(json!(r.call), pw["call"]);
        assert_eq!(r.relay, relay.node);
        verify(&r.grant, &relay.node);
    }
    cs.server.stop().await.unwrap();
}

#[tokio::test]
async fn hello_accepts_a_region_hint() {
    let cs = start(false).await;
    let mut c = support::Client::connect(cs.server.addr).await;
    c.send(
        &json!({"type": "hello", "version": PROTOCOL_VERSION, "role": "patient", "region": "us"}),
    )
    .await;
    c.expect_type("welcome").await;
    cs.server.stop().await.unwrap();
}

#[tokio::test]
async fn a_refused_offer_is_reported_to_the_client_only() {
    let cs = start(false).await;
    let mut relay = FakeRelay::register(cs.server.addr, "r-eu-1", "eu").await;
    let (mut doc, _) = cs.server.clinician("dr-a").await;
    let (mut patient, p, _) = cs.server.joined_patient("a-gp", "Ann", "cough").await;
    let (pr, _) = admit_into_call(&mut doc, &mut patient, &p).await;
    call_msg(
        &mut patient,
        "call_offer",
        &pr.call,
        json!({"sdp": "not sdp"}),
    )
    .await;
    let SignalingToRelay::Offer { request, .. } = relay
        .expect(|m| matches!(m, SignalingToRelay::Offer { .. }))
        .await
    else {
        unreachable!()
    };
    let refused = RelayToSignaling::Refused {
        request,
        reason: "bad SDP".into(),
    };
    relay.send(&refused).await;
    let err = patient.expect_type("error").await;
    assert_eq!(err["code"], "bad_request");
    assert!(
        err["message"].as_str().unwrap().contains("bad SDP"),
        "{err}"
    );
    let seen = doc.sync().await;
    assert!(seen.iter().all(|v| v["type"] != "error"), "{seen:?}");
    cs.server.stop().await.unwrap();
}
