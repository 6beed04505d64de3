//! The `bench` command line: one clap [`Cli`] (flags + env vars), validated before any
//! load starts. `main.rs` only parses it and calls [`run`].

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use super::failover_cli::{self, FailoverArgs};
use super::lobby_cli::{self, LobbyArgs};
use super::loopback::{self, LoopbackConfig};
use super::relay_cli::{self, FanoutArgs, MeetingArgs};
use crate::media::{AudioShape, VideoShape};
use crate::report::{Report, progress};
use crate::shim::ShimConfig;

/// Load tests for Anteroom (or any WHIP/WHEP server) that behave like real users.
#[derive(Debug, Parser)]
#[command(name = "bench", version, about)]
pub struct Cli {
    /// The scenario to run.
    #[command(subcommand)]
    pub scenario: Scenario,
    /// Only check the flags and environment (target guard, relay binary, output
    /// directories) and exit: prints `config ok` (exit 0) or the problem (exit 2).
    /// Starts nothing and contacts nobody.
    #[arg(long, global = true)]
    pub check_config: bool,
}

/// Flags every scenario shares.
#[derive(Debug, Clone, Args)]
pub struct Common {
    /// How long media is sent (e.g. 30s, 2m, 500ms). Every load stops by itself.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Write the JSON report to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Write an SVG plot of latency and throughput to this file.
    #[arg(long)]
    pub svg: Option<PathBuf>,
    /// No live progress line.
    #[arg(long, short)]
    pub quiet: bool,
    /// Set by CI systems; disables the progress line.
    #[arg(long, env = "CI", hide = true, default_value_t = false, value_parser = parse_ci)]
    pub ci: bool,
}

/// Flags of scenarios that load a running system.
#[derive(Debug, Clone, Args)]
pub struct Remote {
    /// The system to load: signaling URL (ws://…), or whip://…/whep://… for any SFU.
    #[arg(long, default_value = "ws://127.0.0.1:8080/ws")]
    pub target: String,
    /// Allow a non-loopback target (never needed for local testing).
    #[arg(long)]
    pub allow_remote: bool,
}

/// The scenarios.
#[derive(Debug, Subcommand)]
pub enum Scenario {
    /// Publishers send directly (peer-to-peer) to subscribers over 127.0.0.1, optionally
    /// through a lossy/delaying shim. Checks the harness and measures its CPU per packet.
    Loopback(LoopbackArgs),
    /// R rooms × 1 publisher × S subscribers through a real relay (livestream shape).
    /// Bench starts `relay` (or attaches to one with --relay-control) and plays
    /// signaling's part of the control protocol. --ramp finds the capacity.
    Fanout(FanoutArgs),
    /// R rooms × N participants all publishing and subscribing, through a real relay.
    Meeting(MeetingArgs),
    /// Rooms of audio-only participants (all publish and subscribe), through a real relay.
    Audio(MeetingArgs),
    /// K waiting patients and C clinicians over the real signaling WebSocket protocol:
    /// a fill to K, then arrival/admit churn; join, position-update and admit latencies
    /// and signaling's memory (--pid).
    Lobby(LobbyArgs),
    /// A running load, then a relay is killed; measures every subscriber's media gap.
    /// Bench starts two local relays, places R rooms × (1 publisher + S subscribers) on
    /// relay A, kills it after --warmup (SIGKILL or --kill-command), re-places every
    /// participant as a fresh peer on relay B and reports kill → first packet via B.
    Failover(FailoverArgs),
}

/// `bench loopback` flags.
#[derive(Debug, Clone, Args)]
pub struct LoopbackArgs {
    /// Publishers.
    #[arg(long, default_value_t = 1)]
    pub publishers: u32,
    /// Subscribers per publisher (each its own peer connection; no relay).
    #[arg(long, default_value_t = 1)]
    pub subscribers: u32,
    /// Video bitrate of the full layer, kbit/s (0 = no video).
    #[arg(long, default_value_t = 1000)]
    pub video_kbps: u32,
    /// Video frames per second.
    #[arg(long, default_value_t = 30)]
    pub fps: u32,
    /// Send three simulcast layers (q, h, f at 1/4, 1/2, full bitrate).
    #[arg(long)]
    pub simulcast: bool,
    /// No audio track.
    #[arg(long)]
    pub no_audio: bool,
    /// Drop this percentage of RTP packets between each pair (via the shim).
    #[arg(long, default_value_t = 0.0)]
    pub loss_pct: f64,
    /// Add this one-way delay between each pair (via the shim), e.g. 40ms.
    #[arg(long, value_parser = parse_duration)]
    pub delay: Option<Duration>,
    /// Seed of the shim's loss RNG.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Peer loop threads.
    #[arg(long, default_value_t = 2)]
    pub threads: usize,
    /// New pairs per second while joining.
    #[arg(long, default_value_t = 200)]
    pub join_rate: u32,
    #[command(flatten)]
    pub common: Common,
}

impl LoopbackArgs {
    /// The scenario configuration these flags describe.
    pub fn config(&self) -> LoopbackConfig {
        let delay = self.delay.unwrap_or_default();
        let impaired = self.loss_pct > 0.0 || !delay.is_zero();
        LoopbackConfig {
            publishers: self.publishers,
            subscribers: self.subscribers,
            duration: self.common.duration,
            audio: (!self.no_audio).then(AudioShape::default),
            video: (self.video_kbps > 0).then(|| VideoShape {
                bitrate_bps: self.video_kbps.saturating_mul(1000),
                fps: self.fps.clamp(1, 120),
                simulcast: self.simulcast,
                ..VideoShape::default()
            }),
            impairment: impaired.then(|| ShimConfig {
                loss: self.loss_pct / 100.0,
                delay,
                seed: self.seed,
                ..ShimConfig::default()
            }),
            threads: self.threads,
            join_rate: self.join_rate,
            ..LoopbackConfig::default()
        }
    }
}

/// Parses `30s`, `2m`, `500ms`, `1h` or plain seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let v: f64 = num.parse().map_err(|_| format!("not a duration: {s:?}"))?;
    let secs = match unit {
        "" | "s" => v,
        "ms" => v / 1000.0,
        "m" => v * 60.0,
        "h" => v * 3600.0,
        _ => return Err(format!("unknown unit {unit:?} (use ms, s, m or h)")),
    };
    Duration::try_from_secs_f64(secs).map_err(|e| e.to_string())
}

#[allow(clippy::unnecessary_wraps)] // clap value parsers return Result.
fn parse_ci(s: &str) -> Result<bool, String> {
    Ok(!matches!(
        s.trim().to_ascii_lowercase().as_str(),
        "" | "0" | "false" | "no"
    ))
}

/// Runs the parsed command line; prints the report; returns the process exit code.
pub async fn run(cli: Cli) -> ExitCode {
    if cli.check_config {
        return match super::check::check(&cli) {
            Ok(()) => {
                println!("config ok");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("bench: config error: {e}");
                ExitCode::from(2)
            }
        };
    }
    match &cli.scenario {
        Scenario::Loopback(args) => run_loopback(args).await,
        Scenario::Fanout(a) => relay_cli::run(a.config(), &a.relay, &a.common).await,
        Scenario::Meeting(a) => relay_cli::run(a.config(false), &a.relay, &a.common).await,
        Scenario::Audio(a) => relay_cli::run(a.config(true), &a.relay, &a.common).await,
        Scenario::Lobby(a) => lobby_cli::run(a).await,
        Scenario::Failover(a) => failover_cli::run(a).await,
    }
}

async fn run_loopback(args: &LoopbackArgs) -> ExitCode {
    let show = progress::enabled(args.common.quiet, args.common.ci);
    let report = match loopback::run(&args.config(), show).await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("bench loopback: {e}");
            return ExitCode::from(2);
        }
    };
    if !write_outputs("loopback", &report, &args.common) {
        return ExitCode::from(2);
    }
    if report.peers.connected == 0 {
        eprintln!("bench loopback: no peer connected");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

/// Prints the table and writes `--json`/`--svg`; false if a file could not be written.
pub(super) fn write_outputs(name: &str, report: &Report, common: &Common) -> bool {
    println!("{}", report.table());
    for (path, body) in [
        (&common.json, report.to_json()),
        (&common.svg, report.svg()),
    ] {
        if let Some(path) = path
            && let Err(e) = std::fs::write(path, body)
        {
            eprintln!("bench {name}: writing {}: {e}", path.display());
            return false;
        }
    }
    true
}

#[cfg(test)]
#[path = "cli_tests.rs"]
mod tests;
