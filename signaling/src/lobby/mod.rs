//! The waiting-room state machine: seats, queues, positions and estimated
//! waits, resume tokens and grace periods, clinician subscriptions and
//! actions, with tenant isolation on every operation.
//!
//! [`Lobby`] is a plain struct: no tokio, no sockets, no clock. Inputs come in
//! through `handle_*` with the current time as an argument; outputs (messages
//! for connections, connections to close, audit events) are drained with
//! [`Lobby::poll_output`], and [`Lobby::poll_timeout`] says when to call
//! [`Lobby::handle_timeout`] next. `ws` drives it; unit tests drive it directly.
//!
//! Patient data (names, intake answers) lives only in [`seat::Seat`]s, in
//! memory, and is dropped with the seat: when the consultation ends, the
//! patient leaves or is denied, or the grace period after a dropped connection
//! passes. A clinician only ever reaches seats and rooms of their own tenant;
//! anything else is `not_found`, exactly as if it did not exist.
//!
//! Calls (issue 4) live in [`Calls`], owned here: `calls` (this module's
//! glue) puts admitted seats into calls and takes them out again; call
//! messages, relay answers and relay events pass straight through.
//! The patient device check's throwaway relay placements live in
//! `conntest` (no seat, no waiting room).

mod calls;
mod clinician;
pub mod conntest;
mod events;
mod patient;
pub mod persist;
mod restore;
mod room;
pub(crate) mod seat;
mod subscribe;
#[cfg(test)]
mod tests;

use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use protocol::client::{
    ClientToSignaling, ErrorCode, RequestId, Role, SignalingToClient, StaffIdentity,
};
use protocol::{ParticipantId, Region, RoomId, TenantId};

use crate::audit::AuditEvent;
use crate::calls::{CallRelays, Calls, OfferJob};
use crate::directory::{Directory, RoomInfo};
use room::RoomQueue;
use seat::{Seat, TokenHash};

/// A client connection, numbered by the driver.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub u64);

/// Who a connection speaks for, established by `hello`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Peer {
    /// A patient (no account).
    Patient,
    /// A clinician whose session was validated by the driver.
    Clinician(StaffIdentity),
}

/// Where the lobby looks rooms up; implemented by [`Directory`].
pub trait RoomDirectory: Send + Sync {
    /// One room, of any tenant.
    fn room(&self, id: &RoomId) -> Option<RoomInfo>;
    /// Every room of one tenant.
    fn rooms_of(&self, tenant: &TenantId) -> Vec<RoomInfo>;
}

impl RoomDirectory for Directory {
    fn room(&self, id: &RoomId) -> Option<RoomInfo> {
        Directory::room(self, id)
    }
    fn rooms_of(&self, tenant: &TenantId) -> Vec<RoomInfo> {
        Directory::rooms_of(self, tenant)
    }
}

/// Tunables of the lobby.
#[derive(Debug, Clone)]
pub struct LobbySettings {
    /// How long a seat survives a dropped connection.
    pub grace: Duration,
    /// Assumed service time per patient before a room's first admission.
    pub default_service: Duration,
    /// How many recent admissions the service-time average covers.
    pub service_window: usize,
    /// How often subscribed clinicians get `waiting_times`.
    pub refresh: Duration,
}

impl Default for LobbySettings {
    fn default() -> Self {
        Self {
            grace: Duration::from_secs(120),
            default_service: Duration::from_secs(300),
            service_window: 10,
            refresh: Duration::from_secs(15),
        }
    }
}

/// Something the driver must do.
#[derive(Debug)]
pub enum Output {
    /// Send this message on this connection.
    Send(ConnId, SignalingToClient),
    /// Close this connection (after sending what was queued for it).
    Close(ConnId),
    /// Append this event to the audit trail.
    Audit(AuditEvent),
    /// Forward an SDP offer to a relay; feed the reply to
    /// [`Lobby::handle_offer_done`].
    Offer(OfferJob),
}

/// Counts, for metrics and the load measurement.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LobbyStats {
    /// Connections that said hello.
    pub connections: usize,
    /// Seats (waiting, in consultation, or in their grace period).
    pub seats: usize,
    /// Calls (consultations and meeting rooms' standing calls).
    pub calls: usize,
}

/// A refused request: the code and message of the `error` reply.
#[derive(Debug)]
pub struct Reject {
    code: ErrorCode,
    message: String,
}

pub(crate) fn reject(code: ErrorCode, message: impl Into<String>) -> Reject {
    Reject {
        code,
        message: message.into(),
    }
}

/// What a connection is, to the lobby.
#[derive(Debug)]
enum Conn {
    Patient {
        seat: Option<ParticipantId>,
        region: Option<Region>,
    },
    Clinician {
        staff: StaffIdentity,
        region: Option<Region>,
    },
}

/// The waiting-room state machine. See the module documentation.
pub struct Lobby {
    directory: Arc<dyn RoomDirectory>,
    settings: LobbySettings,
    conns: HashMap<ConnId, Conn>,
    seats: HashMap<ParticipantId, Seat>,
    tokens: HashMap<TokenHash, ParticipantId>,
    rooms: HashMap<RoomId, RoomQueue>,
    subscribers: HashMap<TenantId, BTreeSet<ConnId>>,
    grace: BinaryHeap<Reverse<(Instant, ParticipantId)>>,
    next_refresh: Option<Instant>,
    calls: Calls,
    conn_tests: conntest::ConnTests,
    /// Per organisation, the rooms its subscribers' last snapshot showed.
    known_rooms: HashMap<TenantId, BTreeSet<RoomId>>,
    out: VecDeque<Output>,
    /// Seat changes for the store, while write-through is on (`persist`).
    seat_log: Option<persist::SeatLog>,
}

impl std::fmt::Debug for Lobby {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lobby")
            .field("connections", &self.conns.len())
            .field("seats", &self.seats.len())
            .finish_non_exhaustive()
    }
}

impl Lobby {
    /// An empty lobby over `directory`'s rooms.
    pub fn new(directory: Arc<dyn RoomDirectory>, settings: LobbySettings) -> Self {
        Self {
            directory,
            settings,
            conns: HashMap::new(),
            seats: HashMap::new(),
            tokens: HashMap::new(),
            rooms: HashMap::new(),
            subscribers: HashMap::new(),
            grace: BinaryHeap::new(),
            next_refresh: None,
            calls: Calls::disabled(),
            conn_tests: conntest::ConnTests::default(),
            known_rooms: HashMap::new(),
            out: VecDeque::new(),
            seat_log: None,
        }
    }

    /// The lobby with calls: admitted patients are put into calls on relays.
    #[must_use]
    pub fn with_calls(mut self, calls: Calls) -> Self {
        self.calls = calls;
        self
    }

    /// The relays calls use, if calls are enabled (the driver runs offers
    /// and subscribes to events through them).
    pub fn call_relays(&self) -> Option<Arc<dyn CallRelays>> {
        self.calls.relays()
    }

    /// The settings in use.
    pub fn settings(&self) -> &LobbySettings {
        &self.settings
    }

    /// Current counts.
    pub fn stats(&self) -> LobbyStats {
        crate::metrics::global().set_waiting(self.rooms.iter().map(|(r, q)| (r, q.waiting.len())));
        LobbyStats {
            connections: self.conns.len(),
            seats: self.seats.len(),
            calls: self.calls.len(),
        }
    }

    /// A connection completed `hello` (the driver checked version and session).
    pub fn handle_hello(&mut self, conn: ConnId, peer: Peer) {
        self.handle_hello_in(conn, peer, None);
    }

    /// `hello` with the client's region (the placement hint of its calls).
    pub fn handle_hello_in(&mut self, conn: ConnId, peer: Peer, region: Option<Region>) {
        let state = match peer {
            Peer::Patient => Conn::Patient { seat: None, region },
            Peer::Clinician(staff) => Conn::Clinician { staff, region },
        };
        self.conns.insert(conn, state);
    }

    /// A message from a connection that said hello.
    pub fn handle_message(&mut self, conn: ConnId, msg: ClientToSignaling, now: Instant) {
        let request = msg.request();
        let Some(state) = self.conns.get(&conn) else {
            self.fail(
                conn,
                reject(ErrorCode::BadRequest, "send hello first"),
                request,
            );
            return;
        };
        if msg.sender_role().is_none() && msg.call().is_some_and(|c| self.conn_tests.contains(c)) {
            if let Err(r) = self.conn_test_message(conn, msg) {
                self.fail(conn, r, request);
            }
            return;
        }
        let result = match (state, msg.sender_role()) {
            (_, None) if matches!(msg, ClientToSignaling::Hello { .. }) => {
                Err(reject(ErrorCode::BadRequest, "hello was already received"))
            }
            (Conn::Patient { .. }, None) if matches!(msg, ClientToSignaling::CallLeave { .. }) => {
                self.leave(conn, now);
                Ok(())
            }
            (_, None) => {
                let r = self.calls.handle_message(conn, msg);
                self.pull_calls();
                r
            }
            (Conn::Patient { .. }, Some(Role::Clinician)) => Err(reject(
                ErrorCode::Forbidden,
                format!("{} is for clinicians", msg.type_name()),
            )),
            (Conn::Clinician { .. }, Some(Role::Patient)) => Err(reject(
                ErrorCode::Forbidden,
                format!("{} is for patients", msg.type_name()),
            )),
            (Conn::Patient { .. }, Some(Role::Patient)) => self.patient_message(conn, msg, now),
            (Conn::Clinician { staff, .. }, Some(Role::Clinician)) => {
                let staff = staff.clone();
                self.clinician_message(conn, &staff, msg, now)
            }
        };
        if let Err(r) = result {
            self.fail(conn, r, request);
        }
    }

    /// A connection closed. A patient's seat enters its grace period.
    pub fn handle_disconnect(&mut self, conn: ConnId, now: Instant) {
        self.conn_test_disconnected(conn);
        match self.conns.remove(&conn) {
            Some(Conn::Patient { seat: Some(p), .. }) => self.seat_disconnected(&p, now),
            Some(Conn::Clinician { staff, .. }) => {
                self.unsubscribe(conn, &staff.tenant);
                self.calls.conn_closed(conn);
                self.pull_calls();
            }
            _ => {}
        }
    }

    /// Time passed: releases seats whose grace period ended, refreshes waits.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.conn_test_timeouts(now);
        while let Some(Reverse((at, _))) = self.grace.peek() {
            if *at > now {
                break;
            }
            let Some(Reverse((at, p))) = self.grace.pop() else {
                break;
            };
            let expired = self
                .seats
                .get(&p)
                .is_some_and(|s| s.conn.is_none() && s.grace_until == Some(at));
            if expired {
                tracing::debug!(participant = %p, "grace period over, releasing seat");
                self.release(&p, protocol::client::LeftReason::TimedOut, now);
            }
        }
        if self.next_refresh.is_some_and(|t| t <= now) {
            self.refresh_waiting_times(now);
            self.next_refresh = (!self.subscribers.is_empty()).then(|| now + self.settings.refresh);
        }
    }

    /// The next thing to do, if any.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    /// When [`Lobby::handle_timeout`] must be called next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let grace = self.grace.peek().map(|Reverse((at, _))| *at);
        [grace, self.next_refresh, self.conn_tests.next_deadline()]
            .into_iter()
            .flatten()
            .min()
    }

    fn send(&mut self, conn: ConnId, msg: SignalingToClient) {
        self.out.push_back(Output::Send(conn, msg));
    }

    /// Moves the outputs of [`Calls`] into the lobby's, in order.
    fn pull_calls(&mut self) {
        while let Some(o) = self.calls.poll_output() {
            self.out.push_back(o);
        }
    }

    fn fail(&mut self, conn: ConnId, r: Reject, request: Option<RequestId>) {
        self.send(conn, SignalingToClient::error(r.code, r.message, request));
    }

    /// Sends `msg` to every subscribed clinician of `tenant`.
    fn broadcast(&mut self, tenant: &TenantId, msg: &SignalingToClient) {
        if let Some(subs) = self.subscribers.get(tenant) {
            for c in subs {
                self.out.push_back(Output::Send(*c, msg.clone()));
            }
        }
    }

    fn audit(&mut self, event: AuditEvent) {
        self.out.push_back(Output::Audit(event));
    }

    /// The room's queue, created from the directory entry if new.
    fn room_queue(&mut self, info: &RoomInfo) -> &mut RoomQueue {
        let window = self.settings.service_window;
        let q = self.rooms.entry(info.id.clone()).or_insert_with(|| {
            RoomQueue::new(
                info.tenant.clone(),
                info.name.clone(),
                info.hide_position,
                window,
            )
        });
        q.name.clone_from(&info.name);
        q.hide_position = info.hide_position;
        q
    }
}
