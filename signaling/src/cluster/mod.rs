//! Several signaling nodes serving one deployment (issue 7): one node at a
//! time owns the lobby (the lease `lobby`, [`owner`]); every other node is a
//! front end that pipes its WebSockets to the owner over the node mailbox
//! ([`mailbox`], Redis pub/sub channel `P:node:<id>`).
//!
//! - [`owner`]: the lease loop and [`Ownership`] (who owns the lobby now).
//! - [`mailbox`]: [`Mailbox`] and [`NodeMessage`], messages between nodes.
//! - [`runner`]: the lobby task of each term this node owns, behind one
//!   stable handle, and the 503 for lobby endpoints on front ends.
//!
//! Without `--redis-url` the single node owns the lobby for good and none of
//! this runs. docs/operations.md ("Scaling out") describes the design.

pub mod mailbox;
pub mod owner;
pub mod pipe;
mod pipe_front;
#[cfg(test)]
mod pipe_redis_tests;
mod pipe_service;
#[cfg(test)]
mod pipe_tests;
pub mod runner;
pub mod socket;

use std::time::Duration;

use protocol::NodeId;

pub use mailbox::{Mailbox, NodeMessage, PipeKind};
pub use owner::Ownership;

/// This node's place in a cluster.
#[derive(Debug, Clone)]
pub struct ClusterSettings {
    /// This node's id (`--node-id`; the mailbox channel is `P:node:<id>`).
    pub node: NodeId,
    /// The lobby lease (`--lobby-lease-ms`), renewed every third of it.
    pub lease: Duration,
}

impl Default for ClusterSettings {
    /// A random id and the default 10 s lease.
    fn default() -> Self {
        Self {
            node: crate::config::random_node_id(),
            lease: Duration::from_secs(10),
        }
    }
}
