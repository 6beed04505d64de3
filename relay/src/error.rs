//! The relay's error type for everything outside the sans-IO core.

use std::io;

/// Why the relay could not start or went on.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    /// The configuration is incomplete or inconsistent; the message names the flag.
    #[error("configuration: {0}")]
    Config(String),
    /// A socket could not be bound or configured.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The underlying error.
        source: io::Error,
    },
    /// The control connection to signaling failed (the relay reconnects).
    #[error("control link: {0}")]
    Control(String),
    /// A worker thread failed to start or stopped unexpectedly.
    #[error("worker {index}: {message}")]
    Worker {
        /// The worker's index.
        index: usize,
        /// What went wrong.
        message: String,
    },
}

impl RelayError {
    /// Wraps an I/O error with what was being done.
    pub(crate) fn io(what: impl Into<String>, source: io::Error) -> Self {
        Self::Io {
            what: what.into(),
            source,
        }
    }
}
