//! The `NodeRegistry` contract, written once against the trait so that every
//! implementation (memory today, a shared store later) runs the same suite.

use std::time::{Duration, Instant};

use protocol::control::{Heartbeat, RelayLoad};
use protocol::{NodeId, Region, RoomId};
use signaling::relays::registry::{MemoryRegistry, NodeRecord, NodeRegistry};

fn node(s: &str) -> NodeId {
    NodeId::new(s).unwrap()
}
fn room(s: &str) -> RoomId {
    RoomId::new(s).unwrap()
}
fn record(id: &str, at: Instant) -> NodeRecord {
    NodeRecord::new(
        node(id),
        Region::new("eu").unwrap(),
        vec!["127.0.0.1:1".into()],
        10,
        at,
    )
}

/// The contract every registry keeps.
fn contract(reg: &dyn NodeRegistry) {
    let t0 = Instant::now();
    assert!(reg.nodes().is_empty());
    reg.upsert(record("b", t0));
    reg.upsert(record("a", t0));
    let ids: Vec<NodeId> = reg.nodes().into_iter().map(|r| r.node).collect();
    assert_eq!(ids, [node("a"), node("b")], "nodes come in id order");

    // Placements count as reserved load until a heartbeat shows them as rooms.
    reg.set_placement(&room("c-2"), &node("a"));
    reg.set_placement(&room("c-1"), &node("a"));
    reg.set_placement(&room("c-1"), &node("a"));
    assert_eq!(
        reg.get(&node("a")).unwrap().reserved,
        2,
        "re-placing on the same node is no new load"
    );
    assert_eq!(reg.calls_on(&node("a")), [room("c-1"), room("c-2")]);
    let beat = Heartbeat {
        load: RelayLoad {
            participants: 4,
            rooms: 1,
            ..RelayLoad::default()
        },
        draining: true,
    };
    let t1 = t0 + Duration::from_secs(1);
    assert!(reg.heartbeat(&node("a"), &beat, t1));
    assert!(
        !reg.heartbeat(&node("zz"), &beat, t1),
        "unknown nodes are not created by beats"
    );
    let a = reg.get(&node("a")).unwrap();
    assert_eq!(
        (a.reserved, a.load.participants, a.draining, a.last_beat),
        (1, 4, true, t1),
        "a beat showing one of two placed calls keeps the other reserved"
    );
    let both = Heartbeat {
        load: RelayLoad {
            participants: 4,
            rooms: 2,
            ..RelayLoad::default()
        },
        draining: true,
    };
    assert!(reg.heartbeat(&node("a"), &both, t1));
    assert_eq!(reg.get(&node("a")).unwrap().reserved, 0);

    // Moving a call updates both nodes' call lists.
    reg.set_placement(&room("c-1"), &node("b"));
    assert_eq!(reg.placement(&room("c-1")), Some(node("b")));
    assert_eq!(reg.calls_on(&node("a")), [room("c-2")]);
    assert_eq!(reg.calls_on(&node("b")), [room("c-1")]);
    assert_eq!(reg.get(&node("b")).unwrap().reserved, 1);

    // Removing a node keeps its placements (failover moves them).
    assert!(reg.remove(&node("a")).is_some());
    assert!(reg.remove(&node("a")).is_none());
    assert_eq!(reg.get(&node("a")), None);
    assert_eq!(reg.calls_on(&node("a")), [room("c-2")]);
    assert_eq!(reg.remove_placement(&room("c-2")), Some(node("a")));
    assert_eq!(reg.remove_placement(&room("c-2")), None);
    assert!(reg.calls_on(&node("a")).is_empty());
    assert_eq!(reg.placement(&room("c-2")), None);

    // Re-registering replaces the record.
    let mut fresh = record("b", t1);
    fresh.capacity = 99;
    reg.upsert(fresh);
    assert_eq!(reg.get(&node("b")).unwrap().capacity, 99);
    assert_eq!(reg.calls_on(&node("b")), [room("c-1")]);
}

#[test]
fn the_memory_registry_keeps_the_contract() {
    contract(&MemoryRegistry::new());
}

#[test]
fn the_redis_registry_keeps_the_contract() {
    use signaling::store::RedisHandle;
    use signaling::store::redis_server::RedisServer;
    use signaling::store::registry::RedisRegistry;

    let server = RedisServer::start().expect("a private redis-server");
    let reg = RedisRegistry::new(RedisHandle::new(&server.url()).expect("url"));
    contract(&reg);
    assert_eq!(reg.errors(), 0, "no Redis operation failed along the way");
}

#[test]
fn two_nodes_share_one_redis_registry() {
    use signaling::store::RedisHandle;
    use signaling::store::redis_server::RedisServer;
    use signaling::store::registry::RedisRegistry;

    let server = RedisServer::start().expect("a private redis-server");
    let node_a = RedisRegistry::new(RedisHandle::new(&server.url()).expect("url"));
    let node_b = RedisRegistry::new(RedisHandle::new(&server.url()).expect("url"));
    let t0 = Instant::now();
    node_a.upsert(record("r-1", t0));
    node_a.set_placement(&room("c-1"), &node("r-1"));
    let seen = node_b
        .get(&node("r-1"))
        .expect("node B sees node A's relay");
    // Each node pins its own Instant to wall time: they agree to well
    // within a millisecond (across machines: as well as NTP keeps them).
    let skew = seen
        .last_beat
        .max(t0)
        .duration_since(seen.last_beat.min(t0));
    assert!(skew < Duration::from_millis(1), "{skew:?}");
    assert_eq!(node_b.placement(&room("c-1")), Some(node("r-1")));
    assert_eq!(node_b.remove_placement(&room("c-1")), Some(node("r-1")));
    assert_eq!(node_a.placement(&room("c-1")), None);
}

#[test]
fn the_redis_registry_survives_a_redis_restart() {
    use signaling::store::RedisHandle;
    use signaling::store::redis_server::RedisServer;
    use signaling::store::registry::RedisRegistry;

    let mut server = RedisServer::start().expect("a private redis-server");
    let reg = RedisRegistry::new(RedisHandle::new(&server.url()).expect("url"));
    let t0 = Instant::now();
    reg.upsert(record("r-1", t0));
    reg.set_placement(&room("c-1"), &node("r-1"));
    reg.set_placement(&room("c-2"), &node("r-1"));
    assert_eq!(reg.remove_placement(&room("c-2")), Some(node("r-1")));
    server.kill();
    // Outage: answers as empty, counts the errors, does not panic.
    assert_eq!(reg.get(&node("r-1")), None);
    assert!(reg.nodes().is_empty());
    assert!(reg.errors() >= 2);
    // A restart on the same address, as production sees it.
    let addr = server.addr();
    drop(server);
    let again = RedisServer::start_on(addr.port()).expect("redis-server again on its port");
    // The restarted Redis is empty (nothing on disk). The relay's next beat
    // finds it unknown: this node writes its record and placements again.
    assert!(reg.nodes().is_empty());
    let beat = Heartbeat {
        load: RelayLoad {
            participants: 2,
            rooms: 1,
            ..RelayLoad::default()
        },
        draining: false,
    };
    let t1 = t0 + Duration::from_secs(1);
    assert!(reg.heartbeat(&node("r-1"), &beat, t1), "re-announced");
    let r = reg.get(&node("r-1")).expect("the record is back");
    assert_eq!((r.load.participants, r.last_beat, r.reserved), (2, t1, 0));
    assert_eq!(reg.placement(&room("c-1")), Some(node("r-1")));
    assert_eq!(
        reg.calls_on(&node("r-1")),
        [room("c-1")],
        "not the removed c-2"
    );
    // A relay this node never wrote stays unknown.
    assert!(!reg.heartbeat(&node("zz"), &beat, t1));
    drop(again);
}

#[test]
fn a_hung_redis_costs_one_timeout_then_fails_fast() {
    use signaling::store::RedisHandle;
    use signaling::store::redis_server::RedisServer;
    use signaling::store::registry::RedisRegistry;

    let server = RedisServer::start().expect("a private redis-server");
    let reg = RedisRegistry::new(RedisHandle::new(&server.url()).expect("url"));
    reg.upsert(record("r-1", Instant::now()));
    let signal = |sig: &str| {
        // The shell's builtin kill: no extra package needed.
        let ok = std::process::Command::new("sh")
            .args(["-c", &format!("kill {sig} {}", server.pid())])
            .status()
            .expect("sh")
            .success();
        assert!(ok, "kill {sig}");
    };
    signal("-STOP");
    let t = Instant::now();
    assert_eq!(reg.get(&node("r-1")), None, "no answer: as if absent");
    let first = t.elapsed();
    let t = Instant::now();
    assert!(reg.nodes().is_empty());
    let second = t.elapsed();
    signal("-CONT");
    assert!(
        first >= Duration::from_millis(900),
        "the command timeout: {first:?}"
    );
    assert!(
        second < Duration::from_millis(300),
        "the next step fails fast instead of waiting again: {second:?}"
    );
    assert_eq!(reg.errors(), 2);
}
