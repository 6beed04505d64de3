//! Ended sessions seen on every signaling node: a logout or a disabled
//! account on one node publishes [`ClusterEvent::SessionsRevoked`] (the
//! clinician id only) on the cluster bus; every node's watcher
//! ([`Auth::watch_cluster`]) bumps its revocation counter, so its open
//! clinician WebSockets re-check their sessions in the shared store at once
//! ([`Auth::revocations`]) and the ended ones close.

use std::sync::Arc;

use protocol::{ClinicianId, NodeId};
use tokio::task::JoinHandle;

use super::Auth;
use crate::Error;
use crate::store::bus::{BusMessage, ClusterEvent, EventBus, Received};

/// The bus an [`Auth`] publishes on, and the node it speaks for.
pub(super) struct ClusterLink {
    bus: Arc<dyn EventBus>,
    origin: NodeId,
}

impl Auth {
    /// Publishes ended sessions on `bus` as node `origin`
    /// ([`Auth::watch_cluster`] listens on the other nodes).
    #[must_use]
    pub fn with_bus(mut self, bus: Arc<dyn EventBus>, origin: NodeId) -> Self {
        self.bus = Some(ClusterLink { bus, origin });
        self
    }

    /// Tells the other nodes that sessions of `clinician` ended. Sent from
    /// a task (publishing waits on Redis); without a runtime, or without a
    /// bus, only this node knows (the shared store is still right: every
    /// other node's next check finds the sessions gone).
    pub(super) fn announce_revoked(&self, clinician: &ClinicianId) {
        let Some(link) = &self.bus else { return };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let bus = link.bus.clone();
        let msg = BusMessage {
            origin: link.origin.clone(),
            event: ClusterEvent::SessionsRevoked {
                clinician: clinician.clone(),
            },
        };
        runtime.spawn(async move {
            if let Err(e) = bus.publish(&msg).await {
                tracing::warn!(error = %e, "could not tell the other nodes a session ended");
            }
        });
    }

    /// [`Auth::watch_cluster`] in the background (for a server being built:
    /// needs a tokio runtime; without one, this node's sockets see sessions
    /// ended elsewhere only at their next use).
    pub fn spawn_cluster_watch(self: &Arc<Self>) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            tracing::warn!("no runtime: other nodes' session revocations are seen late");
            return;
        };
        let auth = self.clone();
        runtime.spawn(async move {
            if let Err(e) = auth.watch_cluster().await {
                tracing::warn!(error = %e, "cannot hear other nodes' session revocations");
            }
        });
    }

    /// Subscribes to the bus and, from then on, makes this node's
    /// WebSockets re-check their sessions whenever another node ends
    /// sessions (or the bus may have lost messages). Returns once
    /// subscribed; the task ends when this `Auth` is gone or the bus closes.
    /// Without a bus ([`Auth::with_bus`]) the task does nothing.
    pub async fn watch_cluster(self: &Arc<Self>) -> Result<JoinHandle<()>, Error> {
        let Some(link) = &self.bus else {
            return Ok(tokio::spawn(async {}));
        };
        let mut sub = link.bus.subscribe().await?;
        let origin = link.origin.clone();
        let revoked = Arc::downgrade(&self.revoked);
        Ok(tokio::spawn(async move {
            while let Some(item) = sub.recv().await {
                let recheck = match &item {
                    Received::Message(m) => {
                        m.origin != origin
                            && matches!(m.event, ClusterEvent::SessionsRevoked { .. })
                    }
                    Received::Gap => true,
                };
                if !recheck {
                    continue;
                }
                let Some(revoked) = revoked.upgrade() else {
                    break;
                };
                revoked.send_modify(|n| *n = n.wrapping_add(1));
            }
        }))
    }
}
