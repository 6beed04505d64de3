//! Logging set-up: text or JSON lines on stderr, an `EnvFilter`, and a guard
//! that keeps the WebSocket library's own TRACE/DEBUG output (which prints
//! whole frames, i.e. patient names and intake answers) out of the logs
//! whatever filter is configured. Our own logs carry ids only.
//!
//! Spans give every line its context (JSON lines list them under `span`
//! and `spans`):
//! - `http` ([`with_request_span`]): one per HTTP request, with `req` (a
//!   counter), `method`, `route` (the matched route template such as
//!   `/i/{token}`, never the path itself, which may hold an invite token),
//!   and `status` and `latency_ms` once answered; one DEBUG line `request`
//!   per request.
//! - `ws` (`crate::ws`): one per client WebSocket, with `conn` and `role`
//!   (`patient` or `clinician`) once `hello` succeeded.
//! - `control` (`crate::relays::control_ws`): one per relay control socket,
//!   with `node` once the relay registered.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use axum::Router;
use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use tracing::field::Empty;
use tracing::{Instrument as _, Level, Metadata};
use tracing_subscriber::filter::{EnvFilter, FilterExt, FilterFn};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{Layer, Registry};

use crate::Error;
use crate::config::LogFormat;

/// Crates that log message payloads below INFO; capped at INFO.
const PAYLOAD_TARGETS: &[&str] = &["tungstenite", "tokio_tungstenite"];

/// Whether a log line from `meta` may be written at all (see module docs).
pub fn payload_guard(meta: &Metadata<'_>) -> bool {
    *meta.level() <= Level::INFO
        || !PAYLOAD_TARGETS
            .iter()
            .filter_map(|t| meta.target().strip_prefix(t))
            .any(|rest| rest.is_empty() || rest.starts_with("::"))
}

/// Installs the global subscriber writing to stderr.
pub fn init(format: LogFormat, filter: &str) -> Result<(), Error> {
    init_with_writer(format, filter, std::io::stderr)
}

/// Installs the global subscriber writing to `writer` (tests capture logs
/// this way). Also routes the `log` crate's records into it.
pub fn init_with_writer<W>(format: LogFormat, filter: &str, writer: W) -> Result<(), Error>
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let env = EnvFilter::try_new(filter).map_err(|e| Error::Config(format!("--log: {e}")))?;
    let filter = env.and(FilterFn::new(payload_guard));
    let layer: Box<dyn Layer<Registry> + Send + Sync> = match format {
        LogFormat::Text => tracing_subscriber::fmt::layer()
            .with_writer(writer)
            .with_filter(filter)
            .boxed(),
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .with_current_span(true)
            .with_span_list(true)
            .with_writer(writer)
            .with_filter(filter)
            .boxed(),
    };
    tracing_subscriber::registry()
        .with(layer)
        .try_init()
        .map_err(|e| Error::Config(format!("logging: {e}")))
}

/// The `route` of a request that matched no route (a 404 or a fallback).
pub const UNMATCHED_ROUTE: &str = "(unmatched)";

/// Wraps every route of `app` in an `http` span (see module docs) and logs
/// one DEBUG line per request when it is answered. Apply it last, so that
/// what the other layers log is inside the span.
pub fn with_request_span(app: Router) -> Router {
    static NEXT_REQUEST: AtomicU64 = AtomicU64::new(1);
    app.layer(axum::middleware::from_fn(
        |req: Request, next: Next| async move {
            let id = NEXT_REQUEST.fetch_add(1, Ordering::Relaxed);
            let route = req
                .extensions()
                .get::<MatchedPath>()
                .map_or(UNMATCHED_ROUTE, MatchedPath::as_str)
                .to_owned();
            let span = tracing::info_span!(
                "http",
                req = id,
                method = %req.method(),
                route,
                status = Empty,
                latency_ms = Empty,
            );
            async move {
                let started = Instant::now();
                let response: Response = next.run(req).await;
                let latency = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
                let span = tracing::Span::current();
                span.record("status", response.status().as_u16());
                span.record("latency_ms", latency);
                tracing::debug!("request");
                response
            }
            .instrument(span)
            .await
        },
    ))
}
