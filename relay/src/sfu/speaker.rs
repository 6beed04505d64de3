//! Active speaker detection from RFC 6464 audio levels.
//!
//! Each audio packet adds its loudness (127 − level in −dBov; silence counts
//! zero) to its publisher's accumulator. Every tick the loudest member whose
//! average passes [`SPEAKING`] becomes the room's active speaker, if they beat
//! the current speaker by [`MARGIN`]; every member is told over the data
//! channel as `{"type":"active_speaker","participant":ID}`.

use serde_json::json;

use super::Sfu;
use super::slab::PKey;

/// Average loudness (per packet, silence = 0) that counts as speaking.
const SPEAKING: u64 = 30;

/// How much louder a new speaker must be than the current one.
const MARGIN: u64 = 8;

/// Fewest audio packets in a tick for a member to be considered.
const MIN_PACKETS: u32 = 5;

impl Sfu {
    /// Runs one detection round over every room and resets accumulators.
    pub(super) fn detect_speakers(&mut self) {
        let mut changes: Vec<(Vec<PKey>, String)> = Vec::new();
        for room in self.rooms.values_mut() {
            let mut best: Option<(u64, PKey)> = None;
            let mut current = 0;
            for &k in &room.members {
                let Some(p) = self.participants.get_mut(k) else {
                    continue;
                };
                let avg = if p.loudness_count >= MIN_PACKETS {
                    p.loudness_sum / u64::from(p.loudness_count)
                } else {
                    0
                };
                p.loudness_sum = 0;
                p.loudness_count = 0;
                if room.speaker == Some(k) {
                    current = avg;
                }
                if best.is_none_or(|(b, _)| avg > b) {
                    best = Some((avg, k));
                }
            }
            let Some((loudness, k)) = best else { continue };
            if loudness < SPEAKING || room.speaker == Some(k) {
                continue;
            }
            if room.speaker.is_some() && loudness < current + MARGIN {
                continue;
            }
            room.speaker = Some(k);
            if let Some(p) = self.participants.get(k) {
                let msg = json!({"type": "active_speaker", "participant": p.id}).to_string();
                changes.push((room.members.clone(), msg));
            }
        }
        for (members, msg) in changes {
            for m in members {
                self.send_channel(m, &msg);
            }
        }
    }
}
