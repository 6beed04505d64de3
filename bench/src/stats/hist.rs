//! Latency-style histograms (HdrHistogram, microsecond resolution) and their summaries.

use std::time::Duration;

use hdrhistogram::Histogram;

/// Highest value tracked, in microseconds (60 s); larger values saturate.
const MAX_US: u64 = 60_000_000;

/// A histogram of durations with p50/p95/p99/max summaries.
#[derive(Debug, Clone)]
pub struct DurationHistogram {
    inner: Histogram<u64>,
}

impl Default for DurationHistogram {
    fn default() -> Self {
        Self::with_precision(3)
    }
}

impl DurationHistogram {
    /// A histogram keeping `sigfig` significant decimal digits (1..=5).
    pub fn with_precision(sigfig: u8) -> Self {
        let inner = Histogram::new_with_bounds(1, MAX_US, sigfig.clamp(1, 5))
            .expect("1 µs..60 s with 1..=5 significant digits are valid bounds");
        DurationHistogram { inner }
    }

    /// Records one duration (clamped to 1 µs..60 s).
    pub fn record(&mut self, d: Duration) {
        let us = u64::try_from(d.as_micros())
            .unwrap_or(u64::MAX)
            .clamp(1, MAX_US);
        self.inner.saturating_record(us);
    }

    /// Adds every sample of `other`.
    pub fn merge(&mut self, other: &DurationHistogram) {
        // Same bounds everywhere in this crate, so `add` cannot fail on range; if it
        // somehow does, fall back to re-recording each bucket.
        if self.inner.add(&other.inner).is_err() {
            for v in other.inner.iter_recorded() {
                let _ = self
                    .inner
                    .record_n(v.value_iterated_to().min(MAX_US), v.count_at_value());
            }
        }
    }

    /// Number of samples.
    pub fn count(&self) -> u64 {
        self.inner.len()
    }

    /// The value at quantile `q` (0..=1), `None` when empty.
    pub fn quantile(&self, q: f64) -> Option<Duration> {
        (!self.inner.is_empty()).then(|| Duration::from_micros(self.inner.value_at_quantile(q)))
    }

    /// Count and p50/p95/p99/max in milliseconds.
    pub fn summary(&self) -> Summary {
        let ms = |us: u64| us as f64 / 1000.0;
        if self.inner.is_empty() {
            return Summary::default();
        }
        Summary {
            count: self.inner.len(),
            p50_ms: ms(self.inner.value_at_quantile(0.50)),
            p95_ms: ms(self.inner.value_at_quantile(0.95)),
            p99_ms: ms(self.inner.value_at_quantile(0.99)),
            max_ms: ms(self.inner.max()),
            mean_ms: self.inner.mean() / 1000.0,
        }
    }
}

/// Summary of a [`DurationHistogram`], in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct Summary {
    /// Samples.
    pub count: u64,
    /// Median.
    pub p50_ms: f64,
    /// 95th percentile.
    pub p95_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Largest sample.
    pub max_ms: f64,
    /// Mean.
    pub mean_ms: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_of_a_known_distribution() {
        let mut h = DurationHistogram::default();
        for ms in 1..=100 {
            h.record(Duration::from_millis(ms));
        }
        let s = h.summary();
        assert_eq!(s.count, 100);
        assert!((s.p50_ms - 50.0).abs() < 0.1, "{s:?}");
        assert!((s.p95_ms - 95.0).abs() < 0.1, "{s:?}");
        assert!((s.p99_ms - 99.0).abs() < 0.1, "{s:?}");
        assert!((s.max_ms - 100.0).abs() < 0.1, "{s:?}");
    }

    #[test]
    fn merging_combines_samples() {
        let mut a = DurationHistogram::default();
        let mut b = DurationHistogram::default();
        a.record(Duration::from_millis(10));
        b.record(Duration::from_millis(30));
        b.record(Duration::from_secs(3600)); // saturates at 60 s
        a.merge(&b);
        let s = a.summary();
        assert_eq!(s.count, 3);
        assert!((s.max_ms - 60_000.0).abs() < 60.0, "{s:?}");
        assert_eq!(DurationHistogram::default().summary(), Summary::default());
    }
}
