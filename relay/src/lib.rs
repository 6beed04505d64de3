//! Anteroom relay: an SFU node built on str0m.
//!
//! - [`sfu`]: the sans-IO core (rooms, participants, tracks, forwarding). No
//!   sockets, no tokio, no clock: time and datagrams are arguments.
//! - [`driver`]: worker threads, one UDP socket each, feeding the core.
//! - [`control`]: the control link to signaling (register, heartbeat, offers).
//! - [`node`]: the running relay's shared state and admission checks.
//! - [`metrics`]: Prometheus `/metrics`, `/healthz`, `/readyz`.
//! - [`config`]: the clap [`Config`]; [`handle`]: [`Relay::start`],
//!   [`RelayHandle`] and [`run`]; [`signals`]: drain on SIGTERM.
//! - [`fuzzing`]: hostile-input harnesses (cargo-fuzz targets in `fuzz/`).
#![forbid(unsafe_code)]

pub mod sfu;

pub mod config;
pub mod control;
pub mod driver;
pub mod error;
pub mod fuzzing;
pub mod handle;
pub mod metrics;
pub mod node;
pub mod signals;

pub use config::{Config, LogFormat};
pub use error::RelayError;
pub use handle::{Relay, RelayHandle, run};
