//! What a test client received: every RTP packet (who sent it, through which relay,
//! when) and timestamped marks of its call's steps, awaitable by tests.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Result, anyhow};
use tokio::sync::watch;

/// Audio or video.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The audio track.
    Audio,
    /// The video track.
    Video,
}

/// One received RTP packet.
#[derive(Debug, Clone)]
pub struct RxPacket {
    /// When it arrived.
    pub at: Instant,
    /// Which peer connection of the receiver got it (0, 1, … after each relay move).
    pub generation: u32,
    /// The relay that peer connection was talking to.
    pub relay: String,
    /// The sender's tag.
    pub from: String,
    /// Audio or video.
    pub kind: Kind,
    /// The sender's running number for that track.
    pub number: u32,
}

/// A step of a client's call, timestamped (for failover breakdowns).
#[derive(Debug, Clone)]
pub struct Mark {
    /// When.
    pub at: Instant,
    /// The peer connection generation it concerns.
    pub generation: u32,
    /// What happened: `placed`, `offer_sent`, `answered`, `connected`, `renegotiated`.
    pub what: &'static str,
}

/// Every packet a client received, shared with its peer connections' track readers,
/// and the marks of its call's steps.
#[derive(Debug, Clone)]
pub struct MediaLog {
    packets: Arc<Mutex<Vec<RxPacket>>>,
    count: watch::Sender<usize>,
    marks: Arc<Mutex<Vec<Mark>>>,
}

impl Default for MediaLog {
    fn default() -> Self {
        MediaLog {
            packets: Arc::default(),
            count: watch::channel(0).0,
            marks: Arc::default(),
        }
    }
}

impl MediaLog {
    /// Records a step of the call now.
    pub fn mark(&self, generation: u32, what: &'static str) {
        if let Ok(mut m) = self.marks.lock() {
            m.push(Mark {
                at: Instant::now(),
                generation,
                what,
            });
        }
    }

    /// The first mark `what` of `generation`.
    pub fn mark_at(&self, generation: u32, what: &str) -> Option<Instant> {
        let marks = self.marks.lock().ok()?;
        marks
            .iter()
            .find(|m| m.generation == generation && m.what == what)
            .map(|m| m.at)
    }

    pub(super) fn push(&self, packet: RxPacket) {
        let n = {
            let Ok(mut p) = self.packets.lock() else {
                return;
            };
            p.push(packet);
            p.len()
        };
        self.count.send_replace(n);
    }

    /// A copy of every packet so far.
    pub fn snapshot(&self) -> Vec<RxPacket> {
        self.packets.lock().map(|p| p.clone()).unwrap_or_default()
    }

    /// Packets received so far (a cursor for [`MediaLog::wait_for`]).
    pub fn len(&self) -> usize {
        *self.count.borrow()
    }

    /// Whether nothing was received yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Awaits the first packet at index `from` or later matching `pred`.
    pub async fn wait_for(
        &self,
        from: usize,
        timeout: Duration,
        pred: impl Fn(&RxPacket) -> bool,
    ) -> Result<RxPacket> {
        let mut rx = self.count.subscribe();
        let mut seen = from;
        tokio::time::timeout(timeout, async {
            loop {
                {
                    let packets = self.packets.lock().map_err(|_| anyhow!("poisoned"))?;
                    if let Some(p) = packets.iter().skip(seen).find(|p| pred(p)) {
                        return Ok(p.clone());
                    }
                    seen = packets.len().max(seen);
                }
                rx.changed().await?;
            }
        })
        .await
        .map_err(|_| anyhow!("no matching media packet within {timeout:?}"))?
    }

    /// Awaits `n` packets from `from` on (index) that match `pred`.
    pub async fn wait_count(
        &self,
        from: usize,
        n: usize,
        timeout: Duration,
        pred: impl Fn(&RxPacket) -> bool,
    ) -> Result<()> {
        let mut rx = self.count.subscribe();
        tokio::time::timeout(timeout, async {
            loop {
                let got = {
                    let packets = self.packets.lock().map_err(|_| anyhow!("poisoned"))?;
                    packets.iter().skip(from).filter(|p| pred(p)).count()
                };
                if got >= n {
                    return Ok(());
                }
                rx.changed().await?;
            }
        })
        .await
        .map_err(|_| anyhow!("fewer than {n} matching media packets within {timeout:?}"))?
    }
}
