//! The signaling crate's one error type.

/// Errors of the signaling service (start-up, configuration, directory, I/O).
///
/// Network input never produces an `Error`: bad client messages become
/// protocol `error` replies on their own connection.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The command-line/environment configuration is invalid.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The directory (tenants, rooms, accounts) is invalid.
    #[error("invalid directory: {0}")]
    Directory(String),
    /// A TOML file could not be parsed.
    #[error("TOML: {0}")]
    Toml(#[from] toml::de::Error),
    /// An I/O operation failed (bind, serve, files).
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
    /// The shared state store (Redis, `--redis-url`) failed or is unreachable.
    #[error("shared state (Redis): {0}")]
    Redis(String),
}

impl Error {
    /// Whether the failure is a shared-state outage (Redis down or slow):
    /// a request that met it may succeed if retried, so HTTP says 503.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, Error::Redis(_))
    }

    /// The HTTP status a request that met this error answers with:
    /// 503 for a Redis outage, 500 otherwise.
    pub fn http_status(&self) -> axum::http::StatusCode {
        if self.is_unavailable() {
            axum::http::StatusCode::SERVICE_UNAVAILABLE
        } else {
            axum::http::StatusCode::INTERNAL_SERVER_ERROR
        }
    }
}
