//! Rebuilding the lobby from the seats [`super::persist::load`] read back
//! after another node's lobby died (issue 7): seats, queue order, tokens,
//! details, admitted state and consultation calls. See
//! [`super::persist`] for what is and is not restored.

use std::cmp::Reverse;
use std::collections::BTreeMap;
use std::time::{Instant, SystemTime};

use protocol::client::RosterRole;
use protocol::{NodeId, ParticipantId, RoomId};

use super::Lobby;
use super::persist::StoredSeat;
use super::seat::{Seat, SeatState};
use crate::calls::{CallKind, Joiner};
use crate::directory::RoomKind;
use crate::store::WallClock;
use crate::store::seats as store;

impl Lobby {
    /// Puts the seats read by [`load`] back, as they were on the node that
    /// wrote them (see the module documentation). Seats already here, of a
    /// room no longer in the directory or of another organisation than
    /// their room's are skipped. Every restored seat starts its grace
    /// period: its patient has to resume on this node in time.
    pub fn restore(&mut self, seats: Vec<StoredSeat>, now: Instant) {
        self.restore_at(seats, now, WallClock::pinned(now, SystemTime::now()));
    }

    /// [`Lobby::restore`] with `wall` pinning `now`'s Unix time (tests).
    pub fn restore_at(&mut self, seats: Vec<StoredSeat>, now: Instant, wall: WallClock) {
        let until = now + self.settings.grace;
        let mut calls: BTreeMap<RoomId, Vec<(ParticipantId, Option<NodeId>)>> = BTreeMap::new();
        let mut restored = 0usize;
        for StoredSeat { seat: r, details } in seats {
            if self.seats.contains_key(&r.participant) || self.tokens.contains_key(&r.token_hash) {
                continue;
            }
            let Some(info) = self
                .directory
                .room(&r.room)
                .filter(|i| i.tenant == r.tenant)
            else {
                tracing::warn!(participant = %r.participant, room = %r.room, "stored seat of an unknown room, not restored");
                continue;
            };
            let nanos = i64::try_from(r.joined_unix_ms)
                .unwrap_or(i64::MAX)
                .saturating_mul(1_000_000);
            let joined_at = wall.from_unix_nanos(nanos).min(now);
            let p = r.participant.clone();
            let state = match r.state {
                store::SeatState::Waiting => {
                    self.room_queue(&info).waiting.push_back(p.clone());
                    SeatState::Waiting
                }
                store::SeatState::Admitted {
                    clinician,
                    clinician_name,
                } => {
                    self.room_queue(&info).consulting.push(p.clone());
                    if let Some(call) = &r.call {
                        let entry = calls.entry(call.clone()).or_default();
                        entry.push((p.clone(), r.relay.clone()));
                    }
                    SeatState::Admitted {
                        clinician,
                        clinician_name,
                    }
                }
            };
            let seat = Seat {
                participant: p.clone(),
                tenant: r.tenant,
                room: r.room,
                display_name: details.display_name,
                intake: details.intake,
                token_hash: r.token_hash,
                joined_at,
                queued_at: joined_at,
                state,
                conn: None,
                grace_until: Some(until),
                last_status: None,
                call: None,
                invited_to: r.invited_to,
            };
            self.tokens.insert(seat.token_hash, p.clone());
            self.seats.insert(p.clone(), seat);
            self.grace.push(Reverse((until, p)));
            restored += 1;
        }
        for (call, members) in calls {
            self.restore_call(&call, &members);
        }
        self.restore_invitees();
        tracing::info!(seats = restored, "lobby restored from the seat store");
    }

    /// Rebuilds one call of restored admitted seats, without connections.
    fn restore_call(&mut self, call: &RoomId, members: &[(ParticipantId, Option<NodeId>)]) {
        let Some(first) = members.first().and_then(|(p, _)| self.seats.get(p)) else {
            return;
        };
        let (tenant, room) = (first.tenant.clone(), first.room.clone());
        let meeting = self
            .directory
            .room(&room)
            .is_some_and(|r| r.kind == RoomKind::Meeting);
        let kind = if meeting {
            CallKind::Meeting { room }
        } else {
            CallKind::Consultation { room }
        };
        let node = members.iter().find_map(|(_, n)| n.clone());
        let joiners = members
            .iter()
            .filter_map(|(p, _)| self.seats.get(p))
            .map(|s| Joiner {
                participant: s.participant.clone(),
                conn: None,
                role: if meeting || s.invited_to.is_some() {
                    RosterRole::Guest
                } else {
                    RosterRole::Patient
                },
                display_name: s.display_name.clone(),
                clinician: None,
            })
            .collect();
        if self.calls.restore(call, tenant, kind, node, joiners) {
            for (p, _) in members {
                if let Some(seat) = self.seats.get_mut(p) {
                    seat.call = Some(call.clone());
                }
            }
        }
    }

    /// Waiting invitees of a restored call are its invitees again.
    fn restore_invitees(&mut self) {
        let invitees: Vec<(RoomId, ParticipantId)> = self
            .seats
            .values()
            .filter(|s| matches!(s.state, SeatState::Waiting))
            .filter_map(|s| Some((s.invited_to.clone()?, s.participant.clone())))
            .collect();
        for (call, p) in invitees {
            if self.calls.exists(&call) {
                self.calls.note_invitee(&call, &p);
            }
        }
    }
}
