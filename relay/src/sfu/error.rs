//! The SFU core's error type: why an offer, answer or candidate was refused.
//!
//! Messages are safe to show to the client (they name no secrets and no
//! patient data).

use protocol::GrantError;

/// Why the SFU refused a signaling request.
#[derive(Debug, thiserror::Error)]
pub enum SfuError {
    /// The grant did not verify (malformed, forged, expired, other node).
    #[error("join refused: {0}")]
    Grant(#[from] GrantError),
    /// The grant's role allows neither publishing nor subscribing here.
    #[error("join refused: the grant's role is not allowed")]
    Role,
    /// The SDP offer or answer could not be parsed or was not acceptable.
    #[error("bad SDP: {0}")]
    Sdp(String),
    /// The ICE candidate could not be parsed.
    #[error("bad ICE candidate")]
    Candidate,
    /// No such room on this worker.
    #[error("unknown room")]
    UnknownRoom,
    /// No such participant in the room.
    #[error("unknown participant")]
    UnknownParticipant,
    /// An answer arrived but no server offer is outstanding.
    #[error("no renegotiation is pending for this participant")]
    NoPendingOffer,
    /// The worker is draining and takes no new rooms.
    #[error("relay is draining: no new rooms")]
    Draining,
    /// The worker is at its participant capacity.
    #[error("relay is full")]
    Full,
    /// str0m refused an operation (the message is str0m's).
    #[error("WebRTC error: {0}")]
    Rtc(String),
}

impl From<str0m::RtcError> for SfuError {
    fn from(e: str0m::RtcError) -> Self {
        Self::Rtc(e.to_string())
    }
}
