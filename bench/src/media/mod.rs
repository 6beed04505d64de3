//! Synthetic media shapes: what a publisher sends, packet by packet.
//!
//! [`AudioSource`] emits Opus-sized packets at 50 packets/s; [`VideoSource`] emits VP8
//! frames at a chosen bitrate and frame rate with periodic (larger) keyframes, split into
//! RTP payloads the way a real VP8 packetiser does (see [`vp8`]), optionally as three
//! simulcast layers. Every payload ends with a [`Probe`] so receivers can measure latency,
//! loss, reordering and freezes. Sources are pure: time is an argument.

mod audio;
mod video;
pub mod vp8;

use std::time::Instant;

pub use audio::{AudioShape, AudioSource};
pub use video::{Layer, VideoShape, VideoSource};

/// Identifies one sent stream (one track, or one simulcast layer of a track) in a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub struct StreamId(pub u32);

/// Media kind of a stream, as the receiver accounts for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub enum Kind {
    /// Opus-shaped audio.
    Audio,
    /// VP8-shaped video.
    Video,
}

/// Measurement trailer at the end of every payload: who sent it, which packet, when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Probe {
    /// The stream this packet belongs to.
    pub stream: StreamId,
    /// Audio or video (receivers pick freeze thresholds by kind).
    pub kind: Kind,
    /// Per-stream packet counter, starting at 0, +1 per packet.
    pub seq: u64,
    /// Send time, nanoseconds since [`crate::clock::epoch`].
    pub sent_ns: u64,
}

impl Probe {
    /// Bytes a probe occupies: magic (3), kind (1), stream (4), seq (8), send time (8).
    pub const LEN: usize = 24;
    /// Marks a probe; a payload without it at its tail is not ours.
    pub const MAGIC: [u8; 3] = *b"ANT";

    /// Writes the probe into the last [`Probe::LEN`] bytes of `payload`.
    ///
    /// `payload` must be at least [`Probe::LEN`] long (sources guarantee it).
    pub fn write_tail(&self, payload: &mut [u8]) {
        let Some(start) = payload.len().checked_sub(Self::LEN) else {
            return;
        };
        let tail = &mut payload[start..];
        tail[0..3].copy_from_slice(&Self::MAGIC);
        tail[3] = match self.kind {
            Kind::Audio => b'a',
            Kind::Video => b'v',
        };
        tail[4..8].copy_from_slice(&self.stream.0.to_be_bytes());
        tail[8..16].copy_from_slice(&self.seq.to_be_bytes());
        tail[16..24].copy_from_slice(&self.sent_ns.to_be_bytes());
    }

    /// Reads the probe at the tail of a received payload, if there is one.
    pub fn read_tail(payload: &[u8]) -> Option<Probe> {
        let tail = payload.get(payload.len().checked_sub(Self::LEN)?..)?;
        if tail.get(0..3)? != Self::MAGIC {
            return None;
        }
        let kind = match tail.get(3)? {
            b'a' => Kind::Audio,
            b'v' => Kind::Video,
            _ => return None,
        };
        let stream = u32::from_be_bytes(tail.get(4..8)?.try_into().ok()?);
        let seq = u64::from_be_bytes(tail.get(8..16)?.try_into().ok()?);
        let sent_ns = u64::from_be_bytes(tail.get(16..24)?.try_into().ok()?);
        Some(Probe {
            stream: StreamId(stream),
            kind,
            seq,
            sent_ns,
        })
    }
}

/// One RTP packet a source wants sent (everything but SSRC and payload type).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutPacket {
    /// Simulcast layer (`q`/`h`/`f`) or `None` for a single-layer stream.
    pub rid: Option<&'static str>,
    /// Extended RTP sequence number (starts below 65536; str0m derives the ROC from it).
    pub seq: u64,
    /// RTP timestamp in the codec clock (48 kHz audio, 90 kHz video).
    pub rtp_time: u32,
    /// Marker bit: last packet of a video frame (always false for audio).
    pub marker: bool,
    /// Whether this packet belongs to a keyframe.
    pub keyframe: bool,
    /// The RTP payload, ending with a [`Probe`].
    pub payload: Vec<u8>,
}

/// Something that produces packets on a schedule.
pub trait Source {
    /// When the next packet(s) are due.
    fn next_due(&self) -> Instant;
    /// Appends every packet due at or before `now` to `out`; returns how many ticks were
    /// more than 50 ms late (a sign the harness, not the system under test, is slow).
    fn produce(&mut self, now: Instant, out: &mut Vec<OutPacket>) -> u32;
}

/// Lateness above which a tick counts as "late" in [`Source::produce`].
pub(crate) const LATE: std::time::Duration = std::time::Duration::from_millis(50);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_round_trips_at_the_tail() {
        let p = Probe {
            stream: StreamId(7),
            kind: Kind::Video,
            seq: 123_456_789_012,
            sent_ns: 42,
        };
        let mut buf = vec![0xAB; 100];
        p.write_tail(&mut buf);
        assert_eq!(Probe::read_tail(&buf), Some(p));
        assert_eq!(
            &buf[..76],
            &[0xAB; 76][..],
            "bytes before the probe untouched"
        );
    }

    #[test]
    fn foreign_or_short_payloads_have_no_probe() {
        assert_eq!(Probe::read_tail(&[]), None);
        assert_eq!(Probe::read_tail(&[0; 23]), None);
        assert_eq!(Probe::read_tail(&[0; 64]), None);
    }
}
