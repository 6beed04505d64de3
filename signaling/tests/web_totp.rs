//! Signing in with a TOTP second factor in a real headless Chromium: the
//! portal asks for the code after the password, says so when the code is
//! wrong, and signs in with the right one (the page then works with the
//! cookie session and its CSRF token: signing out is a protected POST).
//!
//! Run inside the loopback-only namespace, as `scripts/test` does.

mod support;
mod web_support;

use std::net::{IpAddr, Ipv4Addr};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, Result};
use signaling::auth::totp::{code_at, secret_from_base32};
use support::{PASSWORD, TestServer};
use web_support::cdp::Browser;

fn visible(id: &str) -> String {
    format!(
        "(() => {{ const e = document.getElementById('{id}'); return e && !e.hidden && e.offsetParent !== null; }})()"
    )
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_portal_asks_for_the_code_after_the_password() -> Result<()> {
    let server = TestServer::start().await;
    // Enrol dr-a the way the REST API does it.
    let local = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let (_, info) = server
        .auth
        .login("dr-a", PASSWORD, local, server.clock.now())
        .map_err(|e| anyhow::anyhow!("login: {e}"))?;
    let enrolment = server
        .auth
        .start_totp_enrolment(&info, server.clock.now())
        .map_err(|e| anyhow::anyhow!("enrol: {e}"))?;
    let secret = secret_from_base32(&enrolment.secret_base32).context("base32 secret")?;
    server
        .auth
        .confirm_totp(
            &info,
            &code_at(&secret, unix_now()),
            unix_now(),
            server.clock.now(),
        )
        .map_err(|e| anyhow::anyhow!("confirm: {e}"))?;

    let browser = Browser::launch().await?;
    let tab = browser
        .tab(&format!("http://{}/portal", server.addr))
        .await?;
    tab.wait_for(&visible("view-login")).await?;
    tab.fill("#username", "dr-a").await?;
    tab.fill("#password", PASSWORD).await?;
    tab.click("#login-submit").await?;
    tab.wait_for(&visible("totp-code")).await?;
    assert_eq!(
        tab.eval("document.getElementById('totp-code').autocomplete")
            .await?,
        "one-time-code"
    );

    tab.fill("#totp-code", "000000").await?;
    tab.click("#login-submit").await?;
    tab.wait_for("document.getElementById('login-error').textContent.includes('code')")
        .await?;

    // The confirming code's step is used up; the next step's code is fresh.
    tab.fill("#totp-code", &code_at(&secret, unix_now() + 30))
        .await?;
    tab.click("#login-submit").await?;
    tab.wait_for(&visible("view-queue")).await?;

    // Signing out is a cookie-authenticated POST: it needs the CSRF token.
    tab.click("#logout").await?;
    tab.wait_for(&visible("view-login")).await?;
    let audit = server.audit_json();
    assert!(
        audit
            .iter()
            .any(|e| e["action"] == "logout" && e["actor"] == "dr-a"),
        "the sign-out reached the server: {audit:?}"
    );
    assert!(
        !audit.iter().any(|e| e["action"] == "csrf_rejected"),
        "{audit:?}"
    );
    server.stop().await?;
    Ok(())
}
