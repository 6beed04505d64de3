//! The media side of calls: client call messages (`call_offer`,
//! `call_answer`, `call_candidate`, `call_ice_failed`, `call_mute`,
//! `create_invite`), answers from relays, and relay events (moves,
//! orphans, renegotiation offers, relays coming up).

use std::time::Instant;

use protocol::client::{ClientToSignaling, ErrorCode, RequestId, SignalingToClient};
use protocol::{GrantRole, NodeId, ParticipantId, RoomId, Sensitive, TenantId};

use super::invites::Invite;
use super::{CallKind, Calls, OfferDone, OfferJob};
use crate::lobby::{Output, Reject, reject};
use crate::relays::{RelayCallError, RelayEvent};

/// Longest trickled candidate accepted, in bytes.
const MAX_CANDIDATE_BYTES: usize = 1024;

fn no_call() -> Reject {
    reject(ErrorCode::NotFound, "no such call")
}

impl Calls {
    /// A `call_*` message from `conn` (either role). The sender must be a
    /// member of the call; otherwise `not_found`, whatever the call is.
    pub fn handle_message(
        &mut self,
        conn: crate::lobby::ConnId,
        msg: ClientToSignaling,
    ) -> Result<(), Reject> {
        let call = msg.call().cloned().ok_or_else(no_call)?;
        let (p, c) = self.member_by_conn(&call, conn).ok_or_else(no_call)?;
        let node = c.node.clone();
        let relays = self.relays.clone().ok_or_else(no_call)?;
        let waiting = || {
            reject(
                ErrorCode::NoRelay,
                "no relay is available yet; call_ready follows when one is",
            )
        };
        match msg {
            ClientToSignaling::CallOffer { sdp, .. } => {
                let node = node.ok_or_else(waiting)?;
                if let Some(m) = self
                    .by_id
                    .get_mut(&call)
                    .and_then(|c| c.members.get_mut(&p))
                {
                    m.offered = Some(node.clone());
                }
                let grant = relays.grant(&call, &p, GrantRole::Participant, &node);
                tracing::debug!(call = %call, participant = %p, node = %node, "forwarding offer");
                self.out.push_back(Output::Offer(OfferJob {
                    conn,
                    call,
                    participant: p,
                    node,
                    grant: Sensitive::new(grant),
                    sdp: Sensitive::new(sdp),
                }));
            }
            ClientToSignaling::CallAnswer { sdp, .. } => {
                let node = node.ok_or_else(waiting)?;
                relays.renegotiate_answer(&node, &call, &p, sdp);
            }
            ClientToSignaling::CallCandidate { candidate, .. } => {
                if candidate.len() > MAX_CANDIDATE_BYTES {
                    return Err(reject(ErrorCode::BadRequest, "the candidate is too long"));
                }
                let node = node.ok_or_else(waiting)?;
                relays.candidate(&node, &call, &p, candidate);
            }
            ClientToSignaling::CallIceFailed { .. } => self.ice_failed(&call, &p, conn, node),
            ClientToSignaling::CallMute { audio, video, .. } => {
                if let Some(m) = self
                    .by_id
                    .get_mut(&call)
                    .and_then(|c| c.members.get_mut(&p))
                {
                    m.audio_muted = audio;
                    m.video_muted = video;
                }
                self.send_roster(&call);
            }
            ClientToSignaling::CallLeave { .. } => self.leave(&call, &p),
            _ => return Err(reject(ErrorCode::BadRequest, "not a call message")),
        }
        Ok(())
    }

    /// A client's ICE/DTLS with the relay failed. If the relay is dead the
    /// pool re-places the whole call and `CallMoved` tells everyone;
    /// otherwise this client alone gets `relay_moved` to the same relay with
    /// a fresh grant.
    fn ice_failed(
        &mut self,
        call: &RoomId,
        p: &ParticipantId,
        conn: crate::lobby::ConnId,
        node: Option<NodeId>,
    ) {
        let Some(relays) = self.relays.clone() else {
            return;
        };
        let Some(old) = node else {
            self.send(
                conn,
                SignalingToClient::CallWaitingForRelay { call: call.clone() },
            );
            return;
        };
        let offered = self
            .by_id
            .get(call)
            .and_then(|c| c.members.get(p))
            .and_then(|m| m.offered.clone());
        if offered.is_some_and(|o| o != old) {
            // Its failed connection was to a relay the call already left;
            // the `relay_moved` it got (or gets) covers it.
            tracing::debug!(call = %call, participant = %p, "ICE failure on a previous relay ignored");
            return;
        }
        tracing::info!(call = %call, participant = %p, node = %old, "client reported ICE failure");
        relays.relay_failed(call, &old);
        match self.place(call) {
            Some(node) if node == old => {
                let grant = relays.grant(call, p, GrantRole::Participant, &node);
                let msg = SignalingToClient::RelayMoved {
                    call: call.clone(),
                    relay: node,
                    grant: Sensitive::new(grant),
                };
                self.send(conn, msg);
            }
            // Re-placed: the pool's `CallMoved` reaches every participant.
            Some(_) => {}
            None => self.send(
                conn,
                SignalingToClient::CallWaitingForRelay { call: call.clone() },
            ),
        }
    }

    /// `create_invite` from a clinician connection of `tenant`: only a member
    /// of the call may invite.
    pub fn create_invite(
        &mut self,
        conn: crate::lobby::ConnId,
        tenant: &TenantId,
        call: &RoomId,
        request: Option<RequestId>,
        now: Instant,
    ) -> Result<(), Reject> {
        let (p, c) = self.member_by_conn(call, conn).ok_or_else(no_call)?;
        if &c.tenant != tenant {
            return Err(no_call());
        }
        let target = (call.clone(), c.tenant.clone(), c.kind.room().clone());
        let ttl = self.settings.invite_ttl;
        let token = self.invites.create(target, ttl, now);
        tracing::info!(call = %call, participant = %p, "invite created");
        let msg = SignalingToClient::InviteCreated {
            request,
            call: call.clone(),
            path: Sensitive::new(format!("/i/{token}")),
            token: Sensitive::new(token),
            expires_in_secs: ttl.as_secs(),
        };
        self.send(conn, msg);
        Ok(())
    }

    /// Uses up an invite token (`join_invite`): the call to wait for.
    pub fn redeem_invite(&mut self, token: &str, now: Instant) -> Result<Invite, Reject> {
        self.invites
            .redeem(token, now)
            .filter(|i| self.by_id.contains_key(&i.call))
            .ok_or_else(|| {
                reject(
                    ErrorCode::InviteInvalid,
                    "the invite is unknown, used or expired",
                )
            })
    }

    /// The relay answered (or not) an offer.
    pub fn handle_offer_done(&mut self, done: OfferDone) {
        let OfferDone {
            conn,
            call,
            participant,
            node,
            result,
        } = done;
        let current = self.by_id.get(&call).and_then(|c| {
            let m = c.members.get(&participant)?;
            (m.conn == Some(conn) && c.node.as_ref() == Some(&node)).then_some(())
        });
        if current.is_none() {
            tracing::debug!(call = %call, participant = %participant, "dropping a stale answer");
            return;
        }
        match result {
            Ok(sdp) => {
                let msg = SignalingToClient::CallAnswer {
                    call,
                    sdp: sdp.into_inner(),
                };
                self.send(conn, msg);
            }
            Err(RelayCallError::RelayGone) => {
                tracing::warn!(call = %call, node = %node, "relay gone while offering");
                if let Some(relays) = self.relays.clone() {
                    relays.relay_failed(&call, &node);
                }
                if self.place(&call).is_none() {
                    self.send(conn, SignalingToClient::CallWaitingForRelay { call });
                }
            }
            Err(e) => {
                // The relay's reason goes to the client only: it may quote the SDP.
                let kind = match e {
                    RelayCallError::Refused(_) => "refused",
                    RelayCallError::Timeout => "timeout",
                    RelayCallError::RelayGone => "relay gone",
                };
                tracing::warn!(call = %call, node = %node, kind, "offer failed");
                let code = match e {
                    RelayCallError::Refused(_) => ErrorCode::BadRequest,
                    _ => ErrorCode::NoRelay,
                };
                let msg = SignalingToClient::error(code, e.to_string(), None);
                self.send(conn, msg);
            }
        }
    }

    /// An event of the relay pool.
    pub fn handle_relay_event(&mut self, event: RelayEvent) {
        match event {
            RelayEvent::CallMoved { call, from, to } => {
                let Some(c) = self.by_id.get_mut(&call) else {
                    return;
                };
                tracing::info!(call = %call, from = %from, to = %to, "call moved");
                c.node = Some(to);
                self.send_moved(&call);
            }
            RelayEvent::CallOrphaned { call, from } => {
                let Some(c) = self.by_id.get_mut(&call) else {
                    return;
                };
                tracing::warn!(call = %call, from = %from, "call waiting for a relay");
                c.node = None;
                let conns: Vec<_> = c.members.values().filter_map(|m| m.conn).collect();
                for conn in conns {
                    let msg = SignalingToClient::CallWaitingForRelay { call: call.clone() };
                    self.send(conn, msg);
                }
            }
            RelayEvent::Renegotiate {
                call,
                participant,
                sdp,
            } => {
                let conn = self
                    .by_id
                    .get(&call)
                    .and_then(|c| c.members.get(&participant))
                    .and_then(|m| m.conn);
                if let Some(conn) = conn {
                    self.send(conn, SignalingToClient::CallRenegotiate { call, sdp });
                }
            }
            RelayEvent::ParticipantLeft { call, participant } => {
                tracing::debug!(call = %call, participant = %participant, "media session ended on the relay");
            }
            RelayEvent::RelayUp { node } => {
                tracing::debug!(node = %node, "relay up; placing waiting calls");
                self.place_waiting();
            }
        }
    }

    /// Calls without a relay try again; their members get `call_ready`.
    pub fn place_waiting(&mut self) {
        let waiting: Vec<RoomId> = self
            .by_id
            .iter()
            .filter(|(_, c)| c.node.is_none())
            .map(|(id, _)| id.clone())
            .collect();
        for call in waiting {
            if self.place(&call).is_some() {
                let targets: Vec<_> = self
                    .by_id
                    .get(&call)
                    .map(|c| {
                        c.members
                            .iter()
                            .filter_map(|(p, m)| m.conn.map(|conn| (p.clone(), conn)))
                            .collect()
                    })
                    .unwrap_or_default();
                for (p, conn) in targets {
                    self.send_ready(&call, &p, conn);
                }
            }
        }
    }

    /// After missed relay events: adopt the pool's placements.
    pub fn resync(&mut self) {
        let Some(relays) = self.relays.clone() else {
            return;
        };
        let ids: Vec<RoomId> = self.by_id.keys().cloned().collect();
        for call in ids {
            let now = relays.placement_of(&call);
            let Some(c) = self.by_id.get_mut(&call) else {
                continue;
            };
            if c.node != now {
                c.node.clone_from(&now);
                if now.is_some() {
                    self.send_moved(&call);
                }
            }
        }
        self.place_waiting();
    }

    /// `relay_moved` with a fresh grant to every connected member.
    fn send_moved(&mut self, call: &RoomId) {
        let Some(relays) = self.relays.clone() else {
            return;
        };
        let Some(c) = self.by_id.get(call) else {
            return;
        };
        let Some(node) = c.node.clone() else {
            return;
        };
        let targets: Vec<_> = c
            .members
            .iter()
            .filter_map(|(p, m)| m.conn.map(|conn| (p.clone(), conn)))
            .collect();
        for (p, conn) in targets {
            let grant = relays.grant(call, &p, GrantRole::Participant, &node);
            let msg = SignalingToClient::RelayMoved {
                call: call.clone(),
                relay: node.clone(),
                grant: Sensitive::new(grant),
            };
            self.send(conn, msg);
        }
    }

    /// Whether `call` is a consultation whose patient is `p`.
    pub fn is_patient_of(&self, call: &RoomId, p: &ParticipantId) -> bool {
        self.by_id.get(call).is_some_and(|c| {
            matches!(c.kind, CallKind::Consultation { .. })
                && c.members
                    .get(p)
                    .is_some_and(|m| m.role == protocol::client::RosterRole::Patient)
        })
    }
}
