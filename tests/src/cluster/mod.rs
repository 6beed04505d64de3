//! [`TestCluster`]: the real `signaling` binary and real `relay` binaries on 127.0.0.1
//! with OS-chosen ports (by default two regions × two relays: eu `r-eu-1`, `r-eu-2`; us
//! `r-us-1`, `r-us-2`), a directory file with two organisations, and the operations the
//! failover tests need: kill -9 a relay, start one again, drain one (SIGTERM).
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
use crate::http;
use crate::process::{Process, binary};

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

/// Signaling and relays running as child processes. Dropping it kills them all.
#[derive(Debug)]
pub struct TestCluster {
    dir: PathBuf,
    signaling: Process,
    http: SocketAddr,
    relays: BTreeMap<String, RelayProcess>,
    starts: u32,
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

/// The `fields` object of a JSON log line whose message is `message`.
fn fields_of(line: &str, message: &str) -> Option<serde_json::Value> {
    let v: serde_json::Value = serde_json::from_str(line).ok()?;
    let fields = v.get("fields")?;
    (fields.get("message")?.as_str()? == message).then(|| fields.clone())
}

/// Awaits a JSON log line with `message` from `from` on; returns its fields.
pub async fn wait_message(
    process: &mut Process,
    from: usize,
    message: &str,
    timeout: Duration,
) -> Result<serde_json::Value> {
    wait_fields(process, from, message, timeout, |_| true).await
}

/// Awaits a JSON log line with `message` whose fields satisfy `pred`.
pub async fn wait_fields(
    process: &mut Process,
    from: usize,
    message: &str,
    timeout: Duration,
    pred: impl Fn(&serde_json::Value) -> bool,
) -> Result<serde_json::Value> {
    let line = process
        .wait_line(from, timeout, |l| {
            fields_of(l, message).is_some_and(|f| pred(&f))
        })
        .await
        .with_context(|| format!("awaiting log line {message:?}"))?;
    fields_of(&line, message).context("log line vanished")
}

/// Whether a JSON field holds the string `value`.
pub fn field_is(fields: &serde_json::Value, name: &str, value: &str) -> bool {
    fields.get(name).and_then(serde_json::Value::as_str) == Some(value)
}

fn addr_field(fields: &serde_json::Value, name: &str) -> Result<SocketAddr> {
    fields
        .get(name)
        .and_then(serde_json::Value::as_str)
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("no address field {name:?} in {fields}"))
}

fn base_command(program: &Path) -> Command {
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

    /// Starts signaling, then every relay of `spec`, and waits until each relay has
    /// registered.
    pub async fn start_with(spec: ClusterSpec) -> Result<TestCluster> {
        let dir = fresh_dir()?;
        let orgs = dir.join("orgs.toml");
        directory::write(&orgs)?;
        let mut cmd = base_command(&binary("signaling")?);
        cmd.arg("--listen")
            .arg("127.0.0.1:0")
            .arg("--config")
            .arg(&orgs)
            .args(["--log-format", "json", "--log", "info"])
            .arg("--relay-secret")
            .arg(SECRET)
            .arg("--region")
            .arg(&spec.region)
            .arg("--region-order")
            .arg(spec.region_order.join(","))
            .args(&spec.signaling_args);
        let mut signaling = Process::spawn("signaling", cmd, &dir.join("signaling.log"))?;
        let fields = wait_message(&mut signaling, 0, "signaling listening", START_TIMEOUT).await?;
        let http = addr_field(&fields, "addr")?;
        eprintln!(
            "test cluster: signaling on {http}, logs in {}",
            dir.display()
        );
        let mut cluster = TestCluster {
            dir,
            signaling,
            http,
            relays: BTreeMap::new(),
            starts: 0,
        };
        for relay in spec.relays {
            cluster.start_relay(relay).await?;
        }
        Ok(cluster)
    }

    /// Signaling's HTTP address.
    pub fn http_addr(&self) -> SocketAddr {
        self.http
    }

    /// The client WebSocket URL (`ws://…/ws`).
    pub fn ws_url(&self) -> String {
        format!("ws://{}/ws", self.http)
    }

    /// The directory holding the logs and the directory file.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Starts (or restarts) a relay and waits until it has registered with signaling.
    pub async fn start_relay(&mut self, spec: RelaySpec) -> Result<()> {
        if self.relays.contains_key(&spec.node) {
            bail!("relay {} is already running", spec.node);
        }
        self.starts += 1;
        let mut cmd = base_command(&binary("relay")?);
        cmd.arg("--signaling")
            .arg(format!("ws://{}/control", self.http))
            .arg("--node-id")
            .arg(&spec.node)
            .arg("--region")
            .arg(&spec.region)
            .args(["--advertise", "127.0.0.1", "--udp-port-base", "0"])
            .args(["--metrics-listen", "127.0.0.1:0", "--workers", "1"])
            .args(["--log-format", "json"])
            .arg("--capacity")
            .arg(spec.capacity.to_string());
        let log = self
            .dir
            .join(format!("relay-{}-{}.log", spec.node, self.starts));
        let seen = self.signaling.line_count();
        let mut process = Process::spawn(&spec.node, cmd, &log)?;
        let started = wait_message(&mut process, 0, "relay started", START_TIMEOUT).await?;
        let metrics = addr_field(&started, "metrics")?;
        // Placeable once signaling has it in its registry.
        let node = spec.node.clone();
        wait_fields(
            &mut self.signaling,
            seen,
            "relay registered",
            START_TIMEOUT,
            |f| field_is(f, "node", &node),
        )
        .await?;
        self.relays.insert(
            spec.node.clone(),
            RelayProcess {
                spec,
                process,
                metrics,
            },
        );
        Ok(())
    }

    fn relay_mut(&mut self, node: &str) -> Result<&mut RelayProcess> {
        self.relays
            .get_mut(node)
            .with_context(|| format!("no running relay {node}"))
    }

    /// Kills the relay with SIGKILL (no goodbye on the control link) and returns the
    /// instant just before the signal was sent. The relay's spec is returned for
    /// [`TestCluster::start_relay`].
    pub fn kill_relay(&mut self, node: &str) -> Result<(Instant, RelaySpec)> {
        let mut relay = self
            .relays
            .remove(node)
            .with_context(|| format!("no running relay {node}"))?;
        let at = Instant::now();
        relay.process.kill()?;
        Ok((at, relay.spec))
    }

    /// Freezes the relay with SIGSTOP: its control socket stays open but its
    /// heartbeats stop (signaling must notice staleness). Returns the instant just
    /// before the signal. The frozen process is killed with the cluster.
    pub fn freeze_relay(&mut self, node: &str) -> Result<Instant> {
        let relay = self.relay_mut(node)?;
        let at = Instant::now();
        relay.process.signal("-STOP")?;
        Ok(at)
    }

    /// Sends SIGTERM (the relay drains: no new rooms) and waits until it says so.
    pub async fn drain_relay(&mut self, node: &str) -> Result<()> {
        let relay = self.relay_mut(node)?;
        let from = relay.process.line_count();
        relay.process.terminate()?;
        relay
            .process
            .wait_line(from, START_TIMEOUT, |l| l.contains("draining"))
            .await?;
        Ok(())
    }

    /// Awaits the exit of a relay (e.g. one that drained) and forgets it; returns
    /// its exit code.
    pub async fn wait_relay_exit(&mut self, node: &str, timeout: Duration) -> Result<Option<i32>> {
        let code = self.relay_mut(node)?.process.wait_exit(timeout).await?;
        self.relays.remove(node);
        Ok(code)
    }

    /// The running relays' node ids.
    pub fn relay_nodes(&self) -> Vec<String> {
        self.relays.keys().cloned().collect()
    }

    /// A relay's metrics address (`/metrics`, `/healthz`, `/readyz`).
    pub fn relay_metrics_addr(&self, node: &str) -> Option<SocketAddr> {
        self.relays.get(node).map(|r| r.metrics)
    }

    /// The sum of a relay's per-worker gauge or counter `name` (e.g.
    /// `anteroom_relay_participants`).
    pub async fn relay_metric(&self, node: &str, name: &str) -> Result<f64> {
        let addr = self
            .relay_metrics_addr(node)
            .with_context(|| format!("no running relay {node}"))?;
        let body = http::get(addr, "/metrics").await?.body;
        Ok(body
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| {
                let (key, value) = l.rsplit_once(' ')?;
                let metric = key.split('{').next()?;
                (metric == name).then(|| value.parse::<f64>().ok())?
            })
            .sum())
    }

    /// Participants on each running relay, from `/metrics`.
    pub async fn participants_per_relay(&self) -> Result<BTreeMap<String, u64>> {
        let mut out = BTreeMap::new();
        for node in self.relays.keys() {
            let n = self
                .relay_metric(node, "anteroom_relay_participants")
                .await?;
            out.insert(node.clone(), n as u64);
        }
        Ok(out)
    }

    /// Signaling's process, e.g. to await a log line.
    pub fn signaling_process(&mut self) -> &mut Process {
        &mut self.signaling
    }
}
