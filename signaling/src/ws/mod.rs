//! The client WebSocket (`/ws`): thin pumps between each socket and the one
//! lobby task.
//!
//! - [`driver`]: the lobby task, which owns the [`Lobby`] and its timers.
//! - `conn`: one task per connection: hello, session checks, size and rate
//!   limits, parsing, role checks; then forwards messages to the lobby task.
//! - [`rate`]: the per-connection token bucket.
//! - [`origin`]: which web pages may open `/ws` (403 otherwise).
//!
//! Frames larger than [`WsSettings::max_frame_bytes`] get a `too_large`
//! error and the connection stays open, up to a hard cap of
//! [`WsSettings::hard_frame_cap`] (four times the limit, at least 1 MiB)
//! beyond which the WebSocket layer closes the connection (close code 1009).

mod conn;
pub mod driver;
pub mod origin;
pub mod rate;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Extension;
use axum::extract::State;
use axum::extract::ws::WebSocketUpgrade;
use axum::http::HeaderMap;
use axum::http::header::{COOKIE, HOST, ORIGIN};
use axum::response::Response;
use protocol::client::RosterRole;
use protocol::{ParticipantId, RoomId, Sensitive};
use tokio::sync::{mpsc, oneshot, watch};
use tracing::Instrument as _;

use crate::account_api::is_session_cookie;
use crate::audit::Audit;
use crate::auth::Auth;
use crate::calls::CallSummary;
use crate::clock::Clock;
use crate::cluster::PipeKind;
use crate::cluster::pipe::Pipes;
use crate::cluster::socket::PipedSocket;
use crate::lobby::{ConnId, Lobby, LobbyStats};
use driver::Command;

/// Initial read buffer of a connection, in bytes.
const READ_BUFFER: usize = 4096;

/// Limits of client connections.
#[derive(Debug, Clone)]
pub struct WsSettings {
    /// Largest accepted text frame, in bytes (larger: `too_large`).
    pub max_frame_bytes: usize,
    /// Messages per second allowed per connection, on average.
    pub rate_per_sec: u32,
    /// Burst allowance of the rate limit.
    pub rate_burst: u32,
    /// How long a new connection may take to send `hello`.
    pub hello_timeout: Duration,
    /// Which `Origin`s may open a socket.
    pub origins: origin::OriginPolicy,
}

impl Default for WsSettings {
    fn default() -> Self {
        Self {
            max_frame_bytes: 64 * 1024,
            rate_per_sec: 20,
            rate_burst: 40,
            hello_timeout: Duration::from_secs(10),
            origins: origin::OriginPolicy::SameHost,
        }
    }
}

impl WsSettings {
    /// Frames beyond this size close the connection (the socket layer must
    /// buffer a frame to skip it): 4 × the limit, at least 1 MiB.
    pub fn hard_frame_cap(&self) -> usize {
        (self.max_frame_bytes.saturating_mul(4)).max(1 << 20)
    }
}

/// A handle to the lobby task; cheap to clone.
#[derive(Debug, Clone)]
pub struct LobbyHandle {
    tx: mpsc::Sender<Command>,
}

impl LobbyHandle {
    /// A handle whose commands arrive on the returned receiver (the cluster's lobby runner).
    pub fn channel() -> (Self, mpsc::Receiver<Command>) {
        let (tx, rx) = mpsc::channel(4096);
        (Self { tx }, rx)
    }

    /// Starts the lobby task on the current tokio runtime.
    pub fn spawn(lobby: Lobby, audit: Audit, clock: Clock) -> (Self, tokio::task::JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(4096);
        let task = tokio::spawn(driver::run(lobby, rx, audit, clock));
        (Self { tx }, task)
    }

    /// Sends a command, waiting if the lobby task is busy.
    pub async fn send(&self, cmd: Command) -> Result<(), mpsc::error::SendError<Command>> {
        self.tx.send(cmd).await
    }

    /// Current counts; `None` if the lobby task has stopped.
    pub async fn stats(&self) -> Option<LobbyStats> {
        let (reply, rx) = oneshot::channel();
        self.tx.send(Command::Stats { reply }).await.ok()?;
        rx.await.ok()
    }

    /// What signaling knows about `call` (its organisation, room, relay and
    /// clinicians); `None` if there is no such call. For REST endpoints that
    /// act on calls (e.g. issuing WHIP/WHEP tokens) to check the tenant.
    pub async fn call_summary(&self, call: &RoomId) -> Option<CallSummary> {
        let (reply, rx) = oneshot::channel();
        let cmd = Command::CallSummary {
            call: call.clone(),
            reply,
        };
        self.tx.send(cmd).await.ok()?;
        rx.await.ok().flatten()
    }

    /// A WHIP publisher or WHEP viewer joined (`present`) or left `call`:
    /// the call's roster shows it. Fire and forget.
    pub async fn external_member(
        &self,
        call: &RoomId,
        participant: &ParticipantId,
        role: RosterRole,
        display_name: &str,
        present: bool,
    ) {
        let cmd = Command::ExternalMember {
            call: call.clone(),
            participant: participant.clone(),
            role,
            display_name: Sensitive::new(display_name.to_owned()),
            present,
        };
        let _ = self.tx.send(cmd).await;
    }

    /// Whether the lobby task is running.
    pub fn is_alive(&self) -> bool {
        !self.tx.is_closed()
    }
}

/// What every connection task shares.
#[derive(Debug)]
pub struct Shared {
    /// The lobby task.
    pub lobby: LobbyHandle,
    /// Clinician sessions.
    pub auth: Arc<Auth>,
    /// Connection limits.
    pub settings: WsSettings,
    /// The service's clock.
    pub clock: Clock,
    /// Becomes `true` when the server shuts down.
    pub shutdown: watch::Receiver<bool>,
    /// Held by every connection task; dropped when it ends (to wait for them).
    pub alive: mpsc::Sender<()>,
    next_conn: AtomicU64,
}

impl Shared {
    /// Shared state for connection tasks.
    pub fn new(
        lobby: LobbyHandle,
        auth: Arc<Auth>,
        settings: WsSettings,
        clock: Clock,
        shutdown: watch::Receiver<bool>,
        alive: mpsc::Sender<()>,
    ) -> Self {
        Self {
            lobby,
            auth,
            settings,
            clock,
            shutdown,
            alive,
            next_conn: AtomicU64::new(1),
        }
    }
}

/// `GET /ws`: upgrades and runs the connection; 403 if the `Origin` is not
/// allowed ([`origin`]). On a node that does not own the lobby (with
/// [`Pipes`] as an extension), the socket is piped to the owner instead,
/// which runs the same connection logic ([`serve_piped`]).
pub async fn handler(
    State(shared): State<Arc<Shared>>,
    pipes: Option<Extension<Arc<Pipes>>>,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    if !shared.settings.origins.allows(&headers) {
        tracing::debug!("WebSocket upgrade refused: origin not allowed");
        return origin::forbidden();
    }
    let cap = shared.settings.hard_frame_cap();
    let cookie = cookie_session(&headers);
    let upgrade = upgrade
        .max_message_size(cap)
        .max_frame_size(cap)
        // The socket library's default read buffer (128 KiB, allocated up
        // front) was ~90% of the memory of a waiting patient; it grows on
        // demand for larger frames. Messages are flushed one by one anyway.
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(0);
    if let Some(Extension(pipes)) = pipes
        && pipes.should_pipe()
    {
        return upgrade.on_upgrade(move |socket| {
            let span = tracing::info_span!("ws_pipe");
            async move {
                let alive = shared.alive.clone();
                pipes.run_front(socket, PipeKind::Client, cookie).await;
                drop(alive);
            }
            .instrument(span)
        });
    }
    upgrade.on_upgrade(move |socket| {
        let id = ConnId(shared.next_conn.fetch_add(1, Ordering::Relaxed));
        // Every line the connection logs carries `conn` (and `role` once
        // `hello` succeeded): see docs/operations.md "Logs".
        let span = tracing::info_span!("ws", conn = id.0, role = tracing::field::Empty);
        async move {
            let alive = shared.alive.clone();
            conn::run(socket, shared, id, cookie).await;
            drop(alive);
        }
        .instrument(span)
    })
}

/// A client connection that a front-end node pipes to this node (the lobby
/// owner): the same logic as [`handler`]'s, on the piped socket.
pub fn serve_piped(
    shared: Arc<Shared>,
    socket: PipedSocket,
    cookie: Option<Sensitive<String>>,
) -> impl Future<Output = ()> + Send + 'static {
    let id = ConnId(shared.next_conn.fetch_add(1, Ordering::Relaxed));
    let span = tracing::info_span!(
        "ws",
        conn = id.0,
        role = tracing::field::Empty,
        piped = true
    );
    async move {
        let alive = shared.alive.clone();
        conn::run(socket, shared, id, cookie).await;
        drop(alive);
    }
    .instrument(span)
}

/// The session cookie of a same-origin upgrade request, for a clinician
/// `hello` without a `session` field (browsers cannot read the HttpOnly
/// cookie). A request whose `Origin` is another host gets no cookie session,
/// so another site cannot open a socket on a clinician's behalf.
fn cookie_session(headers: &HeaderMap) -> Option<Sensitive<String>> {
    let host = headers.get(HOST).and_then(|h| h.to_str().ok());
    if let Some(origin) = headers.get(ORIGIN) {
        let origin_host = origin
            .to_str()
            .ok()
            .and_then(|o| o.split_once("://"))
            .map(|(_, rest)| rest);
        if origin_host.is_none() || origin_host != host {
            return None;
        }
    }
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| is_session_cookie(k))
        .map(|(_, v)| Sensitive::new(v.to_owned()))
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn headers(pairs: &[(axum::http::HeaderName, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn the_cookie_session_needs_a_same_origin_request() {
        let c = (COOKIE, "a=b; anteroom_session=tok123");
        let same = headers(&[(HOST, "x:8080"), (ORIGIN, "http://x:8080"), c.clone()]);
        assert_eq!(cookie_session(&same).unwrap().expose(), "tok123");
        let no_origin = headers(&[(HOST, "x:8080"), c.clone()]);
        assert!(cookie_session(&no_origin).is_some());
        let other = headers(&[(HOST, "x:8080"), (ORIGIN, "https://evil.example"), c]);
        assert!(cookie_session(&other).is_none());
        assert!(cookie_session(&headers(&[(HOST, "x")])).is_none());
    }
}
