//! Gap arithmetic for the failover tests: from a relay kill to the first packet on the
//! new relay, and percentiles over many kills.

use std::time::{Duration, Instant};

use crate::media::RxPacket;

/// The gap from `kill` to the first packet from `from` that arrived over a relay other
/// than `dead` after `kill`, or `None` if there is none yet.
pub fn resume_gap(packets: &[RxPacket], from: &str, dead: &str, kill: Instant) -> Option<Duration> {
    packets
        .iter()
        .filter(|p| p.from == from && p.relay != dead && p.at >= kill)
        .map(|p| p.at - kill)
        .min()
}

/// The longest silence between consecutive packets from `from` in `[start, end]`
/// (also counting from `start` to the first and from the last to `end`).
pub fn longest_silence(packets: &[RxPacket], from: &str, start: Instant, end: Instant) -> Duration {
    let mut times: Vec<Instant> = packets
        .iter()
        .filter(|p| p.from == from && p.at >= start && p.at <= end)
        .map(|p| p.at)
        .collect();
    times.sort();
    let mut last = start;
    let mut worst = Duration::ZERO;
    for t in times {
        worst = worst.max(t - last);
        last = t;
    }
    worst.max(end.saturating_duration_since(last))
}

/// Nearest-rank percentile (`q` in 0..=1) of `values`; `None` if empty.
pub fn percentile(values: &[Duration], q: f64) -> Option<Duration> {
    if values.is_empty() {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort();
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted.get(rank - 1).copied()
}

/// `p50 / p95 / max` of `values` in milliseconds, for reports.
pub fn summary(values: &[Duration]) -> String {
    let ms = |d: Option<Duration>| d.map_or(f64::NAN, |d| d.as_secs_f64() * 1000.0);
    format!(
        "n={} p50={:.0} ms p95={:.0} ms max={:.0} ms",
        values.len(),
        ms(percentile(values, 0.5)),
        ms(percentile(values, 0.95)),
        ms(values.iter().max().copied()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::Kind;

    fn packet(at: Instant, from: &str, relay: &str) -> RxPacket {
        RxPacket {
            at,
            generation: 0,
            relay: relay.into(),
            from: from.into(),
            kind: Kind::Audio,
            number: 0,
        }
    }

    #[test]
    fn gaps_and_percentiles() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let packets = vec![
            packet(t0, "a", "r1"),
            packet(t0 + ms(100), "a", "r1"),
            packet(t0 + ms(700), "b", "r2"),
            packet(t0 + ms(900), "a", "r2"),
            packet(t0 + ms(950), "a", "r2"),
        ];
        assert_eq!(resume_gap(&packets, "a", "r1", t0 + ms(50)), Some(ms(850)));
        assert_eq!(resume_gap(&packets, "c", "r1", t0), None);
        assert_eq!(longest_silence(&packets, "a", t0, t0 + ms(1000)), ms(800));
        let v: Vec<Duration> = (1..=20).map(ms).collect();
        assert_eq!(percentile(&v, 0.5), Some(ms(10)));
        assert_eq!(percentile(&v, 0.95), Some(ms(19)));
        assert_eq!(percentile(&[], 0.5), None);
    }
}
