//! [`Meter`]: the harness's measurement of the SFU's own work, for the
//! `fanout_cpu` benchmark. The caller supplies the clocks (the core never
//! reads one).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

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
    /// Per datagram handed out as for `copy_latency`, but on a model of a
    /// relay with a core of its own that runs in real time: each metered SFU
    /// call starts at its virtual instant or when the previous call ended,
    /// whichever is later, and lasts the CPU time it took here (a copy's
    /// offset in the call is its wall offset scaled by the call's CPU/wall
    /// ratio, so time the thread waited for a shared core does not count).
    /// So a copy also waits for whatever work arrived before it and is not
    /// done yet (the queueing a saturated core adds).
    pub queued_latency: Vec<Duration>,
    /// Arrival wall times of publisher datagrams not yet polled out.
    awaiting: Vec<Duration>,
    /// Their virtual arrival instants.
    awaiting_at: Vec<Instant>,
    /// Model time at which the relay's core finished the last call.
    busy_until: Option<Instant>,
    /// The current call: its model start and the CPU and wall time it began.
    call: Option<(Instant, Duration, Duration)>,
    /// Copies handed out in the current call: wall offset into the call,
    /// virtual arrival of the oldest awaiting publisher datagram.
    pending: Vec<(Duration, Instant)>,
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
            queued_latency: Vec::new(),
            awaiting: Vec::new(),
            awaiting_at: Vec::new(),
            busy_until: None,
            call: None,
            pending: Vec::new(),
        }
    }

    /// Reads both clocks: the start of a metered SFU call.
    pub(super) fn start(&self) -> (Duration, Duration) {
        ((self.cpu)(), (self.wall)())
    }

    /// Starts a metered SFU call made at virtual instant `now`.
    pub(super) fn begin(&mut self, now: Instant) -> (Duration, Duration) {
        let t0 = self.start();
        let at = self.busy_until.map_or(now, |b| b.max(now));
        self.call = Some((at, t0.0, t0.1));
        t0
    }

    /// When the modelled core finishes the work handed in so far.
    pub(super) fn busy_until(&self) -> Option<Instant> {
        self.busy_until
    }

    /// Adds the time since `start`.
    pub(super) fn stop(&mut self, start: (Duration, Duration)) {
        let (cpu, wall) = self.start();
        self.total_cpu += cpu.saturating_sub(start.0);
        self.total_wall += wall.saturating_sub(start.1);
        if let Some((at, cpu0, wall0)) = self.call.take() {
            let cpu = cpu.saturating_sub(cpu0);
            let wall = wall.saturating_sub(wall0);
            let ratio = if wall.is_zero() {
                1.0
            } else {
                (cpu.as_secs_f64() / wall.as_secs_f64()).min(1.0)
            };
            for (offset, arrived) in self.pending.drain(..) {
                let done = at + offset.mul_f64(ratio);
                self.queued_latency
                    .push(done.saturating_duration_since(arrived));
            }
            self.busy_until = Some(at + cpu);
        }
    }

    /// Reads the wall clock.
    pub(super) fn now(&self) -> Duration {
        (self.wall)()
    }

    /// A publisher datagram arrived at wall time `at`, virtual instant `now`.
    pub(super) fn arrived(&mut self, at: Duration, now: Instant) {
        self.awaiting.push(at);
        self.awaiting_at.push(now);
    }

    /// The SFU handed out a datagram.
    pub(super) fn copied(&mut self) {
        if let Some(&first) = self.awaiting.first() {
            let now = (self.wall)();
            self.copy_latency.push(now.saturating_sub(first));
            if let (Some(&arrived), Some((_, _, wall0))) = (self.awaiting_at.first(), self.call) {
                self.pending.push((now.saturating_sub(wall0), arrived));
            }
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
        self.awaiting_at.clear();
    }
}
