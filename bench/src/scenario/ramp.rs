//! `--ramp`: subscribers join slowly through the run; the capacity is the number of
//! subscribers connected when loss first exceeded 1 % or p99 latency first exceeded the
//! bound, for two seconds in a row (one bad second is often a keyframe burst), after a
//! warm-up.

use std::time::Instant;

use crate::stats::Point;

/// Loss above which a second counts as failed, percent.
pub const LOSS_THRESHOLD_PCT: f64 = 1.0;

/// How a ramp runs.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct RampConfig {
    /// Peers joined per second.
    pub rate: f64,
    /// p99 one-way latency bound, milliseconds.
    pub p99_bound_ms: f64,
    /// Seconds at the start of the run that are not judged (the relay's bandwidth
    /// estimate ramps up then, and paces every subscriber while it does).
    pub warmup_s: u64,
}

/// What a ramp found.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct RampOutcome {
    /// Whether a threshold was crossed.
    pub crossed: bool,
    /// Subscribers connected before the first failing second (or all, if none failed).
    pub capacity: u64,
    /// Second of the run the threshold was crossed at.
    pub at_s: Option<u64>,
    /// Why: `loss` or `latency`.
    pub reason: Option<String>,
    /// Subscribers that joined in all.
    pub joined: u64,
}

/// Finds the capacity from the subscribers' join instants (sorted) and the per-second
/// series.
pub fn capacity(
    config: &RampConfig,
    start: Instant,
    joined: &[Instant],
    series: &[Point],
) -> RampOutcome {
    let why = |p: &Point| {
        if p.loss_pct > LOSS_THRESHOLD_PCT {
            Some("loss")
        } else if p.latency_p99_ms > config.p99_bound_ms {
            Some("latency")
        } else {
            None
        }
    };
    // Only seconds after the warm-up that carried media count.
    let active: Vec<&Point> = series
        .iter()
        .filter(|p| p.rx_packets > 0 && p.t_s >= config.warmup_s)
        .collect();
    let crossed = active
        .windows(2)
        .find(|w| why(w[0]).is_some() && why(w[1]).is_some() && w[1].t_s == w[0].t_s + 1)
        .map(|w| w[0]);
    let joined_by = |t_s: u64| {
        joined
            .iter()
            .filter(|j| j.saturating_duration_since(start).as_secs() < t_s)
            .count() as u64
    };
    match crossed {
        Some(p) => RampOutcome {
            crossed: true,
            capacity: joined_by(p.t_s),
            at_s: Some(p.t_s),
            reason: why(p).map(str::to_owned),
            joined: joined.len() as u64,
        },
        None => RampOutcome {
            crossed: false,
            capacity: joined.len() as u64,
            at_s: None,
            reason: None,
            joined: joined.len() as u64,
        },
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn point(t_s: u64, loss_pct: f64, p99: f64) -> Point {
        Point {
            t_s,
            rx_packets: 100,
            rx_bits_per_s: 1,
            loss_pct,
            latency_p50_ms: 1.0,
            latency_p99_ms: p99,
        }
    }

    #[test]
    fn capacity_is_the_subscribers_joined_before_two_bad_seconds() {
        let start = Instant::now();
        let joined: Vec<Instant> = (0..100)
            .map(|i| start + Duration::from_millis(i * 100))
            .collect(); // 10 per second
        let mut cfg = RampConfig {
            rate: 10.0,
            p99_bound_ms: 50.0,
            warmup_s: 0,
        };
        let series = vec![
            point(0, 0.0, 5.0),
            point(1, 3.0, 5.0), // one bad second alone does not count
            point(2, 0.0, 5.0),
            point(3, 0.0, 5.0),
            point(4, 0.0, 80.0),
            point(5, 2.0, 90.0),
            point(6, 5.0, 90.0),
        ];
        let out = capacity(&cfg, start, &joined, &series);
        assert!(out.crossed);
        assert_eq!(out.at_s, Some(4));
        assert_eq!(out.capacity, 40);
        assert_eq!(out.reason.as_deref(), Some("latency"));

        let calm: Vec<Point> = (0..5).map(|t| point(t, 0.0, 5.0)).collect();
        let out = capacity(&cfg, start, &joined, &calm);
        assert!(!out.crossed);
        assert_eq!(out.capacity, 100);

        // Bad seconds inside the warm-up are not judged.
        cfg.warmup_s = 6;
        let out = capacity(&cfg, start, &joined, &series);
        assert!(!out.crossed, "{out:?}");
    }
}
