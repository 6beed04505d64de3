//! The scenarios that load a real relay: `fanout` (R rooms × 1 publisher × S
//! subscribers), `meeting` (R rooms × N participants all publishing and subscribing)
//! and `audio` (the same, audio only). Bench starts the `relay` binary itself and plays
//! signaling's part of the control protocol ([`crate::relayctl`]), or attaches to a
//! relay the operator started, pointed at bench's control endpoint.
//!
//! The relay's CPU (from `/proc/<pid>/stat`) and forwarded packets (its `/metrics`) are
//! read just before the first join and just after sending ends, and reported next to
//! the harness's own CPU per packet.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use protocol::RoomId;

use super::ramp::{self, RampConfig};
use crate::clock::process_cpu_time;
use crate::media::{AudioShape, VideoShape};
use crate::peer::{LoopConfig, PeerFactory, PeerId, PeerLoop, PeerRole, PublishSpec, join};
use crate::relayctl::process::{cpu_of, forwarded_packets};
use crate::relayctl::{
    ControlServer, LocalRelay, LocalRelaySpec, RelayNegotiator, RoomOf, memory_of,
};
use crate::report::progress::Progress;
use crate::report::{HarnessCpu, RelayCpu, Report};
use crate::shim::{Shim, ShimConfig};
use crate::stats::{FreezeThresholds, Recorder};
use crate::target::check_addr;
use crate::{Error, Result};

/// Most peers one relay run may create.
pub const MAX_PEERS: u32 = 20_000;

/// Where the relay comes from.
#[derive(Debug, Clone, serde::Serialize)]
pub enum RelaySetup {
    /// Bench starts this binary and stops it at the end.
    Spawn {
        /// The `relay` binary.
        binary: PathBuf,
        /// Worker threads (`None`: one per core).
        workers: Option<usize>,
        /// The relay's stderr goes here.
        log: Option<PathBuf>,
    },
    /// The operator starts a relay with `--signaling ws://<control>/control`.
    Attach {
        /// Where bench's control endpoint listens.
        control: SocketAddr,
        /// The relay's metrics listener, for forwarded packets.
        metrics: Option<SocketAddr>,
        /// The relay's pid, for CPU and memory.
        pid: Option<u32>,
    },
}

/// One relay run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SfuConfig {
    /// `fanout`, `meeting` or `audio`.
    pub scenario: &'static str,
    /// Rooms.
    pub rooms: u32,
    /// Publishers per room.
    pub publishers: u32,
    /// Subscribe-only peers per room.
    pub subscribers: u32,
    /// Publishers also receive the room's other tracks (meetings).
    pub publishers_subscribe: bool,
    /// How long media is sent.
    #[serde(rename = "duration_ms", serialize_with = "crate::clock::serialize_ms")]
    pub duration: Duration,
    /// Audio shape, if publishers send audio.
    pub audio: Option<AudioShape>,
    /// Video shape, if publishers send video.
    pub video: Option<VideoShape>,
    /// Peer loop threads.
    pub threads: usize,
    /// New peers per second while joining.
    pub join_rate: u32,
    /// Receiver freeze thresholds.
    pub freeze: FreezeThresholds,
    /// The relay.
    pub relay: RelaySetup,
    /// Secret shared with the relay (never serialised).
    #[serde(skip)]
    pub secret: String,
    /// Accept a relay that advertises non-loopback addresses.
    pub allow_remote: bool,
    /// Loss/delay injected between every publisher and the relay (a shim), if any.
    pub impairment: Option<ShimConfig>,
    /// `--ramp`: subscribers join slowly through the run and the capacity is reported.
    pub ramp: Option<RampConfig>,
}

impl SfuConfig {
    pub(crate) fn validate(&self) -> Result<u32> {
        let per_room = self.publishers.saturating_add(self.subscribers);
        let peers = self
            .rooms
            .checked_mul(per_room)
            .filter(|p| (1..=MAX_PEERS).contains(p))
            .ok_or_else(|| Error::Config(format!("rooms × peers must be 1..={MAX_PEERS}")))?;
        if self.publishers == 0 {
            return Err(Error::Config("every room needs a publisher".into()));
        }
        if self.duration.is_zero() || self.duration > super::loopback::MAX_DURATION {
            return Err(Error::Config("duration must be in (0, 1 h]".into()));
        }
        if self.audio.is_none() && self.video.is_none() {
            return Err(Error::Config("publishers need audio or video".into()));
        }
        if !(1..=64).contains(&self.threads) || self.join_rate == 0 {
            return Err(Error::Config("threads 1..=64 and join rate > 0".into()));
        }
        if self.secret.len() < 16 {
            return Err(Error::Config("the relay secret needs ≥ 16 bytes".into()));
        }
        Ok(peers)
    }

    /// Peers in the order they join: every room's publishers, then subscribers round
    /// robin over rooms. Peer ids are `room * per_room + index`.
    fn join_order(&self) -> Vec<(PeerId, bool)> {
        let per_room = self.publishers + self.subscribers;
        let mut order = Vec::new();
        for i in 0..self.publishers {
            for r in 0..self.rooms {
                order.push((PeerId(r * per_room + i), true));
            }
        }
        for i in 0..self.subscribers {
            for r in 0..self.rooms {
                order.push((PeerId(r * per_room + self.publishers + i), false));
            }
        }
        order
    }
}

/// The relay as bench sees it during a run.
struct Attached {
    _local: Option<LocalRelay>,
    pid: Option<u32>,
    metrics: Option<SocketAddr>,
}

/// Runs the scenario and returns its report. `progress` shows the live line.
pub async fn run(config: &SfuConfig, progress: bool) -> Result<Report> {
    let peers = config.validate()?;
    let secret: Arc<[u8]> = config.secret.as_bytes().into();
    let bind = match &config.relay {
        RelaySetup::Attach { control, .. } => *control,
        RelaySetup::Spawn { .. } => SocketAddr::from(([127, 0, 0, 1], 0)),
    };
    let mut server = ControlServer::start(bind, Arc::clone(&secret)).await?;
    let attached = match &config.relay {
        RelaySetup::Spawn {
            binary,
            workers,
            log,
        } => {
            let local = LocalRelay::start(&LocalRelaySpec {
                binary: binary.clone(),
                signaling: server.url(),
                node: "bench-relay-1".into(),
                workers: *workers,
                capacity: peers + 10,
                secret: config.secret.clone(),
                log: log.clone(),
            })?;
            Attached {
                pid: Some(local.pid()),
                metrics: Some(local.metrics()),
                _local: Some(local),
            }
        }
        RelaySetup::Attach { metrics, pid, .. } => {
            eprintln!(
                "bench {}: waiting for a relay started with --signaling {}",
                config.scenario,
                server.url()
            );
            Attached {
                _local: None,
                pid: *pid,
                metrics: *metrics,
            }
        }
    };
    let link = server.next_relay(Duration::from_secs(30)).await?;
    // Media goes wherever the relay's answers say: refuse to flood a remote address.
    for a in link.advertise() {
        let addr: SocketAddr = a
            .parse()
            .map_err(|_| Error::Config(format!("relay advertised {a:?}")))?;
        check_addr(addr, config.allow_remote)?;
    }

    let factory = Arc::new(PeerFactory::new()?);
    let mut timing = LoopConfig::for_duration(config.duration, Duration::from_secs(1));
    timing.freeze = config.freeze;
    timing.max_peers = MAX_PEERS as usize;
    let start = timing.run_start;
    let loops = (0..config.threads)
        .map(|i| PeerLoop::spawn(&format!("bench-loop-{i}"), timing))
        .collect::<Result<Vec<_>>>()?;
    let per_room = config.publishers + config.subscribers;
    let room_of: RoomOf = Arc::new(move |p: PeerId| {
        RoomId::new(format!("bench-room-{}", p.0 / per_room.max(1)))
            .unwrap_or_else(|_| RoomId::random())
    });
    let shim = match config.impairment {
        Some(imp) => Some(Arc::new(Shim::start(ShimConfig {
            lifetime: config.duration + Duration::from_secs(10),
            ..imp
        })?)),
        None => None,
    };
    let negotiators: Vec<Arc<RelayNegotiator>> = loops
        .iter()
        .map(|l| {
            let n = RelayNegotiator::new(
                link.clone(),
                l.sender(),
                Arc::clone(&secret),
                Arc::clone(&room_of),
                config.publishers_subscribe,
            );
            Arc::new(match &shim {
                Some(s) => n.with_upstream_shim(Arc::clone(s)),
                None => n,
            })
        })
        .collect();
    let shown = Progress::start(
        progress,
        loops
            .iter()
            .map(|l| Arc::clone(l.sender().counters()))
            .collect(),
        start,
    );

    let cpu_start = process_cpu_time();
    let relay_cpu_start = cpu_of(attached.pid);
    let fwd_start = match attached.metrics {
        Some(m) => forwarded_packets(m).await,
        None => None,
    };
    let spec = PublishSpec {
        audio: config.audio,
        video: config.video,
        first_stream: 0,
    };
    let streams = spec.stream_count();
    let joined_at: Arc<Mutex<Vec<Instant>>> = Arc::default();
    let mut tasks = Vec::new();
    let pace = config.ramp.map_or(f64::from(config.join_rate), |r| r.rate);
    for (k, (peer, publishes)) in config.join_order().into_iter().enumerate() {
        let at = start + Duration::from_secs_f64(k as f64 / pace);
        if at >= timing.send_until {
            break;
        }
        tokio::time::sleep_until(at.into()).await;
        let role = if publishes {
            PeerRole::Publisher(PublishSpec {
                first_stream: peer.0 * streams,
                ..spec
            })
        } else {
            PeerRole::Subscriber
        };
        let i = k % loops.len();
        let (factory, negotiator, target) = (
            Arc::clone(&factory),
            Arc::clone(&negotiators[i]),
            loops[i].sender(),
        );
        let joined_at = Arc::clone(&joined_at);
        tasks.push(tokio::spawn(async move {
            let r = join(&factory, negotiator.as_ref(), &target, peer, role).await;
            if r.is_ok() && !publishes {
                joined_at
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(Instant::now());
            }
            r.map_err(|e| (peer, e))
        }));
    }
    let mut join_errors = 0u32;
    for t in tasks {
        if let Ok(Err((peer, e))) = t.await {
            tracing::warn!(%peer, error = %e, "join failed");
            join_errors += 1;
        }
    }
    // Keep the runtime (control endpoint, renegotiations) running until sending ends.
    tokio::time::sleep_until((timing.send_until + Duration::from_millis(300)).into()).await;
    let relay_cpu = match (relay_cpu_start, cpu_of(attached.pid)) {
        (Some(a), Some(b)) => Some(b.saturating_sub(a)),
        _ => None,
    };
    let forwarded = match (fwd_start, attached.metrics) {
        (Some(a), Some(m)) => forwarded_packets(m).await.map(|b| b.saturating_sub(a)),
        _ => None,
    };
    let relay_memory = attached.pid.and_then(|p| memory_of(&p.to_string()));
    tokio::time::sleep_until(timing.stop_at.into()).await;

    let mut total = Recorder::new(start);
    for l in loops {
        total.merge(&l.join()?);
    }
    drop(shown);
    if config.video.is_none_or(|v| !v.simulcast) {
        total.account_tails();
    }
    let cpu = match (cpu_start, process_cpu_time()) {
        (Some(a), Some(b)) => b.saturating_sub(a),
        _ => Duration::ZERO,
    };
    let received = total.streams.delivered + total.streams.duplicates;
    let harness = HarnessCpu::new(cpu, total.peers.sent_packets + received);
    let parameters = serde_json::to_value(config).unwrap_or_default();
    let mut report = Report::new(
        config.scenario,
        parameters,
        config.duration,
        &total,
        harness,
    );
    if let (Some(cpu), Some(fwd)) = (relay_cpu, forwarded) {
        report.relay = Some(RelayCpu::new(cpu, fwd));
    } else {
        report.warnings.push(
            "relay CPU per packet not measured: needs the relay's pid and metrics address".into(),
        );
    }
    report.relay_memory = relay_memory;
    report.impairment = shim.as_ref().map(|s| s.config());
    report.harness_memory = memory_of("self");
    report.control = Some(link.counters());
    if join_errors > 0 {
        report
            .warnings
            .push(format!("{join_errors} of {peers} peers failed to join"));
    }
    if let Some(r) = config.ramp {
        let mut times =
            std::mem::take(&mut *joined_at.lock().unwrap_or_else(PoisonError::into_inner));
        times.sort();
        report.ramp = Some(ramp::capacity(&r, start, &times, &report.series));
    }
    Ok(report)
}
