//! The relays of a [`TestCluster`]: start (given every signaling node's control URL,
//! registered once a node logs it), kill -9, freeze (SIGSTOP), drain (SIGTERM), and
//! read their `/metrics`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};

use super::logs::addr_field;
use super::{
    RelayProcess, RelaySpec, START_TIMEOUT, TestCluster, base_command, field_is, wait_fields_any,
    wait_message,
};
use crate::http;
use crate::process::{Process, binary};

impl TestCluster {
    /// Starts (or restarts) a relay and waits until it has registered with signaling.
    pub async fn start_relay(&mut self, spec: RelaySpec) -> Result<()> {
        if self.relays.contains_key(&spec.node) {
            bail!("relay {} is already running", spec.node);
        }
        self.starts += 1;
        let control: Vec<String> = self
            .nodes
            .iter()
            .map(|n| format!("ws://{}/control", n.http))
            .collect();
        let mut cmd = base_command(&binary("relay")?);
        cmd.arg("--signaling")
            .arg(control.join(","))
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
        let seen: Vec<usize> = self.nodes.iter().map(|n| n.process.line_count()).collect();
        let mut process = Process::spawn(&spec.node, cmd, &log)?;
        let started = wait_message(&mut process, 0, "relay started", START_TIMEOUT).await?;
        let metrics = addr_field(&started, "metrics")?;
        // Placeable once signaling has it in its registry (on the lobby owner, whichever
        // node its control connection landed on).
        let node = spec.node.clone();
        let watched: Vec<(&Process, usize)> = self
            .nodes
            .iter()
            .zip(seen)
            .filter(|(n, _)| n.alive)
            .map(|(n, from)| (&n.process, from))
            .collect();
        wait_fields_any(&watched, "relay registered", START_TIMEOUT, |f| {
            field_is(f, "node", &node)
        })
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
}
