//! The SFU's public value types: configuration, outputs, events and counters.

use std::net::SocketAddr;
use std::time::Instant;

use protocol::{NodeId, ParticipantId, RoomId};
use str0m::config::DtlsCert;

/// Configuration of one [`Sfu`](super::Sfu) (one per worker thread).
#[derive(Clone)]
pub struct SfuConfig {
    /// This relay's node id: grants for other nodes are refused.
    pub node: NodeId,
    /// The HMAC secret shared with signaling that signs grants.
    pub grant_secret: Vec<u8>,
    /// This worker's advertised UDP address (`--advertise` ip, worker port):
    /// the ICE host candidate put in every answer.
    pub local_addr: SocketAddr,
    /// The DTLS certificate shared by every peer on this worker. `None`
    /// generates one in [`Sfu::new`](super::Sfu::new) (share one across
    /// workers by generating it once and cloning it here).
    pub dtls_cert: Option<DtlsCert>,
    /// Most participants this worker accepts; further offers get
    /// [`SfuError::Full`](super::SfuError::Full).
    pub max_participants: usize,
    /// Largest datagram accepted from the network, in bytes; larger ones are
    /// dropped and counted as [`DropReason::Oversized`].
    pub max_datagram: usize,
    /// Initial egress bandwidth estimate per subscriber (bits/s) for TWCC
    /// bandwidth estimation, which picks simulcast layers. `None` disables
    /// BWE: layers then follow only what subscribers ask for.
    pub bwe_initial_bps: Option<u64>,
    /// Which participants get BWE (when `bwe_initial_bps` is set). BWE is
    /// costly (str0m paces every packet of a BWE session: a full session
    /// timeout round per forwarded packet, 2–3× the CPU of forwarding) and
    /// only serves simulcast layer choice.
    pub bwe_policy: BwePolicy,
}

/// Which participants get TWCC bandwidth estimation (and str0m's pacer).
///
/// str0m fixes BWE when a session is built, so the choice is made when a
/// participant joins (its first offer) and holds for the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BwePolicy {
    /// Only a participant that joins a room where a simulcast video track is
    /// published: the estimate picks its layers. A participant that joined
    /// before any simulcast track appeared gets no estimate; its layers then
    /// follow only what it asks for (`set_quality`), the best by default.
    #[default]
    SimulcastRooms,
    /// Every participant.
    Always,
}

impl SfuConfig {
    /// A configuration with default limits (2000 participants, 1500-byte datagrams).
    pub fn new(node: NodeId, grant_secret: Vec<u8>, local_addr: SocketAddr) -> Self {
        Self {
            node,
            grant_secret,
            local_addr,
            dtls_cert: None,
            max_participants: 2000,
            max_datagram: 1500,
            bwe_initial_bps: Some(1_000_000),
            bwe_policy: BwePolicy::SimulcastRooms,
        }
    }
}

impl std::fmt::Debug for SfuConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SfuConfig")
            .field("node", &self.node)
            .field("grant_secret", &"<redacted>")
            .field("local_addr", &self.local_addr)
            .field("dtls_cert", &self.dtls_cert.is_some())
            .field("max_participants", &self.max_participants)
            .field("max_datagram", &self.max_datagram)
            .field("bwe_initial_bps", &self.bwe_initial_bps)
            .field("bwe_policy", &self.bwe_policy)
            .finish()
    }
}

/// A successful [`Sfu::handle_offer`](super::Sfu::handle_offer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfferAccepted {
    /// The room from the grant.
    pub room: RoomId,
    /// The participant from the grant.
    pub participant: ParticipantId,
    /// The SDP answer to send back to the client.
    pub answer_sdp: String,
}

/// A datagram to send from the worker's socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// The local address to send from (the worker's advertised address).
    pub source: SocketAddr,
    /// The peer's address.
    pub destination: SocketAddr,
    /// The datagram.
    pub contents: Vec<u8>,
}

/// What [`Sfu::poll_output`](super::Sfu::poll_output) yields.
#[derive(Debug)]
pub enum Output {
    /// Send this datagram.
    Transmit(Transmit),
    /// Tell signaling (or the driver) about something.
    Event(SfuEvent),
    /// Nothing more to do until this instant (or the next input).
    Timeout(Instant),
}

/// Why a participant left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaveReason {
    /// [`Sfu::kick`](super::Sfu::kick).
    Kicked,
    /// [`Sfu::close_room`](super::Sfu::close_room).
    RoomClosed,
    /// ICE or DTLS ended (timeout, close alert, fatal error).
    Disconnected,
    /// A new offer with the same participant id replaced the old session.
    Replaced,
}

/// Events for the driver / signaling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SfuEvent {
    /// ICE and DTLS are up: media can flow.
    ParticipantConnected {
        /// The room.
        room: RoomId,
        /// Who.
        participant: ParticipantId,
    },
    /// A participant's session ended; its state is gone.
    ParticipantLeft {
        /// The room.
        room: RoomId,
        /// Who.
        participant: ParticipantId,
        /// Why.
        reason: LeaveReason,
    },
    /// The server needs to renegotiate (new tracks to send to this
    /// participant): deliver `offer_sdp` to the client and feed its answer to
    /// [`Sfu::handle_answer`](super::Sfu::handle_answer).
    Renegotiate {
        /// The room.
        room: RoomId,
        /// Who must answer.
        participant: ParticipantId,
        /// The server's SDP offer.
        offer_sdp: String,
    },
    /// The last participant left; the room no longer exists on this worker.
    RoomClosed {
        /// The room.
        room: RoomId,
    },
}

/// Why an incoming datagram was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// Larger than [`SfuConfig::max_datagram`].
    Oversized,
    /// Not STUN, DTLS, RTP or RTCP.
    Malformed,
    /// From an unknown address and not a STUN request naming a known peer.
    UnknownSource,
    /// The peer's str0m instance rejected it (bad STUN integrity, SRTP auth, …).
    Rejected,
    /// A video packet not forwarded to a subscriber whose send queue fell
    /// behind (until the next keyframe; audio is never dropped).
    StaleVideo,
}

impl DropReason {
    /// Every reason, for metrics labels.
    pub const ALL: [DropReason; 5] = [
        Self::Oversized,
        Self::Malformed,
        Self::UnknownSource,
        Self::Rejected,
        Self::StaleVideo,
    ];

    /// A short snake_case label for metrics.
    pub fn label(self) -> &'static str {
        match self {
            Self::Oversized => "oversized",
            Self::Malformed => "malformed",
            Self::UnknownSource => "unknown_source",
            Self::Rejected => "rejected",
            Self::StaleVideo => "stale_video",
        }
    }
}

/// Counters of one [`Sfu`](super::Sfu). Gauges are current values; the
/// rest count up from zero since the SFU was created.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SfuStats {
    /// Rooms on this worker (gauge).
    pub rooms: u64,
    /// Participants on this worker (gauge).
    pub participants: u64,
    /// Published media tracks (gauge).
    pub tracks: u64,
    /// Datagrams received.
    pub packets_in: u64,
    /// Bytes received.
    pub bytes_in: u64,
    /// Datagrams sent.
    pub packets_out: u64,
    /// Bytes sent.
    pub bytes_out: u64,
    /// RTP packets written to a subscriber (one per subscriber per packet).
    pub rtp_forwarded: u64,
    /// Dropped datagrams, indexed like [`DropReason::ALL`].
    pub drops: [u64; 5],
    /// NACKs received from subscribers.
    pub nacks: u64,
    /// Keyframe requests (PLI/FIR) sent to publishers.
    pub keyframe_requests: u64,
    /// Data channel messages relayed to other participants.
    pub messages: u64,
    /// Data channel messages dropped (binary, too big, not JSON, flooding).
    pub messages_dropped: u64,
}

impl SfuStats {
    /// Drops for one reason.
    pub fn dropped(&self, reason: DropReason) -> u64 {
        self.drops[reason as usize]
    }
}
