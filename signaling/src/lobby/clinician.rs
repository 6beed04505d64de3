//! Clinician actions of the lobby (subscriptions are in `subscribe`): intake
//! answers, admit, deny, transfer, return to queue, end consultation.
//!
//! Every action first resolves the patient through [`Lobby::seat_of`], which
//! answers `not_found` for a seat of another tenant exactly as for a missing
//! one; rooms and transfer targets are checked the same way.

use std::time::Instant;

use protocol::client::{
    ClientToSignaling, ErrorCode, LeftReason, RequestId, SignalingToClient, StaffIdentity,
    TransferTarget,
};
use protocol::{ClinicianId, ParticipantId, RoomId, TenantId};

use super::seat::{MAX_DENY_MESSAGE_CHARS, Seat, SeatState};
use super::{Conn, ConnId, Lobby, Reject, reject};
use crate::audit::{AuditAction, AuditEvent};

impl Lobby {
    /// Dispatches a message from a clinician connection.
    pub(super) fn clinician_message(
        &mut self,
        conn: ConnId,
        staff: &StaffIdentity,
        msg: ClientToSignaling,
        now: Instant,
    ) -> Result<(), Reject> {
        let request = msg.request();
        match msg {
            ClientToSignaling::Subscribe { request } => {
                self.subscribe(conn, staff, request, now);
                return Ok(());
            }
            ClientToSignaling::GetIntake {
                participant,
                request,
            } => return self.get_intake(conn, staff, &participant, request),
            ClientToSignaling::Admit { participant, .. } => {
                self.admit(conn, staff, &participant, now)?;
            }
            ClientToSignaling::CreateInvite { call, request } => {
                let r = self
                    .calls
                    .create_invite(conn, &staff.tenant, &call, request, now);
                self.pull_calls();
                return r;
            }
            ClientToSignaling::Deny {
                participant,
                message,
                ..
            } => self.deny(staff, &participant, message, now)?,
            ClientToSignaling::Transfer {
                participant, to, ..
            } => self.transfer(staff, &participant, to, now)?,
            ClientToSignaling::ReturnToQueue { participant, .. } => {
                self.return_to_queue(staff, &participant, now)?;
            }
            ClientToSignaling::EndConsultation { participant, .. } => {
                self.end_consultation(staff, &participant, now)?;
            }
            _ => return Err(reject(ErrorCode::Forbidden, "not a clinician message")),
        }
        self.send(conn, SignalingToClient::Ok { request });
        Ok(())
    }

    /// The seat, if it exists and belongs to the clinician's tenant.
    fn seat_of(&self, staff: &StaffIdentity, p: &ParticipantId) -> Result<&Seat, Reject> {
        self.seats
            .get(p)
            .filter(|s| s.tenant == staff.tenant)
            .ok_or_else(|| reject(ErrorCode::NotFound, "no such patient"))
    }

    fn audit_event(
        action: AuditAction,
        staff: &StaffIdentity,
        room: &RoomId,
        p: &ParticipantId,
    ) -> AuditEvent {
        AuditEvent::new(action)
            .actor(staff.clinician.clone())
            .tenant(staff.tenant.clone())
            .room(room.clone())
            .participant(p.clone())
    }

    fn get_intake(
        &mut self,
        conn: ConnId,
        staff: &StaffIdentity,
        p: &ParticipantId,
        request: Option<RequestId>,
    ) -> Result<(), Reject> {
        let seat = self.seat_of(staff, p)?;
        let msg = SignalingToClient::Intake {
            request,
            participant: p.clone(),
            room: seat.room.clone(),
            display_name: seat.display_name.clone(),
            answers: seat.intake.clone(),
        };
        self.send(conn, msg);
        Ok(())
    }

    fn admit(
        &mut self,
        conn: ConnId,
        staff: &StaffIdentity,
        p: &ParticipantId,
        now: Instant,
    ) -> Result<(), Reject> {
        let seat = self.seat_of(staff, p)?;
        if let SeatState::Admitted { clinician, .. } = &seat.state
            && clinician == &staff.clinician
            && let Some(call) = seat.call.clone()
        {
            // The clinician's own consultation: back into its call (after a
            // reload, or from a second device).
            return self.rejoin_call(conn, staff, &call);
        }
        if !matches!(seat.state, SeatState::Waiting) {
            return Err(reject(ErrorCode::Conflict, "the patient is not waiting"));
        }
        let room = seat.room.clone();
        self.admit_into(p, &staff.clinician, &staff.display_name, Some(conn), now);
        tracing::info!(clinician = %staff.clinician, room = %room, participant = %p, "admitted");
        self.audit(Self::audit_event(AuditAction::Admit, staff, &room, p));
        Ok(())
    }

    /// Puts a seat into a consultation with `clinician` and tells everyone;
    /// with calls, the seat (and the clinician on `clinician_conn`) join its call.
    fn admit_into(
        &mut self,
        p: &ParticipantId,
        clinician: &ClinicianId,
        name: &str,
        clinician_conn: Option<ConnId>,
        now: Instant,
    ) {
        let Some(seat) = self.seats.get_mut(p) else {
            return;
        };
        let was_waiting = matches!(seat.state, SeatState::Waiting);
        seat.state = SeatState::Admitted {
            clinician: clinician.clone(),
            clinician_name: name.to_owned(),
        };
        let (room, queued_at, conn) = (seat.room.clone(), seat.queued_at, seat.conn);
        if was_waiting && let Some(q) = self.rooms.get_mut(&room) {
            q.remove(p);
            q.consulting.push(p.clone());
            q.stats.record(queued_at, now);
            crate::metrics::global().observe_wait(now.saturating_duration_since(queued_at));
        }
        if let Some(c) = conn {
            let msg = SignalingToClient::Admitted {
                room: room.clone(),
                clinician_name: name.to_owned(),
            };
            self.send(c, msg);
        }
        self.seat_into_call(p, clinician, name, clinician_conn);
        self.log_put(p);
        self.announce_update(p, now);
        if was_waiting {
            self.room_changed(&room);
        }
    }

    fn deny(
        &mut self,
        staff: &StaffIdentity,
        p: &ParticipantId,
        message: Option<String>,
        now: Instant,
    ) -> Result<(), Reject> {
        let seat = self.seat_of(staff, p)?;
        if !matches!(seat.state, SeatState::Waiting) {
            return Err(reject(ErrorCode::Conflict, "the patient is not waiting"));
        }
        if message
            .as_ref()
            .is_some_and(|m| m.chars().count() > MAX_DENY_MESSAGE_CHARS)
        {
            return Err(reject(
                ErrorCode::BadRequest,
                format!("the message is longer than {MAX_DENY_MESSAGE_CHARS} characters"),
            ));
        }
        let (room, conn) = (seat.room.clone(), seat.conn);
        if let Some(c) = conn {
            self.send(c, SignalingToClient::Denied { message });
        }
        tracing::info!(clinician = %staff.clinician, room = %room, participant = %p, "denied");
        self.audit(Self::audit_event(AuditAction::Deny, staff, &room, p));
        self.release(p, LeftReason::Denied, now);
        Ok(())
    }

    fn transfer(
        &mut self,
        staff: &StaffIdentity,
        p: &ParticipantId,
        to: TransferTarget,
        now: Instant,
    ) -> Result<(), Reject> {
        let seat = self.seat_of(staff, p)?;
        let from = seat.room.clone();
        match to {
            TransferTarget::Room(target) => {
                let info = self
                    .directory
                    .room(&target)
                    .filter(|r| r.tenant == staff.tenant)
                    .ok_or_else(|| reject(ErrorCode::NotFound, "no such room"))?;
                if target == from && matches!(seat.state, SeatState::Waiting) {
                    return Err(reject(
                        ErrorCode::BadRequest,
                        "the patient already waits in that room",
                    ));
                }
                self.move_to_room(p, &info, now);
                let e = Self::audit_event(AuditAction::Transfer, staff, &target, p);
                self.audit(e.detail(format!("from_room={from}")));
            }
            TransferTarget::Clinician(target) => {
                if target == staff.clinician {
                    return Err(reject(ErrorCode::BadRequest, "cannot transfer to yourself"));
                }
                let (name, target_conn) = self
                    .online_clinician(&staff.tenant, &target)
                    .ok_or_else(|| reject(ErrorCode::NotFound, "no such clinician online"))?;
                self.admit_into(p, &target, &name, Some(target_conn), now);
                let e = Self::audit_event(AuditAction::Transfer, staff, &from, p);
                self.audit(e.target_clinician(target));
            }
        }
        tracing::info!(clinician = %staff.clinician, participant = %p, "transferred");
        Ok(())
    }

    /// The display name and a connection of a connected clinician of
    /// `tenant`, if any.
    fn online_clinician(&self, tenant: &TenantId, id: &ClinicianId) -> Option<(String, ConnId)> {
        let mut found: Vec<_> = self
            .conns
            .iter()
            .filter_map(|(conn, c)| match c {
                Conn::Clinician { staff, .. }
                    if &staff.tenant == tenant && &staff.clinician == id =>
                {
                    Some((staff.display_name.clone(), *conn))
                }
                _ => None,
            })
            .collect();
        found.sort_by_key(|(_, conn)| *conn);
        found.pop()
    }

    /// Moves a seat to the back of another room's queue (same tenant).
    fn move_to_room(&mut self, p: &ParticipantId, info: &crate::directory::RoomInfo, now: Instant) {
        self.seat_out_of_call(p, now);
        let Some(seat) = self.seats.get_mut(p) else {
            return;
        };
        let old = std::mem::replace(&mut seat.room, info.id.clone());
        seat.state = SeatState::Waiting;
        seat.queued_at = now;
        seat.last_status = None;
        let (tenant, conn) = (seat.tenant.clone(), seat.conn);
        let was_waiting = self.rooms.get_mut(&old).is_some_and(|q| q.remove(p));
        let left = SignalingToClient::PatientLeft {
            room: old.clone(),
            participant: p.clone(),
            reason: LeftReason::Transferred,
        };
        self.broadcast(&tenant, &left);
        if was_waiting {
            self.room_changed(&old);
        }
        self.room_queue(info).waiting.push_back(p.clone());
        self.log_put(p);
        if let Some(c) = conn {
            self.send(
                c,
                SignalingToClient::Transferred {
                    room: info.id.clone(),
                },
            );
        }
        self.room_changed(&info.id);
        if let Some(seat) = self.seats.get(p) {
            let entry = self.entry(seat, now);
            let msg = SignalingToClient::PatientArrived {
                room: info.id.clone(),
                entry,
            };
            self.broadcast(&tenant, &msg);
        }
    }

    fn return_to_queue(
        &mut self,
        staff: &StaffIdentity,
        p: &ParticipantId,
        now: Instant,
    ) -> Result<(), Reject> {
        let seat = self.seat_of(staff, p)?;
        if !matches!(seat.state, SeatState::Admitted { .. }) {
            return Err(reject(
                ErrorCode::Conflict,
                "the patient is not in a consultation",
            ));
        }
        let room = seat.room.clone();
        self.seat_out_of_call(p, now);
        if let Some(seat) = self.seats.get_mut(p) {
            seat.state = SeatState::Waiting;
            seat.queued_at = now;
            seat.last_status = None;
            if let Some(c) = seat.conn {
                let msg = SignalingToClient::ReturnedToQueue { room: room.clone() };
                self.out.push_back(super::Output::Send(c, msg));
            }
        }
        if let Some(q) = self.rooms.get_mut(&room) {
            q.remove(p);
            q.waiting.push_front(p.clone());
        }
        self.log(super::persist::SeatChange::ReturnToQueue {
            participant: p.clone(),
        });
        self.room_changed(&room);
        self.announce_update(p, now);
        tracing::info!(clinician = %staff.clinician, room = %room, participant = %p, "returned to queue");
        self.audit(Self::audit_event(
            AuditAction::ReturnToQueue,
            staff,
            &room,
            p,
        ));
        Ok(())
    }

    fn end_consultation(
        &mut self,
        staff: &StaffIdentity,
        p: &ParticipantId,
        now: Instant,
    ) -> Result<(), Reject> {
        let seat = self.seat_of(staff, p)?;
        if !matches!(seat.state, SeatState::Admitted { .. }) {
            return Err(reject(
                ErrorCode::Conflict,
                "the patient is not in a consultation",
            ));
        }
        let (room, conn) = (seat.room.clone(), seat.conn);
        // `call_ended` (to everyone in the call) before `consultation_ended`.
        self.seat_out_of_call(p, now);
        if let Some(c) = conn {
            self.send(c, SignalingToClient::ConsultationEnded);
        }
        tracing::info!(clinician = %staff.clinician, room = %room, participant = %p, "consultation ended");
        self.audit(Self::audit_event(
            AuditAction::EndConsultation,
            staff,
            &room,
            p,
        ));
        self.release(p, LeftReason::Ended, now);
        Ok(())
    }
}
