//! Datagram routing, draining each `Rtc`, timers and [`Sfu::poll_output`].
//!
//! A datagram's source address maps to its participant in one hash lookup.
//! A new address is only learnt from a STUN binding request whose USERNAME
//! names a participant's ICE ufrag *and* whose MESSAGE-INTEGRITY verifies
//! with that participant's password, so forged STUN neither reaches an `Rtc`
//! nor grows the address map.

use std::net::SocketAddr;
use std::time::Instant;

use str0m::ice::StunMessage;
use str0m::net::{Protocol, Receive};
use str0m::{Input, Output as RtcOutput};

use super::Sfu;
use super::participant::MAX_ADDRS;
use super::slab::PKey;
use super::types::{DropReason, LeaveReason, Output, Transmit};

/// Immediate re-polls of one `Rtc` before deferring to the timer set.
const MAX_IMMEDIATE: usize = 64;

impl Sfu {
    /// A datagram arrived on the worker's socket from `source` to
    /// `destination`. Never panics; drops are counted by [`DropReason`].
    pub fn handle_receive(
        &mut self,
        now: Instant,
        source: SocketAddr,
        destination: SocketAddr,
        data: &[u8],
    ) {
        self.advance(now);
        self.stats.packets_in += 1;
        self.stats.bytes_in += data.len() as u64;
        if data.len() > self.config.max_datagram {
            self.drop_packet(DropReason::Oversized);
            return;
        }
        let Ok(contents) = data.try_into() else {
            self.drop_packet(DropReason::Malformed);
            return;
        };
        let key = match self.by_addr.get(&source) {
            Some(k) => *k,
            None => match self.learn_address(source, data) {
                Some(k) => k,
                None => return,
            },
        };
        let Some(p) = self.participants.get_mut(key) else {
            self.by_addr.remove(&source);
            self.drop_packet(DropReason::UnknownSource);
            return;
        };
        let input = Input::Receive(
            now,
            Receive {
                proto: Protocol::Udp,
                source,
                destination,
                contents,
            },
        );
        if p.rtc.handle_input(input).is_err() {
            self.drop_packet(DropReason::Rejected);
            if !self.participants.get(key).is_some_and(|p| p.rtc.is_alive()) {
                self.leaving.push((key, LeaveReason::Disconnected));
            }
        }
        self.drain(key);
        self.process();
    }

    /// Time has advanced to `now`: run every timer that is due.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.advance(now);
        // Each due participant runs once: a timer it re-arms at `now` waits
        // for the next call instead of spinning here.
        let mut due = std::mem::take(&mut self.due);
        while let Some(&(at, key)) = self.timers.first() {
            if at > now {
                break;
            }
            self.timers.pop_first();
            due.push(key);
        }
        for key in due.drain(..) {
            let Some(p) = self.participants.get_mut(key) else {
                continue;
            };
            p.timeout = None;
            if p.rtc.handle_input(Input::Timeout(now)).is_err() && !p.rtc.is_alive() {
                self.leaving.push((key, LeaveReason::Disconnected));
            }
            self.drain(key);
        }
        self.due = due;
        if now >= self.next_tick {
            self.tick();
        }
        self.process();
    }

    /// The next output. Call until it returns [`Output::Timeout`].
    ///
    /// Subscribers written to since the last poll are drained here, one at
    /// a time and only when the output queue is empty, so the driver sends
    /// the first subscriber's datagrams while the others wait their turn
    /// (rather than all of a batch's copies being encrypted before the
    /// first is sent, and held in memory meanwhile).
    pub fn poll_output(&mut self) -> Output {
        loop {
            if let Some(o) = self.out.pop_front() {
                return o;
            }
            let Some(key) = self.unflushed.pop_front() else {
                break;
            };
            if self.participants.get(key).is_some_and(|p| p.unflushed) {
                self.drain(key);
                // What draining raised may write more (queued behind).
                self.process();
            }
        }
        let next = self
            .timers
            .first()
            .map_or(self.next_tick, |(t, _)| (*t).min(self.next_tick));
        Output::Timeout(next)
    }

    pub(super) fn advance(&mut self, now: Instant) {
        if now > self.now {
            self.now = now;
        }
    }

    pub(super) fn drop_packet(&mut self, reason: DropReason) {
        self.stats.drops[reason as usize] += 1;
    }

    /// Routes a datagram from an unknown address: only a verified STUN
    /// binding request for one of our ufrags is accepted.
    fn learn_address(&mut self, source: SocketAddr, data: &[u8]) -> Option<PKey> {
        let Ok(stun) = StunMessage::parse(data) else {
            self.drop_packet(DropReason::UnknownSource);
            return None;
        };
        let key = stun
            .split_username()
            .and_then(|(local, _remote)| self.by_ufrag.get(local).copied());
        let Some(key) = key.filter(|_| stun.is_binding_request()) else {
            self.drop_packet(DropReason::UnknownSource);
            return None;
        };
        let hmac = self.factory.crypto.sha1_hmac_provider;
        let p = self.participants.get_mut(key)?;
        if !stun.verify(p.pwd.as_bytes(), |k, m| hmac.sha1_hmac(k, m)) {
            self.drop_packet(DropReason::Rejected);
            return None;
        }
        if p.addrs.len() >= MAX_ADDRS {
            let old = p.addrs.remove(0);
            self.by_addr.remove(&old);
        }
        p.addrs.push(source);
        self.by_addr.insert(source, key);
        Some(key)
    }

    /// Polls one participant's `Rtc` until it has nothing but a future
    /// timeout: transmits go to the output queue, events to the event queue.
    pub(super) fn drain(&mut self, key: PKey) {
        let now = self.now;
        let Some(p) = self.participants.get_mut(key) else {
            return;
        };
        let mut immediate = 0;
        // A subscriber the fan-out wrote to needs a timeout round at `now`
        // before str0m releases the packets (its send queue stamps them
        // there): run it before the first poll, which would otherwise walk
        // the whole `Rtc` only to ask for it.
        if std::mem::replace(&mut p.unflushed, false) && p.rtc.is_alive() {
            immediate += 1;
            if p.rtc.handle_input(Input::Timeout(now)).is_err() && !p.rtc.is_alive() {
                self.leaving.push((key, LeaveReason::Disconnected));
            }
        }
        let next = loop {
            match p.rtc.poll_output() {
                Ok(RtcOutput::Transmit(t)) => {
                    let contents: Vec<u8> = t.contents.into();
                    self.stats.packets_out += 1;
                    self.stats.bytes_out += contents.len() as u64;
                    self.out.push_back(Output::Transmit(Transmit {
                        source: t.source,
                        destination: t.destination,
                        contents,
                    }));
                }
                Ok(RtcOutput::Event(e)) => self.events.push_back((key, e)),
                Ok(RtcOutput::Timeout(t)) => {
                    if t <= now && immediate < MAX_IMMEDIATE && p.rtc.is_alive() {
                        immediate += 1;
                        if p.rtc.handle_input(Input::Timeout(now)).is_ok() {
                            continue;
                        }
                    }
                    break Some(t.max(now));
                }
                Err(_) => {
                    p.rtc.disconnect();
                    self.leaving.push((key, LeaveReason::Disconnected));
                    break None;
                }
            }
        };
        if p.timeout != next {
            if let Some(old) = p.timeout.take() {
                self.timers.remove(&(old, key));
            }
            if let Some(t) = next {
                self.timers.insert((t, key));
            }
            p.timeout = next;
        }
    }
}
