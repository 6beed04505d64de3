//! Paced arrival for the harness: one source's datagrams to the SFU are
//! held back and handed in one at a time, a fixed gap apart in virtual
//! time, as a publisher's pacer spreads a video frame (browsers send a
//! frame's packets at about 2.5× the media rate, not all at one instant).
//! A held datagram is handed in once it is due and the (metered) relay is
//! free: see [`Harness::release_paced`].

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::{Datagram, Harness, Meter};

/// Held-back datagrams of one source.
#[derive(Debug)]
pub(super) struct Pacing {
    source: SocketAddr,
    gap: Duration,
    /// Release instant and datagram, in order.
    held: VecDeque<(Instant, Datagram)>,
}

impl Harness {
    /// Hands `source`'s datagrams to the SFU one at a time, `gap` apart
    /// (virtual time), each followed by a poll of the SFU.
    pub fn set_pacing(&mut self, source: SocketAddr, gap: Duration) {
        self.pace = Some(Pacing {
            source,
            gap,
            held: VecDeque::new(),
        });
    }

    /// Keeps the paced source's datagrams back; returns the others.
    pub(super) fn hold_paced(&mut self, to_sfu: Vec<Datagram>) -> Vec<Datagram> {
        let now = self.now;
        let Some(pace) = &mut self.pace else {
            return to_sfu;
        };
        let (held, rest): (Vec<Datagram>, Vec<Datagram>) =
            to_sfu.into_iter().partition(|d| d.source == pace.source);
        for d in held {
            let at = pace
                .held
                .back()
                .map_or(now, |(t, _)| (*t + pace.gap).max(now));
            pace.held.push_back((at, d));
        }
        rest
    }

    /// Hands in, as one batch, every held datagram that is due, then polls
    /// the SFU. With a meter, "due" is on its model of the relay's core: a
    /// core still busy with earlier work reads, when it is done, everything
    /// that arrived meanwhile in one batch (as a driver's `recvmmsg` does),
    /// so a relay that falls behind batches more.
    pub(super) fn release_paced(&mut self) {
        let ready = self
            .meter
            .as_ref()
            .and_then(Meter::busy_until)
            .map_or(self.now, |b| b.max(self.now));
        let Some(pace) = &mut self.pace else { return };
        let mut batch = Vec::new();
        let mut arrivals = Vec::new();
        while pace.held.front().is_some_and(|(at, _)| *at <= ready) {
            if let Some((at, d)) = pace.held.pop_front() {
                arrivals.push(at);
                batch.push(d);
            }
        }
        if !batch.is_empty() {
            self.deliver_to_sfu(&batch, &arrivals);
            self.sfu_timeout();
        }
    }

    /// When the next held datagram is due.
    pub(super) fn next_paced(&self) -> Option<Instant> {
        self.pace.as_ref()?.held.front().map(|(at, _)| *at)
    }
}
