//! Golden fixtures: every file under `fixtures/<kind>/` parses as that kind's
//! message type and serialises back to the same JSON value. A change to the
//! wire format breaks these tests until the fixtures (and docs/protocol.md)
//! are updated on purpose.

use std::path::Path;

use std::collections::BTreeSet;

use protocol::client::{ClientToSignaling, SignalingToClient};
use protocol::control::{RelayToSignaling, SignalingToRelay};
use serde::Serialize;
use serde::de::DeserializeOwned;

fn fixtures(kind: &str) -> Vec<(String, serde_json::Value)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(kind);
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "json") {
            let text = std::fs::read_to_string(&path).unwrap();
            let value = serde_json::from_str(&text).unwrap();
            out.push((path.display().to_string(), value));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    assert!(!out.is_empty(), "no fixtures in {}", dir.display());
    out
}

/// Parses a fixture as `T`; returns `None` if it is not a `T`, and checks the
/// round trip if it is.
fn round_trip<T: DeserializeOwned + Serialize>(name: &str, value: &serde_json::Value) -> bool {
    let Ok(msg) = serde_json::from_value::<T>(value.clone()) else {
        return false;
    };
    let back = serde_json::to_value(&msg).unwrap();
    assert_eq!(&back, value, "{name} does not round-trip");
    true
}

#[test]
fn control_fixtures_round_trip() {
    let mut relay_to_sig = 0;
    let mut sig_to_relay = 0;
    for (name, value) in fixtures("control") {
        let a = round_trip::<RelayToSignaling>(&name, &value);
        let b = round_trip::<SignalingToRelay>(&name, &value);
        assert!(a || b, "{name} parses as no control message");
        relay_to_sig += usize::from(a);
        sig_to_relay += usize::from(b);
    }
    assert!(relay_to_sig >= 4 && sig_to_relay >= 4);
}

/// Tags that exist in both directions with the same fields (the client's and
/// the relay's SDP answer); their fixtures parse as both.
const BOTH_DIRECTIONS: &[&str] = &["call_answer"];

/// Every client⇄signaling message type has a fixture, and each fixture is
/// exactly one direction's message (or both, for [`BOTH_DIRECTIONS`]) and
/// round-trips unchanged.
#[test]
fn client_fixtures_round_trip() {
    let mut to_sig = BTreeSet::new();
    let mut to_client = BTreeSet::new();
    for (name, value) in fixtures("client") {
        let a = round_trip::<ClientToSignaling>(&name, &value);
        let b = round_trip::<SignalingToClient>(&name, &value);
        let tag = value["type"].as_str().unwrap().to_owned();
        if BOTH_DIRECTIONS.contains(&tag.as_str()) {
            assert!(a && b, "{name} must parse in both directions");
        } else {
            assert!(a ^ b, "{name} must parse as exactly one direction");
        }
        if a {
            to_sig.insert(tag.clone());
        }
        if b {
            to_client.insert(tag);
        }
    }
    let expected: BTreeSet<String> = ClientToSignaling::TYPES
        .iter()
        .map(|t| (*t).to_owned())
        .collect();
    assert_eq!(to_sig, expected, "client→signaling types without a fixture");
    let server_types = [
        "welcome",
        "room_info",
        "joined",
        "queue_status",
        "admitted",
        "transferred",
        "returned_to_queue",
        "denied",
        "consultation_ended",
        "left",
        "queue_snapshot",
        "patient_arrived",
        "patient_updated",
        "patient_left",
        "waiting_times",
        "intake",
        "ok",
        "error",
        "call_ready",
        "call_answer",
        "call_renegotiate",
        "relay_moved",
        "call_waiting_for_relay",
        "roster",
        "call_ended",
        "invite_created",
        "connection_test_ready",
    ];
    let server_types: BTreeSet<String> = server_types.iter().map(|t| (*t).to_owned()).collect();
    assert_eq!(
        to_client, server_types,
        "signaling→client types without a fixture"
    );
}

/// Patient data and secrets never show in `Debug` output (and so in logs).
#[test]
fn debug_output_redacts_patient_data_and_tokens() {
    for (name, value) in fixtures("client") {
        let text = if let Ok(m) = serde_json::from_value::<ClientToSignaling>(value.clone()) {
            format!("{m:?}")
        } else {
            format!(
                "{:?}",
                serde_json::from_value::<SignalingToClient>(value).unwrap()
            )
        };
        for secret in [
            "Alex Example",
            "Sam Sample",
            "Cough",
            "1980-01-31",
            "q7Vd0cS2bX1mE9kLpR4tYw8zN3hJ6fA5",
            "Zx3k9QmT4vB8nL2pW7rY5sD1fG6hJ0aC",
            "eyJyb29tIjoiYy1rM205cTJ4N3c0YWIifQ",
        ] {
            assert!(!text.contains(secret), "{name}: Debug shows {secret}");
        }
    }
}
