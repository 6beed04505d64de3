//! [`TestClient`]: a patient or clinician speaking the protocol crate's types over
//! signaling's WebSocket, with real media.
//!
//! One task per client reads the socket, records every message in the client's inbox
//! (tests await messages there) and plays the client's part of a call on its own:
//! `call_ready`/`relay_moved` → a new webrtc-rs [`crate::media::MediaPeer`] and `call_offer`;
//! `call_answer` → apply; `call_renegotiate` → `call_answer`; `call_ended` → close. When
//! the peer connection fails before signaling has said anything, it sends
//! `call_ice_failed`. Received media lands in the client's [`MediaLog`].
//!
//! A client dialled with a node list ([`Dial::nodes`]) reconnects when its socket
//! drops and resumes its seat (patients) or session (clinicians): see [`link`].

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, anyhow, bail};
use protocol::client::{ClientToSignaling, RequestId, Role, SignalingToClient};
use protocol::{ParticipantId, RoomId, Sensitive};
use tokio::sync::mpsc;

use crate::cluster::TestCluster;
use crate::directory::PASSWORD;
use crate::http;
use crate::media::MediaLog;

mod agent;
pub mod link;

use agent::{Agent, Inbox};
pub use link::{Dial, LinkView};
use link::{HelloArgs, Link};

/// How long a test waits for an expected signaling message.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// Where a client's call stands (shared with its task).
#[derive(Debug, Clone, Default)]
pub struct CallView {
    /// The call, once `call_ready` arrived.
    pub call: Option<RoomId>,
    /// Own participant id in the call.
    pub participant: Option<ParticipantId>,
    /// The relay of the current peer connection.
    pub relay: Option<String>,
    /// The current peer connection's generation (0 = first).
    pub generation: Option<u32>,
    /// Every relay this client was sent to, with when the message arrived.
    pub placements: Vec<(Instant, String)>,
    /// Errors the call task hit (failed SDP, …); tests assert it stays empty.
    pub errors: Vec<String>,
    /// `call_ready` messages for the call the connected peer connection already
    /// carries, to its relay (after a resume), that left it alone.
    pub kept_on_ready: u32,
}

/// A patient or clinician connected to the cluster's signaling.
#[derive(Debug)]
pub struct TestClient {
    tag: String,
    out: mpsc::UnboundedSender<ClientToSignaling>,
    inbox: Inbox,
    media: MediaLog,
    view: Arc<Mutex<CallView>>,
    link: Arc<Mutex<LinkView>>,
    next_request: AtomicU64,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TestClient {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TestClient {
    /// Opens the WebSocket and sends `hello`; returns after `welcome`.
    pub async fn connect(
        cluster: &TestCluster,
        tag: &str,
        role: Role,
        session: Option<String>,
        region: Option<&str>,
    ) -> Result<TestClient> {
        Self::connect_with(Dial::once(cluster.ws_url()), tag, role, session, region).await
    }

    /// Like [`TestClient::connect`], to `dial.urls[0]`; with `dial.reconnect`, it
    /// reconnects and resumes whenever the socket drops.
    pub async fn connect_with(
        dial: Dial,
        tag: &str,
        role: Role,
        session: Option<String>,
        region: Option<&str>,
    ) -> Result<TestClient> {
        let first = dial.urls.first().context("no signaling URL")?.clone();
        let ws = link::open(&first).await?;
        let (out, out_rx) = mpsc::unbounded_channel::<ClientToSignaling>();
        let inbox = Inbox::new();
        let media = MediaLog::default();
        let view = Arc::new(Mutex::new(CallView::default()));
        let link_view = Arc::new(Mutex::new(LinkView {
            url: first,
            ..LinkView::default()
        }));
        let hello = HelloArgs {
            role,
            session,
            region: region.map(str::to_owned),
        };
        let agent = Agent::new(
            tag,
            out.clone(),
            inbox.clone(),
            media.clone(),
            Arc::clone(&view),
        );
        let hello_msg = hello.message()?;
        let link = Link {
            dial,
            hello,
            agent,
            inbox: inbox.clone(),
            out_rx,
            view: Arc::clone(&link_view),
        };
        let task = tokio::spawn(link.run(ws));
        let client = TestClient {
            tag: tag.to_owned(),
            out,
            inbox,
            media,
            view,
            link: link_view,
            next_request: AtomicU64::new(1),
            task,
        };
        client.send(hello_msg)?;
        client
            .wait_for(PATIENCE, |m| {
                matches!(m, SignalingToClient::Welcome { .. }).then_some(())
            })
            .await?;
        Ok(client)
    }

    /// A patient who joined `room` (as `tag`, also the display name); returns after
    /// `joined`.
    pub async fn patient(
        cluster: &TestCluster,
        tag: &str,
        room: &str,
        region: Option<&str>,
    ) -> Result<TestClient> {
        Self::patient_with(Dial::once(cluster.ws_url()), tag, room, region).await
    }

    /// Like [`TestClient::patient`], dialled with `dial`.
    pub async fn patient_with(
        dial: Dial,
        tag: &str,
        room: &str,
        region: Option<&str>,
    ) -> Result<TestClient> {
        let client = Self::connect_with(dial, tag, Role::Patient, None, region).await?;
        client.send(ClientToSignaling::Join {
            room: RoomId::new(room)?,
            display_name: Sensitive::new(tag.to_owned()),
            intake: Sensitive::new(std::collections::BTreeMap::new()),
        })?;
        client
            .wait_for(PATIENCE, |m| {
                matches!(m, SignalingToClient::Joined { .. }).then_some(())
            })
            .await?;
        Ok(client)
    }

    /// A clinician logged in as `username` and subscribed to the organisation's rooms;
    /// returns after the queue snapshot.
    pub async fn clinician(
        cluster: &TestCluster,
        username: &str,
        region: Option<&str>,
    ) -> Result<TestClient> {
        let token = login_at(cluster.http_addr(), username).await?;
        Self::clinician_with(Dial::once(cluster.ws_url()), token, username, region).await
    }

    /// A clinician with the session `token` (from [`login_at`], on any node), dialled
    /// with `dial`, subscribed; returns after the queue snapshot.
    pub async fn clinician_with(
        dial: Dial,
        token: String,
        username: &str,
        region: Option<&str>,
    ) -> Result<TestClient> {
        let tag = username.split('@').next().unwrap_or(username);
        let client = Self::connect_with(dial, tag, Role::Clinician, Some(token), region).await?;
        client.send(ClientToSignaling::Subscribe { request: None })?;
        client
            .wait_for(PATIENCE, |m| {
                matches!(m, SignalingToClient::QueueSnapshot { .. }).then_some(())
            })
            .await?;
        Ok(client)
    }

    /// The tag stamped into this client's media (and its display name).
    pub fn tag(&self) -> &str {
        &self.tag
    }

    /// Sends one message.
    pub fn send(&self, msg: ClientToSignaling) -> Result<()> {
        self.out
            .send(msg)
            .map_err(|_| anyhow!("{}: connection task ended", self.tag))
    }

    /// A fresh request id.
    pub fn request_id(&self) -> RequestId {
        self.next_request.fetch_add(1, Ordering::Relaxed)
    }

    /// Messages received so far (a cursor for [`TestClient::wait_from`]).
    pub fn inbox_len(&self) -> usize {
        *self.inbox.count.borrow()
    }

    /// A copy of every message received so far.
    pub fn messages(&self) -> Vec<SignalingToClient> {
        self.inbox
            .messages
            .lock()
            .map(|m| m.clone())
            .unwrap_or_default()
    }

    /// Awaits the first message (from the start of the inbox) for which `pick` returns
    /// something.
    pub async fn wait_for<T>(
        &self,
        timeout: Duration,
        pick: impl Fn(&SignalingToClient) -> Option<T>,
    ) -> Result<T> {
        self.wait_from(0, timeout, pick).await
    }

    /// Like [`TestClient::wait_for`], looking at messages from index `from` on.
    pub async fn wait_from<T>(
        &self,
        from: usize,
        timeout: Duration,
        pick: impl Fn(&SignalingToClient) -> Option<T>,
    ) -> Result<T> {
        let mut rx = self.inbox.count.subscribe();
        let mut seen = from;
        let found = tokio::time::timeout(timeout, async {
            loop {
                {
                    let messages = self
                        .inbox
                        .messages
                        .lock()
                        .map_err(|_| anyhow!("poisoned"))?;
                    if let Some(hit) = messages.iter().skip(seen).find_map(&pick) {
                        return Ok(hit);
                    }
                    seen = messages.len().max(seen);
                }
                rx.changed().await?;
            }
        })
        .await;
        match found {
            Ok(r) => r,
            Err(_) => bail!(
                "{}: awaited message not received within {timeout:?}; got {:?}",
                self.tag,
                self.messages()
            ),
        }
    }

    /// Admits a waiting patient (clinicians) and awaits `ok`.
    pub async fn admit(&self, participant: &ParticipantId) -> Result<()> {
        let request = self.request_id();
        self.send(ClientToSignaling::Admit {
            participant: participant.clone(),
            request: Some(request),
        })?;
        self.expect_ok(request).await
    }

    /// Awaits the `ok` (or fails on the `error`) for `request`.
    pub async fn expect_ok(&self, request: RequestId) -> Result<()> {
        self.wait_for(PATIENCE, |m| match m {
            SignalingToClient::Ok { request: Some(r) } if *r == request => Some(Ok(())),
            SignalingToClient::Error {
                request: Some(r),
                code,
                message,
            } if *r == request => Some(Err(anyhow!("request {request}: {code:?}: {message}"))),
            _ => None,
        })
        .await?
    }

    /// Clinicians: awaits a patient arriving in a queue (display name `tag`).
    pub async fn wait_patient(&self, tag: &str) -> Result<ParticipantId> {
        self.wait_for(PATIENCE, |m| match m {
            SignalingToClient::PatientArrived { entry, .. }
                if entry.display_name.expose() == tag =>
            {
                Some(entry.participant.clone())
            }
            SignalingToClient::QueueSnapshot { rooms, .. } => rooms
                .iter()
                .flat_map(|r| &r.entries)
                .find(|e| e.display_name.expose() == tag)
                .map(|e| e.participant.clone()),
            _ => None,
        })
        .await
    }

    /// Awaits `call_ready` and returns the call and the relay.
    pub async fn wait_call_ready(&self) -> Result<(RoomId, String)> {
        self.wait_for(PATIENCE, |m| match m {
            SignalingToClient::CallReady { call, relay, .. } => {
                Some((call.clone(), relay.as_str().to_owned()))
            }
            _ => None,
        })
        .await
    }

    /// The received media.
    pub fn media(&self) -> &MediaLog {
        &self.media
    }

    /// Where this client's call stands.
    pub fn call_view(&self) -> CallView {
        self.view.lock().map(|v| v.clone()).unwrap_or_default()
    }

    /// The history of this client's sockets (drops, reconnects).
    pub fn link_view(&self) -> LinkView {
        self.link.lock().map(|v| v.clone()).unwrap_or_default()
    }

    /// Awaits media from `from_tag` on the current (or a later) peer connection, and
    /// returns the relay it came through.
    pub async fn wait_media_from(&self, from_tag: &str, timeout: Duration) -> Result<String> {
        let generation = self.call_view().generation.unwrap_or(0);
        let p = self
            .media
            .wait_for(0, timeout, |p| {
                p.from == from_tag && p.generation >= generation
            })
            .await
            .with_context(|| format!("{}: no media from {from_tag}", self.tag))?;
        Ok(p.relay)
    }
}

/// `POST /api/login`; returns the session token.
pub async fn login(cluster: &TestCluster, username: &str) -> Result<String> {
    login_at(cluster.http_addr(), username).await
}

/// `POST /api/login` at one signaling node's address; returns the session token.
pub async fn login_at(addr: std::net::SocketAddr, username: &str) -> Result<String> {
    let r = http::post_json(
        addr,
        "/api/login",
        &[],
        &serde_json::json!({ "username": username, "password": PASSWORD }),
    )
    .await?;
    if r.status != 200 {
        bail!("login {username}: {} {}", r.status, r.body);
    }
    r.json()?
        .get("token")
        .and_then(serde_json::Value::as_str)
        .map(str::to_owned)
        .context("login reply has no token")
}
