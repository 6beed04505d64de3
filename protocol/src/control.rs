//! The control protocol between a relay and signaling.
//!
//! The relay dials signaling's control WebSocket (`/control`), sends
//! [`RelayToSignaling::Register`] first, then a [`RelayToSignaling::Heartbeat`]
//! every second. Signaling forwards each client's SDP offer with its grant
//! ([`SignalingToRelay::Offer`]); the relay verifies the grant locally and
//! answers ([`RelayToSignaling::Answer`]) or refuses.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::ids::{NodeId, ParticipantId, Region, RoomId};

/// Correlates an offer with its answer on one control connection.
pub type RequestId = u64;

/// How far a registration timestamp may be from signaling's clock, in seconds.
pub const REGISTER_CLOCK_SKEW_SECS: u64 = 60;

/// Messages a relay sends to signaling.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum RelayToSignaling {
    /// First message on every control connection.
    Register(Register),
    /// Sent every heartbeat interval; three missed beats make the relay stale.
    Heartbeat(Heartbeat),
    /// The relay's SDP answer to an [`SignalingToRelay::Offer`].
    Answer {
        /// The offer's request id.
        request: RequestId,
        /// The answering participant.
        participant: ParticipantId,
        /// SDP answer.
        sdp: String,
    },
    /// The relay refused an offer (bad grant, draining, full, bad SDP).
    Refused {
        /// The offer's request id.
        request: RequestId,
        /// Why, safe to show to the client.
        reason: String,
    },
    /// A participant's media session ended on the relay (left, ICE failed, kicked).
    ParticipantLeft {
        /// The room.
        room: RoomId,
        /// Who left.
        participant: ParticipantId,
    },
    /// A protocol error from the relay's side.
    Error {
        /// What was wrong.
        message: String,
    },
    /// The relay's new SDP offer for a participant whose subscriptions
    /// changed (someone published or left). Signaling forwards it to the
    /// client and returns the client's answer in
    /// [`SignalingToRelay::RenegotiateAnswer`].
    Renegotiate {
        /// The room.
        room: RoomId,
        /// Who must answer.
        participant: ParticipantId,
        /// The relay's SDP offer.
        sdp: String,
    },
}

/// A relay's registration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Register {
    /// Must equal [`crate::PROTOCOL_VERSION`].
    pub version: u32,
    /// The relay's node id, unique in the deployment.
    pub node: NodeId,
    /// The region the relay serves.
    pub region: Region,
    /// Addresses clients reach the relay's workers at (`ip:port`, UDP).
    pub advertise: Vec<String>,
    /// How many participants the relay accepts in all.
    pub capacity: u32,
    /// Rooms the relay still carries (after a reconnect to signaling).
    pub rooms: Vec<RoomId>,
    /// Unix time (s) the registration was made; bound into `auth`.
    pub ts: u64,
    /// Proof the relay holds the shared secret: see [`register_auth`].
    pub auth: String,
}

/// A relay's periodic load report.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Heartbeat {
    /// Current load.
    pub load: RelayLoad,
    /// True once the relay drains: it takes no new rooms.
    pub draining: bool,
}

/// Load figures a relay reports.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RelayLoad {
    /// Rooms carried.
    pub rooms: u32,
    /// Participants connected.
    pub participants: u32,
    /// Media tracks published.
    pub tracks: u32,
    /// Packets forwarded per second (out), over the last interval.
    pub packets_per_sec: u64,
    /// Process CPU use, percent of one core.
    pub cpu_percent: f32,
}

/// Messages signaling sends to a relay.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum SignalingToRelay {
    /// Registration accepted.
    Registered {
        /// How often the relay must send a heartbeat, in milliseconds.
        heartbeat_ms: u64,
    },
    /// A client's SDP offer, with the grant that authorises it.
    Offer {
        /// Echoed in the answer.
        request: RequestId,
        /// Signed grant (see [`crate::Grant`]); the relay verifies it.
        grant: String,
        /// SDP offer.
        sdp: String,
    },
    /// A trickled ICE candidate from a client.
    Candidate {
        /// The room.
        room: RoomId,
        /// The client.
        participant: ParticipantId,
        /// The candidate line (`candidate:…`).
        candidate: String,
    },
    /// Remove a participant from a room (left the call, returned to queue).
    Kick {
        /// The room.
        room: RoomId,
        /// Who.
        participant: ParticipantId,
    },
    /// End a room: every participant is removed.
    CloseRoom {
        /// The room.
        room: RoomId,
    },
    /// A client's SDP answer to a [`RelayToSignaling::Renegotiate`] offer.
    RenegotiateAnswer {
        /// The room.
        room: RoomId,
        /// The client.
        participant: ParticipantId,
        /// SDP answer.
        sdp: String,
    },
    /// A protocol error; the connection closes after it.
    Error {
        /// What was wrong.
        message: String,
    },
}

/// The `auth` field of a [`Register`]: HMAC-SHA256 over the node id and time,
/// keyed with the relay secret shared by signaling and its relays.
pub fn register_auth(secret: &[u8], node: &NodeId, ts: u64) -> String {
    let mut m = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
    m.update(format!("anteroom-relay-register\n{node}\n{ts}").as_bytes());
    URL_SAFE_NO_PAD.encode(m.finalize().into_bytes())
}

/// Checks a registration's `auth` (constant time) and that its `ts` is within
/// [`REGISTER_CLOCK_SKEW_SECS`] of `now_unix`.
pub fn verify_register_auth(secret: &[u8], reg: &Register, now_unix: u64) -> bool {
    if reg.ts.abs_diff(now_unix) > REGISTER_CLOCK_SKEW_SECS {
        return false;
    }
    let Ok(sig) = URL_SAFE_NO_PAD.decode(&reg.auth) else {
        return false;
    };
    let mut m = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
    m.update(format!("anteroom-relay-register\n{}\n{}", reg.node, reg.ts).as_bytes());
    m.verify_slice(&sig).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn register(secret: &[u8], ts: u64) -> Register {
        let node = NodeId::new("relay-a").unwrap();
        Register {
            version: crate::PROTOCOL_VERSION,
            auth: register_auth(secret, &node, ts),
            node,
            region: Region::new("eu").unwrap(),
            advertise: vec!["127.0.0.1:4000".into()],
            capacity: 500,
            rooms: vec![],
            ts,
        }
    }

    #[test]
    fn register_auth_checks_secret_and_clock() {
        let reg = register(b"s3cret", 1_000);
        assert!(verify_register_auth(b"s3cret", &reg, 1_030));
        assert!(!verify_register_auth(b"other", &reg, 1_000));
        assert!(!verify_register_auth(b"s3cret", &reg, 1_100));
        let mut moved = reg.clone();
        moved.node = NodeId::new("relay-b").unwrap();
        assert!(!verify_register_auth(b"s3cret", &moved, 1_000));
    }

    #[test]
    fn unknown_message_types_are_errors() {
        assert!(serde_json::from_str::<RelayToSignaling>(r#"{"type":"nope"}"#).is_err());
        assert!(serde_json::from_str::<SignalingToRelay>(r#"{"type":"offer"}"#).is_err());
    }
}
