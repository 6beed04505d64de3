//! The `bench` binary's user-visible contract: help for every scenario, honest refusal
//! of scenarios that cannot run yet, and the loopback-only guard.

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
fn scenarios_needing_relays_refuse_without_results() {
    for (s, issue) in [
        ("fanout", "4"),
        ("meeting", "4"),
        ("audio", "4"),
        ("failover", "4"),
        ("lobby", "2"),
    ] {
        let o = bench(&[s, "--duration", "1s"]);
        assert!(!o.status.success(), "{s} must exit non-zero");
        let err = stderr(&o);
        assert!(
            err.contains(&format!("not available yet: needs issue {issue}")),
            "{s}: {err}"
        );
        assert!(o.stdout.is_empty(), "{s} printed results: no fake numbers");
    }
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
