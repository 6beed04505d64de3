//! [`Backends`]: the shared-state implementations one signaling node uses,
//! chosen from the configuration: memory by default, Redis with
//! `--redis-url`. The seam through which the server will switch its state
//! to Redis; not used by the server yet (see docs/ARCHITECTURE.md).

use std::sync::Arc;

use super::RedisHandle;
use super::bus::{EventBus, MemoryBus, RedisBus};
use super::lease::{LeaseStore, MemoryLeases, RedisLeases};
use super::registry::RedisRegistry;
use super::seats::{MemorySeats, RedisSeats, SeatStore};
use crate::Error;
use crate::config::Config;
use crate::relays::registry::{MemoryRegistry, NodeRegistry};

/// One node's stores. Cheap to clone (every field is shared).
#[derive(Debug, Clone)]
pub struct Backends {
    /// Relays and call placements.
    pub registry: Arc<dyn NodeRegistry>,
    /// Waiting-room seats and patient details.
    pub seats: Arc<dyn SeatStore>,
    /// Ownership leases (one lobby owner per tenant).
    pub leases: Arc<dyn LeaseStore>,
    /// Events to and from the other nodes.
    pub bus: Arc<dyn EventBus>,
    /// The Redis in use, if any.
    pub redis: Option<RedisHandle>,
}

impl Backends {
    /// Everything in this process's memory (one node; nothing else needed).
    pub fn memory() -> Self {
        Self {
            registry: Arc::new(MemoryRegistry::new()),
            seats: Arc::new(MemorySeats::new()),
            leases: Arc::new(MemoryLeases::new()),
            bus: Arc::new(MemoryBus::new()),
            redis: None,
        }
    }

    /// Everything in `handle`'s Redis (connections are made on first use).
    pub fn redis(handle: RedisHandle) -> Self {
        Self {
            registry: Arc::new(RedisRegistry::new(handle.clone())),
            seats: Arc::new(RedisSeats::new(handle.clone())),
            leases: Arc::new(RedisLeases::new(handle.clone())),
            bus: Arc::new(RedisBus::new(handle.clone())),
            redis: Some(handle),
        }
    }

    /// The backends `config` asks for. With `--redis-url`, Redis must
    /// answer now: an unreachable Redis is an error naming the flag.
    pub async fn from_config(config: &Config) -> Result<Self, Error> {
        let Some(url) = &config.redis_url else {
            return Ok(Self::memory());
        };
        let handle = RedisHandle::new(url.expose())?;
        handle.check().await?;
        Ok(Self::redis(handle))
    }
}
