//! Awaiting the JSON log lines of the cluster's processes (readiness and events are
//! read from the logs, never waited for by sleeping), on one process or on any of
//! several (the signaling nodes of a multi-node cluster).

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};

use crate::process::Process;

/// The `fields` object of a JSON log line whose message is `message`.
pub(crate) fn fields_of(line: &str, message: &str) -> Option<serde_json::Value> {
    let v: serde_json::Value = serde_json::from_str(line).ok()?;
    let fields = v.get("fields")?;
    (fields.get("message")?.as_str()? == message).then(|| fields.clone())
}

/// Awaits a JSON log line with `message` from `from` on; returns its fields.
pub async fn wait_message(
    process: &mut Process,
    from: usize,
    message: &str,
    timeout: Duration,
) -> Result<serde_json::Value> {
    wait_fields(process, from, message, timeout, |_| true).await
}

/// Awaits a JSON log line with `message` whose fields satisfy `pred`.
pub async fn wait_fields(
    process: &mut Process,
    from: usize,
    message: &str,
    timeout: Duration,
    pred: impl Fn(&serde_json::Value) -> bool,
) -> Result<serde_json::Value> {
    let line = process
        .wait_line(from, timeout, |l| {
            fields_of(l, message).is_some_and(|f| pred(&f))
        })
        .await
        .with_context(|| format!("awaiting log line {message:?}"))?;
    fields_of(&line, message).context("log line vanished")
}

/// Awaits a JSON log line with `message` whose fields satisfy `pred` on any of
/// `processes` (each looked at from its own cursor in `from`); returns the index of
/// the process that logged it and the fields.
pub async fn wait_fields_any(
    processes: &[(&Process, usize)],
    message: &str,
    timeout: Duration,
    pred: impl Fn(&serde_json::Value) -> bool,
) -> Result<(usize, serde_json::Value)> {
    let mut watches: Vec<_> = processes.iter().map(|(p, _)| p.line_watch()).collect();
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        for (i, (process, from)) in processes.iter().enumerate() {
            let hit = process.find_line(*from, |l| fields_of(l, message).is_some_and(|f| pred(&f)));
            if let Some(fields) = hit.as_deref().and_then(|l| fields_of(l, message)) {
                return Ok((i, fields));
            }
        }
        if tokio::time::Instant::now() >= deadline {
            let logs: Vec<String> = processes
                .iter()
                .map(|(p, _)| p.log_path().display().to_string())
                .collect();
            bail!("log line {message:?} not seen within {timeout:?}; see {logs:?}");
        }
        // Wake on any new line (or every 100 ms).
        let any =
            futures_util::future::select_all(watches.iter_mut().map(|w| Box::pin(w.changed())));
        let step = tokio::time::Instant::now() + Duration::from_millis(100);
        let _ = tokio::time::timeout_at(step.min(deadline), any).await;
    }
}

/// Whether a JSON field holds the string `value`.
pub fn field_is(fields: &serde_json::Value, name: &str, value: &str) -> bool {
    fields.get(name).and_then(serde_json::Value::as_str) == Some(value)
}

/// A socket address field of a log line.
pub(crate) fn addr_field(fields: &serde_json::Value, name: &str) -> Result<SocketAddr> {
    fields
        .get(name)
        .and_then(serde_json::Value::as_str)
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("no address field {name:?} in {fields}"))
}
