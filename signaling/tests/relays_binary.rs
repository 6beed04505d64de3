//! The `signaling` binary with the relay flags, as the end-to-end cluster
//! starts it: it prints `listening on http://ADDR`, relays register with the
//! shared secret; `--dev` starts an embedded relay; bad flags exit with 2.

mod relays_support;

use std::net::SocketAddr;
use std::process::Stdio;

use protocol::control::{RelayToSignaling, SignalingToRelay};
use relays_support::{FakeRelay, GUARD, SECRET, register};
use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::process::{Child, ChildStdout, Command};

fn signaling(args: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_signaling"))
        .args(args)
        .env("ANTEROOM_RELAY_SECRET", SECRET)
        .env("ANTEROOM_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("signaling starts")
}

/// Reads stdout lines until one starts with `prefix`; returns the rest.
async fn line_after(out: &mut BufReader<ChildStdout>, prefix: &str) -> String {
    let read = async {
        let mut line = String::new();
        loop {
            line.clear();
            assert!(
                out.read_line(&mut line).await.unwrap() > 0,
                "stdout ended before {prefix:?}"
            );
            if let Some(rest) = line.trim().strip_prefix(prefix) {
                return rest.trim().to_owned();
            }
        }
    };
    tokio::time::timeout(GUARD, read)
        .await
        .expect("the line in time")
}

#[tokio::test]
async fn the_binary_prints_its_address_and_relays_register_with_the_shared_secret() {
    let config = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/orgs.toml");
    let args = [
        "--listen",
        "127.0.0.1:0",
        "--region",
        "eu",
        "--region-order",
        "eu,us",
        "--config",
        config,
    ];
    let mut child = signaling(&args);
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let addr: SocketAddr = line_after(&mut out, "listening on http://")
        .await
        .parse()
        .unwrap();

    let mut relay = FakeRelay::connect(addr).await;
    let reg = register("r-eu-1", "eu", &[], SECRET.as_bytes());
    relay.send(&RelayToSignaling::Register(reg)).await;
    assert_eq!(
        relay.recv().await,
        Some(SignalingToRelay::Registered { heartbeat_ms: 1000 })
    );
    child.kill().await.unwrap();
}

#[tokio::test]
async fn dev_mode_starts_an_embedded_relay() {
    let mut child = signaling(&["--dev", "--listen", "127.0.0.1:0"]);
    let mut out = BufReader::new(child.stdout.take().unwrap());
    line_after(&mut out, "listening on http://").await;
    let relay = line_after(&mut out, "relay:").await;
    assert!(
        relay.starts_with("dev-relay-1 (embedded) UDP 127.0.0.1:"),
        "{relay}"
    );
    child.kill().await.unwrap();
}

#[tokio::test]
async fn a_short_relay_secret_is_refused_at_start() {
    let status = Command::new(env!("CARGO_BIN_EXE_signaling"))
        .args([
            "--dev",
            "--listen",
            "127.0.0.1:0",
            "--relay-secret",
            "short",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .await
        .unwrap();
    assert_eq!(status.code(), Some(2));
}
