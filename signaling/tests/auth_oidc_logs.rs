//! OpenID Connect sign-ins at TRACE level (every crate, the HTTP client and
//! server included) never log or audit the authorization code, the ID
//! token, the client secret, the state, or the user's name or e-mail — on
//! success or on any failure.
//!
//! Its own test binary because it installs the global subscriber.

mod auth_oidc_support;
mod support;

use auth_oidc_support::{Env, SECRET};
use support::logs::CapturedLogs;

fn query_value(url: &str, key: &str) -> String {
    url::Url::parse(url)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == key)
        .unwrap()
        .1
        .into_owned()
}

#[tokio::test]
async fn sign_ins_log_no_codes_tokens_or_names() {
    let logs = CapturedLogs::install();
    let env = Env::start().await;

    // A success, a replay of it, a refused token (bad tenant), an unknown
    // user, and an injected code.
    let mut b = env.browser();
    let callback = b.reach_callback("north").await;
    let state = query_value(&callback, "state");
    assert_eq!(b.get(&callback).await.header("location"), Some("/portal"));
    assert_eq!(b.get("/api/me").await.status, 200);
    let session = b.session().unwrap();
    b.get(&callback).await;
    env.idp.set(|k| k.tid = "tid-other".into());
    env.browser().sign_in("north").await;
    env.idp.set(|k| {
        k.tid = "tid-north".into();
        k.sub = "sub-nobody".into();
    });
    env.browser().sign_in("north").await;
    let mut attacker = env.browser();
    let stolen = query_value(&attacker.reach_callback("north").await, "code");
    let mut victim = env.browser();
    let victim_state = query_value(&victim.reach_callback("north").await, "state");
    victim
        .get(&format!(
            "/auth/oidc/callback?code={stolen}&state={victim_state}"
        ))
        .await;

    let text = logs.text();
    let audit = env.audit_lines().join("\n");
    assert!(
        text.contains("oidc sign-in failed"),
        "the failures are logged (by code): {text}"
    );
    let issued = env.idp.issued();
    assert!(
        issued.len() >= 8,
        "codes and ID tokens issued: {}",
        issued.len()
    );
    let mut secrets: Vec<String> = issued;
    secrets.extend([
        SECRET.to_owned(),
        state,
        victim_state,
        session,
        "Leonora".to_owned(),
        "Quillfeather".to_owned(),
        "leonora.quillfeather".to_owned(),
        "sub-nobody".to_owned(),
    ]);
    for s in &secrets {
        // ID tokens: their signature part alone must not appear either.
        let probe = s.rsplit('.').next().unwrap_or(s);
        assert!(
            !text.contains(probe),
            "log holds a secret or personal datum"
        );
        assert!(
            !audit.contains(probe),
            "audit holds a secret or personal datum"
        );
    }
}
