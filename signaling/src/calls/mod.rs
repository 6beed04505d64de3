//! Calls: who is in which call, on which relay, and the messages that set
//! media up (issue 4; wire format in docs/protocol.md "Calls").
//!
//! [`Calls`] is a plain state machine owned by the [`Lobby`](crate::lobby::Lobby)
//! (it runs in the lobby task): no sockets, no awaiting. It keeps every
//! call's participants (role, display name, mute state, connection; joining
//! and leaving in `members`), the call's relay, invite links ([`invites`])
//! and the standing call of each meeting room; `media` handles the call
//! messages and relay events. Relay work goes through [`CallRelays`]: the synchronous
//! steps are called directly; an SDP offer becomes an [`OfferJob`] output
//! that the lobby task runs and whose answer comes back as [`OfferDone`].
//! Relay events ([`RelayEvent`](crate::relays::RelayEvent)) come in through [`Calls::handle_relay_event`].
//!
//! Isolation: a connection reaches a call only through its own membership;
//! any other call id (another organisation's included) is `not_found`.
//! Grants, SDP, candidates and invite tokens are never logged; names live in
//! [`Sensitive`] and go with the call.

#[cfg(test)]
pub(crate) mod fake;
pub mod invites;
mod media;
mod members;
mod relays;

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use protocol::client::{DEFAULT_INVITE_TTL_SECS, RosterRole, SignalingToClient};
use protocol::{ClinicianId, NodeId, ParticipantId, Region, RoomId, Sensitive, TenantId};

use crate::lobby::{ConnId, Output};
use crate::relays::RelayCallError;
use invites::Invites;
pub use relays::{CallRelays, OfferFuture};

/// Tunables of calls.
#[derive(Debug, Clone)]
pub struct CallSettings {
    /// How long an invite link works.
    pub invite_ttl: Duration,
}

impl Default for CallSettings {
    fn default() -> Self {
        Self {
            invite_ttl: Duration::from_secs(DEFAULT_INVITE_TTL_SECS),
        }
    }
}

/// An SDP offer to forward to a relay; the lobby task runs it and feeds the
/// result back as [`OfferDone`].
#[derive(Debug)]
pub struct OfferJob {
    /// The client connection that sent it.
    pub conn: ConnId,
    /// The call.
    pub call: RoomId,
    /// The offering participant.
    pub participant: ParticipantId,
    /// The relay it goes to.
    pub node: NodeId,
    /// The participant's grant for `node`.
    pub grant: Sensitive<String>,
    /// The SDP offer.
    pub sdp: Sensitive<String>,
}

/// The relay's reply to an [`OfferJob`].
#[derive(Debug)]
pub struct OfferDone {
    /// The job's connection.
    pub conn: ConnId,
    /// The call.
    pub call: RoomId,
    /// The offering participant.
    pub participant: ParticipantId,
    /// The relay asked.
    pub node: NodeId,
    /// The SDP answer, or why there is none.
    pub result: Result<Sensitive<String>, RelayCallError>,
}

/// A call as the rest of signaling may see it (no names).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallSummary {
    /// The call.
    pub call: RoomId,
    /// Its organisation.
    pub tenant: TenantId,
    /// The waiting or meeting room it belongs to.
    pub room: RoomId,
    /// Its relay, if placed.
    pub relay: Option<NodeId>,
    /// Clinicians in it.
    pub clinicians: Vec<ClinicianId>,
    /// How many participants it has.
    pub participants: usize,
}

/// Someone entering a call.
#[derive(Debug, Clone)]
pub struct Joiner {
    /// Their id in the call (a patient's seat id; fresh for clinicians).
    pub participant: ParticipantId,
    /// Their connection, if connected.
    pub conn: Option<ConnId>,
    /// Patient, clinician, guest…
    pub role: RosterRole,
    /// The name others see.
    pub display_name: Sensitive<String>,
    /// Clinicians: their account.
    pub clinician: Option<ClinicianId>,
}

/// What a call belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallKind {
    /// One consultation from this waiting room (ends with the patient).
    Consultation {
        /// The waiting room the patient came from (invitees wait there).
        room: RoomId,
    },
    /// The standing call of a meeting room.
    Meeting {
        /// The meeting room.
        room: RoomId,
    },
}

impl CallKind {
    /// The waiting or meeting room of the call.
    pub fn room(&self) -> &RoomId {
        match self {
            Self::Consultation { room } | Self::Meeting { room } => room,
        }
    }
}

#[derive(Debug)]
struct Member {
    conn: Option<ConnId>,
    role: RosterRole,
    display_name: Sensitive<String>,
    clinician: Option<ClinicianId>,
    audio_muted: bool,
    video_muted: bool,
    /// The relay of the member's last `call_offer`: an ICE failure reported
    /// while this differs from the call's relay concerns a relay the member
    /// was already moved away from.
    offered: Option<NodeId>,
}

#[derive(Debug)]
struct Call {
    tenant: TenantId,
    kind: CallKind,
    /// The relay carrying the call; `None` while no relay is available.
    node: Option<NodeId>,
    /// Placement hint (the first joiner's region).
    region: Option<Region>,
    members: BTreeMap<ParticipantId, Member>,
    /// Invitees' seats waiting to be admitted into this call.
    invitees: BTreeSet<ParticipantId>,
}

/// Every call of this signaling node. See the module documentation.
pub struct Calls {
    relays: Option<Arc<dyn CallRelays>>,
    settings: CallSettings,
    by_id: HashMap<RoomId, Call>,
    meetings: HashMap<RoomId, RoomId>,
    by_conn: HashMap<ConnId, BTreeSet<RoomId>>,
    invites: Invites,
    out: VecDeque<Output>,
}

impl std::fmt::Debug for Calls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Calls")
            .field("calls", &self.by_id.len())
            .field("invites", &self.invites.len())
            .finish_non_exhaustive()
    }
}

impl Calls {
    /// Calls placed on `relays`.
    pub fn new(relays: Arc<dyn CallRelays>, settings: CallSettings) -> Self {
        Self {
            relays: Some(relays),
            ..Self::disabled()
        }
        .with_settings(settings)
    }

    /// No calls at all: admitting a patient only changes the waiting room
    /// (lobby-only deployments and tests).
    pub fn disabled() -> Self {
        Self {
            relays: None,
            settings: CallSettings::default(),
            by_id: HashMap::new(),
            meetings: HashMap::new(),
            by_conn: HashMap::new(),
            invites: Invites::default(),
            out: VecDeque::new(),
        }
    }

    fn with_settings(mut self, settings: CallSettings) -> Self {
        self.settings = settings;
        self
    }

    /// Whether calls are set up at all.
    pub fn enabled(&self) -> bool {
        self.relays.is_some()
    }

    /// The relays, for the lobby task to run [`OfferJob`]s and subscribe.
    pub fn relays(&self) -> Option<Arc<dyn CallRelays>> {
        self.relays.clone()
    }

    /// The settings in use.
    pub fn settings(&self) -> &CallSettings {
        &self.settings
    }

    /// How many calls exist.
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// Whether there is no call.
    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    /// The next output, if any.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    /// Whether `call` exists.
    pub fn exists(&self, call: &RoomId) -> bool {
        self.by_id.contains_key(call)
    }

    /// The kind of `call`.
    pub fn kind(&self, call: &RoomId) -> Option<&CallKind> {
        self.by_id.get(call).map(|c| &c.kind)
    }

    /// Whether connection `conn` is in `call`.
    pub fn has_conn(&self, call: &RoomId, conn: ConnId) -> bool {
        self.member_by_conn(call, conn).is_some()
    }

    /// Whether `clinician` is in `call`.
    pub fn has_clinician(&self, call: &RoomId, clinician: &ClinicianId) -> bool {
        self.by_id.get(call).is_some_and(|c| {
            c.members
                .values()
                .any(|m| m.clinician.as_ref() == Some(clinician))
        })
    }

    fn send(&mut self, conn: ConnId, msg: SignalingToClient) {
        self.out.push_back(Output::Send(conn, msg));
    }
}

/// A fresh call id: `c-` and 12 random base32 characters (60 bits).
fn new_call_id() -> RoomId {
    const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
    let bytes: [u8; 12] = rand::random();
    let s: String = bytes
        .iter()
        .map(|b| char::from(ALPHABET[usize::from(b & 31)]))
        .collect();
    RoomId::new(format!("c-{s}")).unwrap_or_else(|_| RoomId::random())
}
