//! Counters a worker shares with the control and metrics tasks: lock-free
//! atomics for the per-packet figures, and a snapshot of the core's own
//! statistics refreshed a few times a second.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use protocol::RoomId;

use crate::sfu::SfuStats;

/// Upper bounds (microseconds) of the worker loop-time histogram buckets.
pub const LOOP_BUCKETS_US: [u64; 8] = [10, 50, 100, 250, 500, 1_000, 5_000, 25_000];

/// One worker's shared counters.
#[derive(Debug, Default)]
pub struct WorkerStats {
    /// Datagrams taken off the socket (the core counts them again, with bytes).
    pub datagrams_in: AtomicU64,
    /// Receive batches (`recvmmsg` calls that returned data).
    pub recv_batches: AtomicU64,
    /// Datagrams the operating system refused to send.
    pub send_errors: AtomicU64,
    /// Set when the worker's loop has ended.
    pub stopped: AtomicBool,
    loop_buckets: [AtomicU64; LOOP_BUCKETS_US.len() + 1],
    loop_sum_ns: AtomicU64,
    snapshot: Mutex<Snapshot>,
}

/// The core's statistics and rooms, as last published by the worker.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// The core's counters and gauges.
    pub sfu: SfuStats,
    /// The rooms the worker carries.
    pub rooms: Vec<RoomId>,
}

impl WorkerStats {
    /// Counts one receive batch of `datagrams`.
    pub fn received_batch(&self, datagrams: usize) {
        self.recv_batches.fetch_add(1, Ordering::Relaxed);
        self.datagrams_in
            .fetch_add(datagrams as u64, Ordering::Relaxed);
    }

    /// Records the time one loop iteration (input plus output drain) took.
    pub fn loop_time(&self, took: Duration) {
        let us = took.as_micros() as u64;
        let bucket = LOOP_BUCKETS_US
            .iter()
            .position(|&b| us <= b)
            .unwrap_or(LOOP_BUCKETS_US.len());
        if let Some(b) = self.loop_buckets.get(bucket) {
            b.fetch_add(1, Ordering::Relaxed);
        }
        self.loop_sum_ns
            .fetch_add(took.as_nanos() as u64, Ordering::Relaxed);
    }

    /// Loop-time histogram: per-bucket counts (not cumulative; the last is
    /// `+Inf`) and the sum in seconds.
    pub fn loop_histogram(&self) -> (Vec<u64>, f64) {
        let counts = self
            .loop_buckets
            .iter()
            .map(|b| b.load(Ordering::Relaxed))
            .collect();
        let sum = self.loop_sum_ns.load(Ordering::Relaxed) as f64 / 1e9;
        (counts, sum)
    }

    /// Publishes the core's statistics.
    pub fn publish(&self, snapshot: Snapshot) {
        if let Ok(mut s) = self.snapshot.lock() {
            *s = snapshot;
        }
    }

    /// The last published statistics.
    pub fn snapshot(&self) -> Snapshot {
        self.snapshot.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loop_times_land_in_their_buckets() {
        let s = WorkerStats::default();
        s.loop_time(Duration::from_micros(5));
        s.loop_time(Duration::from_micros(60));
        s.loop_time(Duration::from_secs(1));
        let (counts, sum) = s.loop_histogram();
        assert_eq!(counts[0], 1);
        assert_eq!(counts[2], 1);
        assert_eq!(counts[LOOP_BUCKETS_US.len()], 1);
        assert!((sum - 1.000_065).abs() < 1e-9);
    }
}
