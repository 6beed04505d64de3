//! `GET /control`: the WebSocket relays dial. The first message must be a
//! `register` with the current protocol version and a valid HMAC over the
//! node id and time (see [`protocol::control::verify_register_auth`]);
//! otherwise the relay gets an `error` and the connection closes. After
//! `registered {heartbeat_ms}`, this task pumps messages both ways until
//! the connection ends, which marks the relay down (unless the same node
//! has connected again meanwhile).
//!
//! Nothing a relay sends can panic this task. Logs carry node ids and
//! request ids only: grants and SDP are never logged.
//!
//! In a cluster, a relay may dial a node that does not own the lobby: that
//! node pipes the socket to the owner (`cluster::pipe`), which runs this
//! same logic on the piped socket ([`serve_piped`]).

use std::sync::Arc;

use axum::Extension;
use axum::extract::State;
use axum::extract::ws::WebSocketUpgrade;
use axum::response::Response;
use protocol::control::{Register, RelayToSignaling, SignalingToRelay};
use tracing::Instrument as _;

use super::RelayPool;
use crate::cluster::PipeKind;
use crate::cluster::pipe::Pipes;
use crate::cluster::socket::{Incoming, PipedSocket, Socket};

/// Largest control message accepted (SDP is a few KiB; `register` lists rooms).
pub const MAX_CONTROL_MESSAGE: usize = 1 << 20;

/// `GET /control`: upgrades and runs one relay's control connection, or,
/// on a node that does not own the lobby (with [`Pipes`] as an extension),
/// pipes it to the owner.
pub async fn handler(
    State(pool): State<Arc<RelayPool>>,
    pipes: Option<Extension<Arc<Pipes>>>,
    upgrade: WebSocketUpgrade,
) -> Response {
    let upgrade = upgrade
        .max_message_size(MAX_CONTROL_MESSAGE)
        .max_frame_size(MAX_CONTROL_MESSAGE);
    if let Some(Extension(pipes)) = pipes
        && pipes.should_pipe()
    {
        return upgrade.on_upgrade(move |socket| {
            let span = tracing::info_span!("control_pipe");
            pipes
                .run_front(socket, PipeKind::Relay, None)
                .instrument(span)
        });
    }
    upgrade.on_upgrade(move |socket| {
        let span = tracing::info_span!("control", node = tracing::field::Empty);
        run(socket, pool).instrument(span)
    })
}

/// The control connection of a relay whose socket a front-end node pipes
/// to this node (the lobby owner).
pub fn serve_piped(
    pool: Arc<RelayPool>,
    socket: PipedSocket,
) -> impl Future<Output = ()> + Send + 'static {
    let span = tracing::info_span!("control", node = tracing::field::Empty, piped = true);
    run(socket, pool).instrument(span)
}

async fn send<S: Socket>(socket: &mut S, message: &SignalingToRelay) -> bool {
    let Ok(text) = serde_json::to_string(message) else {
        return false;
    };
    socket.send_text(text).await.is_ok()
}

/// Sends an `error` and closes.
async fn refuse<S: Socket>(mut socket: S, message: &str) {
    let _ = send(
        &mut socket,
        &SignalingToRelay::Error {
            message: message.to_owned(),
        },
    )
    .await;
    let _ = socket.send_close(None).await;
}

/// Waits for the `register` message.
async fn registration<S: Socket>(
    socket: &mut S,
    pool: &RelayPool,
) -> Result<Register, &'static str> {
    let first = tokio::time::timeout(pool.settings.register_timeout, async {
        loop {
            match socket.recv().await {
                Some(Incoming::Text(text)) => return Some(text),
                Some(Incoming::Control) => {}
                Some(Incoming::Binary) | None => return None,
            }
        }
    })
    .await
    .map_err(|_| "register timed out")?
    .ok_or("expected a register message")?;
    match serde_json::from_str::<RelayToSignaling>(&first) {
        Ok(RelayToSignaling::Register(reg)) => Ok(reg),
        _ => Err("the first message must be register"),
    }
}

/// Runs one relay's control connection to its end.
async fn run<S: Socket>(mut socket: S, pool: Arc<RelayPool>) {
    let reg = match registration(&mut socket, &pool).await {
        Ok(reg) => reg,
        Err(message) => {
            refuse(socket, message).await;
            return;
        }
    };
    let mut link = match pool.register(&reg) {
        Ok(link) => link,
        Err(e) => {
            refuse(socket, &e.to_string()).await;
            return;
        }
    };
    tracing::Span::current().record("node", reg.node.as_str());
    if !send(&mut socket, &link.registered()).await {
        return;
    }
    loop {
        tokio::select! {
            out = link.recv() => {
                let Some(message) = out else {
                    // Replaced by a newer connection, declared dead, or shutdown.
                    let _ = socket.send_close(None).await;
                    break;
                };
                if !send(&mut socket, &message).await {
                    break;
                }
            }
            incoming = socket.recv() => match incoming {
                Some(Incoming::Text(text)) => {
                    if let Some(reply) = link.handle_text(&text)
                        && !send(&mut socket, &reply).await
                    {
                        break;
                    }
                }
                Some(Incoming::Binary) => {
                    let reply = SignalingToRelay::Error {
                        message: "binary control messages are not supported".into(),
                    };
                    if !send(&mut socket, &reply).await {
                        break;
                    }
                }
                Some(Incoming::Control) => {}
                None => break,
            },
        }
    }
    // Dropping `link` marks the relay down unless it reconnected meanwhile.
}

/// The routes of this module: `GET /control`.
pub fn router(pool: Arc<RelayPool>) -> axum::Router {
    axum::Router::new()
        .route("/control", axum::routing::get(handler))
        .route_layer(axum::middleware::from_fn(
            crate::ws::origin::refuse_browsers,
        ))
        .with_state(pool)
}
