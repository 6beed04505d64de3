//! `Backends::from_config`: memory without `--redis-url`; with it, stores
//! that two nodes share, or a clear error when that Redis does not answer.

use std::time::Instant;

use protocol::{NodeId, Region};
use signaling::config::Config;
use signaling::relays::registry::NodeRecord;
use signaling::store::backends::Backends;
use signaling::store::redis_server::RedisServer;

fn config(extra: &[&str]) -> Config {
    let mut args = vec!["signaling", "--dev"];
    args.extend_from_slice(extra);
    Config::parse_args(args).expect("valid flags")
}

#[tokio::test]
async fn without_redis_url_everything_stays_in_memory() {
    let b = Backends::from_config(&config(&[])).await.unwrap();
    assert!(b.redis.is_none());
    assert!(format!("{:?}", b.registry).starts_with("MemoryRegistry"));
}

#[tokio::test]
async fn with_redis_url_two_nodes_share_the_stores() {
    let server = RedisServer::start().expect("a private redis-server");
    let url = server.url();
    let node_a = Backends::from_config(&config(&["--redis-url", &url]))
        .await
        .unwrap();
    let node_b = Backends::from_config(&config(&["--redis-url", &url]))
        .await
        .unwrap();
    assert!(node_a.redis.is_some());
    let relay = NodeId::new("r-1").unwrap();
    node_a.registry.upsert(NodeRecord::new(
        relay.clone(),
        Region::new("eu").unwrap(),
        vec!["127.0.0.1:1".into()],
        10,
        Instant::now(),
    ));
    assert_eq!(node_b.registry.nodes().len(), 1);
    let who = NodeId::new("sig-a").unwrap();
    let now = Instant::now();
    let ttl = std::time::Duration::from_secs(10);
    assert!(
        node_a
            .leases
            .acquire("tenant:acme", &who, ttl, now)
            .unwrap()
            .is_some()
    );
    assert_eq!(node_b.leases.holder("tenant:acme", now).unwrap(), Some(who));
}

#[tokio::test]
async fn an_unreachable_redis_url_is_an_error_naming_the_flag() {
    let server = RedisServer::start().expect("a private redis-server");
    let url = server.url();
    drop(server);
    let err = Backends::from_config(&config(&["--redis-url", &url]))
        .await
        .expect_err("nothing listens there");
    assert!(err.to_string().contains("--redis-url"), "{err}");
}
