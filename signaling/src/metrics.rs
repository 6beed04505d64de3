//! Prometheus metrics of the signaling process, served at `GET /metrics`
//! in the text exposition format (version 0.0.4).
//!
//! Counters and the wait histogram live in one process-wide [`Metrics`]
//! ([`global`]) so that the lobby, the audit trail and the relay pool can
//! count with a one-line hook and no plumbing; Prometheus scrapes one
//! process at a time anyway. Gauges are read at scrape time: connections and
//! waiting patients per room from the lobby task, relays by state from the
//! [`RelayPool`] snapshot.
//!
//! Only ids and counts: rooms appear by id, never a patient's name, intake
//! answer or participant id; login failures by reason, never a username.
//!
//! Access: with `--metrics-token` the request must carry
//! `Authorization: Bearer <token>`; without it only loopback clients are
//! answered (a reverse proxy on the same host must then not forward
//! `/metrics`, or set a token).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use axum::extract::{ConnectInfo, State};
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Router};
use protocol::{RoomId, Sensitive};
use subtle::ConstantTimeEq as _;

use crate::audit::{AuditAction, AuditEvent};
use crate::relays::{PlacementError, RelayPool};
use crate::ws::Shared;

/// Upper bounds (seconds) of the wait-time histogram's buckets.
pub const WAIT_BUCKETS: [f64; 10] = [
    5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 1800.0, 3600.0,
];

/// Login failure reasons counted separately; anything else is `other`.
const FAILURE_REASONS: [&str; 7] = [
    "bad_password",
    "bad_totp",
    "totp_replayed",
    "unknown_username",
    "account_disabled",
    "oversized_input",
    "throttled",
];

/// Flags of the metrics endpoint.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct MetricsArgs {
    /// Bearer token `/metrics` requires. Without it, `/metrics` answers only
    /// loopback clients. Prefer the environment variable.
    #[arg(long, env = "ANTEROOM_METRICS_TOKEN", hide_env_values = true, value_parser = parse_token)]
    pub metrics_token: Option<Sensitive<String>>,
}

#[allow(clippy::unnecessary_wraps)] // clap's value_parser signature
fn parse_token(s: &str) -> Result<Sensitive<String>, String> {
    Ok(Sensitive::new(s.to_owned()))
}

/// The process's counters. See the module documentation.
#[derive(Debug, Default)]
pub struct Metrics {
    logins: AtomicU64,
    login_failures: [AtomicU64; FAILURE_REASONS.len() + 1],
    admits: AtomicU64,
    audit: Mutex<BTreeMap<String, u64>>,
    placement_failures: AtomicU64,
    wait_buckets: [AtomicU64; WAIT_BUCKETS.len()],
    wait_count: AtomicU64,
    wait_sum_ms: AtomicU64,
    waiting: Mutex<BTreeMap<String, usize>>,
}

/// The process-wide metrics.
pub fn global() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(Metrics::default)
}

/// [`PlacementError::NoRelay`], counted as a placement failure.
pub fn no_relay() -> PlacementError {
    global().placement_failures.fetch_add(1, Ordering::Relaxed);
    PlacementError::NoRelay
}

impl Metrics {
    /// Counts an audit event (logins, failures by reason, admits, and every
    /// action by name). Called by [`crate::audit::Audit::record`].
    pub fn audit(&self, event: &AuditEvent) {
        match event.action {
            AuditAction::Login => {
                self.logins.fetch_add(1, Ordering::Relaxed);
            }
            AuditAction::LoginFailed | AuditAction::LoginThrottled => {
                let reason = if event.action == AuditAction::LoginThrottled {
                    "throttled"
                } else {
                    event.detail.as_deref().unwrap_or("")
                };
                let i = FAILURE_REASONS
                    .iter()
                    .position(|r| *r == reason)
                    .unwrap_or(FAILURE_REASONS.len());
                if let Some(c) = self.login_failures.get(i) {
                    c.fetch_add(1, Ordering::Relaxed);
                }
            }
            AuditAction::Admit => {
                self.admits.fetch_add(1, Ordering::Relaxed);
            }
            _ => {}
        }
        let name = serde_json::to_value(event.action)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        *lock(&self.audit).entry(name).or_default() += 1;
    }

    /// Records how long an admitted patient waited in the queue.
    pub fn observe_wait(&self, waited: Duration) {
        let secs = waited.as_secs_f64();
        for (bound, count) in WAIT_BUCKETS.iter().zip(&self.wait_buckets) {
            if secs <= *bound {
                count.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.wait_count.fetch_add(1, Ordering::Relaxed);
        let ms = u64::try_from(waited.as_millis()).unwrap_or(u64::MAX);
        self.wait_sum_ms.fetch_add(ms, Ordering::Relaxed);
    }

    /// Replaces the waiting-patients-per-room gauge (the lobby calls this
    /// when asked for its stats).
    pub fn set_waiting<'a>(&self, rooms: impl IntoIterator<Item = (&'a RoomId, usize)>) {
        let map = rooms
            .into_iter()
            .map(|(r, n)| (r.as_str().to_owned(), n))
            .collect();
        *lock(&self.waiting) = map;
    }

    /// The exposition text, with the gauges read at scrape time.
    pub fn render(&self, scrape: &Scrape) -> String {
        let mut out = String::with_capacity(4096);
        let c = |a: &AtomicU64| a.load(Ordering::Relaxed);
        gauge(
            &mut out,
            "anteroom_ws_connections",
            "WebSocket connections that completed hello.",
            scrape.connections,
        );
        gauge(
            &mut out,
            "anteroom_seats",
            "Patient seats: waiting, in consultation or in their resume grace period.",
            scrape.seats,
        );
        head(
            &mut out,
            "anteroom_waiting_patients",
            "gauge",
            "Patients waiting, per waiting room (ids only).",
        );
        for (room, n) in lock(&self.waiting).iter() {
            let _ = writeln!(
                out,
                "anteroom_waiting_patients{{room=\"{}\"}} {n}",
                escape(room)
            );
        }
        head(
            &mut out,
            "anteroom_wait_seconds",
            "histogram",
            "Time admitted patients spent in the queue.",
        );
        for (bound, count) in WAIT_BUCKETS.iter().zip(&self.wait_buckets) {
            let _ = writeln!(
                out,
                "anteroom_wait_seconds_bucket{{le=\"{bound}\"}} {}",
                c(count)
            );
        }
        let total = c(&self.wait_count);
        let _ = writeln!(out, "anteroom_wait_seconds_bucket{{le=\"+Inf\"}} {total}");
        let sum = c(&self.wait_sum_ms) as f64 / 1000.0;
        let _ = writeln!(
            out,
            "anteroom_wait_seconds_sum {sum}\nanteroom_wait_seconds_count {total}"
        );
        counter(
            &mut out,
            "anteroom_admits_total",
            "Patients admitted.",
            c(&self.admits),
        );
        counter(
            &mut out,
            "anteroom_logins_total",
            "Successful clinician logins.",
            c(&self.logins),
        );
        head(
            &mut out,
            "anteroom_login_failures_total",
            "counter",
            "Failed or throttled logins, by reason.",
        );
        let reasons = FAILURE_REASONS.iter().chain(&["other"]);
        for (reason, count) in reasons.zip(&self.login_failures) {
            let _ = writeln!(
                out,
                "anteroom_login_failures_total{{reason=\"{reason}\"}} {}",
                c(count)
            );
        }
        head(
            &mut out,
            "anteroom_audit_events_total",
            "counter",
            "Audit trail events, by action.",
        );
        for (action, n) in lock(&self.audit).iter() {
            let _ = writeln!(
                out,
                "anteroom_audit_events_total{{action=\"{}\"}} {n}",
                escape(action)
            );
        }
        head(
            &mut out,
            "anteroom_relays",
            "gauge",
            "Relays known to this node, by state.",
        );
        for (state, n) in &scrape.relays {
            let _ = writeln!(out, "anteroom_relays{{state=\"{state}\"}} {n}");
        }
        gauge(
            &mut out,
            "anteroom_relay_calls",
            "Calls placed on relays.",
            scrape.calls,
        );
        counter(
            &mut out,
            "anteroom_placement_failures_total",
            "Calls that found no relay to go to.",
            c(&self.placement_failures),
        );
        out
    }
}

/// What a scrape reads from the live services.
#[derive(Debug, Clone, Default)]
pub struct Scrape {
    /// WebSocket connections that said hello.
    pub connections: usize,
    /// Patient seats.
    pub seats: usize,
    /// Relays per state: `ready`, `draining`, `stale`.
    pub relays: [(&'static str, usize); 3],
    /// Calls placed on relays.
    pub calls: usize,
}

impl Scrape {
    /// Reads the lobby (which also refreshes the per-room gauge) and the pool.
    pub async fn read(shared: &Shared, pool: &RelayPool) -> Self {
        let stats = shared.lobby.stats().await.unwrap_or_default();
        let mut relays = [("ready", 0), ("draining", 0), ("stale", 0)];
        let mut calls = 0;
        for r in pool.snapshot() {
            let i = match (r.fresh, r.draining) {
                (false, _) => 2,
                (true, true) => 1,
                (true, false) => 0,
            };
            relays[i].1 += 1;
            calls += r.calls;
        }
        Self {
            connections: stats.connections,
            seats: stats.seats,
            relays,
            calls,
        }
    }
}

#[derive(Clone)]
struct MetricsState {
    shared: Arc<Shared>,
    pool: Arc<RelayPool>,
    token: Option<Sensitive<String>>,
}

/// `GET /metrics`, ready to merge. Serve it with
/// `into_make_service_with_connect_info::<SocketAddr>()`.
pub fn router(shared: Arc<Shared>, pool: Arc<RelayPool>, args: &MetricsArgs) -> Router {
    let state = MetricsState {
        shared,
        pool,
        token: args.metrics_token.clone(),
    };
    Router::new()
        .route("/metrics", get(scrape))
        .with_state(state)
}

async fn scrape(
    State(st): State<MetricsState>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
) -> Response {
    let allowed = match &st.token {
        Some(token) => bearer(&headers)
            .is_some_and(|given| bool::from(given.as_bytes().ct_eq(token.expose().as_bytes()))),
        None => peer.is_some_and(|Extension(ConnectInfo(a))| a.ip().is_loopback()),
    };
    if !allowed {
        return (StatusCode::FORBIDDEN, "forbidden\n").into_response();
    }
    let scrape = Scrape::read(&st.shared, &st.pool).await;
    (
        [(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        global().render(&scrape),
    )
        .into_response()
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get(AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, token) = v.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn head(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

fn gauge(out: &mut String, name: &str, help: &str, value: usize) {
    head(out, name, "gauge", help);
    let _ = writeln!(out, "{name} {value}");
}

fn counter(out: &mut String, name: &str, help: &str, value: u64) {
    head(out, name, "counter", help);
    let _ = writeln!(out, "{name} {value}");
}

/// Escapes a label value (`\`, `"`, newline).
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wait_histogram_is_cumulative() {
        let m = Metrics::default();
        m.observe_wait(Duration::from_secs(3));
        m.observe_wait(Duration::from_secs(100));
        let text = m.render(&Scrape::default());
        assert!(
            text.contains("anteroom_wait_seconds_bucket{le=\"5\"} 1\n"),
            "{text}"
        );
        assert!(text.contains("anteroom_wait_seconds_bucket{le=\"60\"} 1\n"));
        assert!(text.contains("anteroom_wait_seconds_bucket{le=\"120\"} 2\n"));
        assert!(text.contains("anteroom_wait_seconds_bucket{le=\"+Inf\"} 2\n"));
        assert!(text.contains("anteroom_wait_seconds_sum 103\n"));
        assert!(text.contains("anteroom_wait_seconds_count 2\n"));
    }

    #[test]
    fn login_failures_by_known_reason_only() {
        let m = Metrics::default();
        m.audit(&AuditEvent::new(AuditAction::LoginFailed).detail("bad_password"));
        m.audit(&AuditEvent::new(AuditAction::LoginFailed).detail("someone's password"));
        m.audit(&AuditEvent::new(AuditAction::LoginThrottled));
        m.audit(&AuditEvent::new(AuditAction::Login));
        let text = m.render(&Scrape::default());
        assert!(text.contains("anteroom_login_failures_total{reason=\"bad_password\"} 1\n"));
        assert!(text.contains("anteroom_login_failures_total{reason=\"throttled\"} 1\n"));
        assert!(text.contains("anteroom_login_failures_total{reason=\"other\"} 1\n"));
        assert!(text.contains("anteroom_logins_total 1\n"));
        assert!(!text.contains("someone"), "{text}");
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
