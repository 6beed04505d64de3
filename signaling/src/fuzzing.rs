//! Entry functions of the cargo-fuzz targets in `fuzz/` for signaling's
//! network input, and of the tests that replay the committed corpus
//! (`fuzz/corpus/<target>/`) through them on stable Rust in every
//! `cargo test` (see `fuzzing/replay.rs` and docs/operations.md, "Fuzzing").
//!
//! Each function takes arbitrary bytes and must never panic, except where it
//! asserts a property of the code under test (the round trips below): a
//! failed assertion is a finding, as a crash would be.

#[cfg(test)]
mod replay;

use std::cell::RefCell;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use protocol::client::{ClientToSignaling, SignalingToClient};
use protocol::control::{RelayToSignaling, SignalingToRelay};
use protocol::{Grant, GrantRole, NodeId, ParticipantId, RoomId};
use relay::fuzzing::{DatagramHarness, FUZZ_SECRET};
use sha2::{Digest as _, Sha256};

/// The relay node the fuzzing grants and the offer harness use.
pub const FUZZ_NODE: &str = "relay-fuzz";

/// A client frame, as the WebSocket pump parses it
/// ([`ClientToSignaling::parse`]); also as a server message (what clients
/// parse). Whatever parses must serialise and parse back to itself.
pub fn client_message(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(msg) = ClientToSignaling::parse(text) {
        let again = serde_json::to_string(&msg).expect("a parsed message serialises");
        let back = ClientToSignaling::parse(&again).expect("a serialised message parses");
        assert_eq!(back, msg, "client message round trip");
    }
    if let Ok(msg) = serde_json::from_str::<SignalingToClient>(text) {
        let again = serde_json::to_string(&msg).expect("a parsed message serialises");
        assert!(serde_json::from_str::<SignalingToClient>(&again).is_ok());
    }
}

/// A control-link frame, both directions (signaling parses
/// [`RelayToSignaling`] on `/control`; relays parse [`SignalingToRelay`]).
/// Whatever parses must serialise to something that parses again.
pub fn control_message(data: &[u8]) {
    if let Ok(msg) = serde_json::from_slice::<RelayToSignaling>(data) {
        let again = serde_json::to_vec(&msg).expect("a parsed message serialises");
        assert!(serde_json::from_slice::<RelayToSignaling>(&again).is_ok());
    }
    if let Ok(msg) = serde_json::from_slice::<SignalingToRelay>(data) {
        let again = serde_json::to_vec(&msg).expect("a parsed message serialises");
        assert!(serde_json::from_slice::<SignalingToRelay>(&again).is_ok());
    }
}

/// A grant token. Byte 0 picks the mode: even, the rest is a token as a
/// client would present it; odd, the rest is a payload that the harness
/// signs with the right secret, so that the JSON and the node and expiry
/// checks behind the signature are reached too. Whatever verifies must be
/// for [`FUZZ_NODE`] and unexpired.
pub fn grant(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let node = NodeId::new(FUZZ_NODE).expect("valid id");
    let now = 1_000_000;
    let token = if mode % 2 == 0 {
        String::from_utf8_lossy(rest).into_owned()
    } else {
        let payload = URL_SAFE_NO_PAD.encode(rest);
        let sig = URL_SAFE_NO_PAD.encode(hmac_sha256(FUZZ_SECRET, payload.as_bytes()));
        format!("{payload}.{sig}")
    };
    if let Ok(g) = Grant::verify(&token, FUZZ_SECRET, &node, now) {
        assert_eq!(g.node, node);
        assert!(g.exp > now);
    }
}

thread_local! {
    // One relay core per thread for the whole run (making one generates a
    // DTLS certificate); offers replace the same participant, so its state
    // stays bounded.
    static OFFERS: RefCell<Option<DatagramHarness>> = const { RefCell::new(None) };
}

/// An SDP offer as the relay's offer path receives it
/// (`Sfu::handle_offer` with a valid grant), then a little virtual time.
pub fn relay_offer(data: &[u8]) {
    let sdp = String::from_utf8_lossy(data);
    OFFERS.with(|cell| {
        let mut slot = cell.borrow_mut();
        let harness = slot.get_or_insert_with(DatagramHarness::new);
        let now = harness.now();
        let _ = harness
            .sfu()
            .handle_offer(now, 1_000_000, &offer_grant(), &sdp);
        // Drains the core's output and runs its timers (1 ms later).
        harness.feed(&[0, 1]);
    });
}

/// The grant every fuzzed offer carries.
fn offer_grant() -> String {
    Grant {
        room: RoomId::new("room-fuzz").expect("valid id"),
        participant: ParticipantId::new("p-fuzz").expect("valid id"),
        role: GrantRole::Participant,
        node: NodeId::new(FUZZ_NODE).expect("valid id"),
        exp: 2_000_000,
    }
    .sign(FUZZ_SECRET)
}

/// HMAC-SHA256 (RFC 2104), for signing fuzzed grant payloads.
fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    let mut block = [0u8; 64];
    if key.len() > 64 {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let pad = |b: u8| block.map(|k| k ^ b);
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(message)
        .finalize();
    Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize()
        .into()
}
