//! Several signaling URLs (one per signaling node): the relay dials them in
//! turn, registers with whichever answers, and when that node goes away it
//! comes back on another one, re-announcing the rooms it carries. Calls go
//! on while it has no control link.
//!
//! Real time and real loopback sockets, as in `control.rs`.

mod common;

use std::time::Duration;

use common::{FakeSignaling, PATIENCE, SECRET, client_offer, grant, node};
use protocol::RoomId;
use protocol::control::{RelayToSignaling, SignalingToRelay};
use relay::control::{Backoff, ControlOptions};
use relay::{Config, Relay};
use tokio::net::TcpListener;

/// A `ws://` URL on 127.0.0.1 where nothing listens (a dead signaling node),
/// and its address so a test can bring that node up later.
async fn dead_url() -> (String, String) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    drop(listener);
    (format!("ws://{addr}/control"), addr)
}

#[tokio::test]
async fn registers_with_the_live_url_and_fails_over_to_the_other_keeping_its_calls() {
    let (dead, dead_addr) = dead_url().await;
    let mut live = FakeSignaling::start().await;
    let mut config = Config::local(node(), SECRET);
    config.standalone = false;
    config.signaling = vec![dead.clone(), live.url.clone()];
    let options = ControlOptions {
        backoff: Backoff::new(Duration::from_millis(50), Duration::from_millis(400), 0.2),
        register_timeout: Duration::from_secs(10),
    };
    let relay = Relay::start_with(config, options).await.unwrap();

    // The first URL refuses; the next attempt reaches the live node.
    let mut conn = tokio::time::timeout(PATIENCE, live.accept())
        .await
        .expect("the relay reaches the live URL after the dead one");
    let reg = conn.register(200).await;
    assert!(reg.rooms.is_empty());

    // A call with two participants.
    for (request, who) in [(1, "alice"), (2, "bob")] {
        conn.send(&SignalingToRelay::Offer {
            request,
            grant: grant("room-a", who).sign(SECRET.as_bytes()),
            sdp: client_offer(),
        })
        .await;
        assert!(matches!(
            conn.recv_non_heartbeat().await,
            RelayToSignaling::Answer { request: r, .. } if r == request
        ));
    }

    // The live node dies (its listener and the connection go away).
    drop(live);
    drop(conn);
    // Without any link, the relay keeps its call.
    let load = relay.load();
    assert_eq!((load.rooms, load.participants), (1, 2));

    // The other node comes up where the dead URL points: the relay
    // registers there and re-announces the room it still carries.
    let mut other = FakeSignaling::start_on(&dead_addr).await;
    let mut conn = tokio::time::timeout(PATIENCE, other.accept())
        .await
        .expect("the relay fails over to the other URL");
    let reg = conn.register(200).await;
    assert_eq!(reg.rooms, vec![RoomId::new("room-a").unwrap()]);
    let load = relay.load();
    assert_eq!(
        (load.rooms, load.participants),
        (1, 2),
        "the call survived the signaling failover"
    );
    assert!(matches!(conn.recv().await, RelayToSignaling::Heartbeat(_)));
    relay.shutdown().await;
}
