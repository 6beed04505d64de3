//! Measurements: per-stream receive accounting ([`StreamStats`]), duration histograms
//! ([`DurationHistogram`]), per-second series ([`Series`]), and the [`Recorder`] that
//! one peer loop fills and that merges across loops into the run's totals.

mod hist;
mod series;
mod stream;

use std::collections::HashMap;
use std::time::{Duration, Instant};

pub use hist::{DurationHistogram, Summary};
pub use series::{Point, Series};
pub use stream::{Arrival, StreamStats};

use crate::media::{Kind, Probe, StreamId};

/// Gap between packets of a stream above which the receiver counts a freeze.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct FreezeThresholds {
    /// For audio streams.
    #[serde(rename = "audio_ms", serialize_with = "crate::clock::serialize_ms")]
    pub audio: Duration,
    /// For video streams.
    #[serde(rename = "video_ms", serialize_with = "crate::clock::serialize_ms")]
    pub video: Duration,
}

impl Default for FreezeThresholds {
    fn default() -> Self {
        FreezeThresholds {
            audio: Duration::from_millis(200),
            video: Duration::from_millis(500),
        }
    }
}

impl FreezeThresholds {
    /// The threshold for a kind.
    pub fn for_kind(&self, kind: Kind) -> Duration {
        match kind {
            Kind::Audio => self.audio,
            Kind::Video => self.video,
        }
    }
}

/// Summed receive counters over many streams.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct StreamTotals {
    /// Streams accounted.
    pub streams: u64,
    /// Packets expected (from probe sequences).
    pub expected: u64,
    /// Distinct packets delivered.
    pub delivered: u64,
    /// Expected minus delivered.
    pub lost: u64,
    /// Extra copies received.
    pub duplicates: u64,
    /// Packets that arrived after a later one.
    pub reordered: u64,
    /// Freezes (gaps over the threshold).
    pub freezes: u64,
    /// Total frozen time, milliseconds.
    pub frozen_ms: u64,
    /// Packets sent after the last one a receiver got, that never arrived (stuck in a
    /// queue or lost at the end); counted in `expected` and `lost` too. Only scenarios
    /// whose stream ids name one sender count them (see [`Recorder::account_tails`]).
    pub never_arrived: u64,
}

impl StreamTotals {
    /// Adds one finished stream.
    pub fn add_stream(&mut self, s: &StreamStats) {
        self.streams += 1;
        self.expected += s.expected();
        self.delivered += s.received;
        self.lost += s.lost();
        self.duplicates += s.duplicates;
        self.reordered += s.reordered;
        self.freezes += s.freezes;
        self.frozen_ms += u64::try_from(s.frozen.as_millis()).unwrap_or(u64::MAX);
    }

    /// Adds another total.
    pub fn merge(&mut self, o: &StreamTotals) {
        self.streams += o.streams;
        self.expected += o.expected;
        self.delivered += o.delivered;
        self.lost += o.lost;
        self.duplicates += o.duplicates;
        self.reordered += o.reordered;
        self.freezes += o.freezes;
        self.frozen_ms += o.frozen_ms;
        self.never_arrived += o.never_arrived;
    }

    /// Loss in percent of expected (0 when nothing was expected).
    pub fn loss_pct(&self) -> f64 {
        if self.expected == 0 {
            0.0
        } else {
            self.lost as f64 / self.expected as f64 * 100.0
        }
    }
}

/// Sender- and peer-side counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct PeerTotals {
    /// Peers handed to loops.
    pub added: u64,
    /// Peers whose ICE+DTLS connected.
    pub connected: u64,
    /// Peers that failed or disconnected before the end.
    pub failed: u64,
    /// RTP packets written by publishers.
    pub sent_packets: u64,
    /// RTP payload bytes written by publishers.
    pub sent_bytes: u64,
    /// Datagrams the OS refused to send (socket buffer full).
    pub send_drops: u64,
    /// Media ticks produced more than 50 ms late (the harness was too slow).
    pub late_ticks: u64,
}

impl PeerTotals {
    /// Adds another total.
    pub fn merge(&mut self, o: &PeerTotals) {
        self.added += o.added;
        self.connected += o.connected;
        self.failed += o.failed;
        self.sent_packets += o.sent_packets;
        self.sent_bytes += o.sent_bytes;
        self.send_drops += o.send_drops;
        self.late_ticks += o.late_ticks;
    }
}

/// Everything one peer loop measured; merge many into one for the report.
#[derive(Debug, Clone)]
pub struct Recorder {
    /// One-way latency of every delivered probe.
    pub latency: DurationHistogram,
    /// Join time: start of negotiation to first media packet (receivers).
    pub join: DurationHistogram,
    /// Connect time: start of negotiation to ICE+DTLS connected (all peers).
    pub connect: DurationHistogram,
    /// Per-second series.
    pub series: Series,
    /// Receive totals of finished streams.
    pub streams: StreamTotals,
    /// Peer and sender totals.
    pub peers: PeerTotals,
    /// Packets each sending stream produced (publisher side).
    pub produced: HashMap<StreamId, u64>,
    /// Highest sequence each receiver stream got (receiver side).
    pub tails: Vec<(StreamId, u64)>,
    /// When each receiving peer (by `PeerId` number) got its first media packet.
    pub first_media: Vec<(u32, Instant)>,
}

impl Recorder {
    /// An empty recorder for a run that started at `start`.
    pub fn new(start: Instant) -> Self {
        Recorder {
            latency: DurationHistogram::default(),
            join: DurationHistogram::default(),
            connect: DurationHistogram::default(),
            series: Series::new(start),
            streams: StreamTotals::default(),
            peers: PeerTotals::default(),
            produced: HashMap::new(),
            tails: Vec::new(),
            first_media: Vec::new(),
        }
    }

    /// Accounts one received probe of a `bytes`-long payload arriving at `at` into the
    /// receiver's `stream` state. Returns what the arrival was.
    pub fn on_probe(
        &mut self,
        stream: &mut StreamStats,
        probe: &Probe,
        bytes: usize,
        at: Instant,
    ) -> Arrival {
        let arrival = stream.on_packet(probe.seq, at);
        let latency = at.saturating_duration_since(crate::clock::instant_from_ns(probe.sent_ns));
        let (expected, delivered) = match arrival {
            Arrival::New { expected, .. } => {
                self.latency.record(latency);
                (expected, true)
            }
            Arrival::Duplicate => (0, false),
        };
        self.series.record(at, bytes, expected, delivered, latency);
        arrival
    }

    /// Folds a finished stream into the totals (call [`StreamStats::finish`] first).
    pub fn finish_stream(&mut self, stream: &StreamStats) {
        self.streams.add_stream(stream);
        if let Some(h) = stream.highest() {
            self.tails.push((stream.stream, h));
        }
    }

    /// Counts, for every receiver stream, the packets its sender produced after the
    /// last one it received as expected and lost (`never_arrived`): without this a
    /// stream stalled in a queue at the end of the run would show no loss. Call once,
    /// after merging every loop, and only when each stream id names one sender (not
    /// with simulcast, where receivers switch layers).
    pub fn account_tails(&mut self) {
        for (stream, highest) in std::mem::take(&mut self.tails) {
            if let Some(&produced) = self.produced.get(&stream) {
                let missing = produced.saturating_sub(highest + 1);
                self.streams.expected += missing;
                self.streams.lost += missing;
                self.streams.never_arrived += missing;
            }
        }
    }

    /// Adds everything `other` measured.
    pub fn merge(&mut self, other: &Recorder) {
        self.latency.merge(&other.latency);
        self.join.merge(&other.join);
        self.connect.merge(&other.connect);
        self.series.merge(&other.series);
        self.streams.merge(&other.streams);
        self.peers.merge(&other.peers);
        for (s, n) in &other.produced {
            let e = self.produced.entry(*s).or_default();
            *e = (*e).max(*n);
        }
        self.tails.extend_from_slice(&other.tails);
        self.first_media.extend_from_slice(&other.first_media);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ns_since_epoch;
    use crate::media::StreamId;

    #[test]
    fn recorder_measures_latency_loss_and_merges() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut a = Recorder::new(t0);
        let mut b = Recorder::new(t0);
        let mut s1 = StreamStats::new(StreamId(1), Kind::Audio, ms(200));
        let mut s2 = StreamStats::new(StreamId(2), Kind::Audio, ms(200));
        for seq in 0..50u64 {
            let sent = t0 + ms(seq * 20);
            let probe = Probe {
                stream: StreamId(1),
                kind: Kind::Audio,
                seq,
                sent_ns: ns_since_epoch(sent),
            };
            a.on_probe(&mut s1, &probe, 80, sent + ms(30));
            if seq % 5 != 0 {
                let probe = Probe {
                    stream: StreamId(2),
                    ..probe
                };
                b.on_probe(&mut s2, &probe, 80, sent + ms(10));
            }
        }
        s1.finish(t0 + ms(1000));
        s2.finish(t0 + ms(1000));
        a.finish_stream(&s1);
        b.finish_stream(&s2);
        a.merge(&b);
        assert_eq!(a.streams.streams, 2);
        // s2 saw 1..=49 without the 9 multiples of 5: expected 49, delivered 40.
        assert_eq!(
            (a.streams.expected, a.streams.delivered),
            (50 + 49, 50 + 40)
        );
        assert!((a.streams.loss_pct() - 9.0 / 99.0 * 100.0).abs() < 1e-9);
        let lat = a.latency.summary();
        assert_eq!(lat.count, 90);
        assert!((lat.p50_ms - 30.0).abs() < 0.1, "{lat:?}");
        assert!((lat.max_ms - 30.0).abs() < 0.1, "{lat:?}");
        assert!(lat.mean_ms > 10.0 && lat.mean_ms < 30.0);
        assert_eq!(a.streams.freezes, 0);
    }

    #[test]
    fn packets_after_a_receivers_last_one_count_as_lost() {
        let t0 = Instant::now();
        let mut r = Recorder::new(t0);
        let mut s = StreamStats::new(StreamId(7), Kind::Video, Duration::from_millis(500));
        for seq in 0..10 {
            s.on_packet(seq, t0);
        }
        r.finish_stream(&s);
        let mut sender = Recorder::new(t0);
        sender.produced.insert(StreamId(7), 25); // seqs 0..=24 were sent
        r.merge(&sender);
        assert_eq!((r.streams.expected, r.streams.lost), (10, 0));
        r.account_tails();
        assert_eq!(r.streams.never_arrived, 15);
        assert_eq!((r.streams.expected, r.streams.lost), (25, 15));
        assert!((r.streams.loss_pct() - 60.0).abs() < 1e-9);
    }
}
