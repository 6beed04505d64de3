//! Logging set-up: text or JSON lines on stderr, an `EnvFilter`, and a guard
//! that keeps the WebSocket library's own TRACE/DEBUG output (which prints
//! whole frames, i.e. patient names and intake answers) out of the logs
//! whatever filter is configured. Our own logs carry ids only.

use tracing::Level;
use tracing::Metadata;
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
            .with_writer(writer)
            .with_filter(filter)
            .boxed(),
    };
    tracing_subscriber::registry()
        .with(layer)
        .try_init()
        .map_err(|e| Error::Config(format!("logging: {e}")))
}
