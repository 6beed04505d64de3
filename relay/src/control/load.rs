//! Load figures for the heartbeat that need a previous sample: process CPU
//! (from `/proc/self/stat`) and forwarded packets per second.

use std::time::Instant;

/// Clock ticks per second of `/proc/<pid>/stat` times (`USER_HZ`, 100 on Linux).
const USER_HZ: f64 = 100.0;

/// Parses the user plus system CPU time, in clock ticks, from the contents of
/// `/proc/<pid>/stat`.
pub fn parse_proc_stat_ticks(stat: &str) -> Option<u64> {
    // The command name (field 2) is in parentheses and may contain spaces:
    // fields after the last ')' start at field 3 (state).
    let rest = stat.get(stat.rfind(')')? + 1..)?;
    let mut fields = rest.split_ascii_whitespace();
    let utime: u64 = fields.nth(11)?.parse().ok()?; // field 14
    let stime: u64 = fields.next()?.parse().ok()?; // field 15
    Some(utime + stime)
}

/// Turns cumulative counters into per-second rates between samples.
#[derive(Debug, Default)]
pub struct LoadSampler {
    cpu: Option<(Instant, u64)>,
    packets: Option<(Instant, u64)>,
}

impl LoadSampler {
    /// Process CPU use in percent of one core since the last call; 0 on the
    /// first call or where `/proc` is unavailable.
    pub fn cpu_percent(&mut self, now: Instant) -> f32 {
        let ticks = std::fs::read_to_string("/proc/self/stat")
            .ok()
            .and_then(|s| parse_proc_stat_ticks(&s));
        ticks.map_or(0.0, |t| self.cpu_percent_from(now, t))
    }

    /// [`Self::cpu_percent`] with the tick count given.
    pub fn cpu_percent_from(&mut self, now: Instant, ticks: u64) -> f32 {
        let previous = self.cpu.replace((now, ticks));
        let Some((then, before)) = previous else {
            return 0.0;
        };
        let wall = now.saturating_duration_since(then).as_secs_f64();
        if wall <= 0.0 {
            return 0.0;
        }
        let cpu = ticks.saturating_sub(before) as f64 / USER_HZ;
        (cpu / wall * 100.0) as f32
    }

    /// Packets per second since the last call, from a cumulative count.
    pub fn packets_per_sec(&mut self, now: Instant, total: u64) -> u64 {
        let previous = self.packets.replace((now, total));
        let Some((then, before)) = previous else {
            return 0;
        };
        let wall = now.saturating_duration_since(then).as_secs_f64();
        if wall <= 0.0 {
            return 0;
        }
        (total.saturating_sub(before) as f64 / wall).round() as u64
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn parses_proc_stat_even_with_odd_command_names() {
        let stat = "1234 (relay (w) 1) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 9 0";
        assert_eq!(parse_proc_stat_ticks(stat), Some(300));
        assert_eq!(parse_proc_stat_ticks("garbage"), None);
        assert_eq!(parse_proc_stat_ticks("1 (x) S 1 2"), None);
    }

    #[test]
    fn reads_this_process() {
        let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
        assert!(parse_proc_stat_ticks(&stat).is_some());
    }

    #[test]
    #[allow(clippy::disallowed_methods, clippy::float_cmp)]
    fn rates_come_from_differences() {
        let mut s = LoadSampler::default();
        let t0 = Instant::now();
        assert_eq!(s.cpu_percent_from(t0, 1_000), 0.0);
        let pct = s.cpu_percent_from(t0 + Duration::from_secs(2), 1_100);
        assert!((pct - 50.0).abs() < 0.01, "{pct}");
        assert_eq!(s.packets_per_sec(t0, 10), 0);
        assert_eq!(
            s.packets_per_sec(t0 + Duration::from_millis(500), 1_010),
            2_000
        );
    }
}
