//! Signing in with a TOTP second factor in a real headless Chromium: the
//! portal asks for the code after the password, says so when the code is
//! wrong, and signs in with the right one (the page then works with the
//! cookie session and its CSRF token: signing out is a protected POST).
//!
//! An administrator with a second factor signs in to `/admin` the same way
//! and resets a clinician's second factor with the page's button.
//!
//! Run inside the loopback-only namespace, as `scripts/test` does.

mod support;
mod web_support;

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, Result};
use signaling::auth::totp::{code_at, secret_from_base32};
use signaling::auth::{Auth, AuthSettings};
use signaling::directory::Directory;
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
    let secret = enrol(&server, "dr-a")?;

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

/// Enrols `user` directly through `Auth` (as the REST API does); returns the secret.
fn enrol(server: &TestServer, user: &str) -> Result<Vec<u8>> {
    let local = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let (_, info) = server
        .auth
        .login(user, PASSWORD, local, server.clock.now())
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
    Ok(secret)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_signs_in_with_a_code_and_resets_a_clinicians_second_factor() -> Result<()> {
    let hash = signaling::auth::hash_password(PASSWORD);
    let mut toml = String::from(
        "[[tenant]]\nid = \"org-a\"\nname = \"Org A\"\n\
         [[room]]\nid = \"a-gp\"\ntenant = \"org-a\"\nname = \"A GP\"\n",
    );
    for (id, role) in [("boss", "admin"), ("dr-a", "clinician")] {
        let _ = write!(
            toml,
            "[[clinician]]\nid = \"{id}\"\ntenant = \"org-a\"\nusername = \"{id}\"\n\
             display_name = \"Dr {id}\"\nrole = \"{role}\"\npassword_hash = \"{hash}\"\n"
        );
    }
    let server = TestServer::start_with(move |s| {
        let directory = Arc::new(Directory::from_toml_str(&toml).expect("directory"));
        s.auth = Arc::new(Auth::new(
            directory.clone(),
            s.audit.clone(),
            AuthSettings::default(),
        ));
        s.directory = directory;
    })
    .await;
    let boss = enrol(&server, "boss")?;
    enrol(&server, "dr-a")?;

    let browser = Browser::launch().await?;
    let tab = browser
        .tab(&format!("http://{}/admin", server.addr))
        .await?;
    tab.wait_for(&visible("view-login")).await?;
    tab.fill("#username", "boss").await?;
    tab.fill("#password", PASSWORD).await?;
    tab.click("#login-form button[type=submit]").await?;
    tab.wait_for(&visible("totp-code")).await?;
    tab.fill("#totp-code", &code_at(&boss, unix_now() + 30))
        .await?;
    tab.click("#login-form button[type=submit]").await?;
    tab.wait_for(&visible("view-admin")).await?;

    let reset = "button[aria-label='Reset two-step sign-in of dr-a']";
    tab.wait_for(&format!("document.querySelector(\"{reset}\") !== null"))
        .await?;
    tab.click(reset).await?;
    tab.wait_for(&format!("document.querySelector(\"{reset}\") === null"))
        .await?;
    assert!(!server.auth.totp_enabled(&"dr-a".parse()?));
    let audit = server.audit_json();
    assert!(
        audit
            .iter()
            .any(|e| e["action"] == "totp_reset" && e["target_clinician"] == "dr-a"),
        "{audit:?}"
    );
    server.stop().await?;
    Ok(())
}
