//! The test cluster itself: signaling and four relays in two regions start and
//! register; a killed relay is gone from its port and can come back; a drained
//! relay without calls exits.
//!
//! No WebRTC here, but run it with the others inside the loopback namespace.

use tests::cluster::{RelaySpec, TestCluster};
use tests::http;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_starts_registers_kills_and_drains_relays() -> anyhow::Result<()> {
    let mut cluster = TestCluster::start().await?;
    assert_eq!(
        cluster.relay_nodes(),
        ["r-eu-1", "r-eu-2", "r-us-1", "r-us-2"]
    );
    let readyz = http::get(cluster.http_addr(), "/readyz").await?;
    assert_eq!(readyz.status, 200, "{}", readyz.body);
    for node in cluster.relay_nodes() {
        let addr = cluster.relay_metrics_addr(&node).expect("running");
        assert_eq!(http::get(addr, "/readyz").await?.status, 200, "{node}");
    }

    // kill -9: the metrics port stops answering.
    let metrics = cluster.relay_metrics_addr("r-eu-1").expect("running");
    let (_, spec) = cluster.kill_relay("r-eu-1")?;
    assert!(http::get(metrics, "/readyz").await.is_err());
    // It can come back under the same node id.
    cluster.start_relay(spec).await?;

    // Drain: a relay without calls says it drains, then exits cleanly at once.
    cluster.drain_relay("r-us-2").await?;
    let code = cluster
        .wait_relay_exit("r-us-2", std::time::Duration::from_secs(10))
        .await?;
    assert_eq!(code, Some(0));

    // A relay in a third region joins.
    cluster.start_relay(RelaySpec::new("r-ap-1", "ap")).await?;
    Ok(())
}
