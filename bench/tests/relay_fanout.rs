//! `bench fanout` against a real relay (the `relay` crate, started in this process and
//! dialing bench's control endpoint over a real WebSocket; media over real UDP): a
//! clean run delivers every packet, and loss/delay injected between the publisher and
//! the relay is what the subscribers report.
//!
//! These open WebRTC sockets: run them inside the loopback-only namespace
//! (`unshare --net -- sh -c 'ip link set lo up && cargo test -p bench --offline'`).

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::time::Duration;

use bench::media::{AudioShape, VideoShape};
use bench::report::Report;
use bench::scenario::sfu::{RelaySetup, SfuConfig, run};
use bench::shim::ShimConfig;
use bench::stats::FreezeThresholds;
use protocol::NodeId;

const SECRET: &str = "bench-test-secret-0123456789";

/// A free loopback port for bench's control endpoint.
fn free_addr() -> SocketAddr {
    let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    l.local_addr().unwrap()
}

/// Runs a 1 × `subscribers` fanout for `secs` against an in-process relay.
async fn fanout(subscribers: u32, secs: u64, impairment: Option<ShimConfig>) -> Report {
    let control = free_addr();
    let mut config = relay::Config::local(NodeId::new("relay-under-test").unwrap(), SECRET);
    config.standalone = false;
    config.signaling = vec![format!("ws://{control}/control")];
    // The relay dials (and redials, with back-off) until bench listens.
    let relay = relay::Relay::start(config).await.unwrap();
    let bench = SfuConfig {
        scenario: "fanout",
        rooms: 1,
        publishers: 1,
        subscribers,
        publishers_subscribe: false,
        duration: Duration::from_secs(secs),
        audio: Some(AudioShape::default()),
        video: Some(VideoShape::default()),
        threads: 2,
        join_rate: 200,
        freeze: FreezeThresholds::default(),
        relay: RelaySetup::Attach {
            control,
            metrics: Some(relay.metrics_addr()),
            // In-process relay: the CPU read is the test process's (relay + harness).
            pid: Some(std::process::id()),
        },
        secret: SECRET.into(),
        allow_remote: false,
        impairment,
        ramp: None,
    };
    let report = run(&bench, false).await.unwrap();
    relay.shutdown().await;
    report
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fanout_through_a_real_relay_loses_nothing() {
    let r = fanout(3, 3, None).await;
    assert_eq!(
        (r.peers.added, r.peers.connected, r.peers.failed),
        (4, 4, 0),
        "{}",
        r.table()
    );
    assert_eq!(r.streams.streams, 6, "3 subscribers × (audio + video)");
    assert_eq!(r.streams.lost, 0, "{}", r.table());
    assert_eq!(r.streams.duplicates, 0);
    // Every subscriber got most of what the publisher sent: only what was sent before
    // its own negotiation finished (and video before the next keyframe) is missing.
    let sent = r.peers.sent_packets;
    assert!(
        r.streams.delivered * 10 >= sent * 3 * 6,
        "delivered {} of 3 × {sent} sent",
        r.streams.delivered
    );
    // Subscribers offer recvonly m-lines; the relay may fill them in its answer (WHEP
    // style) or send its own offer later: either way no relay offer went unanswered.
    let control = r.control.unwrap();
    assert_eq!(control.renegotiation_failures, 0);
    let relay = r.relay.expect("relay counters measured");
    assert!(
        relay.forwarded >= r.streams.delivered,
        "the relay forwarded {} but subscribers got {}",
        relay.forwarded,
        r.streams.delivered
    );
    assert!(r.join.count == 3 && r.join.p99_ms < 5_000.0, "{:?}", r.join);
    assert!(r.latency.p50_ms < 50.0, "{:?}", r.latency);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loss_and_delay_before_the_relay_are_reported_by_every_subscriber() {
    let shim = ShimConfig {
        loss: 0.05,
        delay: Duration::from_millis(40),
        seed: 11,
        ..ShimConfig::default()
    };
    let r = fanout(2, 4, Some(shim)).await;
    assert_eq!(r.peers.connected, 3, "{}", r.table());
    assert!(r.streams.expected > 1000, "enough packets: {:?}", r.streams);
    assert!(
        (3.5..=6.5).contains(&r.loss_pct),
        "5 % injected before the relay, {:.2} % measured ({:?})",
        r.loss_pct,
        r.streams
    );
    assert!(
        (35.0..=70.0).contains(&r.latency.p50_ms),
        "40 ms added, p50 {:.1} ms",
        r.latency.p50_ms
    );
    assert!(r.impairment.is_some());
}
