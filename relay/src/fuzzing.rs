//! Harnesses for hostile input, shared by the cargo-fuzz targets in
//! `fuzz/` and the regular tests that feed random datagrams: they must never
//! panic, whatever the bytes.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use protocol::control::{RelayToSignaling, SignalingToRelay};
use protocol::{Grant, NodeId};

use crate::sfu::testing::{Harness, Publish};
use crate::sfu::{Output, Sfu, SfuConfig};

/// Secret the harness's core verifies grants with.
pub const FUZZ_SECRET: &[u8] = b"fuzz-secret-0123456789abcdef";

/// Feeds datagrams into one [`Sfu`] on virtual time.
///
/// Input layout per [`DatagramHarness::feed`] call: byte 0 picks one of 8
/// source addresses, byte 1 advances virtual time (0–255 ms, then runs due
/// timers), the rest is the datagram.
#[derive(Debug)]
pub struct DatagramHarness {
    sfu: Sfu,
    local: SocketAddr,
    now: Instant,
    transmits: u64,
}

impl DatagramHarness {
    /// A core with no participants, listening on 127.0.0.1:3478.
    pub fn new() -> Self {
        let local = SocketAddr::from((Ipv4Addr::LOCALHOST, 3478));
        let node = NodeId::new("relay-fuzz").expect("valid id");
        // The one clock read: a base for virtual time.
        #[allow(clippy::disallowed_methods)]
        let now = Instant::now();
        Self {
            sfu: Sfu::new(SfuConfig::new(node, FUZZ_SECRET.to_vec(), local)),
            local,
            now,
            transmits: 0,
        }
    }

    /// The core under test (to add participants before feeding datagrams).
    pub fn sfu(&mut self) -> &mut Sfu {
        &mut self.sfu
    }

    /// Virtual time now.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// Feeds one input (see the type's documentation).
    pub fn feed(&mut self, input: &[u8]) {
        let (source, advance, datagram) = match input {
            [s, a, rest @ ..] => (*s, *a, rest),
            [s] => (*s, 0, &[][..]),
            [] => return,
        };
        let source =
            SocketAddr::from((Ipv4Addr::new(127, 0, 0, 2), 40_000 + u16::from(source % 8)));
        self.receive(source, datagram);
        if advance > 0 {
            self.now += Duration::from_millis(u64::from(advance));
            self.sfu.handle_timeout(self.now);
            self.drain();
        }
    }

    /// Feeds one datagram from `source`.
    pub fn receive(&mut self, source: SocketAddr, datagram: &[u8]) {
        self.sfu
            .handle_receive(self.now, source, self.local, datagram);
        self.drain();
    }

    /// Datagrams the core has sent so far.
    pub fn transmits(&self) -> u64 {
        self.transmits
    }

    fn drain(&mut self) {
        // A core that never yields a timeout would hang the fuzzer: bound it.
        for _ in 0..100_000 {
            match self.sfu.poll_output() {
                Output::Transmit(_) => self.transmits += 1,
                Output::Event(_) => {}
                Output::Timeout(_) => return,
            }
        }
        panic!("poll_output never returned a timeout");
    }
}

impl Default for DatagramHarness {
    fn default() -> Self {
        Self::new()
    }
}

/// Feeds datagrams into a core that carries a live call: `alice` publishes
/// audio and video, `bob` receives them (str0m peers on virtual time).
///
/// Input layout per [`CallHarness::feed`] call: byte 0 picks the source
/// (alice's address, bob's address, or a stranger's), byte 1 advances
/// virtual time (0–255 ms, during which the call goes on), the rest is the
/// datagram. Datagrams "from" alice or bob reach their str0m sessions, so
/// this exercises DTLS, SRTP and STUN-integrity rejection.
#[derive(Debug)]
pub struct CallHarness {
    harness: Harness,
    sources: [SocketAddr; 3],
}

impl CallHarness {
    /// Sets the call up (panics if it does not connect: a harness bug).
    pub fn new() -> Self {
        #[allow(clippy::disallowed_methods)]
        let mut harness = Harness::new(Instant::now());
        let av = Publish {
            audio: true,
            video: true,
            simulcast: Vec::new(),
        };
        let alice = harness.join("room", "alice", &av);
        let bob = harness.join("room", "bob", &Publish::default());
        let up = harness.run_until(
            |h| h.peer(alice).connected && h.peer(bob).remote_media.len() == 2,
            Duration::from_secs(10),
        );
        assert!(up, "the fuzzing call did not connect");
        let sources = [
            harness.peer(alice).addr,
            harness.peer(bob).addr,
            SocketAddr::from((Ipv4Addr::new(10, 9, 9, 9), 5000)),
        ];
        Self { harness, sources }
    }

    /// Feeds one input (see the type's documentation).
    pub fn feed(&mut self, input: &[u8]) {
        let [s, advance, datagram @ ..] = input else {
            return;
        };
        let source = self.sources[usize::from(*s) % self.sources.len()];
        let (now, to) = (self.harness.now, self.harness.sfu_addr);
        self.harness.sfu.handle_receive(now, source, to, datagram);
        self.harness
            .run_for(Duration::from_millis(u64::from(*advance).max(1)));
    }

    /// Participants still in the call.
    pub fn participants(&self) -> u64 {
        self.harness.sfu.stats().participants
    }
}

impl Default for CallHarness {
    fn default() -> Self {
        Self::new()
    }
}

/// Parses `input` the ways a relay or signaling parses control-link input:
/// both message directions and as a grant token. Never panics.
pub fn parse_control(input: &[u8]) {
    let _ = serde_json::from_slice::<SignalingToRelay>(input);
    let _ = serde_json::from_slice::<RelayToSignaling>(input);
    if let Ok(text) = std::str::from_utf8(input) {
        let node = NodeId::new("relay-fuzz").expect("valid id");
        let _ = Grant::verify(text, FUZZ_SECRET, &node, 0);
    }
}
