//! The final plain-text table.

use std::fmt::Write;

use super::Report;
use crate::stats::Summary;

fn summary(s: &Summary) -> String {
    if s.count == 0 {
        return "-".into();
    }
    format!(
        "p50 {:.2} ms  p95 {:.2} ms  p99 {:.2} ms  max {:.2} ms  (n={})",
        s.p50_ms, s.p95_ms, s.p99_ms, s.max_ms, s.count
    )
}

/// Renders `report` as aligned `label  value` rows.
pub(super) fn render(r: &Report) -> String {
    let p = &r.peers;
    let s = &r.streams;
    let mut rows: Vec<(&str, String)> = vec![
        (
            "peers",
            format!(
                "added {}  connected {}  failed {}",
                p.added, p.connected, p.failed
            ),
        ),
        (
            "sent",
            format!(
                "{} packets  {:.1} Mbit/s",
                p.sent_packets,
                p.sent_bytes as f64 * 8.0 / r.duration_s.max(1e-9) / 1e6
            ),
        ),
        (
            "delivered",
            format!(
                "{} of {} expected  ({} streams{})",
                s.delivered,
                s.expected,
                s.streams,
                if s.never_arrived > 0 {
                    format!(
                        "; {} sent after a receiver's last packet never arrived",
                        s.never_arrived
                    )
                } else {
                    String::new()
                }
            ),
        ),
        (
            "loss",
            format!(
                "{:.3} %  ({} lost, {} duplicates, {} reordered)",
                r.loss_pct, s.lost, s.duplicates, s.reordered
            ),
        ),
        ("latency", summary(&r.latency)),
        ("join", summary(&r.join)),
        ("connect", summary(&r.connect)),
        (
            "freezes",
            format!("{}  ({} ms frozen in all)", s.freezes, s.frozen_ms),
        ),
        (
            "harness CPU",
            format!(
                "{:.2} s for {} packets = {:.2} µs/packet",
                r.harness.cpu_s, r.harness.packets, r.harness.cpu_us_per_packet
            ),
        ),
        (
            "relay CPU",
            r.relay.map_or_else(
                || "not measured (no relay in this scenario)".into(),
                |c| {
                    format!(
                        "{:.2} s for {} forwarded = {:.2} µs/packet",
                        c.cpu_s, c.forwarded, c.cpu_us_per_forwarded
                    )
                },
            ),
        ),
    ];
    let mib = |k: u64| k as f64 / 1024.0;
    if let Some(m) = &r.relay_memory {
        rows.push((
            "relay memory",
            format!(
                "RSS {:.1} MiB  peak {:.1} MiB",
                mib(m.rss_kib),
                mib(m.peak_kib)
            ),
        ));
    }
    if let Some(m) = &r.harness_memory {
        rows.push((
            "bench memory",
            format!(
                "RSS {:.1} MiB  peak {:.1} MiB",
                mib(m.rss_kib),
                mib(m.peak_kib)
            ),
        ));
    }
    if let Some(c) = &r.control {
        rows.push((
            "control",
            format!(
                "{} relay offers answered, {} unanswered, {} left",
                c.renegotiations, c.renegotiation_failures, c.participants_left
            ),
        ));
    }
    if let Some(ramp) = &r.ramp {
        rows.push((
            "capacity",
            match (&ramp.reason, ramp.at_s) {
                (Some(why), Some(t)) => format!(
                    "{} subscribers ({why} threshold crossed at {t} s; {} joined)",
                    ramp.capacity, ramp.joined
                ),
                _ => format!(
                    "≥ {} subscribers (no threshold crossed; raise --subscribers)",
                    ramp.capacity
                ),
            },
        ));
    }
    if let Some([a, b, c]) = r.load_average {
        rows.push((
            "load avg",
            format!("{a:.2} {b:.2} {c:.2} (1/5/15 min, whole machine)"),
        ));
    }
    if let Some(i) = &r.impairment {
        rows.push((
            "impairment",
            format!(
                "{:.1} % loss, {} ms delay (shim)",
                i.loss * 100.0,
                i.delay.as_millis()
            ),
        ));
    }
    let mut out = format!("bench {}: {:.1} s of media\n", r.scenario, r.duration_s);
    for (label, value) in rows {
        let _ = writeln!(out, "  {label:<12} {value}");
    }
    for w in &r.warnings {
        let _ = writeln!(out, "  WARNING      {w}");
    }
    out
}
