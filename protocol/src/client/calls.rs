//! Types of the call messages (issue 4): the roster a call's participants
//! see, and the invite defaults.
//!
//! A call is a relay room with its own [`RoomId`](crate::RoomId); every
//! participant has a [`ParticipantId`] in it. Signaling sends the full roster
//! in `roster` on every change (join, leave, mute).

use serde::{Deserialize, Serialize};

use crate::ids::ParticipantId;
use crate::sensitive::Sensitive;

/// How long an invite link stays valid unless configured otherwise (15 min).
pub const DEFAULT_INVITE_TTL_SECS: u64 = 15 * 60;

/// What a participant is in a call, as shown in the roster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RosterRole {
    /// The patient of the consultation.
    Patient,
    /// A clinician of the organisation.
    Clinician,
    /// An invitee (interpreter, family member) or a meeting-room guest.
    Guest,
    /// A WHIP publisher.
    Publisher,
    /// A WHEP viewer.
    Viewer,
}

/// One participant of a call, in `roster`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RosterEntry {
    /// The participant's id in the call.
    pub participant: ParticipantId,
    /// The name others see (patient data: `Debug` redacts it).
    pub display_name: Sensitive<String>,
    /// Patient, clinician, guest, publisher or viewer.
    pub role: RosterRole,
    /// Microphone muted.
    pub audio_muted: bool,
    /// Camera off.
    pub video_muted: bool,
}
