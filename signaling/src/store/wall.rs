//! [`WallClock`]: converts this process's [`Instant`]s to Unix time and back,
//! so that times stored in Redis mean the same on every node.
//!
//! The service's clock is an [`Instant`] (tokio's, or a manual one in
//! tests), which means nothing to another process. A `WallClock` pins one
//! `Instant` to the system time once; every conversion is an offset from
//! that pair, so a time round-trips exactly within a process (to the
//! nanosecond) and agrees across nodes as well as their clocks do (NTP).

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// One `Instant` ⇄ Unix time pairing. Cheap to copy.
#[derive(Debug, Clone, Copy)]
pub struct WallClock {
    base: Instant,
    base_unix_nanos: i64,
}

impl Default for WallClock {
    fn default() -> Self {
        Self::new()
    }
}

impl WallClock {
    /// Pins `Instant::now()` to the current system time.
    pub fn new() -> Self {
        Self::pinned(Instant::now(), SystemTime::now())
    }

    /// Pins `base` to `at` (for tests).
    pub fn pinned(base: Instant, at: SystemTime) -> Self {
        let nanos = at
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX));
        Self {
            base,
            base_unix_nanos: nanos,
        }
    }

    /// `at` as nanoseconds since the Unix epoch (good until 2262).
    pub fn to_unix_nanos(&self, at: Instant) -> i64 {
        let signed = |d: Duration| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX);
        if at >= self.base {
            self.base_unix_nanos
                .saturating_add(signed(at.duration_since(self.base)))
        } else {
            self.base_unix_nanos
                .saturating_sub(signed(self.base.duration_since(at)))
        }
    }

    /// `at` as microseconds since the Unix epoch (what Lua scripts compare:
    /// their numbers are doubles, exact to 2^53).
    pub fn to_unix_micros(&self, at: Instant) -> i64 {
        self.to_unix_nanos(at) / 1000
    }

    /// The `Instant` of a Unix time in nanoseconds (clamped to what an
    /// `Instant` can hold on this machine).
    pub fn from_unix_nanos(&self, nanos: i64) -> Instant {
        let offset = nanos.saturating_sub(self.base_unix_nanos);
        let d = Duration::from_nanos(offset.unsigned_abs());
        if offset >= 0 {
            self.base.checked_add(d).unwrap_or(self.base)
        } else {
            self.base.checked_sub(d).unwrap_or(self.base)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_to_the_nanosecond_both_sides_of_the_base() {
        let base = Instant::now();
        let w = WallClock::pinned(base, UNIX_EPOCH + Duration::from_secs(1_700_000_000));
        for at in [
            base,
            base + Duration::from_nanos(1),
            base + Duration::from_secs(3600),
            base.checked_sub(Duration::from_millis(5)).unwrap_or(base),
        ] {
            assert_eq!(w.from_unix_nanos(w.to_unix_nanos(at)), at);
        }
        assert_eq!(
            w.to_unix_micros(base + Duration::from_secs(2)),
            1_700_000_002_000_000
        );
    }

    #[test]
    fn two_clocks_agree_on_wall_time() {
        // Two "nodes" pinned at different instants to the same wall time line.
        let t = Instant::now();
        let a = WallClock::pinned(t, UNIX_EPOCH + Duration::from_secs(1000));
        let b = WallClock::pinned(
            t + Duration::from_secs(7),
            UNIX_EPOCH + Duration::from_secs(1007),
        );
        let at = t + Duration::from_secs(30);
        assert_eq!(a.to_unix_nanos(at), b.to_unix_nanos(at));
    }
}
