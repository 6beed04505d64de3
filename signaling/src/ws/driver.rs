//! The lobby task: the one owner of the [`Lobby`]. Connection tasks send it
//! [`Command`]s over a channel; it feeds them to the lobby, drains the
//! lobby's outputs to the connections' outbound queues and the audit trail,
//! and wakes the lobby at its timeouts. Time comes from the service's
//! [`Clock`].
//!
//! With calls, it also runs the lobby's SDP offers against the relays (each
//! in its own task, so a slow relay blocks nobody; the answer comes back
//! as an input) and feeds it the relay pool's events.
//!
//! With a seat store ([`LobbyHandle::spawn_with_store`], issue 7) it drains
//! the lobby's seat changes after every step and hands them to one writer
//! task, which applies them in order on tokio's blocking pool (a Redis call
//! blocks); the lobby never waits for the store. When the lobby task is
//! dropped (aborted: its node lost the lobby lease) the writer stops before
//! its next write, so a node that is no longer the owner stops writing.

use protocol::client::{ClientToSignaling, RosterRole, SignalingToClient};
use protocol::{ParticipantId, Region, RoomId, Sensitive};
use std::collections::HashMap;
use std::sync::Arc;

use std::time::SystemTime;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{broadcast, mpsc, oneshot};

use crate::audit::Audit;
use crate::calls::{CallRelays, CallSummary, OfferDone, OfferJob};
use crate::clock::Clock;
use crate::lobby::persist;
use crate::lobby::{ConnId, Lobby, LobbyStats, Output, Peer};
use crate::relays::RelayEvent;
use crate::store::WallClock;
use crate::store::seats::SeatStore;

use super::LobbyHandle;

mod seat_writer;
use seat_writer::{SeatWriter, StopOnDrop};

impl LobbyHandle {
    /// [`LobbyHandle::spawn`] with write-through: every seat change of
    /// `lobby` is written to `seats`, in order, off the lobby's path (see
    /// the module documentation). For the node that holds the lobby lease;
    /// a lobby taken over is first rebuilt with
    /// [`persist::load`] and [`Lobby::restore`].
    pub fn spawn_with_store(
        lobby: Lobby,
        audit: Audit,
        clock: Clock,
        seats: Arc<dyn SeatStore>,
    ) -> (Self, tokio::task::JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(4096);
        let task = tokio::spawn(run_with(lobby, rx, audit, clock, Some(seats)));
        (Self { tx }, task)
    }
}

/// Outbound queue length per connection; a client that lets it fill up is
/// too slow and is disconnected instead of slowing everyone down.
pub const OUTBOUND_QUEUE: usize = 256;

/// What the lobby task sends to a connection task.
#[derive(Debug)]
pub enum Outbound {
    /// A message to send.
    Msg(SignalingToClient),
    /// Close the connection.
    Close,
}

/// Input to the lobby task.
#[derive(Debug)]
pub enum Command {
    /// A connection completed `hello`; `tx` is its outbound queue.
    Hello {
        /// The connection.
        conn: ConnId,
        /// Patient or clinician.
        peer: Peer,
        /// The placement hint from `hello`.
        region: Option<Region>,
        /// Where its messages go.
        tx: mpsc::Sender<Outbound>,
    },
    /// A message the connection task already checked (size, rate, role, session).
    Message {
        /// From whom.
        conn: ConnId,
        /// The message.
        msg: ClientToSignaling,
    },
    /// The connection closed.
    Disconnect {
        /// The connection.
        conn: ConnId,
    },
    /// A WHIP/WHEP participant joined or left a call (roster only).
    ExternalMember {
        /// The call.
        call: RoomId,
        /// The participant.
        participant: ParticipantId,
        /// Publisher or viewer.
        role: RosterRole,
        /// The name shown in the roster.
        display_name: Sensitive<String>,
        /// Joined (true) or left.
        present: bool,
    },
    /// What signaling knows about a call (organisation, room, relay).
    CallSummary {
        /// The call.
        call: RoomId,
        /// Where to send it.
        reply: oneshot::Sender<Option<CallSummary>>,
    },
    /// Write every seat to the seat store again (after the store lost
    /// state, e.g. an event-bus gap after a Redis restart). Nothing without
    /// a store.
    RewriteSeats,
    /// Current counts.
    Stats {
        /// Where to send them.
        reply: oneshot::Sender<LobbyStats>,
    },
}

/// Relay events, or nothing when calls are disabled.
async fn next_event(
    events: Option<&mut broadcast::Receiver<RelayEvent>>,
) -> Result<RelayEvent, RecvError> {
    match events {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// Runs the lobby until every command sender is dropped.
pub async fn run(lobby: Lobby, rx: mpsc::Receiver<Command>, audit: Audit, clock: Clock) {
    run_with(lobby, rx, audit, clock, None).await;
}

/// [`run`], writing seat changes through to `seats` if given; when the
/// last command sender is dropped, waits until they are all written.
pub async fn run_with(
    mut lobby: Lobby,
    mut rx: mpsc::Receiver<Command>,
    audit: Audit,
    clock: Clock,
    seats: Option<Arc<dyn SeatStore>>,
) {
    let mut writer = seats.map(|store| {
        lobby.record_seat_changes(WallClock::pinned(clock.now(), SystemTime::now()));
        SeatWriter::spawn(store, persist::seat_ttl(lobby.settings()))
    });
    let _stop = writer.as_ref().map(|w| StopOnDrop(Arc::clone(&w.stopped)));
    let mut routes: HashMap<ConnId, mpsc::Sender<Outbound>> = HashMap::new();
    let relays = lobby.call_relays();
    let mut events = relays.as_ref().map(|r| r.subscribe());
    let (done_tx, mut done_rx) = mpsc::unbounded_channel::<OfferDone>();
    let offers = Offers {
        relays,
        done: done_tx,
    };
    loop {
        let deadline = lobby.poll_timeout();
        let sleep = async {
            match deadline {
                Some(t) => clock.sleep_until(t).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            cmd = rx.recv() => {
                let Some(cmd) = cmd else { break };
                handle(&mut lobby, &mut routes, cmd, &clock);
                // Take whatever else is already queued before draining.
                for _ in 0..64 {
                    match rx.try_recv() {
                        Ok(cmd) => handle(&mut lobby, &mut routes, cmd, &clock),
                        Err(_) => break,
                    }
                }
            }
            () = sleep => lobby.handle_timeout(clock.now()),
            Some(done) = done_rx.recv() => lobby.handle_offer_done(done),
            event = next_event(events.as_mut()) => match event {
                Ok(event) => lobby.handle_relay_event(event),
                Err(RecvError::Lagged(n)) => {
                    tracing::warn!(missed = n, "lobby missed relay events; resynchronising");
                    lobby.handle_relay_events_lost();
                }
                Err(RecvError::Closed) => events = None,
            },
        }
        drain(&mut lobby, &mut routes, &audit, &offers);
        if let Some(w) = &mut writer {
            w.write_from(&mut lobby);
        }
    }
    if let Some(w) = writer {
        w.finish(&mut lobby).await;
    }
    tracing::debug!("lobby task stopped");
}

fn handle(
    lobby: &mut Lobby,
    routes: &mut HashMap<ConnId, mpsc::Sender<Outbound>>,
    cmd: Command,
    clock: &Clock,
) {
    match cmd {
        Command::Hello {
            conn,
            peer,
            region,
            tx,
        } => {
            routes.insert(conn, tx);
            lobby.handle_hello_in(conn, peer, region);
        }
        Command::Message { conn, msg } => lobby.handle_message(conn, msg, clock.now()),
        Command::Disconnect { conn } => {
            routes.remove(&conn);
            lobby.handle_disconnect(conn, clock.now());
        }
        Command::ExternalMember {
            call,
            participant,
            role,
            display_name,
            present,
        } => lobby.handle_external_member(&call, participant, role, display_name, present),
        Command::CallSummary { call, reply } => {
            let _ = reply.send(lobby.call_summary(&call));
        }
        Command::Stats { reply } => {
            let _ = reply.send(lobby.stats());
        }
        Command::RewriteSeats => lobby.request_seat_rewrite(),
    }
}

/// Runs offers against the relays and returns their answers to the lobby.
struct Offers {
    relays: Option<Arc<dyn CallRelays>>,
    done: mpsc::UnboundedSender<OfferDone>,
}

impl Offers {
    fn spawn(&self, job: OfferJob) {
        let OfferJob {
            conn,
            call,
            participant,
            node,
            grant,
            sdp,
        } = job;
        let Some(relays) = &self.relays else {
            return;
        };
        let answer = relays.offer(node.clone(), grant.into_inner(), sdp.into_inner());
        let done = self.done.clone();
        tokio::spawn(async move {
            let result = answer.await.map(Sensitive::new);
            let _ = done.send(OfferDone {
                conn,
                call,
                participant,
                node,
                result,
            });
        });
    }
}

fn drain(
    lobby: &mut Lobby,
    routes: &mut HashMap<ConnId, mpsc::Sender<Outbound>>,
    audit: &Audit,
    offers: &Offers,
) {
    while let Some(out) = lobby.poll_output() {
        let (conn, item) = match out {
            Output::Send(conn, msg) => (conn, Outbound::Msg(msg)),
            Output::Close(conn) => (conn, Outbound::Close),
            Output::Audit(event) => {
                audit.record(event);
                continue;
            }
            Output::Offer(job) => {
                offers.spawn(job);
                continue;
            }
        };
        let Some(tx) = routes.get(&conn) else {
            continue;
        };
        if tx.try_send(item).is_err() {
            // Full (too slow) or gone: drop the route; the connection task
            // sees its queue close, ends, and reports the disconnect.
            tracing::debug!(
                conn = conn.0,
                "outbound queue full or closed, dropping connection"
            );
            routes.remove(&conn);
        }
    }
}

#[cfg(test)]
#[path = "driver_tests.rs"]
mod tests;
