//! Per-second time series of what receivers saw, for plots and ramp decisions.

use std::time::{Duration, Instant};

use super::hist::DurationHistogram;

/// Longest series kept (one bucket per second); later samples go to the last bucket.
const MAX_SECONDS: usize = 24 * 3600;

#[derive(Debug, Clone, Default)]
struct Bucket {
    rx_packets: u64,
    rx_bytes: u64,
    expected: u64,
    delivered: u64,
    latency: Option<DurationHistogram>,
}

/// One second of the run, as plotted and written to JSON.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Point {
    /// Seconds since the run started (start of this bucket).
    pub t_s: u64,
    /// Packets received in this second (duplicates included).
    pub rx_packets: u64,
    /// Received payload throughput, bits per second.
    pub rx_bits_per_s: u64,
    /// Loss in this second: 1 − delivered/expected, percent (≥ 0).
    pub loss_pct: f64,
    /// Median one-way latency of packets received in this second.
    pub latency_p50_ms: f64,
    /// 99th-percentile one-way latency of packets received in this second.
    pub latency_p99_ms: f64,
}

/// Per-second buckets from a shared start instant.
#[derive(Debug, Clone)]
pub struct Series {
    start: Instant,
    buckets: Vec<Bucket>,
}

impl Series {
    /// An empty series whose second 0 begins at `start`.
    pub fn new(start: Instant) -> Self {
        Series {
            start,
            buckets: Vec::new(),
        }
    }

    fn bucket(&mut self, at: Instant) -> &mut Bucket {
        let i = (at.saturating_duration_since(self.start).as_secs() as usize).min(MAX_SECONDS);
        if self.buckets.len() <= i {
            self.buckets.resize_with(i + 1, Bucket::default);
        }
        &mut self.buckets[i]
    }

    /// Records one received packet of `bytes` at `at`, which grew the expected count by
    /// `expected`, was new (`delivered`) or a duplicate, with its one-way `latency`.
    pub fn record(
        &mut self,
        at: Instant,
        bytes: usize,
        expected: u64,
        delivered: bool,
        latency: Duration,
    ) {
        let b = self.bucket(at);
        b.rx_packets += 1;
        b.rx_bytes += bytes as u64;
        b.expected += expected;
        b.delivered += u64::from(delivered);
        b.latency
            .get_or_insert_with(|| DurationHistogram::with_precision(2))
            .record(latency);
    }

    /// Adds `other`'s buckets into this one (both must share the start instant).
    pub fn merge(&mut self, other: &Series) {
        if self.buckets.len() < other.buckets.len() {
            self.buckets
                .resize_with(other.buckets.len(), Bucket::default);
        }
        for (mine, theirs) in self.buckets.iter_mut().zip(&other.buckets) {
            mine.rx_packets += theirs.rx_packets;
            mine.rx_bytes += theirs.rx_bytes;
            mine.expected += theirs.expected;
            mine.delivered += theirs.delivered;
            if let Some(h) = &theirs.latency {
                mine.latency
                    .get_or_insert_with(|| DurationHistogram::with_precision(2))
                    .merge(h);
            }
        }
    }

    /// The series as points, one per second.
    pub fn points(&self) -> Vec<Point> {
        let ms = |h: Option<&DurationHistogram>, q| {
            h.and_then(|h| h.quantile(q))
                .map_or(0.0, |d: Duration| d.as_secs_f64() * 1000.0)
        };
        self.buckets
            .iter()
            .enumerate()
            .map(|(i, b)| Point {
                t_s: i as u64,
                rx_packets: b.rx_packets,
                rx_bits_per_s: b.rx_bytes * 8,
                loss_pct: if b.expected == 0 {
                    0.0
                } else {
                    (1.0 - b.delivered as f64 / b.expected as f64).max(0.0) * 100.0
                },
                latency_p50_ms: ms(b.latency.as_ref(), 0.5),
                latency_p99_ms: ms(b.latency.as_ref(), 0.99),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_per_second_and_merge() {
        let t0 = Instant::now();
        let mut a = Series::new(t0);
        let mut b = Series::new(t0);
        let ms = Duration::from_millis;
        for i in 0..100 {
            a.record(t0 + ms(i * 10), 100, 1, true, ms(5));
        }
        // Second 1: 10 expected, 9 delivered.
        for i in 0..9 {
            b.record(t0 + ms(1000 + i * 10), 100, 1, true, ms(20));
        }
        b.record(t0 + ms(1500), 0, 1, false, ms(20));
        a.merge(&b);
        let p = a.points();
        assert_eq!(p.len(), 2);
        assert_eq!(
            (p[0].t_s, p[0].rx_packets, p[0].rx_bits_per_s),
            (0, 100, 80_000)
        );
        assert!((p[0].latency_p99_ms - 5.0).abs() < 0.1);
        assert!((p[1].loss_pct - 10.0).abs() < 1e-9);
        assert!((p[1].latency_p50_ms - 20.0).abs() < 0.5);
    }
}
