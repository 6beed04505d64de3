//! The `relay` binary: configuration errors, and the signal contract (the
//! first SIGTERM drains, a second exits at once).

mod common;

use std::process::{Child, Command, Stdio};

use common::{FakeSignaling, PATIENCE, SECRET, client_offer, grant};
use protocol::control::{RelayToSignaling, SignalingToRelay};

fn relay_command() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_relay"));
    cmd.env_clear()
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    cmd
}

fn signal(child: &Child, name: &str) {
    let status = Command::new("kill")
        .args([name, &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
}

/// Kills the relay if the test fails while it runs, so that neither the
/// process nor a blocked `wait` outlives the test.
struct KillOnPanic(u32);

impl Drop for KillOnPanic {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let _ = Command::new("kill")
                .args(["-KILL", &self.0.to_string()])
                .status();
        }
    }
}

async fn wait(mut child: Child) -> std::process::ExitStatus {
    let _guard = KillOnPanic(child.id());
    tokio::time::timeout(
        PATIENCE,
        tokio::task::spawn_blocking(move || child.wait().expect("wait")),
    )
    .await
    .expect("the relay exits")
    .expect("join")
}

#[tokio::test]
async fn refuses_to_start_without_advertise_and_says_which_flag() {
    let output = relay_command()
        .args(["--standalone", "--metrics-listen", "127.0.0.1:0"])
        .env("ANTEROOM_RELAY_SECRET", SECRET)
        .output()
        .expect("the binary runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--advertise"), "{stderr}");
}

#[tokio::test]
async fn first_sigterm_drains_and_a_second_exits_at_once() {
    let mut signaling = FakeSignaling::start().await;
    let child = relay_command()
        .args([
            "--signaling",
            &signaling.url,
            "--advertise",
            "127.0.0.1",
            "--node-id",
            "relay-test",
            "--workers",
            "1",
            "--metrics-listen",
            "127.0.0.1:0",
        ])
        .env("ANTEROOM_RELAY_SECRET", SECRET)
        .spawn()
        .expect("the relay starts");
    let _guard = KillOnPanic(child.id());
    let mut conn = signaling.accept().await;
    conn.register(200).await;

    // A call in progress keeps the drain from ending by itself.
    conn.send(&SignalingToRelay::Offer {
        request: 1,
        grant: grant("room-a", "alice").sign(SECRET.as_bytes()),
        sdp: client_offer(),
    })
    .await;
    assert!(matches!(
        conn.recv_non_heartbeat().await,
        RelayToSignaling::Answer { request: 1, .. }
    ));

    signal(&child, "-TERM");
    loop {
        if let RelayToSignaling::Heartbeat(hb) = conn.recv().await
            && hb.draining
        {
            break;
        }
    }
    // Still draining, still beating.
    assert!(matches!(conn.recv().await, RelayToSignaling::Heartbeat(hb) if hb.draining));

    signal(&child, "-TERM");
    let status = wait(child).await;
    assert_eq!(status.code(), Some(130), "a second signal exits at once");
}

#[tokio::test]
async fn sigterm_with_no_call_left_exits_cleanly() {
    let mut child = relay_command()
        .args([
            "--standalone",
            "--advertise",
            "127.0.0.1",
            "--metrics-listen",
            "127.0.0.1:0",
        ])
        .env("ANTEROOM_RELAY_SECRET", SECRET)
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .spawn()
        .expect("the relay starts");
    let _guard = KillOnPanic(child.id());
    // Wait for "relay started" (logs go to stdout): the signal handlers are
    // installed by then. A plain thread reads, so a failure cannot leave the
    // runtime waiting for a blocked reader.
    let stdout = child.stdout.take().expect("piped");
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        use std::io::BufRead as _;
        let mut lines = std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok);
        let _ = tx.send(lines.any(|line| line.contains("relay started")));
        // Keep draining so the relay never blocks on a full pipe.
        lines.for_each(drop);
    });
    let started = tokio::time::timeout(PATIENCE, rx).await;
    assert!(
        matches!(started, Ok(Ok(true))),
        "the relay did not log its start: {started:?}"
    );
    signal(&child, "-TERM");
    let status = wait(child).await;
    assert_eq!(status.code(), Some(0), "drained at once: no call was left");
}

#[tokio::test]
async fn check_config_accepts_a_list_of_signaling_urls_from_the_environment() {
    let check = |urls: &str| {
        relay_command()
            .args(["--check-config", "--advertise", "127.0.0.1"])
            .env("ANTEROOM_RELAY_SECRET", SECRET)
            .env("ANTEROOM_RELAY_SIGNALING", urls)
            .output()
            .expect("the binary runs")
    };
    let ok = check("ws://10.0.0.1:8080/control,ws://10.0.0.2:8080/control");
    assert_eq!(ok.status.code(), Some(0), "{ok:?}");
    let bad = check("ws://10.0.0.1:8080/control,ws://10.0.0.2:nope/control");
    assert_eq!(bad.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(stderr.contains("ws://10.0.0.2:nope/control"), "{stderr}");
}
