//! Client ⇄ signaling messages (patients, clinicians) on `/ws`.
//!
//! Every frame is one JSON object with a `"type"` tag in snake_case. The first
//! message on a connection is [`ClientToSignaling::Hello`]; signaling answers
//! [`SignalingToClient::Welcome`] or an error. Patients then join a waiting
//! room; clinicians subscribe to their organisation's rooms and act on patients.
//!
//! Patient data (display names, intake answers) and secrets (session and
//! resume tokens) are wrapped in [`Sensitive`], whose `Debug` redacts them.
//!
//! Calls (issue 4): after `admitted`, both parties get `call_ready` and
//! exchange SDP with the relay through this socket (`call_offer`,
//! `call_answer`, `call_candidate`, `call_renegotiate`); see [`calls`].
//! The patient page's connection test uses the same SDP path on a
//! throwaway call (`connection_test_start` → `connection_test_ready`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::ids::{ClinicianId, ParticipantId, Region, RoomId, TenantId};
use crate::sensitive::Sensitive;

mod calls;
mod kinds;
mod parse;
mod server;

pub use calls::{DEFAULT_INVITE_TTL_SECS, RosterEntry, RosterRole};

pub use parse::ParseError;
pub use server::{
    ErrorCode, LeftReason, QueueEntry, RoomQueue, SeatState, SignalingToClient, WaitingTime,
};

/// Correlates a client request with its `ok`/`error` reply; chosen by the client.
pub type RequestId = u64;

/// Intake answers of one patient: question id → answer text.
pub type IntakeAnswers = BTreeMap<String, String>;

/// One intake question of a waiting room, shown to patients before they join.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IntakeQuestion {
    /// Stable key of the question within its room (answers refer to it).
    pub id: String,
    /// The question as shown to the patient.
    pub label: String,
    /// Whether an answer is needed to join.
    #[serde(default)]
    pub required: bool,
}

/// Who a connection speaks for, declared in `hello`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// A patient: no account, joins a waiting room.
    Patient,
    /// A clinician (or admin) with a session token from `/api/login`.
    Clinician,
}

/// Where a transfer sends a patient: another room of the same organisation,
/// or another (connected) clinician of the same organisation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TransferTarget {
    /// Into the queue of this waiting room.
    Room(RoomId),
    /// Into a consultation with this clinician.
    Clinician(ClinicianId),
}

/// Messages a client sends to signaling.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientToSignaling {
    /// First message of every connection.
    Hello {
        /// Must equal [`crate::PROTOCOL_VERSION`].
        version: u32,
        /// Patient or clinician.
        role: Role,
        /// Clinicians: the session token from `/api/login` (never in the URL).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        session: Option<Sensitive<String>>,
        /// Placement hint: the region the client is in (else signaling's own).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        region: Option<Region>,
    },
    /// Patients: ask for a room's name and intake questions before joining.
    GetRoom {
        /// The waiting room.
        room: RoomId,
    },
    /// Patients: take a seat in a waiting room.
    Join {
        /// The waiting room.
        room: RoomId,
        /// The name clinicians see.
        display_name: Sensitive<String>,
        /// Answers to the room's intake questions.
        #[serde(default)]
        intake: Sensitive<IntakeAnswers>,
    },
    /// Patients: take back a seat after a dropped connection.
    Resume {
        /// The token received in `joined`.
        token: Sensitive<String>,
    },
    /// Patients: give up the seat.
    Leave,
    /// Clinicians: receive a snapshot of the organisation's rooms, then live events.
    Subscribe {
        /// Echoed in the reply.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        request: Option<RequestId>,
    },
    /// Clinicians: the intake answers of one patient.
    GetIntake {
        /// The patient.
        participant: ParticipantId,
        /// Echoed in the reply.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        request: Option<RequestId>,
    },
    /// Clinicians: admit a waiting patient into a consultation with oneself.
    Admit {
        /// The patient.
        participant: ParticipantId,
        /// Echoed in the reply.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        request: Option<RequestId>,
    },
    /// Clinicians: turn a waiting patient away; the seat is released.
    Deny {
        /// The patient.
        participant: ParticipantId,
        /// Shown to the patient.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message: Option<String>,
        /// Echoed in the reply.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        request: Option<RequestId>,
    },
    /// Clinicians: move a patient to another room's queue or another clinician.
    Transfer {
        /// The patient.
        participant: ParticipantId,
        /// Where to.
        to: TransferTarget,
        /// Echoed in the reply.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        request: Option<RequestId>,
    },
    /// Clinicians: put an admitted patient back at the head of the room's queue.
    ReturnToQueue {
        /// The patient.
        participant: ParticipantId,
        /// Echoed in the reply.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        request: Option<RequestId>,
    },
    /// Clinicians: end a consultation; the seat and intake answers are wiped.
    EndConsultation {
        /// The patient.
        participant: ParticipantId,
        /// Echoed in the reply.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        request: Option<RequestId>,
    },
    /// Either role: the SDP offer for the call's relay, after `call_ready` or
    /// `relay_moved`.
    CallOffer {
        /// The call.
        call: RoomId,
        /// SDP offer (never logged).
        sdp: String,
    },
    /// Either role: the answer to `call_renegotiate`.
    CallAnswer {
        /// The call.
        call: RoomId,
        /// SDP answer (never logged).
        sdp: String,
    },
    /// Either role: a trickled local ICE candidate (`candidate:...`).
    CallCandidate {
        /// The call.
        call: RoomId,
        /// The candidate line.
        candidate: String,
    },
    /// Either role: ICE/DTLS to the relay failed; ask for a new placement.
    CallIceFailed {
        /// The call.
        call: RoomId,
    },
    /// Either role: the own mute state, shown in the roster (true = muted).
    CallMute {
        /// The call.
        call: RoomId,
        /// Microphone muted.
        audio: bool,
        /// Camera off.
        video: bool,
    },
    /// Either role: leave the call (clinicians; patients use `leave`).
    CallLeave {
        /// The call.
        call: RoomId,
    },
    /// Clinicians in a call: a single-use invite link to it; reply `invite_created`.
    CreateInvite {
        /// The call.
        call: RoomId,
        /// Echoed in the reply.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        request: Option<RequestId>,
    },
    /// Invitees (hello role `patient`): take a seat with an invite token; a
    /// clinician admits them into the existing call.
    JoinInvite {
        /// The token from `invite_created` (single use).
        token: Sensitive<String>,
        /// The name others see.
        display_name: Sensitive<String>,
    },
    /// Patients (before or after joining): a throwaway placement on a relay
    /// to test the connection (the device check). Reply
    /// `connection_test_ready`; then `call_offer`/`call_candidate` with its
    /// call id as in a call. No seat is taken; one test at a time per
    /// connection; it ends on `connection_test_stop`, on disconnect, or
    /// after 60 s (`call_ended`).
    ConnectionTestStart {
        /// Echoed in the reply.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        request: Option<RequestId>,
    },
    /// Patients: end the connection test `call` (its relay room is closed).
    ConnectionTestStop {
        /// The test's call id (`t-…`).
        call: RoomId,
    },
}

/// A clinician's identity as shown in `welcome`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StaffIdentity {
    /// The account.
    pub clinician: ClinicianId,
    /// The organisation.
    pub tenant: TenantId,
    /// Name shown to colleagues and patients.
    pub display_name: String,
}
