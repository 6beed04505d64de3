//! [`TestCluster`]: the real `signaling` binary and real `relay` binaries on 127.0.0.1
//! with OS-chosen ports (by default two regions × two relays: eu `r-eu-1`, `r-eu-2`; us
//! `r-us-1`, `r-us-2`), a directory file with two organisations, and the operations the
//! failover tests need: kill -9 a relay, start one again, drain one (SIGTERM).
//!
//! By default one signaling node, in memory. With [`ClusterSpec::redis`] the cluster
//! also runs a private `redis-server` ([`crate::redis::TestRedis`]) and
//! [`ClusterSpec::signaling_nodes`] signaling nodes sharing it; relays get the list of
//! every node's control URL, and [`TestCluster::kill_signaling`] kills one node.
//!
//! Readiness is awaited from the processes' JSON log lines (`signaling listening`,
//! `relay started`, `registered with signaling`), never by sleeping. Every process logs
//! into the cluster's directory (printed at start, kept after the test for post-mortems).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};

use crate::directory;
use crate::process::Process;
use crate::redis::TestRedis;

mod logs;
mod nodes;
mod relays;

pub use logs::{field_is, wait_fields, wait_fields_any, wait_message};
use nodes::{NodeArgs, SignalingNode};

/// The secret signaling and the relays share (grants, registration).
pub const SECRET: &str = "anteroom-test-cluster-secret-0123456789";

/// How long a process may take to log that it is ready.
pub const START_TIMEOUT: Duration = Duration::from_secs(20);

/// One relay to start.
#[derive(Debug, Clone)]
pub struct RelaySpec {
    /// Node id (`r-eu-1`).
    pub node: String,
    /// Region (`eu`).
    pub region: String,
    /// `--capacity` (participants).
    pub capacity: u32,
}

impl RelaySpec {
    /// A relay with the default capacity.
    pub fn new(node: &str, region: &str) -> Self {
        RelaySpec {
            node: node.to_owned(),
            region: region.to_owned(),
            capacity: 100,
        }
    }
}

/// What a [`TestCluster`] starts.
#[derive(Debug, Clone)]
pub struct ClusterSpec {
    /// Signaling's own region (`--region`).
    pub region: String,
    /// `--region-order`.
    pub region_order: Vec<String>,
    /// The relays.
    pub relays: Vec<RelaySpec>,
    /// Extra signaling flags.
    pub signaling_args: Vec<String>,
    /// Signaling nodes (1, the default: one node exactly as before). More than one
    /// needs [`ClusterSpec::redis`].
    pub signaling_nodes: usize,
    /// Start a private `redis-server` and give every node `--redis-url`, a distinct
    /// `--node-id` (`sig-a`, `sig-b`, …) and `--lobby-lease-ms`.
    pub redis: bool,
    /// `--lobby-lease-ms` of every node (with Redis).
    pub lobby_lease_ms: u64,
}

impl Default for ClusterSpec {
    /// Two regions × two relays, signaling in `eu`, order `eu,us`.
    fn default() -> Self {
        ClusterSpec {
            region: "eu".into(),
            region_order: vec!["eu".into(), "us".into()],
            relays: ["r-eu-1", "r-eu-2", "r-us-1", "r-us-2"]
                .into_iter()
                .map(|n| RelaySpec::new(n, &n[2..4]))
                .collect(),
            signaling_args: Vec::new(),
            signaling_nodes: 1,
            redis: false,
            lobby_lease_ms: 1500,
        }
    }
}

impl ClusterSpec {
    /// `nodes` signaling nodes sharing a private Redis, and `relays`.
    pub fn redis_nodes(nodes: usize, relays: Vec<RelaySpec>) -> Self {
        ClusterSpec {
            relays,
            signaling_nodes: nodes,
            redis: true,
            ..ClusterSpec::default()
        }
    }
}

/// A relay process and what it told us at start.
#[derive(Debug)]
struct RelayProcess {
    spec: RelaySpec,
    process: Process,
    metrics: SocketAddr,
}

/// Signaling and relays (and Redis) running as child processes. Dropping it kills
/// them all: relays first, then signaling, then Redis.
#[derive(Debug)]
pub struct TestCluster {
    dir: PathBuf,
    nodes: Vec<SignalingNode>,
    relays: BTreeMap<String, RelayProcess>,
    starts: u32,
    redis: Option<TestRedis>,
}

static CLUSTERS: AtomicU32 = AtomicU32::new(0);

fn fresh_dir() -> Result<PathBuf> {
    let n = CLUSTERS.fetch_add(1, Ordering::Relaxed);
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    let dir = std::env::temp_dir().join(format!(
        "anteroom-cluster-{}-{stamp}-{n}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir)
}

pub(crate) fn base_command(program: &Path) -> Command {
    let mut cmd = Command::new(program);
    cmd.env_clear()
        .env("NO_COLOR", "1")
        .env("RUST_LOG", "info")
        .env("ANTEROOM_RELAY_SECRET", SECRET);
    cmd
}

impl Drop for TestCluster {
    /// Kills the relays before signaling, so none logs a reconnect loop.
    fn drop(&mut self) {
        for relay in self.relays.values_mut() {
            let _ = relay.process.kill();
        }
    }
}

impl TestCluster {
    /// Starts the default cluster (two regions × two relays).
    pub async fn start() -> Result<TestCluster> {
        Self::start_with(ClusterSpec::default()).await
    }

    /// Starts Redis (if asked for), the signaling nodes, then every relay of `spec`,
    /// and waits until each relay has registered. With several nodes, the first one
    /// is started alone and awaited as the lobby owner before the others start, so
    /// node 0 is always the first owner.
    pub async fn start_with(spec: ClusterSpec) -> Result<TestCluster> {
        if spec.signaling_nodes == 0 || (spec.signaling_nodes > 1 && !spec.redis) {
            bail!("a cluster has one node in memory, or one or more sharing Redis");
        }
        let dir = fresh_dir()?;
        let orgs = dir.join("orgs.toml");
        directory::write(&orgs)?;
        let redis = if spec.redis {
            Some(TestRedis::start(&dir).await?)
        } else {
            None
        };
        let mut common = vec![
            "--config".to_owned(),
            orgs.display().to_string(),
            "--relay-secret".to_owned(),
            SECRET.to_owned(),
            "--region".to_owned(),
            spec.region.clone(),
            "--region-order".to_owned(),
            spec.region_order.join(","),
        ];
        common.extend(spec.signaling_args.iter().cloned());
        let args = NodeArgs {
            common,
            redis_url: redis.as_ref().map(TestRedis::url),
            lease_ms: spec.lobby_lease_ms,
        };
        let mut cluster = TestCluster {
            dir,
            nodes: Vec::new(),
            relays: BTreeMap::new(),
            starts: 0,
            redis,
        };
        for i in 0..spec.signaling_nodes {
            let node = SignalingNode::start(i, &args, &cluster.dir).await?;
            eprintln!(
                "test cluster: signaling {} on {}, logs in {}",
                node.id,
                node.http,
                cluster.dir.display()
            );
            cluster.nodes.push(node);
            if spec.redis && i == 0 {
                cluster.lobby_owner(START_TIMEOUT).await?;
            }
        }
        for relay in spec.relays {
            cluster.start_relay(relay).await?;
        }
        Ok(cluster)
    }

    /// Signaling's HTTP address.
    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr_of(0)
    }

    /// The client WebSocket URL (`ws://…/ws`).
    pub fn ws_url(&self) -> String {
        self.ws_url_of(0)
    }

    /// The directory holding the logs and the directory file.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Signaling's process (node 0), e.g. to await a log line.
    pub fn signaling_process(&mut self) -> &mut Process {
        &mut self.nodes[0].process
    }

    /// How many signaling nodes were started (dead ones included).
    pub fn signaling_nodes(&self) -> usize {
        self.nodes.len()
    }

    /// Node `i`'s process.
    ///
    /// # Panics
    /// If there is no node `i`.
    pub fn node_process(&mut self, i: usize) -> &mut Process {
        &mut self.nodes[i].process
    }

    /// Node `i`'s `--node-id` (`sig-a`, …).
    ///
    /// # Panics
    /// If there is no node `i`.
    pub fn node_id(&self, i: usize) -> &str {
        &self.nodes[i].id
    }

    /// Node `i`'s HTTP address.
    ///
    /// # Panics
    /// If there is no node `i`.
    pub fn http_addr_of(&self, i: usize) -> SocketAddr {
        self.nodes[i].http
    }

    /// Node `i`'s client WebSocket URL (`ws://…/ws`).
    ///
    /// # Panics
    /// If there is no node `i`.
    pub fn ws_url_of(&self, i: usize) -> String {
        format!("ws://{}/ws", self.nodes[i].http)
    }

    /// Every node's client WebSocket URL, in node order (dead ones too: the address
    /// list clients are given, as behind one DNS name).
    pub fn ws_urls(&self) -> Vec<String> {
        (0..self.nodes.len()).map(|i| self.ws_url_of(i)).collect()
    }

    /// Awaits the moment exactly one live node owns the lobby (by the nodes' logs:
    /// `lobby lease taken…` not followed by `lobby lease lost…`); returns its index.
    pub async fn lobby_owner(&self, timeout: Duration) -> Result<usize> {
        nodes::wait_owner(&self.nodes, None, timeout).await
    }

    /// Awaits a lobby owner other than node `not` (a takeover); returns its index.
    pub async fn new_lobby_owner(&self, not: usize, timeout: Duration) -> Result<usize> {
        nodes::wait_owner(&self.nodes, Some(not), timeout).await
    }

    /// Kills signaling node `i` with SIGKILL (no goodbye: its lease simply expires)
    /// and returns the instant just before the signal.
    pub fn kill_signaling(&mut self, i: usize) -> Result<Instant> {
        self.nodes
            .get_mut(i)
            .with_context(|| format!("no signaling node {i}"))?
            .kill()
    }

    /// The cluster's Redis, if it has one.
    pub fn redis(&mut self) -> Option<&mut TestRedis> {
        self.redis.as_mut()
    }
}
