//! The node mailbox on both buses: what node A sends to node B arrives at
//! B only, in order, with its sender; frames survive the trip unchanged;
//! a Redis restart yields `InboxGap`, then messages flow again.

use std::sync::Arc;
use std::time::Duration;

use protocol::{NodeId, Sensitive};
use signaling::cluster::{Mailbox, NodeMessage, PipeKind};
use signaling::store::RedisHandle;
use signaling::store::bus::{EventBus, MemoryBus, RedisBus};
use signaling::store::redis_server::RedisServer;
use tokio::sync::mpsc;

const BOUND: Duration = Duration::from_secs(2);

fn n(s: &str) -> NodeId {
    NodeId::new(s).unwrap()
}

fn frame(i: u64) -> NodeMessage {
    NodeMessage::Frame {
        pipe: i,
        text: Sensitive::new(format!(r#"{{"type":"hello","name":"Jane Doe {i}"}}"#)),
    }
}

async fn next(rx: &mut mpsc::Receiver<(NodeId, NodeMessage)>) -> (NodeId, NodeMessage) {
    tokio::time::timeout(BOUND, rx.recv())
        .await
        .expect("a message within the bound")
        .expect("mailbox open")
}

async fn contract(bus_a: Arc<dyn EventBus>, bus_b: Arc<dyn EventBus>) {
    let a = Mailbox::new(bus_a.clone(), n("sig-a"));
    let b = Mailbox::new(bus_b, n("sig-b"));
    let c = Mailbox::new(bus_a, n("sig-c"));
    let mut on_b = b.subscribe().await.expect("subscribe B");
    let mut on_c = c.subscribe().await.expect("subscribe C");
    let mut on_a = a.subscribe().await.expect("subscribe A");

    let open = NodeMessage::PipeOpen {
        pipe: 1,
        kind: PipeKind::Relay,
        cookie_session: Some(Sensitive::new("tok".into())),
        origin_ok: true,
    };
    a.send(b.node(), &open).await.unwrap();
    for i in 0..50 {
        a.send(b.node(), &frame(i)).await.unwrap();
    }
    c.send(b.node(), &NodeMessage::PipeOpened { pipe: 9 })
        .await
        .unwrap();
    b.send(
        a.node(),
        &NodeMessage::PipeClose {
            pipe: 1,
            code: 1012,
        },
    )
    .await
    .unwrap();

    assert_eq!(next(&mut on_b).await, (n("sig-a"), open));
    let mut from_a = Vec::new();
    let mut from_c = Vec::new();
    while from_a.len() < 50 || from_c.is_empty() {
        let (from, msg) = next(&mut on_b).await;
        if from == n("sig-a") {
            from_a.push(msg);
        } else {
            from_c.push((from, msg));
        }
    }
    let expected: Vec<NodeMessage> = (0..50).map(frame).collect();
    assert_eq!(from_a, expected, "in order per sender, unchanged");
    assert_eq!(from_c, [(n("sig-c"), NodeMessage::PipeOpened { pipe: 9 })]);
    assert_eq!(
        next(&mut on_a).await,
        (
            n("sig-b"),
            NodeMessage::PipeClose {
                pipe: 1,
                code: 1012
            }
        )
    );
    // Nothing for C: messages go to their node only.
    assert!(
        tokio::time::timeout(Duration::from_millis(200), on_c.recv())
            .await
            .is_err()
    );
    // Sending to a node nobody listens on is not an error.
    a.send(&n("sig-nobody"), &frame(0)).await.unwrap();
}

#[tokio::test]
async fn the_memory_mailbox_delivers_in_order_to_its_node_only() {
    let bus: Arc<dyn EventBus> = Arc::new(MemoryBus::new());
    contract(bus.clone(), bus).await;
}

#[tokio::test]
async fn the_redis_mailbox_delivers_in_order_to_its_node_only() {
    let server = RedisServer::start().expect("a private redis-server");
    let bus_a: Arc<dyn EventBus> =
        Arc::new(RedisBus::new(RedisHandle::new(&server.url()).unwrap()));
    let bus_b: Arc<dyn EventBus> =
        Arc::new(RedisBus::new(RedisHandle::new(&server.url()).unwrap()));
    contract(bus_a, bus_b).await;
}

#[tokio::test]
async fn a_redis_restart_gives_the_mailbox_a_gap_then_messages_again() {
    let mut server = RedisServer::start().expect("a private redis-server");
    let port = server.addr().port();
    let url = server.url();
    let a = Mailbox::new(
        Arc::new(RedisBus::new(RedisHandle::new(&url).unwrap())),
        n("sig-a"),
    );
    let b = Mailbox::new(
        Arc::new(RedisBus::new(RedisHandle::new(&url).unwrap())),
        n("sig-b"),
    );
    let mut on_b = b.subscribe().await.unwrap();
    a.send(b.node(), &frame(1)).await.unwrap();
    assert_eq!(next(&mut on_b).await, (n("sig-a"), frame(1)));

    server.kill();
    drop(server);
    let _again = RedisServer::start_on(port).expect("redis-server again on its port");
    let gap = tokio::time::timeout(Duration::from_secs(15), on_b.recv()).await;
    assert_eq!(
        gap.ok().flatten(),
        Some((n("sig-b"), NodeMessage::InboxGap)),
        "the mailbox says that messages may be lost"
    );
    if a.send(b.node(), &frame(2)).await.is_err() {
        a.send(b.node(), &frame(2))
            .await
            .expect("send after reconnecting");
    }
    assert_eq!(next(&mut on_b).await, (n("sig-a"), frame(2)));
}
