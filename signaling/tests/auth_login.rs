//! Login, `me`, logout and throttling through real HTTP on 127.0.0.1.

#[path = "auth_support/mod.rs"]
mod support;

use serde_json::json;
use support::{PASSWORD, Server, two_orgs};

#[tokio::test]
async fn login_returns_a_token_and_a_strict_http_only_cookie() {
    let s = Server::start(&two_orgs()).await;
    let r = s
        .post_json(
            "/api/login",
            None,
            &json!({ "username": "Lee", "password": PASSWORD }),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let v = r.json();
    let token = v["token"].as_str().unwrap();
    assert!(token.len() >= 43, "256-bit token, base64url");
    assert_eq!(v["clinician"], "dr-lee");
    assert_eq!(v["tenant"], "north");
    assert_eq!(v["role"], "clinician");
    assert_eq!(v["display_name"], "Name of dr-lee");
    assert_eq!(v["idle_timeout_secs"], 1200);
    let cookie = r.header("set-cookie").unwrap();
    assert!(
        cookie.starts_with(&format!("anteroom_session={token};")),
        "{cookie}"
    );
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(cookie.contains(attr), "{cookie} lacks {attr}");
    }
    assert_eq!(r.header("cache-control"), Some("no-store"));

    // The token works as a Bearer header and as the cookie.
    let me = s.with_token("GET", "/api/me", token).await;
    assert_eq!(me.status, 200, "{}", me.body);
    assert_eq!(me.json()["clinician"], "dr-lee");
    assert_eq!(me.json()["rooms"][0]["id"], "north-gp");
    assert_eq!(
        me.json()["rooms"].as_array().unwrap().len(),
        1,
        "own org's rooms only"
    );
    let cookie_header = format!("anteroom_session={token}");
    let me = s
        .call("GET", "/api/me", &[("Cookie", &cookie_header)], None)
        .await;
    assert_eq!(me.status, 200);
}

#[tokio::test]
async fn bad_password_and_unknown_user_get_the_same_401() {
    let s = Server::start(&two_orgs()).await;
    let bad = s
        .post_json(
            "/api/login",
            None,
            &json!({ "username": "lee", "password": "not the password" }),
        )
        .await;
    let unknown = s
        .post_json(
            "/api/login",
            None,
            &json!({ "username": "nobody", "password": PASSWORD }),
        )
        .await;
    assert_eq!(bad.status, 401);
    assert_eq!(bad.error_code(), "invalid_credentials");
    assert_eq!(bad.body, unknown.body);
    assert!(bad.header("set-cookie").is_none());
    let events = s.audit_events();
    assert_eq!(events.len(), 2);
    assert_eq!(events[0]["action"], "login_failed");
    assert_eq!(events[0]["actor"], "dr-lee");
    assert_eq!(events[0]["source"], "127.0.0.1");
    assert_eq!(events[1]["action"], "login_failed");
    assert!(events[1].get("actor").is_none());
    s.assert_audit_free_of(&["not the password", PASSWORD, "nobody"]);
}

#[tokio::test]
async fn bad_requests_get_json_errors() {
    let s = Server::start(&two_orgs()).await;
    let ct = [("Content-Type", "application/json")];
    let r = s.call("POST", "/api/login", &ct, Some("{not json")).await;
    assert_eq!((r.status, r.error_code().as_str()), (400, "invalid_json"));
    let r = s
        .call("POST", "/api/login", &ct, Some(r#"{"username":"lee"}"#))
        .await;
    assert_eq!((r.status, r.error_code().as_str()), (400, "invalid_json"));
    let r = s
        .call(
            "POST",
            "/api/login",
            &[],
            Some(r#"{"username":"lee","password":"x"}"#),
        )
        .await;
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (415, "unsupported_media_type")
    );
    let huge = json!({ "username": "lee", "password": "x".repeat(20_000) }).to_string();
    let r = s.call("POST", "/api/login", &ct, Some(&huge)).await;
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (413, "payload_too_large")
    );
    let r = s.call("GET", "/api/me", &[], None).await;
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (401, "unauthenticated")
    );
    assert_eq!(r.header("www-authenticate"), Some("Bearer"));
    let r = s.with_token("GET", "/api/me", "forged-token").await;
    assert_eq!(r.status, 401);
}

#[tokio::test]
async fn logout_ends_the_session_on_the_server() {
    let s = Server::start(&two_orgs()).await;
    let token = s.login("lee").await;
    let r = s.with_token("POST", "/api/logout", &token).await;
    assert_eq!(r.status, 204);
    assert!(r.header("set-cookie").unwrap().contains("Max-Age=0"));
    let me = s.with_token("GET", "/api/me", &token).await;
    assert_eq!(me.status, 401);
    // Logging out with a cookie works too.
    let token = s.login("lee").await;
    let cookie = format!("anteroom_session={token}");
    let r = s
        .call("POST", "/api/logout", &[("Cookie", &cookie)], None)
        .await;
    assert_eq!(r.status, 204);
    assert_eq!(s.with_token("GET", "/api/me", &token).await.status, 401);
    let actions: Vec<String> = s
        .audit_events()
        .iter()
        .map(|e| e["action"].to_string())
        .collect();
    assert_eq!(
        actions,
        ["\"login\"", "\"logout\"", "\"login\"", "\"logout\""]
    );
    s.assert_audit_free_of(&[&token, PASSWORD]);
}

#[tokio::test]
async fn repeated_failures_are_throttled_with_retry_after_per_source() {
    let s = Server::start(&two_orgs()).await;
    let body = json!({ "username": "lee", "password": "guess guess guess" }).to_string();
    let ct = [("Content-Type", "application/json")];
    for _ in 0..5 {
        let r = s
            .call_from("127.0.0.9", "POST", "/api/login", &ct, Some(&body))
            .await;
        assert_eq!(r.status, 401);
    }
    // The right password from the attacking address is not even checked now.
    let right = json!({ "username": "lee", "password": PASSWORD }).to_string();
    let r = s
        .call_from("127.0.0.9", "POST", "/api/login", &ct, Some(&right))
        .await;
    assert_eq!(r.status, 429, "{}", r.body);
    assert_eq!(r.error_code(), "throttled");
    assert_eq!(r.header("retry-after"), Some("1"));
    assert_eq!(r.json()["error"]["retry_after_secs"], 1);
    // The clinician at another address logs in unhindered.
    let token = s.login_from("127.0.0.2", "lee", PASSWORD).await;
    assert_eq!(s.with_token("GET", "/api/me", &token).await.status, 200);

    let events = s.audit_events();
    let throttled: Vec<_> = events
        .iter()
        .filter(|e| e["action"] == "login_throttled")
        .collect();
    assert_eq!(throttled.len(), 1);
    assert_eq!(throttled[0]["actor"], "dr-lee");
    assert_eq!(throttled[0]["source"], "127.0.0.9");
    s.assert_audit_free_of(&["guess guess", PASSWORD, &token]);
}
