//! A client's link to signaling across sockets: the first connection, and — for a
//! client dialled with [`Dial::reconnect`] — reconnecting after the socket drops, as
//! the browser pages do: wait a back-off with jitter (doubling up to a cap, reset once
//! a connection is welcomed), try the next URL of the list, say `hello` again, and
//! after `welcome` resume: a patient sends `resume` with the token of its latest
//! `joined` (unless the seat ended since), a clinician (whose `hello` carries the
//! session) subscribes again. The [`Agent`] and its peer connection carry on.

use std::hash::{BuildHasher as _, Hasher as _};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, anyhow, bail};
use futures_util::{SinkExt as _, StreamExt as _};
use protocol::client::{ClientToSignaling, Role, SignalingToClient};
use protocol::{PROTOCOL_VERSION, Region, Sensitive};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::agent::{Agent, Inbox};

/// First back-off before a reconnect attempt.
pub const BACKOFF_START: Duration = Duration::from_millis(200);
/// Longest back-off.
pub const BACKOFF_CAP: Duration = Duration::from_secs(3);
/// ± this fraction of jitter on every back-off.
pub const JITTER: f64 = 0.3;
/// How long one attempt may take (TCP + upgrade + `welcome`).
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);

/// Where (and whether again) a client connects.
#[derive(Debug, Clone)]
pub struct Dial {
    /// Signaling's client WebSocket URLs (`ws://…/ws`), tried in turn; the first
    /// connection goes to the first.
    pub urls: Vec<String>,
    /// Reconnect (to the next URL, with back-off and jitter) and resume when the
    /// socket drops.
    pub reconnect: bool,
}

impl Dial {
    /// One URL, no reconnect (what the single-node tests use).
    pub fn once(url: String) -> Dial {
        Dial {
            urls: vec![url],
            reconnect: false,
        }
    }

    /// A list of nodes, starting at `first`, reconnecting across all of them.
    pub fn nodes(urls: &[String], first: usize) -> Dial {
        let n = urls.len().max(1);
        Dial {
            urls: (0..urls.len())
                .filter_map(|k| urls.get((first + k) % n).cloned())
                .collect(),
            reconnect: true,
        }
    }
}

/// What a client says in `hello` (again on every reconnect).
#[derive(Debug, Clone)]
pub(super) struct HelloArgs {
    pub role: Role,
    pub session: Option<String>,
    pub region: Option<String>,
}

impl HelloArgs {
    pub(super) fn message(&self) -> Result<ClientToSignaling> {
        Ok(ClientToSignaling::Hello {
            version: PROTOCOL_VERSION,
            role: self.role,
            session: self.session.clone().map(Sensitive::new),
            region: self.region.as_deref().map(Region::new).transpose()?,
        })
    }
}

/// The history of a client's sockets.
#[derive(Debug, Clone, Default)]
pub struct LinkView {
    /// Every welcomed reconnection: when `welcome` arrived and the URL.
    pub reconnects: Vec<(Instant, String)>,
    /// Every dropped socket: when, the URL, and the close code the server sent.
    pub drops: Vec<(Instant, String, Option<u16>)>,
    /// Failed reconnect attempts (refused, closed before `welcome`, timed out).
    pub failed_attempts: u32,
    /// The URL of the current (or last) socket.
    pub url: String,
}

pub(super) type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Opens a socket to `url`.
pub(super) async fn open(url: &str) -> Result<Ws> {
    let (ws, _) = tokio::time::timeout(ATTEMPT_TIMEOUT, tokio_tungstenite::connect_async(url))
        .await
        .map_err(|_| anyhow!("connecting to {url} timed out"))?
        .with_context(|| format!("connecting to signaling's {url}"))?;
    Ok(ws)
}

/// A back-off with ±[`JITTER`].
fn jittered(base: Duration) -> Duration {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    let unit = (h.finish() % 10_000) as f64 / 10_000.0; // [0, 1)
    base.mul_f64(1.0 - JITTER + 2.0 * JITTER * unit)
}

/// The resume token of the patient's latest seat, unless it ended since.
fn resume_token(inbox: &Inbox) -> Option<String> {
    let messages = inbox.messages.lock().ok()?;
    messages.iter().rev().find_map(|m| match m {
        SignalingToClient::Joined { resume_token, .. } => Some(Some(resume_token.expose().clone())),
        SignalingToClient::Left
        | SignalingToClient::ConsultationEnded
        | SignalingToClient::Denied { .. } => Some(None),
        _ => None,
    })?
}

/// Everything the link task owns.
pub(super) struct Link {
    pub dial: Dial,
    pub hello: HelloArgs,
    pub agent: Agent,
    pub inbox: Inbox,
    pub out_rx: mpsc::UnboundedReceiver<ClientToSignaling>,
    pub view: Arc<Mutex<LinkView>>,
}

impl Link {
    /// Serves `first` (whose `hello` the caller sends through the out queue), then,
    /// if asked to, reconnects whenever the socket drops.
    pub(super) async fn run(mut self, first: Ws) {
        let mut index = 0;
        let mut ws = first;
        loop {
            let code = self.serve(ws).await;
            let url = self.url(index);
            if let Ok(mut v) = self.view.lock() {
                v.drops.push((Instant::now(), url, code));
            }
            if !self.dial.reconnect {
                return;
            }
            let Some((next, socket)) = self.reconnect(index).await else {
                return;
            };
            index = next;
            ws = socket;
        }
    }

    fn url(&self, index: usize) -> String {
        let n = self.dial.urls.len().max(1);
        self.dial.urls.get(index % n).cloned().unwrap_or_default()
    }

    /// Forwards the out queue to the socket and the socket to the agent until either
    /// ends; returns the server's close code.
    async fn serve(&mut self, ws: Ws) -> Option<u16> {
        let (mut sink, mut stream) = ws.split();
        let out_rx = &mut self.out_rx;
        let writer = async move {
            while let Some(msg) = out_rx.recv().await {
                let Ok(text) = serde_json::to_string(&msg) else {
                    continue;
                };
                if sink.send(Message::Text(text.into())).await.is_err() {
                    return;
                }
            }
            // Nobody can send any more: the client was dropped.
            std::future::pending::<()>().await;
        };
        tokio::select! {
            () = writer => None,
            code = self.agent.run(&mut stream) => code,
        }
    }

    /// Back-off, next URL, hello, welcome, resume; until one works. Returns the URL's
    /// index and the socket.
    async fn reconnect(&mut self, mut index: usize) -> Option<(usize, Ws)> {
        let mut backoff = BACKOFF_START;
        loop {
            tokio::time::sleep(jittered(backoff)).await;
            backoff = (backoff * 2).min(BACKOFF_CAP);
            index += 1;
            let url = self.url(index);
            match self.attempt(&url).await {
                Ok(ws) => {
                    if let Ok(mut v) = self.view.lock() {
                        v.reconnects.push((Instant::now(), url.clone()));
                        v.url = url;
                    }
                    return Some((index, ws));
                }
                Err(e) => {
                    eprintln!("client {}: reconnect to {url}: {e:#}", self.agent.tag());
                    if let Ok(mut v) = self.view.lock() {
                        v.failed_attempts += 1;
                    }
                }
            }
        }
    }

    /// One attempt: connect, `hello`, await `welcome` (recording what arrives), then
    /// `resume` (patients with a seat) or `subscribe` (clinicians).
    async fn attempt(&mut self, url: &str) -> Result<Ws> {
        let mut ws = open(url).await?;
        send(&mut ws, &self.hello.message()?).await?;
        let welcome = async {
            loop {
                let frame = ws.next().await.context("closed before welcome")??;
                let Message::Text(text) = frame else {
                    if let Message::Close(c) = frame {
                        bail!("closed before welcome: {c:?}");
                    }
                    continue;
                };
                let msg: SignalingToClient = serde_json::from_str(text.as_str())?;
                let done = matches!(msg, SignalingToClient::Welcome { .. });
                let refused = matches!(msg, SignalingToClient::Error { .. });
                self.inbox.push(msg.clone());
                if done {
                    return Ok(());
                }
                if refused {
                    bail!("hello refused: {msg:?}");
                }
            }
        };
        tokio::time::timeout(ATTEMPT_TIMEOUT, welcome)
            .await
            .map_err(|_| anyhow!("no welcome within {ATTEMPT_TIMEOUT:?}"))??;
        match self.hello.role {
            Role::Patient => {
                if let Some(token) = resume_token(&self.inbox) {
                    send(
                        &mut ws,
                        &ClientToSignaling::Resume {
                            token: Sensitive::new(token),
                        },
                    )
                    .await?;
                }
            }
            Role::Clinician => {
                send(&mut ws, &ClientToSignaling::Subscribe { request: None }).await?;
            }
        }
        Ok(ws)
    }
}

async fn send(ws: &mut Ws, msg: &ClientToSignaling) -> Result<()> {
    let text = serde_json::to_string(msg)?;
    ws.send(Message::Text(text.into()))
        .await
        .context("sending to signaling")
}
