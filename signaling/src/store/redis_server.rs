//! [`RedisServer`]: a private, throwaway `redis-server` for tests.
//!
//! Tests run inside a loopback-only network namespace (`scripts/test`), so a
//! Redis started outside it (e.g. by `.ci/run`) would not be reachable; each
//! test that needs Redis starts its own here instead: `redis-server` from
//! `PATH` (Debian package `redis-server`) or `$ANTEROOM_REDIS_SERVER`, on a
//! free 127.0.0.1 port, with no persistence (`--save "" --appendonly no`) in
//! a fresh temporary directory. It is ready when it logs "Ready to accept
//! connections" (no polling), and it is killed and its directory removed on
//! drop. A missing binary is an error that says how to install it: a test
//! needing Redis fails, it never silently passes.

use std::io::{BufRead as _, BufReader};
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use crate::Error;

/// How long `redis-server` may take to become ready.
const READY_TIMEOUT: Duration = Duration::from_secs(20);

/// Ports tried before giving up (another process may grab the free port
/// between our probe and the server's bind).
const ATTEMPTS: usize = 5;

/// A running private `redis-server`; killed on drop.
#[derive(Debug)]
pub struct RedisServer {
    child: Child,
    addr: SocketAddr,
    dir: PathBuf,
}

impl RedisServer {
    /// Starts one and waits until it accepts connections.
    pub fn start() -> Result<Self, Error> {
        Self::start_with(None)
    }

    /// Starts one on `port` (a test restarting "the same" Redis).
    pub fn start_on(port: u16) -> Result<Self, Error> {
        Self::start_with(Some(port))
    }

    fn start_with(port: Option<u16>) -> Result<Self, Error> {
        let bin = std::env::var_os("ANTEROOM_REDIS_SERVER")
            .map_or_else(|| PathBuf::from("redis-server"), PathBuf::from);
        let mut last = String::new();
        let attempts = if port.is_some() { 1 } else { ATTEMPTS };
        for _ in 0..attempts {
            let port = match port.map_or_else(free_port, Ok) {
                Ok(p) => p,
                Err(e) => {
                    last = format!("no free port: {e}");
                    continue;
                }
            };
            match Self::try_start(&bin, port) {
                Ok(s) => return Ok(s),
                Err(Start::Missing(e)) => {
                    return Err(Error::Redis(format!(
                        "cannot run {}: {e}. Tests that need Redis start their own \
                         redis-server: install the Debian package (apt-get install \
                         redis-server) or point ANTEROOM_REDIS_SERVER at the binary",
                        bin.display()
                    )));
                }
                Err(Start::Failed(e)) => last = e,
            }
        }
        Err(Error::Redis(format!(
            "redis-server did not start ({attempts} attempts): {last}"
        )))
    }

    fn try_start(bin: &PathBuf, port: u16) -> Result<Self, Start> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!(
            "anteroom-redis-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).map_err(|e| Start::Failed(format!("temp dir: {e}")))?;
        let spawned = Command::new(bin)
            .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(&dir)
            .args(["--protected-mode", "yes", "--loglevel", "notice"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn();
        let mut child = match spawned {
            Ok(c) => c,
            Err(e) => {
                let _ = std::fs::remove_dir_all(&dir);
                return Err(if e.kind() == std::io::ErrorKind::NotFound {
                    Start::Missing(e.to_string())
                } else {
                    Start::Failed(e.to_string())
                });
            }
        };
        let server = Self {
            addr: SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
            dir,
            child: match child.stdout.take() {
                Some(out) => {
                    let ready = wait_ready(out);
                    if let Err(e) = ready {
                        let _ = child.kill();
                        let _ = child.wait();
                        return Err(Start::Failed(e));
                    }
                    child
                }
                None => return Err(Start::Failed("no stdout".into())),
            },
        };
        Ok(server)
    }

    /// Its address (127.0.0.1 and the chosen port).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its process id (a test may stop it with SIGSTOP to make it hang).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `redis://127.0.0.1:<port>/`.
    pub fn url(&self) -> String {
        format!("redis://{}/", self.addr)
    }

    /// Kills it now (a test of a Redis outage); dropping does the same.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

enum Start {
    Missing(String),
    Failed(String),
}

fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
        .local_addr()?
        .port())
}

/// Reads the server's log until it is ready; the rest of the log is drained
/// by the reader thread so the server never blocks on a full pipe.
fn wait_ready(out: std::process::ChildStdout) -> Result<(), String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut tail = Vec::new();
        let mut ready = false;
        for line in BufReader::new(out).lines() {
            let Ok(line) = line else { break };
            if !ready && line.contains("Ready to accept connections") {
                ready = true;
                let _ = tx.send(Ok(()));
            }
            if !ready {
                tail.push(line);
                if tail.len() > 5 {
                    tail.remove(0);
                }
            }
        }
        if !ready {
            let _ = tx.send(Err(format!("it exited: {}", tail.join(" | "))));
        }
    });
    match rx.recv_timeout(READY_TIMEOUT) {
        Ok(r) => r,
        Err(_) => Err(format!("not ready within {READY_TIMEOUT:?}")),
    }
}
