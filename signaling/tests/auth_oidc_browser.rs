//! OpenID Connect sign-in in a real headless Chromium: the portal offers
//! "Sign in with your organisation" for `?org=north`, the provider (named
//! `localhost`, so another site than signaling on 127.0.0.1, as a real
//! provider is) sends the browser back, and the portal opens on the
//! clinician's queue — which proves the browser returns the `SameSite=Lax`
//! sign-in cookie on the provider's cross-site redirect and then sends the
//! `SameSite=Strict` session cookie. A refused sign-in shows its message on
//! the sign-in page.
//!
//! Needs Chromium (`.ci/run` installs it); fails with a clear message without.

mod auth_oidc_support;
mod support;
mod web_support;

use anyhow::Result;
use auth_oidc_support::Env;
use web_support::cdp::{Browser, Tab};

/// JS: whether the element `#id` is shown.
fn visible(id: &str) -> String {
    format!(
        "(() => {{ const e = document.getElementById('{id}'); return e && !e.hidden && e.offsetParent !== null; }})()"
    )
}

/// `tab.wait_for`, again if the page navigated under it (the sign-in
/// passes through three documents).
async fn settle(tab: &Tab, cond: &str) -> Result<serde_json::Value> {
    let mut tries = 0;
    loop {
        match tab.wait_for(cond).await {
            Err(e) if e.to_string().contains("navigated") && tries < 50 => tries += 1,
            other => return other,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn portal_signs_in_through_the_organisations_provider() -> Result<()> {
    let env = Env::start_with_idp_host("localhost").await;
    let browser = Browser::launch().await?;
    let portal = format!("http://{}/portal?org=north", env.addr);

    let tab = browser.tab(&portal).await?;
    tab.wait_for(&visible("oidc-login")).await?;
    let label = tab.text("#oidc-start").await?;
    assert!(label.contains("Sign in with your organisation"), "{label}");
    tab.click("#oidc-start").await?;
    // Provider, callback, then the portal with the session.
    settle(&tab, &visible("view-queue")).await?;
    settle(
        &tab,
        "document.getElementById('who').textContent === 'Dr Lee'",
    )
    .await?;
    let url = tab.eval("location.href").await?;
    assert_eq!(url, format!("http://{}/portal", env.addr).as_str());

    // A user of another directory tenant: back on the sign-in page, told why.
    env.idp.set(|k| k.tid = "tid-someone-else".into());
    let other = browser.tab(&portal).await?;
    other.wait_for(&visible("oidc-login")).await?;
    other.click("#oidc-start").await?;
    settle(
        &other,
        "document.getElementById('login-error').textContent.includes('another organisation')",
    )
    .await?;
    assert!(other.eval(&visible("view-login")).await?.as_bool() == Some(true));
    // The error code left the address bar (a reload does not repeat it).
    let url = other.eval("location.href").await?;
    assert_eq!(
        url,
        format!("http://{}/portal?org=north", env.addr).as_str()
    );
    Ok(())
}
