//! One child process of a test cluster: started from a built binary, its stdout and
//! stderr copied line by line into a per-test log file and kept in memory so tests can
//! await a log line (readiness by event, never by sleeping). Dropping it kills it.

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use tokio::sync::watch;

/// Where the workspace's built binaries live: the directory that holds the running test
/// binary's `deps/` directory (`target/<profile>/`).
pub fn target_profile_dir() -> Result<PathBuf> {
    let exe = std::env::current_exe().context("locating the test binary")?;
    // target/<profile>/deps/<test>-<hash> or target/<profile>/examples/<name>
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .context("test binary has no target/<profile> parent")?;
    Ok(dir.to_path_buf())
}

/// The path of a workspace binary (`signaling`, `relay`), or a clear error saying how to
/// build it.
pub fn binary(name: &str) -> Result<PathBuf> {
    let path = target_profile_dir()?.join(name);
    if !path.is_file() {
        bail!(
            "{} not found: build the workspace first (`cargo build --workspace --all-targets`, \
             which scripts/test does)",
            path.display()
        );
    }
    Ok(path)
}

/// Output lines seen so far, shared with the reader threads.
#[derive(Debug, Default)]
struct Lines {
    all: Vec<String>,
}

/// A running (or killed) child process with captured output.
#[derive(Debug)]
pub struct Process {
    name: String,
    child: Child,
    lines: Arc<Mutex<Lines>>,
    count: watch::Receiver<usize>,
    log_path: PathBuf,
}

impl Process {
    /// Starts `command`, copying its stdout and stderr into `log_path`.
    pub fn spawn(name: &str, mut command: Command, log_path: &Path) -> Result<Process> {
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command
            .spawn()
            .with_context(|| format!("starting {name}: {command:?}"))?;
        let log = Arc::new(Mutex::new(
            File::create(log_path).with_context(|| format!("creating {}", log_path.display()))?,
        ));
        let lines = Arc::new(Mutex::new(Lines::default()));
        let (tx, count) = watch::channel(0usize);
        let tx = Arc::new(tx);
        let out = child.stdout.take().context("child stdout")?;
        let err = child.stderr.take().context("child stderr")?;
        for (stream, reader) in [
            ("out", Box::new(out) as Box<dyn std::io::Read + Send>),
            ("err", Box::new(err)),
        ] {
            let (log, lines, tx) = (Arc::clone(&log), Arc::clone(&lines), Arc::clone(&tx));
            std::thread::Builder::new()
                .name(format!("{name}-{stream}"))
                .spawn(move || {
                    for line in BufReader::new(reader).lines() {
                        let Ok(line) = line else { break };
                        if let Ok(mut f) = log.lock() {
                            let _ = writeln!(f, "[{stream}] {line}");
                        }
                        let n = {
                            let Ok(mut l) = lines.lock() else { break };
                            l.all.push(line);
                            l.all.len()
                        };
                        tx.send_replace(n);
                    }
                })?;
        }
        Ok(Process {
            name: name.to_owned(),
            child,
            lines,
            count,
            log_path: log_path.to_path_buf(),
        })
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The log file this process writes to.
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// How many output lines have been seen so far (a cursor for [`Process::wait_line`]).
    pub fn line_count(&self) -> usize {
        self.lines.lock().map_or(0, |l| l.all.len())
    }

    /// The first output line seen so far at index `from` or later that satisfies `pred`.
    pub fn find_line(&self, from: usize, pred: impl Fn(&str) -> bool) -> Option<String> {
        let lines = self.lines.lock().ok()?;
        lines.all.iter().skip(from).find(|l| pred(l)).cloned()
    }

    /// A watch on the number of output lines seen (changes with every new line).
    pub fn line_watch(&self) -> watch::Receiver<usize> {
        self.count.clone()
    }

    /// Awaits the first output line at index `from` or later that satisfies `pred`, and
    /// returns it. Fails if the process exits first or `timeout` passes.
    pub async fn wait_line(
        &mut self,
        from: usize,
        timeout: Duration,
        pred: impl Fn(&str) -> bool,
    ) -> Result<String> {
        let mut count = self.count.clone();
        let mut seen = from;
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            {
                let lines = self.lines.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
                if let Some(hit) = lines.all.iter().skip(seen).find(|l| pred(l)) {
                    return Ok(hit.clone());
                }
                seen = lines.all.len();
            }
            if let Some(status) = self.child.try_wait()? {
                bail!(
                    "{} exited ({status}) before the awaited line; see {}",
                    self.name,
                    self.log_path.display()
                );
            }
            // Wake on a new line, or re-check the exit status every 100 ms.
            let step = tokio::time::Instant::now() + Duration::from_millis(100);
            if tokio::time::Instant::now() >= deadline {
                bail!(
                    "{}: awaited line not seen within {timeout:?}; see {}",
                    self.name,
                    self.log_path.display()
                );
            }
            let _ = tokio::time::timeout_at(step.min(deadline), count.changed()).await;
        }
    }

    /// Sends SIGKILL and reaps the process.
    pub fn kill(&mut self) -> Result<()> {
        if self.child.try_wait()?.is_none() {
            self.child.kill()?;
        }
        self.child.wait()?;
        Ok(())
    }

    /// Sends SIGTERM (the services drain on the first one).
    pub fn terminate(&self) -> Result<()> {
        self.signal("-TERM")
    }

    /// Sends a signal by name (`-TERM`, `-STOP`, `-CONT`) to this process only.
    pub fn signal(&self, name: &str) -> Result<()> {
        let status = Command::new("kill")
            .args([name, &self.pid().to_string()])
            .status()
            .with_context(|| format!("running kill {name}"))?;
        if !status.success() {
            bail!("kill {name} {} failed", self.pid());
        }
        Ok(())
    }

    /// Awaits the process's exit (checked every 50 ms) and returns its exit code.
    pub async fn wait_exit(&mut self, timeout: Duration) -> Result<Option<i32>> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status.code());
            }
            if tokio::time::Instant::now() >= deadline {
                bail!("{} still running after {timeout:?}", self.name);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.kill();
    }
}
