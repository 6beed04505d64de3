//! The run's results: a [`Report`] built from merged [`Recorder`]s, rendered as a plain
//! text table ([`Report::table`]), JSON ([`Report::to_json`]) and an SVG plot
//! ([`Report::svg`]); plus the live [`progress`] line.

pub mod progress;
mod svg;
mod table;

use std::time::Duration;

use crate::stats::{PeerTotals, Point, Recorder, StreamTotals, Summary};

/// CPU the harness itself used, so readers can tell whether it was the bottleneck.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct HarnessCpu {
    /// Process user+system CPU seconds over the measured interval.
    pub cpu_s: f64,
    /// RTP packets sent + received by the harness in that interval.
    pub packets: u64,
    /// `cpu_s / packets`, microseconds.
    pub cpu_us_per_packet: f64,
}

impl HarnessCpu {
    /// From CPU time and packet count.
    pub fn new(cpu: Duration, packets: u64) -> Self {
        HarnessCpu {
            cpu_s: cpu.as_secs_f64(),
            packets,
            cpu_us_per_packet: if packets == 0 {
                0.0
            } else {
                cpu.as_secs_f64() * 1e6 / packets as f64
            },
        }
    }
}

/// CPU of the system under test (a relay), when the scenario can measure it.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct RelayCpu {
    /// CPU seconds used by the relay process(es).
    pub cpu_s: f64,
    /// Packets the relay forwarded.
    pub forwarded: u64,
    /// `cpu_s / forwarded`, microseconds.
    pub cpu_us_per_forwarded: f64,
}

impl RelayCpu {
    /// From the relay's CPU time and forwarded packets over the same interval.
    pub fn new(cpu: Duration, forwarded: u64) -> Self {
        RelayCpu {
            cpu_s: cpu.as_secs_f64(),
            forwarded,
            cpu_us_per_forwarded: if forwarded == 0 {
                0.0
            } else {
                cpu.as_secs_f64() * 1e6 / forwarded as f64
            },
        }
    }
}

/// The machine's load average (`/proc/loadavg`): 1, 5 and 15 minutes.
pub fn load_average() -> Option<[f64; 3]> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    let mut it = text.split_ascii_whitespace().map(str::parse::<f64>);
    Some([it.next()?.ok()?, it.next()?.ok()?, it.next()?.ok()?])
}

/// Everything a run reports. Serialised as the JSON report.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Report {
    /// Scenario name.
    pub scenario: String,
    /// Scenario parameters as given.
    pub parameters: serde_json::Value,
    /// Seconds media was sent.
    pub duration_s: f64,
    /// Peer and sender counters.
    pub peers: PeerTotals,
    /// Receive counters over all streams at all receivers.
    pub streams: StreamTotals,
    /// Loss over all streams, percent.
    pub loss_pct: f64,
    /// One-way latency of delivered packets.
    pub latency: Summary,
    /// Negotiation start to first media packet (receivers).
    pub join: Summary,
    /// Negotiation start to ICE+DTLS connected (all peers).
    pub connect: Summary,
    /// The harness's own CPU.
    pub harness: HarnessCpu,
    /// The relay's CPU; `null` when the scenario has no relay or cannot measure it.
    pub relay: Option<RelayCpu>,
    /// The relay's memory at the end of sending, if it was measured.
    pub relay_memory: Option<crate::relayctl::Memory>,
    /// The harness's memory at the end of the run.
    pub harness_memory: Option<crate::relayctl::Memory>,
    /// Control-link counters (relay runs).
    pub control: Option<crate::relayctl::LinkCounters>,
    /// The capacity `--ramp` found.
    pub ramp: Option<crate::scenario::ramp::RampOutcome>,
    /// Machine load average (1, 5, 15 min) when the report was made; the machine may
    /// be shared, so read CPU figures with it.
    pub load_average: Option<[f64; 3]>,
    /// The impairment applied, if any.
    pub impairment: Option<crate::shim::ShimConfig>,
    /// One point per second.
    pub series: Vec<Point>,
    /// Reasons to distrust the numbers (harness late, failed peers, dropped sends).
    pub warnings: Vec<String>,
}

impl Report {
    /// Builds a report from the merged recorder of a run.
    pub fn new(
        scenario: &str,
        parameters: serde_json::Value,
        duration: Duration,
        recorder: &Recorder,
        harness: HarnessCpu,
    ) -> Report {
        let peers = recorder.peers;
        let mut warnings = Vec::new();
        if peers.late_ticks > 0 {
            warnings.push(format!(
                "harness fell behind: {} media ticks were sent more than 50 ms late",
                peers.late_ticks
            ));
        }
        if peers.send_drops > 0 {
            warnings.push(format!(
                "{} datagrams could not be sent (socket buffers full)",
                peers.send_drops
            ));
        }
        if peers.failed > 0 {
            warnings.push(format!(
                "{} of {} peers failed to connect or stay connected",
                peers.failed, peers.added
            ));
        }
        Report {
            scenario: scenario.to_owned(),
            parameters,
            duration_s: duration.as_secs_f64(),
            peers,
            streams: recorder.streams,
            loss_pct: recorder.streams.loss_pct(),
            latency: recorder.latency.summary(),
            join: recorder.join.summary(),
            connect: recorder.connect.summary(),
            harness,
            relay: None,
            relay_memory: None,
            harness_memory: None,
            control: None,
            ramp: None,
            load_average: load_average(),
            impairment: None,
            series: recorder.series.points(),
            warnings,
        }
    }

    /// The JSON report (pretty-printed).
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }

    /// The final plain-text table.
    pub fn table(&self) -> String {
        table::render(self)
    }

    /// An SVG plot of latency and throughput over time.
    pub fn svg(&self) -> String {
        svg::render(self)
    }
}

#[cfg(test)]
#[path = "report_tests.rs"]
mod tests;
