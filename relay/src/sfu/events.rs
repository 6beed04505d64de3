//! Handling str0m's events: the work queue that runs after every input.
//!
//! Draining an `Rtc` only queues its events; [`Sfu::process`] then handles
//! them one by one (which may write to and drain other participants, queueing
//! more), removes participants that left, and starts pending renegotiations.
//! No `Rtc` is ever borrowed across another's handling.

use str0m::Event;
use str0m::bwe::BweKind;
use str0m::media::{Direction, KeyframeRequest, MediaKind};

use super::Sfu;
use super::slab::PKey;
use super::types::{LeaveReason, Output, SfuEvent};

impl Sfu {
    /// Runs queued events, departures and negotiations until none is left.
    pub(super) fn process(&mut self) {
        loop {
            while let Some((key, event)) = self.events.pop_front() {
                self.on_event(key, event);
            }
            if !self.leaving.is_empty() {
                let leaving = std::mem::take(&mut self.leaving);
                for (key, reason) in leaving {
                    self.remove_participant(key, reason);
                }
                continue;
            }
            if !self.dirty.is_empty() {
                let mut dirty = std::mem::take(&mut self.dirty);
                dirty.sort_unstable();
                dirty.dedup();
                for key in dirty {
                    // WHEP players take no server offer: their lines are bound instead.
                    if !self.whep_settle(key) {
                        self.negotiate(key);
                    }
                }
            }
            if self.events.is_empty() && self.leaving.is_empty() {
                break;
            }
        }
    }

    fn on_event(&mut self, key: PKey, event: Event) {
        match event {
            Event::RtpPacket(packet) => self.fanout(key, &packet),
            Event::Connected => self.on_connected(key),
            Event::IceConnectionStateChange(str0m::IceConnectionState::Disconnected)
            | Event::Closed => self.leaving.push((key, LeaveReason::Disconnected)),
            Event::MediaAdded(m) if self.is_whep(key) => self.whep_media_added(key, &m),
            Event::MediaAdded(m) if receives(m.direction) => {
                let rids = m
                    .simulcast
                    .map(|s| if s.recv.is_empty() { s.send } else { s.recv })
                    .unwrap_or_default()
                    .into_iter()
                    .map(|l| l.rid)
                    .collect();
                self.add_track_in(key, m.mid, m.kind, rids);
            }
            Event::MediaChanged(m) => {
                if receives(m.direction) {
                    let kind = self
                        .participants
                        .get(key)
                        .and_then(|p| p.rtc.media(m.mid))
                        .map_or(MediaKind::Audio, str0m::media::Media::kind);
                    self.add_track_in(key, m.mid, kind, Vec::new());
                } else {
                    self.remove_track_in(key, m.mid);
                }
            }
            Event::KeyframeRequest(req) => self.on_keyframe_request(key, req),
            Event::ChannelOpen(id, _label) => {
                if let Some(p) = self.participants.get_mut(key) {
                    p.channel.get_or_insert(id);
                }
            }
            Event::ChannelClose(id) => {
                if let Some(p) = self.participants.get_mut(key)
                    && p.channel == Some(id)
                {
                    p.channel = None;
                }
            }
            Event::ChannelData(data) => self.on_channel_data(key, &data),
            Event::EgressBitrateEstimate(BweKind::Twcc { estimate, .. }) => {
                if let Some(p) = self.participants.get_mut(key) {
                    p.estimate = Some(estimate.as_u64());
                }
                self.retarget_all(key);
            }
            Event::MediaEgressStats(s) => {
                if let Some(p) = self.participants.get_mut(key)
                    && let Some(t) = p
                        .slot_by_mid(s.mid)
                        .and_then(|i| p.tracks_out.get_mut(i))
                        .and_then(Option::as_mut)
                {
                    self.stats.nacks += s.nacks.saturating_sub(t.seen_nacks);
                    t.seen_nacks = t.seen_nacks.max(s.nacks);
                }
            }
            _ => {}
        }
    }

    fn on_connected(&mut self, key: PKey) {
        let Some(p) = self.participants.get_mut(key) else {
            return;
        };
        if p.connected {
            return;
        }
        p.connected = true;
        let event = SfuEvent::ParticipantConnected {
            room: p.room.clone(),
            participant: p.id.clone(),
        };
        self.out.push_back(Output::Event(event));
        self.dirty.push(key);
    }

    /// A subscriber asked for a keyframe on one of its outgoing m-lines:
    /// forward it (throttled) to the layer it is receiving.
    fn on_keyframe_request(&mut self, key: PKey, req: KeyframeRequest) {
        let Some(p) = self.participants.get(key) else {
            return;
        };
        let Some(t) = p
            .slot_by_mid(req.mid)
            .and_then(|i| p.tracks_out.get(i))
            .and_then(Option::as_ref)
        else {
            return;
        };
        let Some(layer) = t.select.current.or(t.select.target) else {
            return;
        };
        let (source, track) = (t.source, t.track);
        self.request_keyframe(source, track, layer);
    }
}

/// Whether an m-line direction (from the relay's side) receives media.
fn receives(d: Direction) -> bool {
    matches!(d, Direction::RecvOnly | Direction::SendRecv)
}
