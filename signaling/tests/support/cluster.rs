//! Signaling nodes of a cluster in one test process: each a [`TestServer`]
//! whose backends (sessions, seats, bus, lobby lease) are one Redis, set up
//! as `--redis-url` and `--node-id` set up a real node.

use std::sync::Arc;

use signaling::config::Config;
use signaling::directory::Directory;
use signaling::server::Services;
use signaling::store::backends::Backends;

use super::TestServer;

/// A signaling server named `name` whose backends are `url`'s Redis, over
/// the shared test directory.
pub async fn redis_node(url: &str, name: &str) -> TestServer {
    start(url, name, None).await
}

/// Like [`redis_node`], over `directory` instead (each node's directory is
/// in memory, so every node of a test needs its own copy).
pub async fn redis_node_over(url: &str, name: &str, directory: Arc<Directory>) -> TestServer {
    start(url, name, Some(directory)).await
}

async fn start(url: &str, name: &str, directory: Option<Arc<Directory>>) -> TestServer {
    let args = [
        "signaling",
        "--config",
        "unused.toml",
        "--redis-url",
        url,
        "--node-id",
        name,
    ];
    let config = Config::parse_args(args).expect("config");
    let backends = Backends::from_config(&config).await.expect("redis answers");
    TestServer::start_with(move |s| {
        let directory = directory.unwrap_or_else(|| s.directory.clone());
        *s = Services::with_backends(directory, s.audit.clone(), &config, backends);
    })
    .await
}
