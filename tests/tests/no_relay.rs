//! No relay at all: clients are told so (`call_waiting_for_relay`), the waiting
//! room keeps working (patients join, clinicians admit), and every call resumes
//! with media once a relay registers.
//!
//! Opens WebRTC sockets: run inside the loopback namespace (scripts/test).
#![allow(clippy::large_futures)] // webrtc-rs futures

use protocol::client::SignalingToClient;
use tests::client::{PATIENCE, TestClient};
use tests::cluster::{ClusterSpec, RelaySpec, TestCluster};
use tests::directory::NORTH;
use tests::scenario::{consultation, two_way_media};

fn waiting(m: &SignalingToClient) -> Option<()> {
    matches!(m, SignalingToClient::CallWaitingForRelay { .. }).then_some(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_wait_for_a_relay_and_resume_when_one_registers() -> anyhow::Result<()> {
    let spec = ClusterSpec {
        relays: vec![RelaySpec::new("r-eu-1", "eu")],
        ..ClusterSpec::default()
    };
    let mut cluster = TestCluster::start_with(spec).await?;
    let c = consultation(&cluster, "patient", NORTH.clinicians[0], None).await?;
    let marks = (c.patient.inbox_len(), c.clinician.inbox_len());
    cluster.kill_relay(&c.relay)?;
    c.patient.wait_from(marks.0, PATIENCE, waiting).await?;
    c.clinician.wait_from(marks.1, PATIENCE, waiting).await?;

    // The waiting room still works: a new patient waits and is admitted; the new
    // call waits for a relay too.
    let other = TestClient::clinician(&cluster, NORTH.clinicians[1], None).await?;
    let late = TestClient::patient(&cluster, "late", NORTH.room, None).await?;
    let id = other.wait_patient("late").await?;
    other.admit(&id).await?;
    late.wait_for(PATIENCE, waiting).await?;

    // A relay in another region registers: both calls come back there.
    cluster.start_relay(RelaySpec::new("r-us-1", "us")).await?;
    two_way_media(&c.patient, &c.clinician).await?;
    two_way_media(&late, &other).await?;
    for client in [&c.patient, &c.clinician, &late, &other] {
        assert_eq!(
            client.call_view().relay.as_deref(),
            Some("r-us-1"),
            "{}",
            client.tag()
        );
    }
    Ok(())
}
