//! Live counters of a [`super::PeerLoop`], read by the progress display while the loop
//! runs.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Counters a loop updates as it goes, for the live progress display.
#[derive(Debug, Default)]
pub struct LiveCounters {
    /// Peers handed to the loop.
    pub added: AtomicU64,
    /// Peers connected (ICE + DTLS).
    pub connected: AtomicU64,
    /// Peers failed.
    pub failed: AtomicU64,
    /// RTP packets sent.
    pub sent_packets: AtomicU64,
    /// RTP packets received (with probes).
    pub rx_packets: AtomicU64,
    /// RTP payload bytes received.
    pub rx_bytes: AtomicU64,
    /// Packets expected by receivers.
    pub expected: AtomicU64,
    /// Distinct packets delivered.
    pub delivered: AtomicU64,
}

/// A point-in-time copy of [`LiveCounters`] (summable over loops).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LiveSnapshot {
    /// See [`LiveCounters::added`].
    pub added: u64,
    /// See [`LiveCounters::connected`].
    pub connected: u64,
    /// See [`LiveCounters::failed`].
    pub failed: u64,
    /// See [`LiveCounters::sent_packets`].
    pub sent_packets: u64,
    /// See [`LiveCounters::rx_packets`].
    pub rx_packets: u64,
    /// See [`LiveCounters::rx_bytes`].
    pub rx_bytes: u64,
    /// See [`LiveCounters::expected`].
    pub expected: u64,
    /// See [`LiveCounters::delivered`].
    pub delivered: u64,
}

impl LiveCounters {
    /// Reads every counter.
    pub fn snapshot(&self) -> LiveSnapshot {
        LiveSnapshot {
            added: self.added.load(Relaxed),
            connected: self.connected.load(Relaxed),
            failed: self.failed.load(Relaxed),
            sent_packets: self.sent_packets.load(Relaxed),
            rx_packets: self.rx_packets.load(Relaxed),
            rx_bytes: self.rx_bytes.load(Relaxed),
            expected: self.expected.load(Relaxed),
            delivered: self.delivered.load(Relaxed),
        }
    }
}

impl std::ops::Add for LiveSnapshot {
    type Output = LiveSnapshot;
    fn add(self, o: LiveSnapshot) -> LiveSnapshot {
        LiveSnapshot {
            added: self.added + o.added,
            connected: self.connected + o.connected,
            failed: self.failed + o.failed,
            sent_packets: self.sent_packets + o.sent_packets,
            rx_packets: self.rx_packets + o.rx_packets,
            rx_bytes: self.rx_bytes + o.rx_bytes,
            expected: self.expected + o.expected,
            delivered: self.delivered + o.delivered,
        }
    }
}
