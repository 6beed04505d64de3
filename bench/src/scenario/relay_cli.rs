//! Flags of the relay scenarios (`fanout`, `meeting`, `audio`) and how they become an
//! [`SfuConfig`].

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use std::time::Duration;

use super::cli::{Common, parse_duration};
use super::ramp::RampConfig;
use super::sfu::{self, RelaySetup, SfuConfig};
use super::whip_target::{self, WhipArgs, WhipRun};
use crate::media::{AudioShape, VideoShape};
use crate::relayctl::default_relay_binary;
use crate::report::progress;
use crate::shim::ShimConfig;
use crate::stats::FreezeThresholds;
use crate::target::{check_addr, check_target};

/// What each publisher sends.
#[derive(Debug, Clone, Args)]
pub struct MediaArgs {
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
}

impl MediaArgs {
    fn shapes(&self) -> (Option<AudioShape>, Option<VideoShape>) {
        (
            (!self.no_audio).then(AudioShape::default),
            (self.video_kbps > 0).then(|| VideoShape {
                bitrate_bps: self.video_kbps.saturating_mul(1000),
                fps: self.fps.clamp(1, 120),
                simulcast: self.simulcast,
                ..VideoShape::default()
            }),
        )
    }
}

/// Which relay is loaded and how bench runs its peers.
#[derive(Debug, Clone, Args)]
pub struct RelayArgs {
    /// The relay binary bench starts (default: `relay` next to the bench binary).
    #[arg(long)]
    pub relay_bin: Option<PathBuf>,
    /// Worker threads of the relay bench starts (default: one per core).
    #[arg(long)]
    pub relay_workers: Option<usize>,
    /// Write the started relay's log (stderr) here; level from BENCH_RELAY_LOG.
    #[arg(long)]
    pub relay_log: Option<PathBuf>,
    /// Do not start a relay: listen for one on this address (start it with
    /// `--signaling ws://ADDR/control` and the same secret).
    #[arg(long)]
    pub relay_control: Option<SocketAddr>,
    /// With --relay-control or a whip:// --target: the relay's pid (CPU and memory
    /// from /proc).
    #[arg(long)]
    pub relay_pid: Option<u32>,
    /// With --relay-control: the relay's metrics listener (forwarded packets).
    #[arg(long, requires = "relay_control")]
    pub relay_metrics: Option<SocketAddr>,
    /// Secret shared with the relay (≥ 16 bytes).
    #[arg(
        long,
        env = "ANTEROOM_RELAY_SECRET",
        hide_env_values = true,
        default_value = "bench-relay-secret-0123456789"
    )]
    pub relay_secret: String,
    /// Allow a non-loopback --relay-control address.
    #[arg(long)]
    pub allow_remote: bool,
    /// Peer loop threads.
    #[arg(long, default_value_t = 2)]
    pub threads: usize,
    /// New peers per second while joining.
    #[arg(long, default_value_t = 200)]
    pub join_rate: u32,
    /// `fanout` only: load a WHIP/WHEP server instead of a relay bench starts, e.g.
    /// whip://127.0.0.1:8080/whip/<call> (signaling-placed ws:// calls: not yet).
    #[arg(long)]
    pub target: Option<String>,
    #[command(flatten)]
    pub whip: WhipArgs,
}

impl RelayArgs {
    fn setup(&self) -> RelaySetup {
        match self.relay_control {
            Some(control) => RelaySetup::Attach {
                control,
                metrics: self.relay_metrics,
                pid: self.relay_pid,
            },
            None => RelaySetup::Spawn {
                binary: self.relay_bin.clone().unwrap_or_else(default_relay_binary),
                workers: self.relay_workers,
                log: self.relay_log.clone(),
            },
        }
    }

    /// A config for `scenario` with these relay flags (callers fill the room shape).
    pub fn config(&self, scenario: &'static str, media: &MediaArgs, common: &Common) -> SfuConfig {
        let (audio, video) = media.shapes();
        SfuConfig {
            scenario,
            rooms: 1,
            publishers: 1,
            subscribers: 0,
            publishers_subscribe: false,
            duration: common.duration,
            audio,
            video,
            threads: self.threads,
            join_rate: self.join_rate,
            freeze: FreezeThresholds::default(),
            relay: self.setup(),
            secret: self.relay_secret.clone(),
            allow_remote: self.allow_remote,
            impairment: None,
            ramp: None,
        }
    }
}

/// `bench fanout` flags.
#[derive(Debug, Clone, Args)]
pub struct FanoutArgs {
    /// Rooms.
    #[arg(long, default_value_t = 1)]
    pub rooms: u32,
    /// Subscribers per room (with --ramp: the most that join).
    #[arg(long, default_value_t = 50)]
    pub subscribers: u32,
    /// Add subscribers through the run until loss > 1 % or p99 latency > this many ms
    /// (two seconds in a row); report the capacity found.
    #[arg(long)]
    pub ramp: Option<u32>,
    /// With --ramp: subscribers joined per second.
    #[arg(long, default_value_t = 10.0)]
    pub ramp_rate: f64,
    /// With --ramp: the first seconds of media are not judged (bandwidth ramp-up).
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub ramp_warmup: Duration,
    /// Drop this percentage of each publisher's RTP on its way to the relay (a shim).
    #[arg(long, default_value_t = 0.0)]
    pub loss_pct: f64,
    /// Delay each publisher's packets on their way to the relay by this much, e.g. 40ms.
    #[arg(long, value_parser = parse_duration)]
    pub delay: Option<Duration>,
    #[command(flatten)]
    pub media: MediaArgs,
    #[command(flatten)]
    pub relay: RelayArgs,
    #[command(flatten)]
    pub common: Common,
}

impl FanoutArgs {
    /// The run these flags describe.
    pub fn config(&self) -> SfuConfig {
        let delay = self.delay.unwrap_or_default();
        SfuConfig {
            impairment: (self.loss_pct > 0.0 || !delay.is_zero()).then(|| ShimConfig {
                loss: self.loss_pct / 100.0,
                delay,
                ..ShimConfig::default()
            }),
            rooms: self.rooms,
            subscribers: self.subscribers,
            ramp: self.ramp.map(|ms| RampConfig {
                rate: self.ramp_rate.clamp(0.1, 1000.0),
                p99_bound_ms: f64::from(ms),
                warmup_s: self.ramp_warmup.as_secs(),
            }),
            ..self.relay.config("fanout", &self.media, &self.common)
        }
    }
}

/// `bench meeting` / `bench audio` flags.
#[derive(Debug, Clone, Args)]
pub struct MeetingArgs {
    /// Rooms.
    #[arg(long, default_value_t = 1)]
    pub rooms: u32,
    /// Participants per room, each publishing and receiving every other one.
    #[arg(long, default_value_t = 4)]
    pub participants: u32,
    #[command(flatten)]
    pub media: MediaArgs,
    #[command(flatten)]
    pub relay: RelayArgs,
    #[command(flatten)]
    pub common: Common,
}

impl MeetingArgs {
    /// The run these flags describe; `audio_only` for `bench audio`.
    pub fn config(&self, audio_only: bool) -> SfuConfig {
        let name = if audio_only { "audio" } else { "meeting" };
        let mut c = SfuConfig {
            rooms: self.rooms,
            publishers: self.participants,
            publishers_subscribe: true,
            ..self.relay.config(name, &self.media, &self.common)
        };
        if audio_only {
            c.video = None;
            c.audio = Some(AudioShape::default());
        }
        c
    }
}

/// Runs a relay scenario and prints its report; returns the exit code.
pub async fn run(config: SfuConfig, relay: &RelayArgs, common: &Common) -> ExitCode {
    let name = config.scenario;
    if let Some(target) = &relay.target {
        if let Err(e) = check_target(target, relay.allow_remote) {
            eprintln!("bench {name}: {e}");
            return ExitCode::from(2);
        }
        if whip_target::is_whip_target(target) && name == "fanout" {
            let run = WhipRun {
                config,
                target: target.clone(),
                whip: relay.whip.clone(),
                allow_remote: relay.allow_remote,
                relay_pid: relay.relay_pid,
            };
            let show = progress::enabled(common.quiet, common.ci);
            return finish(name, whip_target::run(&run, show).await, common);
        }
        eprintln!(
            "bench {name}: this --target is not available yet (only `fanout --target whip://…`; \
             signaling-placed calls are not); without --target bench loads a relay directly. No load was generated."
        );
        return ExitCode::from(3);
    }
    let addrs = [relay.relay_control, relay.relay_metrics];
    if let Some(Err(e)) = addrs
        .into_iter()
        .flatten()
        .map(|a| check_addr(a, relay.allow_remote))
        .find(Result::is_err)
    {
        eprintln!("bench {name}: {e}");
        return ExitCode::from(2);
    }
    let show = progress::enabled(common.quiet, common.ci);
    finish(name, sfu::run(&config, show).await, common)
}

/// Writes a finished run's report; returns the exit code.
fn finish(name: &str, report: crate::Result<crate::report::Report>, common: &Common) -> ExitCode {
    let report = match report {
        Ok(r) => r,
        Err(e) => {
            eprintln!("bench {name}: {e}");
            return ExitCode::from(2);
        }
    };
    if !super::cli::write_outputs(name, &report, common) {
        return ExitCode::from(2);
    }
    if report.peers.connected == 0 {
        eprintln!("bench {name}: no peer connected");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
