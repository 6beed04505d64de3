//! Opus-shaped audio: one packet every 20 ms (50 packets/s), constant size.

use std::time::{Duration, Instant};

use super::{Kind, LATE, OutPacket, Probe, Source, StreamId};
use crate::clock::ns_since_epoch;

/// Shape of a synthetic audio stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct AudioShape {
    /// Payload bytes per packet (Opus at ~32 kbit/s with 20 ms frames is ~80 bytes).
    pub payload_bytes: usize,
}

impl Default for AudioShape {
    fn default() -> Self {
        AudioShape { payload_bytes: 80 }
    }
}

impl AudioShape {
    /// Packet interval (Opus `ptime` 20 ms).
    pub const PTIME: Duration = Duration::from_millis(20);
    /// RTP clock ticks per packet (48 kHz × 20 ms).
    pub const TICKS_PER_PACKET: u32 = 960;

    /// Payload size actually sent: at least a TOC byte plus the probe.
    pub fn effective_payload_bytes(&self) -> usize {
        self.payload_bytes.max(1 + Probe::LEN)
    }
}

/// Generates an [`AudioShape`] stream.
#[derive(Debug)]
pub struct AudioSource {
    shape: AudioShape,
    stream: StreamId,
    next: Instant,
    seq: u64,
    rtp_time: u32,
}

impl AudioSource {
    /// A source whose first packet is due at `start`.
    pub fn new(shape: AudioShape, stream: StreamId, start: Instant) -> Self {
        AudioSource {
            shape,
            stream,
            next: start,
            seq: 0,
            rtp_time: 0,
        }
    }

    /// The stream id this source stamps into its probes.
    pub fn stream(&self) -> StreamId {
        self.stream
    }

    /// Packets produced so far (the next probe sequence).
    pub fn produced(&self) -> u64 {
        self.seq
    }
}

impl Source for AudioSource {
    fn next_due(&self) -> Instant {
        self.next
    }

    fn produce(&mut self, now: Instant, out: &mut Vec<OutPacket>) -> u32 {
        let mut late = 0;
        while self.next <= now {
            if now - self.next > LATE {
                late += 1;
            }
            let mut payload = vec![0u8; self.shape.effective_payload_bytes()];
            // Opus TOC: config 15 (SILK+CELT hybrid FB 20 ms), stereo 0, code 0.
            payload[0] = 15 << 3;
            Probe {
                stream: self.stream,
                kind: Kind::Audio,
                seq: self.seq,
                sent_ns: ns_since_epoch(now),
            }
            .write_tail(&mut payload);
            out.push(OutPacket {
                rid: None,
                seq: self.seq,
                rtp_time: self.rtp_time,
                marker: false,
                keyframe: false,
                payload,
            });
            self.seq += 1;
            self.rtp_time = self.rtp_time.wrapping_add(AudioShape::TICKS_PER_PACKET);
            self.next += AudioShape::PTIME;
        }
        late
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fifty_packets_per_second_of_opus_size() {
        let t0 = Instant::now();
        let mut src = AudioSource::new(AudioShape::default(), StreamId(1), t0);
        let mut out = Vec::new();
        // Step through one second in 5 ms ticks, as a loop would.
        let mut now = t0;
        while now < t0 + Duration::from_secs(1) {
            assert_eq!(src.produce(now, &mut out), 0);
            now += Duration::from_millis(5);
        }
        assert_eq!(out.len(), 50);
        assert!(out.iter().all(|p| p.payload.len() == 80 && !p.marker));
        let seqs: Vec<u64> = out.iter().map(|p| p.seq).collect();
        assert_eq!(seqs, (0..50).collect::<Vec<_>>());
        assert_eq!(out[1].rtp_time - out[0].rtp_time, 960);
        let probe = Probe::read_tail(&out[49].payload).unwrap();
        assert_eq!((probe.stream, probe.seq), (StreamId(1), 49));
    }

    #[test]
    fn a_stalled_caller_gets_the_backlog_and_a_lateness_count() {
        let t0 = Instant::now();
        let mut src = AudioSource::new(AudioShape::default(), StreamId(1), t0);
        let mut out = Vec::new();
        let late = src.produce(t0 + Duration::from_millis(200), &mut out);
        assert_eq!(out.len(), 11);
        assert_eq!(late, 8, "ticks at 0..=140 ms are more than 50 ms late");
        assert_eq!(src.next_due(), t0 + Duration::from_millis(220));
    }
}
