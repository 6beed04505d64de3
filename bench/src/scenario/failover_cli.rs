//! Flags of `bench failover` and how they become a [`FailoverConfig`]; prints the report
//! with its failover section.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;

use super::cli::{Common, parse_duration};
use super::failover::{self, FailoverConfig};
use crate::media::{AudioShape, VideoShape};
use crate::relayctl::default_relay_binary;

/// `bench failover` flags.
#[derive(Debug, Clone, Args)]
pub struct FailoverArgs {
    /// Rooms (each 1 publisher + S subscribers), all placed on relay A first.
    #[arg(long, default_value_t = 1)]
    pub rooms: u32,
    /// Subscribers per room.
    #[arg(long, default_value_t = 10)]
    pub subscribers: u32,
    /// Media time on relay A before it is killed (--duration is the whole run).
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub warmup: Duration,
    /// Run this shell command (`sh -c`) instead of sending relay A SIGKILL; it gets
    /// BENCH_RELAY_PID and BENCH_RELAY_NODE. Bench then waits until relay A's control
    /// connection drops before re-placing the rooms on relay B.
    #[arg(long, alias = "kill-cmd")]
    pub kill_command: Option<String>,
    /// Video bitrate, kbit/s (0 = no video).
    #[arg(long, default_value_t = 500)]
    pub video_kbps: u32,
    /// Video frames per second.
    #[arg(long, default_value_t = 30)]
    pub fps: u32,
    /// No audio track.
    #[arg(long)]
    pub no_audio: bool,
    /// The relay binary bench starts twice (default: `relay` next to the bench binary).
    #[arg(long)]
    pub relay_bin: Option<PathBuf>,
    /// Worker threads of each relay (default: one per core).
    #[arg(long)]
    pub relay_workers: Option<usize>,
    /// Write the relays' logs to DIR/relay-a.log and DIR/relay-b.log.
    #[arg(long)]
    pub relay_log_dir: Option<PathBuf>,
    /// Secret shared with the relays (≥ 16 bytes).
    #[arg(
        long,
        env = "ANTEROOM_RELAY_SECRET",
        hide_env_values = true,
        default_value = "bench-relay-secret-0123456789"
    )]
    pub relay_secret: String,
    /// Peer loop threads per relay.
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// New peers per second (first placement and re-placement).
    #[arg(long, default_value_t = 200)]
    pub join_rate: u32,
    #[command(flatten)]
    pub common: Common,
}

impl FailoverArgs {
    /// The run these flags describe.
    pub fn config(&self) -> FailoverConfig {
        FailoverConfig {
            rooms: self.rooms,
            subscribers: self.subscribers,
            warmup: self.warmup,
            after: self.common.duration.saturating_sub(self.warmup),
            audio: (!self.no_audio).then(AudioShape::default),
            video: (self.video_kbps > 0).then(|| VideoShape {
                bitrate_bps: self.video_kbps.saturating_mul(1000),
                fps: self.fps.clamp(1, 120),
                ..VideoShape::default()
            }),
            threads: self.threads,
            join_rate: self.join_rate,
            binary: self.relay_bin.clone().unwrap_or_else(default_relay_binary),
            workers: self.relay_workers,
            log_dir: self.relay_log_dir.clone(),
            kill_command: self.kill_command.clone(),
            secret: self.relay_secret.clone(),
        }
    }
}

/// Runs `bench failover`; returns the exit code (1 if a subscriber did not recover).
pub async fn run(args: &FailoverArgs) -> ExitCode {
    let (report, outcome) = match failover::run(&args.config()).await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("bench failover: {e}");
            return ExitCode::from(2);
        }
    };
    println!("{}\n{}", report.table(), outcome.table());
    let mut json = serde_json::to_value(&report).unwrap_or_default();
    if let Some(obj) = json.as_object_mut() {
        obj.insert(
            "failover".into(),
            serde_json::to_value(&outcome).unwrap_or_default(),
        );
    }
    let common = &args.common;
    for (path, body) in [
        (
            &common.json,
            serde_json::to_string_pretty(&json).unwrap_or_default(),
        ),
        (&common.svg, report.svg()),
    ] {
        if let Some(path) = path
            && let Err(e) = std::fs::write(path, body)
        {
            eprintln!("bench failover: writing {}: {e}", path.display());
            return ExitCode::from(2);
        }
    }
    if outcome.affected == 0 || outcome.recovered < outcome.affected {
        eprintln!(
            "bench failover: {} of {} affected subscribers recovered",
            outcome.recovered, outcome.affected
        );
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
