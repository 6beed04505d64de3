//! Joining, leaving and (re)negotiating: offers, answers, candidates,
//! kicks, and the server-initiated offers that add or stop remote tracks.

use std::time::Instant;

use protocol::{Grant, ParticipantId, RoomId};
use str0m::Candidate;
use str0m::change::{SdpAnswer, SdpOffer};
use str0m::media::Direction;

use super::Sfu;
use super::error::SfuError;
use super::participant::{OutState, Participant};
use super::sdp_policy;
use super::slab::PKey;
use super::types::{LeaveReason, OfferAccepted, Output, SfuEvent};

impl Sfu {
    /// Verifies the grant (signature, node, expiry at `unix_now`) and the SDP
    /// offer, creates the participant (ICE-lite, RTP mode) in the grant's
    /// room and returns the SDP answer.
    ///
    /// An offer for a participant already in the room with the same DTLS
    /// fingerprint is a renegotiation of that session (e.g. a screen share
    /// added); with another fingerprint it replaces the old session
    /// ([`LeaveReason::Replaced`]).
    pub fn handle_offer(
        &mut self,
        now: Instant,
        unix_now: u64,
        grant_token: &str,
        offer_sdp: &str,
    ) -> Result<OfferAccepted, SfuError> {
        self.advance(now);
        let grant = Grant::verify(
            grant_token,
            &self.config.grant_secret,
            &self.config.node,
            unix_now,
        )?;
        if !grant.role.may_publish() && !grant.role.may_subscribe() {
            return Err(SfuError::Role);
        }
        sdp_policy::check(offer_sdp, sdp_policy::Kind::Offer)?;
        let offer =
            SdpOffer::from_sdp_string(offer_sdp).map_err(|e| SfuError::Sdp(e.to_string()))?;
        let fingerprint = fingerprint_line(offer_sdp);
        if let Ok(key) = self.find(&grant.room, &grant.participant) {
            let same = self
                .participants
                .get(key)
                .is_some_and(|p| p.rtc.is_alive() && p.fingerprint == fingerprint);
            if same {
                if Sfu::offers_simulcast(offer_sdp)
                    && let Some(p) = self.participants.get_mut(key)
                    && p.role.may_publish()
                {
                    p.offers_simulcast = true;
                }
                return self.reoffer(key, offer);
            }
            self.remove_participant(key, LeaveReason::Replaced);
        }
        if self.draining && !self.rooms.contains_key(&grant.room) {
            return Err(SfuError::Draining);
        }
        if self.participants.len() >= self.config.max_participants {
            return Err(SfuError::Full);
        }
        let bwe = self.bwe_for(&grant.room);
        let mut rtc = self.factory.build(now, bwe);
        let answer = rtc
            .sdp_api()
            .accept_offer(offer)
            .map_err(|e| SfuError::Sdp(e.to_string()))?;
        let creds = rtc.direct_api().local_ice_credentials();
        let key = self.participants.insert_with(|_| Participant {
            id: grant.participant.clone(),
            room: grant.room.clone(),
            role: grant.role,
            rtc,
            ufrag: creds.ufrag.clone(),
            pwd: creds.pass.clone(),
            fingerprint,
            addrs: Vec::new(),
            connected: false,
            joined_at: now,
            timeout: None,
            tracks_in: Vec::new(),
            tracks_out: Vec::new(),
            ssrcs: Vec::new(),
            pending_offer: None,
            channel: None,
            offers_simulcast: grant.role.may_publish() && Sfu::offers_simulcast(offer_sdp),
            bwe: bwe.is_some(),
            estimate: bwe,
            desired: 0,
            loudness_sum: 0,
            loudness_count: 0,
            messages_this_tick: 0,
            unflushed: false,
        });
        self.by_ufrag.insert(creds.ufrag, key);
        let room = self.rooms.entry(grant.room.clone()).or_default();
        let others: Vec<PKey> = room.members.clone();
        room.members.push(key);
        if grant.role.may_subscribe() {
            for other in others {
                self.subscribe_all(key, other);
            }
        }
        self.drain(key);
        self.process();
        Ok(OfferAccepted {
            room: grant.room,
            participant: grant.participant,
            answer_sdp: answer.to_sdp_string(),
        })
    }

    /// A client re-offer on an existing session: answer it; any server offer
    /// that was outstanding is void (str0m drops it) and is made again.
    fn reoffer(&mut self, key: PKey, offer: SdpOffer) -> Result<OfferAccepted, SfuError> {
        let p = self
            .participants
            .get_mut(key)
            .ok_or(SfuError::UnknownParticipant)?;
        let result = p.rtc.sdp_api().accept_offer(offer);
        p.pending_offer = None;
        revert_negotiating(p);
        let (room, participant) = (p.room.clone(), p.id.clone());
        self.drain(key);
        self.dirty.push(key);
        self.process();
        let answer = result.map_err(|e| SfuError::Sdp(e.to_string()))?;
        Ok(OfferAccepted {
            room,
            participant,
            answer_sdp: answer.to_sdp_string(),
        })
    }

    /// Applies the client's answer to a [`SfuEvent::Renegotiate`] offer.
    pub fn handle_answer(
        &mut self,
        room: &RoomId,
        participant: &ParticipantId,
        answer_sdp: &str,
    ) -> Result<(), SfuError> {
        let key = self.find(room, participant)?;
        sdp_policy::check(answer_sdp, sdp_policy::Kind::Answer)?;
        let answer =
            SdpAnswer::from_sdp_string(answer_sdp).map_err(|e| SfuError::Sdp(e.to_string()))?;
        let p = self
            .participants
            .get_mut(key)
            .ok_or(SfuError::UnknownParticipant)?;
        let pending = p.pending_offer.take().ok_or(SfuError::NoPendingOffer)?;
        let result = p.rtc.sdp_api().accept_answer(pending, answer);
        let mut opened = Vec::new();
        if result.is_ok() {
            for (slot, t) in p.tracks_out.iter_mut().enumerate() {
                let Some(out) = t else { continue };
                match out.state {
                    OutState::Negotiating(mid) => {
                        out.state = OutState::Open(mid);
                        out.ssrc = p
                            .rtc
                            .direct_api()
                            .stream_tx_by_mid(mid, None)
                            .map(|s| s.ssrc());
                        opened.push(slot);
                    }
                    OutState::NegotiatingStop(_) => *t = None,
                    _ => {}
                }
            }
        } else {
            revert_negotiating(p);
        }
        self.drain(key);
        for slot in opened {
            self.retarget(key, slot);
            self.flag_retarget(key, slot);
        }
        self.dirty.push(key);
        self.process();
        result.map_err(|e| SfuError::Sdp(e.to_string()))
    }

    /// Adds a trickled remote ICE candidate (`candidate:…`). With ICE-lite on
    /// the relay this is optional: peers are learnt from their STUN requests.
    pub fn handle_candidate(
        &mut self,
        room: &RoomId,
        participant: &ParticipantId,
        candidate: &str,
    ) -> Result<(), SfuError> {
        let key = self.find(room, participant)?;
        let line = candidate.trim().trim_start_matches("a=");
        if line.is_empty() {
            // End-of-candidates.
            return Ok(());
        }
        let c = Candidate::from_sdp_string(line).map_err(|_| SfuError::Candidate)?;
        if let Some(p) = self.participants.get_mut(key) {
            p.rtc.add_remote_candidate(c);
        }
        self.drain(key);
        self.process();
        Ok(())
    }

    /// Removes a participant ([`SfuEvent::ParticipantLeft`] with
    /// [`LeaveReason::Kicked`] follows). Unknown ids are ignored.
    pub fn kick(&mut self, room: &RoomId, participant: &ParticipantId) {
        if let Ok(key) = self.find(room, participant) {
            self.close_and_remove(key, LeaveReason::Kicked);
            self.process();
        }
    }

    /// Removes every participant of a room. Unknown rooms are ignored.
    pub fn close_room(&mut self, room: &RoomId) {
        let members = self
            .rooms
            .get(room)
            .map(|r| r.members.clone())
            .unwrap_or_default();
        for key in members {
            self.close_and_remove(key, LeaveReason::RoomClosed);
        }
        self.process();
    }

    /// Sends DTLS close_notify (best effort), then removes the participant.
    fn close_and_remove(&mut self, key: PKey, reason: LeaveReason) {
        if let Some(p) = self.participants.get_mut(key) {
            let _ = p.rtc.close();
            self.drain(key);
        }
        self.remove_participant(key, reason);
    }

    /// Forgets a participant: its tracks stop for their subscribers, its
    /// subscriptions leave their publishers, its addresses and timer go.
    pub(super) fn remove_participant(&mut self, key: PKey, reason: LeaveReason) {
        let Some(p) = self.participants.remove(key) else {
            return;
        };
        if let Some(t) = p.timeout {
            self.timers.remove(&(t, key));
        }
        for a in &p.addrs {
            self.by_addr.remove(a);
        }
        self.by_ufrag.remove(&p.ufrag);
        for track in &p.tracks_in {
            for s in &track.subs {
                self.stop_track_out(s.sub, s.slot);
            }
        }
        for (slot, out) in p.tracks_out.iter().enumerate() {
            let Some(out) = out else { continue };
            if let Some(src) = self.participants.get_mut(out.source)
                && let Some(t) = src.tracks_in.iter_mut().find(|t| t.id == out.track)
            {
                t.subs.retain(|s| !(s.sub == key && s.slot == slot));
            }
        }
        if let Some(room) = self.rooms.get_mut(&p.room) {
            room.members.retain(|k| *k != key);
            if room.speaker == Some(key) {
                room.speaker = None;
            }
            if room.members.is_empty() {
                self.rooms.remove(&p.room);
                self.out.push_back(Output::Event(SfuEvent::RoomClosed {
                    room: p.room.clone(),
                }));
            }
        }
        self.out.push_back(Output::Event(SfuEvent::ParticipantLeft {
            room: p.room,
            participant: p.id,
            reason,
        }));
    }

    /// The source of an outgoing track went away: stop its m-line.
    pub(super) fn stop_track_out(&mut self, sub: PKey, slot: usize) {
        let Some(p) = self.participants.get_mut(sub) else {
            return;
        };
        let Some(t) = p.tracks_out.get_mut(slot) else {
            return;
        };
        match t.as_ref().map(|o| o.state) {
            Some(OutState::ToOpen) => *t = None,
            Some(OutState::Negotiating(m) | OutState::Open(m)) => {
                if let Some(o) = t.as_mut() {
                    o.state = OutState::ToStop(m);
                }
            }
            _ => {}
        }
        self.dirty.push(sub);
    }

    /// Makes a server offer if the participant has tracks to open or stop,
    /// is connected, and has no offer outstanding.
    pub(super) fn negotiate(&mut self, key: PKey) {
        let Some(p) = self.participants.get_mut(key) else {
            return;
        };
        if !p.connected || p.pending_offer.is_some() || !p.rtc.is_alive() {
            return;
        }
        if !p.wants_negotiation() {
            return;
        }
        let mut change = p.rtc.sdp_api();
        for out in p.tracks_out.iter_mut().flatten() {
            match out.state {
                OutState::ToOpen => {
                    let mid = change.add_media(
                        out.kind,
                        Direction::SendOnly,
                        Some(out.stream_id.clone()),
                        Some(out.track_label.clone()),
                        None,
                    );
                    out.state = OutState::Negotiating(mid);
                }
                OutState::ToStop(mid) => {
                    change.stop_media(mid);
                    out.state = OutState::NegotiatingStop(mid);
                }
                _ => {}
            }
        }
        if let Some((offer, pending)) = change.apply() {
            p.pending_offer = Some(pending);
            self.out.push_back(Output::Event(SfuEvent::Renegotiate {
                room: p.room.clone(),
                participant: p.id.clone(),
                offer_sdp: offer.to_sdp_string(),
            }));
        } else {
            revert_negotiating(p);
        }
        self.drain(key);
    }
}

/// Undoes the states of an offer that will never be answered.
fn revert_negotiating(p: &mut Participant) {
    for out in p.tracks_out.iter_mut().flatten() {
        match out.state {
            OutState::Negotiating(_) => out.state = OutState::ToOpen,
            OutState::NegotiatingStop(m) => out.state = OutState::ToStop(m),
            _ => {}
        }
    }
}

/// The first `a=fingerprint:` line of an SDP (identifies the client's DTLS
/// identity across re-offers).
fn fingerprint_line(sdp: &str) -> String {
    sdp.lines()
        .map(str::trim)
        .find(|l| l.starts_with("a=fingerprint:"))
        .unwrap_or_default()
        .to_owned()
}
