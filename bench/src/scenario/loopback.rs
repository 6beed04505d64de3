//! `bench loopback`: P publishers each sending directly (peer-to-peer, no relay) to S
//! subscribers over real UDP on 127.0.0.1, optionally through the impairment shim.
//!
//! It checks the harness end to end (ICE, DTLS, SRTP, probes, stats) and measures the
//! harness's own CPU per simulated packet: with no relay in the path, every CPU second
//! the process spends is the harness's.

use std::sync::Arc;
use std::time::Duration;

use crate::clock::process_cpu_time;
use crate::media::{AudioShape, VideoShape};
use crate::peer::{
    DirectNegotiator, LoopConfig, PeerFactory, PeerId, PeerLoop, PeerRole, PublishSpec, join,
};
use crate::report::progress::Progress;
use crate::report::{HarnessCpu, Report};
use crate::shim::{Shim, ShimConfig};
use crate::stats::{FreezeThresholds, Recorder};
use crate::{Error, Result};

/// Most peer connections (pairs) one loopback run may create.
pub const MAX_PAIRS: u32 = 5_000;
/// Longest run.
pub const MAX_DURATION: Duration = Duration::from_secs(3600);

/// Parameters of a loopback run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LoopbackConfig {
    /// Publishers.
    pub publishers: u32,
    /// Subscribers per publisher (each a separate peer connection).
    pub subscribers: u32,
    /// How long media is sent.
    #[serde(rename = "duration_ms", serialize_with = "crate::clock::serialize_ms")]
    pub duration: Duration,
    /// Audio shape, if publishers send audio.
    pub audio: Option<AudioShape>,
    /// Video shape, if publishers send video.
    pub video: Option<VideoShape>,
    /// Impairment between each pair, if any.
    pub impairment: Option<ShimConfig>,
    /// Peer loop threads.
    pub threads: usize,
    /// New pairs per second while joining.
    pub join_rate: u32,
    /// Receiver freeze thresholds.
    pub freeze: FreezeThresholds,
}

impl Default for LoopbackConfig {
    fn default() -> Self {
        LoopbackConfig {
            publishers: 1,
            subscribers: 1,
            duration: Duration::from_secs(10),
            audio: Some(AudioShape::default()),
            video: Some(VideoShape::default()),
            impairment: None,
            threads: 2,
            join_rate: 200,
            freeze: FreezeThresholds::default(),
        }
    }
}

impl LoopbackConfig {
    pub(crate) fn validate(&self) -> Result<u32> {
        let pairs = self
            .publishers
            .checked_mul(self.subscribers)
            .filter(|p| (1..=MAX_PAIRS).contains(p))
            .ok_or_else(|| {
                Error::Config(format!("publishers × subscribers must be 1..={MAX_PAIRS}"))
            })?;
        if self.duration.is_zero() || self.duration > MAX_DURATION {
            return Err(Error::Config("duration must be in (0, 1 h]".into()));
        }
        if self.audio.is_none() && self.video.is_none() {
            return Err(Error::Config("publishers need audio or video".into()));
        }
        if !(1..=64).contains(&self.threads) || self.join_rate == 0 {
            return Err(Error::Config("threads 1..=64 and join rate > 0".into()));
        }
        Ok(pairs)
    }
}

/// Runs the scenario and returns its report. `progress` shows the live line.
pub async fn run(config: &LoopbackConfig, progress: bool) -> Result<Report> {
    let pairs = config.validate()?;
    let factory = Arc::new(PeerFactory::new()?);
    let delay = config.impairment.map_or(Duration::ZERO, |i| i.delay);
    let drain = Duration::from_millis(500) + delay;
    let mut timing = LoopConfig::for_duration(config.duration, drain);
    timing.freeze = config.freeze;
    let start = timing.run_start;
    let cpu_start = process_cpu_time();

    let loops = (0..config.threads)
        .map(|i| PeerLoop::spawn(&format!("bench-loop-{i}"), timing))
        .collect::<Result<Vec<_>>>()?;
    let shim = match config.impairment {
        Some(imp) => Some(Arc::new(Shim::start(ShimConfig {
            lifetime: config.duration + drain + Duration::from_secs(5),
            ..imp
        })?)),
        None => None,
    };
    // Subscribers of pairs whose publisher runs on loop i run on loop i+1, so with two
    // threads each side of a pair has its own.
    let negotiators: Vec<DirectNegotiator> = loops
        .iter()
        .enumerate()
        .map(|(i, _)| {
            let target = loops[(i + 1) % loops.len()].sender();
            let first_id = pairs * (1 + i as u32);
            let n =
                DirectNegotiator::new(Arc::clone(&factory), target, PeerRole::Subscriber, first_id);
            match &shim {
                Some(s) => n.with_shim(Arc::clone(s)),
                None => n,
            }
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

    let streams_per_publisher = PublishSpec {
        audio: config.audio,
        video: config.video,
        first_stream: 0,
    }
    .stream_count();
    let mut join_errors = 0u32;
    for k in 0..pairs {
        let at = start + Duration::from_secs_f64(f64::from(k) / f64::from(config.join_rate));
        if at >= timing.send_until {
            break;
        }
        tokio::time::sleep_until(at.into()).await;
        let publisher = k / config.subscribers;
        let role = PeerRole::Publisher(PublishSpec {
            audio: config.audio,
            video: config.video,
            // Every connection of one publisher stamps the same stream ids.
            first_stream: publisher * streams_per_publisher,
        });
        let i = k as usize % loops.len();
        if let Err(e) = join(
            &factory,
            &negotiators[i],
            &loops[i].sender(),
            PeerId(k),
            role,
        )
        .await
        {
            tracing::warn!(pair = k, error = %e, "join failed");
            join_errors += 1;
        }
    }

    let mut total = Recorder::new(start);
    for l in loops {
        total.merge(&l.join()?);
    }
    drop(shown);
    let cpu = match (cpu_start, process_cpu_time()) {
        (Some(a), Some(b)) => b.saturating_sub(a),
        _ => Duration::ZERO,
    };
    let received = total.streams.delivered + total.streams.duplicates;
    let harness = HarnessCpu::new(cpu, total.peers.sent_packets + received);
    let parameters = serde_json::to_value(config).unwrap_or_default();
    let mut report = Report::new("loopback", parameters, config.duration, &total, harness);
    report.impairment = shim.as_ref().map(|s| s.config());
    if join_errors > 0 {
        report.warnings.push(format!(
            "{join_errors} of {pairs} pairs failed to negotiate"
        ));
    }
    tracing::debug!(elapsed = ?start.elapsed(), "loopback run finished");
    Ok(report)
}
