//! Per-subscriber RTP rewriting: sequence numbers, timestamps and VP8
//! picture ids continue across runs (first packet, simulcast layer switch),
//! so the subscriber's decoder sees one unbroken stream.
//!
//! Within a run `out = in + offset` (extended 64-bit sequence numbers,
//! wrapping 32-bit timestamps): a reordered or retransmitted packet keeps its
//! place; packets older than the run's first packet are dropped. A new run
//! starts right after the highest sequence number sent so far, with a
//! timestamp advanced by the wall-clock gap since the last packet.

use std::time::Instant;

use str0m::rtp::Vp8Descriptor;

/// 15-bit VP8 PictureID space.
const PICTURE_ID_MASK: u16 = 0x7fff;

/// Rewriting state of one outgoing track.
#[derive(Debug, Default)]
pub(crate) struct Rewriter {
    started: bool,
    seq_offset: u64,
    floor: u64,
    max_out: u64,
    ts_offset: u32,
    last_ts_out: u32,
    last_arrival: Option<Instant>,
    pid_offset: u16,
    last_pid_out: Option<u16>,
    tl0_offset: u8,
    last_tl0_out: Option<u8>,
}

/// One packet's outgoing header fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Rewritten {
    /// Extended outgoing sequence number.
    pub seq: u64,
    /// Outgoing RTP timestamp.
    pub ts: u32,
    /// Outgoing VP8 PictureID, when the packet had one.
    pub picture_id: Option<u16>,
    /// Outgoing VP8 TL0PICIDX, when the packet had one.
    pub tl0: Option<u8>,
}

/// The parts of an incoming packet the rewriter reads.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PacketIn {
    /// Extended incoming sequence number.
    pub seq: u64,
    /// Incoming RTP timestamp.
    pub ts: u32,
    /// Arrival time.
    pub arrival: Instant,
    /// RTP clock rate (Hz).
    pub clock_rate: u32,
    /// VP8 PictureID, if any.
    pub picture_id: Option<u16>,
    /// VP8 TL0PICIDX, if any.
    pub tl0: Option<u8>,
}

impl Rewriter {
    /// Starts a new run at `p` (the first packet, or a keyframe of a new layer).
    pub(crate) fn start_run(&mut self, p: &PacketIn) {
        let (seq_out, ts_out) = if self.started {
            let gap = self
                .last_arrival
                .map_or(0, |t| p.arrival.saturating_duration_since(t).as_micros());
            let ticks = (gap * u128::from(p.clock_rate) / 1_000_000).max(1);
            let ticks = u32::try_from(ticks).unwrap_or(u32::MAX / 2);
            (self.max_out + 1, self.last_ts_out.wrapping_add(ticks))
        } else {
            // Start at the incoming low 16 bits: rollover counter 0, which a
            // fresh receiver assumes (RFC 3711 §3.3.1).
            (p.seq & 0xffff, p.ts)
        };
        self.seq_offset = seq_out.wrapping_sub(p.seq);
        self.floor = seq_out;
        self.ts_offset = ts_out.wrapping_sub(p.ts);
        self.pid_offset = match (self.last_pid_out, p.picture_id) {
            (Some(last), Some(pid)) => last.wrapping_add(1).wrapping_sub(pid) & PICTURE_ID_MASK,
            _ => 0,
        };
        self.tl0_offset = match (self.last_tl0_out, p.tl0) {
            (Some(last), Some(tl0)) => last.wrapping_add(1).wrapping_sub(tl0),
            _ => 0,
        };
        if !self.started {
            self.max_out = seq_out.wrapping_sub(1);
            self.started = true;
        }
    }

    /// Rewrites a packet of the current run, or `None` if it predates the run.
    pub(crate) fn rewrite(&mut self, p: &PacketIn) -> Option<Rewritten> {
        if !self.started {
            return None;
        }
        let seq = p.seq.wrapping_add(self.seq_offset);
        if (seq.wrapping_sub(self.floor) as i64) < 0 {
            return None;
        }
        let out = Rewritten {
            seq,
            ts: p.ts.wrapping_add(self.ts_offset),
            picture_id: p
                .picture_id
                .map(|pid| pid.wrapping_add(self.pid_offset) & PICTURE_ID_MASK),
            tl0: p.tl0.map(|t| t.wrapping_add(self.tl0_offset)),
        };
        if (seq.wrapping_sub(self.max_out) as i64) > 0 {
            self.max_out = seq;
            self.last_ts_out = out.ts;
            self.last_arrival = Some(p.arrival);
            if out.picture_id.is_some() {
                self.last_pid_out = out.picture_id;
            }
            if out.tl0.is_some() {
                self.last_tl0_out = out.tl0;
            }
        }
        Some(out)
    }
}

/// The VP8 descriptor patch carrying the rewritten picture id / TL0PICIDX.
pub(crate) fn vp8_patch(
    desc: Option<Vp8Descriptor>,
    out: &Rewritten,
) -> Option<str0m::rtp::Vp8Patch> {
    let desc = desc?;
    let pid = out.picture_id?;
    let build = |pid: u16| {
        let mut b = desc.patch().picture_id(pid);
        if let Some(tl0) = out.tl0 {
            b = b.tl0_pic_idx(tl0);
        }
        b.build()
    };
    build(pid).or_else(|_| build(pid & 0x7f)).ok()
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // tests start a virtual clock from one real Instant
mod tests {
    use super::*;
    use std::time::Duration;

    fn pkt(seq: u64, ts: u32, at: Instant) -> PacketIn {
        PacketIn {
            seq,
            ts,
            arrival: at,
            clock_rate: 90_000,
            picture_id: Some((seq % 1000) as u16),
            tl0: None,
        }
    }

    #[test]
    fn first_run_starts_at_rollover_zero_and_keeps_reordering() {
        let t0 = Instant::now();
        let mut r = Rewriter::default();
        r.start_run(&pkt(70_000, 1000, t0));
        let a = r.rewrite(&pkt(70_000, 1000, t0)).unwrap();
        assert_eq!(a.seq, 70_000 % 65_536);
        let c = r.rewrite(&pkt(70_002, 1000, t0)).unwrap();
        let b = r.rewrite(&pkt(70_001, 1000, t0)).unwrap();
        assert_eq!((b.seq, c.seq), (a.seq + 1, a.seq + 2));
        // Older than the run: dropped.
        assert_eq!(r.rewrite(&pkt(69_999, 900, t0)), None);
    }

    #[test]
    fn a_new_run_continues_sequence_timestamp_and_picture_id() {
        let t0 = Instant::now();
        let mut r = Rewriter::default();
        r.start_run(&pkt(100, 5_000, t0));
        for s in 100..110 {
            r.rewrite(&pkt(s, 5_000, t0)).unwrap();
        }
        let last = r.rewrite(&pkt(110, 5_000, t0)).unwrap();
        // Switch to another layer with unrelated numbering 33 ms later.
        let t1 = t0 + Duration::from_millis(33);
        let first = pkt(40_000, 777_777, t1);
        r.start_run(&first);
        let out = r.rewrite(&first).unwrap();
        assert_eq!(out.seq, last.seq + 1);
        assert_eq!(out.ts, last.ts + 2_970);
        assert_eq!(out.picture_id, Some(last.picture_id.unwrap() + 1));
        // The old layer's late packets no longer map into the new run.
        assert_eq!(r.rewrite(&pkt(39_999, 777_000, t1)), None);
    }
}
