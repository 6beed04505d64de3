//! The pages in a real headless Chromium against an in-process signaling
//! server: a refresh in the waiting room keeps the seat, a wrong password
//! shows the error (and throttling says how long to wait), an expired
//! session returns to the login form, and arrivals raise an alert.
//! Screenshots of these screens go to `docs/screenshots/`.
//!
//! Chromium opens WebRTC sockets (the device check's connection test), so
//! run these inside the loopback-only namespace, as `scripts/test` does.

mod support;
mod web_support;

use std::time::Duration;

use anyhow::Result;
use serde_json::json;
use signaling::clock::Clock;
use support::{PASSWORD, TestServer};
use web_support::cdp::{Browser, Tab};
use web_support::screenshot_path;

/// JS: whether the element `#id` is shown.
fn visible(id: &str) -> String {
    format!(
        "(() => {{ const e = document.getElementById('{id}'); return e && !e.hidden && e.offsetParent !== null; }})()"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_in_the_waiting_room_keeps_the_seat() -> Result<()> {
    let server = TestServer::start().await;
    let (mut doc, snapshot) = server.clinician("dr-a").await;
    assert!(snapshot.to_string().contains("a-gp"));
    let browser = Browser::launch().await?;
    let base = format!("http://{}", server.addr);
    let tab = browser.tab(&format!("{base}/r/a-gp")).await?;

    // Device check: the fake camera plays in the preview.
    tab.wait_for(&visible("step-device")).await?;
    tab.wait_for("document.getElementById('preview').videoWidth > 0")
        .await?;
    tab.wait_for("document.getElementById('cam-select').options.length > 0")
        .await?;
    tab.wait_for(
        "['good', 'poor', 'failed'].includes(document.getElementById('conn-check').dataset.result)",
    )
    .await?;
    // The fake microphone beeps: the level meter moves.
    tab.wait_for("document.getElementById('mic-level').value > 0.05")
        .await?;
    tab.screenshot(&screenshot_path("patient-device-check.png"))
        .await?;

    tab.click("#device-next").await?;
    tab.wait_for(&visible("step-intake")).await?;
    tab.fill("#display-name", "Alex Example").await?;
    // A required question left empty is refused in the page.
    tab.click("#join").await?;
    tab.wait_for("document.getElementById('form-error').textContent.includes('required')")
        .await?;
    tab.screenshot(&screenshot_path("patient-intake.png"))
        .await?;
    tab.fill("textarea[data-question=reason]", "Cough for a week")
        .await?;
    tab.click("#join").await?;
    tab.wait_for(&visible("step-waiting")).await?;
    let arrived = doc.expect_type("patient_arrived").await;
    let participant = arrived["entry"]["participant"].clone();
    assert_eq!(arrived["entry"]["display_name"], "Alex Example");
    tab.wait_for("document.getElementById('position').textContent === 'You are next'")
        .await?;
    assert!(
        tab.text("#status").await?.contains("next"),
        "status is announced"
    );
    let seat = tab.eval("Anteroom.debug.seat.participant").await?;
    assert_eq!(seat, participant);
    tab.screenshot(&screenshot_path("patient-waiting.png"))
        .await?;

    // Refresh: same seat, same place, no new arrival for the clinician.
    tab.reload().await?;
    tab.wait_for(&visible("step-waiting")).await?;
    tab.wait_for("Anteroom.debug.seat && Anteroom.debug.seat.participant")
        .await?;
    assert_eq!(
        tab.eval("Anteroom.debug.seat.participant").await?,
        participant
    );
    tab.wait_for("document.getElementById('position').textContent === 'You are next'")
        .await?;
    assert!(tab.text("#status").await?.contains("place was kept"));
    // The clinician sees the seat drop and come back, never leave.
    let back = doc
        .expect(|m| m["type"] == "patient_updated" && m["entry"]["connected"] == true)
        .await;
    assert_eq!(back["entry"]["participant"], participant);
    doc.send(&json!({"type": "subscribe", "request": 9})).await;
    let snap = doc
        .expect(|m| m["type"] == "queue_snapshot" || m["type"] == "patient_left")
        .await;
    assert_eq!(snap["type"], "queue_snapshot", "no patient_left: {snap}");
    let gp = snap["rooms"]
        .as_array()
        .and_then(|r| r.iter().find(|r| r["room"] == "a-gp"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(gp["entries"].as_array().map(Vec::len), Some(1));
    assert_eq!(gp["entries"][0]["participant"], participant);
    assert_eq!(gp["entries"][0]["position"], 1);

    // Leaving gives the seat up for good.
    tab.click("#leave-queue").await?;
    tab.wait_for(&visible("step-ended")).await?;
    let left = doc.expect_type("patient_left").await;
    assert_eq!(left["reason"], "left");
    server.stop().await?;
    Ok(())
}

async fn sign_in(tab: &Tab, username: &str, password: &str) -> Result<()> {
    tab.wait_for(&visible("view-login")).await?;
    tab.fill("#username", username).await?;
    tab.fill("#password", password).await?;
    tab.click("#login-submit").await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_shows_the_error_and_throttling_says_when_to_retry() -> Result<()> {
    let server = TestServer::start().await;
    let browser = Browser::launch().await?;
    let tab = browser
        .tab(&format!("http://{}/portal", server.addr))
        .await?;
    sign_in(&tab, "dr-a", "not-the-password").await?;
    tab.wait_for("document.getElementById('login-error').textContent !== ''")
        .await?;
    assert_eq!(
        tab.text("#login-error").await?,
        "Wrong username or password."
    );
    assert!(tab.eval(&visible("view-queue")).await? == false);
    tab.screenshot(&screenshot_path("portal-login-error.png"))
        .await?;

    // Five failures are free; the next attempt is throttled, and the page
    // says how long to wait instead of "wrong password".
    let mut last = String::new();
    for _ in 0..6 {
        tab.click("#login-submit").await?;
        tab.wait_for("document.getElementById('login-error').textContent !== ''")
            .await?;
        last = tab.text("#login-error").await?;
        if last.contains("Too many") {
            break;
        }
    }
    assert!(
        last.starts_with("Too many failed sign-in attempts. Please wait"),
        "{last}"
    );
    server.stop().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_session_returns_to_the_login_form() -> Result<()> {
    let clock = Clock::manual();
    let server_clock = clock.clone();
    let server = TestServer::start_with(move |s| s.clock = server_clock).await;
    let browser = Browser::launch().await?;
    let base = format!("http://{}", server.addr);
    let tab = browser.tab(&format!("{base}/portal")).await?;
    tab.grant_notifications(&base).await?;
    sign_in(&tab, "dr-a", PASSWORD).await?;
    tab.wait_for(&visible("view-queue")).await?;
    tab.wait_for("document.getElementById('room-a-gp') !== null")
        .await?;
    assert!(tab.text("#who").await?.contains("Dr dr-a"));

    // A patient arrives: the portal shows them and raises one alert.
    let (_patient, participant, _) = server
        .joined_patient("a-gp", "Alex Example", "Cough for a week")
        .await;
    let row = format!("[data-participant='{participant}']");
    tab.wait_for(&format!("document.querySelector(\"{row}\") !== null"))
        .await?;
    tab.wait_for("Anteroom.debug.alerts.count === 1").await?;
    assert!(
        tab.text("#alert")
            .await?
            .contains("A patient is waiting in A GP")
    );
    assert!(
        tab.text(&format!("{row} .wait"))
            .await?
            .starts_with("waiting")
    );
    assert!(
        tab.eval(&format!(
            "document.querySelector(\"{row} .wait\").classList.contains('green')"
        ))
        .await?
            == true
    );
    tab.click(&format!("{row} [data-key='intake-{participant}']"))
        .await?;
    tab.wait_for(&format!(
        "document.getElementById('intake-{participant}').textContent.includes('Cough for a week')"
    ))
    .await?;
    // The answer shows under its question's label, not the question id.
    assert_eq!(
        tab.text(&format!("#intake-{participant} dt")).await?,
        "Why are you here?"
    );
    tab.screenshot(&screenshot_path("portal-queue.png")).await?;

    // 21 minutes without a request: the session is over. The next action
    // brings the login form back with an explanation.
    clock.advance(Duration::from_secs(21 * 60));
    tab.click(&format!("{row} [data-key='admit-{participant}']"))
        .await?;
    tab.wait_for(&visible("view-login")).await?;
    assert!(
        tab.text("#login-note")
            .await?
            .contains("session has expired")
    );
    assert!(
        tab.eval("document.getElementById('dlg-admit').open")
            .await?
            == false
    );
    tab.screenshot(&screenshot_path("portal-session-expired.png"))
        .await?;
    server.stop().await?;
    Ok(())
}
