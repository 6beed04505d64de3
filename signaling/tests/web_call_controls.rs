//! The call controls in headless Chromium through a real relay (the relay
//! crate, in-process): a patient tab and a clinician tab in a call decode
//! each other's video; then microphone and camera go off and on again on
//! both sides, and the other side sees it (the roster and the tile say
//! "muted" / "camera off", and with the camera off the picture goes black).
//! The clinician creates an invitation link: opening it leaves no token in
//! the address bar. Finally "Return patient to queue" puts the patient back
//! at the front of the waiting room.
//!
//! Run inside the loopback-only namespace, as `scripts/test` does.

mod calls_support;
mod support;
mod web_support;

use anyhow::{Context as _, Result};
use calls_support::{SECRET, node};
use signaling::relays::RelayEvent;
use support::PASSWORD;
use web_support::cdp::{Browser, Tab};
use web_support::pages::{brightness, clinician_signs_in, patient_joins, row, visible};

/// Awaits live video decoding in `tab`'s call (the count keeps growing).
async fn decoding(tab: &Tab) -> Result<()> {
    let first = tab
        .wait_for("Anteroom.debug.call && Anteroom.debug.call.stats.framesDecoded > 0 && Anteroom.debug.call.stats.framesDecoded")
        .await?
        .as_u64()
        .context("frames")?;
    tab.wait_for(&format!(
        "Anteroom.debug.call.stats.framesDecoded > {first} + 10"
    ))
    .await?;
    Ok(())
}

/// JS: the text of the flags of the tile matching `figure`.
fn flags(figure: &str) -> String {
    format!("((document.querySelector(\"{figure} .flags\") || {{}}).textContent || '')")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mute_and_camera_off_show_on_the_other_side_and_return_to_queue_works() -> Result<()> {
    let cs = calls_support::start(false).await;
    let mut events = cs.pool.subscribe();
    let mut config = relay::Config::local(node("web-relay-1"), SECRET);
    config.standalone = false;
    config.signaling = Some(format!("ws://{}/control", cs.server.addr));
    config.region = protocol::Region::new("eu")?;
    let relay = relay::Relay::start(config).await?;
    loop {
        if let RelayEvent::RelayUp { .. } = events.recv().await? {
            break;
        }
    }

    let browser = Browser::launch().await?;
    let base = format!("http://{}", cs.server.addr);
    let patient = browser.tab(&format!("{base}/r/a-nurse")).await?;
    let p = patient_joins(&patient, "Mia Mute", None).await?;
    let portal = browser.tab(&format!("{base}/portal")).await?;
    clinician_signs_in(&portal, "dr-a", PASSWORD).await?;
    portal
        .click(&format!("{} [data-key='admit-{p}']", row(&p)))
        .await?;
    portal.click("#admit-confirm").await?;
    patient.wait_for(&visible("step-call")).await?;
    portal.wait_for(&visible("view-call")).await?;
    decoding(&patient).await?;
    decoding(&portal).await?;

    // What the clinician sees of the patient: their tile and roster line.
    let patient_tile = format!("#grid figure[data-participant='{p}']");
    portal
        .wait_for(&format!("{} > 40", brightness(&patient_tile)))
        .await
        .context("the patient's camera picture shows")?;
    assert_eq!(portal.eval(&flags(&patient_tile)).await?, "");

    // Patient mutes the microphone: the clinician sees "muted".
    patient.click("#btn-mic").await?;
    assert_eq!(patient.text("#btn-mic").await?, "Unmute microphone");
    assert_eq!(
        patient
            .eval("document.getElementById('btn-mic').getAttribute('aria-pressed')")
            .await?,
        "true"
    );
    portal
        .wait_for(&format!("{} === 'muted'", flags(&patient_tile)))
        .await?;
    portal
        .wait_for(
            "document.getElementById('roster').textContent.includes('Mia Mute (patient) · muted')",
        )
        .await?;
    patient.click("#btn-mic").await?;
    portal
        .wait_for(&format!("{} === ''", flags(&patient_tile)))
        .await?;

    // Camera off: "camera off" on the tile and the picture goes black.
    patient.click("#btn-cam").await?;
    assert_eq!(patient.text("#btn-cam").await?, "Turn camera on");
    portal
        .wait_for(&format!("{} === 'camera off'", flags(&patient_tile)))
        .await?;
    portal
        .wait_for("document.getElementById('roster').textContent.includes('Mia Mute (patient) · camera off')")
        .await?;
    portal
        .wait_for(&format!(
            "{} >= 0 && {} < 8",
            brightness(&patient_tile),
            brightness(&patient_tile)
        ))
        .await
        .context("the patient's picture goes black with the camera off")?;
    patient.click("#btn-cam").await?;
    portal
        .wait_for(&format!("{} === ''", flags(&patient_tile)))
        .await?;
    portal
        .wait_for(&format!("{} > 40", brightness(&patient_tile)))
        .await
        .context("the patient's picture comes back")?;

    // The clinician mutes both: the patient's tile of the clinician says so.
    let doctor_tile = "#grid figure.tile:not([data-participant='self'])";
    portal.click("#btn-mic").await?;
    portal.click("#btn-cam").await?;
    patient
        .wait_for(&format!("{} === 'mutedcamera off'", flags(doctor_tile)))
        .await?;
    patient
        .wait_for(&format!(
            "{} >= 0 && {} < 8",
            brightness(doctor_tile),
            brightness(doctor_tile)
        ))
        .await?;
    portal.click("#btn-mic").await?;
    portal.click("#btn-cam").await?;
    patient
        .wait_for(&format!("{} === ''", flags(doctor_tile)))
        .await?;
    patient
        .wait_for(&format!("{} > 40", brightness(doctor_tile)))
        .await?;

    // An invitation link: its page drops the token from the address bar.
    portal.click("#btn-invite").await?;
    let link = portal
        .wait_for("document.getElementById('invite-link').value")
        .await?;
    let link = link.as_str().context("link")?.to_owned();
    let token = link.rsplit('/').next().context("token")?.to_owned();
    assert!(token.len() > 16, "{link}");
    let guest = browser.tab(&link).await?;
    guest.wait_for(&visible("step-device")).await?;
    let href = guest.eval("location.href").await?;
    assert!(
        !href.as_str().unwrap_or_default().contains(&token),
        "{href}"
    );
    guest.click("#device-next").await?;
    guest.fill("#display-name", "Ian Interpreter").await?;
    guest.click("#join").await?;
    guest.wait_for(&visible("step-waiting")).await?;
    portal
        .wait_for("document.getElementById('rooms').textContent.includes('invited to a call')")
        .await?;

    // Return to queue: the patient waits again, first in line.
    portal.click("#btn-return").await?;
    patient.wait_for(&visible("step-waiting")).await?;
    assert!(
        patient
            .text("#status")
            .await?
            .contains("back at the front of the queue")
    );
    patient
        .wait_for("document.getElementById('position').textContent === 'You are next'")
        .await?;
    portal
        .wait_for(&format!("!{}", visible("view-call")))
        .await?;
    portal
        .wait_for(&format!(
            "document.querySelector(\"{} [data-key='admit-{p}']\") !== null",
            row(&p)
        ))
        .await?;
    assert!(
        portal
            .text(&format!("{} .tag", row(&p)))
            .await?
            .contains("#1")
    );

    drop(browser);
    relay.shutdown().await;
    cs.server.stop().await?;
    Ok(())
}
