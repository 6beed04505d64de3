//! Calls through real relays: patient → admit → call with media both ways;
//! placement by region hint and load; a draining relay gets no new calls.
//!
//! Opens WebRTC sockets: run inside the loopback namespace (scripts/test).
#![allow(clippy::large_futures)] // webrtc-rs futures

use tests::cluster::{ClusterSpec, RelaySpec, TestCluster};
use tests::directory::NORTH;
use tests::scenario::{consultation, receives_from};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn patient_admitted_into_a_call_with_media_both_ways() -> anyhow::Result<()> {
    let cluster = TestCluster::start().await?;
    let c = consultation(&cluster, "patient", NORTH.clinicians[0], None).await?;
    // No hint: signaling's own region (eu).
    assert!(c.relay.starts_with("r-eu-"), "{}", c.relay);
    let on_relay = cluster.participants_per_relay().await?;
    assert_eq!(on_relay.get(&c.relay), Some(&2), "{on_relay:?}");
    assert_eq!(on_relay.values().sum::<u64>(), 2, "{on_relay:?}");
    for client in [&c.patient, &c.clinician] {
        assert!(
            client.call_view().errors.is_empty(),
            "{:?}",
            client.call_view()
        );
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn placement_follows_the_region_hint_then_the_least_loaded_relay() -> anyhow::Result<()> {
    let cluster = TestCluster::start().await?;
    // The patient says it is in the us: its call goes there.
    let us = consultation(&cluster, "p-us", NORTH.clinicians[0], Some("us")).await?;
    assert!(us.relay.starts_with("r-us-"), "{}", us.relay);
    // Two calls without a hint spread over both eu relays.
    let first = consultation(&cluster, "p-eu-1", NORTH.clinicians[1], None).await?;
    let second = consultation(&cluster, "p-eu-2", NORTH.clinicians[0], None).await?;
    assert!(first.relay.starts_with("r-eu-"), "{}", first.relay);
    assert!(second.relay.starts_with("r-eu-"), "{}", second.relay);
    assert_ne!(
        first.relay, second.relay,
        "the least loaded relay takes the next call"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_draining_relay_gets_no_new_calls_and_keeps_its_own() -> anyhow::Result<()> {
    // r-eu-1 is big (capacity 1000), r-eu-2 small (10): once both carry a call,
    // r-eu-1 is the less loaded (2/1000 < 2/10).
    let mut big = RelaySpec::new("r-eu-1", "eu");
    big.capacity = 1000;
    let mut small = RelaySpec::new("r-eu-2", "eu");
    small.capacity = 10;
    let spec = ClusterSpec {
        relays: vec![big, small, RelaySpec::new("r-us-1", "us")],
        ..ClusterSpec::default()
    };
    let mut cluster = TestCluster::start_with(spec).await?;
    let a = consultation(&cluster, "p-a", NORTH.clinicians[0], None).await?;
    assert_eq!(a.relay, "r-eu-1");
    let b = consultation(&cluster, "p-b", NORTH.clinicians[1], None).await?;
    assert_eq!(b.relay, "r-eu-2", "an empty relay is the least loaded");

    cluster.drain_relay("r-eu-1").await?;
    let c = consultation(&cluster, "p-c", NORTH.clinicians[0], None).await?;
    assert_eq!(c.relay, "r-eu-2", "the draining relay takes no new call");
    // The calls already on the draining relay go on.
    let from = a.patient.media().len();
    a.patient
        .media()
        .wait_count(from, 20, std::time::Duration::from_secs(5), |p| {
            p.from == a.clinician.tag() && p.relay == "r-eu-1"
        })
        .await?;
    receives_from(&b.clinician, b.patient.tag()).await?;
    Ok(())
}
