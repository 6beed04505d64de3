//! The lobby's side of calls: admitted seats go into calls (a new
//! consultation, the invited call, or a meeting room's standing call), and
//! leave them when the seat is released, returned or transferred. Invitees
//! take a seat with an invite token. Relay answers, relay events and
//! WHIP/WHEP roster changes pass through to [`Calls`], which owns the calls.

use std::time::Instant;

use protocol::client::{ErrorCode, IntakeAnswers, LeftReason, RosterRole, SignalingToClient};
use protocol::{ClinicianId, ParticipantId, Region, RoomId, Sensitive};

use super::seat::check_name;
use super::{Conn, ConnId, Lobby, Reject, reject};
use crate::calls::{CallKind, Joiner, OfferDone};
use crate::directory::RoomKind;
use crate::relays::RelayEvent;

impl Lobby {
    /// A relay answered (or failed to answer) an [`Output::Offer`](super::Output::Offer).
    pub fn handle_offer_done(&mut self, done: OfferDone) {
        if self.conn_test_offer_done(&done) {
            return;
        }
        self.calls.handle_offer_done(done);
        self.pull_calls();
    }

    /// An event of the relay pool (moves, orphans, renegotiation, relay up).
    pub fn handle_relay_event(&mut self, event: RelayEvent) {
        if self.conn_test_relay_event(&event) {
            return;
        }
        let moved = match &event {
            RelayEvent::CallMoved { call, .. } => Some(call.clone()),
            _ => None,
        };
        self.calls.handle_relay_event(event);
        self.pull_calls();
        if let Some(call) = moved {
            self.log_call_moved(&call);
        }
    }

    /// A WHIP/WHEP participant joined (`present`) or left `call`: roster only.
    pub fn handle_external_member(
        &mut self,
        call: &RoomId,
        participant: ParticipantId,
        role: protocol::client::RosterRole,
        display_name: protocol::Sensitive<String>,
        present: bool,
    ) {
        if present {
            self.calls
                .external_joined(call, participant, role, display_name);
        } else {
            self.calls.leave(call, &participant);
        }
        self.pull_calls();
    }

    /// The organisation, room, relay and clinicians of `call`, if it exists.
    pub fn call_summary(&self, call: &RoomId) -> Option<crate::calls::CallSummary> {
        self.calls.summary(call)
    }

    /// Relay events were lost (a slow lobby task): re-read the placements.
    pub fn handle_relay_events_lost(&mut self) {
        self.calls.resync();
        self.pull_calls();
        let calls: std::collections::BTreeSet<RoomId> =
            self.seats.values().filter_map(|s| s.call.clone()).collect();
        for call in calls {
            self.log_call_moved(&call);
        }
    }

    /// The region a connection gave in `hello`.
    fn conn_region(&self, conn: ConnId) -> Option<Region> {
        match self.conns.get(&conn)? {
            Conn::Patient { region, .. } | Conn::Clinician { region, .. } => region.clone(),
        }
    }

    /// A seat was just admitted by `clinician` (connected on
    /// `clinician_conn`): put it into its call. A seat already in a call (a
    /// transfer to another clinician) keeps the call; the clinicians swap.
    pub(super) fn seat_into_call(
        &mut self,
        p: &ParticipantId,
        clinician: &ClinicianId,
        clinician_name: &str,
        clinician_conn: Option<ConnId>,
    ) {
        if !self.calls.enabled() {
            return;
        }
        let Some(seat) = self.seats.get(p) else {
            return;
        };
        let (tenant, room, conn) = (seat.tenant.clone(), seat.room.clone(), seat.conn);
        let (existing, invited) = (seat.call.clone(), seat.invited_to.clone());
        let is_meeting = self
            .directory
            .room(&room)
            .is_some_and(|r| r.kind == RoomKind::Meeting);
        let region = conn
            .and_then(|c| self.conn_region(c))
            .or_else(|| clinician_conn.and_then(|c| self.conn_region(c)));
        let guest = invited.is_some() || is_meeting;
        let seat_joiner = Joiner {
            participant: p.clone(),
            conn,
            role: if guest {
                RosterRole::Guest
            } else {
                RosterRole::Patient
            },
            display_name: seat.display_name.clone(),
            clinician: None,
        };
        let clinician_joiner = clinician_conn.map(|c| Joiner {
            participant: ParticipantId::random(),
            conn: Some(c),
            role: RosterRole::Clinician,
            display_name: Sensitive::new(clinician_name.to_owned()),
            clinician: Some(clinician.clone()),
        });
        let call = if let Some(call) = existing {
            // Transferred to another clinician: the previous one leaves.
            self.calls.remove_clinicians_except(&call, clinician);
            self.add_clinician(&call, clinician, clinician_joiner);
            Some(call)
        } else if let Some(call) = invited.filter(|c| self.calls.exists(c)) {
            self.calls.join(&call, seat_joiner);
            Some(call)
        } else if is_meeting {
            let call = self.calls.meeting_call(&room, &tenant, region);
            if let Some(call) = &call {
                self.calls.join(call, seat_joiner);
                self.add_clinician(call, clinician, clinician_joiner);
            }
            call
        } else {
            let kind = CallKind::Consultation { room };
            let joiners = [Some(seat_joiner), clinician_joiner].into_iter().flatten();
            self.calls.start(tenant, kind, region, joiners.collect())
        };
        if let Some(seat) = self.seats.get_mut(p) {
            seat.call = call;
        }
        self.pull_calls();
    }

    /// Adds the admitting clinician to `call` unless already in it.
    fn add_clinician(
        &mut self,
        call: &protocol::RoomId,
        clinician: &ClinicianId,
        joiner: Option<Joiner>,
    ) {
        if let Some(j) = joiner
            && !self.calls.has_clinician(call, clinician)
        {
            self.calls.join(call, j);
        }
    }

    /// A clinician `admit`s a patient already in consultation with them:
    /// this connection joins the consultation's call.
    pub(super) fn rejoin_call(
        &mut self,
        conn: ConnId,
        staff: &protocol::client::StaffIdentity,
        call: &protocol::RoomId,
    ) -> Result<(), Reject> {
        if self.calls.has_conn(call, conn) {
            return Err(reject(ErrorCode::Conflict, "already in this call"));
        }
        let joiner = Joiner {
            participant: ParticipantId::random(),
            conn: Some(conn),
            role: RosterRole::Clinician,
            display_name: Sensitive::new(staff.display_name.clone()),
            clinician: Some(staff.clinician.clone()),
        };
        self.calls.join(call, joiner);
        self.pull_calls();
        tracing::info!(clinician = %staff.clinician, call = %call, "clinician rejoined call");
        Ok(())
    }

    /// The seat leaves its call (released, returned to the queue or moved
    /// to another room). A consultation ends with its patient: everyone gets
    /// `call_ended`, and the invitees' seats (in the call or still waiting)
    /// end too.
    pub(super) fn seat_out_of_call(&mut self, p: &ParticipantId, now: Instant) {
        let Some(seat) = self.seats.get_mut(p) else {
            return;
        };
        let call = seat.call.take();
        if let Some(invited) = seat.invited_to.clone() {
            self.calls.forget_invitee(&invited, p);
        }
        let Some(call) = call else {
            return;
        };
        if !self.calls.is_patient_of(&call, p) {
            self.calls.leave(&call, p);
            self.pull_calls();
            return;
        }
        let gone = self.calls.end(&call);
        self.pull_calls();
        for q in gone.iter().filter(|q| *q != p) {
            let Some(seat) = self.seats.get_mut(q) else {
                continue;
            };
            seat.call = None;
            seat.invited_to = None;
            if let Some(c) = seat.conn {
                self.send(c, SignalingToClient::ConsultationEnded);
            }
            self.release(q, LeftReason::Ended, now);
        }
    }

    /// `join_invite`: a seat in the call's waiting room, marked invited.
    /// The name is checked before the single-use token is spent.
    pub(super) fn join_invite(
        &mut self,
        conn: ConnId,
        token: &str,
        display_name: &Sensitive<String>,
        now: Instant,
    ) -> Result<(), Reject> {
        if self.seat_of_conn_pub(conn) {
            return Err(reject(
                ErrorCode::Conflict,
                "this connection already holds a seat; leave first",
            ));
        }
        if !self.calls.enabled() {
            return Err(reject(
                ErrorCode::InviteInvalid,
                "the invite is unknown, used or expired",
            ));
        }
        let name =
            check_name(display_name.expose()).map_err(|m| reject(ErrorCode::BadRequest, m))?;
        let invite = self.calls.redeem_invite(token, now)?;
        let info = self
            .directory
            .room(&invite.room)
            .filter(|r| r.tenant == invite.tenant)
            .ok_or_else(|| {
                reject(
                    ErrorCode::InviteInvalid,
                    "the invite is unknown, used or expired",
                )
            })?;
        let intake = Sensitive::new(IntakeAnswers::new());
        let p = self.take_seat(conn, &info, name, intake, Some(invite.call.clone()), now);
        self.calls.note_invitee(&invite.call, &p);
        tracing::info!(call = %invite.call, participant = %p, "invitee waiting");
        Ok(())
    }

    fn seat_of_conn_pub(&self, conn: ConnId) -> bool {
        matches!(
            self.conns.get(&conn),
            Some(Conn::Patient { seat: Some(_), .. })
        )
    }
}
