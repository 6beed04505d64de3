//! [`Backends`]: the shared-state implementations one signaling node uses,
//! chosen from the configuration: memory by default, Redis with
//! `--redis-url`. The server runs on them ([`crate::server::Services`]
//! holds one set; [`crate::auth::Auth`] keeps its sessions in
//! [`Backends::sessions`]).

use std::sync::Arc;

use super::RedisHandle;
use super::bus::{EventBus, MemoryBus, RedisBus};
use super::lease::{LeaseStore, MemoryLeases, RedisLeases};
use super::registry::RedisRegistry;
use super::seats::{MemorySeats, RedisSeats, SeatStore};
use super::sessions::{RedisSessions, SessionBackend};
use crate::Error;
use crate::auth::sessions::SessionStore;
use crate::auth::{AuthSettings, SESSIONS_PER_CLINICIAN};
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
    /// Clinician sessions (with the idle/absolute lifetimes they were made with).
    pub sessions: Arc<dyn SessionBackend>,
    /// The Redis in use, if any.
    pub redis: Option<RedisHandle>,
}

impl Backends {
    /// Everything in this process's memory (one node; nothing else needed),
    /// sessions with the default lifetimes.
    pub fn memory() -> Self {
        Self::memory_with(&AuthSettings::default())
    }

    /// [`Backends::memory`] with sessions of these lifetimes.
    pub fn memory_with(auth: &AuthSettings) -> Self {
        Self {
            registry: Arc::new(MemoryRegistry::new()),
            seats: Arc::new(MemorySeats::new()),
            leases: Arc::new(MemoryLeases::new()),
            bus: Arc::new(MemoryBus::new()),
            sessions: Arc::new(SessionStore::new(
                auth.idle,
                auth.max_age,
                SESSIONS_PER_CLINICIAN,
            )),
            redis: None,
        }
    }

    /// Everything in `handle`'s Redis (connections are made on first use),
    /// sessions with the default lifetimes.
    pub fn redis(handle: RedisHandle) -> Self {
        Self::redis_with(handle, &AuthSettings::default())
    }

    /// [`Backends::redis`] with sessions of these lifetimes.
    pub fn redis_with(handle: RedisHandle, auth: &AuthSettings) -> Self {
        Self {
            registry: Arc::new(RedisRegistry::new(handle.clone())),
            seats: Arc::new(RedisSeats::new(handle.clone())),
            leases: Arc::new(RedisLeases::new(handle.clone())),
            bus: Arc::new(RedisBus::new(handle.clone())),
            sessions: Arc::new(RedisSessions::new(
                handle.clone(),
                auth.idle,
                auth.max_age,
                SESSIONS_PER_CLINICIAN,
            )),
            redis: Some(handle),
        }
    }

    /// The backends `config` asks for, without connecting (an unusable
    /// `--redis-url` is still an error). [`Backends::from_config`] also
    /// checks that Redis answers.
    pub fn open(config: &Config) -> Result<Self, Error> {
        let auth = config.auth_settings();
        let Some(url) = &config.redis_url else {
            return Ok(Self::memory_with(&auth));
        };
        Ok(Self::redis_with(RedisHandle::new(url.expose())?, &auth))
    }

    /// The backends `config` asks for. With `--redis-url`, Redis must
    /// answer now: an unreachable Redis is an error naming the flag.
    pub async fn from_config(config: &Config) -> Result<Self, Error> {
        let backends = Self::open(config)?;
        if let Some(handle) = &backends.redis {
            handle.check().await?;
            // A session's CSRF token must verify on every node.
            let key = shared_key(handle, "csrf-key").await?;
            if !crate::csrf::use_shared_key(key) {
                tracing::warn!("CSRF key already in use: tokens from other nodes will not verify");
            }
        }
        Ok(backends)
    }
}

/// The 32-byte secret `P:<name>` every node shares: made by the first node
/// that asks (`SET NX`), read by the others.
async fn shared_key(handle: &RedisHandle, name: &str) -> Result<[u8; 32], Error> {
    let key = handle.key(name);
    let fresh: [u8; 32] = rand::random();
    let attempt = async {
        let mut conn = handle.client().get_multiplexed_async_connection().await?;
        redis::cmd("SET")
            .arg(&key)
            .arg(&fresh[..])
            .arg("NX")
            .query_async::<Option<String>>(&mut conn)
            .await?;
        redis::cmd("GET")
            .arg(&key)
            .query_async::<Vec<u8>>(&mut conn)
            .await
    };
    let bytes = tokio::time::timeout(super::CONNECT_TIMEOUT, attempt)
        .await
        .map_err(|_| Error::Redis("reading the shared CSRF key: no answer".into()))?
        .map_err(|e| super::redis_error("reading the shared CSRF key", &e))?;
    <[u8; 32]>::try_from(bytes.as_slice())
        .map_err(|_| Error::Redis("the shared CSRF key in Redis is malformed".into()))
}
