//! The `bench` binary's user-visible contract: help for every scenario, honest refusal
//! of scenarios that cannot run (yet, or without a relay), and the loopback-only guard.

use std::process::{Command, Output};

fn bench(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_bench"))
        .args(args)
        .env("CI", "true")
        .output()
        .unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn every_scenario_has_help() {
    for s in [
        "loopback", "fanout", "meeting", "audio", "lobby", "failover",
    ] {
        let o = bench(&[s, "--help"]);
        assert!(o.status.success(), "{s} --help");
        let out = String::from_utf8_lossy(&o.stdout);
        assert!(out.contains("--duration"), "{s}: {out}");
    }
}

#[test]
fn failover_without_a_relay_binary_refuses_without_results() {
    let o = bench(&[
        "failover",
        "--duration",
        "10s",
        "--relay-bin",
        "/nonexistent/relay",
    ]);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(err.contains("relay binary"), "{err}");
    assert!(
        o.stdout.is_empty(),
        "failover printed results: no fake numbers"
    );
}

#[test]
fn remote_targets_are_refused_without_allow_remote() {
    let o = bench(&["fanout", "--target", "ws://203.0.113.5:8080/ws"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("refusing non-loopback target"),
        "{}",
        stderr(&o)
    );
    let o = bench(&["fanout", "--target", "whip://sfu.example.com/whip"]);
    assert!(stderr(&o).contains("refusing non-loopback target"));
}

#[test]
fn relay_scenarios_say_what_is_missing_and_print_no_numbers() {
    for s in ["fanout", "meeting", "audio"] {
        let o = bench(&[s, "--duration", "1s", "--relay-bin", "/nonexistent/relay"]);
        assert_eq!(o.status.code(), Some(2), "{s}");
        assert!(stderr(&o).contains("relay binary"), "{s}: {}", stderr(&o));
        assert!(o.stdout.is_empty(), "{s} printed results");
    }
    let o = Command::new(env!("CARGO_BIN_EXE_bench"))
        .args(["fanout", "--target", "whip://127.0.0.1:8080/whip/x"])
        .env_remove("BENCH_WHIP_TOKEN")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--token"), "{}", stderr(&o));
    assert!(o.stdout.is_empty());
    let o = bench(&["fanout", "--target", "ws://127.0.0.1:8080/ws"]);
    assert_eq!(o.status.code(), Some(3));
    assert!(stderr(&o).contains("not available yet"), "{}", stderr(&o));
    assert!(o.stdout.is_empty());
    let o = bench(&["fanout", "--relay-control", "203.0.113.5:9000"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("refusing non-loopback target"));
}

#[test]
fn lobby_needs_credentials_and_a_reachable_signaling_before_printing_anything() {
    let o = Command::new(env!("CARGO_BIN_EXE_bench"))
        .args([
            "lobby",
            "--duration",
            "1s",
            "--target",
            "ws://127.0.0.1:1/ws",
        ])
        .env("CI", "true")
        .env_remove("BENCH_CLINICIAN_PASSWORD")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--password"), "{}", stderr(&o));
    assert!(o.stdout.is_empty());
    let o = bench(&[
        "lobby",
        "--duration",
        "1s",
        "--target",
        "ws://127.0.0.1:1/ws",
        "--clinicians",
        "0",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        o.stdout.is_empty(),
        "no numbers without a signaling service"
    );
    let o = bench(&["lobby", "--target", "ws://203.0.113.5:8080/ws"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("refusing non-loopback target"));
}

#[test]
fn invalid_loopback_parameters_are_rejected_before_any_load() {
    let o = bench(&["loopback", "--publishers", "0"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("invalid configuration"),
        "{}",
        stderr(&o)
    );
    let o = bench(&["loopback", "--duration", "2h"]);
    assert_eq!(o.status.code(), Some(2));
}
