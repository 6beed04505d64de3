//! Failover with real processes: kill -9 the relay carrying a call and media
//! resumes on the same-region sibling; kill that one too and it resumes in the
//! other region. Prints the gap from each kill to the first packet received
//! through the new relay (asserted only against a generous bound).
//!
//! Opens WebRTC sockets: run inside the loopback namespace (scripts/test).
#![allow(clippy::large_futures)] // webrtc-rs futures

use tests::cluster::TestCluster;
use tests::directory::NORTH;
use tests::scenario::{
    FAILOVER_BOUND, consultation, kill_and_measure, measure_resume, two_way_media,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_relay_moves_the_call_to_its_sibling_then_to_the_other_region() -> anyhow::Result<()>
{
    let mut cluster = TestCluster::start().await?;
    let c = consultation(&cluster, "patient", NORTH.clinicians[0], None).await?;
    assert!(c.relay.starts_with("r-eu-"), "{}", c.relay);
    let pairs = [
        (&c.patient, c.clinician.tag()),
        (&c.clinician, c.patient.tag()),
    ];

    let (gaps, sibling) = kill_and_measure(&mut cluster, &c.relay, &pairs).await?;
    println!(
        "kill -9 {} -> {sibling}: gaps patient {:?}, clinician {:?}",
        c.relay, gaps[0], gaps[1]
    );
    assert!(sibling.starts_with("r-eu-"), "same region first: {sibling}");
    assert_ne!(sibling, c.relay);
    two_way_media(&c.patient, &c.clinician).await?;

    let (gaps, other) = kill_and_measure(&mut cluster, &sibling, &pairs).await?;
    println!(
        "kill -9 {sibling} -> {other}: gaps patient {:?}, clinician {:?}",
        gaps[0], gaps[1]
    );
    assert!(other.starts_with("r-us-"), "then the next region: {other}");
    two_way_media(&c.patient, &c.clinician).await?;
    for client in [&c.patient, &c.clinician] {
        let view = client.call_view();
        assert!(
            view.errors.is_empty(),
            "{}: {:?}",
            client.tag(),
            view.errors
        );
        let relays: Vec<&str> = view.placements.iter().map(|(_, r)| r.as_str()).collect();
        assert_eq!(
            relays,
            [c.relay.as_str(), &sibling, &other],
            "{}",
            client.tag()
        );
    }
    Ok(())
}

/// A relay that goes silent (SIGSTOP: socket open, no heartbeats) is noticed as
/// stale (3 missed beats of 1 s) and its call moves to the sibling.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_relay_is_noticed_stale_and_its_call_moves() -> anyhow::Result<()> {
    let mut cluster = TestCluster::start().await?;
    let c = consultation(&cluster, "patient", NORTH.clinicians[0], None).await?;
    let pairs = [
        (&c.patient, c.clinician.tag()),
        (&c.clinician, c.patient.tag()),
    ];
    let frozen = cluster.freeze_relay(&c.relay)?;
    let (gaps, sibling) = measure_resume(&c.relay, frozen, FAILOVER_BOUND, &pairs).await?;
    println!(
        "SIGSTOP {} -> {sibling}: gaps patient {:?}, clinician {:?}",
        c.relay, gaps[0], gaps[1]
    );
    assert!(sibling.starts_with("r-eu-"), "{sibling}");
    assert_ne!(sibling, c.relay);
    two_way_media(&c.patient, &c.clinician).await?;
    Ok(())
}
