//! WHEP subscribers: players that make one offer and never take a server
//! re-offer.
//!
//! A participant whose grant role is [`GrantRole::Subscriber`] (a WHEP
//! player: OBS, GStreamer, a browser, over one HTTP offer/answer) offers
//! recvonly audio and video m-lines. The answer accepts them as sendonly and
//! each such m-line (a *line*) is bound to a published track of its kind in
//! the room: the active speaker's if it publishes one, else the first
//! publisher's in join order. Forwarding then works as for any subscriber
//! (the line is an open [`TrackOut`]: SSRC, sequence numbers and timestamps
//! rewritten, NACK/RTX, layer choice, a keyframe request when it starts).
//!
//! Binding is lazy and repeated: a player that joins before anyone publishes
//! gets its lines bound when a track appears, and when the bound publisher
//! leaves (or stops the track) the line is bound to another publisher's
//! track of that kind, on the same m-line, continuing the same sequence
//! numbers and timestamps (the rewriter carries over). No server offer
//! ([`SfuEvent::Renegotiate`](super::SfuEvent::Renegotiate)) is ever made for
//! a subscriber-role participant: [`Sfu::whep_settle`] replaces negotiation
//! for them.

use std::collections::HashMap;

use protocol::GrantRole;
use str0m::media::{MediaAdded, MediaKind, Mid};

use super::Sfu;
use super::forward::Rewriter;
use super::participant::{OutState, SubRef, TrackId, TrackOut};
use super::simulcast::LayerSelect;
use super::slab::PKey;

/// Most lines remembered per player (audio + video, a few spare).
const MAX_LINES: usize = 8;

/// The lines of every subscriber-role participant on this worker.
#[derive(Debug, Default)]
pub(crate) struct WhepLines {
    by_sub: HashMap<PKey, Vec<Line>>,
}

/// One sendonly m-line of a player.
#[derive(Debug)]
struct Line {
    mid: Mid,
    kind: MediaKind,
    /// The rewriter of the line's last binding while it is unbound, so the
    /// next binding continues its sequence numbers and timestamps.
    parked: Option<Rewriter>,
}

/// A published track a line can be bound to.
struct Candidate {
    source: PKey,
    track: TrackId,
    stream_id: String,
    track_label: String,
}

impl Sfu {
    /// str0m added an m-line to subscriber-role participant `key`: if the
    /// relay sends on it, it is a line to bind (at the next
    /// [`Sfu::whep_settle`]).
    pub(super) fn whep_media_added(&mut self, key: PKey, m: &MediaAdded) {
        let (mid, kind) = (m.mid, m.kind);
        if !self.is_whep(key) || !m.direction.is_sending() {
            return;
        }
        let participants = &self.participants;
        // Slab keys are generational: drop players that are gone.
        self.whep
            .by_sub
            .retain(|k, _| participants.get(*k).is_some());
        let lines = self.whep.by_sub.entry(key).or_default();
        if lines.len() < MAX_LINES && lines.iter().all(|l| l.mid != mid) {
            lines.push(Line {
                mid,
                kind,
                parked: None,
            });
        }
        self.dirty.push(key);
    }

    /// Settles a subscriber-role participant's tracks instead of negotiating
    /// them: tracks wired for a server offer are dropped (the player cannot
    /// take one), lines whose source went away are freed, and every free line
    /// is bound to a published track of its kind if there is one. Returns
    /// `false` (doing nothing) for other roles, which negotiate as usual.
    pub(super) fn whep_settle(&mut self, key: PKey) -> bool {
        if !self.is_whep(key) {
            return false;
        }
        self.whep_release(key);
        let lines: Vec<(Mid, MediaKind)> = self
            .whep
            .by_sub
            .get(&key)
            .map(|v| v.iter().map(|l| (l.mid, l.kind)).collect())
            .unwrap_or_default();
        for (mid, kind) in lines {
            let bound = self
                .participants
                .get(key)
                .is_some_and(|p| p.slot_by_mid(mid).is_some());
            if !bound && let Some(c) = self.whep_candidate(key, kind) {
                self.whep_bind(key, mid, kind, c);
            }
        }
        true
    }

    /// Whether `key` is a subscriber-role participant (a WHEP player).
    pub(super) fn is_whep(&self, key: PKey) -> bool {
        self.participants
            .get(key)
            .is_some_and(|p| p.role == GrantRole::Subscriber)
    }

    /// Empties every slot of `key` that is not an open line: wired tracks
    /// awaiting an offer are unwired, stopped lines keep their rewriter.
    fn whep_release(&mut self, key: PKey) {
        let Some(p) = self.participants.get_mut(key) else {
            return;
        };
        let mut unwire = Vec::new();
        let mut parked = Vec::new();
        for (slot, t) in p.tracks_out.iter_mut().enumerate() {
            let state = match t {
                Some(o) => o.state,
                None => continue,
            };
            if matches!(state, OutState::Open(_)) {
                continue;
            }
            let Some(out) = t.take() else { continue };
            unwire.push((out.source, out.track, slot));
            if let OutState::ToStop(mid) = state {
                parked.push((mid, out.rewriter));
            }
        }
        for (source, track, slot) in unwire {
            if let Some(t) = self
                .participants
                .get_mut(source)
                .and_then(|p| p.tracks_in.iter_mut().find(|t| t.id == track))
            {
                t.subs.retain(|s| !(s.sub == key && s.slot == slot));
            }
        }
        if let Some(lines) = self.whep.by_sub.get_mut(&key) {
            for (mid, rewriter) in parked {
                if let Some(l) = lines.iter_mut().find(|l| l.mid == mid) {
                    l.parked = Some(rewriter);
                }
            }
        }
    }

    /// The track of `kind` a free line of `key` should show: the active
    /// speaker's, else the first publisher's in join order; never one the
    /// player already receives on another line.
    fn whep_candidate(&self, key: PKey, kind: MediaKind) -> Option<Candidate> {
        let p = self.participants.get(key)?;
        let room = self.rooms.get(&p.room)?;
        let taken = |source: PKey, track: TrackId| {
            p.tracks_out
                .iter()
                .flatten()
                .any(|o| o.source == source && o.track == track)
        };
        let order = room.speaker.into_iter().chain(room.members.iter().copied());
        for source in order.filter(|s| *s != key) {
            let Some(publisher) = self.participants.get(source) else {
                continue;
            };
            let Some(t) = publisher
                .tracks_in
                .iter()
                .find(|t| t.kind == kind && !taken(source, t.id))
            else {
                continue;
            };
            let stream_id = publisher.id.to_string();
            return Some(Candidate {
                source,
                track: t.id,
                track_label: format!("{stream_id}-{}", t.mid),
                stream_id,
            });
        }
        None
    }

    /// Binds line `mid` of `key` to a published track: an open outgoing
    /// track on the line's own send stream, forwarding from the next packet,
    /// with a keyframe request to the publisher once a layer is chosen.
    fn whep_bind(&mut self, key: PKey, mid: Mid, kind: MediaKind, c: Candidate) {
        let rewriter = self
            .whep
            .by_sub
            .get_mut(&key)
            .and_then(|v| v.iter_mut().find(|l| l.mid == mid))
            .and_then(|l| l.parked.take())
            .unwrap_or_default();
        let Some(p) = self.participants.get_mut(key) else {
            return;
        };
        let Some(ssrc) = p
            .rtc
            .direct_api()
            .stream_tx_by_mid(mid, None)
            .map(|s| s.ssrc())
        else {
            return;
        };
        let slot = p.add_track_out(TrackOut {
            source: c.source,
            track: c.track,
            kind,
            stream_id: c.stream_id,
            track_label: c.track_label,
            state: OutState::Open(mid),
            ssrc: Some(ssrc),
            pts: Vec::new(),
            select: LayerSelect::new(),
            rewriter,
            seen_nacks: 0,
            stale: false,
        });
        if let Some(t) = self
            .participants
            .get_mut(c.source)
            .and_then(|p| p.tracks_in.iter_mut().find(|t| t.id == c.track))
        {
            t.subs.push(SubRef { sub: key, slot });
        }
        self.retarget(key, slot);
        self.flag_retarget(key, slot);
    }
}
