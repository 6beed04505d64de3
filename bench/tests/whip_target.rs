//! `bench fanout --target whip://…` against a real signaling (`target/debug/signaling
//! --dev`, whose embedded relay carries the call): the publisher joins over WHIP, the
//! subscribers over WHEP, every subscriber receives the publisher's media with low
//! loss, and every session is deleted at the end. Tokens are minted with the relay
//! secret and handed to bench through the environment (never on its command line).
//!
//! Build the workspace first (`cargo build --workspace --all-targets`), then run inside
//! the loopback-only namespace:
//! `unshare --net -- sh -c 'ip link set lo up && cargo test -p bench --offline --test whip_target'`.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use protocol::{GrantRole, RoomId};
use signaling::relays::whip::mint_ingest_token;

const SECRET: &str = "whip-target-test-secret-01234567";

/// The signaling process; killed on drop.
struct Signaling {
    child: Child,
    base: String,
}

impl Drop for Signaling {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `signaling` binary built next to this test (`target/<profile>/`, wherever
/// the target directory is), or `BENCH_SIGNALING_BIN` (measurements use release
/// builds).
fn signaling_bin() -> PathBuf {
    std::env::var_os("BENCH_SIGNALING_BIN").map_or_else(
        || {
            // This test runs as target/<profile>/deps/whip_target-<hash>.
            let exe = std::env::current_exe().expect("test binary path");
            let profile = exe
                .parent()
                .and_then(std::path::Path::parent)
                .expect("test binary under target/<profile>/deps");
            profile.join("signaling")
        },
        PathBuf::from,
    )
}

/// Starts `signaling --dev` (embedded relay) and waits for its "listening on" line.
fn start_signaling() -> Signaling {
    let bin = signaling_bin();
    assert!(
        bin.exists(),
        "{} missing: run `cargo build --workspace --all-targets` first",
        bin.display()
    );
    let mut child = Command::new(bin)
        .args(["--listen", "127.0.0.1:0", "--dev"])
        .env("ANTEROOM_RELAY_SECRET", SECRET)
        .env("ANTEROOM_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let mut base = None;
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(url) = line.strip_prefix("listening on ") {
            base = Some(url.trim().trim_start_matches("http://").to_owned());
            break;
        }
    }
    // Keep draining its stdout: a closed pipe would end the process at its next line.
    std::thread::spawn(move || lines.for_each(drop));
    Signaling {
        base: base.expect("signaling printed its address"),
        child,
    }
}

fn token(call: &RoomId, role: GrantRole) -> String {
    let exp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 600;
    mint_ingest_token(SECRET.as_bytes(), call, role, exp)
}

fn json_out(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("bench-whip-{}-{name}.json", std::process::id()))
}

#[test]
fn fanout_over_whip_and_whep_delivers_to_every_subscriber_and_deletes_its_sessions() {
    let signaling = start_signaling();
    let call = RoomId::new("c-whipbench01").unwrap();
    let json = json_out("fanout");
    let out = Command::new(env!("CARGO_BIN_EXE_bench"))
        .args([
            "fanout",
            "--target",
            &format!("whip://{}/whip/{call}", signaling.base),
            "--subscribers",
            "2",
            "--duration",
            "3s",
            "--video-kbps",
            "500",
            "--relay-pid",
            &signaling.child.id().to_string(),
            "--quiet",
            "--json",
        ])
        .arg(&json)
        .env("BENCH_WHIP_TOKEN", token(&call, GrantRole::Publisher))
        .env("BENCH_WHEP_TOKEN", token(&call, GrantRole::Subscriber))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "bench failed: {stderr}");
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let _ = std::fs::remove_file(&json);
    let peers = &report["peers"];
    assert_eq!(
        (&peers["added"], &peers["connected"], &peers["failed"]),
        (&3.into(), &3.into(), &0.into()),
        "1 publisher + 2 subscribers: {report:#}"
    );
    let streams = &report["streams"];
    assert_eq!(streams["streams"], 4, "2 subscribers × (audio + video)");
    let sent = peers["sent_packets"].as_u64().unwrap();
    let delivered = streams["delivered"].as_u64().unwrap();
    assert!(
        delivered * 10 >= sent * 2 * 6,
        "delivered {delivered} of 2 × {sent} sent: {streams} {} {stderr}",
        report["warnings"]
    );
    let loss = report["loss_pct"].as_f64().unwrap();
    assert!(loss < 1.0, "loss {loss} %");
    assert!(
        report["relay"]["cpu_s"].as_f64().is_some(),
        "--relay-pid read"
    );
    let warnings = report["warnings"].to_string();
    assert!(!warnings.contains("DELETE"), "{warnings}");
    assert!(!warnings.contains("failed to join"), "{warnings}");
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("Bearer"),
        "no token in the output"
    );
}

#[test]
fn a_wrong_token_fails_before_any_load_and_reports_nothing() {
    let signaling = start_signaling();
    let call = RoomId::new("c-whipbench02").unwrap();
    let other = RoomId::new("c-otherwhip03").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_bench"))
        .args([
            "fanout",
            "--target",
            &format!("whip://{}/whip/{call}", signaling.base),
            "--subscribers",
            "1",
            "--duration",
            "1s",
            "--quiet",
        ])
        // A token for another call: the server answers 401.
        .env("BENCH_WHIP_TOKEN", token(&other, GrantRole::Publisher))
        .env_remove("BENCH_WHEP_TOKEN")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("HTTP 401"), "{stderr}");
    assert!(out.stdout.is_empty(), "no numbers without a publisher");
}

/// The docs/benchmarks.md numbers: `BENCH_WHIP_SUBS` subscribers (default 50) for 10 s
/// against `signaling --dev`; prints bench's table. Run with `--ignored --nocapture`;
/// `BENCH_BIN` / `BENCH_SIGNALING_BIN` choose the binaries (e.g. release builds).
#[test]
#[ignore = "a measurement, not a check"]
fn measure_fanout_against_signaling_dev() {
    let signaling = start_signaling();
    let call = RoomId::new("c-whipmeasure").unwrap();
    let subs = std::env::var("BENCH_WHIP_SUBS").unwrap_or_else(|_| "50".into());
    let bench = std::env::var("BENCH_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_bench").into());
    let out = Command::new(bench)
        .args([
            "fanout",
            "--target",
            &format!("whip://{}/whip/{call}", signaling.base),
            "--subscribers",
            &subs,
            "--duration",
            "10s",
            "--relay-pid",
            &signaling.child.id().to_string(),
            "--quiet",
        ])
        .env("BENCH_WHIP_TOKEN", token(&call, GrantRole::Publisher))
        .env("BENCH_WHEP_TOKEN", token(&call, GrantRole::Subscriber))
        .output()
        .unwrap();
    println!("{}", String::from_utf8_lossy(&out.stdout));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
