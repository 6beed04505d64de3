//! The SFU core: rooms, participants, tracks and RTP forwarding, sans-IO.
//!
//! No sockets, no tokio and no clock here (DESIGN convention 1, enforced by
//! `relay/clippy.toml` + the `deny` below): time and datagrams are arguments.
//! One [`Sfu`] per worker thread owns every room pinned to that worker.
//!
//! # API (the driver's contract)
//!
//! ```text
//! Sfu::new(SfuConfig) -> Sfu
//! handle_offer(now, unix_now, grant_token, offer_sdp) -> Result<OfferAccepted{room, participant, answer_sdp}, SfuError>
//! handle_answer(room, participant, answer_sdp) -> Result<(), SfuError>   // answer to SfuEvent::Renegotiate
//! handle_candidate(room, participant, candidate) -> Result<(), SfuError>
//! handle_receive(now, source, destination, data: &[u8])                  // never fails; drops are counted
//! handle_timeout(now)
//! poll_output() -> Output::{Transmit(Transmit{source, destination, contents: Vec<u8>}),
//!                           Event(SfuEvent::{ParticipantConnected, ParticipantLeft, Renegotiate, RoomClosed}),
//!                           Timeout(Instant)}
//! kick(room, participant) / close_room(room) / set_draining(bool)
//! stats() -> SfuStats / rooms() -> Vec<RoomId> / participants(room) -> Vec<ParticipantId>
//! ```
//!
//! After every `handle_*`, `kick`, `close_room`, drain [`Sfu::poll_output`]
//! until it returns [`Output::Timeout`], then wait for that instant or the
//! next datagram, whichever comes first, and call [`Sfu::handle_timeout`].
#![deny(clippy::disallowed_methods, clippy::disallowed_types)]

mod error;
mod types;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use protocol::{Grant, ParticipantId, RoomId};

pub use error::SfuError;
pub use types::{
    DropReason, LeaveReason, OfferAccepted, Output, SfuConfig, SfuEvent, SfuStats, Transmit,
};

/// One worker's SFU: every room pinned to the worker, and their participants.
#[derive(Debug)]
pub struct Sfu {
    config: SfuConfig,
    out: VecDeque<Output>,
    stats: SfuStats,
    draining: bool,
    last_now: Option<Instant>,
}

impl Sfu {
    /// Creates the SFU. Generates the shared DTLS certificate if the config
    /// has none (do that once, not per worker, when there are many workers).
    pub fn new(config: SfuConfig) -> Sfu {
        Sfu {
            config,
            out: VecDeque::new(),
            stats: SfuStats::default(),
            draining: false,
            last_now: None,
        }
    }

    /// Verifies the grant (signature, node, expiry at `unix_now`) and the SDP
    /// offer, creates the participant (ICE-lite, RTP mode) in the grant's
    /// room and returns the SDP answer. An offer for a participant already
    /// in the room replaces the old session.
    pub fn handle_offer(
        &mut self,
        now: Instant,
        unix_now: u64,
        grant_token: &str,
        offer_sdp: &str,
    ) -> Result<OfferAccepted, SfuError> {
        self.last_now = Some(now);
        let grant = Grant::verify(
            grant_token,
            &self.config.grant_secret,
            &self.config.node,
            unix_now,
        )?;
        let _ = (grant, offer_sdp);
        // SKELETON: participant creation lands in the next commit.
        Err(SfuError::Sdp("not implemented yet".into()))
    }

    /// Applies the client's answer to a [`SfuEvent::Renegotiate`] offer.
    pub fn handle_answer(
        &mut self,
        room: &RoomId,
        participant: &ParticipantId,
        answer_sdp: &str,
    ) -> Result<(), SfuError> {
        let _ = (room, participant, answer_sdp);
        Err(SfuError::UnknownRoom)
    }

    /// Adds a trickled remote ICE candidate (`candidate:…`). With ICE-lite on
    /// the relay this is optional: peers are learnt from their STUN requests.
    pub fn handle_candidate(
        &mut self,
        room: &RoomId,
        participant: &ParticipantId,
        candidate: &str,
    ) -> Result<(), SfuError> {
        let _ = (room, participant, candidate);
        Err(SfuError::UnknownRoom)
    }

    /// A datagram arrived on the worker's socket from `source` to
    /// `destination`. Never panics; drops are counted by [`DropReason`].
    pub fn handle_receive(
        &mut self,
        now: Instant,
        source: SocketAddr,
        destination: SocketAddr,
        data: &[u8],
    ) {
        self.last_now = Some(now);
        let _ = (source, destination);
        self.stats.packets_in += 1;
        self.stats.bytes_in += data.len() as u64;
        self.stats.drops[DropReason::UnknownSource as usize] += 1;
    }

    /// Time has advanced to `now`: run every timer that is due.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.last_now = Some(now);
    }

    /// The next output. Call until it returns [`Output::Timeout`].
    pub fn poll_output(&mut self) -> Output {
        if let Some(o) = self.out.pop_front() {
            return o;
        }
        let base = self.last_now.unwrap_or_else(far_future_base);
        Output::Timeout(base + Duration::from_secs(1))
    }

    /// Removes a participant ([`SfuEvent::ParticipantLeft`] with
    /// [`LeaveReason::Kicked`] follows). Unknown ids are ignored.
    pub fn kick(&mut self, room: &RoomId, participant: &ParticipantId) {
        let _ = (room, participant);
    }

    /// Removes every participant of a room. Unknown rooms are ignored.
    pub fn close_room(&mut self, room: &RoomId) {
        let _ = room;
    }

    /// While draining, offers that would create a new room are refused with
    /// [`SfuError::Draining`]; existing rooms keep working and accept joins.
    pub fn set_draining(&mut self, draining: bool) {
        self.draining = draining;
    }

    /// Current counters (cheap: a copy of plain integers).
    pub fn stats(&self) -> SfuStats {
        self.stats.clone()
    }

    /// The rooms on this worker.
    pub fn rooms(&self) -> Vec<RoomId> {
        Vec::new()
    }

    /// The participants of a room (empty for an unknown room).
    pub fn participants(&self, room: &RoomId) -> Vec<ParticipantId> {
        let _ = room;
        Vec::new()
    }
}

/// Placeholder base instant before any input arrived (skeleton only).
fn far_future_base() -> Instant {
    // SKELETON: replaced by the participant timer wheel.
    #[allow(clippy::disallowed_methods)]
    Instant::now()
}
