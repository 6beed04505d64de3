//! JSON log lines carry their context: the `http` span of the request (the
//! matched route template, never the path with its invite token), the `ws`
//! span of a client WebSocket (connection number and role) and the
//! `control` span of a relay's control socket (its node id). At TRACE level
//! nothing secret reaches them.
//!
//! This file is its own test binary because it installs the global
//! subscriber.

mod relays_support;
mod support;

use protocol::control::{RelayToSignaling, SignalingToRelay};
use serde_json::{Value, json};
use support::logs::CapturedLogs;
use support::{TestServer, http};

const NAME: &str = "Philomena Spanfield-Patientname";
const ANSWER: &str = "knee swollen since Sunday plugh-answer";
const INVITE: &str = "inv-Qx7SecretInviteToken42";

/// The JSON lines whose event message is `message`.
fn events<'a>(lines: &'a [Value], message: &str) -> Vec<&'a Value> {
    lines
        .iter()
        .filter(|l| l["fields"]["message"] == message)
        .collect()
}

#[tokio::test]
async fn json_lines_carry_the_request_connection_and_relay_spans_and_no_secrets() {
    let logs = CapturedLogs::install();
    let server = TestServer::start().await;

    // A page request with an invite token in its path.
    let (status, _, _) = http(server.addr, "GET", &format!("/i/{INVITE}"), None).await;
    assert_eq!(status, 200);
    let (status, _, _) = http(server.addr, "GET", "/no-such-page", None).await;
    assert_eq!(status, 404);

    // A patient and a clinician, each on its own WebSocket.
    let (mut patient, p, resume) = server.joined_patient("a-gp", NAME, ANSWER).await;
    // Refused for the role: logged by the connection task, after hello.
    patient
        .send(&json!({"type": "subscribe", "request": 9}))
        .await;
    patient.expect_type("error").await;
    let session = server.login("dr-a");
    let (mut doc, _) = server.clinician_with(&session).await;
    doc.send(&support::action("get_intake", &p, 2)).await;
    doc.expect_type("intake").await;
    patient.close().await;
    doc.close().await;
    server.stop().await.unwrap();

    // A relay registers and sends something unparseable.
    let relays = relays_support::Server::start().await;
    let mut relay = relays_support::FakeRelay::connect(relays.addr).await;
    let reg = relays_support::register("relay-span", "eu", &[], relays_support::SECRET.as_bytes());
    relay.send(&RelayToSignaling::Register(reg)).await;
    relay.recv().await.expect("registered");
    relay.send_text("{not json").await;
    // Answered in order: once this reply is here, the line above was handled.
    relay.send_binary(vec![1]).await;
    let reply = relay.recv().await;
    assert!(
        matches!(reply, Some(SignalingToRelay::Error { .. })),
        "{reply:?}"
    );
    drop(relay);
    relays.stop().await;

    let text = logs.text();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();

    // One DEBUG `request` line per HTTP request, in its `http` span.
    let requests = events(&lines, "request");
    let page = requests
        .iter()
        .find(|l| l["span"]["route"] == "/i/{token}")
        .unwrap_or_else(|| panic!("no request line for /i/{{token}}: {requests:?}"));
    assert_eq!(page["level"], "DEBUG");
    assert_eq!(page["span"]["name"], "http");
    assert_eq!(page["span"]["method"], "GET");
    assert_eq!(page["span"]["status"], 200);
    assert!(page["span"]["latency_ms"].is_u64(), "{page}");
    assert!(page["span"]["req"].is_u64(), "{page}");
    assert!(
        requests
            .iter()
            .any(|l| l["span"]["route"] == "(unmatched)" && l["span"]["status"] == 404),
        "{requests:?}"
    );
    assert!(
        requests
            .iter()
            .any(|l| l["span"]["route"] == "/ws" && l["span"]["status"] == 101),
        "{requests:?}"
    );

    // Lines logged by a connection task carry its `ws` span and role.
    let hellos = events(&lines, "hello");
    let roles: Vec<_> = hellos
        .iter()
        .map(|l| {
            assert_eq!(l["span"]["name"], "ws", "{l}");
            assert!(l["span"]["conn"].is_u64(), "{l}");
            assert_eq!(l["spans"][0]["name"], "ws", "{l}");
            l["span"]["role"].as_str().unwrap_or("none").to_owned()
        })
        .collect();
    assert!(roles.contains(&"patient".to_owned()), "{hellos:?}");
    assert!(roles.contains(&"clinician".to_owned()), "{hellos:?}");
    let refused = events(&lines, "message not allowed for the role");
    assert!(
        refused
            .iter()
            .any(|l| l["span"]["name"] == "ws" && l["span"]["role"] == "patient"),
        "{refused:?}"
    );

    // A relay's control socket: lines carry its node id.
    let unparseable = events(&lines, "unparseable control message");
    assert!(
        unparseable
            .iter()
            .any(|l| l["span"]["name"] == "control" && l["span"]["node"] == "relay-span"),
        "{unparseable:?}"
    );

    assert!(text.contains(p.as_str()), "the capture carries ids");
    for secret in [
        INVITE,
        "Qx7Secret",
        NAME,
        "Philomena",
        ANSWER,
        "plugh",
        &resume,
        &session,
    ] {
        assert!(!text.contains(secret), "the logs contain {secret:?}");
    }
}
