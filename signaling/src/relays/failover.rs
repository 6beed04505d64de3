//! Failover: when a relay dies (its control connection closed, its
//! heartbeat went stale, or a client's report proved it dead), each of its
//! calls moves to a sibling — the same region first, then the configured
//! region order — or is parked until a relay registers.

use std::sync::Arc;

use protocol::NodeId;
use tokio::task::JoinHandle;

use super::RelayEvent;
use super::pool::{Orphan, RelayPool, State};

impl RelayPool {
    /// Forgets `node` (closing its control connection if open) and re-places
    /// every call it carried, emitting `CallMoved` or `CallOrphaned` per call.
    pub(super) fn relay_down(&self, state: &mut State, node: &NodeId) {
        // Dropping the link closes the connection and fails its pending offers.
        state.links.remove(node);
        let record = self.registry.remove(node);
        let region = record.map_or_else(|| self.settings.region.clone(), |r| r.region);
        let calls = self.registry.calls_on(node);
        tracing::warn!(%node, calls = calls.len(), "relay down; re-placing its calls");
        for call in calls {
            if let Some(to) = self.choose(state, &region, Some(node)) {
                self.registry.set_placement(&call, &to);
                tracing::info!(%call, from = %node, %to, "call moved");
                self.emit(RelayEvent::CallMoved {
                    call,
                    from: node.clone(),
                    to,
                });
            } else {
                self.registry.remove_placement(&call);
                tracing::warn!(%call, from = %node, "no relay for call; parked");
                state.orphans.insert(
                    call.clone(),
                    Orphan {
                        from: node.clone(),
                        region: region.clone(),
                    },
                );
                self.emit(RelayEvent::CallOrphaned {
                    call,
                    from: node.clone(),
                });
            }
        }
    }

    /// Places parked calls on whatever relay can take them now.
    pub(super) fn place_orphans(&self, state: &mut State) {
        let parked: Vec<_> = state
            .orphans
            .iter()
            .map(|(call, orphan)| (call.clone(), orphan.clone()))
            .collect();
        for (call, orphan) in parked {
            let Some(to) = self.choose(state, &orphan.region, None) else {
                continue;
            };
            state.orphans.remove(&call);
            self.registry.set_placement(&call, &to);
            tracing::info!(%call, from = %orphan.from, %to, "parked call placed");
            self.emit(RelayEvent::CallMoved {
                call,
                from: orphan.from,
                to,
            });
        }
    }

    /// Treats every relay whose heartbeat is stale as dead. Runs every
    /// heartbeat interval (see [`RelayPool::spawn_sweeper`]); tests with a
    /// manual clock call it directly.
    pub fn sweep(&self) {
        let mut state = self.lock();
        let now = self.settings.clock.now();
        let stale: Vec<NodeId> = self
            .registry
            .nodes()
            .into_iter()
            .filter(|r| !r.is_fresh(now, self.settings.heartbeat))
            .map(|r| r.node)
            .collect();
        for node in stale {
            tracing::warn!(%node, "relay heartbeat stale");
            self.relay_down(&mut state, &node);
        }
    }

    /// Runs [`RelayPool::sweep`] every heartbeat interval on the pool's clock
    /// until the task is aborted.
    pub fn spawn_sweeper(self: &Arc<Self>) -> JoinHandle<()> {
        let pool = Arc::clone(self);
        tokio::spawn(async move {
            let clock = pool.settings.clock.clone();
            loop {
                let next = clock.now() + pool.settings.heartbeat;
                clock.sleep_until(next).await;
                pool.sweep();
            }
        })
    }
}
