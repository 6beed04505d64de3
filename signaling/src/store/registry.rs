//! [`RedisRegistry`]: the relay registry and the call placements in Redis,
//! shared by every signaling node of a deployment.
//!
//! Keys (all under the handle's prefix `P`):
//!
//! | key | type | holds |
//! |---|---|---|
//! | `P:relays` | set | ids of registered relays |
//! | `P:relay:<node>` | hash | region, advertise (JSON), capacity, load (JSON), draining, last_beat (Unix ns), reserved |
//! | `P:placement:<call>` | string | the node the call is placed on |
//! | `P:calls:<node>` | set | calls placed on the node |
//!
//! Every trait method is one atomic step (a `MULTI` pipeline or a Lua
//! script), as the trait asks.
//!
//! Re-announcing: Redis keeps nothing on disk (docs/operations.md), so a
//! restarted Redis is empty. Each node remembers the relay records and
//! placements it wrote; when a heartbeat finds its relay unknown, the node
//! writes the record and that relay's placements again, then applies the beat. The trait has no error channel: a failed
//! Redis operation is logged (operation and error kind only) and counted,
//! and the method answers as if the data were absent; the relay pool then
//! treats relays as unknown until Redis answers again.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use protocol::control::{Heartbeat, RelayLoad};
use protocol::{NodeId, Region, RoomId};
use redis::{RedisResult, Script};

use super::{RedisHandle, SyncRedis, WallClock, redis_error};
use crate::relays::registry::{NodeRecord, NodeRegistry};

const HEARTBEAT: &str = r"
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local reserved = redis.call('SCARD', KEYS[2]) - tonumber(ARGV[4])
if reserved < 0 then reserved = 0 end
redis.call('HSET', KEYS[1], 'load', ARGV[1], 'draining', ARGV[2], 'last_beat', ARGV[3], 'reserved', reserved)
return 1
";

const SET_PLACEMENT: &str = r"
local prev = redis.call('GET', KEYS[1])
if prev == ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1])
if prev then redis.call('SREM', ARGV[3] .. ':calls:' .. prev, ARGV[2]) end
redis.call('SADD', ARGV[3] .. ':calls:' .. ARGV[1], ARGV[2])
local rec = ARGV[3] .. ':relay:' .. ARGV[1]
if redis.call('EXISTS', rec) == 1 then redis.call('HINCRBY', rec, 'reserved', 1) end
return 1
";

const REMOVE_PLACEMENT: &str = r"
local node = redis.call('GET', KEYS[1])
if not node then return false end
redis.call('DEL', KEYS[1])
redis.call('SREM', ARGV[2] .. ':calls:' .. node, ARGV[1])
return node
";

/// Relays and placements in Redis. See the module documentation.
#[derive(Debug)]
pub struct RedisRegistry {
    redis: SyncRedis,
    wall: WallClock,
    prefix_key: String,
    errors: AtomicU64,
    /// What this node wrote, to write again after Redis lost it.
    written: Mutex<Written>,
}

#[derive(Debug, Default)]
struct Written {
    records: HashMap<NodeId, NodeRecord>,
    placements: HashMap<RoomId, NodeId>,
}

impl RedisRegistry {
    /// A registry in `handle`'s Redis (connects on first use).
    pub fn new(handle: RedisHandle) -> Self {
        let prefix_key = handle.key("");
        Self {
            redis: SyncRedis::new(handle),
            wall: WallClock::new(),
            prefix_key: prefix_key.trim_end_matches(':').to_owned(),
            errors: AtomicU64::new(0),
            written: Mutex::new(Written::default()),
        }
    }

    fn written(&self) -> MutexGuard<'_, Written> {
        self.written.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn run_heartbeat(&self, node: &NodeId, beat: &Heartbeat, at: Instant) -> Option<i64> {
        let load = serde_json::to_string(&beat.load).unwrap_or_default();
        self.run("heartbeat", |c| {
            Script::new(HEARTBEAT)
                .key(self.node_key(node))
                .key(self.calls_key(node))
                .arg(load)
                .arg(u8::from(beat.draining))
                .arg(self.wall.to_unix_nanos(at))
                .arg(beat.load.rooms)
                .invoke::<i64>(c)
        })
    }

    /// Writes `node`'s record and placements again (Redis lost them).
    fn reannounce(&self, node: &NodeId) -> bool {
        let (record, calls) = {
            let w = self.written();
            let Some(record) = w.records.get(node).cloned() else {
                return false;
            };
            let calls: Vec<RoomId> = w
                .placements
                .iter()
                .filter(|(_, n)| *n == node)
                .map(|(c, _)| c.clone())
                .collect();
            (record, calls)
        };
        tracing::warn!(%node, calls = calls.len(), "relay registry: Redis lost a relay, writing it again");
        self.upsert(record);
        for call in &calls {
            self.set_placement(call, node);
        }
        true
    }

    /// Failed Redis operations so far (for health and metrics).
    pub fn errors(&self) -> u64 {
        self.errors.load(Ordering::Relaxed)
    }

    fn node_key(&self, node: &NodeId) -> String {
        self.redis.key(&format!("relay:{node}"))
    }
    fn calls_key(&self, node: &NodeId) -> String {
        self.redis.key(&format!("calls:{node}"))
    }
    fn placement_key(&self, call: &RoomId) -> String {
        self.redis.key(&format!("placement:{call}"))
    }

    /// Runs one operation; on failure logs it, counts it and yields `None`.
    fn run<T>(
        &self,
        what: &str,
        f: impl FnOnce(&mut redis::Connection) -> RedisResult<T>,
    ) -> Option<T> {
        match self.redis.run(f) {
            Ok(v) => Some(v),
            Err(e) => {
                self.errors.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(error = %redis_error(what, &e), "relay registry: Redis failed");
                None
            }
        }
    }

    fn fields(&self, r: &NodeRecord) -> Vec<(&'static str, String)> {
        vec![
            ("region", r.region.to_string()),
            (
                "advertise",
                serde_json::to_string(&r.advertise).unwrap_or_default(),
            ),
            ("capacity", r.capacity.to_string()),
            ("load", serde_json::to_string(&r.load).unwrap_or_default()),
            ("draining", u8::from(r.draining).to_string()),
            (
                "last_beat",
                self.wall.to_unix_nanos(r.last_beat).to_string(),
            ),
            ("reserved", r.reserved.to_string()),
        ]
    }

    /// A record from its hash; `None` (and a warning) if it is malformed.
    fn parse(&self, node: &NodeId, h: &HashMap<String, String>) -> Option<NodeRecord> {
        let parsed = (|| {
            Some(NodeRecord {
                node: node.clone(),
                region: Region::new(h.get("region")?).ok()?,
                advertise: serde_json::from_str(h.get("advertise")?).ok()?,
                capacity: h.get("capacity")?.parse().ok()?,
                load: serde_json::from_str::<RelayLoad>(h.get("load")?).ok()?,
                draining: h.get("draining")? == "1",
                last_beat: self.wall.from_unix_nanos(h.get("last_beat")?.parse().ok()?),
                reserved: h.get("reserved")?.parse().ok()?,
            })
        })();
        if parsed.is_none() && !h.is_empty() {
            tracing::warn!(%node, "relay registry: malformed record in Redis, ignored");
        }
        parsed
    }
}

impl NodeRegistry for RedisRegistry {
    fn upsert(&self, record: NodeRecord) {
        self.written()
            .records
            .insert(record.node.clone(), record.clone());
        let key = self.node_key(&record.node);
        let fields = self.fields(&record);
        let set = self.redis.key("relays");
        self.run("upsert", |c| {
            redis::pipe()
                .atomic()
                .del(&key)
                .ignore()
                .hset_multiple(&key, &fields)
                .ignore()
                .sadd(&set, record.node.as_str())
                .ignore()
                .query::<()>(c)
        });
    }

    fn heartbeat(&self, node: &NodeId, beat: &Heartbeat, at: Instant) -> bool {
        let mut known = self.run_heartbeat(node, beat, at) == Some(1);
        if !known && self.reannounce(node) {
            known = self.run_heartbeat(node, beat, at) == Some(1);
        }
        if known && let Some(r) = self.written().records.get_mut(node) {
            r.load = beat.load.clone();
            r.draining = beat.draining;
            r.last_beat = at;
        }
        known
    }

    fn remove(&self, node: &NodeId) -> Option<NodeRecord> {
        self.written().records.remove(node);
        let key = self.node_key(node);
        let set = self.redis.key("relays");
        let (h,): (HashMap<String, String>,) = self.run("remove", |c| {
            redis::pipe()
                .atomic()
                .hgetall(&key)
                .del(&key)
                .ignore()
                .srem(&set, node.as_str())
                .ignore()
                .query(c)
        })?;
        self.parse(node, &h)
    }

    fn get(&self, node: &NodeId) -> Option<NodeRecord> {
        let key = self.node_key(node);
        let h: HashMap<String, String> =
            self.run("get", |c| redis::cmd("HGETALL").arg(&key).query(c))?;
        self.parse(node, &h)
    }

    fn nodes(&self) -> Vec<NodeRecord> {
        let set = self.redis.key("relays");
        let Some(mut ids) = self.run("nodes", |c| {
            redis::cmd("SMEMBERS").arg(&set).query::<Vec<String>>(c)
        }) else {
            return Vec::new();
        };
        ids.sort();
        let ids: Vec<NodeId> = ids.iter().filter_map(|s| NodeId::new(s).ok()).collect();
        if ids.is_empty() {
            // redis-rs refuses an empty pipeline.
            return Vec::new();
        }
        let mut pipe = redis::pipe();
        for id in &ids {
            pipe.hgetall(self.node_key(id));
        }
        let hashes: Vec<HashMap<String, String>> =
            self.run("nodes", |c| pipe.query(c)).unwrap_or_default();
        ids.iter()
            .zip(&hashes)
            .filter_map(|(id, h)| self.parse(id, h))
            .collect()
    }

    fn placement(&self, call: &RoomId) -> Option<NodeId> {
        let key = self.placement_key(call);
        let node: Option<String> =
            self.run("placement", |c| redis::cmd("GET").arg(&key).query(c))?;
        node.and_then(|n| NodeId::new(&n).ok())
    }

    fn set_placement(&self, call: &RoomId, node: &NodeId) {
        self.written().placements.insert(call.clone(), node.clone());
        self.run("set_placement", |c| {
            Script::new(SET_PLACEMENT)
                .key(self.placement_key(call))
                .arg(node.as_str())
                .arg(call.as_str())
                .arg(&self.prefix_key)
                .invoke::<i64>(c)
        });
    }

    fn remove_placement(&self, call: &RoomId) -> Option<NodeId> {
        self.written().placements.remove(call);
        let node: Option<String> = self.run("remove_placement", |c| {
            Script::new(REMOVE_PLACEMENT)
                .key(self.placement_key(call))
                .arg(call.as_str())
                .arg(&self.prefix_key)
                .invoke(c)
        })?;
        node.and_then(|n| NodeId::new(&n).ok())
    }

    fn calls_on(&self, node: &NodeId) -> Vec<RoomId> {
        let key = self.calls_key(node);
        let mut calls: Vec<String> = self
            .run("calls_on", |c| redis::cmd("SMEMBERS").arg(&key).query(c))
            .unwrap_or_default();
        calls.sort();
        calls.iter().filter_map(|s| RoomId::new(s).ok()).collect()
    }
}
