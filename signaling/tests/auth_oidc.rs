//! OpenID Connect sign-in over real HTTP against a test provider on
//! 127.0.0.1 (`auth_oidc_support::idp`): a sign-in opens the same session as
//! a password login; every broken token, replayed or foreign state, injected
//! code and unknown user is refused with its own code on the portal page.

mod auth_oidc_support;
mod support;

use auth_oidc_support::{Browser, Env, Reply};
use protocol::{ClinicianId, TenantId};
use serde_json::Value;

/// The portal page a failure lands on.
fn refused_with(reply: &Reply, org: &str, code: &str) {
    assert_eq!(reply.status, 303, "{reply:?}");
    assert_eq!(
        reply.header("location"),
        Some(format!("/portal?org={org}&login_error={code}").as_str()),
        "{reply:?}"
    );
    assert!(
        !reply
            .set_cookies()
            .iter()
            .any(|(n, v)| n.contains("session") && !v.is_empty()),
        "no session on failure: {reply:?}"
    );
}

async fn me(b: &mut Browser) -> (u16, Value) {
    let r = b.get("/api/me").await;
    (
        r.status,
        serde_json::from_str(&r.body).unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn sign_in_opens_a_session_that_disabling_ends() {
    let env = Env::start().await;
    let mut b = env.browser();
    let reply = b.sign_in("north").await;
    assert_eq!(reply.status, 303, "{reply:?}");
    assert_eq!(reply.header("location"), Some("/portal"));
    let session = reply
        .headers
        .iter()
        .find(|(n, v)| n == "set-cookie" && v.starts_with("anteroom_session="))
        .map(|(_, v)| v.clone())
        .expect("session cookie");
    // The same cookie as a password login: HttpOnly, Strict, 12 h at most.
    assert!(session.contains("HttpOnly") && session.contains("SameSite=Strict"));
    assert!(session.contains("Max-Age=43200"), "{session}");

    let (status, body) = me(&mut b).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["clinician"], "dr-lee");
    assert_eq!(body["tenant"], "north");
    assert_eq!(body["idle_timeout_secs"], 1200);

    let audit = env.audit_lines();
    assert!(
        audit.iter().any(|l| l.contains(r#""action":"login""#)
            && l.contains(r#""actor":"dr-lee""#)
            && l.contains("oidc")),
        "{audit:?}"
    );

    // The organisation's admin (password login) disables the account through
    // the admin API: the OIDC session ends at once, like a password one.
    let login =
        serde_json::json!({"username": "nadmin", "password": auth_oidc_support::ADMIN_PASSWORD});
    let (status, _, body) = support::http(env.addr, "POST", "/api/login", Some(&login)).await;
    assert_eq!(status, 200, "{body}");
    let admin: Value = serde_json::from_str(&body).unwrap();
    let bearer = format!("Bearer {}", admin["token"].as_str().unwrap());
    let (status, _, body) = support::http_raw(
        env.addr,
        "POST",
        "/api/admin/clinicians/dr-lee/disable",
        &[("Authorization", bearer.as_str())],
        "",
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(me(&mut b).await.0, 401);
    let lee = ClinicianId::new("dr-lee").unwrap();
    assert_eq!(env.auth.end_sessions_of(&lee), 0, "already ended");
    // And a disabled account cannot sign in again.
    let mut again = env.browser();
    let reply = again.sign_in("north").await;
    refused_with(&reply, "north", "account_disabled");
}

#[tokio::test]
async fn wrong_tenant_is_refused() {
    let env = Env::start().await;
    env.idp.set(|k| k.tid = "tid-someone-else".into());
    let reply = env.browser().sign_in("north").await;
    refused_with(&reply, "north", "wrong_tenant");
}

#[tokio::test]
async fn wrong_audience_is_refused() {
    let env = Env::start().await;
    env.idp.set(|k| k.aud = Some("another-app".into()));
    let reply = env.browser().sign_in("north").await;
    refused_with(&reply, "north", "wrong_audience");
}

#[tokio::test]
async fn expired_token_is_refused() {
    let env = Env::start().await;
    // Beyond the 60 s leeway.
    env.idp.set(|k| k.exp_in = -120);
    let reply = env.browser().sign_in("north").await;
    refused_with(&reply, "north", "token_expired");
}

#[tokio::test]
async fn bad_signature_is_refused() {
    let env = Env::start().await;
    env.idp.set(|k| k.rogue_key = true);
    let reply = env.browser().sign_in("north").await;
    refused_with(&reply, "north", "bad_signature");
}

#[tokio::test]
async fn rs256_tokens_as_entra_signs_them_are_accepted() {
    let env = Env::start().await;
    env.idp.set(|k| k.rsa = true);
    let mut b = env.browser();
    assert_eq!(b.sign_in("north").await.header("location"), Some("/portal"));
    assert_eq!(me(&mut b).await.1["clinician"], "dr-lee");
}

#[tokio::test]
async fn wrong_issuer_is_refused() {
    let env = Env::start().await;
    env.idp.set(|k| k.iss = Some("https://evil.example".into()));
    let reply = env.browser().sign_in("north").await;
    refused_with(&reply, "north", "wrong_issuer");
}

#[tokio::test]
async fn nonce_of_another_sign_in_is_refused() {
    let env = Env::start().await;
    env.idp
        .set(|k| k.nonce = Some("a-nonce-from-elsewhere".into()));
    let reply = env.browser().sign_in("north").await;
    refused_with(&reply, "north", "nonce_mismatch");
}

#[tokio::test]
async fn unknown_user_is_refused_unless_provisioning() {
    let env = Env::start().await;
    env.idp.set(|k| k.sub = "sub-stranger".into());
    let mut b = env.browser();
    let reply = b.sign_in("north").await;
    refused_with(&reply, "north", "unknown_user");
    assert_eq!(me(&mut b).await.0, 401);
    let audit = env.audit_lines();
    assert!(
        audit
            .iter()
            .any(|l| l.contains("login_failed") && l.contains("oidc_unknown_user")),
        "{audit:?}"
    );

    // South provisions unknown users as clinicians, once.
    let mut s = env.browser();
    assert_eq!(s.sign_in("south").await.header("location"), Some("/portal"));
    let (status, body) = me(&mut s).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["tenant"], "south");
    assert_eq!(body["role"], "clinician");
    let id = body["clinician"].as_str().unwrap().to_owned();
    let mut s2 = env.browser();
    s2.sign_in("south").await;
    assert_eq!(me(&mut s2).await.1["clinician"], id.as_str());
    let south = TenantId::new("south").unwrap();
    assert_eq!(env.directory.clinicians_of(&south).len(), 1);
}

#[tokio::test]
async fn replayed_callback_is_refused() {
    let env = Env::start().await;
    let mut b = env.browser();
    let callback = b.reach_callback("north").await;
    let first = b.get(&callback).await;
    assert_eq!(first.header("location"), Some("/portal"));
    // The same browser opens the same callback URL again (back button, or an
    // attacker who read it): the state was single-use.
    let mut replay = b.clone();
    replay.cookies.retain(|(n, _)| n != "anteroom_session");
    replay
        .cookies
        .push(("anteroom_oidc".into(), "whatever".into()));
    let again = replay.get(&callback).await;
    assert_eq!(again.status, 303);
    assert_eq!(
        again.header("location"),
        Some("/portal?login_error=expired_or_replayed")
    );
    assert_eq!(me(&mut replay).await.0, 401);
}

#[tokio::test]
async fn callback_in_another_browser_is_refused() {
    let env = Env::start().await;
    let mut victim = env.browser();
    let callback = victim.reach_callback("north").await;
    // Another browser (no sign-in cookie) opens the callback: refused, and
    // the sign-in is spent, so the original browser cannot use it either.
    let mut other = env.browser();
    let reply = other.get(&callback).await;
    assert_eq!(
        reply.header("location"),
        Some("/portal?login_error=browser_mismatch")
    );
    assert_eq!(
        victim.get(&callback).await.header("location"),
        Some("/portal?login_error=expired_or_replayed")
    );
}

#[tokio::test]
async fn injected_code_fails_the_pkce_check() {
    let env = Env::start().await;
    // The attacker signs in with their own browser and takes their code…
    let mut attacker = env.browser();
    let attacker_cb = attacker.reach_callback("north").await;
    let code = url::Url::parse(&attacker_cb)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned();
    // …and injects it into the victim's sign-in (the victim's state and cookie).
    let mut victim = env.browser();
    let victim_cb = victim.reach_callback("north").await;
    let mut url = url::Url::parse(&victim_cb).unwrap();
    let state: String = url
        .query_pairs()
        .find(|(k, _)| k == "state")
        .unwrap()
        .1
        .into_owned();
    url.query_pairs_mut()
        .clear()
        .append_pair("code", &code)
        .append_pair("state", &state);
    let reply = victim.get(url.as_str()).await;
    refused_with(&reply, "north", "code_rejected");
    assert_eq!(env.idp.refusals(), vec!["pkce verifier".to_owned()]);
}

#[tokio::test]
async fn provider_error_and_missing_state_are_refused() {
    let env = Env::start().await;
    let mut b = env.browser();
    let callback = b.reach_callback("north").await;
    let state = url::Url::parse(&callback)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "state")
        .unwrap()
        .1
        .into_owned();
    let denied = b
        .get(&format!(
            "/auth/oidc/callback?error=access_denied&error_description=User+said+no&state={state}"
        ))
        .await;
    refused_with(&denied, "north", "provider_refused");
    let bare = b.get("/auth/oidc/callback").await;
    assert_eq!(
        bare.header("location"),
        Some("/portal?login_error=expired_or_replayed")
    );
}

#[tokio::test]
async fn login_options_offer_the_organisation_button() {
    let env = Env::start().await;
    let mut b = env.browser();
    let r = b.get("/api/login-options?org=north").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let v: Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(v["oidc_start"], "/auth/oidc/north/start");
    assert_eq!(v["org_name"], "North");

    let v: Value = serde_json::from_str(&b.get("/api/login-options?org=west").await.body).unwrap();
    assert_eq!(v["oidc_start"], Value::Null);
    let v: Value = serde_json::from_str(
        &b.get("/api/login-options?org=north&error=wrong_tenant")
            .await
            .body,
    )
    .unwrap();
    assert!(
        v["error_message"]
            .as_str()
            .unwrap()
            .contains("another organisation"),
        "{v}"
    );
    // An organisation without a provider cannot start one.
    let start = b.get("/auth/oidc/west/start").await;
    assert_eq!(
        start.header("location"),
        Some("/portal?org=west&login_error=not_configured")
    );
}

#[tokio::test]
async fn portal_page_carries_the_organisation_option() {
    let env = Env::start().await;
    let mut b = env.browser();
    let page = b.get("/portal?org=north&login_error=wrong_tenant").await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains(r#"id="oidc-start""#), "{}", page.body);
    assert!(page.body.contains("/static/portal-oidc.js"));
    let script = b.get("/static/portal-oidc.js").await;
    assert_eq!(script.status, 200);
    assert!(script.body.contains("/api/login-options"));
}

#[tokio::test]
async fn provider_certificates_are_verified() {
    use std::sync::atomic::Ordering;
    let env = Env::start().await;
    // East's provider serves a valid discovery document over HTTPS with a
    // self-signed certificate: signaling must refuse the connection.
    let reply = env.browser().get("/auth/oidc/east/start").await;
    assert_eq!(
        reply.header("location"),
        Some("/portal?org=east&login_error=provider_unavailable"),
        "{reply:?}"
    );
    env.tls_idp.handshakes_failed(1).await;
    assert_eq!(env.tls_idp.requests.load(Ordering::SeqCst), 0);
}
