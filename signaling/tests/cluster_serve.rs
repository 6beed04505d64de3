//! Two signaling nodes served in-process on one real Redis: the lease
//! decides which one runs the lobby; the other (a front end) stays ready
//! but answers 503, naming the owner, on the endpoints that need the lobby.

mod support;

use std::time::Duration;

use protocol::NodeId;
use signaling::cluster::ClusterSettings;
use signaling::store::RedisHandle;
use signaling::store::backends::Backends;
use signaling::store::redis_server::RedisServer;
use support::{TestServer, http};

async fn node(redis: &RedisServer, id: &str) -> TestServer {
    let url = redis.url();
    let id = NodeId::new(id).unwrap();
    let server = TestServer::start_with(move |s| {
        s.backends = Backends::redis(RedisHandle::new(&url).unwrap());
        s.cluster = ClusterSettings {
            node: id,
            lease: Duration::from_millis(900),
        };
    })
    .await;
    // Served: the first lease round ran before the listener took requests.
    assert_eq!(http(server.addr, "GET", "/healthz", None).await.0, 200);
    server
}

#[tokio::test]
async fn a_front_end_is_ready_but_refuses_lobby_endpoints_naming_the_owner() {
    let redis = RedisServer::start().expect("a private redis-server");
    let a = node(&redis, "sig-a").await;
    let b = node(&redis, "sig-b").await;

    let (status, _, body) = http(b.addr, "POST", "/whip/c-1", None).await;
    assert_eq!(status, 503, "{body}");
    assert!(
        body.contains("sig-b") && body.contains("owner: sig-a"),
        "{body}"
    );
    let (status, _, body) = http(b.addr, "POST", "/api/calls/c-1/ingest", None).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(
        http(b.addr, "GET", "/readyz", None).await.0,
        200,
        "a front end can pipe"
    );

    // The owner serves them (here: no such call, no token; not 503).
    let (status, _, body) = http(a.addr, "POST", "/whip/c-1", None).await;
    assert_ne!(status, 503, "{body}");
    assert_eq!(http(a.addr, "GET", "/readyz", None).await.0, 200);

    a.stop().await.unwrap();
    b.stop().await.unwrap();
}
