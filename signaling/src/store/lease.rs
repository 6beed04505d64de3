//! Leases: which signaling node owns something (a tenant's lobby) for a
//! while, with a fencing token that grows with every change of hands.
//!
//! This is step 1 of the lobby-sharing design in docs/operations.md
//! ("Scaling out"): one owner per tenant, taken over when the owner stops
//! renewing. A node keeps ownership only while it renews within the TTL;
//! the fencing token lets a store refuse writes from an owner that lost
//! its lease without noticing (a paused process). Not used by the lobby yet.
//!
//! Time is an argument: expiry is decided against `now` (converted to Unix
//! time in Redis, so all nodes agree as well as their clocks do). Redis also
//! gets a key TTL of twice the lease as garbage collection.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use protocol::NodeId;
use redis::Script;

use super::{RedisHandle, SyncRedis, WallClock, redis_error};
use crate::Error;

/// Storage of leases. Every method is one atomic step.
pub trait LeaseStore: Send + Sync + fmt::Debug {
    /// Takes (or extends) the lease `name` for `holder` until `now + ttl`,
    /// if it is free, expired or already `holder`'s. Returns the fencing
    /// token: the same while `holder` keeps it, larger after any change of
    /// hands. `None`: someone else holds it.
    fn acquire(
        &self,
        name: &str,
        holder: &NodeId,
        ttl: Duration,
        now: Instant,
    ) -> Result<Option<u64>, Error>;

    /// Gives the lease up if `holder` has it; true if it did.
    fn release(&self, name: &str, holder: &NodeId) -> Result<bool, Error>;

    /// Who holds the lease at `now`, if anyone.
    fn holder(&self, name: &str, now: Instant) -> Result<Option<NodeId>, Error>;
}

/// Leases in this process (a single node owns everything anyway).
#[derive(Debug, Default)]
pub struct MemoryLeases {
    inner: Mutex<HashMap<String, Held>>,
}

#[derive(Debug)]
struct Held {
    holder: Option<NodeId>,
    until: Instant,
    token: u64,
}

impl MemoryLeases {
    /// No leases.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Held>> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl LeaseStore for MemoryLeases {
    fn acquire(
        &self,
        name: &str,
        holder: &NodeId,
        ttl: Duration,
        now: Instant,
    ) -> Result<Option<u64>, Error> {
        let mut map = self.lock();
        let held = map.entry(name.to_owned()).or_insert(Held {
            holder: None,
            until: now,
            token: 0,
        });
        let live = held.holder.is_some() && held.until > now;
        let mine = held.holder.as_ref() == Some(holder);
        if live && !mine {
            return Ok(None);
        }
        if !(live && mine) {
            held.token += 1;
            held.holder = Some(holder.clone());
        }
        held.until = now + ttl;
        Ok(Some(held.token))
    }

    fn release(&self, name: &str, holder: &NodeId) -> Result<bool, Error> {
        let mut map = self.lock();
        match map.get_mut(name) {
            Some(held) if held.holder.as_ref() == Some(holder) => {
                held.holder = None;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    fn holder(&self, name: &str, now: Instant) -> Result<Option<NodeId>, Error> {
        Ok(self
            .lock()
            .get(name)
            .filter(|h| h.until > now)
            .and_then(|h| h.holder.clone()))
    }
}

/// `{token}` or `{0, other holder}`.
const ACQUIRE: &str = r"
local h = redis.call('HMGET', KEYS[1], 'holder', 'until')
local now = tonumber(ARGV[2])
local live = h[1] and tonumber(h[2]) > now
if live and h[1] ~= ARGV[1] then return 0 end
local token
if live then
  token = tonumber(redis.call('GET', KEYS[2]) or '0')
else
  token = redis.call('INCR', KEYS[2])
end
redis.call('HSET', KEYS[1], 'holder', ARGV[1], 'until', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return token
";

const RELEASE: &str = r"
if redis.call('HGET', KEYS[1], 'holder') ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
return 1
";

/// Leases in Redis: `P:lease:<name>` (hash: holder, until in Unix µs) and
/// `P:lease-seq:<name>` (the fencing counter, kept forever).
#[derive(Debug)]
pub struct RedisLeases {
    redis: SyncRedis,
    wall: WallClock,
}

impl RedisLeases {
    /// Leases in `handle`'s Redis (connects on first use).
    pub fn new(handle: RedisHandle) -> Self {
        Self {
            redis: SyncRedis::new(handle),
            wall: WallClock::new(),
        }
    }
}

impl LeaseStore for RedisLeases {
    fn acquire(
        &self,
        name: &str,
        holder: &NodeId,
        ttl: Duration,
        now: Instant,
    ) -> Result<Option<u64>, Error> {
        let gc_ms = u64::try_from(ttl.as_millis().saturating_mul(2))
            .unwrap_or(u64::MAX)
            .max(1);
        let token: u64 = self
            .redis
            .run(|c| {
                Script::new(ACQUIRE)
                    .key(self.redis.key(&format!("lease:{name}")))
                    .key(self.redis.key(&format!("lease-seq:{name}")))
                    .arg(holder.as_str())
                    .arg(self.wall.to_unix_micros(now))
                    .arg(self.wall.to_unix_micros(now + ttl))
                    .arg(gc_ms)
                    .invoke(c)
            })
            .map_err(|e| redis_error("taking a lease", &e))?;
        Ok((token > 0).then_some(token))
    }

    fn release(&self, name: &str, holder: &NodeId) -> Result<bool, Error> {
        let n: i64 = self
            .redis
            .run(|c| {
                Script::new(RELEASE)
                    .key(self.redis.key(&format!("lease:{name}")))
                    .arg(holder.as_str())
                    .invoke(c)
            })
            .map_err(|e| redis_error("releasing a lease", &e))?;
        Ok(n == 1)
    }

    fn holder(&self, name: &str, now: Instant) -> Result<Option<NodeId>, Error> {
        let key = self.redis.key(&format!("lease:{name}"));
        let (holder, until): (Option<String>, Option<i64>) = self
            .redis
            .run(|c| {
                redis::cmd("HMGET")
                    .arg(&key)
                    .arg("holder")
                    .arg("until")
                    .query(c)
            })
            .map_err(|e| redis_error("reading a lease", &e))?;
        let live = until.is_some_and(|u| u > self.wall.to_unix_micros(now));
        Ok(holder.filter(|_| live).and_then(|h| NodeId::new(h).ok()))
    }
}
