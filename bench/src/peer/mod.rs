//! Synthetic WebRTC users on str0m: many peers per thread, each with its own loopback
//! UDP port, negotiated through a pluggable [`Negotiator`].
//!
//! Life of a peer: [`PeerFactory::offer`] binds a socket and builds an `Rtc` (RTP mode,
//! Opus + VP8, the factory's shared DTLS certificate) and an SDP offer; a [`Negotiator`]
//! carries the offer to the far side (another bench peer via [`DirectNegotiator`]; later
//! signaling, WHIP or WHEP) and returns the answer; [`PendingPeer::accept_answer`] makes
//! it a [`ReadyPeer`], which [`LoopSender::add`] hands to a [`PeerLoop`] thread. The loop
//! drives ICE/DTLS, sends the publisher's media shapes and accounts every probe it
//! receives into its [`crate::stats::Recorder`].
//!
//! Why one port per peer rather than one shared socket: a relay (like every SFU) tells
//! clients apart by their source address, so N peers behind one socket would look like
//! one client to it. The loop still runs thousands of peers on one thread: it waits on
//! all their sockets with one `epoll` (mio) and keeps their timeouts in a min-heap.

mod counters;
mod direct;
mod event_loop;
mod factory;
mod slot;
mod whip;

use std::fmt;
use std::future::Future;
use std::pin::Pin;

pub use direct::{DirectNegotiator, host_candidate, rewrite_candidate};
pub use event_loop::{LiveCounters, LiveSnapshot, LoopConfig, LoopSender, PeerLoop};
pub use factory::{PeerFactory, PendingPeer, ReadyPeer};
pub use str0m::change::{SdpAnswer, SdpOffer};
pub use whip::{Endpoint, HttpResponse, WhipNegotiator, http_request, parse_response};

use crate::Result;
use crate::media::{AudioShape, VideoShape};

/// A synthetic user's id within one bench run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub struct PeerId(pub u32);

impl fmt::Display for PeerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "peer-{}", self.0)
    }
}

/// What a peer sends. Stream ids are `first_stream`, `first_stream + 1`, … (audio first,
/// then one per video layer); see [`PublishSpec::stream_count`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PublishSpec {
    /// Audio track shape, if any.
    pub audio: Option<AudioShape>,
    /// Video track shape, if any.
    pub video: Option<VideoShape>,
    /// First stream id this publisher stamps into its probes.
    pub first_stream: u32,
}

impl PublishSpec {
    /// How many stream ids this spec uses.
    pub fn stream_count(&self) -> u32 {
        u32::from(self.audio.is_some()) + self.video.map_or(0, |v| v.layers().len() as u32)
    }
}

/// The media a peer wants: what it sends and whether it receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerRole {
    /// Sends media; offers send-only m-lines.
    Publisher(PublishSpec),
    /// Receives media; offers receive-only audio + video m-lines (WHEP style).
    Subscriber,
}

impl PeerRole {
    /// Short name for logs and requests.
    pub fn kind(&self) -> PeerKind {
        match self {
            PeerRole::Publisher(_) => PeerKind::Publisher,
            PeerRole::Subscriber => PeerKind::Subscriber,
        }
    }
}

/// Which way media flows for a negotiating peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum PeerKind {
    /// The offer's m-lines are send-only.
    Publisher,
    /// The offer's m-lines are receive-only.
    Subscriber,
}

/// What a [`Negotiator`] is asked to deliver to the far side.
#[derive(Debug)]
pub struct NegotiateRequest {
    /// The peer that offers.
    pub peer: PeerId,
    /// Its direction.
    pub kind: PeerKind,
    /// The SDP offer (contains the peer's host candidate).
    pub offer: SdpOffer,
}

/// A boxed, sendable future (keeps [`Negotiator`] object safe).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Carries an SDP offer to whatever answers it and returns the answer.
///
/// Implementations: [`DirectNegotiator`] (another bench peer, for tests and `bench
/// loopback`); later a signaling-WebSocket negotiator (issue 4) and a WHIP/WHEP HTTP one.
pub trait Negotiator: Send + Sync + fmt::Debug {
    /// Delivers `request.offer` and resolves to the far side's answer.
    fn negotiate(&self, request: NegotiateRequest) -> BoxFuture<'_, Result<SdpAnswer>>;
}

/// Joins one peer: offer, negotiate, accept, hand to `target`'s loop.
pub async fn join(
    factory: &PeerFactory,
    negotiator: &dyn Negotiator,
    target: &LoopSender,
    peer: PeerId,
    role: PeerRole,
) -> Result<()> {
    let (pending, offer) = factory.offer(peer, role)?;
    let answer = negotiator
        .negotiate(NegotiateRequest {
            peer,
            kind: role.kind(),
            offer,
        })
        .await?;
    target.add(pending.accept_answer(answer)?)
}
