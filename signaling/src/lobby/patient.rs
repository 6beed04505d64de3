//! Patient inputs of the lobby: room info, join, resume, leave, dropped
//! connections, and the release of a seat (which drops the patient's data).

use std::cmp::Reverse;
use std::time::Instant;

use protocol::client::IntakeAnswers;
use protocol::client::{ClientToSignaling, ErrorCode, LeftReason, SignalingToClient};
use protocol::{ParticipantId, RoomId, Sensitive};

use super::persist::SeatChange;
use super::seat::{Seat, SeatState, check_intake, check_name, hash_token, new_token};
use super::{Conn, ConnId, Lobby, Output, Reject, reject};
use crate::directory::RoomInfo;

impl Lobby {
    /// Dispatches a message from a patient connection.
    pub(super) fn patient_message(
        &mut self,
        conn: ConnId,
        msg: ClientToSignaling,
        now: Instant,
    ) -> Result<(), Reject> {
        match msg {
            ClientToSignaling::GetRoom { room } => self.get_room(conn, &room),
            ClientToSignaling::Join {
                room,
                display_name,
                intake,
            } => self.join(conn, &room, &display_name, intake, now),
            ClientToSignaling::Resume { token } => self.resume(conn, token.expose(), now),
            ClientToSignaling::JoinInvite {
                token,
                display_name,
            } => self.join_invite(conn, token.expose(), &display_name, now),
            ClientToSignaling::Leave => {
                self.leave(conn, now);
                Ok(())
            }
            ClientToSignaling::ConnectionTestStart { request } => {
                self.connection_test_start(conn, request, now)
            }
            ClientToSignaling::ConnectionTestStop { call } => {
                self.connection_test_stop(conn, &call)
            }
            _ => Err(reject(ErrorCode::Forbidden, "not a patient message")),
        }
    }

    fn seat_of_conn(&self, conn: ConnId) -> Option<&ParticipantId> {
        match self.conns.get(&conn) {
            Some(Conn::Patient { seat, .. }) => seat.as_ref(),
            _ => None,
        }
    }

    fn set_conn_seat(&mut self, conn: ConnId, p: Option<ParticipantId>) {
        if let Some(Conn::Patient { seat, .. }) = self.conns.get_mut(&conn) {
            *seat = p;
        }
    }

    fn get_room(&mut self, conn: ConnId, room: &RoomId) -> Result<(), Reject> {
        let info = self
            .directory
            .room(room)
            .ok_or_else(|| reject(ErrorCode::NotFound, "no such waiting room"))?;
        self.send(
            conn,
            SignalingToClient::RoomInfo {
                room: info.id,
                name: info.name,
                intake: info.intake,
                hide_position: info.hide_position,
                closed: info.closed,
            },
        );
        Ok(())
    }

    fn join(
        &mut self,
        conn: ConnId,
        room: &RoomId,
        display_name: &Sensitive<String>,
        intake: Sensitive<IntakeAnswers>,
        now: Instant,
    ) -> Result<(), Reject> {
        if self.seat_of_conn(conn).is_some() {
            return Err(reject(
                ErrorCode::Conflict,
                "this connection already holds a seat; leave first",
            ));
        }
        let info = self
            .directory
            .room(room)
            .ok_or_else(|| reject(ErrorCode::NotFound, "no such waiting room"))?;
        if info.closed {
            return Err(reject(
                ErrorCode::RoomClosed,
                "this waiting room is closed at the moment; please try again later or contact the practice",
            ));
        }
        let name =
            check_name(display_name.expose()).map_err(|m| reject(ErrorCode::BadRequest, m))?;
        check_intake(&info.intake, intake.expose())
            .map_err(|m| reject(ErrorCode::BadRequest, m))?;
        self.take_seat(conn, &info, name, intake, None, now);
        Ok(())
    }

    /// Creates a seat at the back of `info`'s queue for `conn` and tells
    /// the patient and the clinicians.
    pub(super) fn take_seat(
        &mut self,
        conn: ConnId,
        info: &RoomInfo,
        name: String,
        intake: Sensitive<IntakeAnswers>,
        invited_to: Option<RoomId>,
        now: Instant,
    ) -> ParticipantId {
        self.announce_room(info, now);
        let participant = ParticipantId::random();
        let (token, token_hash) = new_token();
        self.room_queue(info).waiting.push_back(participant.clone());
        let seat = Seat {
            participant: participant.clone(),
            tenant: info.tenant.clone(),
            room: info.id.clone(),
            display_name: Sensitive::new(name),
            intake,
            token_hash,
            joined_at: now,
            queued_at: now,
            state: SeatState::Waiting,
            conn: Some(conn),
            grace_until: None,
            last_status: None,
            call: None,
            invited_to,
        };
        self.seats.insert(participant.clone(), seat);
        self.tokens.insert(token_hash, participant.clone());
        self.log_put(&participant);
        self.set_conn_seat(conn, Some(participant.clone()));
        tracing::info!(tenant = %info.tenant, room = %info.id, participant = %participant, "patient joined");

        self.send(
            conn,
            SignalingToClient::Joined {
                room: info.id.clone(),
                participant: participant.clone(),
                resume_token: Sensitive::new(token),
                grace_secs: self.settings.grace.as_secs(),
                resumed: false,
            },
        );
        self.appended(&participant, now);
        participant
    }

    fn resume(&mut self, conn: ConnId, token: &str, now: Instant) -> Result<(), Reject> {
        if self.seat_of_conn(conn).is_some() {
            return Err(reject(
                ErrorCode::Conflict,
                "this connection already holds a seat",
            ));
        }
        let p = self
            .tokens
            .get(&hash_token(token))
            .cloned()
            .ok_or_else(|| reject(ErrorCode::NotFound, "unknown or expired resume token"))?;
        let Some(seat) = self.seats.get_mut(&p) else {
            return Err(reject(
                ErrorCode::NotFound,
                "unknown or expired resume token",
            ));
        };
        let old = seat.conn.replace(conn);
        seat.grace_until = None;
        self.log(SeatChange::Refresh {
            participant: p.clone(),
        });
        let Some(seat) = self.seats.get_mut(&p) else {
            return Ok(());
        };
        seat.last_status = None;
        let room = seat.room.clone();
        let call = seat.call.clone();
        let admitted_by = match &seat.state {
            SeatState::Admitted { clinician_name, .. } => Some(clinician_name.clone()),
            SeatState::Waiting => None,
        };
        if let Some(old) = old.filter(|o| *o != conn) {
            self.set_conn_seat(old, None);
            self.send(
                old,
                SignalingToClient::error(
                    ErrorCode::Replaced,
                    "this seat was resumed on another connection",
                    None,
                ),
            );
            self.out.push_back(Output::Close(old));
        }
        self.set_conn_seat(conn, Some(p.clone()));
        tracing::info!(room = %room, participant = %p, "patient resumed seat");
        self.send(
            conn,
            SignalingToClient::Joined {
                room: room.clone(),
                participant: p.clone(),
                resume_token: Sensitive::new(token.to_owned()),
                grace_secs: self.settings.grace.as_secs(),
                resumed: true,
            },
        );
        if let Some(clinician_name) = admitted_by {
            self.send(
                conn,
                SignalingToClient::Admitted {
                    room: room.clone(),
                    clinician_name,
                },
            );
            if let Some(call) = call {
                self.calls.rebind(&call, &p, Some(conn));
                self.pull_calls();
            }
        } else if let Some(position) = self.rooms.get(&room).and_then(|r| r.position(&p)) {
            self.push_status(&p, position);
        }
        if old.is_none() {
            self.announce_update(&p, now);
        }
        Ok(())
    }

    pub(super) fn leave(&mut self, conn: ConnId, now: Instant) {
        if let Some(p) = self.seat_of_conn(conn).cloned() {
            tracing::info!(participant = %p, "patient left");
            self.release(&p, LeftReason::Left, now);
        }
        self.send(conn, SignalingToClient::Left);
    }

    /// The patient's connection dropped: keep the seat for the grace period.
    pub(super) fn seat_disconnected(&mut self, p: &ParticipantId, now: Instant) {
        let until = now + self.settings.grace;
        let Some(seat) = self.seats.get_mut(p) else {
            return;
        };
        seat.conn = None;
        seat.grace_until = Some(until);
        if let Some(call) = seat.call.clone() {
            self.calls.rebind(&call, p, None);
        }
        self.grace.push(Reverse((until, p.clone())));
        tracing::debug!(participant = %p, "patient disconnected, seat kept for the grace period");
        self.announce_update(p, now);
    }

    /// Removes a seat and everything about the patient; tells the clinicians.
    pub(super) fn release(&mut self, p: &ParticipantId, reason: LeftReason, now: Instant) {
        self.seat_out_of_call(p, now);
        let Some(seat) = self.seats.remove(p) else {
            return;
        };
        self.tokens.remove(&seat.token_hash);
        self.log(SeatChange::Remove {
            participant: p.clone(),
        });
        if let Some(c) = seat.conn {
            self.set_conn_seat(c, None);
        }
        let was_waiting = self.rooms.get_mut(&seat.room).is_some_and(|q| q.remove(p));
        let msg = SignalingToClient::PatientLeft {
            room: seat.room.clone(),
            participant: p.clone(),
            reason,
        };
        self.broadcast(&seat.tenant, &msg);
        if was_waiting {
            self.room_changed(&seat.room);
        }
        // `seat` (name, intake answers) is dropped here: nothing else holds them.
    }
}
