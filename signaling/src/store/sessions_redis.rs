//! [`RedisSessions`]: clinician sessions in Redis, seen by every node.
//!
//! Keys (prefix `P`): `P:session:<sha256 hex>` is a hash (clinician,
//! tenant, role, name, created and last_used in Unix µs) with a TTL equal
//! to what is left of its idle or absolute lifetime, so Redis drops dead
//! sessions by itself; `P:sessions-of:<clinician>` is the set of an
//! account's token hashes (for the per-account cap and revoke-all);
//! `P:session-deadlines` is a sorted set of token hashes by the Unix µs at
//! which each session expires, so that the periodic sweep finds the expired
//! ones and reports each exactly once (the `session_expired` audit line),
//! whichever node sweeps. A session key outlives its deadline by
//! [`SWEEP_MARGIN`] for that sweep to see it; a lookup checks the deadline
//! itself, so the margin never lengthens a session. Each operation is one
//! Lua script, atomic across nodes. The token itself is never sent to Redis.

use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use protocol::{ClinicianId, TenantId};
use redis::Script;
use sha2::{Digest, Sha256};

use super::sessions::{Lookup, SessionBackend};
use super::{RedisHandle, SyncRedis, WallClock, hex, redis_error};
use crate::Error;
use crate::auth::{SessionInfo, StaffRole};

/// Longest token looked up (as in the memory store); longer is missing.
const MAX_TOKEN_LEN: usize = 128;

/// How long a session key outlives its deadline, so that a sweep (every
/// minute) still finds it to audit its expiry. Redis drops it after that.
pub const SWEEP_MARGIN: Duration = Duration::from_secs(5 * 60);

/// Most sessions one sweep removes (the next sweep takes the rest).
const SWEEP_BATCH: usize = 1000;

const CREATE: &str = r"
local live = {}
for _, m in ipairs(redis.call('SMEMBERS', KEYS[2])) do
  local used = redis.call('HGET', ARGV[1] .. m, 'last_used')
  if used then table.insert(live, {m, tonumber(used)}) else redis.call('SREM', KEYS[2], m) end
end
local cap = tonumber(ARGV[2])
if #live >= cap then
  table.sort(live, function(a, b) return a[2] < b[2] end)
  for i = 1, #live + 1 - cap do
    redis.call('DEL', ARGV[1] .. live[i][1])
    redis.call('SREM', KEYS[2], live[i][1])
    redis.call('ZREM', KEYS[3], live[i][1])
  end
end
redis.call('HSET', KEYS[1], 'clinician', ARGV[5], 'tenant', ARGV[6], 'role', ARGV[7],
  'name', ARGV[8], 'created', ARGV[9], 'last_used', ARGV[9])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('SADD', KEYS[2], ARGV[10])
redis.call('PEXPIRE', KEYS[2], ARGV[4])
redis.call('ZADD', KEYS[3], ARGV[11], ARGV[10])
return 1
";

/// Returns {status, clinician, tenant, role, name}: 0 missing, 1 valid, 2 expired.
const TOUCH: &str = r"
local h = redis.call('HMGET', KEYS[1], 'created', 'last_used', 'clinician', 'tenant', 'role', 'name')
if not h[1] then return {0} end
local now, idle, max = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local created, used = tonumber(h[1]), tonumber(h[2])
if now - used >= idle or now - created >= max then
  redis.call('DEL', KEYS[1])
  redis.call('SREM', ARGV[4] .. h[3], ARGV[5])
  redis.call('ZREM', KEYS[2], ARGV[5])
  return {2, h[3], h[4], h[5], h[6]}
end
if now > used then
  used = now
  redis.call('HSET', KEYS[1], 'last_used', ARGV[1])
end
local deadline = math.min(used + idle, created + max)
redis.call('ZADD', KEYS[2], deadline, ARGV[5])
redis.call('PEXPIRE', KEYS[1], math.max(1, math.floor((deadline - now + tonumber(ARGV[6])) / 1000)))
return {1, h[3], h[4], h[5], h[6]}
";

const REMOVE: &str = r"
local h = redis.call('HMGET', KEYS[1], 'clinician', 'tenant', 'role', 'name')
if not h[1] then return {0} end
redis.call('DEL', KEYS[1])
redis.call('SREM', ARGV[1] .. h[1], ARGV[2])
redis.call('ZREM', KEYS[2], ARGV[2])
return {1, h[1], h[2], h[3], h[4]}
";

/// Like TOUCH without writing: {1, clinician, tenant, role, name} if live.
const PEEK: &str = r"
local h = redis.call('HMGET', KEYS[1], 'created', 'last_used', 'clinician', 'tenant', 'role', 'name')
if not h[1] then return {0} end
local now, idle, max = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
if now - tonumber(h[2]) >= idle or now - tonumber(h[1]) >= max then return {0} end
return {1, h[3], h[4], h[5], h[6]}
";

/// Removes the sessions due by ARGV[1]; returns their (clinician, tenant,
/// role, name), four entries per session.
const SWEEP: &str = r"
local now, idle, max = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local out = {}
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[6]))
for _, m in ipairs(due) do
  local h = redis.call('HMGET', ARGV[4] .. m, 'created', 'last_used', 'clinician', 'tenant', 'role', 'name')
  if not h[1] then
    redis.call('ZREM', KEYS[1], m)
  else
    local created, used = tonumber(h[1]), tonumber(h[2])
    if now - used >= idle or now - created >= max then
      redis.call('DEL', ARGV[4] .. m)
      redis.call('SREM', ARGV[5] .. h[3], m)
      redis.call('ZREM', KEYS[1], m)
      for i = 3, 6 do table.insert(out, h[i]) end
    else
      redis.call('ZADD', KEYS[1], math.min(used + idle, created + max), m)
    end
  end
end
return out
";

const REMOVE_CLINICIAN: &str = r"
local n = 0
for _, m in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  n = n + redis.call('DEL', ARGV[1] .. m)
  redis.call('ZREM', KEYS[2], m)
end
redis.call('DEL', KEYS[1])
return n
";

/// Sessions in Redis. See the module documentation.
#[derive(Debug)]
pub struct RedisSessions {
    redis: SyncRedis,
    wall: WallClock,
    idle: Duration,
    max_age: Duration,
    per_clinician: usize,
}

impl RedisSessions {
    /// Sessions in `handle`'s Redis with these lifetimes and per-account cap.
    pub fn new(
        handle: RedisHandle,
        idle: Duration,
        max_age: Duration,
        per_clinician: usize,
    ) -> Self {
        Self {
            redis: SyncRedis::new(handle),
            wall: WallClock::new(),
            idle,
            max_age,
            per_clinician: per_clinician.max(1),
        }
    }

    fn session_key(&self, hash: &str) -> String {
        self.redis.key(&format!("session:{hash}"))
    }
    fn of_key(&self, clinician: &str) -> String {
        self.redis.key(&format!("sessions-of:{clinician}"))
    }
    fn deadlines_key(&self) -> String {
        self.redis.key("session-deadlines")
    }
}

fn hash_hex(token: &str) -> String {
    hex(&Sha256::digest(token.as_bytes()))
}

fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}

/// The `SessionInfo` of a script's `{status, clinician, tenant, role, name}`.
fn info_of(reply: &[String]) -> Option<SessionInfo> {
    let role = match reply.get(3)?.as_str() {
        "admin" => StaffRole::Admin,
        "clinician" => StaffRole::Clinician,
        _ => return None,
    };
    Some(SessionInfo {
        clinician: ClinicianId::new(reply.get(1)?).ok()?,
        tenant: TenantId::new(reply.get(2)?).ok()?,
        role,
        display_name: reply.get(4)?.clone(),
    })
}

impl SessionBackend for RedisSessions {
    fn create(&self, info: SessionInfo, now: Instant) -> Result<String, Error> {
        let bytes: [u8; 32] = rand::random();
        let token = URL_SAFE_NO_PAD.encode(bytes);
        let hash = hash_hex(&token);
        let life = self.idle.min(self.max_age);
        let ttl = millis(life + SWEEP_MARGIN);
        let at = self.wall.to_unix_micros(now);
        self.redis
            .run(|c| {
                Script::new(CREATE)
                    .key(self.session_key(&hash))
                    .key(self.of_key(info.clinician.as_str()))
                    .key(self.deadlines_key())
                    .arg(self.session_key(""))
                    .arg(self.per_clinician)
                    .arg(ttl)
                    .arg(millis(self.max_age + SWEEP_MARGIN))
                    .arg(info.clinician.as_str())
                    .arg(info.tenant.as_str())
                    .arg(info.role.as_str())
                    .arg(&info.display_name)
                    .arg(at)
                    .arg(&hash)
                    .arg(at.saturating_add(micros(life)))
                    .invoke::<i64>(c)
            })
            .map_err(|e| redis_error("creating a session", &e))?;
        Ok(token)
    }

    fn touch(&self, token: &str, now: Instant) -> Result<Lookup, Error> {
        if token.is_empty() || token.len() > MAX_TOKEN_LEN {
            return Ok(Lookup::Missing);
        }
        let hash = hash_hex(token);
        let reply: Vec<redis::Value> = self
            .redis
            .run(|c| {
                Script::new(TOUCH)
                    .key(self.session_key(&hash))
                    .key(self.deadlines_key())
                    .arg(self.wall.to_unix_micros(now))
                    .arg(micros(self.idle))
                    .arg(micros(self.max_age))
                    .arg(self.of_key(""))
                    .arg(&hash)
                    .arg(micros(SWEEP_MARGIN))
                    .invoke(c)
            })
            .map_err(|e| redis_error("checking a session", &e))?;
        let fields = strings(&reply);
        Ok(
            match (fields.first().map(String::as_str), info_of(&fields)) {
                (Some("1"), Some(info)) => Lookup::Valid(info),
                (Some("2"), Some(info)) => Lookup::Expired(info),
                _ => Lookup::Missing,
            },
        )
    }

    fn remove(&self, token: &str) -> Result<Option<SessionInfo>, Error> {
        if token.len() > MAX_TOKEN_LEN {
            return Ok(None);
        }
        let hash = hash_hex(token);
        let reply: Vec<redis::Value> = self
            .redis
            .run(|c| {
                Script::new(REMOVE)
                    .key(self.session_key(&hash))
                    .key(self.deadlines_key())
                    .arg(self.of_key(""))
                    .arg(&hash)
                    .invoke(c)
            })
            .map_err(|e| redis_error("ending a session", &e))?;
        Ok(info_of(&strings(&reply)))
    }

    fn remove_clinician(&self, clinician: &ClinicianId) -> Result<usize, Error> {
        let n: i64 = self
            .redis
            .run(|c| {
                Script::new(REMOVE_CLINICIAN)
                    .key(self.of_key(clinician.as_str()))
                    .key(self.deadlines_key())
                    .arg(self.session_key(""))
                    .invoke(c)
            })
            .map_err(|e| redis_error("ending an account's sessions", &e))?;
        Ok(usize::try_from(n).unwrap_or(0))
    }

    fn peek(&self, token: &str, now: Instant) -> Result<Option<SessionInfo>, Error> {
        if token.is_empty() || token.len() > MAX_TOKEN_LEN {
            return Ok(None);
        }
        let hash = hash_hex(token);
        let reply: Vec<redis::Value> = self
            .redis
            .run(|c| {
                Script::new(PEEK)
                    .key(self.session_key(&hash))
                    .arg(self.wall.to_unix_micros(now))
                    .arg(micros(self.idle))
                    .arg(micros(self.max_age))
                    .invoke(c)
            })
            .map_err(|e| redis_error("checking a session", &e))?;
        let fields = strings(&reply);
        Ok(match fields.first().map(String::as_str) {
            Some("1") => info_of(&fields),
            _ => None,
        })
    }

    fn sweep(&self, now: Instant) -> Result<Vec<SessionInfo>, Error> {
        let reply: Vec<redis::Value> = self
            .redis
            .run(|c| {
                Script::new(SWEEP)
                    .key(self.deadlines_key())
                    .arg(self.wall.to_unix_micros(now))
                    .arg(micros(self.idle))
                    .arg(micros(self.max_age))
                    .arg(self.session_key(""))
                    .arg(self.of_key(""))
                    .arg(SWEEP_BATCH)
                    .invoke(c)
            })
            .map_err(|e| redis_error("sweeping expired sessions", &e))?;
        let fields = strings(&reply);
        Ok(fields
            .chunks_exact(4)
            .filter_map(|chunk| {
                let mut with_status = vec![String::new()];
                with_status.extend_from_slice(chunk);
                info_of(&with_status)
            })
            .collect())
    }

    fn blocks(&self) -> bool {
        true
    }
}

/// A script's array reply as strings (Lua numbers come back as integers).
fn strings(reply: &[redis::Value]) -> Vec<String> {
    reply
        .iter()
        .map(|v| match v {
            redis::Value::Int(i) => i.to_string(),
            redis::Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
            redis::Value::SimpleString(s) => s.clone(),
            _ => String::new(),
        })
        .collect()
}
