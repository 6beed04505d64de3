//! The lobby task: the one owner of the [`Lobby`]. Connection tasks send it
//! [`Command`]s over a channel; it feeds them to the lobby, drains the
//! lobby's outputs to the connections' outbound queues and the audit trail,
//! and wakes the lobby at its timeouts. Time comes from the service's
//! [`Clock`].

use protocol::client::{ClientToSignaling, SignalingToClient};
use std::collections::HashMap;
use tokio::sync::{mpsc, oneshot};

use crate::audit::Audit;
use crate::clock::Clock;
use crate::lobby::{ConnId, Lobby, LobbyStats, Output, Peer};

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
    /// Current counts.
    Stats {
        /// Where to send them.
        reply: oneshot::Sender<LobbyStats>,
    },
}

/// Runs the lobby until every command sender is dropped.
pub async fn run(mut lobby: Lobby, mut rx: mpsc::Receiver<Command>, audit: Audit, clock: Clock) {
    let mut routes: HashMap<ConnId, mpsc::Sender<Outbound>> = HashMap::new();
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
        }
        drain(&mut lobby, &mut routes, &audit);
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
        Command::Hello { conn, peer, tx } => {
            routes.insert(conn, tx);
            lobby.handle_hello(conn, peer);
        }
        Command::Message { conn, msg } => lobby.handle_message(conn, msg, clock.now()),
        Command::Disconnect { conn } => {
            routes.remove(&conn);
            lobby.handle_disconnect(conn, clock.now());
        }
        Command::Stats { reply } => {
            let _ = reply.send(lobby.stats());
        }
    }
}

fn drain(lobby: &mut Lobby, routes: &mut HashMap<ConnId, mpsc::Sender<Outbound>>, audit: &Audit) {
    while let Some(out) = lobby.poll_output() {
        let (conn, item) = match out {
            Output::Send(conn, msg) => (conn, Outbound::Msg(msg)),
            Output::Close(conn) => (conn, Outbound::Close),
            Output::Audit(event) => {
                audit.record(event);
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
