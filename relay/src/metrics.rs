//! The relay's HTTP side listener: Prometheus `/metrics` (text exposition
//! format, written by hand), `/healthz` (the workers run) and `/readyz`
//! (registered with signaling and not draining).

use std::fmt::Write as _;
use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::net::TcpListener;

use crate::driver::LOOP_BUCKETS_US;
use crate::node::Node;
use crate::sfu::{DropReason, SfuStats};

/// A metric name, its help text and how to read it from the core's counters.
type Field = (&'static str, &'static str, fn(&SfuStats) -> u64);

/// Serves the metrics endpoints on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    node: Arc<Node>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(node)
        .layer(axum::middleware::from_fn(request_span));
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}

/// Runs a request in an `http` span (`method`, `route`, then `status` and
/// `latency_ms`) and logs one DEBUG line `request` when it is answered, as
/// signaling does. `route` is one of the fixed routes or `(unmatched)`.
#[allow(clippy::disallowed_methods)] // I/O side: a request's latency is wall time.
async fn request_span(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    use tracing::Instrument as _;
    let path = req.uri().path();
    let route = ["/metrics", "/healthz", "/readyz"]
        .into_iter()
        .find(|r| *r == path)
        .unwrap_or("(unmatched)");
    let span = tracing::info_span!(
        "http",
        method = %req.method(),
        route,
        status = tracing::field::Empty,
        latency_ms = tracing::field::Empty,
    );
    async move {
        let started = std::time::Instant::now();
        let response = next.run(req).await;
        let span = tracing::Span::current();
        span.record("status", response.status().as_u16());
        let latency = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        span.record("latency_ms", latency);
        tracing::debug!("request");
        response
    }
    .instrument(span)
    .await
}

async fn metrics(State(node): State<Arc<Node>>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        render(&node),
    )
}

async fn healthz(State(node): State<Arc<Node>>) -> impl IntoResponse {
    if node.workers().all_running() {
        (StatusCode::OK, "ok\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "a worker stopped\n")
    }
}

async fn readyz(State(node): State<Arc<Node>>) -> impl IntoResponse {
    if node.is_ready() {
        (StatusCode::OK, "ready\n")
    } else if node.is_draining() {
        (StatusCode::SERVICE_UNAVAILABLE, "draining\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not registered\n")
    }
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// The Prometheus text exposition of the relay's metrics, per worker.
pub fn render(node: &Node) -> String {
    let mut out = String::with_capacity(8 * 1024);
    let workers: Vec<_> = node.workers().stats().collect();
    let snapshots: Vec<_> = workers.iter().map(|w| w.snapshot().sfu).collect();

    header(
        &mut out,
        "anteroom_relay_draining",
        "gauge",
        "1 while the relay drains (takes no new rooms).",
    );
    let _ = writeln!(
        out,
        "anteroom_relay_draining {}",
        u8::from(node.is_draining())
    );
    header(
        &mut out,
        "anteroom_relay_ready",
        "gauge",
        "1 when registered with signaling, running and not draining.",
    );
    let _ = writeln!(out, "anteroom_relay_ready {}", u8::from(node.is_ready()));
    header(
        &mut out,
        "anteroom_relay_capacity",
        "gauge",
        "Participants the relay accepts in all.",
    );
    let _ = writeln!(
        out,
        "anteroom_relay_capacity {}",
        node.config().config.capacity
    );

    let gauges: [Field; 3] = [
        ("anteroom_relay_rooms", "Rooms carried.", |s| s.rooms),
        (
            "anteroom_relay_participants",
            "Participants connected.",
            |s| s.participants,
        ),
        ("anteroom_relay_tracks", "Published media tracks.", |s| {
            s.tracks
        }),
    ];
    for (name, help, get) in gauges {
        header(&mut out, name, "gauge", help);
        for (i, s) in snapshots.iter().enumerate() {
            let _ = writeln!(out, "{name}{{worker=\"{i}\"}} {}", get(s));
        }
    }

    let counters: [Field; 5] = [
        (
            "anteroom_relay_rtp_forwarded_total",
            "RTP packets written to subscribers.",
            |s| s.rtp_forwarded,
        ),
        (
            "anteroom_relay_nacks_total",
            "NACKs received from subscribers.",
            |s| s.nacks,
        ),
        (
            "anteroom_relay_keyframe_requests_total",
            "Keyframe requests (PLI/FIR) sent to publishers.",
            |s| s.keyframe_requests,
        ),
        (
            "anteroom_relay_data_messages_total",
            "Data channel messages relayed.",
            |s| s.messages,
        ),
        (
            "anteroom_relay_packets_in_total",
            "Datagrams received.",
            |s| s.packets_in,
        ),
    ];
    for (name, help, get) in counters {
        header(&mut out, name, "counter", help);
        for (i, s) in snapshots.iter().enumerate() {
            let _ = writeln!(out, "{name}{{worker=\"{i}\"}} {}", get(s));
        }
    }
    header(
        &mut out,
        "anteroom_relay_packets_out_total",
        "counter",
        "Datagrams sent.",
    );
    for (i, s) in snapshots.iter().enumerate() {
        let _ = writeln!(
            out,
            "anteroom_relay_packets_out_total{{worker=\"{i}\"}} {}",
            s.packets_out
        );
    }
    header(
        &mut out,
        "anteroom_relay_bytes_total",
        "counter",
        "UDP payload bytes, by direction.",
    );
    for (i, s) in snapshots.iter().enumerate() {
        let _ = writeln!(
            out,
            "anteroom_relay_bytes_total{{worker=\"{i}\",direction=\"in\"}} {}",
            s.bytes_in
        );
        let _ = writeln!(
            out,
            "anteroom_relay_bytes_total{{worker=\"{i}\",direction=\"out\"}} {}",
            s.bytes_out
        );
    }

    header(
        &mut out,
        "anteroom_relay_drops_total",
        "counter",
        "Datagrams dropped, by reason.",
    );
    for (i, (s, w)) in snapshots.iter().zip(&workers).enumerate() {
        for reason in DropReason::ALL {
            let _ = writeln!(
                out,
                "anteroom_relay_drops_total{{worker=\"{i}\",reason=\"{}\"}} {}",
                reason.label(),
                s.dropped(reason)
            );
        }
        let send_errors = w.send_errors.load(std::sync::atomic::Ordering::Relaxed);
        let _ = writeln!(
            out,
            "anteroom_relay_drops_total{{worker=\"{i}\",reason=\"send_error\"}} {send_errors}"
        );
    }

    header(
        &mut out,
        "anteroom_relay_recv_batches_total",
        "counter",
        "Batched receive calls (recvmmsg) that returned datagrams.",
    );
    for (i, w) in workers.iter().enumerate() {
        let _ = writeln!(
            out,
            "anteroom_relay_recv_batches_total{{worker=\"{i}\"}} {}",
            w.recv_batches.load(std::sync::atomic::Ordering::Relaxed)
        );
    }

    let name = "anteroom_relay_worker_loop_seconds";
    header(
        &mut out,
        name,
        "histogram",
        "Time a worker loop iteration takes (input plus output drain).",
    );
    for (i, w) in workers.iter().enumerate() {
        let (counts, sum) = w.loop_histogram();
        let mut cumulative = 0;
        for (bound, count) in LOOP_BUCKETS_US.iter().zip(&counts) {
            cumulative += count;
            let le = *bound as f64 / 1e6;
            let _ = writeln!(
                out,
                "{name}_bucket{{worker=\"{i}\",le=\"{le}\"}} {cumulative}"
            );
        }
        cumulative += counts.last().copied().unwrap_or(0);
        let _ = writeln!(
            out,
            "{name}_bucket{{worker=\"{i}\",le=\"+Inf\"}} {cumulative}"
        );
        let _ = writeln!(out, "{name}_sum{{worker=\"{i}\"}} {sum}");
        let _ = writeln!(out, "{name}_count{{worker=\"{i}\"}} {cumulative}");
    }
    out
}
