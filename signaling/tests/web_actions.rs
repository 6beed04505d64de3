//! The portal's queue actions in headless Chromium, each seen from both
//! sides: a clinician denies a patient with a message (the patient page
//! shows the message and the seat is gone), transfers a patient to another
//! room (the patient page names the new room; the other clinician sees the
//! patient there), and an invitation page removes its token from the
//! address bar and history at once (issue 8).
//!
//! Chromium opens WebRTC sockets (the device check's connection test), so
//! run these inside the loopback-only namespace, as `scripts/test` does.

mod support;
mod web_support;

use anyhow::Result;
use serde_json::json;
use support::{PASSWORD, TestServer};
use web_support::cdp::Browser;
use web_support::pages::{clinician_signs_in, patient_joins, row, visible};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_denied_patient_sees_the_message_and_the_seat_is_gone() -> Result<()> {
    let server = TestServer::start().await;
    let browser = Browser::launch().await?;
    let base = format!("http://{}", server.addr);
    let patient = browser.tab(&format!("{base}/r/a-nurse")).await?;
    let p = patient_joins(&patient, "Dana Denied", None).await?;
    let portal = browser.tab(&format!("{base}/portal")).await?;
    clinician_signs_in(&portal, "dr-a", PASSWORD).await?;

    let message = "Please call the practice on 0123 456 to book a home visit.";
    portal
        .click(&format!("{} [data-key='deny-{p}']", row(&p)))
        .await?;
    portal
        .wait_for("document.getElementById('dlg-deny').open")
        .await?;
    assert!(portal.text("#deny-who").await?.contains("Dana Denied"));
    portal.fill("#deny-message", message).await?;
    portal.click("#deny-confirm").await?;

    // The patient page ends with the clinician's words.
    patient.wait_for(&visible("step-ended")).await?;
    assert_eq!(patient.text("#ended-h").await?, "You were not admitted");
    assert_eq!(patient.text("#ended-text").await?, message);
    assert!(patient.text("#status").await?.contains(message));
    // The portal drops the row and closes the dialog.
    portal
        .wait_for(&format!("document.querySelector(\"{}\") === null", row(&p)))
        .await?;
    assert!(
        portal
            .eval("document.getElementById('dlg-deny').open")
            .await?
            == false
    );
    // The seat is gone on the server: a fresh snapshot has nobody waiting,
    // and a refresh of the patient page starts over instead of resuming.
    let (_doc, snapshot) = server.clinician("dr-a2").await;
    let entries: usize = snapshot["rooms"].as_array().map_or(usize::MAX, |rooms| {
        rooms
            .iter()
            .filter_map(|r| r["entries"].as_array())
            .map(Vec::len)
            .sum()
    });
    assert_eq!(entries, 0, "no seat left: {snapshot}");
    patient.reload().await?;
    patient.wait_for(&visible("step-device")).await?;
    assert!(patient.eval("Anteroom.debug.seat").await?.is_null());
    server.stop().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transferred_patient_sees_the_new_room_and_its_clinician_sees_them() -> Result<()> {
    let server = TestServer::start().await;
    let browser = Browser::launch().await?;
    let base = format!("http://{}", server.addr);
    let patient = browser.tab(&format!("{base}/r/a-gp")).await?;
    patient
        .wait_for("document.getElementById('room-name').textContent === 'A GP'")
        .await?;
    let p = patient_joins(&patient, "Tom Transfer", Some("Needs a dressing change")).await?;
    let gp = browser.tab(&format!("{base}/portal")).await?;
    clinician_signs_in(&gp, "dr-a", PASSWORD).await?;
    let nurse = browser.tab(&format!("{base}/portal")).await?;
    clinician_signs_in(&nurse, "dr-a2", PASSWORD).await?;
    nurse
        .wait_for(&format!(
            "document.querySelector(\"#room-a-gp {}\") !== null",
            row(&p)
        ))
        .await?;

    gp.click(&format!("{} [data-key='transfer-{p}']", row(&p)))
        .await?;
    gp.wait_for("document.getElementById('dlg-transfer').open")
        .await?;
    // Neither a room nor a colleague: refused in the dialog.
    gp.click("#transfer-confirm").await?;
    gp.wait_for("document.getElementById('transfer-error').textContent.includes('Choose')")
        .await?;
    gp.eval("document.getElementById('transfer-room').value = 'a-nurse'")
        .await?;
    gp.click("#transfer-confirm").await?;
    gp.wait_for("!document.getElementById('dlg-transfer').open")
        .await?;

    // The patient still waits, now in the nurse's room, and is told so.
    patient
        .wait_for("document.getElementById('room-name').textContent === 'A nurse'")
        .await?;
    assert!(patient.eval(&visible("step-waiting")).await? == true);
    assert!(
        patient
            .text("#status")
            .await?
            .contains("moved to another waiting room"),
        "{}",
        patient.text("#status").await?
    );
    patient
        .wait_for("document.getElementById('position').textContent === 'You are next'")
        .await?;
    // The nurse room's clinician sees the patient there (and only there),
    // waiting, with an Admit button.
    nurse
        .wait_for(&format!(
            "document.querySelector(\"#room-a-nurse {}\") !== null",
            row(&p)
        ))
        .await?;
    nurse
        .wait_for(&format!(
            "document.querySelector(\"#room-a-gp {}\") === null",
            row(&p)
        ))
        .await?;
    assert!(
        nurse
            .text(&format!("#room-a-nurse {}", row(&p)))
            .await?
            .contains("Tom Transfer")
    );
    assert!(
        nurse
            .eval(&format!(
                "document.querySelector(\"{} [data-key='admit-{p}']\") !== null",
                row(&p)
            ))
            .await?
            == true
    );
    // A refresh keeps the seat in the new room.
    patient.reload().await?;
    patient.wait_for(&visible("step-waiting")).await?;
    patient
        .wait_for("document.getElementById('room-name').textContent === 'A nurse'")
        .await?;
    assert_eq!(
        patient.eval("Anteroom.debug.seat.participant").await?,
        json!(p)
    );
    server.stop().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invitation_page_removes_its_token_from_the_address_bar() -> Result<()> {
    let server = TestServer::start().await;
    let browser = Browser::launch().await?;
    let base = format!("http://{}", server.addr);
    let token = "tok3nVisibleOnlyOnce7Q2ZK";
    let tab = browser.tab(&format!("{base}/i/{token}")).await?;
    tab.wait_for(&visible("step-device")).await?;
    let href = tab.eval("location.href").await?;
    let href = href.as_str().unwrap_or_default();
    assert!(!href.contains(token), "the token stays in the URL: {href}");
    assert!(href.starts_with(&format!("{base}/i/")), "{href}");
    // Nothing in this tab's history has it either (replaced, not pushed).
    let history = tab.call("Page.getNavigationHistory", json!({})).await?;
    let entries = history["entries"].as_array().cloned().unwrap_or_default();
    assert!(entries.len() >= 2, "{history}");
    // (`userTypedURL` is what the test typed, not a history entry.)
    assert!(
        entries
            .iter()
            .all(|e| !e["url"].as_str().unwrap_or(token).contains(token)),
        "{history}"
    );
    // The page still uses the token: joining with it asks the server,
    // which refuses an unknown one.
    tab.click("#device-next").await?;
    tab.fill("#display-name", "Ivy Invitee").await?;
    tab.click("#join").await?;
    tab.wait_for(&visible("step-error")).await?;
    assert!(tab.text("#error-text").await?.contains("invitation link"));
    // A refresh (of the cleaned URL) does not bring the token back.
    tab.reload().await?;
    let href = tab.eval("location.href").await?;
    assert!(!href.as_str().unwrap_or_default().contains(token), "{href}");
    server.stop().await?;
    Ok(())
}
