//! Ended sessions seen on every signaling node: a logout or a disabled
//! account on one node publishes [`ClusterEvent::SessionsRevoked`] (the
//! clinician id only) on the cluster bus; every node's watcher
//! ([`Auth::watch_cluster`]) bumps its revocation counter, so its open
//! clinician WebSockets re-check their sessions in the shared store at once
//! ([`Auth::revocations`]) and the ended ones close.
//!
//! Accounts disabled or re-enabled through the admin API travel the same
//! way ([`ClusterEvent::AccountEnabled`], ids only): every other node's
//! watcher applies the change to its own in-memory directory, so a disabled
//! account cannot sign in on another node. A node that misses the event
//! (Redis connection broken) keeps its old view until restarted.

use std::sync::{Arc, Weak};

use protocol::{ClinicianId, NodeId, TenantId};
use tokio::task::JoinHandle;

use super::Auth;
use crate::Error;
use crate::directory::Directory;
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
        let event = ClusterEvent::SessionsRevoked {
            clinician: clinician.clone(),
        };
        self.announce(event, "could not tell the other nodes a session ended");
    }

    /// Tells the other nodes that an admin enabled or disabled the account
    /// `clinician` of `tenant` (already changed in this node's directory and
    /// audited here); each applies it to its own directory. Like
    /// [`Auth::announce_revoked`], sent from a task, and a no-op without a bus.
    pub fn announce_account_enabled(
        &self,
        tenant: &TenantId,
        clinician: &ClinicianId,
        enabled: bool,
    ) {
        let event = ClusterEvent::AccountEnabled {
            tenant: tenant.clone(),
            clinician: clinician.clone(),
            enabled,
        };
        self.announce(event, "could not tell the other nodes an account changed");
    }

    fn announce(&self, event: ClusterEvent, failed: &'static str) {
        let Some(link) = &self.bus else { return };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let bus = link.bus.clone();
        let msg = BusMessage {
            origin: link.origin.clone(),
            event,
        };
        runtime.spawn(async move {
            if let Err(e) = bus.publish(&msg).await {
                tracing::warn!(error = %e, "{failed}");
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
    /// sessions or disables an account (or the bus may have lost messages),
    /// and applies other nodes' account enables/disables to this node's
    /// directory. Returns once
    /// subscribed; the task ends when this `Auth` is gone or the bus closes.
    /// Without a bus ([`Auth::with_bus`]) the task does nothing.
    pub async fn watch_cluster(self: &Arc<Self>) -> Result<JoinHandle<()>, Error> {
        let Some(link) = &self.bus else {
            return Ok(tokio::spawn(async {}));
        };
        let mut sub = link.bus.subscribe().await?;
        let origin = link.origin.clone();
        let revoked = Arc::downgrade(&self.revoked);
        let directory = Arc::downgrade(&self.directory);
        Ok(tokio::spawn(async move {
            while let Some(item) = sub.recv().await {
                let recheck = match &item {
                    Received::Message(m) if m.origin == origin => false,
                    Received::Message(m) => match &m.event {
                        ClusterEvent::SessionsRevoked { .. } => true,
                        ClusterEvent::AccountEnabled {
                            tenant,
                            clinician,
                            enabled,
                        } => {
                            apply_account_enabled(&directory, tenant, clinician, *enabled);
                            !enabled
                        }
                        _ => false,
                    },
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

/// Another node's admin enabled or disabled `clinician`: the same change in
/// this node's directory, not audited again (the other node did).
fn apply_account_enabled(
    directory: &Weak<Directory>,
    tenant: &TenantId,
    clinician: &ClinicianId,
    enabled: bool,
) {
    let Some(directory) = directory.upgrade() else {
        return;
    };
    if directory.set_enabled(tenant, clinician, enabled).is_err() {
        // Created on the other node only (accounts are per node otherwise).
        tracing::debug!(%clinician, "account change for an account this node does not know");
    }
}
