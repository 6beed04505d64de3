//! [`FailoverOutcome`]: what a relay kill did to the subscribers, from their gaps.

use std::time::Duration;

/// What the kill did to the subscribers.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct FailoverOutcome {
    /// Subscribers that were receiving media from relay A when it was killed.
    pub affected: u64,
    /// Of those, how many received media again through relay B before the end.
    pub recovered: u64,
    /// Kill → relay A's control connection closed (what signaling notices), ms.
    pub detect_ms: f64,
    /// Kill → every participant's offer sent to relay B answered, ms.
    pub replaced_ms: f64,
    /// Media gap (kill → first packet via relay B) of recovered subscribers, ms.
    pub gap_p50_ms: Option<f64>,
    /// 95th percentile of the gap, ms.
    pub gap_p95_ms: Option<f64>,
    /// Longest gap, ms.
    pub gap_max_ms: Option<f64>,
    /// How the relay was killed: `SIGKILL` or `command`.
    pub kill: &'static str,
}

impl FailoverOutcome {
    /// Builds the outcome from each affected subscriber's gap (`None`: not recovered).
    pub fn from_gaps(gaps: &[Option<Duration>], detect: Duration, replaced: Duration) -> Self {
        let mut got: Vec<f64> = gaps
            .iter()
            .flatten()
            .map(|d| d.as_secs_f64() * 1000.0)
            .collect();
        got.sort_by(f64::total_cmp);
        let rank = |q: f64| {
            let n = got.len();
            (n > 0).then(|| {
                let i = ((q * n as f64).ceil() as usize).clamp(1, n) - 1;
                got.get(i).copied().unwrap_or_default()
            })
        };
        FailoverOutcome {
            affected: gaps.len() as u64,
            recovered: got.len() as u64,
            detect_ms: detect.as_secs_f64() * 1000.0,
            replaced_ms: replaced.as_secs_f64() * 1000.0,
            gap_p50_ms: rank(0.5),
            gap_p95_ms: rank(0.95),
            gap_max_ms: got.last().copied(),
            kill: "SIGKILL",
        }
    }

    /// The table lines printed under the run's report.
    pub fn table(&self) -> String {
        let ms = |v: Option<f64>| v.map_or_else(|| "-".to_owned(), |v| format!("{v:.0} ms"));
        format!(
            "failover ({kill})\n  subscribers affected  {a}\n  recovered on relay B  {r}\n  \
             detected after        {d:.0} ms\n  re-placed after       {p:.0} ms\n  \
             media gap p50/p95/max {p50} / {p95} / {max}",
            kill = self.kill,
            a = self.affected,
            r = self.recovered,
            d = self.detect_ms,
            p = self.replaced_ms,
            p50 = ms(self.gap_p50_ms),
            p95 = ms(self.gap_p95_ms),
            max = ms(self.gap_max_ms),
        )
    }
}
