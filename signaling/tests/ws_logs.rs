//! Logs carry ids only: a full flow at TRACE level (every crate, including
//! the WebSocket library and the `log` bridge) never writes a patient's name,
//! intake answers, tokens or passwords. The audit trail neither.
//!
//! This file is its own test binary because it installs the global
//! subscriber.

mod support;

use serde_json::json;
use support::logs::CapturedLogs;
use support::{Client, PASSWORD, TestServer, action, http};

const NAME: &str = "Zebulon Quixote-Patientname";
const ANSWER: &str = "chest pain since Tuesday xyzzy-answer";
const DENY: &str = "Please phone us, Zebulon";

#[tokio::test]
async fn a_full_flow_logs_no_patient_data() {
    let logs = CapturedLogs::install();
    let server = TestServer::start().await;

    // A clinician logs in over REST (password on the wire) and subscribes.
    let body = json!({"username": "dr-a", "password": PASSWORD});
    let (status, _, reply) = http(server.addr, "POST", "/api/login", Some(&body)).await;
    assert_eq!(status, 200);
    let session: serde_json::Value = serde_json::from_str(&reply).unwrap();
    let session = session["token"].as_str().unwrap().to_owned();
    let (mut doc, _) = server.clinician_with(&session).await;
    let (_doc2, _) = server.clinician("dr-a2").await;

    // A patient joins, drops, resumes; bad input echoing the name too.
    let (mut patient, p, token) = server.joined_patient("a-gp", NAME, ANSWER).await;
    patient
        .send(
            &json!({"type": "join", "room": "a-gp", "display_name": NAME, "intake": {"reason": 5}}),
        )
        .await;
    patient.expect_type("error").await;
    patient
        .send_raw(&format!("{{\"type\": \"nonsense-{NAME}\"}}"))
        .await;
    patient.expect_type("error").await;
    patient.close().await;
    doc.expect(|v| v["type"] == "patient_updated" && v["entry"]["connected"] == false)
        .await;
    let mut patient = server.patient().await;
    patient
        .send(&json!({"type": "resume", "token": token}))
        .await;
    patient.expect_type("joined").await;

    // Every clinician action on them.
    for (i, msg) in [
        action("get_intake", &p, 1),
        action("admit", &p, 2),
        json!({"type": "transfer", "participant": p, "to": {"clinician": "dr-a2"}, "request": 3}),
        action("return_to_queue", &p, 4),
        json!({"type": "deny", "participant": p, "message": DENY, "request": 5}),
    ]
    .iter()
    .enumerate()
    {
        doc.send(msg).await;
        let request = i + 1;
        doc.expect(|v| v["request"] == request && (v["type"] == "ok" || v["type"] == "intake"))
            .await;
    }
    patient.expect_type("denied").await;
    // A second patient goes through to the end of a consultation.
    let (mut second, p2, _) = server.joined_patient("a-gp", NAME, ANSWER).await;
    doc.send(&action("admit", &p2, 6)).await;
    doc.send(&action("end_consultation", &p2, 7)).await;
    second.expect_type("consultation_ended").await;
    let mut spare = Client::connect(server.addr).await;
    spare
        .send_raw(&format!(
            "{{\"type\":\"hello\",\"version\":1,\"role\":\"clinician\",\"session\":\"{session}x\"}}"
        ))
        .await;
    spare.expect_closed().await;
    let audit = server.audit.lines();
    let audit_json = server.audit_json();
    server.stop().await.unwrap();

    let text = logs.text();
    // The capture works and carries ids.
    assert!(text.contains("patient joined"), "{text}");
    assert!(text.contains(p.as_str()));
    assert!(text.lines().count() > 20);
    for secret in [
        NAME, "Zebulon", ANSWER, "xyzzy", DENY, &token, &session, PASSWORD,
    ] {
        assert!(!text.contains(secret), "the logs contain {secret:?}");
    }

    let actions: Vec<_> = audit_json
        .iter()
        .map(|l| l["action"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        actions,
        [
            "login",
            "login",
            "admit",
            "transfer",
            "return_to_queue",
            "deny",
            "admit",
            "end_consultation"
        ]
    );
    for line in &audit {
        for secret in [NAME, "Zebulon", ANSWER, DENY, &token, &session, PASSWORD] {
            assert!(
                !line.contains(secret),
                "audit line contains {secret:?}: {line}"
            );
        }
    }
    let admit: serde_json::Value = serde_json::from_str(&audit[2]).unwrap();
    assert_eq!(
        (admit["actor"].as_str(), admit["participant"].as_str()),
        (Some("dr-a"), Some(p.as_str()))
    );
    assert!(
        admit["time"].as_str().unwrap().ends_with('Z'),
        "UTC: {admit}"
    );
}
