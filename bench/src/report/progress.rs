//! The live progress display: one stderr line, refreshed every second, only when stderr
//! is a terminal and neither `--quiet` nor `CI=true` asked for silence.

use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::peer::{LiveCounters, LiveSnapshot};

/// Whether to show progress: a TTY on stderr, not quiet, not CI.
pub fn enabled(quiet: bool, ci: bool) -> bool {
    !quiet && !ci && std::io::stderr().is_terminal()
}

/// One progress line from two snapshots `dt` apart.
pub fn line(elapsed: Duration, now: &LiveSnapshot, prev: &LiveSnapshot, dt: Duration) -> String {
    let secs = dt.as_secs_f64().max(1e-3);
    let rx_rate = (now.rx_packets - prev.rx_packets.min(now.rx_packets)) as f64 / secs;
    let tx_rate = (now.sent_packets - prev.sent_packets.min(now.sent_packets)) as f64 / secs;
    let loss = if now.expected == 0 {
        0.0
    } else {
        (1.0 - now.delivered as f64 / now.expected as f64).max(0.0) * 100.0
    };
    format!(
        "{:>6.1}s  users {}/{} connected ({} failed)  tx {:.0} pkt/s  rx {:.0} pkt/s  loss {:.2} %",
        elapsed.as_secs_f64(),
        now.connected,
        now.added,
        now.failed,
        tx_rate,
        rx_rate,
        loss
    )
}

/// A running progress display; stops (and ends the line) when dropped.
#[derive(Debug)]
pub struct Progress {
    stop: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Progress {
    /// Starts refreshing a line on stderr if `enabled`; otherwise does nothing.
    pub fn start(enabled: bool, counters: Vec<Arc<LiveCounters>>, start: Instant) -> Progress {
        if !enabled {
            return Progress {
                stop: None,
                thread: None,
            };
        }
        let (tx, rx) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("bench-progress".into())
            .spawn(move || {
                let sum = || {
                    counters
                        .iter()
                        .map(|c| c.snapshot())
                        .fold(LiveSnapshot::default(), |a, b| a + b)
                };
                let mut prev = sum();
                let mut prev_at = Instant::now();
                while let Err(RecvTimeoutError::Timeout) = rx.recv_timeout(Duration::from_secs(1)) {
                    let now = sum();
                    let at = Instant::now();
                    let text = line(at - start, &now, &prev, at - prev_at);
                    let mut err = std::io::stderr().lock();
                    let _ = write!(err, "\r\x1b[2K{text}");
                    let _ = err.flush();
                    (prev, prev_at) = (now, at);
                }
                let _ = writeln!(std::io::stderr());
            })
            .ok();
        Progress {
            stop: Some(tx),
            thread,
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_shows_rates_users_and_loss() {
        let prev = LiveSnapshot {
            rx_packets: 1000,
            sent_packets: 1000,
            ..LiveSnapshot::default()
        };
        let now = LiveSnapshot {
            added: 10,
            connected: 9,
            failed: 1,
            sent_packets: 3000,
            rx_packets: 2000,
            expected: 1000,
            delivered: 990,
            ..LiveSnapshot::default()
        };
        let l = line(Duration::from_secs(12), &now, &prev, Duration::from_secs(2));
        assert!(l.contains("12.0s"), "{l}");
        assert!(l.contains("users 9/10"), "{l}");
        assert!(
            l.contains("tx 1000 pkt/s") && l.contains("rx 500 pkt/s"),
            "{l}"
        );
        assert!(l.contains("loss 1.00 %"), "{l}");
    }

    #[test]
    fn quiet_or_ci_disables_progress() {
        assert!(!enabled(true, false));
        assert!(!enabled(false, true));
    }
}
