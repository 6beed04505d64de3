//! `bench fanout --target whip://host:port/whip/<call>`: the fanout load against any
//! WHIP/WHEP server (Anteroom's signaling, or another SFU), so SFUs can be compared
//! with the same load. One publisher joins over WHIP, then S subscribers over WHEP with
//! recvonly audio + video offers (the server fills them in its answer; there is no
//! renegotiation). Every session is `DELETE`d at the end.
//!
//! The report is fanout's. The server's CPU is read from `/proc/<pid>` only when
//! `--relay-pid` names the process; its forwarded packets are then taken to be the
//! packets the subscribers received (a WHIP/WHEP server has no standard metrics).

use std::sync::Arc;
use std::time::Duration;

use clap::Args;

use super::sfu::{MAX_PEERS, SfuConfig};
use crate::clock::process_cpu_time;
use crate::peer::{
    Endpoint, LoopConfig, PeerFactory, PeerId, PeerLoop, PeerRole, PublishSpec, WhipNegotiator,
    join,
};
use crate::relayctl::memory_of;
use crate::relayctl::process::cpu_of;
use crate::report::progress::Progress;
use crate::report::{HarnessCpu, RelayCpu, Report};
use crate::stats::Recorder;
use crate::{Error, Result};

/// The flags only `--target whip://…` uses.
#[derive(Debug, Clone, Default, Args)]
pub struct WhipArgs {
    /// With a whip:// target: the WHEP endpoint subscribers use (default: the target
    /// with its last `/whip/` replaced by `/whep/`).
    #[arg(long)]
    pub whep_url: Option<String>,
    /// With a whip:// target: the publisher's bearer token (WHIP).
    #[arg(long, env = "BENCH_WHIP_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// With a whip:// target: the subscribers' bearer token (WHEP; default: --token).
    #[arg(long, env = "BENCH_WHEP_TOKEN", hide_env_values = true)]
    pub whep_token: Option<String>,
}

/// Whether `target` is one this module runs (`whip://` or `http://…/whip/…`).
pub fn is_whip_target(target: &str) -> bool {
    let lower = target.to_ascii_lowercase();
    lower.starts_with("whip://") || (lower.starts_with("http://") && lower.contains("/whip/"))
}

/// One run against a WHIP/WHEP server.
#[derive(Debug, Clone)]
pub struct WhipRun {
    /// The fanout shape (rooms and publishers must be 1; the relay fields are unused).
    pub config: SfuConfig,
    /// The WHIP URL.
    pub target: String,
    /// The flags above.
    pub whip: WhipArgs,
    /// Accept non-loopback endpoints and media addresses.
    pub allow_remote: bool,
    /// The server's pid, for its CPU and memory.
    pub relay_pid: Option<u32>,
}

/// Runs the fanout against the WHIP/WHEP server and returns its report.
pub async fn run(run: &WhipRun, progress: bool) -> Result<Report> {
    let config = &run.config;
    if config.rooms != 1 || config.publishers != 1 || config.publishers_subscribe {
        return Err(Error::Config(
            "a whip:// target runs fanout with one room (the call) and one publisher".into(),
        ));
    }
    if config.impairment.is_some() || config.ramp.is_some() {
        return Err(Error::Config(
            "--loss-pct, --delay and --ramp are not supported with a whip:// target".into(),
        ));
    }
    let peers = config.subscribers.saturating_add(1);
    if peers > MAX_PEERS
        || config.duration.is_zero()
        || config.duration > super::loopback::MAX_DURATION
    {
        return Err(Error::Config(format!(
            "subscribers ≤ {} and duration in (0, 1 h]",
            MAX_PEERS - 1
        )));
    }
    if config.audio.is_none() && config.video.is_none() {
        return Err(Error::Config("the publisher needs audio or video".into()));
    }
    if !(1..=64).contains(&config.threads) || config.join_rate == 0 {
        return Err(Error::Config("threads 1..=64 and join rate > 0".into()));
    }
    let whip_token = run
        .whip
        .token
        .clone()
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            Error::Config("a whip:// target needs --token (or BENCH_WHIP_TOKEN)".into())
        })?;
    let whep_token = run.whip.whep_token.clone().unwrap_or(whip_token.clone());
    // Tokens go into a header line: nothing but visible ASCII.
    if ![&whip_token, &whep_token]
        .iter()
        .all(|t| t.bytes().all(|b| b.is_ascii_graphic()))
    {
        return Err(Error::Config("tokens must be visible ASCII".into()));
    }
    let whip = Endpoint::parse(&run.target, run.allow_remote).await?;
    let whep = match &run.whip.whep_url {
        Some(url) => Endpoint::parse(url, run.allow_remote).await?,
        None => whip.whep_sibling().ok_or_else(|| {
            Error::Config("the target has no /whip/ in its path: give --whep-url".into())
        })?,
    };
    let negotiator = Arc::new(WhipNegotiator::new(
        whip,
        whep,
        whip_token,
        whep_token,
        run.allow_remote,
    ));

    let factory = Arc::new(PeerFactory::new()?);
    let mut timing = LoopConfig::for_duration(config.duration, Duration::from_secs(1));
    timing.freeze = config.freeze;
    timing.max_peers = MAX_PEERS as usize;
    let start = timing.run_start;
    let loops = (0..config.threads)
        .map(|i| PeerLoop::spawn(&format!("bench-loop-{i}"), timing))
        .collect::<Result<Vec<_>>>()?;
    let shown = Progress::start(
        progress,
        loops
            .iter()
            .map(|l| Arc::clone(l.sender().counters()))
            .collect(),
        start,
    );
    let cpu_start = process_cpu_time();
    let relay_cpu_start = cpu_of(run.relay_pid);
    let spec = PublishSpec {
        audio: config.audio,
        video: config.video,
        first_stream: 0,
    };
    let mut tasks = Vec::new();
    for k in 0..peers {
        let at = start + Duration::from_secs_f64(f64::from(k) / f64::from(config.join_rate));
        if at >= timing.send_until {
            break;
        }
        tokio::time::sleep_until(at.into()).await;
        let role = if k == 0 {
            PeerRole::Publisher(spec)
        } else {
            PeerRole::Subscriber
        };
        let i = k as usize % loops.len();
        let (factory, negotiator, target) = (
            Arc::clone(&factory),
            Arc::clone(&negotiator),
            loops[i].sender(),
        );
        tasks.push(tokio::spawn(async move {
            let peer = PeerId(k);
            join(&factory, negotiator.as_ref(), &target, peer, role)
                .await
                .map_err(|e| (peer, e))
        }));
        if k == 0 {
            // Subscribers of a call nobody publishes in would only wait: the
            // publisher's POST is answered first.
            if let Some(t) = tasks.pop()
                && let Ok(Err((_, e))) = t.await
            {
                return Err(Error::Negotiation(format!(
                    "the publisher's WHIP POST: {e}"
                )));
            }
        }
    }
    let mut join_errors = Vec::new();
    for t in tasks {
        if let Ok(Err((peer, e))) = t.await {
            tracing::warn!(%peer, error = %e, "join failed");
            join_errors.push(e.to_string());
        }
    }
    tokio::time::sleep_until((timing.send_until + Duration::from_millis(300)).into()).await;
    let relay_cpu = match (relay_cpu_start, cpu_of(run.relay_pid)) {
        (Some(a), Some(b)) => Some(b.saturating_sub(a)),
        _ => None,
    };
    let relay_memory = run.relay_pid.and_then(|p| memory_of(&p.to_string()));
    tokio::time::sleep_until(timing.stop_at.into()).await;

    let mut total = Recorder::new(start);
    for l in loops {
        total.merge(&l.join()?);
    }
    // Sessions end once the peers are stopped, so no peer sees its own teardown.
    let delete_failures = negotiator.end_all().await;
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
    let mut parameters = serde_json::to_value(config).unwrap_or_default();
    if let Some(p) = parameters.as_object_mut() {
        // The relay fields describe bench's own relay, which this run does not use.
        p.remove("relay");
        p.remove("allow_remote");
        p.insert("target".into(), "whip".into());
    }
    let mut report = Report::new(
        config.scenario,
        parameters,
        config.duration,
        &total,
        harness,
    );
    match relay_cpu {
        Some(cpu) => {
            report.relay = Some(RelayCpu::new(cpu, received));
            report.warnings.push(
                "server CPU per packet counts the packets subscribers received as forwarded".into(),
            );
        }
        None => report
            .warnings
            .push("server CPU not measured: give --relay-pid".into()),
    }
    report.relay_memory = relay_memory;
    report.harness_memory = memory_of("self");
    if let Some(first) = join_errors.first() {
        report.warnings.push(format!(
            "{} of {peers} peers failed to join (first: {first})",
            join_errors.len()
        ));
    }
    if delete_failures > 0 {
        report
            .warnings
            .push(format!("{delete_failures} session DELETEs failed"));
    }
    Ok(report)
}
