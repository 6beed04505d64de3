//! The lobby's seats in a [`SeatStore`] (issue 7, docs/operations.md
//! "Scaling out"): write-through of every seat change, and the rebuild of a
//! lobby from the store when another node takes it over.
//!
//! **Write-through.** The lobby stays sans-IO: once the driver calls
//! [`Lobby::record_seat_changes`], every step that changes a seat appends a
//! [`SeatChange`] (join, admission, transfer, return to the queue, the call
//! it is in moving, resume, release), and the driver drains them with
//! [`Lobby::take_seat_changes`] and [`apply`]s them in order off the lobby's
//! hot path. A change carries the whole seat where that is simplest
//! ([`SeatChange::Put`]); the queue order in the store equals the lobby's
//! because a `Put` of a waiting seat is only made when the lobby also put
//! it at the back of its room's queue, and the one move to the front has
//! its own change. Patient details are written with the seat and expire
//! after [`seat_ttl`] unless written or refreshed again.
//!
//! **Restore.** [`load`] reads every seat of every organisation of the
//! directory with its details, waiting seats in queue order;
//! [`Lobby::restore`] puts them back: same participant ids, rooms, order,
//! token hashes (resume tokens keep working), names and intake answers,
//! admitted state, and consultation calls (on the relay last written, for
//! the relay to re-announce). Every restored seat starts its grace period.
//!
//! Store errors are counted ([`store_errors`]) and logged with the
//! participant id and the error kind only; the lobby keeps serving from
//! memory.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use protocol::{NodeId, ParticipantId, RoomId, TenantId};

use super::seat::{Seat, SeatState};
use super::{Lobby, LobbySettings};
use crate::Error;
use crate::directory::Directory;
use crate::store::WallClock;
use crate::store::seats::{self as store, PatientDetails, QueueEnd, SeatRecord, SeatStore};

/// The longest consultation a seat's details outlive in the store without
/// a change (plus the resume grace): see [`seat_ttl`].
pub const MAX_CONSULTATION: Duration = Duration::from_secs(12 * 3600);

/// How long a seat and the patient's details live in the store after their
/// last change: the resume grace plus [`MAX_CONSULTATION`]. A deployment
/// that died entirely loses its patients' details by itself.
pub fn seat_ttl(settings: &LobbySettings) -> Duration {
    settings.grace + MAX_CONSULTATION
}

/// One change to a seat, to write through in the order the lobby made it.
#[derive(Debug, Clone)]
#[allow(clippy::large_enum_variant)] // `Put` is the common change; they live briefly
pub enum SeatChange {
    /// Writes the whole seat (new, admitted, transferred, its call moved).
    /// A waiting seat goes to the back of its room's queue: only made when
    /// the lobby put it there too (a join, a transfer to a room).
    Put {
        /// The seat.
        seat: SeatRecord,
        /// The patient's name and intake answers.
        details: PatientDetails,
    },
    /// The seat left its call and is next in its room's queue again.
    ReturnToQueue {
        /// The seat.
        participant: ParticipantId,
    },
    /// The patient came back (resume): the seat lives on.
    Refresh {
        /// The seat.
        participant: ParticipantId,
    },
    /// The seat and the patient's details are gone (left, denied, ended,
    /// grace period over).
    Remove {
        /// The seat.
        participant: ParticipantId,
    },
    /// Removes the stored seats of `tenants` that are not in `keep`: the
    /// first step of rewriting every seat from memory
    /// ([`Lobby::seat_snapshot`]).
    Prune {
        /// The organisations whose seats are rewritten.
        tenants: Vec<TenantId>,
        /// The seats the lobby holds.
        keep: BTreeSet<ParticipantId>,
    },
}

impl SeatChange {
    /// The seat changed (none for a prune).
    pub fn participant(&self) -> Option<&ParticipantId> {
        match self {
            Self::Put { seat, .. } => Some(&seat.participant),
            Self::ReturnToQueue { participant }
            | Self::Refresh { participant }
            | Self::Remove { participant } => Some(participant),
            Self::Prune { .. } => None,
        }
    }

    fn op(&self) -> &'static str {
        match self {
            Self::Put { .. } => "put",
            Self::ReturnToQueue { .. } => "return_to_queue",
            Self::Refresh { .. } => "refresh",
            Self::Remove { .. } => "remove",
            Self::Prune { .. } => "prune",
        }
    }
}

/// A seat read back from the store, for [`Lobby::restore`].
#[derive(Debug, Clone)]
pub struct StoredSeat {
    /// The seat.
    pub seat: SeatRecord,
    /// The patient's name and intake answers.
    pub details: PatientDetails,
}

static STORE_ERRORS: AtomicU64 = AtomicU64::new(0);

/// How many seat writes failed in this process (for metrics).
pub fn store_errors() -> u64 {
    STORE_ERRORS.load(Ordering::Relaxed)
}

/// Writes one change to `store`; details live `ttl` from now. A failure is
/// counted and logged (participant id, operation and error kind only).
pub fn apply(store: &dyn SeatStore, change: &SeatChange, ttl: Duration) -> Result<(), Error> {
    let result = match change {
        SeatChange::Put { seat, details } => store.insert(seat, details, ttl),
        SeatChange::ReturnToQueue { participant } => store
            .requeue(participant, None, QueueEnd::Front)
            .and_then(|_| store.refresh(participant, ttl))
            .map(|_| ()),
        SeatChange::Refresh { participant } => store.refresh(participant, ttl).map(|_| ()),
        SeatChange::Remove { participant } => store.remove(participant).map(|_| ()),
        SeatChange::Prune { tenants, keep } => prune(store, tenants, keep),
    };
    if let Err(e) = &result {
        STORE_ERRORS.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(
            participant = ?change.participant(),
            op = change.op(),
            error = %e,
            "writing a seat to the shared store failed; the lobby keeps serving from memory"
        );
    }
    result
}

fn prune(
    store: &dyn SeatStore,
    tenants: &[TenantId],
    keep: &BTreeSet<ParticipantId>,
) -> Result<(), Error> {
    for tenant in tenants {
        for seat in store.seats_of(tenant)? {
            if !keep.contains(&seat.participant) {
                store.remove(&seat.participant)?;
            }
        }
    }
    Ok(())
}

/// Every seat of every organisation of `directory`, with the patient's
/// details: per organisation, each room's waiting seats in queue order,
/// then the other seats (admitted; waiting seats missing from their queue)
/// by arrival. Seats whose details are gone are left out. Blocking (Redis):
/// call it off the async runtime's workers (`spawn_blocking`).
pub fn load(store: &dyn SeatStore, directory: &Directory) -> Result<Vec<StoredSeat>, Error> {
    load_tenants(store, directory.tenants().into_iter().map(|t| t.id))
}

/// [`load`] for these organisations.
pub fn load_tenants(
    store: &dyn SeatStore,
    tenants: impl IntoIterator<Item = TenantId>,
) -> Result<Vec<StoredSeat>, Error> {
    let mut ordered = Vec::new();
    let tenants: BTreeSet<TenantId> = tenants.into_iter().collect();
    for tenant in tenants {
        let seats = store.seats_of(&tenant)?;
        let rooms: BTreeSet<RoomId> = seats
            .iter()
            .filter(|s| s.state == store::SeatState::Waiting)
            .map(|s| s.room.clone())
            .collect();
        let mut by_id: HashMap<ParticipantId, SeatRecord> = seats
            .into_iter()
            .map(|s| (s.participant.clone(), s))
            .collect();
        for room in rooms {
            for p in store.queue(&tenant, &room)? {
                let queued = by_id
                    .get(&p)
                    .is_some_and(|s| s.room == room && s.state == store::SeatState::Waiting);
                if queued && let Some(seat) = by_id.remove(&p) {
                    ordered.push(seat);
                }
            }
        }
        let mut rest: Vec<SeatRecord> = by_id.into_values().collect();
        rest.sort_by(|a, b| {
            (a.joined_unix_ms, &a.participant).cmp(&(b.joined_unix_ms, &b.participant))
        });
        ordered.extend(rest);
    }
    let mut out = Vec::with_capacity(ordered.len());
    for seat in ordered {
        match store.details(&seat.participant)? {
            Some(details) => out.push(StoredSeat { seat, details }),
            None => {
                tracing::warn!(participant = %seat.participant, "stored seat without details, not restored");
            }
        }
    }
    Ok(out)
}

/// What the lobby records while write-through is on.
#[derive(Debug)]
pub(super) struct SeatLog {
    wall: WallClock,
    changes: Vec<SeatChange>,
    rewrite: bool,
}

impl Lobby {
    /// From now on, every seat change is recorded for
    /// [`Lobby::take_seat_changes`]; `wall` converts the lobby's instants
    /// to Unix time (the join time in the store). Off by default.
    pub fn record_seat_changes(&mut self, wall: WallClock) {
        self.seat_log = Some(SeatLog {
            wall,
            changes: Vec::new(),
            rewrite: false,
        });
    }

    /// Asks for every seat to be written again (the store lost writes, or
    /// was emptied by a restart): see [`Lobby::take_seat_rewrite_request`].
    pub fn request_seat_rewrite(&mut self) {
        if let Some(log) = &mut self.seat_log {
            log.rewrite = true;
        }
    }

    /// Whether [`Lobby::request_seat_rewrite`] was called since the last
    /// time this answered true.
    pub fn take_seat_rewrite_request(&mut self) -> bool {
        self.seat_log
            .as_mut()
            .is_some_and(|log| std::mem::take(&mut log.rewrite))
    }

    /// Every seat as it is now, as changes that make the store equal to
    /// the lobby whatever it held: stale seats of the lobby's organisations
    /// removed, then each room's waiting seats in queue order (each goes to
    /// the back), then the seats in consultation. Empty unless recording;
    /// changes recorded but not taken yet are superseded and dropped.
    pub fn seat_snapshot(&mut self) -> Vec<SeatChange> {
        let Some(log) = &mut self.seat_log else {
            return Vec::new();
        };
        log.changes.clear();
        let mut rooms: Vec<(&RoomId, &super::room::RoomQueue)> = self.rooms.iter().collect();
        rooms.sort_by(|a, b| a.0.cmp(b.0));
        let tenants: BTreeSet<TenantId> = rooms.iter().map(|(_, q)| q.tenant.clone()).collect();
        let waiting = rooms.iter().flat_map(|(_, q)| q.waiting.iter());
        let consulting = rooms.iter().flat_map(|(_, q)| q.consulting.iter());
        let order: Vec<ParticipantId> = waiting.chain(consulting).cloned().collect();
        let keep = self.seats.keys().cloned().collect();
        self.log(SeatChange::Prune {
            tenants: tenants.into_iter().collect(),
            keep,
        });
        for p in &order {
            self.log_put(p);
        }
        self.take_seat_changes()
    }

    /// The seat changes made since the last call, oldest first (empty
    /// unless [`Lobby::record_seat_changes`] was called).
    pub fn take_seat_changes(&mut self) -> Vec<SeatChange> {
        self.seat_log
            .as_mut()
            .map(|log| std::mem::take(&mut log.changes))
            .unwrap_or_default()
    }

    /// Records the whole seat `p` as it is now.
    pub(super) fn log_put(&mut self, p: &ParticipantId) {
        let Some(log) = &self.seat_log else {
            return;
        };
        let Some(seat) = self.seats.get(p) else {
            return;
        };
        let relay = seat
            .call
            .as_ref()
            .and_then(|c| self.calls.summary(c))
            .and_then(|s| s.relay);
        let record = record_of(seat, relay, &log.wall);
        let details = PatientDetails {
            display_name: seat.display_name.clone(),
            intake: seat.intake.clone(),
        };
        self.log(SeatChange::Put {
            seat: record,
            details,
        });
    }

    /// Records a change that needs only the participant.
    pub(super) fn log(&mut self, change: SeatChange) {
        if let Some(log) = &mut self.seat_log {
            log.changes.push(change);
        }
    }

    /// Records the seats in `call` again (its relay changed).
    pub(super) fn log_call_moved(&mut self, call: &RoomId) {
        if self.seat_log.is_none() {
            return;
        }
        let mut in_call: Vec<ParticipantId> = self
            .seats
            .values()
            .filter(|s| s.call.as_ref() == Some(call))
            .map(|s| s.participant.clone())
            .collect();
        in_call.sort();
        for p in in_call {
            self.log_put(&p);
        }
    }
}

/// The store's record of `seat` (no patient data in it).
fn record_of(seat: &Seat, relay: Option<NodeId>, wall: &WallClock) -> SeatRecord {
    let state = match &seat.state {
        SeatState::Waiting => store::SeatState::Waiting,
        SeatState::Admitted {
            clinician,
            clinician_name,
        } => store::SeatState::Admitted {
            clinician: clinician.clone(),
            clinician_name: clinician_name.clone(),
        },
    };
    let joined_unix_ms = u64::try_from(wall.to_unix_nanos(seat.joined_at) / 1_000_000).unwrap_or(0);
    SeatRecord {
        participant: seat.participant.clone(),
        tenant: seat.tenant.clone(),
        room: seat.room.clone(),
        token_hash: seat.token_hash,
        state,
        joined_unix_ms,
        call: seat.call.clone(),
        relay: seat.call.as_ref().and(relay),
        invited_to: seat.invited_to.clone(),
    }
}
