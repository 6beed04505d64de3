//! The `EventBus` contract on both implementations: what node A publishes,
//! a subscriber on node B receives, in order, within a bound.

use std::time::Duration;

use protocol::{NodeId, ParticipantId, RoomId, TenantId};
use signaling::store::RedisHandle;
use signaling::store::bus::{
    BusMessage, ClusterEvent, EventBus, MemoryBus, Received, RedisBus, Subscription,
};
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

/// The next item within the bound.
async fn next(sub: &mut Subscription) -> Received {
    tokio::time::timeout(BOUND, sub.recv())
        .await
        .expect("an item within the bound")
        .expect("bus open")
}

async fn contract(node_a: &dyn EventBus, node_b: &dyn EventBus) {
    let mut on_b = node_b.subscribe().await.expect("subscribe on B");
    let mut on_a = node_a.subscribe().await.expect("subscribe on A");
    for n in 0..3 {
        node_a.publish(&arrived(n)).await.expect("publish on A");
    }
    for n in 0..3 {
        assert_eq!(
            next(&mut on_b).await,
            Received::Message(arrived(n)),
            "B receives in publication order"
        );
        // The publisher's own subscription sees it too (nodes skip by origin).
        assert_eq!(next(&mut on_a).await, Received::Message(arrived(n)));
    }
    // Only what is published after subscribing arrives.
    let mut late = node_b.subscribe().await.expect("subscribe again");
    node_a.publish(&arrived(9)).await.unwrap();
    assert_eq!(next(&mut late).await, Received::Message(arrived(9)));
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

#[tokio::test]
async fn a_redis_restart_gives_subscribers_a_gap_then_messages_again() {
    let mut server = RedisServer::start().expect("a private redis-server");
    let port = server.addr().port();
    let node_a = RedisBus::new(RedisHandle::new(&server.url()).unwrap());
    let node_b = RedisBus::new(RedisHandle::new(&server.url()).unwrap());
    let mut on_b = node_b.subscribe().await.unwrap();
    node_a.publish(&arrived(1)).await.unwrap();
    assert_eq!(next(&mut on_b).await, Received::Message(arrived(1)));

    server.kill();
    drop(server);
    let _again = RedisServer::start_on(port).expect("redis-server again on its port");
    // B subscribes again by itself and says that it may have missed events.
    let gap = tokio::time::timeout(Duration::from_secs(15), on_b.recv()).await;
    assert_eq!(gap.ok().flatten(), Some(Received::Gap));
    // A's publisher reconnects too (its first attempt may see the old socket die).
    if node_a.publish(&arrived(2)).await.is_err() {
        node_a
            .publish(&arrived(2))
            .await
            .expect("publish after reconnecting");
    }
    assert_eq!(next(&mut on_b).await, Received::Message(arrived(2)));
}
