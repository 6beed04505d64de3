//! Messages signaling sends to clients on `/ws`, and the error codes.

use serde::{Deserialize, Serialize};

use super::{IntakeAnswers, IntakeQuestion, RequestId, Role, RosterEntry, StaffIdentity};
use crate::ids::{ClinicianId, NodeId, ParticipantId, RoomId};
use crate::sensitive::Sensitive;

/// Messages signaling sends to a client.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum SignalingToClient {
    /// Reply to `hello`: the connection is ready.
    Welcome {
        /// Signaling's protocol version.
        version: u32,
        /// The role accepted.
        role: Role,
        /// Clinicians: who the session belongs to.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        staff: Option<StaffIdentity>,
    },
    /// Reply to `get_room`.
    RoomInfo {
        /// The waiting room.
        room: RoomId,
        /// Its name.
        name: String,
        /// Questions to answer in `join`.
        intake: Vec<IntakeQuestion>,
        /// Whether the room hides the queue position from patients.
        hide_position: bool,
        /// The room is closed: `join` is refused with `room_closed`
        /// (absent when false).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        closed: bool,
    },
    /// Patients: the seat is taken (after `join` or `resume`).
    Joined {
        /// The waiting room.
        room: RoomId,
        /// The patient's id in this seat.
        participant: ParticipantId,
        /// Secret to `resume` the seat after a dropped connection.
        resume_token: Sensitive<String>,
        /// How long the seat is kept after a dropped connection, in seconds.
        grace_secs: u64,
        /// True when this restores an existing seat.
        resumed: bool,
    },
    /// Patients: the current place in the queue, sent whenever it changes.
    /// Both fields are absent when the room hides the position.
    QueueStatus {
        /// The waiting room.
        room: RoomId,
        /// 1 = next.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        position: Option<u32>,
        /// Estimate from the room's recent service times, in seconds.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        estimated_wait_secs: Option<u64>,
    },
    /// Patients: a clinician admitted you. (Issue 4 adds the relay placement.)
    Admitted {
        /// The room of the consultation.
        room: RoomId,
        /// The admitting clinician's display name.
        clinician_name: String,
    },
    /// Patients: moved into another waiting room's queue.
    Transferred {
        /// The new waiting room.
        room: RoomId,
    },
    /// Patients: the consultation paused; you are back at the head of the queue.
    ReturnedToQueue {
        /// The waiting room.
        room: RoomId,
    },
    /// Patients: a clinician turned you away; the seat is gone.
    Denied {
        /// The clinician's message, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message: Option<String>,
    },
    /// Patients: the consultation is over; the seat and answers are gone.
    ConsultationEnded,
    /// Patients: reply to `leave`; the seat is gone.
    Left,
    /// Clinicians: every room of the organisation with its queue (after `subscribe`).
    QueueSnapshot {
        /// Echoes the `subscribe` request id.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        request: Option<RequestId>,
        /// The rooms.
        rooms: Vec<RoomQueue>,
    },
    /// Clinicians: a patient entered a room's queue (joined or transferred in).
    PatientArrived {
        /// The room.
        room: RoomId,
        /// The patient.
        entry: QueueEntry,
    },
    /// Clinicians: a patient's state changed (admitted, returned, disconnected, resumed).
    PatientUpdated {
        /// The room.
        room: RoomId,
        /// The patient's new state.
        entry: QueueEntry,
    },
    /// Clinicians: a patient is no longer in this room.
    PatientLeft {
        /// The room.
        room: RoomId,
        /// Who.
        participant: ParticipantId,
        /// Why.
        reason: LeftReason,
    },
    /// Clinicians: periodic refresh of waiting times and positions in one room.
    WaitingTimes {
        /// The room.
        room: RoomId,
        /// Every seat of the room, in queue order (admitted patients last).
        entries: Vec<WaitingTime>,
    },
    /// Clinicians: reply to `get_intake`.
    Intake {
        /// Echoes the request id.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        request: Option<RequestId>,
        /// The patient.
        participant: ParticipantId,
        /// Their room.
        room: RoomId,
        /// Their name.
        display_name: Sensitive<String>,
        /// Their answers.
        answers: Sensitive<IntakeAnswers>,
    },
    /// Clinicians: a request succeeded.
    Ok {
        /// Echoes the request id.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        request: Option<RequestId>,
    },
    /// A request failed, or the input was bad. The connection stays open
    /// except after `version_mismatch`, `session_expired`, `unauthenticated`
    /// and `replaced`.
    Error {
        /// Stable, machine-readable code.
        code: ErrorCode,
        /// Human-readable explanation (never contains patient data of others).
        message: String,
        /// Echoes the request id of the failed request, if it had one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        request: Option<RequestId>,
    },
    /// You are in `call`, placed on `relay`: send `call_offer`. Patients get
    /// it after `admitted` (and again after `resume`); clinicians after `admit`.
    CallReady {
        /// The call.
        call: RoomId,
        /// Your id in the call.
        participant: ParticipantId,
        /// The relay carrying the call.
        relay: NodeId,
        /// Signed grant for `call` on `relay` (short-lived; never logged).
        grant: Sensitive<String>,
    },
    /// The relay's SDP answer to your `call_offer`.
    CallAnswer {
        /// The call.
        call: RoomId,
        /// SDP answer.
        sdp: String,
    },
    /// The relay's SDP offer (someone published or left); reply `call_answer`.
    CallRenegotiate {
        /// The call.
        call: RoomId,
        /// SDP offer.
        sdp: String,
    },
    /// The call moved to another relay: close the old peer connection, open a
    /// new one and send a new `call_offer`.
    RelayMoved {
        /// The call.
        call: RoomId,
        /// The relay now carrying the call.
        relay: NodeId,
        /// Fresh grant for `call` on `relay`.
        grant: Sensitive<String>,
    },
    /// No relay is available; `call_ready`/`relay_moved` follows once one is.
    CallWaitingForRelay {
        /// The call.
        call: RoomId,
    },
    /// The full roster of a call, sent on every change (join, leave, mute).
    Roster {
        /// The call.
        call: RoomId,
        /// Everyone in it.
        participants: Vec<RosterEntry>,
    },
    /// The call is over for you.
    CallEnded {
        /// The call.
        call: RoomId,
    },
    /// Patients: reply to `connection_test_start`: a throwaway call on
    /// `relay`; send `call_offer` with `call` as after `call_ready`.
    ConnectionTestReady {
        /// Echoes the request id.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        request: Option<RequestId>,
        /// The test's call id (`t-…`), on no waiting room.
        call: RoomId,
        /// Your id in it.
        participant: ParticipantId,
        /// The relay signaling chose (as it would for a call).
        relay: NodeId,
        /// Signed grant for `call` on `relay` (short-lived; never logged).
        grant: Sensitive<String>,
    },
    /// Clinicians: reply to `create_invite`.
    InviteCreated {
        /// Echoes the request id.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        request: Option<RequestId>,
        /// The call the invitee will join.
        call: RoomId,
        /// Single-use secret for `join_invite` (not a session token).
        token: Sensitive<String>,
        /// Link path for the invitee, `/i/<token>`.
        path: Sensitive<String>,
        /// Seconds until the invite expires.
        expires_in_secs: u64,
    },
}

impl SignalingToClient {
    /// An `error` message.
    pub fn error(code: ErrorCode, message: impl Into<String>, request: Option<RequestId>) -> Self {
        Self::Error {
            code,
            message: message.into(),
            request,
        }
    }
}

/// Stable error codes of `error` messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The frame is not a JSON object (or is a binary frame).
    BadJson,
    /// The `type` tag names no known message.
    UnknownType,
    /// The frame exceeds the size limit.
    TooLarge,
    /// Too many messages; this one was dropped.
    RateLimited,
    /// The message is not allowed for this connection's role.
    Forbidden,
    /// No such room/patient/clinician (or not in your organisation).
    NotFound,
    /// Well-formed JSON of a known type, but invalid fields or state.
    BadRequest,
    /// The `hello` version is not supported; the connection closes.
    VersionMismatch,
    /// Missing or invalid session token; the connection closes.
    Unauthenticated,
    /// The session expired (idle or maximum age); the connection closes.
    SessionExpired,
    /// Another connection resumed this seat; this connection closes.
    Replaced,
    /// The action conflicts with the current state (e.g. already joined).
    Conflict,
    /// The server is shutting down; reconnect later.
    ShuttingDown,
    /// No relay is available for the call right now.
    NoRelay,
    /// The invite is unknown, used or expired.
    InviteInvalid,
    /// The waiting room is closed to new patients.
    RoomClosed,
}

impl ErrorCode {
    /// Whether the connection is closed after sending this error.
    pub fn closes_connection(self) -> bool {
        matches!(
            self,
            Self::VersionMismatch
                | Self::Unauthenticated
                | Self::SessionExpired
                | Self::Replaced
                | Self::ShuttingDown
        )
    }
}

/// Why a patient left a room's queue (as told to clinicians).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LeftReason {
    /// The patient sent `leave`.
    Left,
    /// The connection dropped and the grace period passed.
    TimedOut,
    /// A clinician denied them.
    Denied,
    /// The consultation ended.
    Ended,
    /// Transferred to another room.
    Transferred,
}

/// A seat's state, as clinicians see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SeatState {
    /// In the queue.
    Waiting,
    /// In a consultation.
    Admitted,
}

/// One seat of a room's queue, as clinicians see it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueueEntry {
    /// The patient.
    pub participant: ParticipantId,
    /// Their name.
    pub display_name: Sensitive<String>,
    /// Waiting or admitted.
    pub state: SeatState,
    /// Place in the queue (1 = next); absent when admitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<u32>,
    /// Seconds since the patient joined the room's queue.
    pub waited_secs: u64,
    /// Whether the patient's connection is up (false during the grace period).
    pub connected: bool,
    /// Admitted: the clinician of the consultation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clinician: Option<ClinicianId>,
    /// Invitees: the call they were invited to (admitting them joins it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invited_to: Option<RoomId>,
}

/// One room with its queue, in a snapshot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoomQueue {
    /// The room.
    pub room: RoomId,
    /// Its name.
    pub name: String,
    /// Whether patients see their position.
    pub hide_position: bool,
    /// Every seat, in queue order (admitted patients last).
    pub entries: Vec<QueueEntry>,
    /// The room's intake questions, so clinicians can show each answer
    /// (keyed by question id) under its label.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub intake: Vec<IntakeQuestion>,
}

/// Position and waiting time of one seat, in `waiting_times`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WaitingTime {
    /// The patient.
    pub participant: ParticipantId,
    /// Place in the queue; absent when admitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<u32>,
    /// Seconds since the patient joined the room's queue.
    pub waited_secs: u64,
}
