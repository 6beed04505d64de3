//! Shared state for several signaling nodes (issue 7): the storage traits'
//! Redis implementations, the connection handling they share, and a
//! throwaway `redis-server` for tests.
//!
//! A single signaling process keeps everything in memory and needs nothing
//! else; `--redis-url` switches the stores to Redis. What lives here:
//!
//! - [`backends::Backends`]: the set of stores a node uses, chosen from the
//!   configuration (memory by default, Redis with `--redis-url`).
//! - [`RedisHandle`]: the parsed URL and key prefix every store uses, and
//!   [`RedisHandle::check`], the start-up reachability check.
//! - [`registry::RedisRegistry`]: the relay registry and call placements
//!   ([`crate::relays::registry::NodeRegistry`]).
//! - [`sessions`]: clinician sessions behind [`sessions::SessionBackend`]
//!   (memory: the auth module's session table; Redis: [`sessions::RedisSessions`]).
//! - [`seats`]: waiting-room seats, queues and the patient details that go
//!   with them ([`seats::SeatStore`]: memory and Redis).
//! - [`bus`]: the cross-node event bus ([`bus::EventBus`]: memory and
//!   Redis pub/sub).
//! - [`lease`]: which node owns what, for a while ([`lease::LeaseStore`]:
//!   memory and Redis), with fencing tokens.
//! - [`redis_server`]: starts a private `redis-server` on a free loopback
//!   port (tests).
//!
//! The stores use Redis's synchronous client with short timeouts because
//! their callers (the relay pool's compound steps, [`crate::auth::Auth`])
//! are synchronous and hold a lock across several steps; a Redis on the same
//! LAN answers in well under a millisecond. A broken connection is dropped
//! and made again on the next operation, so a Redis restart heals by itself.
//! Nothing here logs names, intake answers or tokens: keys carry ids and
//! token hashes only.

pub mod backends;
pub mod bus;
mod bus_redis;
mod conn;
pub mod lease;
pub mod redis_server;
pub mod registry;
pub mod seats;
mod seats_redis;
pub mod sessions;
mod sessions_redis;
mod wall;

use std::time::Duration;

pub(crate) use conn::SyncRedis;
pub use wall::WallClock;

use crate::Error;

/// How long connecting to Redis may take before it counts as unreachable.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// How long one Redis command may take.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(1);

/// Key prefix used unless another is given (one deployment per Redis db).
pub const DEFAULT_PREFIX: &str = "anteroom";

/// Checks that `url` is a Redis URL redis-rs accepts (`redis://` or
/// `unix://`), without connecting. The error never repeats the URL, which
/// may hold a password.
pub fn parse_url(url: &str) -> Result<redis::Client, Error> {
    let scheme_ok = ["redis://", "unix://", "redis+unix://"]
        .iter()
        .any(|s| url.starts_with(s));
    if !scheme_ok {
        return Err(Error::Config(
            "--redis-url (ANTEROOM_REDIS_URL) must start with redis:// or unix://".into(),
        ));
    }
    redis::Client::open(url).map_err(|e| {
        Error::Config(format!(
            "--redis-url (ANTEROOM_REDIS_URL) is not a usable Redis URL ({:?})",
            e.kind()
        ))
    })
}

/// Where the shared state lives: a Redis client and the prefix of every key.
#[derive(Clone)]
pub struct RedisHandle {
    client: redis::Client,
    prefix: String,
}

impl std::fmt::Debug for RedisHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The connection info may hold a password: show the prefix only.
        f.debug_struct("RedisHandle")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl RedisHandle {
    /// A handle for `url` with the default key prefix; does not connect.
    pub fn new(url: &str) -> Result<Self, Error> {
        Self::with_prefix(url, DEFAULT_PREFIX)
    }

    /// A handle whose keys all start with `prefix:` (tests use a fresh
    /// prefix per test so that they can share one server).
    pub fn with_prefix(url: &str, prefix: &str) -> Result<Self, Error> {
        Ok(Self {
            client: parse_url(url)?,
            prefix: prefix.to_owned(),
        })
    }

    /// The redis-rs client (for async connections: pub/sub, the manager).
    pub fn client(&self) -> &redis::Client {
        &self.client
    }

    /// `prefix:rest`.
    pub(crate) fn key(&self, rest: &str) -> String {
        format!("{}:{rest}", self.prefix)
    }

    /// Connects and sends `PING`: the start-up check behind `--redis-url`.
    /// The error says what failed and where to look, without the URL.
    pub async fn check(&self) -> Result<(), Error> {
        let attempt = async {
            let mut conn = self.client.get_multiplexed_async_connection().await?;
            redis::cmd("PING").query_async::<String>(&mut conn).await
        };
        match tokio::time::timeout(CONNECT_TIMEOUT, attempt).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(unreachable(&e.to_string())),
            Err(_) => Err(unreachable("no answer within 2 s")),
        }
    }
}

/// Lower-case hex of `bytes` (token hashes in keys).
pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

fn unreachable(why: &str) -> Error {
    Error::Redis(format!(
        "cannot reach the Redis given by --redis-url (ANTEROOM_REDIS_URL): {why}; \
         start it, fix the URL, or drop --redis-url to keep state in memory"
    ))
}

/// The crate error for a failed Redis operation `what` (ids only, never data).
pub(crate) fn redis_error(what: &str, e: &redis::RedisError) -> Error {
    Error::Redis(format!("{what}: {}", e.kind_name()))
}

trait KindName {
    fn kind_name(&self) -> String;
}

impl KindName for redis::RedisError {
    fn kind_name(&self) -> String {
        // The error's Display can quote a script error's text; the kind and
        // the server's error code are enough to act on.
        match self.code() {
            Some(code) => format!("{:?} ({code})", self.kind()),
            None => format!("{:?}", self.kind()),
        }
    }
}
