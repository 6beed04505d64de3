//! Receive accounting for one stream at one receiver: expected vs delivered (from the
//! probe sequence), loss, reordering, duplicates and freezes.

use std::time::{Duration, Instant};

use crate::media::{Kind, StreamId};

/// How far back (in packets) duplicates are detected.
const WINDOW: u64 = 2048;
const WORDS: usize = (WINDOW / 64) as usize;

/// What one arriving packet was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrival {
    /// A new packet; `expected` is how much the expected count grew (1 in order, more
    /// after a gap, 0 when a late packet fills a gap).
    New {
        /// Growth of the expected-packet count.
        expected: u64,
        /// Whether it arrived after a later-sequenced packet.
        reordered: bool,
    },
    /// A packet already received.
    Duplicate,
}

/// Per-stream receive state and counters.
#[derive(Debug, Clone)]
pub struct StreamStats {
    /// The stream.
    pub stream: StreamId,
    /// Its kind.
    pub kind: Kind,
    first: Option<u64>,
    highest: u64,
    seen: [u64; WORDS],
    /// Distinct packets received.
    pub received: u64,
    /// Packets received more than once (extra copies).
    pub duplicates: u64,
    /// Packets that arrived after a higher sequence number had.
    pub reordered: u64,
    /// First arrival.
    pub first_arrival: Option<Instant>,
    last_arrival: Option<Instant>,
    freeze_after: Duration,
    /// Gaps longer than the freeze threshold.
    pub freezes: u64,
    /// Total length of those gaps.
    pub frozen: Duration,
}

impl StreamStats {
    /// Empty state; a gap of more than `freeze_after` between packets is a freeze.
    pub fn new(stream: StreamId, kind: Kind, freeze_after: Duration) -> Self {
        StreamStats {
            stream,
            kind,
            first: None,
            highest: 0,
            seen: [0; WORDS],
            received: 0,
            duplicates: 0,
            reordered: 0,
            first_arrival: None,
            last_arrival: None,
            freeze_after,
            freezes: 0,
            frozen: Duration::ZERO,
        }
    }

    /// Packets expected: from the lowest to the highest sequence seen.
    pub fn expected(&self) -> u64 {
        self.first.map_or(0, |f| self.highest - f + 1)
    }

    /// The highest sequence received, if any.
    pub fn highest(&self) -> Option<u64> {
        self.first.map(|_| self.highest)
    }

    /// Expected but never received.
    pub fn lost(&self) -> u64 {
        self.expected().saturating_sub(self.received)
    }

    fn bit(seq: u64) -> (usize, u64) {
        let slot = seq % WINDOW;
        ((slot / 64) as usize, 1 << (slot % 64))
    }

    fn test_and_set(&mut self, seq: u64) -> bool {
        let (w, b) = Self::bit(seq);
        let was = self.seen[w] & b != 0;
        self.seen[w] |= b;
        was
    }

    fn clear(&mut self, seq: u64) {
        let (w, b) = Self::bit(seq);
        self.seen[w] &= !b;
    }

    /// Accounts one packet with probe sequence `seq` arriving at `at`.
    pub fn on_packet(&mut self, seq: u64, at: Instant) -> Arrival {
        self.note_gap(at);
        let Some(first) = self.first else {
            self.first = Some(seq);
            self.highest = seq;
            self.test_and_set(seq);
            self.received = 1;
            self.first_arrival = Some(at);
            return Arrival::New {
                expected: 1,
                reordered: false,
            };
        };
        if seq > self.highest {
            let grow = seq - self.highest;
            if grow >= WINDOW {
                self.seen = [0; WORDS];
            } else {
                for s in self.highest + 1..seq {
                    self.clear(s);
                }
            }
            self.highest = seq;
            self.test_and_set(seq);
            self.received += 1;
            return Arrival::New {
                expected: grow,
                reordered: false,
            };
        }
        let in_window = self.highest - seq < WINDOW;
        if seq < first {
            // Older than anything seen: it extends what we expected.
            if !in_window {
                // Too old to track; count it as reordered but keep expectations.
                self.reordered += 1;
                return Arrival::Duplicate;
            }
            for s in seq + 1..first {
                self.clear(s);
            }
            self.first = Some(seq);
            self.test_and_set(seq);
            self.received += 1;
            self.reordered += 1;
            return Arrival::New {
                expected: first - seq,
                reordered: true,
            };
        }
        if in_window && self.test_and_set(seq) {
            self.duplicates += 1;
            return Arrival::Duplicate;
        }
        // A late packet filling a gap (or too old to tell; assume new).
        self.received += 1;
        self.reordered += 1;
        Arrival::New {
            expected: 0,
            reordered: true,
        }
    }

    fn note_gap(&mut self, at: Instant) {
        if let Some(last) = self.last_arrival {
            let gap = at.saturating_duration_since(last);
            if gap > self.freeze_after {
                self.freezes += 1;
                self.frozen += gap;
            }
            self.last_arrival = Some(last.max(at));
        } else {
            self.last_arrival = Some(at);
        }
    }

    /// Closes the stream at `end` (when sending stopped): a silence running up to
    /// `end` longer than the freeze threshold counts as a freeze.
    pub fn finish(&mut self, end: Instant) {
        if let Some(last) = self.last_arrival {
            let gap = end.saturating_duration_since(last);
            if gap > self.freeze_after {
                self.freezes += 1;
                self.frozen += gap;
            }
            self.last_arrival = Some(last.max(end));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats() -> StreamStats {
        StreamStats::new(StreamId(1), Kind::Video, Duration::from_millis(500))
    }

    fn feed(s: &mut StreamStats, seqs: &[u64]) -> Instant {
        let t0 = Instant::now();
        for (i, &q) in seqs.iter().enumerate() {
            s.on_packet(q, t0 + Duration::from_millis(10 * i as u64));
        }
        t0
    }

    #[test]
    fn in_order_stream_has_no_loss() {
        let mut s = stats();
        feed(&mut s, &(0..100).collect::<Vec<_>>());
        assert_eq!((s.expected(), s.received, s.lost()), (100, 100, 0));
        assert_eq!((s.reordered, s.duplicates, s.freezes), (0, 0, 0));
    }

    #[test]
    fn gaps_count_as_loss() {
        let mut s = stats();
        // 100 packets, every 10th missing.
        let seqs: Vec<u64> = (0..100).filter(|q| q % 10 != 5).collect();
        feed(&mut s, &seqs);
        assert_eq!((s.expected(), s.received, s.lost()), (100, 90, 10));
    }

    #[test]
    fn late_packets_count_as_reordered_not_lost() {
        let mut s = stats();
        feed(&mut s, &[0, 1, 3, 2, 4, 6, 5]);
        assert_eq!((s.expected(), s.received, s.lost()), (7, 7, 0));
        assert_eq!(s.reordered, 2);
    }

    #[test]
    fn duplicates_are_counted_once() {
        let mut s = stats();
        feed(&mut s, &[0, 1, 1, 2, 0, 3]);
        assert_eq!((s.expected(), s.received, s.duplicates), (4, 4, 2));
    }

    #[test]
    fn joining_mid_stream_expects_from_the_first_seen() {
        let mut s = stats();
        feed(&mut s, &[1000, 1001, 999, 1002]);
        assert_eq!((s.expected(), s.received, s.lost()), (4, 4, 0));
        assert_eq!(s.reordered, 1);
    }

    #[test]
    fn huge_jumps_reset_the_window() {
        let mut s = stats();
        feed(&mut s, &[0, 1, 100_000, 100_001]);
        assert_eq!(s.expected(), 100_002);
        assert_eq!(s.lost(), 99_998);
    }

    #[test]
    fn gaps_over_the_threshold_are_freezes() {
        let mut s = stats();
        let t0 = Instant::now();
        s.on_packet(0, t0);
        s.on_packet(1, t0 + Duration::from_millis(400)); // not a freeze
        s.on_packet(2, t0 + Duration::from_millis(1100)); // 700 ms gap: freeze
        assert_eq!((s.freezes, s.frozen), (1, Duration::from_millis(700)));
        s.finish(t0 + Duration::from_secs(2)); // 900 ms trailing silence
        assert_eq!((s.freezes, s.frozen), (2, Duration::from_millis(1600)));
    }

    #[test]
    fn arrival_reports_growth_of_expected() {
        let mut s = stats();
        let t = Instant::now();
        assert_eq!(
            s.on_packet(5, t),
            Arrival::New {
                expected: 1,
                reordered: false
            }
        );
        assert_eq!(
            s.on_packet(8, t),
            Arrival::New {
                expected: 3,
                reordered: false
            }
        );
        assert_eq!(
            s.on_packet(7, t),
            Arrival::New {
                expected: 0,
                reordered: true
            }
        );
        assert_eq!(s.on_packet(7, t), Arrival::Duplicate);
    }
}
