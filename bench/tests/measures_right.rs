//! Issue 6's "measures right" checks: real str0m peers over UDP on 127.0.0.1, through
//! the impairment shim, and the harness must report what the shim did.
//!
//! These open WebRTC sockets: run them inside the loopback-only namespace
//! (`unshare --net -- sh -c 'ip link set lo up && cargo test -p bench --offline'`).

use std::time::Duration;

use bench::media::{AudioShape, VideoShape};
use bench::scenario::loopback::{LoopbackConfig, run};
use bench::shim::ShimConfig;

/// Audio + 2 Mbit/s video: ~240 packets/s per pair.
fn config(pairs: u32, secs: u64, impairment: Option<ShimConfig>) -> LoopbackConfig {
    LoopbackConfig {
        publishers: pairs,
        subscribers: 1,
        duration: Duration::from_secs(secs),
        audio: Some(AudioShape::default()),
        video: Some(VideoShape {
            bitrate_bps: 2_000_000,
            ..VideoShape::default()
        }),
        impairment,
        ..LoopbackConfig::default()
    }
}

#[tokio::test]
async fn clean_loopback_delivers_everything_quickly() {
    let r = run(&config(2, 2, None), false).await.unwrap();
    assert_eq!(
        (r.peers.added, r.peers.connected, r.peers.failed),
        (4, 4, 0)
    );
    assert_eq!(r.streams.streams, 4, "2 subscribers × (audio + video)");
    assert!(r.streams.expected > 500, "{:?}", r.streams);
    assert_eq!(r.streams.lost, 0, "{:?}", r.streams);
    assert_eq!(
        r.streams.delivered, r.peers.sent_packets,
        "every sent packet arrived once"
    );
    assert!(r.latency.p50_ms < 20.0, "{:?}", r.latency);
    assert_eq!(r.join.count, 2);
    assert!(r.harness.cpu_us_per_packet > 0.0);
}

#[tokio::test]
async fn injected_loss_is_reported() {
    let shim = ShimConfig {
        loss: 0.05,
        seed: 7,
        ..ShimConfig::default()
    };
    let r = run(&config(4, 3, Some(shim)), false).await.unwrap();
    assert_eq!(r.peers.connected, 8);
    assert!(r.streams.expected > 2500, "enough packets: {:?}", r.streams);
    assert!(
        (4.0..=6.0).contains(&r.loss_pct),
        "5 % injected, {:.2} % measured ({:?})",
        r.loss_pct,
        r.streams
    );
    // The shim drops nothing but RTP, so nothing else explains the loss.
    assert_eq!(r.streams.duplicates, 0);
}

#[tokio::test]
async fn added_delay_is_reported_as_latency() {
    let shim = ShimConfig {
        delay: Duration::from_millis(40),
        ..ShimConfig::default()
    };
    let r = run(&config(1, 2, Some(shim)), false).await.unwrap();
    assert_eq!(r.peers.connected, 2);
    assert_eq!(r.streams.lost, 0);
    assert!(
        (35.0..=60.0).contains(&r.latency.p50_ms),
        "40 ms added, p50 {:.2} ms",
        r.latency.p50_ms
    );
    assert!(r.latency.max_ms >= 40.0, "{:?}", r.latency);
    let seconds_with_latency = r.series.iter().filter(|p| p.latency_p50_ms >= 35.0).count();
    assert!(
        seconds_with_latency >= 2,
        "the series shows it too: {:?}",
        r.series
    );
}

#[tokio::test]
async fn simulcast_layers_each_arrive_as_a_stream() {
    let mut c = config(1, 2, None);
    c.video = Some(VideoShape {
        simulcast: true,
        ..VideoShape::default()
    });
    let r = run(&c, false).await.unwrap();
    assert_eq!(r.peers.connected, 2);
    assert_eq!(r.streams.streams, 4, "audio + q + h + f");
    assert_eq!(r.streams.lost, 0);
}
