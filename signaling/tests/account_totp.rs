//! The TOTP second factor through the REST API of a full signaling server:
//! enrolment, login with/without/wrong/replayed code, throttling of codes,
//! and the admin reset.

mod support;

use std::fmt::Write as _;

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use signaling::auth::totp::{code_at, secret_from_base32};
use signaling::auth::{Auth, AuthSettings};
use signaling::directory::Directory;
use support::{PASSWORD, TestServer, http_json, http_raw};

async fn call(
    s: &TestServer,
    method: &str,
    path: &str,
    bearer: Option<&str>,
    body: &Value,
) -> (u16, String, Value) {
    let auth = bearer.map(|t| format!("Bearer {t}"));
    let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("Authorization", a.as_str())).collect();
    http_json(s.addr, method, path, &headers, body).await
}

fn code(v: &Value) -> &str {
    v["error"]["code"].as_str().unwrap_or("")
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A full server: org-a with admin `boss` and clinician `dr-a`; org-b with admin `boss-b`.
async fn server() -> TestServer {
    let hash = signaling::auth::hash_password(PASSWORD);
    let mut toml = String::from(
        "[[tenant]]\nid = \"org-a\"\nname = \"Org A\"\n[[tenant]]\nid = \"org-b\"\nname = \"Org B\"\n",
    );
    for (id, org, role) in [
        ("boss", "org-a", "admin"),
        ("dr-a", "org-a", "clinician"),
        ("boss-b", "org-b", "admin"),
    ] {
        let _ = write!(
            toml,
            "[[clinician]]\nid = \"{id}\"\ntenant = \"{org}\"\nusername = \"{id}\"\n\
             display_name = \"Dr {id}\"\nrole = \"{role}\"\npassword_hash = \"{hash}\"\n"
        );
    }
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

async fn password_step(s: &TestServer, user: &str) -> (u16, String, Value) {
    call(
        s,
        "POST",
        "/api/login",
        None,
        &json!({"username": user, "password": PASSWORD}),
    )
    .await
}

/// Enrols `dr-a`; returns the secret.
async fn enrol(s: &TestServer) -> Vec<u8> {
    let token = s.login("dr-a");
    let (status, _, v) = call(s, "POST", "/api/me/totp", Some(&token), &Value::Null).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        (v["digits"].as_u64(), v["period_secs"].as_u64()),
        (Some(6), Some(30))
    );
    assert_eq!(v["algorithm"], "SHA1");
    let b32 = v["secret"].as_str().unwrap();
    let uri = v["otpauth_uri"].as_str().unwrap();
    assert!(
        uri.starts_with("otpauth://totp/Anteroom:dr-a?") && uri.contains(&format!("secret={b32}")),
        "{uri}"
    );
    let secret = secret_from_base32(b32).unwrap();

    // Not active until confirmed: the password alone still logs in.
    let (status, _, _) = password_step(s, "dr-a").await;
    assert_eq!(status, 200);

    let (status, _, v) = call(
        s,
        "POST",
        "/api/me/totp/confirm",
        Some(&token),
        &json!({"code": "000000"}),
    )
    .await;
    assert_eq!((status, code(&v)), (400, "invalid_request"), "{v}");
    let good = code_at(&secret, unix_now());
    let (status, _, v) = call(
        s,
        "POST",
        "/api/me/totp/confirm",
        Some(&token),
        &json!({"code": good}),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    let (_, _, me) = call(s, "GET", "/api/me", Some(&token), &Value::Null).await;
    assert_eq!(me["totp_enabled"], true);
    // A second enrolment is refused while one is active.
    let (status, _, v) = call(s, "POST", "/api/me/totp", Some(&token), &Value::Null).await;
    assert_eq!((status, code(&v)), (409, "totp_already_enabled"));
    secret
}

#[tokio::test]
async fn enrolled_login_needs_a_fresh_code_after_the_password() {
    let s = server().await;
    let secret = enrol(&s).await;

    // Password alone: no session, a ticket for the code step.
    let (status, head, v) = password_step(&s, "dr-a").await;
    assert_eq!((status, code(&v)), (401, "totp_required"), "{v}");
    assert!(v.get("token").is_none() && !head.to_ascii_lowercase().contains("set-cookie"));
    let ticket = v["ticket"].as_str().unwrap().to_owned();

    // A wrong code is a failed login; the ticket stays usable.
    let (status, _, v) = call(
        &s,
        "POST",
        "/api/login/totp",
        None,
        &json!({"ticket": ticket, "code": "123456"}),
    )
    .await;
    assert_eq!((status, code(&v)), (401, "invalid_credentials"), "{v}");

    // The confirming code's step is used: the next step's code logs in.
    let next = code_at(&secret, unix_now() + 30);
    let (status, head, v) = call(
        &s,
        "POST",
        "/api/login/totp",
        None,
        &json!({"ticket": ticket, "code": next}),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert!(
        head.to_ascii_lowercase()
            .contains("set-cookie: anteroom_session=")
    );
    assert!(v["csrf_token"].is_string());
    let token = v["token"].as_str().unwrap();
    let (status, _, me) = call(&s, "GET", "/api/me", Some(token), &Value::Null).await;
    assert_eq!((status, me["clinician"].as_str()), (200, Some("dr-a")));

    // The ticket was single use; the same code again is a replay.
    let (status, _, v) = call(
        &s,
        "POST",
        "/api/login/totp",
        None,
        &json!({"ticket": ticket, "code": next}),
    )
    .await;
    assert_eq!((status, code(&v)), (401, "login_expired"));
    let (_, _, v) = password_step(&s, "dr-a").await;
    let ticket2 = v["ticket"].as_str().unwrap().to_owned();
    let (status, _, v) = call(
        &s,
        "POST",
        "/api/login/totp",
        None,
        &json!({"ticket": ticket2, "code": next}),
    )
    .await;
    assert_eq!(
        (status, code(&v)),
        (401, "invalid_credentials"),
        "replayed code: {v}"
    );

    let audit = s.audit_json();
    let details: Vec<&str> = audit
        .iter()
        .filter(|e| e["action"] == "login_failed")
        .filter_map(|e| e["detail"].as_str())
        .collect();
    assert_eq!(details, ["bad_totp", "totp_replayed"], "{audit:?}");
    assert!(
        audit
            .iter()
            .any(|e| e["action"] == "totp_enrolled" && e["actor"] == "dr-a")
    );
    assert!(
        audit
            .iter()
            .any(|e| e["action"] == "login" && e["detail"] == "totp")
    );
    let all = serde_json::to_string(&audit).unwrap();
    for secret_text in [ticket.as_str(), ticket2.as_str(), next.as_str()] {
        assert!(
            !all.contains(secret_text),
            "a ticket or code reached the audit trail"
        );
    }

    // Wrong codes are throttled like wrong passwords (5 free failures per
    // username and address, then back-off): the password step and the
    // replay above are two; three more wrong codes make five.
    for _ in 0..3 {
        let (status, _, _) = call(
            &s,
            "POST",
            "/api/login/totp",
            None,
            &json!({"ticket": ticket2, "code": "000000"}),
        )
        .await;
        assert_eq!(status, 401);
    }
    let (status, head, v) = call(
        &s,
        "POST",
        "/api/login/totp",
        None,
        &json!({"ticket": ticket2, "code": code_at(&secret, unix_now())}),
    )
    .await;
    assert_eq!((status, code(&v)), (429, "throttled"), "{v}");
    assert!(head.to_ascii_lowercase().contains("retry-after:"));
    let (status, _, v) = password_step(&s, "dr-a").await;
    assert_eq!(
        (status, code(&v)),
        (429, "throttled"),
        "the password step shares the counter"
    );

    // Counted in the metrics by reason (never by user).
    let (status, _, text) = http_raw(s.addr, "GET", "/metrics", &[], "").await;
    assert_eq!(status, 200);
    for line in [
        "anteroom_login_failures_total{reason=\"bad_totp\"} 4",
        "anteroom_login_failures_total{reason=\"totp_replayed\"} 1",
    ] {
        assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
    }
}

#[tokio::test]
async fn an_admin_resets_a_clinicians_second_factor_in_their_own_org_only() {
    let s = server().await;
    enrol(&s).await;
    let boss = s.login("boss");
    let boss_b = s.login("boss-b");
    let dr_a = s.login_checked("dr-a");
    assert!(
        dr_a.is_none(),
        "direct Auth login of an enrolled account needs the code"
    );

    let listed = |v: &Value| {
        v["clinicians"]
            .as_array()
            .and_then(|a| a.iter().find(|c| c["id"] == "dr-a"))
            .map(|c| c["totp_enabled"].clone())
    };
    let (_, _, list) = call(
        &s,
        "GET",
        "/api/admin/clinicians",
        Some(&boss),
        &Value::Null,
    )
    .await;
    assert_eq!(listed(&list), Some(json!(true)), "{list}");

    let path = "/api/admin/clinicians/dr-a/totp/reset";
    let (status, _, v) = call(&s, "POST", path, Some(&boss_b), &Value::Null).await;
    assert_eq!(
        (status, code(&v)),
        (404, "not_found"),
        "another org's admin"
    );
    let (status, _, v) = call(
        &s,
        "POST",
        "/api/admin/clinicians/boss/totp/reset",
        Some(&s.login("boss")),
        &Value::Null,
    )
    .await;
    assert_eq!(status, 200, "{v}");

    let (status, _, v) = call(&s, "POST", path, Some(&boss), &Value::Null).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["totp_enabled"], false);
    let (_, _, list) = call(
        &s,
        "GET",
        "/api/admin/clinicians",
        Some(&boss),
        &Value::Null,
    )
    .await;
    assert_eq!(listed(&list), Some(json!(false)), "{list}");
    // The password alone logs in again.
    let (status, _, v) = password_step(&s, "dr-a").await;
    assert_eq!(status, 200, "{v}");
    // A clinician cannot reset anyone.
    let dr_token = v["token"].as_str().unwrap();
    let (status, _, _) = call(&s, "POST", path, Some(dr_token), &Value::Null).await;
    assert_eq!(status, 403);

    let audit = s.audit_json();
    let resets: Vec<&Value> = audit
        .iter()
        .filter(|e| e["action"] == "totp_reset")
        .collect();
    assert_eq!(resets.len(), 2);
    assert_eq!(resets[1]["actor"], "boss");
    assert_eq!(resets[1]["target_clinician"], "dr-a");
    assert_eq!(resets[1]["detail"], "was_enabled");
}

trait LoginChecked {
    fn login_checked(&self, user: &str) -> Option<String>;
}

impl LoginChecked for TestServer {
    fn login_checked(&self, user: &str) -> Option<String> {
        let local = std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);
        self.auth
            .login(user, PASSWORD, local, self.clock.now())
            .ok()
            .map(|(t, _)| t)
    }
}
