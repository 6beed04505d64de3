//! [`CallRelays`]: the part of the relay pool the calls layer uses, as a
//! trait so that the calls state machine can be tested with a fake, and its
//! implementation for the real [`RelayPool`].

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use protocol::{GrantRole, NodeId, ParticipantId, Region, RoomId};
use tokio::sync::broadcast;

use crate::relays::{PlacementError, RelayCallError, RelayEvent, RelayPool};

/// A relay's answer to a forwarded offer, as a boxed future.
pub type OfferFuture = Pin<Box<dyn Future<Output = Result<String, RelayCallError>> + Send>>;

/// The relay operations of a call (see [`RelayPool`] for their meaning).
pub trait CallRelays: Send + Sync {
    /// The relay carrying `call`, placing it if needed.
    fn place(&self, call: &RoomId, region_hint: Option<&Region>) -> Result<NodeId, PlacementError>;
    /// The relay `call` is on now, without side effects.
    fn placement_of(&self, call: &RoomId) -> Option<NodeId>;
    /// A signed grant for `participant` in `call` on `node`.
    fn grant(
        &self,
        call: &RoomId,
        participant: &ParticipantId,
        role: GrantRole,
        node: &NodeId,
    ) -> String;
    /// Forwards an offer; the future resolves to the relay's answer.
    fn offer(&self, node: NodeId, grant: String, sdp: String) -> OfferFuture;
    /// Forwards a trickled candidate.
    fn candidate(
        &self,
        node: &NodeId,
        call: &RoomId,
        participant: &ParticipantId,
        candidate: String,
    );
    /// Forwards the answer to a relay's renegotiation offer.
    fn renegotiate_answer(
        &self,
        node: &NodeId,
        call: &RoomId,
        participant: &ParticipantId,
        sdp: String,
    );
    /// Removes a participant's media session from `call` on `node`.
    fn kick(&self, node: &NodeId, call: &RoomId, participant: &ParticipantId);
    /// Ends `call` on its relay and forgets its placement.
    fn close_call(&self, call: &RoomId);
    /// A client of `call` reported ICE/DTLS failure with `node`.
    fn relay_failed(&self, call: &RoomId, node: &NodeId);
    /// Every relay event from now on.
    fn subscribe(&self) -> broadcast::Receiver<RelayEvent>;
}

impl CallRelays for Arc<RelayPool> {
    fn place(&self, call: &RoomId, region_hint: Option<&Region>) -> Result<NodeId, PlacementError> {
        RelayPool::place(self, call, region_hint)
    }

    fn placement_of(&self, call: &RoomId) -> Option<NodeId> {
        RelayPool::placement_of(self, call)
    }

    fn grant(
        &self,
        call: &RoomId,
        participant: &ParticipantId,
        role: GrantRole,
        node: &NodeId,
    ) -> String {
        RelayPool::grant(self, call, participant, role, node)
    }

    fn offer(&self, node: NodeId, grant: String, sdp: String) -> OfferFuture {
        let pool = Arc::clone(self);
        Box::pin(async move { RelayPool::offer(&pool, &node, grant, sdp).await })
    }

    fn candidate(
        &self,
        node: &NodeId,
        call: &RoomId,
        participant: &ParticipantId,
        candidate: String,
    ) {
        RelayPool::candidate(self, node, call, participant, candidate);
    }

    fn renegotiate_answer(
        &self,
        node: &NodeId,
        call: &RoomId,
        participant: &ParticipantId,
        sdp: String,
    ) {
        RelayPool::renegotiate_answer(self, node, call, participant, sdp);
    }

    fn kick(&self, node: &NodeId, call: &RoomId, participant: &ParticipantId) {
        RelayPool::kick(self, node, call, participant);
    }

    fn close_call(&self, call: &RoomId) {
        RelayPool::close_call(self, call);
    }

    fn relay_failed(&self, call: &RoomId, node: &NodeId) {
        RelayPool::relay_failed(self, call, node);
    }

    fn subscribe(&self) -> broadcast::Receiver<RelayEvent> {
        RelayPool::subscribe(self)
    }
}
