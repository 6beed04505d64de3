//! Rooms and track wiring: who receives which published track.
//!
//! Every member that may subscribe receives every other member's tracks;
//! wiring a track adds a [`TrackOut`] to the subscriber (negotiated in its
//! next server offer) and a [`SubRef`] to the publisher's [`TrackIn`], which
//! is the only list the per-packet path walks.

use str0m::media::{MediaKind, Mid, Rid};

use super::forward::Rewriter;
use super::keyframe::KeyframeThrottle;
use super::participant::{OutState, SubRef, TrackId, TrackIn, TrackOut};
use super::simulcast::{Layer, LayerSelect};
use super::slab::PKey;
use super::{BwePolicy, Sfu};

/// Most tracks one participant may publish (camera, mic, screen, spare).
const MAX_TRACKS_IN: usize = 8;

/// One room on this worker.
#[derive(Debug, Default)]
pub(crate) struct Room {
    /// Members in join order.
    pub members: Vec<PKey>,
    /// The current active speaker.
    pub speaker: Option<PKey>,
}

impl Sfu {
    /// The initial bandwidth estimate for a participant joining `room` now,
    /// `None` for no BWE (see [`BwePolicy`]).
    pub(super) fn bwe_for(&self, room: &protocol::RoomId) -> Option<u64> {
        let initial = self.config.bwe_initial_bps?;
        let wanted = match self.config.bwe_policy {
            BwePolicy::Always => true,
            BwePolicy::SimulcastRooms => self.rooms.get(room).is_some_and(|r| {
                r.members.iter().any(|k| {
                    self.participants.get(*k).is_some_and(|p| {
                        p.offers_simulcast
                            || p.tracks_in
                                .iter()
                                .any(|t| t.kind == MediaKind::Video && t.layers.len() > 1)
                    })
                })
            }),
        };
        wanted.then_some(initial)
    }

    /// Whether an offer publishes simulcast (`a=simulcast:send …`). Known
    /// from the offer at once; the track itself (its layers) only appears
    /// once the publisher's DTLS is up.
    pub(super) fn offers_simulcast(sdp: &str) -> bool {
        sdp.lines()
            .map(str::trim)
            .any(|l| l.starts_with("a=simulcast:") && l.contains("send"))
    }

    /// Subscribes `sub` to every track `publisher` publishes.
    pub(super) fn subscribe_all(&mut self, sub: PKey, publisher: PKey) {
        let tracks: Vec<(TrackId, MediaKind, Mid)> = match self.participants.get(publisher) {
            Some(p) => p.tracks_in.iter().map(|t| (t.id, t.kind, t.mid)).collect(),
            None => return,
        };
        for (id, kind, mid) in tracks {
            self.wire(publisher, id, kind, mid, sub);
        }
    }

    /// Adds one track subscription: the subscriber's slot, the publisher's ref.
    fn wire(&mut self, publisher: PKey, track: TrackId, kind: MediaKind, mid: Mid, sub: PKey) {
        if publisher == sub {
            return;
        }
        let Some(pid) = self.participants.get(publisher).map(|p| p.id.to_string()) else {
            return;
        };
        let Some(s) = self.participants.get_mut(sub) else {
            return;
        };
        if !s.role.may_subscribe() {
            return;
        }
        let slot = s.add_track_out(TrackOut {
            source: publisher,
            track,
            kind,
            track_label: format!("{pid}-{mid}"),
            stream_id: pid,
            state: OutState::ToOpen,
            ssrc: None,
            pts: Vec::new(),
            select: LayerSelect::new(),
            rewriter: Rewriter::default(),
            seen_nacks: 0,
            stale: false,
        });
        if let Some(t) = self
            .participants
            .get_mut(publisher)
            .and_then(|p| p.tracks_in.iter_mut().find(|t| t.id == track))
        {
            t.subs.push(SubRef { sub, slot });
        }
        self.dirty.push(sub);
    }

    /// A participant started publishing on `mid`: wire it to the room.
    pub(super) fn add_track_in(&mut self, key: PKey, mid: Mid, kind: MediaKind, rids: Vec<Rid>) {
        let Some(p) = self.participants.get_mut(key) else {
            return;
        };
        if !p.role.may_publish()
            || p.tracks_in.len() >= MAX_TRACKS_IN
            || p.tracks_in.iter().any(|t| t.mid == mid)
        {
            return;
        }
        let id = self.next_track;
        self.next_track += 1;
        let mut layers: Vec<Layer> = rids
            .into_iter()
            .take(3)
            .map(|r| Layer::new(Some(r)))
            .collect();
        if layers.is_empty() {
            layers.push(Layer::new(None));
        }
        let throttles = layers.iter().map(|_| KeyframeThrottle::default()).collect();
        p.tracks_in.push(TrackIn {
            id,
            mid,
            kind,
            layers,
            throttles,
            subs: Vec::new(),
            retarget: true,
            first_packet: None,
        });
        let room = p.room.clone();
        let members = self
            .rooms
            .get(&room)
            .map(|r| r.members.clone())
            .unwrap_or_default();
        for m in members {
            self.wire(key, id, kind, mid, m);
        }
    }

    /// A participant stopped publishing on `mid`: stop it for subscribers.
    pub(super) fn remove_track_in(&mut self, key: PKey, mid: Mid) {
        let Some(p) = self.participants.get_mut(key) else {
            return;
        };
        let Some(i) = p.tracks_in.iter().position(|t| t.mid == mid) else {
            return;
        };
        let track = p.tracks_in.remove(i);
        // Track indices shifted: relearn SSRCs from the next packets.
        p.ssrcs.clear();
        for s in track.subs {
            self.stop_track_out(s.sub, s.slot);
        }
    }
}
