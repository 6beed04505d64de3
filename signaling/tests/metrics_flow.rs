//! `/metrics` after a real flow over HTTP and WebSockets: logins and
//! failures, an admission (with its wait and its failed relay placement),
//! a patient still waiting per room, connections, relays by state; no
//! patient data in the output; the bearer token when one is configured.
//!
//! One test function: the counters are process-wide.
#![allow(clippy::float_cmp)] // samples are small integer counts, exact in f64

mod support;

use protocol::Sensitive;
use serde_json::json;
use support::{PASSWORD, TestServer, action, http};

/// The value of the sample line `name` (with labels) in `text`.
fn sample(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

async fn scrape(server: &TestServer, auth: Option<&str>) -> (u16, String) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let auth = auth
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let req = format!("GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{auth}\r\n");
    let mut s = tokio::net::TcpStream::connect(server.addr)
        .await
        .expect("connect");
    s.write_all(req.as_bytes()).await.expect("write");
    let mut out = String::new();
    tokio::time::timeout(support::GUARD, s.read_to_string(&mut out))
        .await
        .expect("reply in time")
        .expect("read");
    let status = out
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = out
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

#[tokio::test]
async fn metrics_count_a_flow_without_patient_data() {
    let server = TestServer::start().await;
    let (status, before) = scrape(&server, None).await;
    assert_eq!(status, 200, "{before}");
    let base = |name: &str| sample(&before, name).unwrap_or(0.0);

    // Logins: one success, two failures (wrong password, unknown user).
    let ok = json!({"username": "dr-a", "password": PASSWORD});
    assert_eq!(
        http(server.addr, "POST", "/api/login", Some(&ok)).await.0,
        200
    );
    let bad = json!({"username": "dr-a", "password": "not-the-password-at-all"});
    assert_eq!(
        http(server.addr, "POST", "/api/login", Some(&bad)).await.0,
        401
    );
    let nobody = json!({"username": "nobody", "password": "not-the-password-at-all"});
    assert_eq!(
        http(server.addr, "POST", "/api/login", Some(&nobody))
            .await
            .0,
        401
    );

    // Two patients wait; one is admitted (no relay is registered, so
    // placing the call fails), the other is still waiting.
    let (_p1c, p1, _) = server
        .joined_patient("a-gp", "Zelda Quintessa", "crushing chest pain")
        .await;
    let (_p2c, _p2, _) = server
        .joined_patient("a-gp", "Yannick Obscurio", "rash on elbow")
        .await;
    let (mut dr, _) = server.clinician("dr-a").await;
    dr.send(&action("admit", &p1, 7)).await;
    dr.expect(|m| m["type"] == "ok" && m["request"] == 7).await;

    let (status, after) = scrape(&server, None).await;
    assert_eq!(status, 200);
    let delta = |name: &str| sample(&after, name).unwrap_or(f64::NAN) - base(name);
    assert_eq!(delta("anteroom_logins_total"), 2.0, "{after}"); // HTTP + the clinician's
    assert_eq!(
        delta("anteroom_login_failures_total{reason=\"bad_password\"}"),
        1.0
    );
    assert_eq!(
        delta("anteroom_login_failures_total{reason=\"unknown_username\"}"),
        1.0
    );
    assert_eq!(delta("anteroom_admits_total"), 1.0);
    assert_eq!(delta("anteroom_audit_events_total{action=\"admit\"}"), 1.0);
    assert_eq!(delta("anteroom_wait_seconds_count"), 1.0);
    assert_eq!(delta("anteroom_wait_seconds_bucket{le=\"+Inf\"}"), 1.0);
    assert!(delta("anteroom_placement_failures_total") >= 1.0, "{after}");
    assert_eq!(
        sample(&after, "anteroom_waiting_patients{room=\"a-gp\"}"),
        Some(1.0)
    );
    assert_eq!(sample(&after, "anteroom_ws_connections"), Some(3.0));
    assert_eq!(sample(&after, "anteroom_seats"), Some(2.0));
    for state in ["ready", "draining", "stale"] {
        let name = format!("anteroom_relays{{state=\"{state}\"}}");
        assert_eq!(sample(&after, &name), Some(0.0), "{name}");
    }
    for secret in [
        "Zelda",
        "Quintessa",
        "chest",
        "Yannick",
        "elbow",
        "nobody",
        PASSWORD,
    ] {
        assert!(!after.contains(secret), "{secret} in /metrics");
    }
    assert!(
        !after.contains(p1.as_str()),
        "participant ids stay out of /metrics"
    );
    server.stop().await.expect("stop");

    // With a token, only requests bearing it are answered.
    let token = "metrics-token-0123456789";
    let server = TestServer::start_with(|s| {
        s.metrics.metrics_token = Some(Sensitive::new(token.to_owned()));
    })
    .await;
    assert_eq!(scrape(&server, None).await.0, 403);
    assert_eq!(scrape(&server, Some("wrong-token-0123456789")).await.0, 403);
    let (status, body) = scrape(&server, Some(token)).await;
    assert_eq!(status, 200);
    assert!(
        body.contains("# TYPE anteroom_wait_seconds histogram"),
        "{body}"
    );
    server.stop().await.expect("stop");
}
