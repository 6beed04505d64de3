//! The server around the WebSocket: health endpoints, `run` from a `Config`
//! (the `--dev` demo), and graceful shutdown.

mod support;

use std::net::{IpAddr, Ipv4Addr};

use serde_json::json;
use signaling::config::Config;
use signaling::server::{Services, run};
use support::{Client, TestServer, http};
use tokio::net::TcpListener;

#[tokio::test]
async fn health_and_readiness_answer() {
    let server = TestServer::start().await;
    let (status, _, body) = http(server.addr, "GET", "/healthz", None).await;
    assert_eq!((status, body.trim()), (200, "ok"));
    let (status, _, body) = http(server.addr, "GET", "/readyz", None).await;
    assert_eq!((status, body.trim()), (200, "ready"));
    let (status, _, body) = http(server.addr, "GET", "/", None).await;
    assert_eq!(status, 200);
    assert!(body.contains("/ws"));
    server.stop().await.unwrap();
}

#[tokio::test]
async fn shutdown_closes_websockets_with_a_reason_and_returns() {
    let server = TestServer::start().await;
    let addr = server.addr;
    let (mut doc, _) = server.clinician("dr-a").await;
    let (mut patient, _, _) = server.joined_patient("a-gp", "Ann", "x").await;
    let stopped = tokio::spawn(server.stop());
    let err = patient.expect_type("error").await;
    assert_eq!(err["code"], "shutting_down");
    patient.expect_closed().await;
    assert_eq!(doc.expect_type("error").await["code"], "shutting_down");
    doc.expect_closed().await;
    stopped.await.unwrap().unwrap();
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "no longer listening"
    );
}

#[tokio::test]
async fn the_dev_config_runs_a_demo_organisation() {
    let config = Config::dev();
    let (services, demo) = Services::from_config(&config).unwrap();
    let demo = demo.expect("--dev has demo credentials");
    let local = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let login = services
        .auth
        .login(&demo.username, &demo.password, local, services.clock.now());
    assert!(login.is_ok());
    assert!(services.directory.room(&demo.room).is_some());

    // `run` builds its own services from the same config.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(run(listener, config, async {
        let _ = stopped.await;
    }));
    assert_eq!(http(addr, "GET", "/healthz", None).await.0, 200);
    let mut c = Client::connect(addr).await;
    c.send(&json!({"type": "hello", "version": 1, "role": "patient"}))
        .await;
    c.expect_type("welcome").await;
    c.send(&json!({"type": "get_room", "room": demo.room}))
        .await;
    assert_eq!(c.expect_type("room_info").await["room"], json!(demo.room));
    let _ = stop.send(());
    task.await.unwrap().unwrap();
}
