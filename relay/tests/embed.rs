//! The relay embedded in-process (standalone, no signaling): bound ports,
//! the metrics listener, in-process offers and the drain lifecycle.

mod common;

use common::{PATIENCE, SECRET, get, grant, node};
use relay::{Config, Relay};

#[tokio::test]
async fn exposes_its_ports_and_metrics_and_readiness() {
    let mut config = Config::local(node(), SECRET);
    config.workers = Some(2);
    let relay = Relay::start(config).await.unwrap();
    let addrs = relay.udp_addrs().to_vec();
    assert_eq!(addrs.len(), 2);
    assert_ne!(addrs[0].port(), addrs[1].port());
    assert!(addrs.iter().all(|a| a.ip().is_loopback() && a.port() != 0));

    let (status, body) = get(relay.metrics_addr(), "/metrics").await;
    assert_eq!(status, 200);
    for line in [
        "anteroom_relay_participants{worker=\"0\"} 0",
        "anteroom_relay_participants{worker=\"1\"} 0",
        "anteroom_relay_draining 0",
        "anteroom_relay_drops_total{worker=\"1\",reason=\"unknown_source\"}",
        "anteroom_relay_worker_loop_seconds_bucket{worker=\"0\",le=\"+Inf\"}",
        "anteroom_relay_keyframe_requests_total{worker=\"0\"} 0",
        "anteroom_relay_bytes_total{worker=\"0\",direction=\"out\"}",
    ] {
        assert!(body.contains(line), "missing {line:?} in\n{body}");
    }
    assert_eq!(get(relay.metrics_addr(), "/healthz").await.0, 200);
    assert_eq!(get(relay.metrics_addr(), "/readyz").await.0, 200);
    assert_eq!(get(relay.metrics_addr(), "/nope").await.0, 404);

    relay.drain();
    let (status, body) = get(relay.metrics_addr(), "/readyz").await;
    assert_eq!((status, body.trim()), (503, "draining"));
    assert!(
        get(relay.metrics_addr(), "/metrics")
            .await
            .1
            .contains("anteroom_relay_draining 1")
    );
    relay.shutdown().await;
}

#[tokio::test]
#[allow(clippy::disallowed_types)] // the test's own client socket
async fn garbage_datagrams_are_counted_as_drops_in_metrics() {
    let relay = Relay::start(Config::local(node(), SECRET)).await.unwrap();
    let target = relay.udp_addrs()[0];
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    for i in 0..50u8 {
        socket.send_to(&[i; 64], target).await.unwrap();
    }
    socket.send_to(&[0x80; 3000], target).await.unwrap();
    // The worker publishes its counters a few times a second: await them.
    let stats = tokio::time::timeout(PATIENCE, relay.stats_when(|s| s.packets_in >= 51))
        .await
        .expect("the relay counted the datagrams");
    assert_eq!(stats.packets_in, 51);
    assert_eq!(stats.packets_out, 0, "garbage gets no reply");
    assert_eq!(stats.dropped(relay::sfu::DropReason::Oversized), 1);
    let (_, body) = get(relay.metrics_addr(), "/metrics").await;
    assert!(
        body.contains("anteroom_relay_packets_in_total{worker=\"0\"} 51"),
        "{body}"
    );
    relay.shutdown().await;
}

#[tokio::test]
async fn in_process_offers_check_the_grant() {
    let relay = Relay::start(Config::local(node(), SECRET)).await.unwrap();
    let token = grant("room-1", "p-1").sign(b"not-the-relay-secret");
    let err = relay.offer(token, "v=0\r\n").await.unwrap_err();
    assert!(err.to_string().contains("signature"), "{err}");
    relay.drain();
    let token = grant("room-2", "p-1").sign(SECRET.as_bytes());
    let err = relay.offer(token, "v=0\r\n").await.unwrap_err();
    assert!(err.to_string().contains("draining"), "{err}");
    relay.shutdown().await;
}

#[tokio::test]
async fn run_returns_after_drain_when_no_call_is_left() {
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let run = tokio::spawn(relay::run(Config::local(node(), SECRET), async {
        let _ = rx.await;
    }));
    tx.send(()).unwrap();
    tokio::time::timeout(PATIENCE, run)
        .await
        .expect("run ends once drained")
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn refuses_to_start_without_an_advertised_address() {
    let mut config = Config::local(node(), SECRET);
    config.advertise = None;
    let err = Relay::start(config).await.unwrap_err();
    assert!(err.to_string().contains("--advertise"), "{err}");
}
