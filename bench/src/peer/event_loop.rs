//! [`PeerLoop`]: one thread running many peers. It waits on all their sockets with one
//! mio `Poll`, keeps each peer's next deadline (str0m timeout or media tick) in a
//! min-heap, and stops by itself at its configured end.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::io::ErrorKind;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::mpsc::{self, Receiver, Sender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use mio::{Events, Interest, Poll, Token, Waker};
use str0m::change::{SdpAnswer, SdpOffer};
use tokio::sync::oneshot;

pub use super::counters::{LiveCounters, LiveSnapshot};
use super::slot::{Ctx, Slot};
use super::{PeerId, ReadyPeer};
use crate::stats::{FreezeThresholds, Recorder};
use crate::{Error, Result};

const WAKER: Token = Token(usize::MAX);
/// Shortest wait before a peer's timer runs again after it just ran.
const MIN_TIMER_STEP: Duration = Duration::from_millis(1);

/// Timing of one loop. Every loop is bounded: it stops sending at `send_until` and
/// exits at `stop_at` (the gap lets in-flight packets arrive).
#[derive(Debug, Clone, Copy)]
pub struct LoopConfig {
    /// Second 0 of the run's time series.
    pub run_start: Instant,
    /// Publishers send media until this instant; freezes are evaluated up to it.
    pub send_until: Instant,
    /// The loop exits at this instant.
    pub stop_at: Instant,
    /// Freeze thresholds for receivers.
    pub freeze: FreezeThresholds,
    /// Most peers this loop accepts; more are refused.
    pub max_peers: usize,
}

impl LoopConfig {
    /// A run starting now, sending for `duration`, then draining for `drain`.
    pub fn for_duration(duration: Duration, drain: Duration) -> Self {
        let run_start = Instant::now();
        LoopConfig {
            run_start,
            send_until: run_start + duration,
            stop_at: run_start + duration + drain,
            freeze: FreezeThresholds::default(),
            max_peers: 10_000,
        }
    }
}

#[derive(Debug)]
enum Command {
    Add(Box<ReadyPeer>),
    Renegotiate {
        peer: PeerId,
        offer: SdpOffer,
        reply: oneshot::Sender<Result<SdpAnswer>>,
    },
    Stop,
}

/// Cloneable handle to give a running [`PeerLoop`] peers or stop it early.
#[derive(Debug, Clone)]
pub struct LoopSender {
    tx: Sender<Command>,
    waker: Arc<Waker>,
    counters: Arc<LiveCounters>,
}

impl LoopSender {
    /// Hands a negotiated peer to the loop.
    pub fn add(&self, peer: ReadyPeer) -> Result<()> {
        self.tx
            .send(Command::Add(Box::new(peer)))
            .map_err(|_| Error::Stopped("peer loop"))?;
        self.waker.wake()?;
        Ok(())
    }

    /// Hands the far side's new offer (a relay adding or removing tracks) to a running
    /// peer; resolves to the peer's answer. Fails if the peer is unknown or gone.
    pub async fn renegotiate(&self, peer: PeerId, offer: SdpOffer) -> Result<SdpAnswer> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send(Command::Renegotiate { peer, offer, reply })
            .map_err(|_| Error::Stopped("peer loop"))?;
        self.waker.wake()?;
        answer.await.map_err(|_| Error::Stopped("peer loop"))?
    }

    /// Asks the loop to stop now (it also stops by itself at `stop_at`).
    pub fn stop(&self) {
        if self.tx.send(Command::Stop).is_ok() {
            let _ = self.waker.wake();
        }
    }

    /// The loop's live counters.
    pub fn counters(&self) -> &Arc<LiveCounters> {
        &self.counters
    }
}

/// A thread running many peers until its [`LoopConfig::stop_at`].
#[derive(Debug)]
pub struct PeerLoop {
    sender: LoopSender,
    thread: JoinHandle<Recorder>,
}

impl PeerLoop {
    /// Starts a loop thread named `name`.
    pub fn spawn(name: &str, config: LoopConfig) -> Result<PeerLoop> {
        let poll = Poll::new()?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        let (tx, rx) = mpsc::channel();
        let counters = Arc::new(LiveCounters::default());
        let run = Runner {
            poll,
            rx,
            config,
            counters: Arc::clone(&counters),
            slots: Vec::new(),
            by_peer: HashMap::new(),
            heap: BinaryHeap::new(),
            due: Vec::new(),
            recorder: Recorder::new(config.run_start),
        };
        let thread = std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || run.run())?;
        Ok(PeerLoop {
            sender: LoopSender {
                tx,
                waker,
                counters,
            },
            thread,
        })
    }

    /// A handle to add peers.
    pub fn sender(&self) -> LoopSender {
        self.sender.clone()
    }

    /// Waits for the loop to end (at `stop_at`, or earlier after [`LoopSender::stop`])
    /// and returns what it measured.
    pub fn join(self) -> Result<Recorder> {
        self.thread.join().map_err(|_| Error::Stopped("peer loop"))
    }
}

struct Runner {
    poll: Poll,
    rx: Receiver<Command>,
    config: LoopConfig,
    counters: Arc<LiveCounters>,
    slots: Vec<Option<Slot>>,
    by_peer: HashMap<PeerId, usize>,
    heap: BinaryHeap<Reverse<(Instant, usize)>>,
    due: Vec<(Instant, usize)>,
    recorder: Recorder,
}

impl Runner {
    fn run(mut self) -> Recorder {
        let mut events = Events::with_capacity(1024);
        let mut buf = vec![0u8; 2048];
        let mut stopping = false;
        while !stopping {
            let now = Instant::now();
            if now >= self.config.stop_at {
                break;
            }
            self.fire_timers(now);
            let next = self
                .heap
                .peek()
                .map_or(self.config.stop_at, |Reverse((t, _))| *t)
                .min(self.config.stop_at);
            let timeout = next.saturating_duration_since(Instant::now());
            if let Err(e) = self.poll.poll(&mut events, Some(timeout)) {
                if e.kind() == ErrorKind::Interrupted {
                    continue;
                }
                tracing::error!(error = %e, "peer loop poll failed");
                break;
            }
            for event in &events {
                if event.token() == WAKER {
                    stopping |= self.take_commands();
                } else {
                    self.read_socket(event.token().0, &mut buf);
                }
            }
        }
        let end = Instant::now().min(self.config.send_until);
        for slot in self.slots.drain(..).flatten() {
            slot.finish(end, &mut self.recorder);
        }
        self.recorder
    }

    fn ctx(&mut self) -> (&mut Vec<Option<Slot>>, Ctx<'_>) {
        (
            &mut self.slots,
            Ctx {
                recorder: &mut self.recorder,
                counters: &self.counters,
                freeze: self.config.freeze,
                send_until: self.config.send_until,
            },
        )
    }

    /// Runs every slot whose deadline is at or before `now`. Entries pushed while doing
    /// so wait for the next turn of the main loop (with a fresh `now`), so a peer whose
    /// str0m timeout stays at `now` cannot spin this function forever.
    fn fire_timers(&mut self, now: Instant) {
        let mut due = std::mem::take(&mut self.due);
        while let Some(&Reverse((t, idx))) = self.heap.peek() {
            if t > now {
                break;
            }
            self.heap.pop();
            due.push((t, idx));
        }
        for &(t, idx) in &due {
            let (slots, mut ctx) = self.ctx();
            let Some(slot) = slots.get_mut(idx).and_then(Option::as_mut) else {
                continue;
            };
            if slot.scheduled != Some(t) {
                continue; // Stale entry; a newer one exists.
            }
            slot.scheduled = None;
            slot.on_timer(now, &mut ctx);
            // str0m may answer a timeout with the same instant (its timeouts are
            // clamped to the last input time); look again a millisecond later.
            self.reschedule(idx, now + MIN_TIMER_STEP);
        }
        due.clear();
        self.due = due;
    }

    fn read_socket(&mut self, idx: usize, buf: &mut [u8]) {
        let (slots, mut ctx) = self.ctx();
        let Some(slot) = slots.get_mut(idx).and_then(Option::as_mut) else {
            return;
        };
        loop {
            match slot.socket.recv_from(buf) {
                Ok((n, source)) => {
                    let data = buf.get(..n).unwrap_or_default();
                    slot.on_datagram(Instant::now(), source, data, &mut ctx);
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => {
                    // E.g. ICMP port unreachable from a peer that went away.
                    tracing::trace!(error = %e, "recv failed");
                    break;
                }
            }
        }
        self.reschedule(idx, Instant::now());
    }

    /// Pushes the slot's deadline (not before `not_before`) if it is earlier than its
    /// scheduled entry; drops dead slots.
    fn reschedule(&mut self, idx: usize, not_before: Instant) {
        let send_until = self.config.send_until;
        let Some(entry) = self.slots.get_mut(idx) else {
            return;
        };
        let Some(slot) = entry.as_mut() else {
            return;
        };
        if !slot.alive() {
            if let Some(mut dead) = entry.take() {
                let _ = self.poll.registry().deregister(&mut dead.socket);
                let end = Instant::now().min(send_until);
                dead.finish(end, &mut self.recorder);
            }
            return;
        }
        let deadline = slot.deadline(send_until).max(not_before);
        if slot.scheduled.is_none_or(|s| deadline < s) {
            slot.scheduled = Some(deadline);
            self.heap.push(Reverse((deadline, idx)));
        }
    }

    /// Applies queued commands; returns true on Stop.
    fn take_commands(&mut self) -> bool {
        while let Ok(cmd) = self.rx.try_recv() {
            match cmd {
                Command::Stop => return true,
                Command::Add(peer) => self.add(*peer),
                Command::Renegotiate { peer, offer, reply } => {
                    let _ = reply.send(self.renegotiate(peer, offer));
                }
            }
        }
        false
    }

    fn renegotiate(&mut self, peer: PeerId, offer: SdpOffer) -> Result<SdpAnswer> {
        let idx = *self
            .by_peer
            .get(&peer)
            .ok_or_else(|| Error::Negotiation(format!("{peer} is not running")))?;
        let now = Instant::now();
        let (slots, mut ctx) = self.ctx();
        let slot = slots
            .get_mut(idx)
            .and_then(Option::as_mut)
            .ok_or_else(|| Error::Negotiation(format!("{peer} has ended")))?;
        let answer = slot.accept_offer(now, offer, &mut ctx);
        self.reschedule(idx, now);
        answer
    }

    fn add(&mut self, peer: ReadyPeer) {
        self.recorder.peers.added += 1;
        self.counters.added.fetch_add(1, Relaxed);
        let idx = self.slots.len();
        if idx >= self.config.max_peers {
            tracing::warn!(peer = %peer.peer, "peer loop full, refusing peer");
            self.recorder.peers.failed += 1;
            self.counters.failed.fetch_add(1, Relaxed);
            return;
        }
        let mut slot = Slot::new(peer);
        if let Err(e) =
            self.poll
                .registry()
                .register(&mut slot.socket, Token(idx), Interest::READABLE)
        {
            tracing::warn!(error = %e, "could not register peer socket");
            self.recorder.peers.failed += 1;
            self.counters.failed.fetch_add(1, Relaxed);
            return;
        }
        self.by_peer.insert(slot.peer, idx);
        self.slots.push(Some(slot));
        let now = Instant::now();
        let (slots, mut ctx) = self.ctx();
        if let Some(Some(slot)) = slots.get_mut(idx) {
            // Drain what negotiation queued (MediaAdded, first STUN) right away.
            slot.on_timer(now, &mut ctx);
        }
        self.reschedule(idx, now + MIN_TIMER_STEP);
    }
}
