//! Clinician sessions shared by two signaling servers on one Redis (issue 7),
//! over HTTP: a login on node A works on node B, a logout on B ends it on
//! A, and a Redis that is down is a 503 with a clear JSON error (not
//! "logged out") until it is back.

mod support;

use std::time::Duration;

use protocol::client::ErrorCode;
use serde_json::{Value, json};
use signaling::config::Config;
use signaling::server::Services;
use signaling::store::backends::Backends;
use signaling::store::redis_server::RedisServer;
use support::{PASSWORD, TestServer, http_json};

/// A signaling server whose backends are `url`'s Redis.
async fn node(url: &str, name: &str) -> TestServer {
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
        *s = Services::with_backends(s.directory.clone(), s.audit.clone(), &config, backends);
    })
    .await
}

async fn login(server: &TestServer) -> (u16, Value) {
    let body = json!({"username": "dr-a", "password": PASSWORD});
    let (status, _, reply) = http_json(server.addr, "POST", "/api/login", &[], &body).await;
    (status, reply)
}

async fn me(server: &TestServer, token: &str) -> (u16, Value) {
    let bearer = format!("Bearer {token}");
    let (status, _, reply) = http_json(
        server.addr,
        "GET",
        "/api/me",
        &[("Authorization", &bearer)],
        &Value::Null,
    )
    .await;
    (status, reply)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_on_one_node_works_on_the_other_until_logged_out_there() {
    let redis = RedisServer::start().expect("a private redis-server");
    let a = node(&redis.url(), "sig-a").await;
    let b = node(&redis.url(), "sig-b").await;

    let (status, reply) = login(&a).await;
    assert_eq!(status, 200, "{reply}");
    let token = reply["token"].as_str().expect("a token").to_owned();
    let (status, who) = me(&b, &token).await;
    assert_eq!(status, 200, "{who}");
    assert_eq!(who["clinician"], "dr-a");

    let bearer = format!("Bearer {token}");
    let (status, _, _) = http_json(
        b.addr,
        "POST",
        "/api/logout",
        &[("Authorization", &bearer)],
        &Value::Null,
    )
    .await;
    assert_eq!(status, 204);
    assert_eq!(me(&a, &token).await.0, 401, "logged out on B: gone on A");
    assert_eq!(me(&b, &token).await.0, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_logout_on_the_other_node_closes_the_clinician_websocket_within_a_second() {
    let redis = RedisServer::start().expect("a private redis-server");
    let a = node(&redis.url(), "sig-a").await;
    let b = node(&redis.url(), "sig-b").await;
    let token = a.login("dr-a");
    let (mut doc, _) = a.clinician_with(&token).await;

    let bearer = format!("Bearer {token}");
    let (status, _, _) = http_json(
        b.addr,
        "POST",
        "/api/logout",
        &[("Authorization", &bearer)],
        &Value::Null,
    )
    .await;
    assert_eq!(status, 204);
    // Nothing sent on the socket: the revocation alone closes it.
    let code = tokio::time::timeout(Duration::from_secs(1), doc.expect_error())
        .await
        .expect("the socket hears of the logout within a second");
    assert_eq!(code, ErrorCode::SessionExpired);
    doc.expect_closed().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_redis_is_a_503_with_a_clear_error_and_service_recovers() {
    let mut redis = RedisServer::start().expect("a private redis-server");
    let port = redis.addr().port();
    let a = node(&redis.url(), "sig-a").await;
    let (_, reply) = login(&a).await;
    let token = reply["token"].as_str().expect("a token").to_owned();
    redis.kill();

    let (status, err) = me(&a, &token).await;
    assert_eq!(status, 503, "{err}");
    assert_eq!(err["error"]["code"], "unavailable");
    let message = err["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("Redis"), "{message}");
    let (status, err) = login(&a).await;
    assert_eq!(status, 503, "{err}");
    assert_eq!(err["error"]["code"], "unavailable");
    assert!(!a.audit.lines().join("\n").contains(&token));

    // Back (empty, no persistence): a new login works at once.
    let _redis = RedisServer::start_on(port).expect("redis-server again on its port");
    assert_eq!(
        me(&a, &token).await.0,
        401,
        "the old session died with Redis"
    );
    let (status, reply) = login(&a).await;
    assert_eq!(status, 200, "{reply}");
    let again = reply["token"].as_str().expect("a token");
    assert_eq!(me(&a, again).await.0, 200);
}
