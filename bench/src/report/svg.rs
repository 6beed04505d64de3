//! A small hand-written SVG: one-way latency (p50, p99) and received throughput per
//! second, in two stacked panels sharing the time axis.

use std::fmt::Write;

use super::Report;

const W: f64 = 800.0;
const PANEL_H: f64 = 200.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 20.0;
const TOP: f64 = 40.0;
const GAP: f64 = 50.0;

/// Escapes text for XML content and attributes.
fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A "nice" axis maximum ≥ `v` (1, 2 or 5 × 10^n).
fn nice_max(v: f64) -> f64 {
    if v <= 0.0 || !v.is_finite() {
        return 1.0;
    }
    let exp = v.log10().floor();
    let base = 10f64.powf(exp);
    [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * base)
        .find(|m| *m >= v)
        .unwrap_or(10.0 * base)
}

struct Panel<'a> {
    title: &'a str,
    unit: &'a str,
    top: f64,
    series: Vec<(&'a str, &'a str, Vec<f64>)>,
}

fn panel(out: &mut String, p: &Panel, seconds: usize) {
    let plot_w = W - LEFT - RIGHT;
    let max = nice_max(
        p.series
            .iter()
            .flat_map(|(_, _, v)| v.iter().copied())
            .fold(0.0, f64::max),
    );
    let x = |i: usize| LEFT + plot_w * i as f64 / (seconds.max(2) - 1) as f64;
    let y = |v: f64| p.top + PANEL_H - PANEL_H * (v / max).clamp(0.0, 1.0);
    let _ = writeln!(
        out,
        r#"<text x="{LEFT}" y="{:.1}" font-weight="bold">{} ({})</text>"#,
        p.top - 8.0,
        escape(p.title),
        escape(p.unit)
    );
    for k in 0..=4 {
        let v = max * f64::from(k) / 4.0;
        let yy = y(v);
        let _ = writeln!(
            out,
            r##"<line x1="{LEFT}" y1="{yy:.1}" x2="{:.1}" y2="{yy:.1}" stroke="#ddd"/>"##,
            W - RIGHT
        );
        let _ = writeln!(
            out,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#,
            LEFT - 6.0,
            yy + 4.0,
            format_value(v)
        );
    }
    let _ = writeln!(
        out,
        r##"<rect x="{LEFT}" y="{:.1}" width="{plot_w:.1}" height="{PANEL_H}" fill="none" stroke="#888"/>"##,
        p.top
    );
    for (n, (name, color, values)) in p.series.iter().enumerate() {
        let points: Vec<String> = values
            .iter()
            .enumerate()
            .map(|(i, v)| format!("{:.1},{:.1}", x(i), y(*v)))
            .collect();
        let _ = writeln!(
            out,
            r#"<polyline fill="none" stroke="{color}" stroke-width="1.5" points="{}"/>"#,
            points.join(" ")
        );
        let lx = W - RIGHT - 120.0 + 60.0 * n as f64;
        let _ = writeln!(
            out,
            r#"<text x="{lx:.1}" y="{:.1}" fill="{color}">{}</text>"#,
            p.top - 8.0,
            escape(name)
        );
    }
}

fn format_value(v: f64) -> String {
    if v >= 100.0 || v == 0.0 {
        format!("{v:.0}")
    } else if v >= 1.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// Renders the plot.
pub(super) fn render(r: &Report) -> String {
    let seconds = r.series.len();
    let height = TOP + 2.0 * PANEL_H + GAP + 50.0;
    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{height}" viewBox="0 0 {W} {height}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(
        out,
        "<title>bench {}: latency and throughput</title>",
        escape(&r.scenario)
    );
    let _ = writeln!(out, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let latency = Panel {
        title: "one-way latency",
        unit: "ms",
        top: TOP,
        series: vec![
            (
                "p50",
                "#1f77b4",
                r.series.iter().map(|p| p.latency_p50_ms).collect(),
            ),
            (
                "p99",
                "#d62728",
                r.series.iter().map(|p| p.latency_p99_ms).collect(),
            ),
        ],
    };
    panel(&mut out, &latency, seconds);
    let throughput = Panel {
        title: "received throughput",
        unit: "Mbit/s",
        top: TOP + PANEL_H + GAP,
        series: vec![(
            "rx",
            "#2ca02c",
            r.series
                .iter()
                .map(|p| p.rx_bits_per_s as f64 / 1e6)
                .collect(),
        )],
    };
    panel(&mut out, &throughput, seconds);
    let _ = writeln!(
        out,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">seconds (0–{})</text>"#,
        LEFT + (W - LEFT - RIGHT) / 2.0,
        height - 15.0,
        seconds.saturating_sub(1)
    );
    out.push_str("</svg>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nice_maxima() {
        assert!((nice_max(0.0) - 1.0).abs() < 1e-9);
        assert!((nice_max(3.2) - 5.0).abs() < 1e-9);
        assert!((nice_max(42.0) - 50.0).abs() < 1e-9);
        assert!((nice_max(100.0) - 100.0).abs() < 1e-9);
        assert!((nice_max(101.0) - 200.0).abs() < 1e-9);
    }

    #[test]
    fn escapes_markup() {
        assert_eq!(escape(r#"a<b>&"c""#), "a&lt;b&gt;&amp;&quot;c&quot;");
    }
}
