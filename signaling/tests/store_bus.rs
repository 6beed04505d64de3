//! The `EventBus` contract on both implementations: what node A publishes,
//! a subscriber on node B receives, in order, within a bound.

use std::time::Duration;

use protocol::{NodeId, ParticipantId, RoomId, TenantId};
use signaling::store::RedisHandle;
use signaling::store::bus::{BusMessage, ClusterEvent, EventBus, MemoryBus, RedisBus};
use signaling::store::redis_server::RedisServer;

/// How long a published event may take to arrive on another node.
const BOUND: Duration = Duration::from_secs(2);

fn arrived(n: u32) -> BusMessage {
    BusMessage {
        origin: NodeId::new("sig-a").unwrap(),
        event: ClusterEvent::PatientArrived {
            tenant: TenantId::new("acme").unwrap(),
            room: RoomId::new("gp").unwrap(),
            participant: ParticipantId::new(format!("p-{n}")).unwrap(),
        },
    }
}

async fn contract(node_a: &dyn EventBus, node_b: &dyn EventBus) {
    let mut on_b = node_b.subscribe().await.expect("subscribe on B");
    let mut on_a = node_a.subscribe().await.expect("subscribe on A");
    for n in 0..3 {
        node_a.publish(&arrived(n)).await.expect("publish on A");
    }
    for n in 0..3 {
        let got = tokio::time::timeout(BOUND, on_b.recv())
            .await
            .expect("B receives within the bound")
            .expect("bus open");
        assert_eq!(got, arrived(n), "in publication order");
        // The publisher's own subscription sees it too (nodes skip by origin).
        let own = tokio::time::timeout(BOUND, on_a.recv()).await.unwrap();
        assert_eq!(own.map(|m| m.origin.to_string()).as_deref(), Some("sig-a"));
    }
    // Only what is published after subscribing arrives.
    let mut late = node_b.subscribe().await.expect("subscribe again");
    node_a.publish(&arrived(9)).await.unwrap();
    let got = tokio::time::timeout(BOUND, late.recv()).await.unwrap();
    assert_eq!(got, Some(arrived(9)));
}

#[tokio::test]
async fn the_memory_bus_keeps_the_contract() {
    let bus = MemoryBus::new();
    contract(&bus, &bus).await;
}

#[tokio::test]
async fn the_redis_bus_keeps_the_contract_across_two_nodes() {
    let server = RedisServer::start().expect("a private redis-server");
    let node_a = RedisBus::new(RedisHandle::new(&server.url()).unwrap());
    let node_b = RedisBus::new(RedisHandle::new(&server.url()).unwrap());
    contract(&node_a, &node_b).await;
}

#[tokio::test]
async fn an_unreachable_redis_is_a_clear_error() {
    let server = RedisServer::start().expect("a private redis-server");
    let url = server.url();
    drop(server);
    let handle = RedisHandle::new(&url).unwrap();
    let err = handle.check().await.expect_err("nothing listens there");
    let text = err.to_string();
    assert!(text.contains("cannot reach the Redis"), "{text}");
    assert!(text.contains("--redis-url"), "{text}");
    let bus = RedisBus::new(handle);
    assert!(bus.subscribe().await.is_err());
}
