//! Calls: who is in which call, on which relay, and the messages that set
//! media up (issue 4; wire format in docs/protocol.md "Calls").
//!
//! [`Calls`] is a plain state machine owned by the [`Lobby`](crate::lobby::Lobby)
//! (it runs in the lobby task): no sockets, no awaiting. It keeps every
//! call's participants (role, display name, mute state, connection), the
//! call's relay, invite links ([`invites`]) and the standing call of each
//! meeting room. Relay work goes through [`CallRelays`]: the synchronous
//! steps are called directly; an SDP offer becomes an [`OfferJob`] output
//! that the lobby task runs and whose answer comes back as [`OfferDone`].
//! Relay events ([`RelayEvent`]) come in through [`Calls::handle_relay_event`].
//!
//! Isolation: a connection reaches a call only through its own membership;
//! any other call id (another organisation's included) is `not_found`.
//! Grants, SDP, candidates and invite tokens are never logged; names live in
//! [`Sensitive`] and go with the call.

#[cfg(test)]
pub(crate) mod fake;
pub mod invites;
mod media;
mod relays;

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use protocol::client::{DEFAULT_INVITE_TTL_SECS, RosterEntry, RosterRole, SignalingToClient};
use protocol::{
    ClinicianId, GrantRole, NodeId, ParticipantId, Region, RoomId, Sensitive, TenantId,
};

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

    /// Starts a call with `joiners`, places it and tells them.
    pub fn start(
        &mut self,
        tenant: TenantId,
        kind: CallKind,
        region: Option<Region>,
        joiners: Vec<Joiner>,
    ) -> Option<RoomId> {
        self.relays.as_ref()?;
        let id = new_call_id();
        tracing::info!(call = %id, tenant = %tenant, room = %kind.room(), "call started");
        if let CallKind::Meeting { room } = &kind {
            self.meetings.insert(room.clone(), id.clone());
        }
        self.by_id.insert(
            id.clone(),
            Call {
                tenant,
                kind,
                node: None,
                region,
                members: BTreeMap::new(),
                invitees: BTreeSet::new(),
            },
        );
        self.place(&id);
        for j in joiners {
            self.add_member(&id, j);
        }
        self.send_roster(&id);
        Some(id)
    }

    /// The standing call of a meeting room, started (empty) if needed.
    pub fn meeting_call(
        &mut self,
        room: &RoomId,
        tenant: &TenantId,
        region: Option<Region>,
    ) -> Option<RoomId> {
        if let Some(call) = self
            .meetings
            .get(room)
            .filter(|c| self.by_id.contains_key(*c))
        {
            return Some(call.clone());
        }
        let kind = CallKind::Meeting { room: room.clone() };
        self.start(tenant.clone(), kind, region, Vec::new())
    }

    /// Adds one participant to an existing call; false if there is no such call.
    pub fn join(&mut self, call: &RoomId, joiner: Joiner) -> bool {
        if !self.by_id.contains_key(call) {
            return false;
        }
        if let Some(c) = self.by_id.get_mut(call) {
            c.invitees.remove(&joiner.participant);
        }
        self.add_member(call, joiner);
        self.send_roster(call);
        true
    }

    /// Inserts a member and sends them `call_ready` (or `call_waiting_for_relay`).
    fn add_member(&mut self, call: &RoomId, j: Joiner) {
        let Some(c) = self.by_id.get_mut(call) else {
            return;
        };
        tracing::info!(call = %call, participant = %j.participant, role = ?j.role, "joined call");
        c.members.insert(
            j.participant.clone(),
            Member {
                conn: j.conn,
                role: j.role,
                display_name: j.display_name,
                clinician: j.clinician,
                audio_muted: false,
                video_muted: false,
            },
        );
        if let Some(conn) = j.conn {
            self.by_conn.entry(conn).or_default().insert(call.clone());
            self.send_ready(call, &j.participant, conn);
        }
    }

    /// Tells one participant where the call is: `call_ready` with a fresh
    /// grant, or `call_waiting_for_relay`.
    fn send_ready(&mut self, call: &RoomId, p: &ParticipantId, conn: ConnId) {
        let node = self.by_id.get(call).and_then(|c| c.node.clone());
        let msg = match (node, &self.relays) {
            (Some(node), Some(relays)) => SignalingToClient::CallReady {
                call: call.clone(),
                participant: p.clone(),
                grant: Sensitive::new(relays.grant(call, p, GrantRole::Participant, &node)),
                relay: node,
            },
            _ => SignalingToClient::CallWaitingForRelay { call: call.clone() },
        };
        self.send(conn, msg);
    }

    /// Asks the pool for the call's relay; records it (or `None`).
    fn place(&mut self, call: &RoomId) -> Option<NodeId> {
        let relays = self.relays.clone()?;
        let c = self.by_id.get_mut(call)?;
        match relays.place(call, c.region.as_ref()) {
            Ok(node) => {
                c.node = Some(node.clone());
                Some(node)
            }
            Err(e) => {
                tracing::warn!(call = %call, error = %e, "no relay for the call");
                c.node = None;
                None
            }
        }
    }

    /// Sends the full roster to every connected member of `call`.
    fn send_roster(&mut self, call: &RoomId) {
        let Some(c) = self.by_id.get(call) else {
            return;
        };
        let participants: Vec<RosterEntry> = c
            .members
            .iter()
            .map(|(p, m)| RosterEntry {
                participant: p.clone(),
                display_name: m.display_name.clone(),
                role: m.role,
                audio_muted: m.audio_muted,
                video_muted: m.video_muted,
            })
            .collect();
        let conns: Vec<ConnId> = c.members.values().filter_map(|m| m.conn).collect();
        for conn in conns {
            let msg = SignalingToClient::Roster {
                call: call.clone(),
                participants: participants.clone(),
            };
            self.send(conn, msg);
        }
    }

    /// Takes a member out of `call`: kicked on the relay, `call_ended` to
    /// them, roster to the rest. An empty meeting call is closed.
    pub fn leave(&mut self, call: &RoomId, p: &ParticipantId) {
        let Some(c) = self.by_id.get_mut(call) else {
            return;
        };
        let Some(m) = c.members.remove(p) else {
            return;
        };
        let node = c.node.clone();
        let empty = c.members.is_empty();
        tracing::info!(call = %call, participant = %p, "left call");
        if let (Some(node), Some(relays)) = (node, &self.relays) {
            relays.kick(&node, call, p);
        }
        if let Some(conn) = m.conn {
            self.unindex(conn, call);
            self.send(conn, SignalingToClient::CallEnded { call: call.clone() });
        }
        if empty && matches!(self.kind(call), Some(CallKind::Meeting { .. })) {
            self.end(call);
        } else {
            self.send_roster(call);
        }
    }

    /// Ends `call` for everyone: `call_ended` to each member, the relay room
    /// closed, its invites revoked. Returns the members and the invitees
    /// still waiting (the lobby releases their seats).
    pub fn end(&mut self, call: &RoomId) -> Vec<ParticipantId> {
        let Some(c) = self.by_id.remove(call) else {
            return Vec::new();
        };
        tracing::info!(call = %call, "call ended");
        if let CallKind::Meeting { room } = &c.kind {
            self.meetings.remove(room);
        }
        if let Some(relays) = &self.relays {
            relays.close_call(call);
        }
        self.invites.revoke_call(call);
        let mut gone = Vec::new();
        for (p, m) in c.members {
            if let Some(conn) = m.conn {
                self.unindex(conn, call);
                self.send(conn, SignalingToClient::CallEnded { call: call.clone() });
            }
            gone.push(p);
        }
        gone.extend(c.invitees);
        gone
    }

    /// A seat's connection changed: `None` when it dropped (the member
    /// stays), `Some` after `resume` — they get `call_ready` again (current
    /// relay, fresh grant) and the roster.
    pub fn rebind(&mut self, call: &RoomId, p: &ParticipantId, conn: Option<ConnId>) {
        let Some(m) = self.by_id.get_mut(call).and_then(|c| c.members.get_mut(p)) else {
            return;
        };
        let old = std::mem::replace(&mut m.conn, conn);
        if let Some(old) = old {
            self.unindex(old, call);
        }
        if let Some(conn) = conn {
            self.by_conn.entry(conn).or_default().insert(call.clone());
            self.place(call);
            self.send_ready(call, p, conn);
            self.send_roster(call);
        }
    }

    /// A clinician's connection closed: they leave every call they were in.
    pub fn conn_closed(&mut self, conn: ConnId) {
        let Some(calls) = self.by_conn.remove(&conn) else {
            return;
        };
        for call in calls {
            let members: Vec<ParticipantId> = self
                .by_id
                .get(&call)
                .map(|c| {
                    c.members
                        .iter()
                        .filter(|(_, m)| m.conn == Some(conn))
                        .map(|(p, _)| p.clone())
                        .collect()
                })
                .unwrap_or_default();
            for p in members {
                self.leave(&call, &p);
            }
        }
    }

    /// Takes every clinician but `keep` out of `call` (a transfer).
    pub fn remove_clinicians_except(&mut self, call: &RoomId, keep: &ClinicianId) {
        let members: Vec<ParticipantId> = self
            .by_id
            .get(call)
            .map(|c| {
                c.members
                    .iter()
                    .filter(|(_, m)| m.clinician.as_ref().is_some_and(|id| id != keep))
                    .map(|(p, _)| p.clone())
                    .collect()
            })
            .unwrap_or_default();
        for p in members {
            self.leave(call, &p);
        }
    }

    /// Notes a waiting invitee's seat (released if the call ends first).
    pub fn note_invitee(&mut self, call: &RoomId, p: &ParticipantId) {
        if let Some(c) = self.by_id.get_mut(call) {
            c.invitees.insert(p.clone());
        }
    }

    /// Forgets a waiting invitee's seat (it left before being admitted).
    pub fn forget_invitee(&mut self, call: &RoomId, p: &ParticipantId) {
        if let Some(c) = self.by_id.get_mut(call) {
            c.invitees.remove(p);
        }
    }

    fn unindex(&mut self, conn: ConnId, call: &RoomId) {
        if let Some(set) = self.by_conn.get_mut(&conn) {
            set.remove(call);
            if set.is_empty() {
                self.by_conn.remove(&conn);
            }
        }
    }

    /// The participant `conn` is in `call` as, if any.
    fn member_by_conn(&self, call: &RoomId, conn: ConnId) -> Option<(ParticipantId, &Call)> {
        let c = self.by_id.get(call)?;
        let p = c
            .members
            .iter()
            .find(|(_, m)| m.conn == Some(conn))
            .map(|(p, _)| p.clone())?;
        Some((p, c))
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
