//! What the lobby tells people when a seat changes: the seat as clinicians
//! see it, the live events to the tenant's subscribers, and the
//! `queue_status` pushed to waiting patients only when their position or
//! estimate changed.

use std::time::{Duration, Instant};

use protocol::client::{QueueEntry, SeatState as WireSeatState, SignalingToClient};
use protocol::{ParticipantId, RoomId, TenantId};

use super::room::RoomQueue;
use super::seat::{Seat, SeatState};
use super::{Lobby, Output};

impl Lobby {
    /// A seat as its tenant's clinicians see it (finds its position: O(n)).
    pub(super) fn entry(&self, seat: &Seat, now: Instant) -> QueueEntry {
        let position = match seat.state {
            SeatState::Waiting => self
                .rooms
                .get(&seat.room)
                .and_then(|r| r.position(&seat.participant)),
            SeatState::Admitted { .. } => None,
        };
        Self::entry_at(seat, position, now)
    }

    /// A seat as its tenant's clinicians see it, at a known position.
    pub(super) fn entry_at(seat: &Seat, position: Option<u32>, now: Instant) -> QueueEntry {
        let (state, clinician) = match &seat.state {
            SeatState::Waiting => (WireSeatState::Waiting, None),
            SeatState::Admitted { clinician, .. } => {
                (WireSeatState::Admitted, Some(clinician.clone()))
            }
        };
        QueueEntry {
            participant: seat.participant.clone(),
            display_name: seat.display_name.clone(),
            state,
            position,
            waited_secs: now.saturating_duration_since(seat.joined_at).as_secs(),
            connected: seat.conn.is_some(),
            clinician,
            invited_to: seat.invited_to.clone(),
        }
    }

    /// Whether any clinician of `tenant` is subscribed (skip building events if not).
    pub(super) fn has_subscribers(&self, tenant: &TenantId) -> bool {
        self.subscribers.contains_key(tenant)
    }

    /// Tells the tenant's clinicians a seat arrived at the back of its room.
    pub(super) fn announce_arrival(&mut self, p: &ParticipantId, now: Instant) {
        let Some(seat) = self.seats.get(p) else {
            return;
        };
        if !self.has_subscribers(&seat.tenant) {
            return;
        }
        let position = self
            .rooms
            .get(&seat.room)
            .map(|r| u32::try_from(r.waiting.len()).unwrap_or(u32::MAX));
        let msg = SignalingToClient::PatientArrived {
            room: seat.room.clone(),
            entry: Self::entry_at(seat, position, now),
        };
        let tenant = seat.tenant.clone();
        self.broadcast(&tenant, &msg);
    }

    /// Tells the tenant's clinicians a seat's state changed.
    pub(super) fn announce_update(&mut self, p: &ParticipantId, now: Instant) {
        let Some(seat) = self.seats.get(p) else {
            return;
        };
        if !self.has_subscribers(&seat.tenant) {
            return;
        }
        let msg = SignalingToClient::PatientUpdated {
            room: seat.room.clone(),
            entry: self.entry(seat, now),
        };
        let tenant = seat.tenant.clone();
        self.broadcast(&tenant, &msg);
    }

    /// Sends one waiting seat its status if it changed (position known).
    pub(super) fn push_status(&mut self, p: &ParticipantId, position: u32) {
        let default = self.settings.default_service;
        let Some(seat) = self.seats.get_mut(p) else {
            return;
        };
        let Some(room) = self.rooms.get(&seat.room) else {
            return;
        };
        let status = Self::status_of(room, position, default);
        if seat.last_status == Some(status) {
            return;
        }
        if let Some(conn) = seat.conn {
            seat.last_status = Some(status);
            self.out.push_back(Output::Send(
                conn,
                SignalingToClient::QueueStatus {
                    room: seat.room.clone(),
                    position: status.0,
                    estimated_wait_secs: status.1,
                },
            ));
        }
    }

    /// A seat that just went to the back of its room's queue: its status
    /// and the clinicians' event, without scanning the queue.
    pub(super) fn appended(&mut self, p: &ParticipantId, now: Instant) {
        let position = self
            .seats
            .get(p)
            .and_then(|s| self.rooms.get(&s.room))
            .map_or(0, |r| u32::try_from(r.waiting.len()).unwrap_or(u32::MAX));
        self.push_status(p, position);
        self.announce_arrival(p, now);
    }

    /// The (position, estimate) a waiting patient is told; both `None` when
    /// the room hides the position.
    pub(super) fn status_of(
        room: &RoomQueue,
        position: u32,
        default: Duration,
    ) -> (Option<u32>, Option<u64>) {
        if room.hide_position {
            return (None, None);
        }
        (
            Some(position),
            Some(room.stats.estimate_secs(position, default)),
        )
    }

    /// Pushes `queue_status` to every waiting patient of `room_id` whose
    /// position or estimate changed (O(n) in the queue length).
    pub(super) fn room_changed(&mut self, room_id: &RoomId) {
        let default = self.settings.default_service;
        let Some(room) = self.rooms.get(room_id) else {
            return;
        };
        for (i, p) in room.waiting.iter().enumerate() {
            let position = u32::try_from(i + 1).unwrap_or(u32::MAX);
            let status = Self::status_of(room, position, default);
            let Some(seat) = self.seats.get_mut(p) else {
                continue;
            };
            if seat.last_status == Some(status) {
                continue;
            }
            if let Some(conn) = seat.conn {
                seat.last_status = Some(status);
                self.out.push_back(Output::Send(
                    conn,
                    SignalingToClient::QueueStatus {
                        room: room_id.clone(),
                        position: status.0,
                        estimated_wait_secs: status.1,
                    },
                ));
            }
        }
    }
}
