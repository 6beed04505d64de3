//! One worker thread: its own current-thread tokio runtime, UDP socket and
//! [`Sfu`], and the loop that feeds the core.
//!
//! The loop waits for a command, a batch of datagrams or the core's timeout,
//! hands the input to the core, then drains [`Sfu::poll_output`] until it
//! yields a timeout: datagrams go out on the socket, events go to the
//! control task. The only clock reads of the relay's media path are here.
#![allow(clippy::disallowed_types)] // the driver owns the sockets

use std::net::{SocketAddr, UdpSocket as StdUdpSocket};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use protocol::{ParticipantId, RoomId};
use tokio::sync::{broadcast, mpsc, oneshot, watch};

use super::stats::{Snapshot, WorkerStats};
use super::udp::BatchSocket;
use crate::sfu::{OfferAccepted, Output, Sfu, SfuConfig, SfuError, SfuEvent};

/// How often a worker refreshes its published statistics when idle of commands.
const PUBLISH_EVERY: Duration = Duration::from_millis(250);

/// A request from the control side to one worker.
#[derive(Debug)]
pub enum Command {
    /// A client's offer with its grant token.
    Offer {
        /// The grant token.
        token: String,
        /// The SDP offer.
        sdp: String,
        /// Where the answer goes.
        reply: oneshot::Sender<Result<OfferAccepted, SfuError>>,
    },
    /// A client's answer to a server renegotiation offer.
    Answer {
        /// The room.
        room: RoomId,
        /// The participant.
        participant: ParticipantId,
        /// The SDP answer.
        sdp: String,
        /// The outcome.
        reply: oneshot::Sender<Result<(), SfuError>>,
    },
    /// A trickled ICE candidate.
    Candidate {
        /// The room.
        room: RoomId,
        /// The participant.
        participant: ParticipantId,
        /// The candidate line.
        candidate: String,
    },
    /// Remove a participant.
    Kick {
        /// The room.
        room: RoomId,
        /// The participant.
        participant: ParticipantId,
    },
    /// Remove every participant of a room.
    CloseRoom {
        /// The room.
        room: RoomId,
    },
    /// Start or stop draining (no new rooms).
    SetDraining(bool),
    /// End the loop.
    Stop,
}

/// Everything a worker thread needs.
#[derive(Debug)]
pub struct WorkerSetup {
    /// Worker index, for names and logs.
    pub index: usize,
    /// The bound socket (non-blocking).
    pub socket: StdUdpSocket,
    /// The core's configuration (its `local_addr` is this worker's advertised address).
    pub sfu: SfuConfig,
    /// Commands from the control side.
    pub commands: mpsc::UnboundedReceiver<Command>,
    /// Where core events go.
    pub events: broadcast::Sender<SfuEvent>,
    /// Shared counters.
    pub stats: Arc<WorkerStats>,
    /// Bumped whenever the worker publishes new statistics.
    pub published: Arc<watch::Sender<u64>>,
}

/// Starts the worker thread.
pub fn spawn(setup: WorkerSetup) -> std::io::Result<JoinHandle<()>> {
    let name = format!("relay-worker-{}", setup.index);
    std::thread::Builder::new().name(name).spawn(move || {
        let index = setup.index;
        let stats = Arc::clone(&setup.stats);
        #[allow(clippy::disallowed_types)]
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build();
        match runtime {
            Ok(rt) => rt.block_on(async move {
                match Worker::new(setup) {
                    Ok(worker) => worker.run().await,
                    Err(e) => {
                        tracing::error!(worker = index, error = %e, "worker socket setup failed");
                    }
                }
            }),
            Err(e) => tracing::error!(worker = index, error = %e, "worker runtime failed"),
        }
        stats.stopped.store(true, Ordering::Release);
    })
}

/// The wall clock and monotonic clock, read together.
#[allow(clippy::disallowed_methods)]
fn clock() -> (Instant, u64) {
    let unix = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    (Instant::now(), unix)
}

#[allow(clippy::disallowed_methods)]
fn now() -> Instant {
    Instant::now()
}

struct Worker {
    index: usize,
    socket: BatchSocket,
    local: SocketAddr,
    sfu: Sfu,
    commands: mpsc::UnboundedReceiver<Command>,
    events: broadcast::Sender<SfuEvent>,
    stats: Arc<WorkerStats>,
    published: Arc<watch::Sender<u64>>,
    next_publish: Instant,
}

impl Worker {
    fn new(setup: WorkerSetup) -> std::io::Result<Self> {
        let local = setup.sfu.local_addr;
        Ok(Self {
            index: setup.index,
            socket: BatchSocket::new(setup.socket)?,
            local,
            sfu: Sfu::new(setup.sfu),
            commands: setup.commands,
            events: setup.events,
            stats: setup.stats,
            published: setup.published,
            next_publish: now(),
        })
    }

    async fn run(mut self) {
        tracing::debug!(worker = self.index, addr = %self.local, "worker started");
        let (mut timeout, _) = self.drain().await;
        self.publish(now());
        loop {
            let woke;
            let mut commanded = false;
            tokio::select! {
                biased;
                command = self.commands.recv() => {
                    woke = now();
                    match command {
                        None | Some(Command::Stop) => break,
                        Some(command) => self.command(command),
                    }
                    commanded = true;
                }
                received = self.socket.recv_batch() => {
                    woke = now();
                    match received {
                        Ok(()) => self.receive(woke),
                        Err(e) => {
                            tracing::debug!(worker = self.index, error = %e, "udp receive failed");
                            tokio::task::yield_now().await;
                        }
                    }
                }
                () = tokio::time::sleep_until(timeout.into()) => {
                    woke = now();
                    self.sfu.handle_timeout(woke);
                }
            }
            let (next, evented) = self.drain().await;
            timeout = next;
            let done = now();
            self.stats.loop_time(done.saturating_duration_since(woke));
            // Publish at once when something changed that others wait for.
            if commanded || evented || done >= self.next_publish {
                self.publish(done);
            }
        }
        self.publish(now());
        tracing::debug!(worker = self.index, "worker stopped");
    }

    fn receive(&mut self, now: Instant) {
        let mut count = 0;
        for datagram in self.socket.datagrams() {
            count += 1;
            self.sfu
                .handle_receive(now, datagram.source, self.local, datagram.contents);
        }
        self.stats.received_batch(count);
    }

    fn command(&mut self, command: Command) {
        let (now, unix_now) = clock();
        match command {
            Command::Offer { token, sdp, reply } => {
                let result = self.sfu.handle_offer(now, unix_now, &token, &sdp);
                // Publish the new participant before the answer goes out, so
                // that a drain or capacity check right after it counts them.
                if result.is_ok() {
                    self.publish(now);
                }
                let _ = reply.send(result);
            }
            Command::Answer {
                room,
                participant,
                sdp,
                reply,
            } => {
                let _ = reply.send(self.sfu.handle_answer(&room, &participant, &sdp));
            }
            Command::Candidate {
                room,
                participant,
                candidate,
            } => {
                if let Err(e) = self.sfu.handle_candidate(&room, &participant, &candidate) {
                    tracing::debug!(%room, %participant, error = %e, "candidate ignored");
                }
            }
            Command::Kick { room, participant } => self.sfu.kick(&room, &participant),
            Command::CloseRoom { room } => self.sfu.close_room(&room),
            Command::SetDraining(draining) => self.sfu.set_draining(draining),
            Command::Stop => {}
        }
    }

    /// Drains the core's output; returns its next timeout and whether it
    /// raised events.
    async fn drain(&mut self) -> (Instant, bool) {
        let mut evented = false;
        loop {
            match self.sfu.poll_output() {
                Output::Transmit(t) => {
                    if let Err(e) = self.socket.send(t.destination, &t.contents).await {
                        self.stats.send_errors.fetch_add(1, Ordering::Relaxed);
                        tracing::trace!(worker = self.index, error = %e, "udp send failed");
                    }
                }
                Output::Event(event) => {
                    // No receiver (standalone, nobody listening) is fine.
                    let _ = self.events.send(event);
                    evented = true;
                }
                Output::Timeout(at) => return (at, evented),
            }
        }
    }

    fn publish(&mut self, now: Instant) {
        self.stats.publish(Snapshot {
            sfu: self.sfu.stats(),
            rooms: self.sfu.rooms(),
        });
        self.published.send_modify(|n| *n = n.wrapping_add(1));
        self.next_publish = now + PUBLISH_EVERY;
    }
}
