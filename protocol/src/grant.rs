//! Grants: signaling's signed permission for one participant to join one room
//! on one relay until an expiry time.
//!
//! Format: `base64url(json payload) "." base64url(HMAC-SHA256(secret, payload part))`,
//! both without padding. The relay verifies a grant locally with the shared
//! secret: no round trip to signaling on join.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::ids::{NodeId, ParticipantId, RoomId};

type HmacSha256 = Hmac<Sha256>;

/// Longest grant token accepted, in bytes; longer input is refused unparsed.
pub const MAX_GRANT_LEN: usize = 2048;

/// What a participant may do in the room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GrantRole {
    /// Publishes and subscribes (patients, clinicians, meeting guests).
    Participant,
    /// Only publishes (a WHIP ingest).
    Publisher,
    /// Only subscribes (a WHEP player).
    Subscriber,
}

impl GrantRole {
    /// Whether this role may send media into the room.
    pub fn may_publish(self) -> bool {
        matches!(self, Self::Participant | Self::Publisher)
    }

    /// Whether this role may receive the room's media.
    pub fn may_subscribe(self) -> bool {
        matches!(self, Self::Participant | Self::Subscriber)
    }
}

/// The signed content of a grant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    /// The room the participant may join.
    pub room: RoomId,
    /// Who is joining.
    pub participant: ParticipantId,
    /// What they may do.
    pub role: GrantRole,
    /// The only relay node that accepts this grant.
    pub node: NodeId,
    /// Expiry, seconds since the Unix epoch (UTC).
    pub exp: u64,
}

/// Why a grant was refused. The messages are safe to show to the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GrantError {
    /// Not of the `payload.signature` form, bad base64 or bad JSON.
    #[error("grant is malformed")]
    Malformed,
    /// The signature does not match: forged or signed with another secret.
    #[error("grant signature is invalid")]
    BadSignature,
    /// The expiry time has passed.
    #[error("grant has expired")]
    Expired,
    /// The grant was issued for another relay node.
    #[error("grant is for another relay node")]
    WrongNode,
}

impl Grant {
    /// Signs the grant with `secret`, giving the token to hand to the client.
    pub fn sign(&self, secret: &[u8]) -> String {
        let payload = serde_json::to_vec(self).expect("grant serialises");
        let payload = URL_SAFE_NO_PAD.encode(payload);
        let sig = URL_SAFE_NO_PAD.encode(mac(secret, payload.as_bytes()));
        format!("{payload}.{sig}")
    }

    /// Verifies `token`: signature first (constant time), then node and expiry.
    ///
    /// `now_unix` is the current time in seconds since the epoch; time is an
    /// argument so that callers and tests control it.
    pub fn verify(
        token: &str,
        secret: &[u8],
        node: &NodeId,
        now_unix: u64,
    ) -> Result<Self, GrantError> {
        if token.len() > MAX_GRANT_LEN {
            return Err(GrantError::Malformed);
        }
        let (payload, sig) = token.split_once('.').ok_or(GrantError::Malformed)?;
        let sig = URL_SAFE_NO_PAD
            .decode(sig)
            .map_err(|_| GrantError::Malformed)?;
        let mut m = HmacSha256::new_from_slice(secret).expect("HMAC takes any key length");
        m.update(payload.as_bytes());
        m.verify_slice(&sig).map_err(|_| GrantError::BadSignature)?;
        let json = URL_SAFE_NO_PAD
            .decode(payload)
            .map_err(|_| GrantError::Malformed)?;
        let grant: Self = serde_json::from_slice(&json).map_err(|_| GrantError::Malformed)?;
        if &grant.node != node {
            return Err(GrantError::WrongNode);
        }
        if now_unix >= grant.exp {
            return Err(GrantError::Expired);
        }
        Ok(grant)
    }
}

fn mac(secret: &[u8], data: &[u8]) -> Vec<u8> {
    let mut m = HmacSha256::new_from_slice(secret).expect("HMAC takes any key length");
    m.update(data);
    m.finalize().into_bytes().to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"test-secret-of-decent-length-000";

    fn grant() -> Grant {
        Grant {
            room: RoomId::new("r1").unwrap(),
            participant: ParticipantId::new("p1").unwrap(),
            role: GrantRole::Participant,
            node: NodeId::new("relay-a").unwrap(),
            exp: 1_000,
        }
    }

    #[test]
    fn a_signed_grant_verifies() {
        let token = grant().sign(SECRET);
        let node = NodeId::new("relay-a").unwrap();
        assert_eq!(Grant::verify(&token, SECRET, &node, 999), Ok(grant()));
    }

    #[test]
    fn expired_forged_and_other_node_grants_are_refused() {
        let token = grant().sign(SECRET);
        let node = NodeId::new("relay-a").unwrap();
        let other = NodeId::new("relay-b").unwrap();
        assert_eq!(
            Grant::verify(&token, SECRET, &node, 1_000),
            Err(GrantError::Expired)
        );
        assert_eq!(
            Grant::verify(&token, SECRET, &other, 0),
            Err(GrantError::WrongNode)
        );
        assert_eq!(
            Grant::verify(&token, b"another-secret", &node, 0),
            Err(GrantError::BadSignature)
        );
        // Same signature, edited payload: a forged longer expiry.
        let mut forged = grant();
        forged.exp = u64::MAX;
        let forged_payload = forged.sign(b"x");
        let (fp, _) = forged_payload.split_once('.').unwrap();
        let (_, sig) = token.split_once('.').unwrap();
        assert_eq!(
            Grant::verify(&format!("{fp}.{sig}"), SECRET, &node, 0),
            Err(GrantError::BadSignature)
        );
    }

    #[test]
    fn garbage_is_malformed_not_a_panic() {
        let node = NodeId::new("relay-a").unwrap();
        for bad in ["", ".", "abc", "a.b.c", "!!!.###", &"x".repeat(5000)] {
            assert!(Grant::verify(bad, SECRET, &node, 0).is_err(), "{bad}");
        }
    }
}
