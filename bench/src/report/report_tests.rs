//! Report tests: JSON fields, table rows, SVG well-formedness.

use std::time::{Duration, Instant};

use super::*;
use crate::clock::ns_since_epoch;
use crate::media::{Kind, Probe, StreamId};
use crate::stats::StreamStats;

fn sample_report() -> Report {
    let t0 = Instant::now();
    let ms = Duration::from_millis;
    let mut rec = Recorder::new(t0);
    let mut s = StreamStats::new(StreamId(1), Kind::Video, ms(500));
    for seq in 0..300u64 {
        if seq % 50 == 7 {
            continue; // 6 lost
        }
        let sent = t0 + ms(seq * 10);
        let probe = Probe {
            stream: StreamId(1),
            kind: Kind::Video,
            seq,
            sent_ns: ns_since_epoch(sent),
        };
        rec.on_probe(&mut s, &probe, 1000, sent + ms(3 + seq % 5));
    }
    s.finish(t0 + ms(3000));
    rec.finish_stream(&s);
    rec.join.record(ms(120));
    rec.connect.record(ms(80));
    rec.peers.added = 2;
    rec.peers.connected = 2;
    rec.peers.sent_packets = 300;
    rec.peers.sent_bytes = 300_000;
    let harness = HarnessCpu::new(ms(30), 600);
    Report::new(
        "loopback",
        serde_json::json!({"publishers": 1}),
        Duration::from_secs(3),
        &rec,
        harness,
    )
}

#[test]
fn json_report_has_the_documented_fields() {
    let report = sample_report();
    let v: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
    assert_eq!(v["scenario"], "loopback");
    assert_eq!(v["parameters"]["publishers"], 1);
    assert_eq!(v["peers"]["connected"], 2);
    assert_eq!(v["streams"]["expected"], 300);
    assert_eq!(v["streams"]["lost"], 6);
    assert!((v["loss_pct"].as_f64().unwrap() - 2.0).abs() < 1e-9);
    for key in ["p50_ms", "p95_ms", "p99_ms", "max_ms", "count"] {
        assert!(v["latency"][key].is_number(), "latency.{key}");
        assert!(v["join"][key].is_number(), "join.{key}");
    }
    assert!((v["harness"]["cpu_us_per_packet"].as_f64().unwrap() - 50.0).abs() < 1e-9);
    assert!(
        v["relay"].is_null(),
        "no relay measured: null, not a made-up number"
    );
    let series = v["series"].as_array().unwrap();
    assert_eq!(series.len(), 3, "seconds 0..=2");
    for key in ["t_s", "rx_bits_per_s", "loss_pct", "latency_p99_ms"] {
        assert!(series[0][key].is_number(), "series.{key}");
    }
    assert!(v["warnings"].as_array().unwrap().is_empty());
}

#[test]
fn table_shows_the_key_rows() {
    let t = sample_report().table();
    for needle in [
        "loss",
        "2.000 %",
        "latency",
        "join",
        "freezes",
        "µs/packet",
        "relay CPU",
    ] {
        assert!(t.contains(needle), "{needle} missing from\n{t}");
    }
}

#[test]
fn warnings_explain_untrustworthy_runs() {
    let t0 = Instant::now();
    let mut rec = Recorder::new(t0);
    rec.peers.late_ticks = 3;
    rec.peers.failed = 1;
    rec.peers.added = 2;
    let r = Report::new(
        "x",
        serde_json::Value::Null,
        Duration::from_secs(1),
        &rec,
        HarnessCpu::default(),
    );
    assert_eq!(r.warnings.len(), 2);
    assert!(r.table().contains("WARNING"));
}

/// Checks that every tag is closed in order (a minimal well-formedness check).
fn assert_well_formed(xml: &str) {
    let mut stack: Vec<String> = Vec::new();
    let mut rest = xml;
    while let Some(start) = rest.find('<') {
        let end = rest[start..].find('>').expect("unterminated tag") + start;
        let tag = &rest[start + 1..end];
        assert!(!tag.contains('<'), "nested <: {tag}");
        if let Some(name) = tag.strip_prefix('/') {
            assert_eq!(
                stack.pop().as_deref(),
                Some(name.trim()),
                "mismatched </{name}>"
            );
        } else if !tag.ends_with('/') {
            stack.push(tag.split_whitespace().next().unwrap().to_owned());
        }
        // Attribute values must be quoted pairs.
        assert_eq!(
            tag.matches('"').count() % 2,
            0,
            "unbalanced quotes in {tag}"
        );
        rest = &rest[end + 1..];
    }
    assert!(stack.is_empty(), "unclosed: {stack:?}");
}

#[test]
fn svg_is_well_formed_and_plots_both_panels() {
    let svg = sample_report().svg();
    assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
    assert_well_formed(&svg);
    assert_eq!(svg.matches("<polyline").count(), 3, "p50, p99, throughput");
    assert!(svg.contains("one-way latency") && svg.contains("received throughput"));
    // An empty run still renders.
    let empty = Report::new(
        "x<y",
        serde_json::Value::Null,
        Duration::ZERO,
        &Recorder::new(Instant::now()),
        HarnessCpu::default(),
    );
    assert_well_formed(&empty.svg());
    assert!(empty.svg().contains("x&lt;y"));
}
