//! `bench lobby`: K waiting patients and C clinicians over the real signaling
//! WebSocket protocol (`protocol::client` types).
//!
//! 1. **Fill**: K patients connect, say hello, join the waiting room (answering its
//!    required intake questions) at `fill_rate` per second; join latency is connect →
//!    first `queue_status`. Signaling's RSS is read before and after (`--pid`).
//! 2. **Churn** for `duration`: new patients arrive at `arrival_rate`; C clinicians
//!    (logged in through `POST /api/login`) admit the oldest bench patient at
//!    `admit_rate` per second in all, and end each consultation after `call`.
//!    Measured: admit → patient `admitted`, admit → clinician `ok`, and admit → every
//!    waiting patient behind seeing its position drop (attributed to the latest admit
//!    sent; a warning says when waves overlapped).

mod client;
pub mod report;
mod users;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use protocol::RoomId;
use protocol::client::{ClientToSignaling, IntakeAnswers, Role, SignalingToClient};
use tokio::sync::watch;

pub use client::{Conn, login};
pub use report::{LobbyReport, SignalingUse};
use users::{ClinicianPlan, Shared};

use crate::clock::{cpu_time_of_pid, process_cpu_time};
use crate::relayctl::memory_of;
use crate::report::load_average;
use crate::{Error, Result};

/// Most patients one run may seat.
pub const MAX_PATIENTS: u32 = 60_000;

/// One lobby run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LobbyConfig {
    /// Signaling's WebSocket URLs (`ws://127.0.0.1:8080/ws`): one node, or several
    /// sharing Redis (users are spread over them round-robin).
    pub urls: Vec<String>,
    /// The waiting room.
    pub room: String,
    /// Patients seated by the fill.
    pub patients: u32,
    /// Patient connections per second during the fill.
    pub fill_rate: u32,
    /// Clinicians.
    pub clinicians: u32,
    /// New patients per second during the churn.
    pub arrival_rate: f64,
    /// Admits per second in all (split over the clinicians).
    pub admit_rate: f64,
    /// Consultation length.
    #[serde(rename = "call_ms", serialize_with = "crate::clock::serialize_ms")]
    pub call: Duration,
    /// Churn phase length.
    #[serde(rename = "duration_ms", serialize_with = "crate::clock::serialize_ms")]
    pub duration: Duration,
    /// Clinician username.
    pub username: Option<String>,
    /// Clinician password (never serialised).
    #[serde(skip)]
    pub password: Option<String>,
    /// Signaling's pids (memory and CPU, summed over the nodes).
    pub pids: Vec<u32>,
}

impl LobbyConfig {
    pub(crate) fn validate(&self) -> Result<SocketAddr> {
        if !(1..=MAX_PATIENTS).contains(&self.patients) || self.fill_rate == 0 {
            return Err(Error::Config(format!(
                "patients must be 1..={MAX_PATIENTS} and fill rate > 0"
            )));
        }
        if self.clinicians > 1000 || self.arrival_rate < 0.0 || self.admit_rate < 0.0 {
            return Err(Error::Config("clinicians ≤ 1000, rates ≥ 0".into()));
        }
        if self.duration > crate::scenario::loopback::MAX_DURATION {
            return Err(Error::Config("duration must be ≤ 1 h".into()));
        }
        if self.clinicians > 0 && (self.username.is_none() || self.password.is_none()) {
            return Err(Error::Config(
                "clinicians need --username and --password (BENCH_CLINICIAN_PASSWORD); \
                 `signaling --dev` prints the demo ones"
                    .into(),
            ));
        }
        for url in &self.urls {
            http_addr(url)?;
        }
        http_addr(
            self.urls
                .first()
                .ok_or_else(|| Error::Config("no signaling URL".into()))?,
        )
    }
}

/// The `host:port` of a `ws://` URL as a socket address (IP literal or `localhost`).
fn http_addr(url: &str) -> Result<SocketAddr> {
    let rest = url
        .strip_prefix("ws://")
        .ok_or_else(|| Error::Config(format!("{url}: only ws:// URLs are supported")))?;
    let hostport = rest.split('/').next().unwrap_or_default();
    let (host, port) = hostport
        .rsplit_once(':')
        .ok_or_else(|| Error::Config(format!("{url}: needs a port")))?;
    let port: u16 = port
        .parse()
        .map_err(|_| Error::Config(format!("{url}: bad port")))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let ip: IpAddr = if host.eq_ignore_ascii_case("localhost") {
        IpAddr::V4(Ipv4Addr::LOCALHOST)
    } else {
        host.parse()
            .map_err(|_| Error::Config(format!("{url}: host must be an IP address")))?
    };
    Ok(SocketAddr::new(ip, port))
}

/// The summed memory of `pids` (`None` if there are none or one is unreadable).
fn memory_of_all(pids: &[u32]) -> Option<crate::relayctl::Memory> {
    if pids.is_empty() {
        return None;
    }
    pids.iter().map(|p| memory_of(&p.to_string())).try_fold(
        crate::relayctl::Memory::default(),
        |sum, m| {
            let m = m?;
            Some(crate::relayctl::Memory {
                rss_kib: sum.rss_kib + m.rss_kib,
                peak_kib: sum.peak_kib + m.peak_kib,
            })
        },
    )
}

/// The summed CPU time of `pids` (`None` if there are none or one is unreadable).
fn cpu_of_all(pids: &[u32]) -> Option<Duration> {
    if pids.is_empty() {
        return None;
    }
    pids.iter()
        .map(|&p| cpu_time_of_pid(p))
        .try_fold(Duration::ZERO, |sum, d| Some(sum + d?))
}

/// Answers to the room's intake questions (read with `get_room`).
async fn intake_of(url: &str, room: &RoomId) -> Result<IntakeAnswers> {
    let mut conn = Conn::open(url, Role::Patient, None).await?;
    conn.send(&ClientToSignaling::GetRoom { room: room.clone() })
        .await?;
    let SignalingToClient::RoomInfo { intake, .. } = conn
        .expect(|m| matches!(m, SignalingToClient::RoomInfo { .. }))
        .await?
    else {
        return Ok(IntakeAnswers::new());
    };
    conn.close().await;
    Ok(intake
        .into_iter()
        .map(|q| (q.id, "bench load test".to_owned()))
        .collect())
}

/// Runs the scenario. `progress` prints a status line to stderr every few seconds.
pub async fn run(config: &LobbyConfig, progress: bool) -> Result<LobbyReport> {
    let addr = config.validate()?;
    let room =
        RoomId::new(config.room.clone()).map_err(|e| Error::Config(format!("room id: {e}")))?;
    let first = config.urls.first().cloned().unwrap_or_default();
    let intake = intake_of(&first, &room).await?;
    let session: Option<Arc<str>> = match (&config.username, &config.password) {
        (Some(u), Some(p)) if config.clinicians > 0 => Some(login(addr, u, p).await?.into()),
        _ => None,
    };
    let (stop_tx, stop) = watch::channel(false);
    let sh = Arc::new(Shared::new(config.urls.clone(), room, intake, stop));
    let cpu0 = process_cpu_time();
    let sig_cpu0 = cpu_of_all(&config.pids);
    let rss_before = memory_of_all(&config.pids);

    let start = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..config.patients {
        let at = start + Duration::from_secs_f64(f64::from(i) / f64::from(config.fill_rate));
        tokio::time::sleep_until(at.into()).await;
        tasks.push(tokio::spawn(users::patient(Arc::clone(&sh), u64::from(i))));
    }
    let fill_deadline = Instant::now() + Duration::from_secs(300);
    let mut last_shown = Instant::now();
    loop {
        let c = &sh.counters;
        let done = c.joined.load(Relaxed) + c.errors.load(Relaxed);
        if done >= u64::from(config.patients) || Instant::now() > fill_deadline {
            break;
        }
        if progress && last_shown.elapsed() >= Duration::from_secs(2) {
            last_shown = Instant::now();
            eprintln!(
                "  fill: {} seated, {} failed, {:.0} s",
                c.joined.load(Relaxed),
                c.errors.load(Relaxed),
                start.elapsed().as_secs_f64()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let fill_s = start.elapsed().as_secs_f64();
    let filled = sh.counters.joined.load(Relaxed);
    // Let signaling's outbound queues settle before reading its memory.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_full = memory_of_all(&config.pids);

    let churn_start = Instant::now();
    if let Some(session) = &session {
        let interval =
            Duration::from_secs_f64(f64::from(config.clinicians) / config.admit_rate.max(1e-3));
        for k in 0..config.clinicians {
            let first = churn_start + interval.mul_f64(f64::from(k) / f64::from(config.clinicians));
            let plan = ClinicianPlan {
                interval,
                first,
                call: config.call,
                index: u64::from(k),
            };
            tasks.push(tokio::spawn(users::clinician(
                Arc::clone(&sh),
                Arc::clone(session),
                plan,
            )));
        }
    }
    sh.admitting.store(true, Relaxed);
    let mut arrivals = 0u64;
    let mut max_waiting = sh.counters.waiting.load(Relaxed);
    let end = churn_start + config.duration;
    let mut next = if config.arrival_rate > 0.0 {
        churn_start
    } else {
        end
    };
    loop {
        // Wake at the next arrival, or every 250 ms to sample the queue length.
        let wake = next.min(Instant::now() + Duration::from_millis(250));
        if wake >= end {
            break;
        }
        tokio::time::sleep_until(wake.into()).await;
        max_waiting = max_waiting.max(sh.counters.waiting.load(Relaxed));
        if Instant::now() >= next {
            let i = u64::from(config.patients) + arrivals;
            tasks.push(tokio::spawn(users::patient(Arc::clone(&sh), i)));
            arrivals += 1;
            next = churn_start + Duration::from_secs_f64(arrivals as f64 / config.arrival_rate);
        }
    }
    tokio::time::sleep_until(end.into()).await;
    let churn_s = churn_start.elapsed().as_secs_f64();
    let rss_end = memory_of_all(&config.pids);
    let sig_cpu = match (sig_cpu0, cpu_of_all(&config.pids)) {
        (Some(a), Some(b)) => Some(b.saturating_sub(a)),
        _ => None,
    };
    let _ = stop_tx.send(true);
    for t in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(30), t).await;
    }
    let harness_cpu_s = match (cpu0, process_cpu_time()) {
        (Some(a), Some(b)) => b.saturating_sub(a).as_secs_f64(),
        _ => 0.0,
    };

    let c = &sh.counters;
    let h = sh.hists();
    let signaling = match (rss_before, rss_full, rss_end) {
        (Some(before), Some(full), Some(last)) => Some(SignalingUse {
            rss_before_kib: before.rss_kib,
            rss_full_kib: full.rss_kib,
            rss_end_kib: last.rss_kib,
            peak_kib: last.peak_kib,
            kib_per_waiting_patient: full.rss_kib.saturating_sub(before.rss_kib) as f64
                / filled.max(1) as f64,
            cpu_s: sig_cpu.map_or(0.0, |d| d.as_secs_f64()),
        }),
        _ => None,
    };
    let mut report = LobbyReport {
        parameters: serde_json::to_value(config).unwrap_or_default(),
        filled,
        fill_s,
        churn_s,
        arrivals,
        admitted: c.admitted.load(Relaxed),
        ended: c.ended.load(Relaxed),
        max_waiting,
        errors: c.errors.load(Relaxed),
        join: h.join.summary(),
        position_update: h.position.summary(),
        admit: h.admit.summary(),
        admit_ack: h.admit_ack.summary(),
        clinician_events: c.clinician_events.load(Relaxed),
        signaling,
        harness_cpu_s,
        harness_memory: memory_of("self"),
        load_average: load_average(),
        warnings: Vec::new(),
    };
    if filled < u64::from(config.patients) {
        report.warnings.push(format!(
            "only {filled} of {} patients were seated",
            config.patients
        ));
    }
    if config.admit_rate > 0.0 && report.position_update.max_ms > 1000.0 / config.admit_rate {
        report.warnings.push(
            "position updates took longer than the time between admits: waves overlapped, \
             so each update is timed from the latest admit (an underestimate)"
                .into(),
        );
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_address_of_a_websocket_url() {
        assert_eq!(
            http_addr("ws://127.0.0.1:8080/ws").unwrap(),
            "127.0.0.1:8080".parse().unwrap()
        );
        assert_eq!(
            http_addr("ws://localhost:9/ws").unwrap(),
            "127.0.0.1:9".parse().unwrap()
        );
        assert!(http_addr("wss://127.0.0.1:8080/ws").is_err());
        assert!(http_addr("ws://example.com:80/ws").is_err());
    }
}
