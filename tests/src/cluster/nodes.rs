//! The signaling nodes of a [`super::TestCluster`]: one (as always), or several sharing
//! a private Redis (`--redis-url`, distinct `--node-id`s, a short `--lobby-lease-ms`),
//! and which of them owns the lobby (the holder of the `lobby` lease: every other node
//! is a front end piping its sockets to it; see docs/operations.md, "Scaling out"), as
//! each node's log tells it (`lobby lease taken…`, `lobby lease lost…`).

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};

use super::logs::{addr_field, wait_message};
use super::{START_TIMEOUT, base_command};
use crate::process::{Process, binary};

/// Log messages (prefixes) by which a node says it took the lobby lease (or started
/// a new term of it): from then on it runs the lobby.
const TOOK: [&str; 2] = ["lobby lease taken", "lobby lease: fencing token changed"];
/// Log messages (prefixes) by which a node says it no longer holds the lease.
const GAVE_UP: [&str; 2] = ["lobby lease lost", "lobby lease released"];

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

    /// Whether this node's latest lease event in its log says it owns the lobby.
    pub(super) fn is_owner(&self) -> bool {
        if !self.alive {
            return false;
        }
        // The latest of the lease lines decides: scan them all, in order.
        let owner = std::cell::Cell::new(false);
        let _ = self.process.find_line(0, |l| {
            if let Some(m) = message_of(l) {
                if TOOK.iter().any(|t| m.starts_with(t)) {
                    owner.set(true);
                } else if GAVE_UP.iter().any(|t| m.starts_with(t)) {
                    owner.set(false);
                }
            }
            false
        });
        owner.get()
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

/// The `message` of a JSON log line.
fn message_of(line: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(line).ok()?;
    Some(v.get("fields")?.get("message")?.as_str()?.to_owned())
}

/// Awaits the moment exactly one live node of `nodes` (other than `not`) owns the
/// lobby, by their logs ([`TOOK`], [`GAVE_UP`]); returns its index.
pub(super) async fn wait_owner(
    nodes: &[SignalingNode],
    not: Option<usize>,
    timeout: Duration,
) -> Result<usize> {
    let mut watches: Vec<_> = nodes.iter().map(|n| n.process.line_watch()).collect();
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let owners: Vec<usize> = (0..nodes.len()).filter(|&i| nodes[i].is_owner()).collect();
        if let [one] = owners[..]
            && Some(one) != not
        {
            return Ok(one);
        }
        if tokio::time::Instant::now() >= deadline {
            let ids: Vec<&str> = owners.iter().map(|&i| nodes[i].id.as_str()).collect();
            let other = not
                .map(|i| format!(" other than {}", nodes[i].id))
                .unwrap_or_default();
            bail!(
                "no single lobby owner{other} within {timeout:?} (owners by their logs: \
                 {ids:?}); see the signaling logs"
            );
        }
        // Wake on any new line of any node (or every 100 ms).
        let any =
            futures_util::future::select_all(watches.iter_mut().map(|w| Box::pin(w.changed())));
        let step = tokio::time::Instant::now() + Duration::from_millis(100);
        let _ = tokio::time::timeout_at(step.min(deadline), any).await;
    }
}
