//! Housekeeping every [`TICK`]: layer bitrates, deferred keyframe requests,
//! layer targets and BWE goals, active speakers, connect deadlines.

use std::time::Duration;

use str0m::bwe::Bitrate;
use str0m::media::MediaKind;

use super::Sfu;
use super::participant::OutState;
use super::simulcast;
use super::slab::PKey;
use super::types::LeaveReason;

/// Housekeeping period.
pub(crate) const TICK: Duration = Duration::from_millis(500);

/// A participant that is not connected this long after its offer is removed.
const CONNECT_DEADLINE: Duration = Duration::from_secs(30);

/// Audio share of a subscriber's BWE goal, per audio track (bits/s).
const AUDIO_BPS: u64 = 64_000;

impl Sfu {
    pub(super) fn tick(&mut self) {
        let now = self.now;
        let window = now.saturating_duration_since(self.last_tick);
        self.last_tick = now;
        self.next_tick = now + TICK;
        self.ticks += 1;
        let keys: Vec<PKey> = self.participants.keys().collect();
        let mut due = Vec::new();
        for &key in &keys {
            let Some(p) = self.participants.get_mut(key) else {
                continue;
            };
            p.messages_this_tick = 0;
            if !p.connected && now.saturating_duration_since(p.joined_at) > CONNECT_DEADLINE {
                self.leaving.push((key, LeaveReason::Disconnected));
            }
            for t in &mut p.tracks_in {
                for l in &mut t.layers {
                    l.measure(window);
                }
                for (i, th) in t.throttles.iter_mut().enumerate() {
                    if th.poll_pending(now) {
                        due.push((key, t.id, i));
                    }
                }
            }
        }
        for (key, track, layer) in due {
            self.send_keyframe_request(key, track, layer);
        }
        for &key in &keys {
            self.retarget_all(key);
            self.update_bwe_goal(key);
        }
        self.detect_speakers();
    }

    /// Tells str0m's BWE what this subscriber would like to receive, so it
    /// probes for it.
    fn update_bwe_goal(&mut self, key: PKey) {
        let now = self.now;
        let Some(p) = self.participants.get(key).filter(|p| p.bwe) else {
            return;
        };
        let mut desired = 0;
        for t in p.tracks_out.iter().flatten() {
            if !matches!(t.state, OutState::Open(_)) {
                continue;
            }
            desired += match t.kind {
                MediaKind::Audio => AUDIO_BPS,
                MediaKind::Video => self
                    .participants
                    .get(t.source)
                    .and_then(|s| s.tracks_in.iter().find(|x| x.id == t.track))
                    .map_or(0, |x| {
                        simulcast::top_bitrate(&x.layers, now, t.select.quality)
                    }),
            };
        }
        let old = p.desired;
        if desired == 0 || desired.abs_diff(old) * 10 < old {
            return;
        }
        if let Some(p) = self.participants.get_mut(key) {
            p.desired = desired;
            p.rtc.bwe().set_bitrate(
                Bitrate::bps(desired / 4),
                Bitrate::bps(desired + desired / 4),
            );
        }
        self.drain(key);
    }
}
