//! Measurement (issue 4 "Target"): the gap from `kill -9` of the relay carrying a
//! call to the first media packet received through the new relay, over many kills.
//! Each round kills the call's relay, measures both directions, then restarts the
//! killed relay so the next round again has a same-region sibling.
//!
//! Ignored by default (it takes ~30 s); run it inside the loopback namespace:
//!
//! ```text
//! cargo build --workspace --all-targets
//! unshare --net -- sh -c 'ip link set lo up && \
//!   FAILOVER_KILLS=20 cargo test -p tests --offline --test failover_gaps -- --ignored --nocapture'
//! ```
#![allow(clippy::large_futures)] // webrtc-rs futures

use std::time::Duration;

use tests::cluster::{RelaySpec, TestCluster};
use tests::directory::NORTH;
use tests::scenario::{consultation, kill_and_measure};
use tests::stats::{percentile, summary};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measurement: ~30 s; run with --ignored --nocapture"]
async fn failover_gaps() -> anyhow::Result<()> {
    let kills: usize = std::env::var("FAILOVER_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let mut cluster = TestCluster::start().await?;
    let c = consultation(&cluster, "patient", NORTH.clinicians[0], None).await?;
    let pairs = [
        (&c.patient, c.clinician.tag()),
        (&c.clinician, c.patient.tag()),
    ];
    let mut relay = c.relay.clone();
    let (mut per_kill, mut all) = (Vec::new(), Vec::new());
    // Per phase, at the patient: kill → relay_moved handled → offer sent → answer
    // applied → ICE+DTLS connected → first packet from the clinician.
    let phases = ["placed", "offer_sent", "answered", "connected"];
    let mut spans: Vec<Vec<Duration>> = vec![Vec::new(); phases.len() + 1];
    for round in 1..=kills {
        let kill = std::time::Instant::now();
        let (gaps, moved_to) = kill_and_measure(&mut cluster, &relay, &pairs).await?;
        let worst = gaps.iter().max().copied().unwrap_or_default();
        println!(
            "kill {round:2}: {relay} -> {moved_to}: patient {:4} ms, clinician {:4} ms",
            gaps[0].as_millis(),
            gaps[1].as_millis(),
        );
        let generation = c.patient.call_view().generation.unwrap_or(0);
        let log = c.patient.media();
        let mut last = kill;
        let mut steps = Vec::new();
        for what in phases {
            steps.push(log.mark_at(generation, what));
        }
        if steps.iter().all(Option::is_some) {
            for (i, at) in steps.into_iter().flatten().enumerate() {
                spans[i].push(at.saturating_duration_since(last));
                last = at;
            }
            spans[phases.len()].push((kill + gaps[0]).saturating_duration_since(last));
        }
        per_kill.push(worst);
        all.extend(gaps);
        let spec = RelaySpec::new(&relay, &relay[2..4]);
        cluster.start_relay(spec).await?;
        relay = moved_to;
    }
    println!(
        "failover gap, worse direction per kill: {}",
        summary(&per_kill)
    );
    println!("failover gap, every direction:          {}", summary(&all));
    println!("patient's phases (each from the previous step):");
    for (i, name) in phases.iter().chain(["first packet"].iter()).enumerate() {
        println!("  {name:>12}: {}", summary(&spans[i]));
    }
    let p50 = percentile(&per_kill, 0.5).unwrap_or_default();
    assert!(
        p50 < Duration::from_secs(15),
        "media must resume (generous bound); p50 {p50:?}"
    );
    Ok(())
}
