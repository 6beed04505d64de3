//! The driver: worker threads, each with its own UDP port and [`Sfu`](crate::sfu::Sfu),
//! and the routing of signaling requests to the worker that owns a room.
//!
//! Rooms are pinned to a worker by a hash of the room id, so every
//! participant of a room lands on the same worker without shared state.

mod stats;
pub mod udp;
mod worker;

use std::hash::{DefaultHasher, Hash, Hasher};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use protocol::{ParticipantId, RoomId};
use tokio::sync::{broadcast, mpsc, oneshot, watch};

pub use stats::{LOOP_BUCKETS_US, Snapshot, WorkerStats};
pub use worker::Command;

use crate::config::ValidConfig;
use crate::error::RelayError;
use crate::sfu::{OfferAccepted, SfuConfig, SfuError, SfuEvent, SfuStats};

/// One running worker, as seen from the control side.
#[derive(Debug)]
struct WorkerHandle {
    addr: SocketAddr,
    commands: mpsc::UnboundedSender<Command>,
    stats: Arc<WorkerStats>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

/// The worker threads of one relay.
#[derive(Debug)]
pub struct Workers {
    workers: Vec<WorkerHandle>,
    published: Arc<watch::Sender<u64>>,
}

impl Workers {
    /// Binds one UDP socket per worker and starts the threads. Core events
    /// (participant left, renegotiation, …) are sent on `events`.
    pub fn start(
        config: &ValidConfig,
        events: &broadcast::Sender<SfuEvent>,
    ) -> Result<Self, RelayError> {
        let mut workers = Vec::with_capacity(config.workers);
        let published = Arc::new(watch::channel(0).0);
        for index in 0..config.workers {
            let port = if config.config.udp_port_base == 0 {
                0
            } else {
                // Validated: base + workers fits in a port number.
                config.config.udp_port_base + index as u16
            };
            let bind = SocketAddr::new(config.config.bind_ip, port);
            let socket = udp::bind(bind)
                .map_err(|e| RelayError::io(format!("binding worker {index} to udp {bind}"), e))?;
            let bound = socket
                .local_addr()
                .map_err(|e| RelayError::io("reading a worker's address", e))?;
            let addr = SocketAddr::new(config.advertise, bound.port());
            let mut sfu = SfuConfig::new(
                config.config.node_id.clone(),
                config.secret.expose().clone(),
                addr,
            );
            sfu.max_participants = config.config.capacity as usize;
            let (tx, rx) = mpsc::unbounded_channel();
            let stats = Arc::new(WorkerStats::default());
            let thread = worker::spawn(worker::WorkerSetup {
                index,
                socket,
                sfu,
                commands: rx,
                events: events.clone(),
                stats: Arc::clone(&stats),
                published: Arc::clone(&published),
            })
            .map_err(|e| RelayError::Worker {
                index,
                message: e.to_string(),
            })?;
            tracing::info!(worker = index, %bound, advertised = %addr, "worker listening");
            workers.push(WorkerHandle {
                addr,
                commands: tx,
                stats,
                thread: Mutex::new(Some(thread)),
            });
        }
        Ok(Self { workers, published })
    }

    /// The advertised address of each worker (advertised IP, bound port).
    pub fn addrs(&self) -> Vec<SocketAddr> {
        self.workers.iter().map(|w| w.addr).collect()
    }

    /// Each worker's shared counters.
    pub fn stats(&self) -> impl Iterator<Item = &WorkerStats> {
        self.workers.iter().map(|w| &*w.stats)
    }

    /// Whether every worker loop is still running.
    pub fn all_running(&self) -> bool {
        self.workers
            .iter()
            .all(|w| !w.stats.stopped.load(std::sync::atomic::Ordering::Acquire))
    }

    /// The core counters of every worker, summed.
    pub fn totals(&self) -> SfuStats {
        let mut total = SfuStats::default();
        for w in &self.workers {
            add(&mut total, &w.stats.snapshot().sfu);
        }
        total
    }

    /// Waits until the summed counters satisfy `done` (checked whenever a
    /// worker publishes, a few times a second while it works) and returns them.
    pub async fn totals_when(&self, done: impl Fn(&SfuStats) -> bool) -> SfuStats {
        let mut published = self.published.subscribe();
        loop {
            published.borrow_and_update();
            let totals = self.totals();
            if done(&totals) {
                return totals;
            }
            if published.changed().await.is_err() {
                return totals;
            }
        }
    }

    /// Every room carried, over all workers (as last published).
    pub fn rooms(&self) -> Vec<RoomId> {
        let mut rooms: Vec<RoomId> = self
            .workers
            .iter()
            .flat_map(|w| w.stats.snapshot().rooms)
            .collect();
        rooms.sort();
        rooms.dedup();
        rooms
    }

    /// Whether `room` exists on its worker (as last published).
    pub fn has_room(&self, room: &RoomId) -> bool {
        self.owner(room)
            .is_some_and(|w| w.stats.snapshot().rooms.contains(room))
    }

    /// Hands an offer to the worker that owns `room` (the grant's room).
    pub async fn offer(
        &self,
        room: &RoomId,
        token: String,
        sdp: String,
    ) -> Result<OfferAccepted, SfuError> {
        let (reply, answer) = oneshot::channel();
        self.send(room, Command::Offer { token, sdp, reply })?;
        answer.await.map_err(|_| stopped())?
    }

    /// Hands a client's renegotiation answer to the room's worker.
    pub async fn answer(
        &self,
        room: &RoomId,
        participant: ParticipantId,
        sdp: String,
    ) -> Result<(), SfuError> {
        let (reply, done) = oneshot::channel();
        self.send(
            room,
            Command::Answer {
                room: room.clone(),
                participant,
                sdp,
                reply,
            },
        )?;
        done.await.map_err(|_| stopped())?
    }

    /// Sends a command to the worker that owns `room`.
    pub fn send(&self, room: &RoomId, command: Command) -> Result<(), SfuError> {
        let worker = self.owner(room).ok_or_else(stopped)?;
        worker.commands.send(command).map_err(|_| stopped())
    }

    /// Sends a command to every worker.
    pub fn broadcast(&self, command: impl Fn() -> Command) {
        for w in &self.workers {
            let _ = w.commands.send(command());
        }
    }

    /// Stops every worker and waits for the threads to end.
    pub fn stop(&self) {
        self.broadcast(|| Command::Stop);
        for w in &self.workers {
            let thread = w.thread.lock().ok().and_then(|mut t| t.take());
            if let Some(thread) = thread
                && thread.join().is_err()
            {
                tracing::error!(addr = %w.addr, "worker thread panicked");
            }
        }
    }

    fn owner(&self, room: &RoomId) -> Option<&WorkerHandle> {
        self.workers.get(worker_for(room, self.workers.len()))
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The worker index a room is pinned to.
pub fn worker_for(room: &RoomId, workers: usize) -> usize {
    let mut h = DefaultHasher::new();
    room.as_str().hash(&mut h);
    (h.finish() % workers.max(1) as u64) as usize
}

fn stopped() -> SfuError {
    SfuError::Rtc("relay worker stopped".into())
}

fn add(total: &mut SfuStats, s: &SfuStats) {
    total.rooms += s.rooms;
    total.participants += s.participants;
    total.tracks += s.tracks;
    total.packets_in += s.packets_in;
    total.bytes_in += s.bytes_in;
    total.packets_out += s.packets_out;
    total.bytes_out += s.bytes_out;
    total.rtp_forwarded += s.rtp_forwarded;
    for (t, d) in total.drops.iter_mut().zip(s.drops.iter()) {
        *t += d;
    }
    total.nacks += s.nacks;
    total.keyframe_requests += s.keyframe_requests;
    total.messages += s.messages;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rooms_spread_over_workers_and_stay_put() {
        let rooms: Vec<RoomId> = (0..200)
            .map(|i| RoomId::new(format!("room-{i}")).unwrap())
            .collect();
        let mut per_worker = [0usize; 4];
        for r in &rooms {
            let w = worker_for(r, 4);
            assert_eq!(w, worker_for(r, 4));
            per_worker[w] += 1;
        }
        assert!(per_worker.iter().all(|&n| n > 20), "{per_worker:?}");
        assert_eq!(worker_for(&rooms[0], 1), 0);
    }
}
