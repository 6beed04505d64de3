//! One control connection: connect, register, then pump messages both ways
//! until the connection ends.

use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt as _, StreamExt as _};
use protocol::PROTOCOL_VERSION;
use protocol::control::{Heartbeat, Register, RelayToSignaling, SignalingToRelay, register_auth};
use tokio::net::TcpStream;
use tokio::sync::{broadcast, mpsc};
use tokio::time::MissedTickBehavior;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::load::LoadSampler;
use super::{Backoff, ControlOptions};
use crate::error::RelayError;
use crate::node::{Node, unix_now};
use crate::sfu::{LeaveReason, SfuEvent};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Largest control message accepted (SDP offers are a few KiB).
const MAX_MESSAGE: usize = 1 << 20;

/// Shortest heartbeat interval honoured, whatever signaling asks for.
const MIN_HEARTBEAT_MS: u64 = 100;

fn control_err(message: impl Into<String>) -> RelayError {
    RelayError::Control(message.into())
}

/// Runs one connection; `Ok` when signaling closed it cleanly.
pub(super) async fn run(
    node: &Arc<Node>,
    url: &str,
    options: &ControlOptions,
    events: &mut broadcast::Receiver<SfuEvent>,
    backoff: &mut Backoff,
) -> Result<(), RelayError> {
    let (mut ws, heartbeat_ms) =
        tokio::time::timeout(options.register_timeout, connect_and_register(node, url))
            .await
            .map_err(|_| control_err("connecting and registering timed out"))??;
    backoff.reset();
    node.set_registered(true);
    tracing::info!(heartbeat_ms, "registered with signaling");

    let (out_tx, mut out_rx) = mpsc::unbounded_channel::<RelayToSignaling>();
    let mut heartbeat =
        tokio::time::interval(Duration::from_millis(heartbeat_ms.max(MIN_HEARTBEAT_MS)));
    heartbeat.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut draining = node.watch_draining();
    let mut sampler = LoadSampler::default();
    loop {
        tokio::select! {
            _ = heartbeat.tick() => {
                send(&mut ws, &heartbeat_message(node, &mut sampler)).await?;
            }
            Ok(()) = draining.changed() => {
                // Tell signaling at once, not at the next beat.
                send(&mut ws, &heartbeat_message(node, &mut sampler)).await?;
            }
            incoming = ws.next() => match incoming {
                None | Some(Ok(Message::Close(_))) => return Ok(()),
                Some(Err(e)) => return Err(control_err(format!("connection: {e}"))),
                Some(Ok(Message::Text(text))) => {
                    if let Some(reply) = handle(node, &text, &out_tx)? {
                        send(&mut ws, &reply).await?;
                    }
                }
                Some(Ok(Message::Binary(_))) => {
                    send(&mut ws, &RelayToSignaling::Error {
                        message: "binary control messages are not supported".into(),
                    }).await?;
                }
                Some(Ok(_)) => {} // ping/pong: tungstenite answers pings itself
            },
            Some(out) = out_rx.recv() => send(&mut ws, &out).await?,
            event = events.recv() => match event {
                Ok(event) => {
                    if let Some(message) = event_message(event) {
                        send(&mut ws, &message).await?;
                    }
                }
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!(lost = n, "control link lagged: relay events were lost");
                }
                Err(broadcast::error::RecvError::Closed) => {
                    return Err(control_err("relay stopped"));
                }
            },
        }
    }
}

async fn connect_and_register(node: &Node, url: &str) -> Result<(Ws, u64), RelayError> {
    let ws_config = WebSocketConfig::default().max_message_size(Some(MAX_MESSAGE));
    let (mut ws, _) = tokio_tungstenite::connect_async_with_config(url, Some(ws_config), false)
        .await
        .map_err(|e| control_err(format!("connecting to {url}: {e}")))?;
    send(&mut ws, &RelayToSignaling::Register(register_message(node))).await?;
    loop {
        let message = ws
            .next()
            .await
            .ok_or_else(|| control_err("signaling closed the connection during registration"))?
            .map_err(|e| control_err(format!("registration: {e}")))?;
        let Message::Text(text) = message else {
            continue;
        };
        match serde_json::from_str::<SignalingToRelay>(&text) {
            Ok(SignalingToRelay::Registered { heartbeat_ms }) => return Ok((ws, heartbeat_ms)),
            Ok(SignalingToRelay::Error { message }) => {
                return Err(control_err(format!(
                    "signaling refused registration: {message}"
                )));
            }
            Ok(_) => tracing::debug!("ignoring a control message before registration"),
            Err(_) => return Err(control_err("unparseable reply to registration")),
        }
    }
}

/// The `register` message: identity, addresses, capacity and current rooms.
pub(crate) fn register_message(node: &Node) -> Register {
    let config = node.config();
    let node_id = config.config.node_id.clone();
    let ts = unix_now();
    Register {
        version: PROTOCOL_VERSION,
        auth: register_auth(config.secret.expose(), &node_id, ts),
        node: node_id,
        region: config.config.region.clone(),
        advertise: node
            .workers()
            .addrs()
            .iter()
            .map(ToString::to_string)
            .collect(),
        capacity: config.config.capacity,
        rooms: node.workers().rooms(),
        ts,
    }
}

fn heartbeat_message(node: &Node, sampler: &mut LoadSampler) -> RelayToSignaling {
    let now = tokio::time::Instant::now().into_std();
    let mut load = node.load();
    load.packets_per_sec = sampler.packets_per_sec(now, node.totals().rtp_forwarded);
    load.cpu_percent = sampler.cpu_percent(now);
    RelayToSignaling::Heartbeat(Heartbeat {
        load,
        draining: node.is_draining(),
    })
}

/// Handles one message from signaling. Returns an immediate reply, if any;
/// offers are answered later through `out`.
fn handle(
    node: &Arc<Node>,
    text: &str,
    out: &mpsc::UnboundedSender<RelayToSignaling>,
) -> Result<Option<RelayToSignaling>, RelayError> {
    let Ok(message) = serde_json::from_str::<SignalingToRelay>(text) else {
        tracing::debug!(len = text.len(), "unparseable control message");
        return Ok(Some(RelayToSignaling::Error {
            message: "unparseable control message".into(),
        }));
    };
    match message {
        SignalingToRelay::Offer {
            request,
            grant,
            sdp,
        } => {
            let node = Arc::clone(node);
            let out = out.clone();
            tokio::spawn(async move {
                let reply = match node.offer(grant, sdp).await {
                    Ok(accepted) => {
                        tracing::info!(request, room = %accepted.room, participant = %accepted.participant, "offer answered");
                        RelayToSignaling::Answer {
                            request,
                            participant: accepted.participant,
                            sdp: accepted.answer_sdp,
                        }
                    }
                    Err(e) => {
                        tracing::info!(request, reason = %e, "offer refused");
                        RelayToSignaling::Refused {
                            request,
                            reason: e.to_string(),
                        }
                    }
                };
                let _ = out.send(reply);
            });
        }
        SignalingToRelay::RenegotiateAnswer {
            room,
            participant,
            sdp,
        } => {
            let node = Arc::clone(node);
            let out = out.clone();
            tokio::spawn(async move {
                if let Err(e) = node.answer(&room, participant.clone(), sdp).await {
                    tracing::info!(%room, %participant, error = %e, "renegotiation answer refused");
                    let _ = out.send(RelayToSignaling::Error {
                        message: format!("renegotiate_answer for {participant} in {room}: {e}"),
                    });
                }
            });
        }
        SignalingToRelay::Candidate {
            room,
            participant,
            candidate,
        } => node.candidate(&room, participant, candidate),
        SignalingToRelay::Kick { room, participant } => node.kick(&room, participant),
        SignalingToRelay::CloseRoom { room } => node.close_room(&room),
        SignalingToRelay::Registered { .. } => {}
        SignalingToRelay::Error { message } => {
            return Err(control_err(format!("signaling reported: {message}")));
        }
    }
    Ok(None)
}

/// The control message for a core event, if signaling needs to know.
fn event_message(event: SfuEvent) -> Option<RelayToSignaling> {
    match event {
        // A replaced session is the same participant reconnecting: not a leave.
        SfuEvent::ParticipantLeft {
            reason: LeaveReason::Replaced,
            ..
        }
        | SfuEvent::ParticipantConnected { .. }
        | SfuEvent::RoomClosed { .. } => None,
        SfuEvent::ParticipantLeft {
            room, participant, ..
        } => Some(RelayToSignaling::ParticipantLeft { room, participant }),
        SfuEvent::Renegotiate {
            room,
            participant,
            offer_sdp,
        } => Some(RelayToSignaling::Renegotiate {
            room,
            participant,
            sdp: offer_sdp,
        }),
    }
}

async fn send(ws: &mut Ws, message: &RelayToSignaling) -> Result<(), RelayError> {
    let text = serde_json::to_string(message)
        .map_err(|e| control_err(format!("encoding a control message: {e}")))?;
    ws.send(Message::text(text))
        .await
        .map_err(|e| control_err(format!("sending: {e}")))
}
