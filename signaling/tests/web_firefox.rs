//! The pages in headless Firefox (Debian's `firefox-esr`, driven over
//! WebDriver BiDi): the patient page's device check sees the fake camera
//! and microphone and finds a network path, the patient joins the queue and
//! a refresh keeps the seat; the portal signs in, shows the patient and
//! denies them with a message. Then, through a real relay (in-process), a
//! Firefox patient and a Chromium clinician decode each other's video.
//!
//! Fails (never skips) when `firefox-esr` is missing: `.ci/run` installs it.
//! Run inside the loopback-only namespace, as `scripts/test` does; the call
//! test re-runs itself in a nested one with a default route via `lo` (see
//! there why Firefox needs it).
//!
//! Firefox-only settings are in `web_support/bidi.rs` (prefs of the
//! temporary profile); the pages needed no change for Firefox.

mod calls_support;
mod support;
mod web_support;

use anyhow::{Context as _, Result};
use calls_support::{SECRET, node};
use signaling::relays::RelayEvent;
use support::{PASSWORD, TestServer};
use web_support::bidi::Firefox;
use web_support::cdp::Browser;
use web_support::pages::{clinician_signs_in, patient_joins, row, visible};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn firefox_patient_joins_and_the_firefox_portal_denies_them() -> Result<()> {
    let server = TestServer::start().await;
    let (mut doc, _) = server.clinician("dr-a2").await;
    let firefox = Firefox::launch().await?;
    eprintln!("Firefox {}", firefox.version);
    let base = format!("http://{}", server.addr);
    let patient = firefox.tab(&format!("{base}/r/a-gp")).await?;

    // Device check: fake camera in the preview, the meter moves, and the
    // connection test finds a path.
    patient.wait_for(&visible("step-device")).await?;
    patient
        .wait_for("document.getElementById('preview').videoWidth > 0")
        .await
        .context("the camera preview plays")?;
    patient
        .wait_for("document.getElementById('cam-select').options.length > 0")
        .await?;
    if let Err(e) = patient
        .wait_for("document.getElementById('mic-level').value > 0.05")
        .await
    {
        let diag = patient.eval("(async () => { const s = document.getElementById('preview').srcObject; const a = s && s.getAudioTracks()[0]; const c = new AudioContext(); await new Promise(r => setTimeout(r, 300)); return JSON.stringify({track: a && [a.readyState, a.enabled, a.muted, a.label], ctx: c.state, meter: document.getElementById('mic-level').value}); })()").await?;
        anyhow::bail!("the microphone level meter does not move: {e}; {diag}");
    }
    patient
        .wait_for("['good', 'poor', 'failed'].includes(document.getElementById('conn-check').dataset.result)")
        .await
        .context("the connection check finds a path")?;
    let p = patient_joins(&patient, "Fiona Firefox", Some("Sore throat")).await?;
    let arrived = doc.expect_type("patient_arrived").await;
    assert_eq!(arrived["entry"]["participant"], p.as_str());
    patient
        .wait_for("document.getElementById('position').textContent === 'You are next'")
        .await?;

    // A refresh keeps the seat.
    patient.reload().await?;
    patient.wait_for(&visible("step-waiting")).await?;
    patient
        .wait_for("Anteroom.debug.seat && Anteroom.debug.seat.participant")
        .await?;
    assert_eq!(
        patient.eval("Anteroom.debug.seat.participant").await?,
        p.as_str()
    );
    assert!(patient.text("#status").await?.contains("place was kept"));

    // The portal in Firefox: sign in, see the patient, deny with a message.
    let portal = firefox.tab(&format!("{base}/portal")).await?;
    clinician_signs_in(&portal, "dr-a", PASSWORD).await?;
    portal
        .wait_for(&format!("document.querySelector(\"{}\") !== null", row(&p)))
        .await?;
    assert!(portal.text(&row(&p)).await?.contains("Fiona Firefox"));
    portal
        .click(&format!("{} [data-key='deny-{p}']", row(&p)))
        .await?;
    portal
        .wait_for("document.getElementById('dlg-deny').open")
        .await?;
    portal
        .fill("#deny-message", "Please see the pharmacist.")
        .await?;
    portal.click("#deny-confirm").await?;
    patient.wait_for(&visible("step-ended")).await?;
    assert_eq!(
        patient.text("#ended-text").await?,
        "Please see the pharmacist."
    );
    portal
        .wait_for(&format!("document.querySelector(\"{}\") === null", row(&p)))
        .await?;
    drop(firefox);
    server.stop().await?;
    Ok(())
}

/// JS: video frames decoded in the tab's call.
const FRAMES: &str = "Anteroom.debug.call && Anteroom.debug.call.stats.framesDecoded";

/// The call test's name (it re-runs itself under this name).
const CALL_TEST: &str = "a_firefox_patient_and_a_chromium_clinician_decode_each_other_s_video";

// Firefox offers ICE candidates on every interface only to pages it counts
// as capturing, and with `media.navigator.permission.disabled` (no prompt)
// it does not; otherwise it offers the default route's address alone. The
// loopback-only namespace has no default route, so Firefox would gather no
// candidate at all ("failed to find default addresses" in its ICE log). So
// this test re-runs itself in a nested network namespace that has a
// default route via `lo` with source 127.0.0.1: still loopback only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_firefox_patient_and_a_chromium_clinician_decode_each_other_s_video() -> Result<()> {
    if std::env::var_os("ANTEROOM_ROUTED_NETNS").is_none() {
        let exe = std::env::current_exe()?;
        let status = tokio::process::Command::new("unshare")
            .args(["--net", "--", "sh", "-c"])
            .arg(
                "ip link set lo up && ip route add default dev lo src 127.0.0.1 && \
                 exec \"$0\" --exact \"$1\" --nocapture",
            )
            .arg(exe)
            .arg(CALL_TEST)
            .env("ANTEROOM_ROUTED_NETNS", "1")
            .status()
            .await
            .context("running unshare (util-linux) for a nested network namespace")?;
        anyhow::ensure!(
            status.success(),
            "the call test failed in its nested namespace ({status}); its output is above"
        );
        return Ok(());
    }
    let cs = calls_support::start(false).await;
    let mut events = cs.pool.subscribe();
    let mut config = relay::Config::local(node("fx-relay-1"), SECRET);
    config.standalone = false;
    config.signaling = vec![format!("ws://{}/control", cs.server.addr)];
    config.region = protocol::Region::new("eu")?;
    let relay = relay::Relay::start(config).await?;
    loop {
        if let RelayEvent::RelayUp { .. } = events.recv().await? {
            break;
        }
    }
    let base = format!("http://{}", cs.server.addr);
    let firefox = Firefox::launch().await?;
    eprintln!("Firefox {}", firefox.version);
    let chromium = Browser::launch().await?;
    let patient = firefox.tab(&format!("{base}/r/a-nurse")).await?;
    let p = patient_joins(&patient, "Fiona Firefox", None).await?;
    let portal = chromium.tab(&format!("{base}/portal")).await?;
    clinician_signs_in(&portal, "dr-a", PASSWORD).await?;
    portal
        .click(&format!("{} [data-key='admit-{p}']", row(&p)))
        .await?;
    portal.click("#admit-confirm").await?;
    patient.wait_for(&visible("step-call")).await?;
    portal.wait_for(&visible("view-call")).await?;

    let diagnose = "(async () => { const c = Anteroom.debug.call; const pc = c && c.pc; const st = []; if (pc) (await pc.getStats()).forEach(s => { if (s.type.includes('candidate')) st.push(s); }); return JSON.stringify({stats: c && c.stats, pc: pc && [pc.connectionState, pc.iceConnectionState, pc.signalingState], local: pc && pc.localDescription && pc.localDescription.sdp, remote: pc && pc.remoteDescription && pc.remoteDescription.sdp, cands: st}); })()";
    for (who, frames) in [
        (
            "Firefox patient",
            patient.wait_for(&format!("{FRAMES} > 0 && {FRAMES}")).await,
        ),
        (
            "Chromium clinician",
            portal.wait_for(&format!("{FRAMES} > 0 && {FRAMES}")).await,
        ),
    ] {
        if let Err(e) = frames {
            let state = if who.starts_with("Firefox") {
                patient.eval(diagnose).await?
            } else {
                portal.eval(diagnose).await?
            };
            let log = firefox.log();
            let ice: Vec<&str> = log
                .lines()
                .filter(|l| l.contains("default local addresses") || l.contains("failed to find"))
                .take(4)
                .collect();
            anyhow::bail!("{who} decodes no video: {e}; {state}; firefox: {ice:?}");
        }
    }
    // Live video: the counts keep growing on both sides.
    let f = patient.eval(FRAMES).await?.as_u64().context("frames")?;
    patient.wait_for(&format!("{FRAMES} > {f} + 10")).await?;
    let c = portal.eval(FRAMES).await?.as_u64().context("frames")?;
    portal.wait_for(&format!("{FRAMES} > {c} + 10")).await?;
    // The clinician's tile shows the patient's name from the roster.
    portal
        .wait_for(&format!(
            "(document.querySelector(\"#grid figure[data-participant='{p}'] .name\") || {{}}).textContent === 'Fiona Firefox'"
        ))
        .await?;

    drop(firefox);
    drop(chromium);
    relay.shutdown().await;
    cs.server.stop().await?;
    Ok(())
}
