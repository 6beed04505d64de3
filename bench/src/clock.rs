//! Shared time base and the process CPU clock.
//!
//! Probes carry send timestamps as nanoseconds since one process-wide monotonic
//! [`epoch`], so a receiver in the same process computes one-way latency by subtracting
//! two readings of the same clock. CPU time comes from `/proc/self/stat`.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

static EPOCH: OnceLock<Instant> = OnceLock::new();

/// The process-wide monotonic epoch all probe timestamps are relative to.
pub fn epoch() -> Instant {
    *EPOCH.get_or_init(Instant::now)
}

/// Nanoseconds from the [`epoch`] to `t` (0 if `t` is before it).
pub fn ns_since_epoch(t: Instant) -> u64 {
    u64::try_from(t.saturating_duration_since(epoch()).as_nanos()).unwrap_or(u64::MAX)
}

/// The instant `ns` nanoseconds after the [`epoch`].
pub fn instant_from_ns(ns: u64) -> Instant {
    epoch() + Duration::from_nanos(ns)
}

/// Linux exports CPU times in `/proc` in USER_HZ units, which is 100 on every
/// architecture Rust supports (it is fixed by the kernel ABI, unlike the kernel HZ).
const USER_HZ: u64 = 100;

/// User + system CPU time this process has used so far, from `/proc/self/stat`.
///
/// Resolution is 10 ms; measure over seconds. Returns `None` where `/proc` is missing.
pub fn process_cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    parse_cpu_time(&stat)
}

/// User + system CPU time process `pid` has used so far (e.g. a local relay), from
/// `/proc/<pid>/stat`. `None` if the process is gone or `/proc` is missing.
pub fn cpu_time_of_pid(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_cpu_time(&stat)
}

/// Parses utime + stime out of a `/proc/<pid>/stat` line.
///
/// The command name (field 2) may contain spaces and parentheses, so fields are counted
/// from the last `)`: after it come state (field 3) ... utime (14), stime (15).
pub fn parse_cpu_time(stat: &str) -> Option<Duration> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_ascii_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    let ticks = utime.checked_add(stime)?;
    Some(Duration::from_millis(ticks.checked_mul(1000 / USER_HZ)?))
}

/// Serialises a duration as fractional milliseconds (for `#[serde(serialize_with)]`).
pub(crate) fn serialize_ms<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64() * 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_utime_and_stime_even_with_odd_command_names() {
        let line = "1234 (a b) c) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 1 0 1 1 1";
        assert_eq!(parse_cpu_time(line), Some(Duration::from_secs(3)));
        assert_eq!(parse_cpu_time("garbage"), None);
    }

    #[test]
    fn own_cpu_time_is_readable() {
        assert!(process_cpu_time().is_some());
        assert!(cpu_time_of_pid(std::process::id()).is_some());
        assert_eq!(cpu_time_of_pid(u32::MAX), None);
    }

    #[test]
    fn epoch_round_trips() {
        let t = epoch() + Duration::from_millis(5);
        assert_eq!(ns_since_epoch(t), 5_000_000);
        assert_eq!(instant_from_ns(5_000_000), t);
    }
}
