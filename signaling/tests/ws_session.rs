//! Clinician sessions over the WebSocket: logging in through the REST API,
//! the session cookie, idle and absolute expiry on virtual time, logout.

mod support;

use std::sync::Arc;
use std::time::Duration;

use protocol::client::ErrorCode;
use serde_json::json;
use signaling::auth::{Auth, AuthSettings};
use signaling::clock::Clock;
use support::{Client, TestServer, action, http};
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;

const MIN: Duration = Duration::from_secs(60);

async fn manual_clock_server(settings: AuthSettings) -> TestServer {
    TestServer::start_with(|s| {
        s.clock = Clock::manual();
        s.auth = Arc::new(Auth::new(s.directory.clone(), s.audit.clone(), settings));
    })
    .await
}

#[tokio::test]
async fn an_idle_session_expires_and_use_keeps_it_alive() {
    let server = manual_clock_server(AuthSettings::default()).await;
    let (mut doc, _) = server.clinician("dr-a").await;
    let (mut patient, p, _) = server.joined_patient("a-gp", "Ann", "x").await;

    // Each use within 20 minutes of the last one keeps the session.
    for request in 1..=3 {
        server.clock.advance(19 * MIN);
        doc.send(&action("get_intake", &p, request)).await;
        assert_eq!(doc.expect_type("intake").await["request"], request);
    }
    // 20 minutes without use: the next action is refused and the socket closed.
    server.clock.advance(20 * MIN + Duration::from_secs(1));
    doc.send(&action("admit", &p, 4)).await;
    let err = doc.expect_type("error").await;
    assert_eq!(
        (err["code"].as_str(), err["request"].as_u64()),
        (Some("session_expired"), Some(4))
    );
    doc.expect_closed().await;

    // Nothing happened to the patient; the expiry is in the audit trail.
    for v in patient.sync().await {
        assert_eq!(v["type"], "queue_status", "{v}");
    }
    let actions: Vec<_> = server
        .audit_json()
        .iter()
        .map(|l| l["action"].clone())
        .collect();
    assert_eq!(actions, [json!("login"), json!("session_expired")]);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn a_session_ends_after_its_maximum_age_however_used() {
    let settings = AuthSettings {
        idle: 20 * MIN,
        max_age: 60 * MIN,
    };
    let server = manual_clock_server(settings).await;
    let (mut doc, _) = server.clinician("dr-a").await;
    for request in 1..=3 {
        server.clock.advance(19 * MIN);
        doc.send(&json!({"type": "subscribe", "request": request}))
            .await;
        doc.expect_type("queue_snapshot").await;
    }
    server.clock.advance(4 * MIN);
    doc.send(&json!({"type": "subscribe", "request": 9})).await;
    assert_eq!(doc.expect_error().await, ErrorCode::SessionExpired);
    doc.expect_closed().await;
    server.stop().await.unwrap();
}

#[tokio::test]
async fn logout_ends_the_websocket_session() {
    let server = TestServer::start().await;
    let token = server.login("dr-a");
    let (mut doc, _) = server.clinician_with(&token).await;
    server.auth.logout(&token);
    doc.send(&json!({"type": "subscribe"})).await;
    assert_eq!(doc.expect_error().await, ErrorCode::SessionExpired);
    doc.expect_closed().await;
    // The token no longer opens a socket either.
    let mut again = Client::connect(server.addr).await;
    again
        .send(&json!({"type": "hello", "version": 1, "role": "clinician", "session": token}))
        .await;
    assert_eq!(again.expect_error().await, ErrorCode::Unauthenticated);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn rest_login_gives_a_token_for_hello_and_a_cookie_for_browsers() {
    let server = TestServer::start().await;
    let body = json!({"username": "dr-a", "password": support::PASSWORD});
    let (status, head, reply) = http(server.addr, "POST", "/api/login", Some(&body)).await;
    assert_eq!(status, 200, "{head}");
    let reply: serde_json::Value = serde_json::from_str(&reply).unwrap();
    let token = reply["token"].as_str().unwrap();

    // 1. The token in hello.
    let (_doc, snap) = server.clinician_with(token).await;
    assert_eq!(snap["rooms"][0]["room"], "a-gp");

    // 2. The HttpOnly cookie on a same-origin upgrade, hello without a session.
    let cookie = head
        .lines()
        .find_map(|l| {
            l.strip_prefix("set-cookie: ")
                .or_else(|| l.strip_prefix("Set-Cookie: "))
        })
        .and_then(|c| c.split(';').next())
        .expect("a session cookie")
        .to_owned();
    let open = |origin: &str| {
        let mut req = format!("ws://{}/ws", server.addr)
            .into_client_request()
            .unwrap();
        req.headers_mut().insert("cookie", cookie.parse().unwrap());
        req.headers_mut().insert("origin", origin.parse().unwrap());
        req
    };
    let hello = json!({"type": "hello", "version": 1, "role": "clinician"});
    let (ws, _) = tokio_tungstenite::connect_async(open(&format!("http://{}", server.addr)))
        .await
        .unwrap();
    let mut c = Client::from_stream(ws);
    c.send(&hello).await;
    assert_eq!(c.expect_type("welcome").await["staff"]["clinician"], "dr-a");

    // A page of another site cannot use the clinician's cookie: its upgrade
    // is refused outright (the Origin allow-list, ws_origin.rs).
    match tokio_tungstenite::connect_async(open("https://evil.example")).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(res)) => {
            assert_eq!(res.status().as_u16(), 403);
        }
        other => panic!(
            "a cross-site upgrade was not refused: {:?}",
            other.map(|_| ())
        ),
    }
    server.stop().await.unwrap();
}
