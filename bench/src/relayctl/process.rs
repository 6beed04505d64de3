//! A relay process bench starts itself (and stops when dropped), and what bench reads
//! about a relay from outside: CPU and memory from `/proc/<pid>`, the forwarded-packet
//! counter from its `/metrics`.

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::clock::cpu_time_of_pid;
use crate::{Error, Result};

/// How bench starts a local relay.
#[derive(Debug, Clone)]
pub struct LocalRelaySpec {
    /// The `relay` binary.
    pub binary: PathBuf,
    /// Control URL of bench's control endpoint (`--signaling`).
    pub signaling: String,
    /// Node id.
    pub node: String,
    /// Worker threads (`None`: the relay's default, one per core).
    pub workers: Option<usize>,
    /// Participants accepted.
    pub capacity: u32,
    /// Shared secret (passed in the environment, never on the command line).
    pub secret: String,
    /// Where the relay's log (stdout and stderr) goes (`None`: discarded).
    pub log: Option<PathBuf>,
}

/// The default relay binary: `relay` next to the running executable (or one directory
/// up, for test binaries in `target/*/deps`).
pub fn default_relay_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_default();
    let dir = exe.parent().map(Path::to_path_buf).unwrap_or_default();
    let here = dir.join("relay");
    if here.exists() {
        return here;
    }
    dir.parent().map_or(here, |up| up.join("relay"))
}

/// A relay process started by bench; killed (by its pid) when dropped.
#[derive(Debug)]
pub struct LocalRelay {
    child: Child,
    metrics: SocketAddr,
}

impl LocalRelay {
    /// Starts the relay. It registers with `spec.signaling` by itself.
    pub fn start(spec: &LocalRelaySpec) -> Result<LocalRelay> {
        if !spec.binary.exists() {
            return Err(Error::Config(format!(
                "relay binary {} not found (build it with `cargo build --release -p relay` or pass --relay-bin)",
                spec.binary.display()
            )));
        }
        let metrics = free_port()?;
        let mut cmd = Command::new(&spec.binary);
        cmd.arg("--signaling")
            .arg(&spec.signaling)
            .args(["--advertise", "127.0.0.1", "--bind-ip", "127.0.0.1"])
            .args(["--node-id", &spec.node, "--region", "local"])
            .args(["--udp-port-base", "0"])
            .arg("--capacity")
            .arg(spec.capacity.to_string())
            .arg("--metrics-listen")
            .arg(metrics.to_string())
            .env("ANTEROOM_RELAY_SECRET", &spec.secret)
            .env(
                "RUST_LOG",
                std::env::var("BENCH_RELAY_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdin(Stdio::null());
        if let Some(w) = spec.workers {
            cmd.arg("--workers").arg(w.to_string());
        }
        match &spec.log {
            Some(path) => {
                let file = std::fs::File::create(path)?;
                cmd.stdout(file.try_clone()?).stderr(file)
            }
            None => cmd.stdout(Stdio::null()).stderr(Stdio::null()),
        };
        let child = cmd.spawn()?;
        Ok(LocalRelay { child, metrics })
    }

    /// The relay's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Its metrics listener.
    pub fn metrics(&self) -> SocketAddr {
        self.metrics
    }
}

impl Drop for LocalRelay {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An OS-chosen free loopback port (bound and released at once).
fn free_port() -> Result<SocketAddr> {
    let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    Ok(l.local_addr()?)
}

/// Memory of a process, from `/proc/<pid>/status`, KiB.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Memory {
    /// Resident set size now.
    pub rss_kib: u64,
    /// Peak resident set size.
    pub peak_kib: u64,
}

/// Reads `VmRSS` and `VmHWM` of `pid` (`self` for this process).
pub fn memory_of(pid: &str) -> Option<Memory> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
    };
    Some(Memory {
        rss_kib: field("VmRSS:")?,
        peak_kib: field("VmHWM:").unwrap_or(0),
    })
}

/// CPU time of `pid`, if it is readable.
pub fn cpu_of(pid: Option<u32>) -> Option<Duration> {
    pid.and_then(cpu_time_of_pid)
}

/// Sums every sample of `metric` (all label sets) in Prometheus text.
pub fn sum_metric(text: &str, metric: &str) -> Option<u64> {
    let mut found = false;
    let mut sum = 0f64;
    for line in text.lines() {
        let Some(rest) = line.strip_prefix(metric) else {
            continue;
        };
        if !(rest.starts_with('{') || rest.starts_with(' ')) {
            continue; // a longer metric name with the same prefix
        }
        if let Some(v) = rest.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()) {
            sum += v;
            found = true;
        }
    }
    found.then_some(sum as u64)
}

/// GETs `http://{addr}/metrics` and returns the relay's forwarded RTP packets.
pub async fn forwarded_packets(addr: SocketAddr) -> Option<u64> {
    let body = tokio::time::timeout(Duration::from_secs(5), http_get(addr, "/metrics"))
        .await
        .ok()?
        .ok()?;
    sum_metric(&body, "anteroom_relay_rtp_forwarded_total")
}

async fn http_get(addr: SocketAddr, path: &str) -> std::io::Result<String> {
    let mut s = tokio::net::TcpStream::connect(addr).await?;
    s.write_all(
        format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await?;
    let mut buf = Vec::new();
    s.take(16 << 20).read_to_end(&mut buf).await?;
    let text = String::from_utf8_lossy(&buf);
    Ok(text
        .split_once("\r\n\r\n")
        .map_or_else(String::new, |(_, b)| b.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_a_metric_over_labels_only() {
        let text = "# HELP anteroom_relay_rtp_forwarded_total x\n\
            anteroom_relay_rtp_forwarded_total{worker=\"0\"} 10\n\
            anteroom_relay_rtp_forwarded_total{worker=\"1\"} 32\n\
            anteroom_relay_rtp_forwarded_total_other 5\n";
        assert_eq!(
            sum_metric(text, "anteroom_relay_rtp_forwarded_total"),
            Some(42)
        );
        assert_eq!(sum_metric(text, "missing"), None);
    }

    #[test]
    fn reads_own_memory() {
        let m = memory_of("self").expect("/proc/self/status");
        assert!(m.rss_kib > 0 && m.peak_kib >= m.rss_kib);
    }
}
