//! An in-memory, virtual-time test harness for the SFU: simulated str0m
//! client peers exchange datagrams with one [`Sfu`] without sockets, and a
//! virtual clock advances to the next timeout. Used by the SFU tests and the
//! `fanout_cpu` example; the bench can reuse it.
//!
//! ```text
//! let mut h = Harness::new(start);
//! let a = h.join("room", "alice", Publish { audio: true, video: true, ..Default::default() });
//! let b = h.join("room", "bob", Publish::default());
//! h.run_until(|h| h.peer(b).remote_media.len() == 2, Duration::from_secs(5));
//! ```
//!
//! Renegotiation offers from the relay are answered by the peer at once.
//! A drop filter (`set_drop`) can lose chosen datagrams to test recovery.

mod join;
mod meter;
mod pace;
mod peer;
mod whep;

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use protocol::{Grant, GrantRole, NodeId, ParticipantId, RoomId};
use str0m::change::SdpOffer;
use str0m::config::{CryptoProvider, DtlsCert};
use str0m::net::{Protocol, Receive};
use str0m::{Event, Input, Output as RtcOutput};

pub use meter::Meter;
pub use peer::{Peer, Publish, Received, video_tag};
pub use whep::Player;

use super::{Output, Sfu, SfuConfig, SfuEvent};

/// The grant secret the harness signs with.
pub const SECRET: &[u8] = b"harness-grant-secret-0123456789";

/// Unix time the harness passes as "now" for grant checks.
pub const UNIX_NOW: u64 = 1_700_000_000;

/// A datagram in flight.
#[derive(Debug, Clone)]
pub struct Datagram {
    /// Sender.
    pub source: SocketAddr,
    /// Receiver.
    pub destination: SocketAddr,
    /// Bytes.
    pub contents: Vec<u8>,
}

type DropFilter = Box<dyn FnMut(&Datagram) -> bool>;

/// The harness: one SFU, many peers, one virtual clock.
pub struct Harness {
    /// The SFU under test.
    pub sfu: Sfu,
    /// Virtual now.
    pub now: Instant,
    /// The SFU's address.
    pub sfu_addr: SocketAddr,
    /// The SFU's node id.
    pub node: NodeId,
    /// Peers, by index.
    pub peers: Vec<Peer>,
    /// Events the SFU emitted, in order.
    pub events: Vec<SfuEvent>,
    /// Datagrams the drop filter removed.
    pub dropped: usize,
    /// Optional CPU meter around every SFU call.
    pub meter: Option<Meter>,
    /// Hand datagrams to the SFU one at a time and poll it after each (a
    /// driver whose every receive returns one datagram), instead of in
    /// batches of everything that arrived at the same instant.
    pub one_by_one: bool,
    pace: Option<pace::Pacing>,
    by_addr: HashMap<SocketAddr, usize>,
    in_flight: VecDeque<Datagram>,
    drop: Option<DropFilter>,
    crypto: Arc<CryptoProvider>,
    cert: DtlsCert,
}

impl std::fmt::Debug for Harness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Harness")
            .field("peers", &self.peers.len())
            .finish_non_exhaustive()
    }
}

impl Harness {
    /// A harness whose virtual clock starts at `start`.
    pub fn new(start: Instant) -> Self {
        Self::with_config(start, |_| {})
    }

    /// A harness with an adjusted SFU configuration.
    pub fn with_config(start: Instant, adjust: impl FnOnce(&mut SfuConfig)) -> Self {
        let crypto = Arc::new(str0m::crypto::from_feature_flags());
        let cert = crypto
            .dtls_provider
            .generate_certificate()
            .expect("certificate");
        let node = NodeId::new("relay-test").expect("id");
        let sfu_addr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), 4000);
        let mut config = SfuConfig::new(node.clone(), SECRET.to_vec(), sfu_addr);
        config.dtls_cert = crypto.dtls_provider.generate_certificate();
        adjust(&mut config);
        Self {
            sfu: Sfu::new_at(config, start),
            now: start,
            sfu_addr,
            node,
            peers: Vec::new(),
            events: Vec::new(),
            dropped: 0,
            meter: None,
            one_by_one: false,
            pace: None,
            by_addr: HashMap::new(),
            in_flight: VecDeque::new(),
            drop: None,
            crypto,
            cert,
        }
    }

    /// A grant token for `participant` in `room` on this node, valid an hour.
    pub fn grant(&self, room: &str, participant: &str) -> String {
        Grant {
            room: RoomId::new(room).expect("room id"),
            participant: ParticipantId::new(participant).expect("participant id"),
            role: GrantRole::Participant,
            node: self.node.clone(),
            exp: UNIX_NOW + 3600,
        }
        .sign(SECRET)
    }

    /// The peer at `index`.
    pub fn peer(&self, index: usize) -> &Peer {
        &self.peers[index]
    }

    /// The peer at `index`, mutably.
    pub fn peer_mut(&mut self, index: usize) -> &mut Peer {
        &mut self.peers[index]
    }

    /// Installs a filter; datagrams for which it returns `true` are lost.
    pub fn set_drop(&mut self, filter: impl FnMut(&Datagram) -> bool + 'static) {
        self.drop = Some(Box::new(filter));
    }

    /// Removes the drop filter.
    pub fn clear_drop(&mut self) {
        self.drop = None;
    }

    /// Every 20 ms for `d`: each of `publishers` sends media
    /// ([`Peer::send_media`], audio at −30 dBov), then the harness runs.
    pub fn media_for(&mut self, publishers: &[usize], d: Duration) {
        let end = self.now + d;
        while self.now < end {
            let now = self.now;
            for &p in publishers {
                self.peers[p].send_media(now, 30);
            }
            self.run_for(Duration::from_millis(20));
        }
    }

    /// Runs for `d` of virtual time.
    pub fn run_for(&mut self, d: Duration) {
        let end = self.now + d;
        while self.now < end {
            self.step(end);
        }
    }

    /// Runs until `done` holds (checked between steps) or `limit` passes.
    /// Returns whether `done` held.
    pub fn run_until(&mut self, mut done: impl FnMut(&Harness) -> bool, limit: Duration) -> bool {
        let end = self.now + limit;
        while self.now < end {
            if done(self) {
                return true;
            }
            self.step(end);
        }
        done(self)
    }

    /// Delivers everything in flight, then advances to the next timeout
    /// (at most `until`, at most 10 ms).
    pub fn step(&mut self, until: Instant) {
        self.release_paced();
        for _ in 0..1000 {
            self.pump();
            if self.in_flight.is_empty() {
                break;
            }
            // Datagrams to the relay first, as one batch, then the peers'.
            let batch: Vec<Datagram> = self.in_flight.drain(..).collect();
            let (to_sfu, to_peers): (Vec<Datagram>, Vec<Datagram>) = batch
                .into_iter()
                .partition(|d| d.destination == self.sfu_addr);
            let to_sfu = self.hold_paced(to_sfu);
            self.deliver_to_sfu(&to_sfu, &[]);
            for d in &to_peers {
                self.deliver(d);
            }
        }
        let mut next = self.sfu_timeout();
        for p in &self.peers {
            next = next.min(p.timeout);
        }
        if let Some(t) = self.next_paced() {
            next = next.min(t);
        }
        let next = next
            .min(until)
            .min(self.now + Duration::from_millis(10))
            .max(self.now + Duration::from_micros(100));
        self.advance_to(next);
    }

    /// Moves the clock to `t` and runs every due timeout.
    pub fn advance_to(&mut self, t: Instant) {
        self.now = self.now.max(t);
        let now = self.now;
        let t0 = self.meter_begin();
        self.sfu.handle_timeout(now);
        self.add_meter(t0);
        for p in &mut self.peers {
            if p.timeout <= now {
                let _ = p.rtc.handle_input(Input::Timeout(now));
            }
        }
        self.pump();
    }

    fn sfu_timeout(&mut self) -> Instant {
        let t0 = self.meter_begin();
        loop {
            match self.sfu.poll_output() {
                Output::Timeout(t) => {
                    if let Some(m) = &mut self.meter {
                        m.polled();
                    }
                    self.add_meter(t0);
                    return t;
                }
                other => self.on_sfu_output(other),
            }
        }
    }

    /// Starts metering an SFU call made now.
    fn meter_begin(&mut self) -> Option<(Duration, Duration)> {
        let now = self.now;
        self.meter.as_mut().map(|m| m.begin(now))
    }

    fn add_meter(&mut self, start: Option<(Duration, Duration)>) {
        if let (Some(m), Some(t0)) = (&mut self.meter, start) {
            m.stop(t0);
        }
    }

    /// Drains the SFU and every peer into the in-flight queue.
    fn pump(&mut self) {
        self.sfu_timeout();
        let now = self.now;
        for i in 0..self.peers.len() {
            self.pump_peer(i, now);
        }
    }

    fn on_sfu_output(&mut self, o: Output) {
        match o {
            Output::Transmit(t) => {
                if let Some(m) = &mut self.meter {
                    m.copied();
                }
                self.in_flight.push_back(Datagram {
                    source: t.source,
                    destination: t.destination,
                    contents: t.contents,
                });
            }
            Output::Event(e) => {
                if let SfuEvent::Renegotiate {
                    room,
                    participant,
                    offer_sdp,
                } = &e
                {
                    self.answer_renegotiation(room, participant, offer_sdp);
                }
                self.events.push(e);
            }
            Output::Timeout(_) => {}
        }
    }

    fn answer_renegotiation(&mut self, room: &RoomId, participant: &ParticipantId, sdp: &str) {
        let Some(i) = self
            .peers
            .iter()
            .position(|p| &p.id == participant && &p.room == room)
        else {
            return;
        };
        let offer = SdpOffer::from_sdp_string(sdp).expect("relay offer parses");
        let answer = self.peers[i]
            .rtc
            .sdp_api()
            .accept_offer(offer)
            .expect("peer accepts the relay's offer");
        self.pump_peer(i, self.now);
        self.sfu
            .handle_answer(room, participant, &answer.to_sdp_string())
            .expect("relay accepts the answer");
    }

    fn pump_peer(&mut self, i: usize, now: Instant) {
        let mut immediate = 0;
        loop {
            let p = &mut self.peers[i];
            let Ok(out) = p.rtc.poll_output() else { break };
            match out {
                RtcOutput::Timeout(t) => {
                    if t <= now && immediate < 64 {
                        immediate += 1;
                        if p.rtc.handle_input(Input::Timeout(now)).is_err() {
                            break;
                        }
                        continue;
                    }
                    p.timeout = t;
                    break;
                }
                RtcOutput::Transmit(t) => self.in_flight.push_back(Datagram {
                    source: t.source,
                    destination: t.destination,
                    contents: t.contents.into(),
                }),
                RtcOutput::Event(e) => on_peer_event(p, e, now),
            }
        }
    }

    /// Hands datagrams to the SFU: all of them, then the SFU is polled by
    /// the next pump; or, if `one_by_one`, polling after each. Metered when
    /// a meter is set.
    /// `arrivals`: each datagram's virtual arrival, for the meter (if
    /// shorter than `batch`, the rest arrived now).
    fn deliver_to_sfu(&mut self, batch: &[Datagram], arrivals: &[Instant]) {
        let now = self.now;
        let mut run = self.meter_begin();
        for (i, d) in batch.iter().enumerate() {
            if let Some(f) = &mut self.drop
                && f(d)
            {
                self.dropped += 1;
                continue;
            }
            if let (Some(m), Some(t0)) = (&mut self.meter, run)
                && m.publisher == Some(d.source)
            {
                // Arrived with the batch, or now if one by one.
                let at = arrivals.get(i).copied().unwrap_or(now);
                m.arrived(if self.one_by_one { m.now() } else { t0.1 }, at);
            }
            self.sfu
                .handle_receive(now, d.source, d.destination, &d.contents);
            if self.one_by_one {
                self.add_meter(run);
                self.sfu_timeout();
                run = self.meter_begin();
            }
        }
        self.add_meter(run);
    }

    fn deliver(&mut self, d: &Datagram) {
        if let Some(f) = &mut self.drop
            && f(d)
        {
            self.dropped += 1;
            return;
        }
        let now = self.now;
        if d.destination == self.sfu_addr {
            self.sfu
                .handle_receive(now, d.source, d.destination, &d.contents);
            return;
        }
        let Some(&i) = self.by_addr.get(&d.destination) else {
            return;
        };
        let Ok(contents) = d.contents.as_slice().try_into() else {
            return;
        };
        let input = Input::Receive(
            now,
            Receive {
                proto: Protocol::Udp,
                source: d.source,
                destination: d.destination,
                contents,
            },
        );
        let _ = self.peers[i].rtc.handle_input(input);
        self.pump_peer(i, now);
    }
}

fn on_peer_event(p: &mut Peer, e: Event, now: Instant) {
    match e {
        Event::Connected => p.connected = true,
        Event::RtpPacket(r) => {
            let mid = r.header.ext_vals.mid.or_else(|| {
                p.rtc
                    .direct_api()
                    .stream_rx(&r.header.ssrc)
                    .map(|s| s.mid())
            });
            if let Some(mid) = mid {
                p.received.push(Received {
                    mid,
                    ssrc: r.header.ssrc,
                    seq: *r.seq_no,
                    ts: r.header.timestamp,
                    marker: r.header.marker,
                    payload: r.payload,
                    at: now,
                });
            }
        }
        Event::MediaAdded(m) => {
            let stream = p
                .rtc
                .media(m.mid)
                .map(|x| x.stream_id().to_owned())
                .unwrap_or_default();
            p.remote_media.insert(m.mid, (m.kind, stream));
        }
        Event::KeyframeRequest(req) => p.on_keyframe_request(req),
        Event::ChannelOpen(id, _) => p.channel = Some(id),
        Event::ChannelData(d) => {
            if let Ok(s) = String::from_utf8(d.data) {
                p.messages.push(s);
            }
        }
        _ => {}
    }
}
