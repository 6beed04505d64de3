//! Golden fixtures: every file under `fixtures/<kind>/` parses as that kind's
//! message type and serialises back to the same JSON value. A change to the
//! wire format breaks these tests until the fixtures (and docs/protocol.md)
//! are updated on purpose.

use std::path::Path;

use protocol::control::{RelayToSignaling, SignalingToRelay};
use serde::Serialize;
use serde::de::DeserializeOwned;

fn fixtures(kind: &str) -> Vec<(String, serde_json::Value)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures").join(kind);
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
