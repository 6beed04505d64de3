//! The SFU core: rooms, participants, tracks and RTP forwarding, sans-IO.
//!
//! No sockets, no tokio and no clock here (DESIGN convention 1, enforced by
//! `relay/clippy.toml` + the `deny` below): time and datagrams are arguments.
//! One [`Sfu`] per worker thread owns every room pinned to that worker.
//!
//! # API (the driver's contract)
//!
//! ```text
//! Sfu::new_at(SfuConfig, now) -> Sfu          (Sfu::new(SfuConfig): same, reads the clock once)
//! handle_offer(now, unix_now, grant_token, offer_sdp) -> Result<OfferAccepted{room, participant, answer_sdp}, SfuError>
//! handle_answer(room, participant, answer_sdp) -> Result<(), SfuError>   // answer to SfuEvent::Renegotiate
//! handle_candidate(room, participant, candidate) -> Result<(), SfuError>
//! handle_receive(now, source, destination, data: &[u8])                  // never fails; drops are counted
//! handle_timeout(now)
//! poll_output() -> Output::{Transmit(Transmit{source, destination, contents: Vec<u8>}),
//!                           Event(SfuEvent::{ParticipantConnected, ParticipantLeft, Renegotiate, RoomClosed}),
//!                           Timeout(Instant)}
//! kick(room, participant) / close_room(room) / set_draining(bool)
//! set_quality(room, subscriber, publisher, Quality)
//! stats() -> SfuStats / rooms() -> Vec<RoomId> / participants(room) -> Vec<ParticipantId>
//! ```
//!
//! After every `handle_*`, `kick`, `close_room`, drain [`Sfu::poll_output`]
//! until it returns [`Output::Timeout`], then wait for that instant or the
//! next datagram, whichever comes first, and call [`Sfu::handle_timeout`].
//!
//! # Negotiation
//!
//! The client's offer carries what it publishes (audio, video with up to
//! three simulcast layers, screen share) and a data channel; the answer
//! accepts it. Once ICE and DTLS are up, and whenever a room member starts
//! or stops publishing, the relay makes its own offer with one send-only
//! m-line per remote track (msid stream id = the publisher's participant
//! id): [`SfuEvent::Renegotiate`] carries it, [`Sfu::handle_answer`] takes
//! the client's answer. One server offer is outstanding at a time; a client
//! re-offer (same DTLS fingerprint) wins a glare and the server re-offers.
//!
//! A `subscriber`-role participant (a WHEP player: one offer, no channel for
//! a server offer) never gets one. Its recvonly m-lines are answered
//! sendonly and each shows a published track of its kind (the active
//! speaker's, else the first publisher's), bound lazily and re-bound on the
//! same m-line when that publisher leaves (`whep.rs`).
//!
//! # Data channel
//!
//! Text JSON objects up to 16 KiB. `{"type":"set_quality","publisher":ID,
//! "quality":"off|low|medium|high"}` is handled by the relay; any other
//! object is relayed to the rest of the room as `{"type":"room_message",
//! "from":ID,"message":OBJ}`. The relay sends `{"type":"active_speaker",
//! "participant":ID}` when the loudest speaker changes.
#![deny(clippy::disallowed_methods, clippy::disallowed_types)]

mod channel;
mod error;
mod events;
mod fanout;
mod forward;
mod io;
mod keyframe;
mod participant;
mod room;
mod sdp_policy;
mod session;
mod simulcast;
mod slab;
mod speaker;
pub mod testing;
mod tick;
mod types;
mod whep;

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use protocol::{ParticipantId, RoomId};

pub use error::SfuError;
pub use simulcast::Quality;
pub use types::{
    BwePolicy, DropReason, LeaveReason, OfferAccepted, Output, SfuConfig, SfuEvent, SfuStats,
    Transmit,
};

use participant::{Participant, RtcFactory};
use room::Room;
use slab::{PKey, Slab};

/// One worker's SFU: every room pinned to the worker, and their participants.
pub struct Sfu {
    config: SfuConfig,
    factory: RtcFactory,
    participants: Slab<Participant>,
    rooms: HashMap<RoomId, Room>,
    by_addr: HashMap<SocketAddr, PKey>,
    by_ufrag: HashMap<String, PKey>,
    timers: BTreeSet<(Instant, PKey)>,
    /// Scratch list of participants whose timer is due (reused).
    due: Vec<PKey>,
    out: VecDeque<Output>,
    /// str0m events awaiting handling (drained `Rtc`s push here).
    events: VecDeque<(PKey, str0m::Event)>,
    /// Subscribers written to and not drained yet: drained once per batch
    /// of input, one by one as the driver polls (see `io.rs`).
    unflushed: VecDeque<PKey>,
    /// Set by the fan-out when a subscriber's video went stale: the
    /// publisher is asked for a keyframe after the packet.
    stale_keyframe: bool,
    /// Participants whose negotiation state changed.
    dirty: Vec<PKey>,
    /// Participants to remove once the current event batch is done.
    leaving: Vec<(PKey, LeaveReason)>,
    stats: SfuStats,
    draining: bool,
    now: Instant,
    next_tick: Instant,
    last_tick: Instant,
    ticks: u64,
    next_track: u64,
    /// WHEP players' m-lines and what they show (see `whep.rs`).
    whep: whep::WhepLines,
}

impl std::fmt::Debug for Sfu {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sfu")
            .field("node", &self.config.node)
            .field("rooms", &self.rooms.len())
            .field("participants", &self.participants.len())
            .finish_non_exhaustive()
    }
}

impl Sfu {
    /// Creates the SFU at time `now`. Generates the shared DTLS certificate
    /// if the config has none (generate it once and clone it into each
    /// worker's config when there are many workers).
    pub fn new_at(config: SfuConfig, now: Instant) -> Sfu {
        let crypto = Arc::new(str0m::crypto::from_feature_flags());
        // A failed generation leaves str0m to make one per peer (slower, still correct).
        let cert = config
            .dtls_cert
            .clone()
            .or_else(|| crypto.dtls_provider.generate_certificate());
        let factory = RtcFactory {
            crypto,
            cert,
            local_addr: config.local_addr,
        };
        Sfu {
            config,
            factory,
            participants: Slab::default(),
            rooms: HashMap::new(),
            by_addr: HashMap::new(),
            by_ufrag: HashMap::new(),
            timers: BTreeSet::new(),
            due: Vec::new(),
            out: VecDeque::new(),
            events: VecDeque::new(),
            unflushed: VecDeque::new(),
            stale_keyframe: false,
            dirty: Vec::new(),
            leaving: Vec::new(),
            stats: SfuStats::default(),
            draining: false,
            now,
            next_tick: now + tick::TICK,
            last_tick: now,
            ticks: 0,
            next_track: 1,
            whep: whep::WhepLines::default(),
        }
    }

    /// Like [`Sfu::new_at`], reading the clock once for the starting instant.
    /// The only clock read in the core; prefer `new_at` (tests must).
    #[allow(clippy::disallowed_methods)]
    pub fn new(config: SfuConfig) -> Sfu {
        Self::new_at(config, Instant::now())
    }

    /// While draining, offers that would create a new room are refused with
    /// [`SfuError::Draining`]; existing rooms keep working and accept joins.
    pub fn set_draining(&mut self, draining: bool) {
        self.draining = draining;
    }

    /// Current counters (cheap: a copy of plain integers).
    pub fn stats(&self) -> SfuStats {
        let mut s = self.stats.clone();
        s.rooms = self.rooms.len() as u64;
        s.participants = self.participants.len() as u64;
        s.tracks = self
            .participants
            .values()
            .map(|p| p.tracks_in.len() as u64)
            .sum();
        s
    }

    /// The rooms on this worker.
    pub fn rooms(&self) -> Vec<RoomId> {
        self.rooms.keys().cloned().collect()
    }

    /// The participants of a room (empty for an unknown room).
    pub fn participants(&self, room: &RoomId) -> Vec<ParticipantId> {
        self.rooms.get(room).map_or_else(Vec::new, |r| {
            r.members
                .iter()
                .filter_map(|k| self.participants.get(*k).map(|p| p.id.clone()))
                .collect()
        })
    }

    /// The key of a participant of a room.
    fn find(&self, room: &RoomId, participant: &ParticipantId) -> Result<PKey, SfuError> {
        let r = self.rooms.get(room).ok_or(SfuError::UnknownRoom)?;
        r.members
            .iter()
            .copied()
            .find(|k| {
                self.participants
                    .get(*k)
                    .is_some_and(|p| &p.id == participant)
            })
            .ok_or(SfuError::UnknownParticipant)
    }
}
