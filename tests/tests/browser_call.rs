//! The product end to end in headless Chromium, through real relays: a
//! patient tab joins the waiting room, a clinician tab sees the arrival and
//! admits (after the intake summary), and both tabs decode the other's video
//! (`getStats()` inbound-rtp `framesDecoded` grows). Then the relay carrying
//! the call is killed (SIGKILL): both tabs get `relay_moved`, build a new
//! peer connection and decode video again, without a reload. Finally an
//! invitation link brings an interpreter into the same call (three-way
//! grid), and ending the consultation ends it for the patient.
//!
//! Uses the tests crate's [`TestCluster`] (real `signaling` and `relay`
//! binaries) and the CDP driver of the signaling web tests. Screenshots of
//! the call screens go to `docs/screenshots/`. Run inside the loopback-only
//! namespace (`scripts/test`).

#[path = "../../signaling/tests/web_support/cdp.rs"]
mod cdp;

use std::path::PathBuf;

use anyhow::{Context as _, Result};
use cdp::{Browser, Tab};
use tests::cluster::{ClusterSpec, RelaySpec, TestCluster};
use tests::directory::{NORTH, PASSWORD};

fn screenshot(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../docs/screenshots")
        .join(name)
}

fn visible(id: &str) -> String {
    format!(
        "(() => {{ const e = document.getElementById('{id}'); return e && !e.hidden && e.offsetParent !== null; }})()"
    )
}

/// The tab's current call: peer-connection generation and video frames
/// decoded on it (from getStats, sampled every second by the page).
async fn media(tab: &Tab) -> Result<(u64, u64)> {
    let v = tab
        .eval("(() => { const c = Anteroom.debug.call; return c ? [c.stats.generation, c.stats.framesDecoded] : [0, 0]; })()")
        .await?;
    Ok((
        v[0].as_u64().context("generation")?,
        v[1].as_u64().context("frames")?,
    ))
}

/// JS: the state of the tab's call, for failure messages.
const DIAGNOSE: &str = "(() => { const c = Anteroom.debug.call; if (!c) return 'no call'; const pc = c.pc; \
    return JSON.stringify({received: Anteroom.debug.received, id: c.id, generation: c.generation, stats: c.stats, tiles: c.tiles.size, \
    pc: pc && {conn: pc.connectionState, ice: pc.iceConnectionState, sig: pc.signalingState, \
    transceivers: pc.getTransceivers().map(t => [t.mid, t.direction, t.currentDirection, t.receiver.track.kind])}}); })()";

/// Awaits video decoding on a peer connection newer than `after`, and
/// then that the count keeps growing (it is live video, not one frame).
async fn await_decoding(tab: &Tab, after: u64) -> Result<(u64, u64)> {
    let first = tab
        .wait_for(&format!(
            "(() => {{ const c = Anteroom.debug.call; return c && c.stats.generation > {after} && c.stats.framesDecoded > 0; }})()"
        ))
        .await;
    if let Err(e) = first {
        let state = tab.eval(DIAGNOSE).await.unwrap_or_default();
        return Err(e.context(format!("call state: {state}")));
    }
    let (generation, frames) = media(tab).await?;
    tab.wait_for(&format!(
        "(() => {{ const c = Anteroom.debug.call; return c && c.stats.generation === {generation} && c.stats.framesDecoded > {frames} + 20; }})()"
    ))
    .await?;
    media(tab).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn patient_and_clinician_see_each_other_through_a_relay_and_survive_its_death() -> Result<()>
{
    let mut cluster = TestCluster::start_with(ClusterSpec {
        relays: vec![
            RelaySpec::new("r-eu-1", "eu"),
            RelaySpec::new("r-eu-2", "eu"),
        ],
        ..ClusterSpec::default()
    })
    .await?;
    let base = format!("http://{}", cluster.http_addr());
    let browser = Browser::launch().await?;

    // The patient joins the waiting room.
    let patient = browser.tab(&format!("{base}/r/{}", NORTH.room)).await?;
    patient.wait_for(&visible("step-device")).await?;
    patient.click("#device-next").await?;
    patient.fill("#display-name", "Alex Example").await?;
    patient.click("#join").await?;
    patient.wait_for(&visible("step-waiting")).await?;
    let seat = patient.eval("Anteroom.debug.seat.participant").await?;
    let seat = seat.as_str().context("participant id")?.to_owned();

    // The clinician signs in and sees the patient waiting.
    let doctor = browser.tab(&format!("{base}/portal")).await?;
    doctor.grant_notifications(&base).await?;
    doctor.wait_for(&visible("view-login")).await?;
    doctor.fill("#username", NORTH.clinicians[0]).await?;
    doctor.fill("#password", PASSWORD).await?;
    doctor.click("#login-submit").await?;
    doctor.wait_for(&visible("view-queue")).await?;
    let row = format!("[data-participant='{seat}']");
    doctor
        .wait_for(&format!("document.querySelector(\"{row}\") !== null"))
        .await?;

    // Admit shows the intake summary first, then admits.
    doctor.click(&format!("[data-key='admit-{seat}']")).await?;
    doctor
        .wait_for("document.getElementById('dlg-admit').open && !document.getElementById('admit-intake').textContent.includes('Loading')")
        .await?;
    doctor.screenshot(&screenshot("portal-admit.png")).await?;
    doctor.click("#admit-confirm").await?;
    patient.wait_for(&visible("step-call")).await?;
    doctor.wait_for(&visible("view-call")).await?;

    // Both decode the other's video through the relay.
    let (p_gen, d_gen) =
        match tokio::try_join!(await_decoding(&patient, 0), await_decoding(&doctor, 0)) {
            Ok(((p, _), (d, _))) => (p, d),
            Err(e) => {
                let d = doctor.eval(DIAGNOSE).await.unwrap_or_default();
                let p = patient.eval(DIAGNOSE).await.unwrap_or_default();
                return Err(e.context(format!("patient: {p}\ndoctor: {d}")));
            }
        };
    patient
        .wait_for("document.getElementById('quality').textContent.startsWith('Connection: Good')")
        .await?;
    doctor
        .wait_for("document.getElementById('roster').textContent.includes('Alex Example')")
        .await?;
    patient.screenshot(&screenshot("patient-call.png")).await?;

    // Kill the relay that carries the call.
    let per_relay = cluster.participants_per_relay().await?;
    let (carrier, n) = per_relay
        .iter()
        .max_by_key(|(_, n)| **n)
        .context("a relay")?;
    assert_eq!(*n, 2, "one relay carries both participants: {per_relay:?}");
    let carrier = carrier.clone();
    for tab in [&patient, &doctor] {
        tab.eval("window.__sameDocument = true").await?;
    }
    cluster.kill_relay(&carrier)?;

    // Both tabs recover on a new peer connection, in the same document.
    await_decoding(&patient, p_gen).await?;
    await_decoding(&doctor, d_gen).await?;
    for tab in [&patient, &doctor] {
        assert!(
            tab.eval("window.__sameDocument === true").await? == true,
            "no reload"
        );
        tab.wait_for(&format!("!{}", visible("banner"))).await?;
    }
    let survivor = cluster.participants_per_relay().await?;
    assert_eq!(survivor.values().sum::<u64>(), 2, "{survivor:?}");
    assert!(!survivor.contains_key(&carrier));

    // An invitation link brings a third person (an interpreter) into the
    // same call once the clinician admits them: a three-way grid.
    doctor.click("#btn-invite").await?;
    doctor
        .wait_for("document.getElementById('invite-link').value.includes('/i/')")
        .await?;
    let link = doctor
        .eval("document.getElementById('invite-link').value")
        .await?;
    let guest = browser.tab(link.as_str().context("invite link")?).await?;
    guest.wait_for(&visible("step-device")).await?;
    guest.click("#device-next").await?;
    guest.fill("#display-name", "Sam Interpreter").await?;
    guest.click("#join").await?;
    guest.wait_for(&visible("step-waiting")).await?;
    let invitee = guest.eval("Anteroom.debug.seat.participant").await?;
    let invitee = invitee.as_str().context("invitee id")?.to_owned();
    let row = format!("[data-participant='{invitee}']");
    doctor
        .wait_for(&format!(
            "(() => {{ const r = document.querySelector(\"{row}\"); return r && r.textContent.includes('invited to a call'); }})()"
        ))
        .await?;
    doctor
        .click(&format!("[data-key='admit-{invitee}']"))
        .await?;
    doctor
        .wait_for("document.getElementById('dlg-admit').open")
        .await?;
    doctor.click("#admit-confirm").await?;
    guest.wait_for(&visible("step-call")).await?;
    await_decoding(&guest, 0).await?;
    doctor
        .wait_for("Anteroom.debug.call.tiles.size === 2 && document.getElementById('roster').textContent.includes('Sam Interpreter')")
        .await?;
    patient
        .wait_for("Anteroom.debug.call.tiles.size === 2")
        .await?;
    doctor
        .eval("document.activeElement.blur(); window.scrollTo(0, 0)")
        .await?;
    doctor.screenshot(&screenshot("portal-call.png")).await?;

    // Ending the consultation ends it for the patient too.
    doctor.click("#btn-end").await?;
    patient.wait_for(&visible("step-ended")).await?;
    doctor
        .wait_for(&format!("!{}", visible("view-call")))
        .await?;
    Ok(())
}
