//! One waiting room's queue inside the lobby: the order of waiting seats, the
//! seats in consultation, and the service-time statistics behind the
//! estimated wait.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use protocol::{ParticipantId, TenantId};

/// A waiting room's live state.
#[derive(Debug)]
pub(crate) struct RoomQueue {
    /// The organisation owning the room (checked on every clinician action).
    pub tenant: TenantId,
    /// Display name, refreshed from the directory on every join.
    pub name: String,
    /// Whether patients are told their position.
    pub hide_position: bool,
    /// Waiting seats, head = next.
    pub waiting: VecDeque<ParticipantId>,
    /// Seats in consultation, in admission order.
    pub consulting: Vec<ParticipantId>,
    /// Recent service times.
    pub stats: ServiceStats,
}

impl RoomQueue {
    pub fn new(tenant: TenantId, name: String, hide_position: bool, window: usize) -> Self {
        Self {
            tenant,
            name,
            hide_position,
            waiting: VecDeque::new(),
            consulting: Vec::new(),
            stats: ServiceStats::new(window),
        }
    }

    /// 1-based position of a waiting seat (O(n)).
    pub fn position(&self, p: &ParticipantId) -> Option<u32> {
        self.waiting
            .iter()
            .position(|x| x == p)
            .map(|i| u32::try_from(i + 1).unwrap_or(u32::MAX))
    }

    /// Removes a seat from whichever list holds it; true if it was waiting.
    pub fn remove(&mut self, p: &ParticipantId) -> bool {
        if let Some(i) = self.waiting.iter().position(|x| x == p) {
            self.waiting.remove(i);
            return true;
        }
        self.consulting.retain(|x| x != p);
        false
    }

    pub fn is_empty(&self) -> bool {
        self.waiting.is_empty() && self.consulting.is_empty()
    }
}

/// Moving average of the room's recent service times.
///
/// A sample is the time from when the admitted patient became available
/// (joined the queue, or the previous admission if later) to their admission:
/// with a busy queue this is the time clinicians took per patient, and it
/// shrinks by itself when several clinicians admit in parallel. The estimated
/// wait of position `p` is `p × average`.
#[derive(Debug)]
pub(crate) struct ServiceStats {
    window: usize,
    recent: VecDeque<Duration>,
    sum: Duration,
    last_admit: Option<Instant>,
}

impl ServiceStats {
    pub fn new(window: usize) -> Self {
        Self {
            window: window.max(1),
            recent: VecDeque::new(),
            sum: Duration::ZERO,
            last_admit: None,
        }
    }

    /// Records an admission at `now` of a patient queued since `queued_at`.
    pub fn record(&mut self, queued_at: Instant, now: Instant) {
        let from = match self.last_admit {
            Some(last) if last > queued_at => last,
            _ => queued_at,
        };
        let sample = now.saturating_duration_since(from);
        self.recent.push_back(sample);
        self.sum += sample;
        if self.recent.len() > self.window
            && let Some(old) = self.recent.pop_front()
        {
            self.sum = self.sum.saturating_sub(old);
        }
        self.last_admit = Some(now);
    }

    /// The average service time, or `default` before the first admission.
    pub fn average(&self, default: Duration) -> Duration {
        match u32::try_from(self.recent.len()) {
            Ok(n) if n > 0 => self.sum / n,
            _ => default,
        }
    }

    /// Estimated wait in whole seconds for a 1-based position.
    pub fn estimate_secs(&self, position: u32, default: Duration) -> u64 {
        (self.average(default) * position).as_secs()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn average_is_a_moving_window_with_a_default() {
        let t0 = Instant::now();
        let d = Duration::from_secs(300);
        let mut s = ServiceStats::new(2);
        assert_eq!(s.average(d), d);
        assert_eq!(s.estimate_secs(3, d), 900);
        // Queued at t0, admitted at +60 s: 60 s.
        s.record(t0, t0 + Duration::from_secs(60));
        assert_eq!(s.average(d), Duration::from_secs(60));
        // Also queued at t0, admitted 20 s after the previous admission: 20 s.
        s.record(t0, t0 + Duration::from_secs(80));
        assert_eq!(s.average(d), Duration::from_secs(40));
        // The window keeps the last two samples only.
        s.record(t0, t0 + Duration::from_secs(180));
        assert_eq!(s.average(d), Duration::from_secs(60));
        assert_eq!(s.estimate_secs(2, d), 120);
    }
}
