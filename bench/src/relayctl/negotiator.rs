//! [`RelayNegotiator`]: a [`Negotiator`] that sends each peer's offer to a relay over
//! bench's control endpoint, with a grant bench signs with the shared secret, exactly
//! as signaling would.

use std::sync::Arc;

use protocol::{Grant, GrantRole, ParticipantId, RoomId};
use str0m::change::SdpAnswer;

use super::control::{RelayLink, unix_now};
use crate::peer::{
    BoxFuture, LoopSender, NegotiateRequest, Negotiator, PeerId, PeerKind, host_candidate,
    rewrite_candidate,
};
use crate::shim::Shim;
use crate::{Error, Result};

/// How long the grants bench issues stay valid.
const GRANT_TTL_SECS: u64 = 120;

/// Which room a peer joins.
pub type RoomOf = Arc<dyn Fn(PeerId) -> RoomId + Send + Sync>;

/// Negotiates peers that will run on `target` with the relay behind `link`.
pub struct RelayNegotiator {
    link: RelayLink,
    target: LoopSender,
    secret: Arc<[u8]>,
    room_of: RoomOf,
    publishers_subscribe: bool,
    upstream: Option<Arc<Shim>>,
}

impl std::fmt::Debug for RelayNegotiator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RelayNegotiator")
            .field("node", self.link.node())
            .finish_non_exhaustive()
    }
}

/// The participant id bench uses for a peer.
pub fn participant_of(peer: PeerId) -> Result<ParticipantId> {
    ParticipantId::new(format!("bench-{}", peer.0))
        .map_err(|e| Error::Config(format!("participant id: {e}")))
}

impl RelayNegotiator {
    /// Peers negotiated here must be handed to `target` (renegotiations go there).
    /// With `publishers_subscribe` (meetings), publishers get a `participant` grant
    /// and receive the room's other tracks; otherwise a `publisher` grant.
    pub fn new(
        link: RelayLink,
        target: LoopSender,
        secret: Arc<[u8]>,
        room_of: RoomOf,
        publishers_subscribe: bool,
    ) -> Self {
        RelayNegotiator {
            link,
            target,
            secret,
            room_of,
            publishers_subscribe,
            upstream: None,
        }
    }

    /// Routes every publisher's media to the relay through `shim` (its loss and delay
    /// then reach every subscriber), so the reports can be checked against it.
    #[must_use]
    pub fn with_upstream_shim(mut self, shim: Arc<Shim>) -> Self {
        self.upstream = Some(shim);
        self
    }

    async fn negotiate_now(&self, request: NegotiateRequest) -> Result<SdpAnswer> {
        let room = (self.room_of)(request.peer);
        let participant = participant_of(request.peer)?;
        let role = match request.kind {
            PeerKind::Publisher if self.publishers_subscribe => GrantRole::Participant,
            PeerKind::Publisher => GrantRole::Publisher,
            PeerKind::Subscriber => GrantRole::Subscriber,
        };
        let grant = Grant {
            room: room.clone(),
            participant: participant.clone(),
            role,
            node: self.link.node().clone(),
            exp: unix_now() + GRANT_TTL_SECS,
        }
        .sign(&self.secret);
        self.link
            .route(room, participant, self.target.clone(), request.peer);
        let offer = request.offer.to_sdp_string();
        let mut answer = self.link.offer(grant, offer.clone()).await?;
        if let (PeerKind::Publisher, Some(shim)) = (request.kind, &self.upstream) {
            let publisher = host_candidate(&offer)
                .ok_or_else(|| Error::Sdp("offer has no host candidate".into()))?;
            let relay = host_candidate(&answer)
                .ok_or_else(|| Error::Sdp("relay answer has no host candidate".into()))?;
            let link = shim.link(publisher, relay)?;
            answer = rewrite_candidate(&answer, relay, link.for_sender)?;
        }
        Ok(SdpAnswer::from_sdp_string(&answer)?)
    }
}

impl Negotiator for RelayNegotiator {
    fn negotiate(&self, request: NegotiateRequest) -> BoxFuture<'_, Result<SdpAnswer>> {
        Box::pin(self.negotiate_now(request))
    }
}
