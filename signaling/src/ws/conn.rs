//! One client connection: a thin pump between the WebSocket and the lobby
//! task. It owns everything that is about this connection alone — `hello`
//! (version, role, session), frame size, rate limit, JSON parsing, the role
//! check, and the clinician's session on every action — so one bad client
//! only ever gets errors on its own socket.
//!
//! Logs carry the connection number, role, message type and error code only:
//! never message text, names, answers or tokens.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::ws::close_code;
use protocol::client::{ClientToSignaling, ErrorCode, Role, SignalingToClient, StaffIdentity};
use protocol::{PROTOCOL_VERSION, Sensitive};
use tokio::sync::mpsc;

use super::Shared;
use super::driver::{Command, OUTBOUND_QUEUE, Outbound};
use super::rate::TokenBucket;
use crate::cluster::socket::{Incoming, Socket, SocketClosed};
use crate::lobby::{ConnId, Peer};

/// What the connection has established so far.
enum State {
    /// Before `hello`.
    Greeting,
    Patient,
    /// A clinician and the session token to re-validate on every action.
    Clinician(Sensitive<String>),
}

/// Why the pump stops.
enum Flow {
    Continue,
    Close,
}

struct Conn {
    id: ConnId,
    shared: Arc<Shared>,
    state: State,
    bucket: TokenBucket,
    /// When the last `rate_limited` error was sent (at most one a second).
    last_limited: Option<Instant>,
    /// The outbound queue's sender until `hello` hands it to the lobby task;
    /// after that the lobby holds the only sender, so if it drops it (queue
    /// full) the queue closes and this connection ends.
    tx: Option<mpsc::Sender<Outbound>>,
    /// The session cookie of the upgrade request, if same-origin.
    cookie: Option<Sensitive<String>>,
}

/// Runs one connection to its end, on a WebSocket of this node or on a
/// socket piped from a front-end node (`cluster::pipe`).
///
/// `cookie` is the session from the upgrade request's cookie, used when a
/// clinician's `hello` carries none.
pub(super) async fn run<S: Socket>(
    mut socket: S,
    shared: Arc<Shared>,
    id: ConnId,
    cookie: Option<Sensitive<String>>,
) {
    let mut shutdown = shared.shutdown.clone();
    let mut revoked = shared.auth.revocations();
    let (tx, mut rx) = mpsc::channel(OUTBOUND_QUEUE);
    let settings = &shared.settings;
    let hello_deadline = tokio::time::Instant::now() + settings.hello_timeout;
    let mut conn = Conn {
        id,
        bucket: TokenBucket::new(
            settings.rate_per_sec,
            settings.rate_burst,
            shared.clock.now(),
        ),
        shared: shared.clone(),
        state: State::Greeting,
        last_limited: None,
        tx: Some(tx),
        cookie,
    };
    tracing::debug!(conn = id.0, "connection opened");
    loop {
        let greeting = matches!(conn.state, State::Greeting);
        let flow = tokio::select! {
            frame = socket.recv() => match frame {
                Some(frame) => conn.on_frame(&mut socket, frame).await,
                // Closed, reset, or a frame beyond the hard size cap.
                None => Flow::Close,
            },
            out = rx.recv() => match out {
                Some(Outbound::Msg(msg)) => {
                    let closes = matches!(&msg, SignalingToClient::Error { code, .. } if code.closes_connection());
                    if send(&mut socket, &msg).await.is_err() || closes { Flow::Close } else { Flow::Continue }
                }
                Some(Outbound::Close) | None => Flow::Close,
            },
            () = tokio::time::sleep_until(hello_deadline), if greeting => {
                let msg = "no hello within the time limit";
                let _ = send(&mut socket, &SignalingToClient::error(ErrorCode::BadRequest, msg, None)).await;
                Flow::Close
            }
            changed = revoked.changed(), if matches!(conn.state, State::Clinician(_)) => {
                conn.on_revocation(&mut socket, changed.is_ok()).await
            }
            _ = shutdown.changed() => {
                let msg = "the server is shutting down; reconnect shortly";
                let _ = send(&mut socket, &SignalingToClient::error(ErrorCode::ShuttingDown, msg, None)).await;
                let _ = socket.send_close(Some((close_code::AWAY, "shutting down"))).await;
                Flow::Close
            }
        };
        if matches!(flow, Flow::Close) {
            break;
        }
    }
    if !matches!(conn.state, State::Greeting) {
        let _ = conn
            .shared
            .lobby
            .send(Command::Disconnect { conn: id })
            .await;
    }
    socket.finish().await;
    tracing::debug!(conn = id.0, "connection closed");
}

async fn send<S: Socket>(socket: &mut S, msg: &SignalingToClient) -> Result<(), SocketClosed> {
    let text = serde_json::to_string(msg).unwrap_or_else(|_| {
        r#"{"type":"error","code":"bad_request","message":"internal encoding error"}"#.to_owned()
    });
    socket.send_text(text).await
}

impl Conn {
    /// Some session ended early (logout, disabled account): if it was this
    /// connection's, say so and close at once.
    async fn on_revocation<S: Socket>(&mut self, socket: &mut S, watching: bool) -> Flow {
        let t = self.shared.clock.now();
        let live = match &self.state {
            State::Clinician(token) => {
                watching && self.shared.auth.session_is_live(token.expose(), t)
            }
            _ => true,
        };
        if live {
            return Flow::Continue;
        }
        tracing::debug!(conn = self.id.0, "session ended elsewhere");
        let text = "your session has ended; log in again";
        let _ = self
            .reply(socket, ErrorCode::SessionExpired, text, None)
            .await;
        Flow::Close
    }

    async fn on_frame<S: Socket>(&mut self, socket: &mut S, frame: Incoming) -> Flow {
        let text = match frame {
            Incoming::Text(t) => t,
            Incoming::Binary => {
                return self
                    .reply(
                        socket,
                        ErrorCode::BadJson,
                        "binary frames are not supported",
                        None,
                    )
                    .await;
            }
            Incoming::Control => return Flow::Continue,
        };
        let t = self.shared.clock.now();
        if !self.bucket.try_take(t) {
            if self
                .last_limited
                .is_none_or(|l| t.saturating_duration_since(l).as_secs() >= 1)
            {
                self.last_limited = Some(t);
                tracing::debug!(conn = self.id.0, "rate limited");
                let msg = format!(
                    "too many messages: at most {} per second; dropped",
                    self.shared.settings.rate_per_sec
                );
                return self.reply(socket, ErrorCode::RateLimited, &msg, None).await;
            }
            return Flow::Continue;
        }
        if text.len() > self.shared.settings.max_frame_bytes {
            let msg = format!(
                "frame of {} bytes exceeds the limit of {} bytes",
                text.len(),
                self.shared.settings.max_frame_bytes
            );
            return self.reply(socket, ErrorCode::TooLarge, &msg, None).await;
        }
        let msg = match ClientToSignaling::parse(text.as_str()) {
            Ok(m) => m,
            Err(e) => {
                tracing::debug!(conn = self.id.0, code = ?e.code, "bad input");
                return self.reply(socket, e.code, &e.message, None).await;
            }
        };
        self.on_message(socket, msg, t).await
    }

    async fn on_message<S: Socket>(
        &mut self,
        socket: &mut S,
        msg: ClientToSignaling,
        t: Instant,
    ) -> Flow {
        let request = msg.request();
        let kind = msg.type_name();
        if let ClientToSignaling::Hello {
            version,
            role,
            session,
            region,
        } = msg
        {
            return self
                .on_hello(socket, version, role, session, region, t)
                .await;
        }
        let role = match &self.state {
            State::Greeting => {
                return self
                    .reply(socket, ErrorCode::BadRequest, "send hello first", request)
                    .await;
            }
            State::Patient => Role::Patient,
            State::Clinician(_) => Role::Clinician,
        };
        if !msg.allowed_for(role) {
            tracing::debug!(conn = self.id.0, kind, "message not allowed for the role");
            let text = format!("{kind} is not allowed for a {role:?} connection").to_lowercase();
            return self
                .reply(socket, ErrorCode::Forbidden, &text, request)
                .await;
        }
        if let State::Clinician(token) = &self.state {
            match self.shared.auth.check_session(token.expose(), t) {
                Ok(Some(_)) => {}
                Ok(None) => {
                    tracing::debug!(conn = self.id.0, "session expired");
                    let text = "your session has expired; log in again";
                    let _ = self
                        .reply(socket, ErrorCode::SessionExpired, text, request)
                        .await;
                    return Flow::Close;
                }
                // Redis does not answer: the session may be fine; retry later.
                Err(_) => return self.unavailable(socket, request).await,
            }
        }
        tracing::trace!(conn = self.id.0, kind, "message");
        let cmd = Command::Message { conn: self.id, msg };
        if self.shared.lobby.send(cmd).await.is_err() {
            return Flow::Close;
        }
        Flow::Continue
    }

    async fn on_hello<S: Socket>(
        &mut self,
        socket: &mut S,
        version: u32,
        role: Role,
        session: Option<Sensitive<String>>,
        region: Option<protocol::Region>,
        t: Instant,
    ) -> Flow {
        if !matches!(self.state, State::Greeting) {
            return self
                .reply(
                    socket,
                    ErrorCode::BadRequest,
                    "hello was already received",
                    None,
                )
                .await;
        }
        if version != PROTOCOL_VERSION {
            let text = format!(
                "protocol version {version} is not supported; this server speaks {PROTOCOL_VERSION}"
            );
            let _ = self
                .reply(socket, ErrorCode::VersionMismatch, &text, None)
                .await;
            return Flow::Close;
        }
        let (peer, staff) = match role {
            Role::Patient => (Peer::Patient, None),
            Role::Clinician => {
                let checked = session.or_else(|| self.cookie.take()).map(|s| {
                    self.shared
                        .auth
                        .check_session(s.expose(), t)
                        .map(|i| (s, i))
                });
                let info = match checked {
                    Some(Ok((s, Some(i)))) => Some((s, i)),
                    None | Some(Ok((_, None))) => None,
                    // Redis does not answer: not "unauthenticated" (the
                    // client would send the user to log in); retry later.
                    Some(Err(_)) => return self.unavailable(socket, None).await,
                };
                let Some((token, info)) = info else {
                    tracing::debug!(conn = self.id.0, "clinician hello without a valid session");
                    let text = "a valid session token from /api/login is required";
                    let _ = self
                        .reply(socket, ErrorCode::Unauthenticated, text, None)
                        .await;
                    return Flow::Close;
                };
                let staff = StaffIdentity {
                    clinician: info.clinician,
                    tenant: info.tenant,
                    display_name: info.display_name,
                };
                self.state = State::Clinician(token);
                (Peer::Clinician(staff.clone()), Some(staff))
            }
        };
        if matches!(role, Role::Patient) {
            self.state = State::Patient;
        }
        let role_name = match role {
            Role::Patient => "patient",
            Role::Clinician => "clinician",
        };
        tracing::Span::current().record("role", role_name);
        tracing::debug!(conn = self.id.0, role = ?role, clinician = staff.as_ref().map(|s| s.clinician.as_str()), "hello");
        let welcome = SignalingToClient::Welcome {
            version: PROTOCOL_VERSION,
            role,
            staff,
        };
        if send(socket, &welcome).await.is_err() {
            return Flow::Close;
        }
        let Some(tx) = self.tx.take() else {
            return Flow::Close;
        };
        let cmd = Command::Hello {
            conn: self.id,
            peer,
            region,
            tx,
        };
        if self.shared.lobby.send(cmd).await.is_err() {
            return Flow::Close;
        }
        Flow::Continue
    }

    /// The session store (Redis) failed during a session check: a
    /// retryable `shutting_down` error ("reconnect later"), then close.
    async fn unavailable<S: Socket>(
        &mut self,
        socket: &mut S,
        request: Option<protocol::client::RequestId>,
    ) -> Flow {
        tracing::warn!(
            conn = self.id.0,
            "session check failed: session store unavailable"
        );
        let text = "the session store does not answer; reconnect in a few seconds";
        let _ = self
            .reply(socket, ErrorCode::ShuttingDown, text, request)
            .await;
        Flow::Close
    }

    /// Sends an `error` on this connection only.
    async fn reply<S: Socket>(
        &mut self,
        socket: &mut S,
        code: ErrorCode,
        message: &str,
        request: Option<protocol::client::RequestId>,
    ) -> Flow {
        match send(socket, &SignalingToClient::error(code, message, request)).await {
            Ok(()) if !code.closes_connection() => Flow::Continue,
            _ => Flow::Close,
        }
    }
}
