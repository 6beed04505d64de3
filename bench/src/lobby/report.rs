//! What `bench lobby` reports: latencies, counts, signaling's memory and CPU, the
//! harness's own CPU; as a table and as JSON.

use std::fmt::Write as _;

use crate::relayctl::Memory;
use crate::stats::Summary;

/// Signaling's resources, read from `/proc/<pid>`.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct SignalingUse {
    /// RSS before any bench user connected, KiB.
    pub rss_before_kib: u64,
    /// RSS with every patient of the fill seated, KiB.
    pub rss_full_kib: u64,
    /// RSS at the end of the churn phase, KiB.
    pub rss_end_kib: u64,
    /// Peak RSS, KiB.
    pub peak_kib: u64,
    /// (full − before) / patients seated by the fill, KiB.
    pub kib_per_waiting_patient: f64,
    /// CPU seconds over the whole run.
    pub cpu_s: f64,
}

/// The `bench lobby` report (the JSON report).
#[derive(Debug, Clone, serde::Serialize)]
pub struct LobbyReport {
    /// Parameters as given.
    pub parameters: serde_json::Value,
    /// Patients seated by the fill.
    pub filled: u64,
    /// Seconds the fill took.
    pub fill_s: f64,
    /// Seconds of churn (arrivals and admits) after the fill.
    pub churn_s: f64,
    /// Patients that arrived during the churn.
    pub arrivals: u64,
    /// Patients admitted.
    pub admitted: u64,
    /// Consultations ended (patients saw `consultation_ended`).
    pub ended: u64,
    /// Most patients waiting at once (bench's own patients).
    pub max_waiting: u64,
    /// Users that failed.
    pub errors: u64,
    /// Connect → seated with a position.
    pub join: Summary,
    /// Admit sent → every patient behind sees its new position.
    pub position_update: Summary,
    /// Admit sent → the patient receives `admitted`.
    pub admit: Summary,
    /// Admit sent → the clinician receives `ok`.
    pub admit_ack: Summary,
    /// Events clinicians received.
    pub clinician_events: u64,
    /// Signaling's memory and CPU (when `--pid` was given).
    pub signaling: Option<SignalingUse>,
    /// Bench's CPU seconds.
    pub harness_cpu_s: f64,
    /// Bench's memory.
    pub harness_memory: Option<Memory>,
    /// Machine load average (1, 5, 15 min) at the end.
    pub load_average: Option<[f64; 3]>,
    /// Reasons to distrust the numbers.
    pub warnings: Vec<String>,
}

fn summary(s: &Summary) -> String {
    if s.count == 0 {
        return "-".into();
    }
    format!(
        "p50 {:.1} ms  p95 {:.1} ms  p99 {:.1} ms  max {:.1} ms  (n={})",
        s.p50_ms, s.p95_ms, s.p99_ms, s.max_ms, s.count
    )
}

impl LobbyReport {
    /// The JSON report.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }

    /// The final table.
    pub fn table(&self) -> String {
        let mib = |k: u64| k as f64 / 1024.0;
        let mut rows: Vec<(&str, String)> = vec![
            (
                "fill",
                format!(
                    "{} patients seated in {:.1} s ({:.0} joins/s)",
                    self.filled,
                    self.fill_s,
                    self.filled as f64 / self.fill_s.max(1e-3)
                ),
            ),
            (
                "churn",
                format!(
                    "{:.1} s: {} arrivals, {} admitted, {} consultations ended, max {} waiting",
                    self.churn_s, self.arrivals, self.admitted, self.ended, self.max_waiting
                ),
            ),
            ("join", summary(&self.join)),
            ("position upd", summary(&self.position_update)),
            ("admit", summary(&self.admit)),
            ("admit ok", summary(&self.admit_ack)),
            ("errors", self.errors.to_string()),
        ];
        rows.push((
            "signaling",
            self.signaling.map_or_else(
                || "not measured (pass --pid <signaling pid>)".into(),
                |s| {
                    format!(
                        "RSS {:.1} → {:.1} MiB full → {:.1} MiB end (peak {:.1}); {:.1} KiB per waiting patient; CPU {:.2} s",
                        mib(s.rss_before_kib),
                        mib(s.rss_full_kib),
                        mib(s.rss_end_kib),
                        mib(s.peak_kib),
                        s.kib_per_waiting_patient,
                        s.cpu_s
                    )
                },
            ),
        ));
        rows.push((
            "bench",
            format!(
                "CPU {:.2} s; RSS {}",
                self.harness_cpu_s,
                self.harness_memory
                    .map_or_else(|| "-".into(), |m| format!("{:.1} MiB", mib(m.rss_kib)))
            ),
        ));
        if let Some([a, b, c]) = self.load_average {
            rows.push(("load avg", format!("{a:.2} {b:.2} {c:.2} (1/5/15 min)")));
        }
        let mut out = String::from("bench lobby\n");
        for (label, value) in rows {
            let _ = writeln!(out, "  {label:<13} {value}");
        }
        for w in &self.warnings {
            let _ = writeln!(out, "  WARNING       {w}");
        }
        out
    }
}
