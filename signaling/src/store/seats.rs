//! Waiting-room seats behind [`SeatStore`]: who waits where, in which order,
//! in which state, under which resume-token hash, and the patient's details
//! (display name, intake answers) that go with the seat.
//!
//! Two implementations keep one contract (`signaling/tests/store_seats.rs`):
//! [`MemorySeats`] and the Redis store ([`RedisSeats`]). In Redis the
//! details sit in their own key with a TTL (a seat of a crashed deployment
//! cannot keep patient data forever) and are deleted with the seat.
//!
//! The lobby keeps its seats in its own maps and serves from them; with a
//! store (`LobbyHandle::spawn_with_store`) the lobby task writes every seat
//! change through this trait in order ([`crate::lobby::persist`]), so that
//! the node taking the lobby over rebuilds it with seats, order, resume
//! tokens, details and admitted state intact.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use protocol::client::IntakeAnswers;
use protocol::{ClinicianId, NodeId, ParticipantId, RoomId, Sensitive, TenantId};

pub use super::seats_redis::RedisSeats;
use crate::Error;

/// SHA-256 of a resume token: seats are found by it, never by the token.
pub type TokenHash = [u8; 32];

/// Where a seat is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SeatState {
    /// In its room's queue.
    Waiting,
    /// In a consultation with this clinician.
    Admitted {
        /// Who admitted the patient.
        clinician: ClinicianId,
        /// The clinician's display name, as shown to the patient.
        clinician_name: String,
    },
}

/// A seat, without the patient's details (no patient data in here).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeatRecord {
    /// The patient's participant id.
    pub participant: ParticipantId,
    /// The organisation of the room.
    pub tenant: TenantId,
    /// The waiting room.
    pub room: RoomId,
    /// Hash of the resume token.
    pub token_hash: TokenHash,
    /// Waiting or admitted.
    pub state: SeatState,
    /// When the patient joined (Unix milliseconds; the wait shown to
    /// clinicians is counted from it on every node).
    pub joined_unix_ms: u64,
    /// Admitted: the call (relay room) the seat is in, if any.
    pub call: Option<RoomId>,
    /// The relay carrying `call` when the seat was last written.
    pub relay: Option<NodeId>,
    /// An invitee's seat: the call it was invited to.
    pub invited_to: Option<RoomId>,
}

/// What the patient told us: kept in memory only, with the seat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatientDetails {
    /// The name the patient gave.
    pub display_name: Sensitive<String>,
    /// Answers to the room's intake questions.
    pub intake: Sensitive<IntakeAnswers>,
}

/// Where a seat goes back into a queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueEnd {
    /// Next in line (a patient returned to the queue).
    Front,
    /// Last in line (a transfer, a new arrival).
    Back,
}

/// Storage of seats and queues. Every method is one atomic step.
pub trait SeatStore: Send + Sync + fmt::Debug {
    /// Adds a seat with the patient's details (which expire after `ttl`
    /// unless [`SeatStore::refresh`]ed). A `Waiting` seat goes to the back
    /// of its room's queue. Replaces a seat with the same participant id.
    fn insert(
        &self,
        seat: &SeatRecord,
        details: &PatientDetails,
        ttl: Duration,
    ) -> Result<(), Error>;

    /// One seat.
    fn get(&self, participant: &ParticipantId) -> Result<Option<SeatRecord>, Error>;

    /// The seat of a resume token's hash.
    fn by_token(&self, hash: &TokenHash) -> Result<Option<SeatRecord>, Error>;

    /// The patient's details (none once the seat or its TTL is gone).
    fn details(&self, participant: &ParticipantId) -> Result<Option<PatientDetails>, Error>;

    /// The waiting seats of a room, next first.
    fn queue(&self, tenant: &TenantId, room: &RoomId) -> Result<Vec<ParticipantId>, Error>;

    /// 1-based position of a waiting seat; `None` if not waiting.
    fn position(&self, participant: &ParticipantId) -> Result<Option<u32>, Error>;

    /// Admits a waiting seat: it leaves the queue. False if not waiting.
    fn admit(
        &self,
        participant: &ParticipantId,
        clinician: &ClinicianId,
        clinician_name: &str,
    ) -> Result<bool, Error>;

    /// Puts a seat (waiting or admitted) back into a queue as `Waiting`:
    /// its own room's, or `room` of the same tenant (a transfer). The seat
    /// leaves its call (`call` and `relay` cleared). False if there is no
    /// such seat.
    fn requeue(
        &self,
        participant: &ParticipantId,
        room: Option<&RoomId>,
        end: QueueEnd,
    ) -> Result<bool, Error>;

    /// Extends the life of a seat and its details by `ttl` from now.
    fn refresh(&self, participant: &ParticipantId, ttl: Duration) -> Result<bool, Error>;

    /// Removes a seat, its token and its details (consultation ended,
    /// patient left or denied, grace period over).
    fn remove(&self, participant: &ParticipantId) -> Result<Option<SeatRecord>, Error>;

    /// Every seat of a tenant, by participant id.
    fn seats_of(&self, tenant: &TenantId) -> Result<Vec<SeatRecord>, Error>;
}

/// Seats in this process's memory (no TTL: the lobby's grace timer and the
/// end of the consultation remove them).
#[derive(Debug, Default)]
pub struct MemorySeats {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    seats: HashMap<ParticipantId, (SeatRecord, PatientDetails)>,
    tokens: HashMap<TokenHash, ParticipantId>,
    queues: HashMap<(TenantId, RoomId), VecDeque<ParticipantId>>,
}

impl Inner {
    fn unqueue(&mut self, seat: &SeatRecord) {
        let key = (seat.tenant.clone(), seat.room.clone());
        if let Some(q) = self.queues.get_mut(&key) {
            q.retain(|p| p != &seat.participant);
            if q.is_empty() {
                self.queues.remove(&key);
            }
        }
    }
}

impl MemorySeats {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Each method is one short critical section: usable after a panic.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl SeatStore for MemorySeats {
    fn insert(
        &self,
        seat: &SeatRecord,
        details: &PatientDetails,
        _ttl: Duration,
    ) -> Result<(), Error> {
        let mut inner = self.lock();
        if let Some((old, _)) = inner.seats.remove(&seat.participant) {
            inner.tokens.remove(&old.token_hash);
            inner.unqueue(&old);
        }
        if seat.state == SeatState::Waiting {
            inner
                .queues
                .entry((seat.tenant.clone(), seat.room.clone()))
                .or_default()
                .push_back(seat.participant.clone());
        }
        inner
            .tokens
            .insert(seat.token_hash, seat.participant.clone());
        inner
            .seats
            .insert(seat.participant.clone(), (seat.clone(), details.clone()));
        Ok(())
    }

    fn get(&self, participant: &ParticipantId) -> Result<Option<SeatRecord>, Error> {
        Ok(self.lock().seats.get(participant).map(|(s, _)| s.clone()))
    }

    fn by_token(&self, hash: &TokenHash) -> Result<Option<SeatRecord>, Error> {
        let inner = self.lock();
        Ok(inner
            .tokens
            .get(hash)
            .and_then(|p| inner.seats.get(p))
            .map(|(s, _)| s.clone()))
    }

    fn details(&self, participant: &ParticipantId) -> Result<Option<PatientDetails>, Error> {
        Ok(self.lock().seats.get(participant).map(|(_, d)| d.clone()))
    }

    fn queue(&self, tenant: &TenantId, room: &RoomId) -> Result<Vec<ParticipantId>, Error> {
        let key = (tenant.clone(), room.clone());
        Ok(self
            .lock()
            .queues
            .get(&key)
            .map(|q| q.iter().cloned().collect())
            .unwrap_or_default())
    }

    fn position(&self, participant: &ParticipantId) -> Result<Option<u32>, Error> {
        let inner = self.lock();
        let Some((seat, _)) = inner.seats.get(participant) else {
            return Ok(None);
        };
        let key = (seat.tenant.clone(), seat.room.clone());
        Ok(inner
            .queues
            .get(&key)
            .and_then(|q| q.iter().position(|p| p == participant))
            .map(|i| u32::try_from(i + 1).unwrap_or(u32::MAX)))
    }

    fn admit(
        &self,
        participant: &ParticipantId,
        clinician: &ClinicianId,
        clinician_name: &str,
    ) -> Result<bool, Error> {
        let mut inner = self.lock();
        let Some((seat, _)) = inner.seats.get(participant) else {
            return Ok(false);
        };
        if seat.state != SeatState::Waiting {
            return Ok(false);
        }
        let seat = seat.clone();
        inner.unqueue(&seat);
        if let Some((s, _)) = inner.seats.get_mut(participant) {
            s.state = SeatState::Admitted {
                clinician: clinician.clone(),
                clinician_name: clinician_name.to_owned(),
            };
        }
        Ok(true)
    }

    fn requeue(
        &self,
        participant: &ParticipantId,
        room: Option<&RoomId>,
        end: QueueEnd,
    ) -> Result<bool, Error> {
        let mut inner = self.lock();
        let Some((seat, _)) = inner.seats.get(participant) else {
            return Ok(false);
        };
        let seat = seat.clone();
        inner.unqueue(&seat);
        let room = room.unwrap_or(&seat.room).clone();
        let q = inner
            .queues
            .entry((seat.tenant.clone(), room.clone()))
            .or_default();
        match end {
            QueueEnd::Front => q.push_front(participant.clone()),
            QueueEnd::Back => q.push_back(participant.clone()),
        }
        if let Some((s, _)) = inner.seats.get_mut(participant) {
            s.room = room;
            s.state = SeatState::Waiting;
            s.call = None;
            s.relay = None;
        }
        Ok(true)
    }

    fn refresh(&self, participant: &ParticipantId, _ttl: Duration) -> Result<bool, Error> {
        Ok(self.lock().seats.contains_key(participant))
    }

    fn remove(&self, participant: &ParticipantId) -> Result<Option<SeatRecord>, Error> {
        let mut inner = self.lock();
        let Some((seat, _details)) = inner.seats.remove(participant) else {
            return Ok(None);
        };
        inner.tokens.remove(&seat.token_hash);
        inner.unqueue(&seat);
        Ok(Some(seat))
    }

    fn seats_of(&self, tenant: &TenantId) -> Result<Vec<SeatRecord>, Error> {
        let mut seats: Vec<SeatRecord> = self
            .lock()
            .seats
            .values()
            .filter(|(s, _)| &s.tenant == tenant)
            .map(|(s, _)| s.clone())
            .collect();
        seats.sort_by(|a, b| a.participant.cmp(&b.participant));
        Ok(seats)
    }
}
