//! The signaling nodes of a [`super::TestCluster`]: one (as always), or several sharing
//! a private Redis (`--redis-url`, distinct `--node-id`s, a short `--lobby-lease-ms`),
//! and which of them owns the lobby (the holder of the `lobby` lease: every other node
//! is a front end piping its sockets to it; see docs/operations.md, "Scaling out").

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};

use super::logs::{addr_field, wait_message};
use super::{START_TIMEOUT, base_command};
use crate::http;
use crate::process::{Process, binary};

/// The `/metrics` gauge a node sets to 1 while it holds the lobby lease.
pub const OWNER_GAUGE: &str = "anteroom_lobby_owner";

/// How a node is started (shared by all nodes of a cluster).
#[derive(Debug, Clone)]
pub(super) struct NodeArgs {
    /// `--config`, `--region`, `--region-order`, extra flags.
    pub common: Vec<String>,
    /// `--redis-url`, when the nodes share a Redis.
    pub redis_url: Option<String>,
    /// `--lobby-lease-ms`.
    pub lease_ms: u64,
}

/// One signaling process.
#[derive(Debug)]
pub(super) struct SignalingNode {
    /// `--node-id` (`sig-a`, `sig-b`, …; only passed with Redis).
    pub id: String,
    pub process: Process,
    pub http: SocketAddr,
    /// False once killed.
    pub alive: bool,
}

/// The node id of the `i`th node: `sig-a`, `sig-b`, ….
pub(super) fn node_id(i: usize) -> String {
    let letter = u8::try_from(i % 26).map_or('z', |n| char::from(b'a' + n));
    format!("sig-{letter}")
}

impl SignalingNode {
    /// Starts node `i` and waits until it listens.
    pub(super) async fn start(i: usize, args: &NodeArgs, dir: &Path) -> Result<SignalingNode> {
        let id = node_id(i);
        let mut cmd = base_command(&binary("signaling")?);
        cmd.arg("--listen")
            .arg("127.0.0.1:0")
            .args(["--log-format", "json", "--log", "info"])
            .args(&args.common);
        if let Some(url) = &args.redis_url {
            cmd.arg("--redis-url")
                .arg(url)
                .arg("--node-id")
                .arg(&id)
                .arg("--lobby-lease-ms")
                .arg(args.lease_ms.to_string());
        }
        let log = if args.redis_url.is_some() {
            dir.join(format!("signaling-{id}.log"))
        } else {
            dir.join("signaling.log")
        };
        let mut process = Process::spawn(&id, cmd, &log)?;
        let fields = wait_message(&mut process, 0, "signaling listening", START_TIMEOUT).await?;
        let http = addr_field(&fields, "addr")?;
        Ok(SignalingNode {
            id,
            process,
            http,
            alive: true,
        })
    }

    /// Whether this node says (on `/metrics`) that it owns the lobby now.
    pub(super) async fn is_owner(&self) -> bool {
        if !self.alive {
            return false;
        }
        let Ok(reply) = http::get(self.http, "/metrics").await else {
            return false;
        };
        reply.body.lines().any(|l| {
            l.split_once(' ')
                .is_some_and(|(k, v)| k.split('{').next() == Some(OWNER_GAUGE) && v.trim() == "1")
        })
    }

    /// Kills it (SIGKILL: no goodbye to anyone); returns the instant just before.
    pub(super) fn kill(&mut self) -> Result<Instant> {
        if !self.alive {
            bail!("signaling node {} is already dead", self.id);
        }
        let at = Instant::now();
        self.process.kill()?;
        self.alive = false;
        Ok(at)
    }
}

/// Awaits the moment exactly one live node of `nodes` says it owns the lobby; returns
/// its index. Asked every 50 ms (ownership is a state, not an event).
pub(super) async fn wait_owner(nodes: &[SignalingNode], timeout: Duration) -> Result<usize> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let mut owners = Vec::new();
        for (i, node) in nodes.iter().enumerate() {
            if node.is_owner().await {
                owners.push(i);
            }
        }
        if let [one] = owners[..] {
            return Ok(one);
        }
        if tokio::time::Instant::now() >= deadline {
            let ids: Vec<&str> = owners.iter().map(|&i| nodes[i].id.as_str()).collect();
            bail!("no single lobby owner within {timeout:?} (owners by {OWNER_GAUGE}: {ids:?})");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Awaits a node that is the lobby owner, other than `not`; see [`wait_owner`].
pub(super) async fn wait_new_owner(
    nodes: &[SignalingNode],
    not: usize,
    timeout: Duration,
) -> Result<usize> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let owner = wait_owner(nodes, left)
            .await
            .context("awaiting a new owner")?;
        if owner != not {
            return Ok(owner);
        }
        if tokio::time::Instant::now() >= deadline {
            bail!(
                "node {} still owns the lobby after {timeout:?}",
                nodes[not].id
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
