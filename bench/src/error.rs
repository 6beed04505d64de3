//! The bench library's single error type.

use std::net::SocketAddr;

/// Everything that can go wrong in the bench library.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A target address is not loopback and `--allow-remote` was not given.
    #[error("refusing non-loopback target {0} (pass --allow-remote to load a remote system)")]
    RemoteTarget(String),
    /// A target string could not be parsed.
    #[error("invalid target {0:?}: {1}")]
    InvalidTarget(String, &'static str),
    /// A socket operation failed.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// str0m refused an operation.
    #[error("WebRTC error: {0}")]
    Rtc(#[from] str0m::RtcError),
    /// An SDP could not be parsed or applied.
    #[error("SDP error: {0}")]
    Sdp(String),
    /// The DTLS certificate could not be generated.
    #[error("could not generate the shared DTLS certificate")]
    Certificate,
    /// Negotiation with the far side failed.
    #[error("negotiation failed: {0}")]
    Negotiation(String),
    /// A peer loop or shim thread is gone (stopped or panicked).
    #[error("{0} is no longer running")]
    Stopped(&'static str),
    /// An invalid configuration value.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The candidate address of an SDP could not be found or rewritten.
    #[error("no host candidate {0} in SDP")]
    Candidate(SocketAddr),
}

impl From<str0m::error::SdpError> for Error {
    fn from(e: str0m::error::SdpError) -> Self {
        Error::Sdp(e.to_string())
    }
}
