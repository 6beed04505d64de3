//! CSRF protection of cookie-authenticated REST writes, the login-CSRF
//! origin check, and "disabling a clinician ends their live sessions at
//! once", through a full signaling server on 127.0.0.1.

mod support;

use std::fmt::Write as _;

use std::sync::Arc;

use protocol::client::ErrorCode;
use serde_json::{Value, json};
use support::{PASSWORD, TestServer, http_json};

use signaling::auth::{Auth, AuthSettings};
use signaling::directory::Directory;

/// One request; returns (status, head, parsed JSON body or Null).
async fn call(
    s: &TestServer,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &Value,
) -> (u16, String, Value) {
    http_json(s.addr, method, path, headers, body).await
}

/// Logs in over HTTP; returns (session token, CSRF token, Cookie header).
async fn login(s: &TestServer, user: &str) -> (String, String, String) {
    let (status, head, v) = call(
        s,
        "POST",
        "/api/login",
        &[],
        &json!({"username": user, "password": PASSWORD}),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert!(
        head.to_ascii_lowercase()
            .contains("set-cookie: anteroom_session="),
        "{head}"
    );
    let token = v["token"].as_str().unwrap().to_owned();
    let csrf = v["csrf_token"]
        .as_str()
        .expect("login reply carries csrf_token")
        .to_owned();
    assert_ne!(csrf, token);
    let cookie = format!("anteroom_session={token}");
    (token, csrf, cookie)
}

fn code(v: &Value) -> &str {
    v["error"]["code"].as_str().unwrap_or("")
}

#[tokio::test]
async fn cookie_writes_need_the_sessions_own_csrf_token() {
    let s = TestServer::start().await;
    let (token, csrf, cookie) = login(&s, "dr-a").await;
    let (_, other_csrf, _) = login(&s, "dr-a2").await;

    // /api/me hands the page the same token (e.g. after a reload).
    let (status, _, me) = call(&s, "GET", "/api/me", &[("Cookie", &cookie)], &Value::Null).await;
    assert_eq!(status, 200);
    assert_eq!(me["csrf_token"], csrf.as_str());

    let path = "/api/logout";
    for (label, extra) in [
        ("missing", vec![]),
        (
            "wrong",
            vec![(
                "X-CSRF-Token",
                "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            )],
        ),
        (
            "another session's",
            vec![("X-CSRF-Token", other_csrf.as_str())],
        ),
        ("garbage", vec![("X-CSRF-Token", "not a token at all")]),
    ] {
        let mut h = vec![("Cookie", cookie.as_str())];
        h.extend(extra);
        let (status, _, v) = call(&s, "POST", path, &h, &Value::Null).await;
        assert_eq!(
            (status, code(&v)),
            (403, "csrf_failed"),
            "{label} token: {v}"
        );
        assert!(
            v["error"]["message"]
                .as_str()
                .unwrap()
                .contains("X-CSRF-Token")
        );
    }
    // Nothing happened: the session is still live.
    let (status, _, _) = call(&s, "GET", "/api/me", &[("Cookie", &cookie)], &Value::Null).await;
    assert_eq!(status, 200, "refused logouts must not log out");

    // A route another module adds (the ingest API) is covered by the same layer.
    let (status, _, v) = call(
        &s,
        "POST",
        "/api/calls/a-gp/ingest",
        &[("Cookie", &cookie)],
        &json!({}),
    )
    .await;
    assert_eq!((status, code(&v)), (403, "csrf_failed"), "{v}");

    // The right token passes.
    let (status, _, v) = call(
        &s,
        "POST",
        path,
        &[("Cookie", &cookie), ("X-CSRF-Token", &csrf)],
        &Value::Null,
    )
    .await;
    assert_eq!(status, 204, "{v}");
    let (status, _, _) = call(&s, "GET", "/api/me", &[("Cookie", &cookie)], &Value::Null).await;
    assert_eq!(status, 401);

    // Audited, without tokens.
    let audit = s.audit_json();
    let refused: Vec<&Value> = audit
        .iter()
        .filter(|e| e["action"] == "csrf_rejected")
        .collect();
    assert_eq!(refused.len(), 5, "{audit:?}");
    assert_eq!(refused[0]["actor"], "dr-a");
    assert_eq!(refused[0]["detail"], "missing_token");
    assert_eq!(refused[1]["detail"], "token_mismatch");
    assert_eq!(refused[0]["source"], "127.0.0.1");
    let all = serde_json::to_string(&audit).unwrap();
    for secret in [&token, &csrf, &other_csrf] {
        assert!(
            !all.contains(secret.as_str()),
            "a token reached the audit trail"
        );
    }
}

#[tokio::test]
async fn bearer_requests_and_dead_cookies_are_not_csrf_checked() {
    let s = TestServer::start().await;
    let (token, _, _) = login(&s, "dr-a").await;
    let (_, _, other_cookie) = login(&s, "dr-a2").await;
    // Bearer wins over a cookie; no CSRF token needed (browsers never add one).
    let bearer = format!("Bearer {token}");
    let (status, _, v) = call(
        &s,
        "POST",
        "/api/logout",
        &[("Authorization", &bearer), ("Cookie", &other_cookie)],
        &Value::Null,
    )
    .await;
    assert_eq!(status, 204, "{v}");
    // A cookie whose session is gone authenticates nothing: 401, not 403.
    let dead = format!("anteroom_session={token}");
    let (status, _, v) = call(
        &s,
        "POST",
        "/api/calls/a-gp/ingest",
        &[("Cookie", &dead)],
        &json!({}),
    )
    .await;
    assert_eq!((status, code(&v)), (401, "unauthenticated"), "{v}");
    // "Authorization: Basic" is not a bearer token: the cookie still needs CSRF.
    let (status, _, v) = call(
        &s,
        "POST",
        "/api/logout",
        &[("Authorization", "Basic eDp5"), ("Cookie", &other_cookie)],
        &Value::Null,
    )
    .await;
    assert_eq!((status, code(&v)), (403, "csrf_failed"), "{v}");
}

#[tokio::test]
async fn cross_site_login_posts_are_refused() {
    let s = TestServer::start().await;
    let body = json!({"username": "dr-a", "password": PASSWORD});
    let host_origin = format!("http://{}", s.addr);
    for (label, headers) in [
        ("cross-site fetch", vec![("Sec-Fetch-Site", "cross-site")]),
        ("sibling subdomain", vec![("Sec-Fetch-Site", "same-site")]),
        ("foreign Origin", vec![("Origin", "https://evil.example")]),
        ("opaque Origin", vec![("Origin", "null")]),
    ] {
        let (status, head, v) = call(&s, "POST", "/api/login", &headers, &body).await;
        assert_eq!((status, code(&v)), (403, "cross_site"), "{label}: {v}");
        assert!(!head.to_ascii_lowercase().contains("set-cookie"), "{label}");
    }
    for (label, headers) in [
        (
            "same-origin fetch",
            vec![
                ("Sec-Fetch-Site", "same-origin"),
                ("Origin", host_origin.as_str()),
            ],
        ),
        ("own Origin", vec![("Origin", host_origin.as_str())]),
        ("not a browser", vec![]),
    ] {
        let (status, _, v) = call(&s, "POST", "/api/login", &headers, &body).await;
        assert_eq!(status, 200, "{label}: {v}");
    }
    let audit = s.audit_json();
    let refused = audit
        .iter()
        .filter(|e| e["action"] == "csrf_rejected" && e["detail"] == "cross_site")
        .count();
    assert_eq!(refused, 4);
}

/// A round trip proving a clinician socket still works.
async fn still_open(c: &mut support::Client) {
    c.send(&json!({"type": "subscribe", "request": 2})).await;
    c.expect_type("queue_snapshot").await;
}

fn org_with_admin() -> String {
    let hash = signaling::auth::hash_password(PASSWORD);
    let mut s = String::from(
        "[[tenant]]\nid = \"org-a\"\nname = \"Org A\"\n\
         [[room]]\nid = \"a-gp\"\ntenant = \"org-a\"\nname = \"A GP\"\n",
    );
    for (id, role) in [
        ("boss", "admin"),
        ("dr-a", "clinician"),
        ("dr-a2", "clinician"),
    ] {
        let _ = write!(
            s,
            "[[clinician]]\nid = \"{id}\"\ntenant = \"org-a\"\nusername = \"{id}\"\n\
             display_name = \"Dr {id}\"\nrole = \"{role}\"\npassword_hash = \"{hash}\"\n"
        );
    }
    s
}

/// A full server whose directory has an admin (`boss`) and clinicians `dr-a`, `dr-a2`.
async fn server_with_admin() -> TestServer {
    let toml = org_with_admin();
    TestServer::start_with(move |s| {
        let directory = Arc::new(Directory::from_toml_str(&toml).expect("directory"));
        s.auth = Arc::new(Auth::new(
            directory.clone(),
            s.audit.clone(),
            AuthSettings::default(),
        ));
        s.directory = directory;
    })
    .await
}

#[tokio::test]
async fn disabling_a_clinician_closes_their_sockets_and_sessions_at_once() {
    let s = server_with_admin().await;
    let dr_a_1 = s.login("dr-a");
    let dr_a_2 = s.login("dr-a");
    let (mut sock_1, _) = s.clinician_with(&dr_a_1).await;
    let (mut sock_2, _) = s.clinician_with(&dr_a_2).await;
    let (mut colleague, _) = s.clinician("dr-a2").await;
    let boss = format!("Bearer {}", s.login("boss"));

    let (status, _, v) = call(
        &s,
        "POST",
        "/api/admin/clinicians/dr-a/disable",
        &[("Authorization", &boss)],
        &Value::Null,
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["enabled"], false);

    // Both sockets are told and closed without sending anything themselves.
    for sock in [&mut sock_1, &mut sock_2] {
        assert_eq!(sock.expect_error().await, ErrorCode::SessionExpired);
        sock.expect_closed().await;
    }
    // Every session of the account is gone.
    for token in [&dr_a_1, &dr_a_2] {
        let bearer = format!("Bearer {token}");
        let (status, _, v) = call(
            &s,
            "GET",
            "/api/me",
            &[("Authorization", &bearer)],
            &Value::Null,
        )
        .await;
        assert_eq!((status, code(&v)), (401, "unauthenticated"));
    }
    // A colleague's socket is untouched.
    still_open(&mut colleague).await;
}

#[tokio::test]
async fn logging_out_closes_that_sessions_socket_only() {
    let s = server_with_admin().await;
    let gone = s.login("dr-a");
    let kept = s.login("dr-a");
    let (mut sock_gone, _) = s.clinician_with(&gone).await;
    let (mut sock_kept, _) = s.clinician_with(&kept).await;
    let bearer = format!("Bearer {gone}");
    let (status, _, _) = call(
        &s,
        "POST",
        "/api/logout",
        &[("Authorization", &bearer)],
        &Value::Null,
    )
    .await;
    assert_eq!(status, 204);
    assert_eq!(sock_gone.expect_error().await, ErrorCode::SessionExpired);
    sock_gone.expect_closed().await;
    still_open(&mut sock_kept).await;
}
