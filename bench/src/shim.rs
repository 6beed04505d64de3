//! A lossy, delaying loopback UDP proxy: the known impairment the "measures right"
//! checks compare the harness's numbers against.
//!
//! Each [`Link`] joins two endpoints through two shim sockets: the media sender talks
//! to [`Link::for_sender`], the receiver to [`Link::for_receiver`], and each only ever
//! sees the shim. Packets from sender to receiver are dropped with probability `loss`
//! (a seeded RNG per link, only RTP when `media_only`, so handshakes are not slowed) and
//! delayed by a fixed `delay`; the reverse direction passes untouched. The shim forwards
//! only between the two addresses it was given, and exits after `lifetime`.

use std::collections::VecDeque;
use std::io::ErrorKind;
use std::net::{SocketAddr, UdpSocket as StdUdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::mpsc::{self, Receiver, Sender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use mio::net::UdpSocket;
use mio::{Events, Interest, Poll, Token, Waker};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::{Error, Result};

const WAKER: Token = Token(usize::MAX);
/// Most packets held for delay at once; more are dropped and counted as overflow.
const MAX_QUEUED: usize = 200_000;

/// What the shim does to sender→receiver packets.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct ShimConfig {
    /// Fraction of packets dropped, 0.0..=1.0.
    pub loss: f64,
    /// Fixed one-way delay added.
    #[serde(rename = "delay_ms", serialize_with = "crate::clock::serialize_ms")]
    pub delay: Duration,
    /// RNG seed (per link: seed + link index).
    pub seed: u64,
    /// Drop only RTP (not STUN, DTLS or RTCP).
    pub media_only: bool,
    /// The shim thread exits after this long.
    #[serde(rename = "lifetime_ms", serialize_with = "crate::clock::serialize_ms")]
    pub lifetime: Duration,
}

impl Default for ShimConfig {
    fn default() -> Self {
        ShimConfig {
            loss: 0.0,
            delay: Duration::ZERO,
            seed: 1,
            media_only: true,
            lifetime: Duration::from_secs(600),
        }
    }
}

/// Where each side of a link must send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Link {
    /// The media sender sends here (instead of to the receiver).
    pub for_sender: SocketAddr,
    /// The receiver sends here (instead of to the sender).
    pub for_receiver: SocketAddr,
}

/// Counters of everything the shim did.
#[derive(Debug, Default)]
pub struct ShimCounters {
    /// Sender→receiver packets forwarded.
    pub forwarded: AtomicU64,
    /// Sender→receiver packets dropped on purpose.
    pub dropped: AtomicU64,
    /// Sender→receiver RTP packets seen (the population `loss` applies to).
    pub media_seen: AtomicU64,
    /// Receiver→sender packets forwarded.
    pub returned: AtomicU64,
    /// Packets from addresses not part of the link (ignored).
    pub strangers: AtomicU64,
    /// Packets dropped because the delay queue was full (not part of `loss`).
    pub overflow: AtomicU64,
}

struct LinkState {
    sender: SocketAddr,
    receiver: SocketAddr,
    front: UdpSocket,
    back: UdpSocket,
    rng: StdRng,
}

enum Command {
    Link(Box<LinkState>),
    Stop,
}

/// A running shim thread.
#[derive(Debug)]
pub struct Shim {
    tx: Sender<Command>,
    waker: Arc<Waker>,
    counters: Arc<ShimCounters>,
    config: ShimConfig,
    links: AtomicU64,
    thread: Option<JoinHandle<()>>,
}

impl Shim {
    /// Starts the shim thread.
    pub fn start(config: ShimConfig) -> Result<Shim> {
        if !(0.0..=1.0).contains(&config.loss) {
            return Err(Error::Config(format!("loss {} not in 0..=1", config.loss)));
        }
        let poll = Poll::new()?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        let (tx, rx) = mpsc::channel();
        let counters = Arc::new(ShimCounters::default());
        let c = Arc::clone(&counters);
        let thread = std::thread::Builder::new()
            .name("bench-shim".into())
            .spawn(move || run(poll, &rx, config, &c))?;
        Ok(Shim {
            tx,
            waker,
            counters,
            config,
            links: AtomicU64::new(0),
            thread: Some(thread),
        })
    }

    /// Links a media `sender` and `receiver` (both loopback) through two new shim ports.
    pub fn link(&self, sender: SocketAddr, receiver: SocketAddr) -> Result<Link> {
        crate::target::check_addr(sender, false)?;
        crate::target::check_addr(receiver, false)?;
        let bind = |peer: SocketAddr| -> Result<StdUdpSocket> {
            let s = StdUdpSocket::bind(SocketAddr::new(peer.ip(), 0))?;
            s.set_nonblocking(true)?;
            Ok(s)
        };
        let (front, back) = (bind(sender)?, bind(receiver)?);
        let link = Link {
            for_sender: front.local_addr()?,
            for_receiver: back.local_addr()?,
        };
        let n = self.links.fetch_add(1, Relaxed);
        let state = LinkState {
            sender,
            receiver,
            front: UdpSocket::from_std(front),
            back: UdpSocket::from_std(back),
            rng: StdRng::seed_from_u64(self.config.seed.wrapping_add(n)),
        };
        self.tx
            .send(Command::Link(Box::new(state)))
            .map_err(|_| Error::Stopped("shim"))?;
        self.waker.wake()?;
        Ok(link)
    }

    /// The shim's counters.
    pub fn counters(&self) -> &ShimCounters {
        &self.counters
    }

    /// Its configuration.
    pub fn config(&self) -> ShimConfig {
        self.config
    }
}

impl Drop for Shim {
    fn drop(&mut self) {
        if self.tx.send(Command::Stop).is_ok() {
            let _ = self.waker.wake();
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Is this datagram RTP (not RTCP, STUN or DTLS)? RFC 7983 + RFC 5761 demultiplexing.
fn is_rtp(data: &[u8]) -> bool {
    match data {
        [b0, b1, ..] => (128..=191).contains(b0) && !(192..=223).contains(b1),
        _ => false,
    }
}

fn run(mut poll: Poll, rx: &Receiver<Command>, config: ShimConfig, counters: &ShimCounters) {
    let end = Instant::now() + config.lifetime;
    let mut links: Vec<LinkState> = Vec::new();
    // Fixed delay: arrival order is deadline order, so a FIFO is a priority queue.
    let mut queue: VecDeque<(Instant, usize, Vec<u8>)> = VecDeque::new();
    let mut events = Events::with_capacity(256);
    let mut buf = vec![0u8; 2048];
    loop {
        let now = Instant::now();
        if now >= end {
            return;
        }
        while queue.front().is_some_and(|q| q.0 <= now) {
            if let Some((_, link, data)) = queue.pop_front()
                && let Some(l) = links.get(link)
            {
                let _ = l.back.send_to(&data, l.receiver);
            }
        }
        let next = queue.front().map_or(end, |q| q.0).min(end);
        if let Err(e) = poll.poll(&mut events, Some(next.saturating_duration_since(now))) {
            if e.kind() == ErrorKind::Interrupted {
                continue;
            }
            return;
        }
        for event in &events {
            let token = event.token().0;
            if event.token() == WAKER {
                while let Ok(cmd) = rx.try_recv() {
                    match cmd {
                        Command::Stop => return,
                        Command::Link(mut l) => {
                            let i = links.len();
                            let reg = poll.registry();
                            if reg
                                .register(&mut l.front, Token(2 * i), Interest::READABLE)
                                .is_ok()
                                && reg
                                    .register(&mut l.back, Token(2 * i + 1), Interest::READABLE)
                                    .is_ok()
                            {
                                links.push(*l);
                            }
                        }
                    }
                }
                continue;
            }
            let (i, from_front) = (token / 2, token % 2 == 0);
            let Some(l) = links.get_mut(i) else {
                continue;
            };
            let socket = if from_front { &l.front } else { &l.back };
            while let Ok((n, source)) = socket.recv_from(&mut buf) {
                let data = buf.get(..n).unwrap_or_default();
                if !from_front {
                    if source == l.receiver {
                        let _ = l.front.send_to(data, l.sender);
                        counters.returned.fetch_add(1, Relaxed);
                    } else {
                        counters.strangers.fetch_add(1, Relaxed);
                    }
                    continue;
                }
                if source != l.sender {
                    counters.strangers.fetch_add(1, Relaxed);
                    continue;
                }
                let rtp = is_rtp(data);
                counters.media_seen.fetch_add(u64::from(rtp), Relaxed);
                if (rtp || !config.media_only) && l.rng.random::<f64>() < config.loss {
                    counters.dropped.fetch_add(1, Relaxed);
                    continue;
                }
                counters.forwarded.fetch_add(1, Relaxed);
                if config.delay.is_zero() {
                    let _ = l.back.send_to(data, l.receiver);
                } else if queue.len() >= MAX_QUEUED {
                    counters.overflow.fetch_add(1, Relaxed);
                } else {
                    queue.push_back((Instant::now() + config.delay, i, data.to_vec()));
                }
            }
        }
    }
}

#[cfg(test)]
#[path = "shim_tests.rs"]
mod tests;
