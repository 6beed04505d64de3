//! Relays, seen from signaling: the registry of relay nodes, placement of
//! calls on them, the relays' control WebSocket (`/control`), failover
//! when a relay dies, and WHIP/WHEP ingest and playback.
//!
//! - [`RelayPool`] (in `pool`): the in-process API the calls layer uses —
//!   place a call, sign grants, forward SDP and candidates, and receive
//!   [`RelayEvent`]s (calls moved or orphaned, renegotiation offers, …).
//! - [`registry`]: the [`registry::NodeRegistry`] trait and its memory impl.
//! - [`placement`]: the pure relay choice (region order, least loaded).
//! - `failover`: re-placing a dead relay's calls; the staleness sweep.
//! - [`control_ws`]: the `/control` endpoint relays dial.
//! - [`whip`]: `POST /whip/<call>` and `POST /whep/<call>`.
//! - [`ingest_api`]: `POST /api/calls/<call>/ingest` (tokens for those).

pub mod control_ws;
mod failover;
pub mod ingest_api;
mod links;

pub use links::{RegisterError, RelayLink};
pub mod placement;
mod pool;
pub mod registry;
pub mod whip;

use std::time::Duration;

use protocol::control::RelayLoad;
use protocol::{NodeId, ParticipantId, Region, RoomId, Sensitive};

pub use pool::RelayPool;

use crate::clock::Clock;

/// Default heartbeat interval asked of relays.
pub const DEFAULT_HEARTBEAT: Duration = Duration::from_secs(1);

/// How long a relay may take to answer an offer.
pub const OFFER_TIMEOUT: Duration = Duration::from_secs(5);

/// Lifetime of a grant signaling issues.
pub const GRANT_TTL: Duration = Duration::from_secs(120);

/// How long a relay may take to send `register` after connecting.
pub const REGISTER_TIMEOUT: Duration = Duration::from_secs(10);

/// Settings of the relay pool (from the signaling [`crate::config::Config`]).
#[derive(Debug, Clone)]
pub struct RelaySettings {
    /// The secret shared with relays: signs grants, authenticates `register`.
    pub secret: Sensitive<Vec<u8>>,
    /// This signaling node's region: preferred when a client gives no hint.
    pub region: Region,
    /// Regions to try, in order, after the preferred one.
    pub region_order: Vec<Region>,
    /// Where `now` comes from (heartbeat freshness).
    pub clock: Clock,
    /// Heartbeat interval asked of relays; stale after three missed beats.
    pub heartbeat: Duration,
    /// How long a relay may take to answer an offer.
    pub offer_timeout: Duration,
    /// Lifetime of issued grants.
    pub grant_ttl: Duration,
    /// How long a relay may take to register after connecting.
    pub register_timeout: Duration,
}

impl RelaySettings {
    /// Settings with the given secret and region and default timings.
    pub fn new(secret: impl Into<Vec<u8>>, region: Region) -> Self {
        Self {
            secret: Sensitive::new(secret.into()),
            region,
            region_order: Vec::new(),
            clock: Clock::default(),
            heartbeat: DEFAULT_HEARTBEAT,
            offer_timeout: OFFER_TIMEOUT,
            grant_ttl: GRANT_TTL,
            register_timeout: REGISTER_TIMEOUT,
        }
    }
}

/// Why no relay could be chosen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlacementError {
    /// No relay is registered, fresh, not draining and not full. Retry on
    /// [`RelayEvent::RelayUp`].
    #[error("no relay is available")]
    NoRelay,
}

/// Why forwarding an offer to a relay failed. Messages are safe to show.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RelayCallError {
    /// The relay refused the offer (bad grant, draining, full, bad SDP).
    #[error("the relay refused: {0}")]
    Refused(String),
    /// The relay is not connected (or its connection dropped meanwhile).
    #[error("the relay is not connected")]
    RelayGone,
    /// The relay did not answer in time.
    #[error("the relay did not answer in time")]
    Timeout,
}

/// What the pool tells the calls layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RelayEvent {
    /// The relay carrying `call` died, went stale or drained out: the call
    /// now lives on `to`. Every participant needs a new grant and offer.
    CallMoved {
        /// The call.
        call: RoomId,
        /// The relay it was on.
        from: NodeId,
        /// The relay it is on now.
        to: NodeId,
    },
    /// No relay could take `call`; it is parked until one registers, then
    /// [`RelayEvent::CallMoved`] follows.
    CallOrphaned {
        /// The call.
        call: RoomId,
        /// The relay it was on.
        from: NodeId,
    },
    /// The relay's new SDP offer for a participant (someone published or
    /// left); answer with [`RelayPool::renegotiate_answer`].
    Renegotiate {
        /// The call.
        call: RoomId,
        /// Who must answer.
        participant: ParticipantId,
        /// The relay's offer.
        sdp: String,
    },
    /// A participant's media session ended on the relay.
    ParticipantLeft {
        /// The call.
        call: RoomId,
        /// Who left.
        participant: ParticipantId,
    },
    /// A relay registered (new or reconnected): calls that got
    /// [`PlacementError::NoRelay`] may retry [`RelayPool::place`].
    RelayUp {
        /// The relay.
        node: NodeId,
    },
}

/// One relay as the pool sees it (admin, metrics, tests).
#[derive(Debug, Clone, PartialEq)]
pub struct RelayInfo {
    /// Node id.
    pub node: NodeId,
    /// Region.
    pub region: Region,
    /// Advertised UDP addresses.
    pub advertise: Vec<String>,
    /// Participant capacity.
    pub capacity: u32,
    /// Last reported load.
    pub load: RelayLoad,
    /// Draining.
    pub draining: bool,
    /// Heartbeat fresh now.
    pub fresh: bool,
    /// Its control connection is open on this signaling node.
    pub connected: bool,
    /// Calls placed on it.
    pub calls: usize,
}

/// Every route of this module: `/control`, WHIP and WHEP.
pub fn router(pool: std::sync::Arc<RelayPool>) -> axum::Router {
    control_ws::router(pool.clone()).merge(whip::router(pool))
}
