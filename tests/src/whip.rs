//! WHIP (RFC 9725) publishing and WHEP playback against signaling's HTTP API, as a
//! standard client does it: `POST` the SDP offer with a bearer token, get `201`, the
//! answer and a `Location`; `DELETE` the Location to stop.
//!
//! Tokens: signaling's ingest tokens are [`protocol::Grant`]s for the pseudo-node
//! `ingest`, signed with a key derived from the shared relay secret
//! (signaling/src/relays/whip.rs). The test helper mints them the same way, which a
//! deployment's operator tooling could too.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, Result, bail};
use protocol::{Grant, GrantRole, NodeId, ParticipantId, RoomId};
use sha2::{Digest as _, Sha256};

use crate::cluster::{SECRET, TestCluster};
use crate::http;
use crate::media::{Direction, MediaLog, MediaPeer};

/// A bearer token for WHIP (`GrantRole::Publisher`) or WHEP (`GrantRole::Subscriber`)
/// into `call`, valid for an hour.
pub fn ingest_token(call: &RoomId, role: GrantRole) -> Result<String> {
    let mut h = Sha256::new();
    h.update(b"anteroom-ingest-token\n");
    h.update(SECRET.as_bytes());
    let key = h.finalize();
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
    Ok(Grant {
        room: call.clone(),
        participant: ParticipantId::random(),
        role,
        node: NodeId::new("ingest")?,
        exp: now + 3600,
    }
    .sign(&key))
}

/// A WHIP or WHEP session: the peer and the resource to `DELETE`.
#[derive(Debug)]
pub struct IngestSession {
    /// The webrtc-rs peer.
    pub peer: MediaPeer,
    /// The `Location` signaling returned.
    pub location: String,
    token: String,
}

/// Which endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// `POST /whip/<call>`: publish.
    Whip,
    /// `POST /whep/<call>`: play.
    Whep,
}

impl IngestSession {
    /// Offers to `/whip/<call>` (a send-only peer stamping `tag`) or `/whep/<call>` (a
    /// receive-only peer recording into `log`), applies the answer and awaits the
    /// connection.
    pub async fn start(
        cluster: &TestCluster,
        endpoint: Endpoint,
        call: &RoomId,
        tag: &str,
        log: MediaLog,
    ) -> Result<IngestSession> {
        let (path, role, direction) = match endpoint {
            Endpoint::Whip => ("whip", GrantRole::Publisher, Direction::SendOnly),
            Endpoint::Whep => ("whep", GrantRole::Subscriber, Direction::RecvOnly),
        };
        let token = ingest_token(call, role)?;
        let mut peer = MediaPeer::new(tag, direction, 0, path, log).await?;
        let offer = peer.offer().await?;
        let auth = format!("Bearer {token}");
        let r = http::request(
            cluster.http_addr(),
            "POST",
            &format!("/{path}/{call}"),
            &[("Authorization", &auth)],
            Some(("application/sdp", offer.as_bytes())),
        )
        .await?;
        if r.status != 201 {
            bail!("POST /{path}/{call}: {} {}", r.status, r.body);
        }
        if !r
            .header("content-type")
            .is_some_and(|c| c.starts_with("application/sdp"))
        {
            bail!("answer is not application/sdp: {:?}", r.headers);
        }
        let location = r
            .header("location")
            .context("201 without Location")?
            .to_owned();
        peer.accept_answer(r.body).await?;
        peer.connected().await?;
        Ok(IngestSession {
            peer,
            location,
            token,
        })
    }

    /// `DELETE`s the session's resource; returns the status.
    pub async fn delete(&self, cluster: &TestCluster) -> Result<u16> {
        let auth = format!("Bearer {}", self.token);
        let r = http::request(
            cluster.http_addr(),
            "DELETE",
            &self.location,
            &[("Authorization", &auth)],
            None,
        )
        .await?;
        Ok(r.status)
    }
}

/// How long to wait for WHEP media.
pub const PLAYBACK_TIMEOUT: Duration = Duration::from_secs(15);
