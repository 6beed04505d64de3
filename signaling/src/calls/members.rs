//! Membership of calls: starting a call, joining, leaving, ending, a
//! seat's connection changing, and the messages that go with each
//! (`call_ready` or `call_waiting_for_relay`, `roster`, `call_ended`).

use std::collections::{BTreeMap, BTreeSet};

use protocol::client::{RosterEntry, SignalingToClient};
use protocol::{
    ClinicianId, GrantRole, NodeId, ParticipantId, Region, RoomId, Sensitive, TenantId,
};

use super::{Call, CallKind, Calls, Joiner, Member, new_call_id};
use crate::lobby::ConnId;

impl Calls {
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

    /// Rebuilds `call` after another node's lobby died (issue 7): the
    /// restored seats' members, without connections (they get `call_ready`
    /// when they resume), on the relay the pool knows for it or else
    /// `node`. False (nothing done) without relays or if it exists.
    pub fn restore(
        &mut self,
        call: &RoomId,
        tenant: TenantId,
        kind: CallKind,
        node: Option<NodeId>,
        joiners: Vec<Joiner>,
    ) -> bool {
        let Some(relays) = &self.relays else {
            return false;
        };
        if self.by_id.contains_key(call) {
            return false;
        }
        let node = relays.placement_of(call).or(node);
        if let CallKind::Meeting { room } = &kind {
            self.meetings.insert(room.clone(), call.clone());
        }
        let restored = Call {
            tenant,
            kind,
            node,
            region: None,
            members: BTreeMap::new(),
            invitees: BTreeSet::new(),
        };
        self.by_id.insert(call.clone(), restored);
        for j in joiners {
            self.add_member(call, j);
        }
        true
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
    pub(super) fn add_member(&mut self, call: &RoomId, j: Joiner) {
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
                offered: None,
            },
        );
        if let Some(conn) = j.conn {
            self.by_conn.entry(conn).or_default().insert(call.clone());
            self.send_ready(call, &j.participant, conn);
        }
    }

    /// Tells one participant where the call is: `call_ready` with a fresh
    /// grant, or `call_waiting_for_relay`.
    pub(super) fn send_ready(&mut self, call: &RoomId, p: &ParticipantId, conn: ConnId) {
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
    pub(super) fn place(&mut self, call: &RoomId) -> Option<NodeId> {
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
    pub(super) fn send_roster(&mut self, call: &RoomId) {
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

    pub(super) fn unindex(&mut self, conn: ConnId, call: &RoomId) {
        if let Some(set) = self.by_conn.get_mut(&conn) {
            set.remove(call);
            if set.is_empty() {
                self.by_conn.remove(&conn);
            }
        }
    }

    /// The participant `conn` is in `call` as, if any.
    pub(super) fn member_by_conn(
        &self,
        call: &RoomId,
        conn: ConnId,
    ) -> Option<(ParticipantId, &Call)> {
        let c = self.by_id.get(call)?;
        let p = c
            .members
            .iter()
            .find(|(_, m)| m.conn == Some(conn))
            .map(|(p, _)| p.clone())?;
        Some((p, c))
    }

    /// A participant that joined the call outside `/ws` (a WHIP publisher or
    /// WHEP viewer): shown in the roster, no `call_ready`. False if there
    /// is no such call.
    pub fn external_joined(
        &mut self,
        call: &RoomId,
        participant: ParticipantId,
        role: protocol::client::RosterRole,
        display_name: Sensitive<String>,
    ) -> bool {
        let joiner = Joiner {
            participant,
            conn: None,
            role,
            display_name,
            clinician: None,
        };
        self.join(call, joiner)
    }

    /// What the rest of signaling may know about `call` (for REST checks:
    /// its organisation, room, relay and clinicians).
    pub fn summary(&self, call: &RoomId) -> Option<super::CallSummary> {
        let c = self.by_id.get(call)?;
        Some(super::CallSummary {
            call: call.clone(),
            tenant: c.tenant.clone(),
            room: c.kind.room().clone(),
            relay: c.node.clone(),
            clinicians: c
                .members
                .values()
                .filter_map(|m| m.clinician.clone())
                .collect(),
            participants: c.members.len(),
        })
    }
}
