//! Anteroom bench: synthetic WebRTC users and the measurements that make a load test
//! trustworthy.
//!
//! The library is what the `bench` binary and the end-to-end tests share:
//! - [`media`]: synthetic audio/video shapes packetised like real Opus/VP8, each packet
//!   carrying a [`media::Probe`] (stream id, sequence, send time);
//! - [`stats`]: per-stream receive accounting, latency/join histograms, per-second series;
//! - [`report`]: final table, JSON, SVG plot and the live progress line;
//! - [`peer`]: str0m peers, many per thread in a [`peer::PeerLoop`], negotiated through
//!   the [`peer::Negotiator`] trait;
//! - [`shim`]: a lossy/delaying loopback UDP proxy used to check the measurements;
//! - [`target`]: the loopback-only guard;
//! - [`lobby`]: synthetic patients and clinicians on the signaling protocol;
//! - [`relayctl`]: bench's own control endpoint for relays, a relay process it starts,
//!   and the relay's CPU/memory/forwarded counters;
//! - [`scenario`]: the runnable scenarios.
#![forbid(unsafe_code)]

pub mod clock;
mod error;
pub mod lobby;
pub mod media;
pub mod peer;
pub mod relayctl;
pub mod report;
pub mod scenario;
pub mod shim;
pub mod stats;
pub mod target;

pub use error::Error;

/// Result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
