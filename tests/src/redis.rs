//! [`TestRedis`]: a private `redis-server` for a [`crate::cluster::TestCluster`] whose
//! signaling nodes share their state.
//!
//! Mirrors signaling's own test harness (`signaling/src/store/redis_server.rs`, not
//! public API): `redis-server` from `PATH` (Debian package `redis-server`) or
//! `$ANTEROOM_REDIS_SERVER`, on a free 127.0.0.1 port, with no persistence
//! (`--save "" --appendonly no`) in its own directory inside the cluster's. Ready when
//! it logs "Ready to accept connections" (awaited, not polled); killed on drop. A
//! missing binary is an error saying how to install it: a test needing Redis fails,
//! it never silently passes.

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, Result, bail};

use crate::cluster::START_TIMEOUT;
use crate::process::Process;

/// Ports tried before giving up (another process may take the probed free port
/// before the server binds it).
const ATTEMPTS: usize = 5;

/// A running private `redis-server`; killed on drop.
#[derive(Debug)]
pub struct TestRedis {
    process: Process,
    addr: SocketAddr,
}

/// The `redis-server` binary: `$ANTEROOM_REDIS_SERVER`, else the one on `PATH`, or an
/// error saying how to install it.
fn server_binary() -> Result<PathBuf> {
    if let Some(bin) = std::env::var_os("ANTEROOM_REDIS_SERVER") {
        return Ok(PathBuf::from(bin));
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join("redis-server"))
        .find(|p| p.is_file())
        .context(
            "redis-server not found on PATH: the multi-node cluster tests start their own \
             Redis; install the Debian package (`apt-get install redis-server`, which .ci/run \
             does) or point ANTEROOM_REDIS_SERVER at the binary",
        )
}

fn free_port() -> Result<u16> {
    Ok(TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
        .local_addr()?
        .port())
}

impl TestRedis {
    /// Starts one with its data directory and log under `dir`, and waits until it
    /// accepts connections.
    pub async fn start(dir: &Path) -> Result<TestRedis> {
        let bin = server_binary()?;
        let data = dir.join("redis");
        std::fs::create_dir_all(&data).with_context(|| format!("creating {}", data.display()))?;
        let mut last = None;
        for attempt in 0..ATTEMPTS {
            let port = free_port()?;
            let mut cmd = Command::new(&bin);
            cmd.args(["--bind", "127.0.0.1", "--port", &port.to_string()])
                .args(["--save", "", "--appendonly", "no"])
                .arg("--dir")
                .arg(&data)
                .args(["--protected-mode", "yes", "--loglevel", "notice"]);
            let log = dir.join(format!("redis-{attempt}.log"));
            let mut process = Process::spawn("redis-server", cmd, &log)?;
            let ready = process
                .wait_line(0, START_TIMEOUT, |l| {
                    l.contains("Ready to accept connections")
                })
                .await;
            match ready {
                Ok(_) => {
                    return Ok(TestRedis {
                        process,
                        addr: SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
                    });
                }
                Err(e) => last = Some(e),
            }
        }
        match last {
            Some(e) => Err(e.context(format!("redis-server did not start ({ATTEMPTS} attempts)"))),
            None => bail!("redis-server did not start"),
        }
    }

    /// Its address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `redis://127.0.0.1:<port>/` for `--redis-url`.
    pub fn url(&self) -> String {
        format!("redis://{}/", self.addr)
    }

    /// Its process (e.g. to stop it for an outage test).
    pub fn process(&mut self) -> &mut Process {
        &mut self.process
    }
}
