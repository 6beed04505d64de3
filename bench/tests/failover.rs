//! `bench failover` end to end: the `bench` binary starts two real `relay` processes,
//! kills the first mid-load and re-places the room on the second; every subscriber
//! must get media again, and the gap it reports must be a real, bounded one.
//!
//! Needs the `relay` binary next to `bench` (`cargo build --workspace --all-targets`)
//! and opens WebRTC sockets: run it inside the loopback-only namespace
//! (`unshare --net -- sh -c 'ip link set lo up && cargo test -p bench --test failover --offline'`).

use std::process::Command;

#[test]
fn every_subscriber_recovers_on_the_sibling_relay() {
    let bench = env!("CARGO_BIN_EXE_bench");
    let relay = std::path::Path::new(bench).with_file_name("relay");
    assert!(
        relay.exists(),
        "{} missing: run `cargo build --workspace --all-targets` first",
        relay.display()
    );
    let dir = tempfile_dir();
    let json = dir.join("failover.json");
    let o = Command::new(bench)
        .args(["failover", "--rooms", "1", "--subscribers", "2"])
        .args(["--warmup", "2s", "--duration", "7s", "--video-kbps", "300"])
        .arg("--relay-bin")
        .arg(&relay)
        .arg("--json")
        .arg(&json)
        .env("CI", "true")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stdout.contains("recovered on relay B  2"), "{stdout}");

    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let f = &report["failover"];
    assert_eq!(f["affected"], 2, "{f}");
    assert_eq!(f["recovered"], 2, "{f}");
    assert_eq!(f["kill"], "SIGKILL");
    let max = f["gap_max_ms"].as_f64().unwrap();
    let p50 = f["gap_p50_ms"].as_f64().unwrap();
    // The gap includes re-placement (offer/answer, ICE, DTLS): never zero, and it must
    // fit in the 5 s of media after the kill.
    assert!(p50 > 0.0 && p50 <= max && max < 5000.0, "{f}");
    assert!(f["detect_ms"].as_f64().unwrap() <= max, "{f}");
    let _ = std::fs::remove_dir_all(dir);
}

fn tempfile_dir() -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("bench-failover-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}
