//! Flags of `bench lobby` and how they run.

use std::process::ExitCode;
use std::time::Duration;

use clap::Args;

use super::cli::{Common, Remote, parse_duration};
use crate::lobby::{self, LobbyConfig};
use crate::target::check_target;

/// `bench lobby` flags.
#[derive(Debug, Clone, Args)]
pub struct LobbyArgs {
    /// Patients seated (and kept waiting) by the fill.
    #[arg(long, default_value_t = 5000)]
    pub patients: u32,
    /// Patient connections per second during the fill.
    #[arg(long, default_value_t = 500)]
    pub fill_rate: u32,
    /// Clinicians admitting during the churn (0: no admits).
    #[arg(long, default_value_t = 10)]
    pub clinicians: u32,
    /// New patient arrivals per second during the churn.
    #[arg(long, default_value_t = 5.0)]
    pub arrival_rate: f64,
    /// Admits per second, over all clinicians.
    #[arg(long, default_value_t = 5.0)]
    pub admit_rate: f64,
    /// How long a consultation lasts before the clinician ends it.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub call: Duration,
    /// The waiting room (the `--dev` demo room by default).
    #[arg(long, default_value = "demo-room")]
    pub room: String,
    /// Clinician username (the `--dev` demo clinician by default).
    #[arg(long, env = "BENCH_CLINICIAN_USER", default_value = "demo-clinician")]
    pub username: String,
    /// Clinician password (`signaling --dev` prints the demo one).
    #[arg(long, env = "BENCH_CLINICIAN_PASSWORD", hide_env_values = true)]
    pub password: Option<String>,
    /// Signaling's pid (or several, comma-separated, one per node): memory and CPU are
    /// read from /proc and summed.
    #[arg(long, value_delimiter = ',')]
    pub pid: Vec<u32>,
    /// Several signaling nodes' client WebSocket URLs, comma-separated: patient i
    /// connects to URL i mod n, clinician k to URL k mod n (all log in through the
    /// first). Default: `--target` alone.
    #[arg(long, value_delimiter = ',', value_name = "URLS")]
    pub signaling: Vec<String>,
    #[command(flatten)]
    pub remote: Remote,
    #[command(flatten)]
    pub common: Common,
}

impl LobbyArgs {
    /// The run these flags describe (`--duration` is the churn phase).
    pub fn config(&self) -> LobbyConfig {
        LobbyConfig {
            urls: self.urls(),
            room: self.room.clone(),
            patients: self.patients,
            fill_rate: self.fill_rate,
            clinicians: self.clinicians,
            arrival_rate: self.arrival_rate,
            admit_rate: self.admit_rate,
            call: self.call,
            duration: self.common.duration,
            username: Some(self.username.clone()),
            password: self.password.clone(),
            pids: self.pid.clone(),
        }
    }

    /// `--signaling`, or `--target` alone.
    pub fn urls(&self) -> Vec<String> {
        if self.signaling.is_empty() {
            vec![self.remote.target.clone()]
        } else {
            self.signaling.clone()
        }
    }
}

/// Runs `bench lobby`; prints the table, writes `--json`.
pub async fn run(args: &LobbyArgs) -> ExitCode {
    for url in args.urls() {
        if let Err(e) = check_target(&url, args.remote.allow_remote) {
            eprintln!("bench lobby: {e}");
            return ExitCode::from(2);
        }
    }
    if args.common.svg.is_some() {
        eprintln!("bench lobby: --svg is not supported by this scenario (JSON and table only)");
        return ExitCode::from(2);
    }
    let show = crate::report::progress::enabled(args.common.quiet, args.common.ci);
    let report = match lobby::run(&args.config(), show).await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("bench lobby: {e}");
            return ExitCode::from(2);
        }
    };
    println!("{}", report.table());
    if let Some(path) = &args.common.json
        && let Err(e) = std::fs::write(path, report.to_json())
    {
        eprintln!("bench lobby: writing {}: {e}", path.display());
        return ExitCode::from(2);
    }
    if report.filled == 0 {
        eprintln!("bench lobby: no patient was seated");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
