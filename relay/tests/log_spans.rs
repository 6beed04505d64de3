//! The relay's JSON logs (`--log-format json`) carry the span a line was
//! logged in: a request to its HTTP side listener logs one DEBUG `request`
//! line inside an `http` span with the route, status and latency.

mod common;

use std::process::{Child, Command, Stdio};

use common::{PATIENCE, SECRET};
use serde_json::Value;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::sync::mpsc;

/// Kills the relay when the test ends, passed or not.
struct Kill(Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The next JSON log line for which `pred` holds.
async fn line_where(
    lines: &mut mpsc::UnboundedReceiver<Value>,
    pred: impl Fn(&Value) -> bool,
) -> Value {
    tokio::time::timeout(PATIENCE, async {
        loop {
            let line = lines.recv().await.expect("the relay is still logging");
            if pred(&line) {
                return line;
            }
        }
    })
    .await
    .expect("the expected log line in time")
}

#[tokio::test]
async fn a_metrics_request_logs_a_json_line_in_its_http_span() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_relay"))
        .args([
            "--standalone",
            "--advertise",
            "127.0.0.1",
            "--metrics-listen",
            "127.0.0.1:0",
            "--log-format",
            "json",
        ])
        .env_clear()
        .env("RUST_LOG", "relay=debug")
        .env("ANTEROOM_RELAY_SECRET", SECRET)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the relay starts");
    let stdout = child.stdout.take().expect("piped");
    let _kill = Kill(child);
    // A plain thread reads (logs go to stdout), so a failure cannot leave the
    // runtime waiting for a blocked reader.
    let (tx, mut lines) = mpsc::unbounded_channel();
    std::thread::spawn(move || {
        use std::io::BufRead as _;
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            let json = serde_json::from_str(&line)
                .unwrap_or_else(|e| Value::String(format!("not JSON ({e}): {line}")));
            if tx.send(json).is_err() {
                break;
            }
        }
    });
    let started = line_where(&mut lines, |l| {
        l["fields"]["message"] == "relay started" || l.is_string()
    })
    .await;
    let metrics = started["fields"]["metrics"]
        .as_str()
        .unwrap_or_else(|| panic!("no metrics address: {started}"))
        .to_owned();

    let mut tcp = tokio::net::TcpStream::connect(&metrics)
        .await
        .expect("connect");
    let request = format!("GET /healthz HTTP/1.1\r\nHost: {metrics}\r\nConnection: close\r\n\r\n");
    tcp.write_all(request.as_bytes()).await.expect("write");
    let mut reply = String::new();
    tcp.read_to_string(&mut reply).await.expect("read");
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");

    let line = line_where(&mut lines, |l| {
        l["fields"]["message"] == "request" || l.is_string()
    })
    .await;
    assert_eq!(line["level"], "DEBUG", "{line}");
    assert_eq!(line["span"]["name"], "http", "{line}");
    assert_eq!(line["span"]["route"], "/healthz", "{line}");
    assert_eq!(line["span"]["method"], "GET", "{line}");
    assert_eq!(line["span"]["status"], 200, "{line}");
    assert!(line["span"]["latency_ms"].is_u64(), "{line}");
    assert_eq!(line["spans"][0]["name"], "http", "{line}");
}
