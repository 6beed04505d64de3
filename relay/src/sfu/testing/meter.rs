//! [`Meter`]: the harness's measurement of the SFU's own work, for the
//! `fanout_cpu` benchmark. The caller supplies the clocks (the core never
//! reads one).

use std::net::SocketAddr;
use std::time::Duration;

/// Measures the SFU's share of the work: CPU and wall time inside every SFU
/// call, and the forwarding latency of one publisher's datagrams.
#[derive(Debug)]
pub struct Meter {
    /// Reads the current thread's CPU time.
    pub cpu: fn() -> Duration,
    /// Reads a monotonic wall clock.
    pub wall: fn() -> Duration,
    /// CPU time spent inside the SFU (receive, timeout, poll).
    pub total_cpu: Duration,
    /// Wall time spent inside the SFU.
    pub total_wall: Duration,
    /// Whose datagrams' latency is measured.
    pub publisher: Option<SocketAddr>,
    /// Per datagram from `publisher`: wall time from its arrival (the start
    /// of the delivery batch it came in, or of its own delivery when the
    /// harness delivers one by one) until the SFU was polled empty after it,
    /// i.e. until every subscriber copy of it was ready to send.
    pub latency: Vec<Duration>,
    /// Per datagram the SFU handed out while publisher datagrams were
    /// awaiting (their copies, and the little else sent meanwhile): wall
    /// time from the arrival of the oldest awaiting one until the SFU handed
    /// it out. The driver sends each datagram as it is handed out, so this
    /// is the relay's added latency per copy (without the send itself).
    pub copy_latency: Vec<Duration>,
    /// Arrival wall times of publisher datagrams not yet polled out.
    awaiting: Vec<Duration>,
}

impl Meter {
    /// A meter with these clocks, measuring the latency of `publisher`'s datagrams.
    pub fn new(
        cpu: fn() -> Duration,
        wall: fn() -> Duration,
        publisher: Option<SocketAddr>,
    ) -> Self {
        Self {
            cpu,
            wall,
            total_cpu: Duration::ZERO,
            total_wall: Duration::ZERO,
            publisher,
            latency: Vec::new(),
            copy_latency: Vec::new(),
            awaiting: Vec::new(),
        }
    }

    /// Reads both clocks: the start of a metered SFU call.
    pub(super) fn start(&self) -> (Duration, Duration) {
        ((self.cpu)(), (self.wall)())
    }

    /// Adds the time since `start`.
    pub(super) fn stop(&mut self, start: (Duration, Duration)) {
        let (cpu, wall) = self.start();
        self.total_cpu += cpu.saturating_sub(start.0);
        self.total_wall += wall.saturating_sub(start.1);
    }

    /// Reads the wall clock.
    pub(super) fn now(&self) -> Duration {
        (self.wall)()
    }

    /// A publisher datagram arrived at wall time `at`.
    pub(super) fn arrived(&mut self, at: Duration) {
        self.awaiting.push(at);
    }

    /// The SFU handed out a datagram.
    pub(super) fn copied(&mut self) {
        if let Some(&first) = self.awaiting.first() {
            let now = (self.wall)();
            self.copy_latency.push(now.saturating_sub(first));
        }
    }

    /// The SFU was just polled empty: every datagram handed in so far is
    /// forwarded.
    pub(super) fn polled(&mut self) {
        if self.awaiting.is_empty() {
            return;
        }
        let now = (self.wall)();
        self.latency
            .extend(self.awaiting.drain(..).map(|t| now.saturating_sub(t)));
    }
}
