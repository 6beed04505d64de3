//! Clinician sessions shared by two signaling servers on one Redis (issue 7),
//! over HTTP: a login on node A works on node B, a logout on B ends it on
//! A, an account disabled (or enabled again) through node B's admin API is
//! disabled (enabled) on A too, and a Redis that is down is a 503 with a
//! clear JSON error (not "logged out") until it is back.

mod support;

use std::sync::Arc;
use std::time::Duration;

use protocol::client::ErrorCode;
use serde_json::{Value, json};
use signaling::directory::Directory;
use signaling::store::redis_server::RedisServer;
use support::cluster::{redis_node, redis_node_over};
use support::{PASSWORD, TestServer, http_json};

/// Like [`redis_node`], over a directory of its own holding `dr-a` and an
/// admin `boss` of the same organisation (each node's directory is in memory).
async fn node_with_admin(url: &str, name: &str) -> TestServer {
    let hash = signaling::auth::hash_password(PASSWORD);
    let toml = format!(
        "[[tenant]]\nid = \"org-a\"\nname = \"Org A\"\n\
         [[clinician]]\nid = \"dr-a\"\ntenant = \"org-a\"\nusername = \"dr-a\"\n\
         display_name = \"Dr A\"\npassword_hash = \"{hash}\"\n\
         [[clinician]]\nid = \"boss\"\ntenant = \"org-a\"\nusername = \"boss\"\n\
         display_name = \"Boss\"\nrole = \"admin\"\npassword_hash = \"{hash}\"\n"
    );
    let directory = Arc::new(Directory::from_toml_str(&toml).expect("directory"));
    redis_node_over(url, name, directory).await
}

/// Logs `dr-a` in on `server` until the answer is `want` (another node's
/// change arrives over the bus); fails after a second.
async fn login_until(server: &TestServer, want: u16, why: &str) {
    tokio::time::timeout(Duration::from_secs(1), async {
        while login(server).await.0 != want {
            tokio::task::yield_now().await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{why} within a second"));
}

async fn login(server: &TestServer) -> (u16, Value) {
    let body = json!({"username": "dr-a", "password": PASSWORD});
    let (status, _, reply) = http_json(server.addr, "POST", "/api/login", &[], &body).await;
    (status, reply)
}

async fn me(server: &TestServer, token: &str) -> (u16, Value) {
    with_session(server, "GET", "/api/me", token).await
}

/// `method path` on `server` with `token` as the bearer session, no body.
async fn with_session(server: &TestServer, method: &str, path: &str, token: &str) -> (u16, Value) {
    let bearer = format!("Bearer {token}");
    let headers = [("Authorization", bearer.as_str())];
    let (status, _, reply) = http_json(server.addr, method, path, &headers, &Value::Null).await;
    (status, reply)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_on_one_node_works_on_the_other_until_logged_out_there() {
    let redis = RedisServer::start().expect("a private redis-server");
    let a = redis_node(&redis.url(), "sig-a").await;
    let b = redis_node(&redis.url(), "sig-b").await;

    let (status, reply) = login(&a).await;
    assert_eq!(status, 200, "{reply}");
    let token = reply["token"].as_str().expect("a token").to_owned();
    let (status, who) = me(&b, &token).await;
    assert_eq!(status, 200, "{who}");
    assert_eq!(who["clinician"], "dr-a");

    let (status, _) = with_session(&b, "POST", "/api/logout", &token).await;
    assert_eq!(status, 204);
    assert_eq!(me(&a, &token).await.0, 401, "logged out on B: gone on A");
    assert_eq!(me(&b, &token).await.0, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_logout_on_the_other_node_closes_the_clinician_websocket_within_a_second() {
    let redis = RedisServer::start().expect("a private redis-server");
    let a = redis_node(&redis.url(), "sig-a").await;
    let b = redis_node(&redis.url(), "sig-b").await;
    let token = a.login("dr-a");
    let (mut doc, _) = a.clinician_with(&token).await;

    let (status, _) = with_session(&b, "POST", "/api/logout", &token).await;
    assert_eq!(status, 204);
    // Nothing sent on the socket: the revocation alone closes it.
    let code = tokio::time::timeout(Duration::from_secs(1), doc.expect_error())
        .await
        .expect("the socket hears of the logout within a second");
    assert_eq!(code, ErrorCode::SessionExpired);
    doc.expect_closed().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_disabled_on_one_node_cannot_log_in_on_the_other_until_enabled() {
    let redis = RedisServer::start().expect("a private redis-server");
    let a = node_with_admin(&redis.url(), "sig-a").await;
    let b = node_with_admin(&redis.url(), "sig-b").await;
    assert_eq!(login(&a).await.0, 200, "enabled to begin with");
    let admin = format!("Bearer {}", b.login("boss"));
    let admin_post = |action: &'static str| {
        let admin = admin.clone();
        let addr = b.addr;
        async move {
            let path = format!("/api/admin/clinicians/dr-a/{action}");
            let headers = [("Authorization", admin.as_str())];
            let (status, _, reply) = http_json(addr, "POST", &path, &headers, &Value::Null).await;
            assert_eq!(status, 200, "{action}: {reply}");
            assert_eq!(reply["enabled"], action == "enable");
        }
    };

    admin_post("disable").await;
    login_until(&a, 401, "node A refuses the account disabled on B").await;
    let refused = a.audit_json();
    assert!(
        refused
            .iter()
            .any(|e| e["action"] == "login_failed" && e["detail"] == "account_disabled"),
        "refused as disabled: {refused:?}"
    );
    let audited = |server: &TestServer| {
        server
            .audit_json()
            .iter()
            .filter(|e| e["action"] == "account_disabled" || e["action"] == "account_enabled")
            .count()
    };
    assert_eq!(audited(&a), 0, "audited once, on B");

    admin_post("enable").await;
    login_until(&a, 200, "node A lets the account enabled on B log in again").await;
    assert_eq!(audited(&a), 0, "audited once, on B");
    assert_eq!(audited(&b), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_redis_is_a_503_with_a_clear_error_and_service_recovers() {
    let mut redis = RedisServer::start().expect("a private redis-server");
    let port = redis.addr().port();
    let a = redis_node(&redis.url(), "sig-a").await;
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
