//! `bench failover`: a running load, then a relay dies; how long is every subscriber
//! without media?
//!
//! Bench starts two local relays (A and B, same region) on its own control endpoint and
//! plays signaling: R rooms × (1 publisher + S subscribers) are placed on relay A; after
//! a warm-up relay A is killed (SIGKILL, or the operator's `--kill-command`). Bench waits
//! until A's control connection drops (what signaling would notice), then re-places
//! every room on relay B: each participant gets a new grant for B and joins it as a
//! **fresh peer** (a new str0m `Rtc`, new ICE/DTLS), because bench's peers cannot move
//! an existing session to another relay. The gap of a subscriber is the time from the
//! kill to the first media packet it receives through relay B.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use protocol::RoomId;

use crate::clock::process_cpu_time;
use crate::media::{AudioShape, VideoShape};
use crate::peer::{LoopConfig, PeerFactory, PeerId, PeerLoop, PeerRole, PublishSpec, join};
use crate::relayctl::process::{cpu_of, forwarded_packets};
use crate::relayctl::{
    ControlServer, LocalRelay, LocalRelaySpec, RelayLink, RelayNegotiator, RoomOf, memory_of,
};
use crate::report::{HarnessCpu, RelayCpu, Report};
use crate::stats::Recorder;
use crate::target::check_addr;
use crate::{Error, Result};

#[path = "failover_outcome.rs"]
mod outcome;
pub use outcome::FailoverOutcome;

/// Most peers (per relay) one failover run may create.
pub const MAX_PEERS: u32 = 5_000;
/// Longest wait for relay A's control connection to drop after the kill.
const DETECT_TIMEOUT: Duration = Duration::from_secs(30);

/// One failover run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FailoverConfig {
    /// Rooms.
    pub rooms: u32,
    /// Subscribers per room (each room has one publisher).
    pub subscribers: u32,
    /// Media time on relay A before it is killed.
    #[serde(rename = "warmup_ms", serialize_with = "crate::clock::serialize_ms")]
    pub warmup: Duration,
    /// Media time after the kill (re-placement and recovery must fit in it).
    #[serde(rename = "after_ms", serialize_with = "crate::clock::serialize_ms")]
    pub after: Duration,
    /// Audio shape, if publishers send audio.
    pub audio: Option<AudioShape>,
    /// Video shape, if publishers send video.
    pub video: Option<VideoShape>,
    /// Peer loop threads per relay.
    pub threads: usize,
    /// New peers per second, for the first placement and the re-placement.
    pub join_rate: u32,
    /// The `relay` binary.
    pub binary: PathBuf,
    /// Worker threads of each relay (`None`: one per core).
    pub workers: Option<usize>,
    /// Relay logs go to `<dir>/relay-a.log` and `<dir>/relay-b.log`.
    pub log_dir: Option<PathBuf>,
    /// Run this (`sh -c`) instead of SIGKILL; it gets `BENCH_RELAY_PID` and
    /// `BENCH_RELAY_NODE` of relay A in its environment.
    pub kill_command: Option<String>,
    /// Secret shared with the relays (never serialised).
    #[serde(skip)]
    pub secret: String,
}

impl FailoverConfig {
    pub(crate) fn validate(&self) -> Result<u32> {
        let peers = self
            .rooms
            .checked_mul(self.subscribers.saturating_add(1))
            .filter(|p| (1..=MAX_PEERS).contains(p))
            .ok_or_else(|| {
                Error::Config(format!("rooms × (1 + subscribers) must be 1..={MAX_PEERS}"))
            })?;
        if self.subscribers == 0 {
            return Err(Error::Config("failover needs subscribers".into()));
        }
        if self.warmup.is_zero() || self.after < Duration::from_secs(1) {
            return Err(Error::Config(
                "--warmup must be > 0 and --duration at least 1 s longer than --warmup".into(),
            ));
        }
        if self.warmup + self.after > super::loopback::MAX_DURATION {
            return Err(Error::Config("warm-up + after must be ≤ 1 h".into()));
        }
        if self.audio.is_none() && self.video.is_none() {
            return Err(Error::Config("publishers need audio or video".into()));
        }
        if !(1..=32).contains(&self.threads) || self.join_rate == 0 {
            return Err(Error::Config("threads 1..=32 and join rate > 0".into()));
        }
        if self.secret.len() < 16 {
            return Err(Error::Config("the relay secret needs ≥ 16 bytes".into()));
        }
        Ok(peers)
    }
}

/// One relay and the peers bench runs against it.
struct Side {
    relay: Option<LocalRelay>,
    link: RelayLink,
    loops: Vec<PeerLoop>,
}

async fn start_relay(
    config: &FailoverConfig,
    server: &mut ControlServer,
    name: &str,
    capacity: u32,
) -> Result<(LocalRelay, RelayLink)> {
    let relay = LocalRelay::start(&LocalRelaySpec {
        binary: config.binary.clone(),
        signaling: server.url(),
        node: format!("bench-relay-{name}"),
        workers: config.workers,
        capacity,
        secret: config.secret.clone(),
        log: config
            .log_dir
            .as_ref()
            .map(|d| d.join(format!("relay-{name}.log"))),
    })?;
    let link = server.next_relay(Duration::from_secs(30)).await?;
    for a in link.advertise() {
        let addr: SocketAddr = a
            .parse()
            .map_err(|_| Error::Config(format!("relay advertised {a:?}")))?;
        check_addr(addr, false)?;
    }
    Ok((relay, link))
}

/// Places every peer (publishers first) on `side`; peer ids start at `base`.
/// Resolves once every offer is answered; returns how many failed.
async fn place(config: &FailoverConfig, side: &Side, base: u32, factory: &Arc<PeerFactory>) -> u32 {
    let per_room = config.subscribers + 1;
    let total = config.rooms * per_room;
    let room_of: RoomOf = Arc::new(move |p: PeerId| {
        RoomId::new(format!("bench-room-{}", (p.0 % total) / per_room))
            .unwrap_or_else(|_| RoomId::random())
    });
    let secret: Arc<[u8]> = config.secret.as_bytes().into();
    let spec = PublishSpec {
        audio: config.audio,
        video: config.video,
        first_stream: 0,
    };
    let streams = spec.stream_count();
    let order = (0..config.rooms).map(|r| (r * per_room, true)).chain(
        (1..per_room).flat_map(|i| (0..config.rooms).map(move |r| (r * per_room + i, false))),
    );
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for (k, (local, publishes)) in order.enumerate() {
        tokio::time::sleep_until(
            (t0 + Duration::from_secs_f64(k as f64 / f64::from(config.join_rate))).into(),
        )
        .await;
        let peer = PeerId(base + local);
        let role = if publishes {
            PeerRole::Publisher(PublishSpec {
                first_stream: local * streams,
                ..spec
            })
        } else {
            PeerRole::Subscriber
        };
        let Some(l) = side.loops.get(k % side.loops.len()) else {
            return total;
        };
        let target = l.sender();
        let negotiator = RelayNegotiator::new(
            side.link.clone(),
            target.clone(),
            Arc::clone(&secret),
            Arc::clone(&room_of),
            false,
        );
        let factory = Arc::clone(factory);
        tasks.push(tokio::spawn(async move {
            join(&factory, &negotiator, &target, peer, role)
                .await
                .map_err(|e| (peer, e))
        }));
    }
    let mut failed = 0;
    for t in tasks {
        match t.await {
            Ok(Ok(())) => {}
            Ok(Err((peer, e))) => {
                tracing::warn!(%peer, node = %side.link.node(), error = %e, "join failed");
                failed += 1;
            }
            Err(e) => {
                tracing::warn!(error = %e, "join task failed");
                failed += 1;
            }
        }
    }
    failed
}

/// Kills relay A (SIGKILL, or the operator's command) and waits until its control
/// connection drops. Returns the kill instant and the detection delay.
async fn kill(config: &FailoverConfig, a: &mut Side) -> Result<(Instant, Duration)> {
    let killed = Instant::now();
    match &config.kill_command {
        None => drop(a.relay.take()), // LocalRelay's drop is SIGKILL + wait.
        Some(cmd) => {
            let pid = a.relay.as_ref().map_or(0, LocalRelay::pid);
            let mut command = std::process::Command::new("sh");
            command
                .arg("-c")
                .arg(cmd)
                .env("BENCH_RELAY_PID", pid.to_string())
                .env("BENCH_RELAY_NODE", a.link.node().as_str());
            let status = tokio::task::spawn_blocking(move || command.status())
                .await
                .map_err(|_| Error::Stopped("kill command"))??;
            if !status.success() {
                tracing::warn!(%status, "the kill command failed");
            }
        }
    }
    tokio::time::timeout(DETECT_TIMEOUT, a.link.closed())
        .await
        .map_err(|_| {
            Error::Negotiation(format!(
                "relay A still connected {DETECT_TIMEOUT:?} after the kill"
            ))
        })?;
    Ok((killed, killed.elapsed()))
}

/// Joins loops on a blocking thread and merges what they measured.
async fn collect(loops: Vec<PeerLoop>, start: Instant) -> Result<Recorder> {
    tokio::task::spawn_blocking(move || {
        let mut total = Recorder::new(start);
        for l in loops {
            total.merge(&l.join()?);
        }
        Ok(total)
    })
    .await
    .map_err(|_| Error::Stopped("peer loop"))?
}

/// Runs the scenario: the usual report of everything received (both relays) and the
/// failover outcome.
pub async fn run(config: &FailoverConfig) -> Result<(Report, FailoverOutcome)> {
    let peers = config.validate()?;
    let secret: Arc<[u8]> = config.secret.as_bytes().into();
    let mut server = ControlServer::start(SocketAddr::from(([127, 0, 0, 1], 0)), secret).await?;
    let (relay_a, link_a) = start_relay(config, &mut server, "a", peers + 10).await?;
    let (relay_b, link_b) = start_relay(config, &mut server, "b", peers + 10).await?;

    let factory = Arc::new(PeerFactory::new()?);
    let duration = config.warmup + config.after;
    let mut timing = LoopConfig::for_duration(duration, Duration::from_secs(1));
    timing.max_peers = MAX_PEERS as usize;
    let start = timing.run_start;
    let spawn = |name: &str| {
        (0..config.threads)
            .map(|i| PeerLoop::spawn(&format!("bench-{name}-{i}"), timing))
            .collect::<Result<Vec<_>>>()
    };
    let mut a = Side {
        relay: Some(relay_a),
        link: link_a,
        loops: spawn("a")?,
    };
    let b = Side {
        relay: Some(relay_b),
        link: link_b,
        loops: spawn("b")?,
    };
    let cpu_start = process_cpu_time();
    let b_pid = b.relay.as_ref().map(LocalRelay::pid);
    let b_metrics = b.relay.as_ref().map(LocalRelay::metrics);
    let b_cpu_start = cpu_of(b_pid);
    let mut warnings = Vec::new();
    let failed_a = place(config, &a, 0, &factory).await;
    if failed_a > 0 {
        warnings.push(format!(
            "{failed_a} of {peers} peers failed to join relay A"
        ));
    }
    tokio::time::sleep_until((start + config.warmup).into()).await;

    let (killed, detect) = kill(config, &mut a).await?;
    for l in &a.loops {
        l.sender().stop(); // Nothing more can reach them; they end now.
    }
    let failed_b = place(config, &b, peers, &factory).await;
    let replaced = killed.elapsed();
    if failed_b > 0 {
        warnings.push(format!(
            "{failed_b} of {peers} peers failed to join relay B"
        ));
    }
    tokio::time::sleep_until((timing.send_until + Duration::from_millis(300)).into()).await;
    // Relay B's work: it forwards nothing before the kill, so this is the failover load.
    let b_cpu = cpu_of(b_pid)
        .zip(b_cpu_start)
        .map(|(n, s)| n.saturating_sub(s));
    let b_forwarded = match b_metrics {
        Some(m) => forwarded_packets(m).await,
        None => None,
    };
    let relay_b_memory = b
        .relay
        .as_ref()
        .and_then(|r| memory_of(&r.pid().to_string()));
    tokio::time::sleep_until(timing.stop_at.into()).await;

    let on_a = collect(std::mem::take(&mut a.loops), start).await?;
    let on_b = collect(b.loops, start).await?;
    let per_room = config.subscribers + 1;
    let is_subscriber = |p: u32| !p.is_multiple_of(per_room);
    // Affected: subscribers that were receiving from A. Their gap: kill → first
    // packet of their fresh peer on B (peer id + `peers`).
    let gaps: Vec<Option<Duration>> = on_a
        .first_media
        .iter()
        .filter(|(p, at)| *p < peers && is_subscriber(*p) && *at <= killed)
        .map(|(p, _)| {
            on_b.first_media
                .iter()
                .find(|(q, _)| *q == p + peers)
                .map(|(_, at)| at.saturating_duration_since(killed))
        })
        .collect();
    let mut outcome = FailoverOutcome::from_gaps(&gaps, detect, replaced);
    if config.kill_command.is_some() {
        outcome.kill = "command";
    }
    let subscribers = u64::from(config.rooms * config.subscribers);
    if outcome.affected < subscribers {
        warnings.push(format!(
            "only {} of {subscribers} subscribers were receiving when relay A was killed",
            outcome.affected
        ));
    }

    let mut total = on_a;
    total.merge(&on_b);
    let cpu = match (cpu_start, process_cpu_time()) {
        (Some(a), Some(b)) => b.saturating_sub(a),
        _ => Duration::ZERO,
    };
    let received = total.streams.delivered + total.streams.duplicates;
    let harness = HarnessCpu::new(cpu, total.peers.sent_packets + received);
    let parameters = serde_json::to_value(config).unwrap_or_default();
    let mut report = Report::new("failover", parameters, duration, &total, harness);
    report.relay_memory = relay_b_memory;
    report.relay = b_cpu.zip(b_forwarded).map(|(c, f)| RelayCpu::new(c, f));
    report.harness_memory = memory_of("self");
    report.control = Some(b.link.counters());
    report.warnings.extend(warnings);
    report.warnings.push(
        "relay CPU and memory are relay B's (it carries the load after the kill); \
         loss and freezes count both relays: relay A's peers end at the kill, relay B's \
         fresh peers start at re-placement (the gap is in the failover section)"
            .into(),
    );
    Ok((report, outcome))
}

#[cfg(test)]
#[path = "failover_tests.rs"]
mod tests;
