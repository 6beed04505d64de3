//! The running relay's shared state: its workers, its drain state and the
//! admission checks every offer passes (grant, drain, capacity) before it is
//! routed to the worker that owns its room.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use protocol::control::RelayLoad;
use protocol::{Grant, ParticipantId, RoomId};
use tokio::sync::{broadcast, watch};

use crate::config::ValidConfig;
use crate::driver::{Command, Workers};
use crate::error::RelayError;
use crate::sfu::{OfferAccepted, SfuError, SfuEvent, SfuStats};

/// How many core events wait for a slow listener before the oldest are lost.
const EVENT_BUFFER: usize = 4096;

/// The running relay: configuration, workers and drain state.
#[derive(Debug)]
pub struct Node {
    config: ValidConfig,
    workers: Workers,
    events: broadcast::Sender<SfuEvent>,
    draining: watch::Sender<bool>,
    registered: AtomicBool,
}

/// The current Unix time in seconds.
#[allow(clippy::disallowed_methods)]
pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Node {
    /// Starts the workers.
    pub fn start(config: ValidConfig) -> Result<Self, RelayError> {
        let (events, _) = broadcast::channel(EVENT_BUFFER);
        let workers = Workers::start(&config, &events)?;
        Ok(Self {
            config,
            workers,
            events,
            draining: watch::channel(false).0,
            registered: AtomicBool::new(false),
        })
    }

    /// The validated configuration.
    pub fn config(&self) -> &ValidConfig {
        &self.config
    }

    /// The workers.
    pub fn workers(&self) -> &Workers {
        &self.workers
    }

    /// A receiver of every core event from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<SfuEvent> {
        self.events.subscribe()
    }

    /// Admits an offer: verifies the grant, refuses new rooms while draining
    /// and offers beyond capacity, then lets the room's worker answer.
    /// The error message is safe to show to the client.
    pub async fn offer(&self, token: String, sdp: String) -> Result<OfferAccepted, SfuError> {
        let secret = self.config.secret.expose();
        let grant = Grant::verify(&token, secret, &self.config.config.node_id, unix_now())?;
        if self.is_draining() && !self.workers.has_room(&grant.room) {
            return Err(SfuError::Draining);
        }
        let participants = self.workers.totals().participants;
        if participants >= u64::from(self.config.config.capacity) {
            return Err(SfuError::Full);
        }
        self.workers.offer(&grant.room, token, sdp).await
    }

    /// Applies a client's answer to a renegotiation offer.
    pub async fn answer(
        &self,
        room: &RoomId,
        participant: ParticipantId,
        sdp: String,
    ) -> Result<(), SfuError> {
        self.workers.answer(room, participant, sdp).await
    }

    /// Adds a trickled ICE candidate.
    pub fn candidate(&self, room: &RoomId, participant: ParticipantId, candidate: String) {
        let _ = self.workers.send(
            room,
            Command::Candidate {
                room: room.clone(),
                participant,
                candidate,
            },
        );
    }

    /// Removes a participant.
    pub fn kick(&self, room: &RoomId, participant: ParticipantId) {
        let _ = self.workers.send(
            room,
            Command::Kick {
                room: room.clone(),
                participant,
            },
        );
    }

    /// Ends a room.
    pub fn close_room(&self, room: &RoomId) {
        let _ = self
            .workers
            .send(room, Command::CloseRoom { room: room.clone() });
    }

    /// Starts draining: no new rooms; existing calls go on.
    pub fn start_drain(&self) {
        if !self.draining.send_replace(true) {
            tracing::info!("draining: no new rooms from now on");
            self.workers.broadcast(|| Command::SetDraining(true));
        }
    }

    /// Whether the relay is draining.
    pub fn is_draining(&self) -> bool {
        *self.draining.borrow()
    }

    /// Watches the drain state.
    pub fn watch_draining(&self) -> watch::Receiver<bool> {
        self.draining.subscribe()
    }

    /// Resolves once no participant is left, or after `timeout`.
    pub async fn drained(&self, timeout: Duration) {
        let wait = self.workers.totals_when(|t| t.participants == 0);
        if tokio::time::timeout(timeout, wait).await.is_err() {
            tracing::warn!("drain timeout: ending the remaining calls");
        }
    }

    /// Marks whether signaling has accepted the registration (for `/readyz`).
    pub fn set_registered(&self, registered: bool) {
        self.registered.store(registered, Ordering::Release);
    }

    /// Ready to take new rooms: registered (or standalone), workers running,
    /// not draining.
    pub fn is_ready(&self) -> bool {
        let connected = self.config.signaling.is_empty() || self.registered.load(Ordering::Acquire);
        connected && self.workers.all_running() && !self.is_draining()
    }

    /// Summed core counters.
    pub fn totals(&self) -> SfuStats {
        self.workers.totals()
    }

    /// Load for a heartbeat, without the rate figures (see `control::load`).
    pub fn load(&self) -> RelayLoad {
        let t = self.totals();
        RelayLoad {
            rooms: t.rooms as u32,
            participants: t.participants as u32,
            tracks: t.tracks as u32,
            packets_per_sec: 0,
            cpu_percent: 0.0,
        }
    }

    /// Stops the workers (their sockets close; calls end abruptly).
    pub fn stop(&self) {
        self.workers.stop();
    }
}
