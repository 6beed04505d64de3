//! [`RedisSeats`]: waiting-room seats and queues in Redis.
//!
//! Keys (prefix `P`; `<p>` participant, `<t>` tenant, `<r>` room):
//!
//! | key | type | TTL | holds |
//! |---|---|---|---|
//! | `P:seat:<p>` | hash | seat TTL | tenant, room, token hash (hex), state, clinician, cname, joined (Unix ms), call, relay, invited (empty: none) |
//! | `P:details:<p>` | string | seat TTL | JSON `[display name, intake answers]` |
//! | `P:token:<hash hex>` | string | seat TTL | the participant |
//! | `P:queue:<t>:<r>` | sorted set | none | waiting participants, score = order |
//! | `P:queue-seq:<t>:<r>` | counter | none | last back-of-queue score |
//! | `P:seats-of:<t>` | set | none | the tenant's participants |
//!
//! Patient data is only in `P:details:*`, which always carries a TTL and is
//! deleted with its seat. Sets and queues may keep the id of a seat whose
//! TTL ran out: reading a queue prunes such ids, listing a tenant's seats
//! skips them.

use std::sync::LazyLock;
use std::time::Duration;

use protocol::client::IntakeAnswers;
use protocol::{ClinicianId, NodeId, ParticipantId, RoomId, Sensitive, TenantId};
use redis::Script;

use super::seats::{PatientDetails, QueueEnd, SeatRecord, SeatState, SeatStore, TokenHash};
use super::{RedisHandle, SyncRedis, hex, redis_error};
use crate::Error;

/// Lua: enqueue(P, t, r, p, front) puts `p` at one end of the room's queue.
const ENQUEUE: &str = r"
local function enqueue(P, t, r, p, front)
  local q = P .. ':queue:' .. t .. ':' .. r
  local score
  if front then
    local first = redis.call('ZRANGE', q, 0, 0, 'WITHSCORES')
    score = 0
    if first[2] then score = tonumber(first[2]) - 1 end
  else
    score = redis.call('INCR', P .. ':queue-seq:' .. t .. ':' .. r)
  end
  redis.call('ZADD', q, score, p)
end
local P, p = ARGV[1], ARGV[2]
local seat = P .. ':seat:' .. p
";

static INSERT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "{ENQUEUE}{}",
        r"
local old = redis.call('HMGET', seat, 'tenant', 'room', 'token')
if old[1] then
  redis.call('ZREM', P .. ':queue:' .. old[1] .. ':' .. old[2], p)
  redis.call('DEL', P .. ':token:' .. old[3])
end
redis.call('DEL', seat)
redis.call('HSET', seat, 'tenant', ARGV[3], 'room', ARGV[4], 'token', ARGV[5], 'state', ARGV[6],
  'clinician', ARGV[7], 'cname', ARGV[8], 'joined', ARGV[9], 'call', ARGV[12], 'relay', ARGV[13],
  'invited', ARGV[14])
redis.call('PEXPIRE', seat, ARGV[11])
redis.call('SET', P .. ':token:' .. ARGV[5], p, 'PX', ARGV[11])
redis.call('SET', P .. ':details:' .. p, ARGV[10], 'PX', ARGV[11])
redis.call('SADD', P .. ':seats-of:' .. ARGV[3], p)
if ARGV[6] == 'waiting' then enqueue(P, ARGV[3], ARGV[4], p, false) end
return 1
"
    ))
});

static ADMIT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "{ENQUEUE}{}",
        r"
local s = redis.call('HMGET', seat, 'tenant', 'room', 'state')
if s[3] ~= 'waiting' then return 0 end
redis.call('ZREM', P .. ':queue:' .. s[1] .. ':' .. s[2], p)
redis.call('HSET', seat, 'state', 'admitted', 'clinician', ARGV[3], 'cname', ARGV[4])
return 1
"
    ))
});

static REQUEUE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "{ENQUEUE}{}",
        r"
local s = redis.call('HMGET', seat, 'tenant', 'room')
if not s[1] then return 0 end
redis.call('ZREM', P .. ':queue:' .. s[1] .. ':' .. s[2], p)
local room = s[2]
if ARGV[3] ~= '' then room = ARGV[3] end
enqueue(P, s[1], room, p, ARGV[4] == 'front')
redis.call('HSET', seat, 'room', room, 'state', 'waiting', 'clinician', '', 'cname', '',
  'call', '', 'relay', '')
return 1
"
    ))
});

static POSITION: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "{ENQUEUE}{}",
        r"
local s = redis.call('HMGET', seat, 'tenant', 'room', 'state')
if s[3] ~= 'waiting' then return false end
local rank = redis.call('ZRANK', P .. ':queue:' .. s[1] .. ':' .. s[2], p)
if not rank then return false end
return rank + 1
"
    ))
});

static REFRESH: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "{ENQUEUE}{}",
        r"
local token = redis.call('HGET', seat, 'token')
if not token then return 0 end
redis.call('PEXPIRE', seat, ARGV[3])
redis.call('PEXPIRE', P .. ':details:' .. p, ARGV[3])
redis.call('PEXPIRE', P .. ':token:' .. token, ARGV[3])
return 1
"
    ))
});

static REMOVE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "{ENQUEUE}{}",
        r"
local s = redis.call('HMGET', seat, 'tenant', 'room', 'token', 'state', 'clinician', 'cname', 'joined',
  'call', 'relay', 'invited')
redis.call('DEL', P .. ':details:' .. p)
if not s[1] then return {} end
redis.call('DEL', seat, P .. ':token:' .. s[3])
redis.call('ZREM', P .. ':queue:' .. s[1] .. ':' .. s[2], p)
redis.call('SREM', P .. ':seats-of:' .. s[1], p)
return s
"
    ))
});

static QUEUE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local out = {}
for _, p in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  if redis.call('EXISTS', ARGV[1] .. ':seat:' .. p) == 1 then table.insert(out, p)
  else redis.call('ZREM', KEYS[1], p) end
end
return out
",
    )
});

/// The fields of a seat hash, in this order.
const FIELDS: [&str; 10] = [
    "tenant",
    "room",
    "token",
    "state",
    "clinician",
    "cname",
    "joined",
    "call",
    "relay",
    "invited",
];

/// Seats in Redis. See the module documentation.
#[derive(Debug)]
pub struct RedisSeats {
    redis: SyncRedis,
    prefix: String,
}

impl RedisSeats {
    /// Seats in `handle`'s Redis (connects on first use).
    pub fn new(handle: RedisHandle) -> Self {
        let prefix = handle.key("").trim_end_matches(':').to_owned();
        Self {
            redis: SyncRedis::new(handle),
            prefix,
        }
    }

    fn script<T: redis::FromRedisValue>(
        &self,
        what: &str,
        script: &Script,
        p: &ParticipantId,
        args: &[&str],
    ) -> Result<T, Error> {
        self.redis
            .run(|c| {
                let mut call = script.prepare_invoke();
                call.arg(&self.prefix).arg(p.as_str());
                for a in args {
                    call.arg(*a);
                }
                call.invoke(c)
            })
            .map_err(|e| redis_error(what, &e))
    }
}

fn unhex(s: &str) -> Option<TokenHash> {
    let mut out = [0u8; 32];
    if s.len() != 64 {
        return None;
    }
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

fn ms(d: Duration) -> String {
    u64::try_from(d.as_millis())
        .unwrap_or(u64::MAX)
        .max(1)
        .to_string()
}

/// A seat from its fields (in [`FIELDS`] order); `None` if absent or malformed.
fn record(p: &ParticipantId, f: &[Option<String>]) -> Option<SeatRecord> {
    let get = |i: usize| f.get(i).and_then(Option::as_deref);
    // Optional ids: absent (a seat written before they existed) or empty.
    let opt = |i: usize| get(i).filter(|v| !v.is_empty());
    let state = match get(3)? {
        "waiting" => SeatState::Waiting,
        "admitted" => SeatState::Admitted {
            clinician: ClinicianId::new(get(4)?).ok()?,
            clinician_name: get(5)?.to_owned(),
        },
        _ => return None,
    };
    Some(SeatRecord {
        participant: p.clone(),
        tenant: TenantId::new(get(0)?).ok()?,
        room: RoomId::new(get(1)?).ok()?,
        token_hash: unhex(get(2)?)?,
        state,
        joined_unix_ms: get(6)?.parse().ok()?,
        call: opt(7).and_then(|v| RoomId::new(v).ok()),
        relay: opt(8).and_then(|v| NodeId::new(v).ok()),
        invited_to: opt(9).and_then(|v| RoomId::new(v).ok()),
    })
}

impl SeatStore for RedisSeats {
    fn insert(
        &self,
        seat: &SeatRecord,
        details: &PatientDetails,
        ttl: Duration,
    ) -> Result<(), Error> {
        let (state, clinician, cname) = match &seat.state {
            SeatState::Waiting => ("waiting", "", ""),
            SeatState::Admitted {
                clinician,
                clinician_name,
            } => ("admitted", clinician.as_str(), clinician_name.as_str()),
        };
        let json = serde_json::to_string(&(details.display_name.expose(), details.intake.expose()))
            .map_err(|_| Error::Redis("encoding patient details".into()))?;
        let joined = seat.joined_unix_ms.to_string();
        let token = hex(&seat.token_hash);
        let args = [
            seat.tenant.as_str(),
            seat.room.as_str(),
            &token,
            state,
            clinician,
            cname,
            &joined,
            &json,
            &ms(ttl),
            seat.call.as_ref().map_or("", RoomId::as_str),
            seat.relay.as_ref().map_or("", NodeId::as_str),
            seat.invited_to.as_ref().map_or("", RoomId::as_str),
        ];
        self.script::<i64>("adding a seat", &INSERT, &seat.participant, &args)
            .map(|_| ())
    }

    fn get(&self, participant: &ParticipantId) -> Result<Option<SeatRecord>, Error> {
        let key = self.redis.key(&format!("seat:{participant}"));
        let f: Vec<Option<String>> = self
            .redis
            .run(|c| redis::cmd("HMGET").arg(&key).arg(&FIELDS[..]).query(c))
            .map_err(|e| redis_error("reading a seat", &e))?;
        Ok(record(participant, &f))
    }

    fn by_token(&self, hash: &TokenHash) -> Result<Option<SeatRecord>, Error> {
        let key = self.redis.key(&format!("token:{}", hex(hash)));
        let p: Option<String> = self
            .redis
            .run(|c| redis::cmd("GET").arg(&key).query(c))
            .map_err(|e| redis_error("finding a seat by token", &e))?;
        match p.and_then(|p| ParticipantId::new(p).ok()) {
            Some(p) => Ok(self.get(&p)?.filter(|s| &s.token_hash == hash)),
            None => Ok(None),
        }
    }

    fn details(&self, participant: &ParticipantId) -> Result<Option<PatientDetails>, Error> {
        let key = self.redis.key(&format!("details:{participant}"));
        let json: Option<String> = self
            .redis
            .run(|c| redis::cmd("GET").arg(&key).query(c))
            .map_err(|e| redis_error("reading patient details", &e))?;
        Ok(json
            .and_then(|j| serde_json::from_str::<(String, IntakeAnswers)>(&j).ok())
            .map(|(name, intake)| PatientDetails {
                display_name: Sensitive::new(name),
                intake: Sensitive::new(intake),
            }))
    }

    fn queue(&self, tenant: &TenantId, room: &RoomId) -> Result<Vec<ParticipantId>, Error> {
        let key = self.redis.key(&format!("queue:{tenant}:{room}"));
        let ids: Vec<String> = self
            .redis
            .run(|c| QUEUE.key(&key).arg(&self.prefix).invoke(c))
            .map_err(|e| redis_error("reading a queue", &e))?;
        Ok(ids
            .into_iter()
            .filter_map(|p| ParticipantId::new(p).ok())
            .collect())
    }

    fn position(&self, participant: &ParticipantId) -> Result<Option<u32>, Error> {
        let pos: Option<u32> = self.script("reading a position", &POSITION, participant, &[])?;
        Ok(pos)
    }

    fn admit(
        &self,
        participant: &ParticipantId,
        clinician: &ClinicianId,
        clinician_name: &str,
    ) -> Result<bool, Error> {
        let args = [clinician.as_str(), clinician_name];
        Ok(self.script::<i64>("admitting a seat", &ADMIT, participant, &args)? == 1)
    }

    fn requeue(
        &self,
        participant: &ParticipantId,
        room: Option<&RoomId>,
        end: QueueEnd,
    ) -> Result<bool, Error> {
        let end = match end {
            QueueEnd::Front => "front",
            QueueEnd::Back => "back",
        };
        let args = [room.map_or("", RoomId::as_str), end];
        Ok(self.script::<i64>("requeueing a seat", &REQUEUE, participant, &args)? == 1)
    }

    fn refresh(&self, participant: &ParticipantId, ttl: Duration) -> Result<bool, Error> {
        let args = [ms(ttl)];
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        Ok(self.script::<i64>("refreshing a seat", &REFRESH, participant, &args)? == 1)
    }

    fn remove(&self, participant: &ParticipantId) -> Result<Option<SeatRecord>, Error> {
        let f: Vec<Option<String>> = self.script("removing a seat", &REMOVE, participant, &[])?;
        Ok(record(participant, &f))
    }

    fn seats_of(&self, tenant: &TenantId) -> Result<Vec<SeatRecord>, Error> {
        let key = self.redis.key(&format!("seats-of:{tenant}"));
        let mut ids: Vec<String> = self
            .redis
            .run(|c| redis::cmd("SMEMBERS").arg(&key).query(c))
            .map_err(|e| redis_error("listing seats", &e))?;
        ids.sort();
        let ids: Vec<ParticipantId> = ids
            .into_iter()
            .filter_map(|p| ParticipantId::new(p).ok())
            .collect();
        if ids.is_empty() {
            // redis-rs refuses an empty pipeline.
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for p in &ids {
            pipe.cmd("HMGET")
                .arg(self.redis.key(&format!("seat:{p}")))
                .arg(&FIELDS[..]);
        }
        let rows: Vec<Vec<Option<String>>> = self
            .redis
            .run(|c| pipe.query(c))
            .map_err(|e| redis_error("listing seats", &e))?;
        Ok(ids
            .iter()
            .zip(&rows)
            .filter_map(|(p, f)| record(p, f))
            .filter(|s| &s.tenant == tenant)
            .collect())
    }
}
