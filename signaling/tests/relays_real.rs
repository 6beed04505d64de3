//! Signaling with real relays (the relay crate, in-process) dialing its
//! `/control`: they register, answer a WHIP offer made by a str0m peer (no
//! media flows: the peer never connects), and when one stops, its call moves
//! to the other. Real-media failover is tested end to end in `tests/`.

mod relays_support;
mod support;

use std::time::Duration;

use protocol::GrantRole;
use relays_support::{GUARD, SECRET, Server, header, next_event, node, room};
use signaling::relays::RelayEvent;
use support::http_raw as http;

/// A relay in `region` registering with `server`.
async fn relay(server: &Server, id: &str, region: &str) -> relay::RelayHandle {
    let mut config = relay::Config::local(node(id), SECRET);
    config.standalone = false;
    config.signaling = vec![format!("ws://{}/control", server.addr)];
    config.region = protocol::Region::new(region).unwrap();
    relay::Relay::start(config).await.expect("relay starts")
}

/// An SDP offer (a data channel only) from a str0m peer that never connects.
fn offer() -> String {
    #[allow(clippy::disallowed_methods)]
    let now = std::time::Instant::now();
    let mut rtc = str0m::RtcConfig::new().build(now);
    let mut api = rtc.sdp_api();
    api.add_channel("anteroom".into());
    let (offer, _pending) = api.apply().expect("an offer");
    offer.to_sdp_string()
}

#[tokio::test]
async fn real_relays_register_answer_whip_and_take_over_a_stopped_sibling_s_call() {
    let server = Server::start().await;
    let mut events = server.pool.subscribe();
    let first = relay(&server, "eu-a", "eu").await;
    assert_eq!(
        next_event(&mut events).await,
        RelayEvent::RelayUp { node: node("eu-a") }
    );
    let info = server.pool.snapshot();
    assert_eq!(info[0].advertise, [first.udp_addrs()[0].to_string()]);

    let call = room("c-real");
    let token = server
        .pool
        .ingest_token(&call, GrantRole::Publisher, Duration::from_secs(60));
    let auth = format!("Bearer {token}");
    let headers = [
        ("Authorization", auth.as_str()),
        ("Content-Type", "application/sdp"),
    ];
    let (status, head, answer) =
        http(server.addr, "POST", "/whip/c-real", &headers, &offer()).await;
    assert_eq!(status, 201, "{head}\n{answer}");
    assert!(answer.contains("a=ice-lite"), "{answer}");
    assert!(
        header(&head, "location")
            .unwrap()
            .starts_with("/whip/c-real/")
    );
    assert_eq!(server.pool.placement_of(&call), Some(node("eu-a")));

    let second = relay(&server, "eu-b", "eu").await;
    assert_eq!(
        next_event(&mut events).await,
        RelayEvent::RelayUp { node: node("eu-b") }
    );
    first.shutdown().await;
    assert_eq!(
        next_event(&mut events).await,
        RelayEvent::CallMoved {
            call: call.clone(),
            from: node("eu-a"),
            to: node("eu-b")
        }
    );
    // A new publisher is placed on the call's new relay.
    let (status, _, answer) = http(server.addr, "POST", "/whip/c-real", &headers, &offer()).await;
    assert_eq!(status, 201, "{answer}");
    let on_second = tokio::time::timeout(GUARD, second.stats_when(|s| s.participants == 1));
    assert!(on_second.await.is_ok(), "the new publisher joined on eu-b");
    second.shutdown().await;
    server.stop().await;
}
