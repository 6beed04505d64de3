//! The call controls in headless Chromium through a real relay (the relay
//! crate, in-process): a patient tab and a clinician tab in a call decode
//! each other's video; then microphone and camera go off and on again on
//! both sides, and the other side sees it (the roster and the tile say
//! "muted" / "camera off", and with the camera off the picture goes black).
//! The clinician creates an invitation link: opening it leaves no token in
//! the address bar. "Return patient to queue" puts the patient back at the
//! front of the waiting room, and the next call with them starts unmuted
//! although the clinician had muted the last one: buttons, tracks and what
//! the patient sees agree.
//!
//! A call whose connection fails at once (the page's DTLS check of the
//! relay fails) asks for a new placement with growing pauses instead of a
//! reconnect storm, shows "reconnecting" meanwhile, and recovers when the
//! fault goes away.
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

/// Starts an in-process relay `id` registered with `cs`; awaits it.
async fn relay_for(cs: &calls_support::CallServer, id: &str) -> Result<relay::RelayHandle> {
    let mut events = cs.pool.subscribe();
    let mut config = relay::Config::local(node(id), SECRET);
    config.standalone = false;
    config.signaling = vec![format!("ws://{}/control", cs.server.addr)];
    config.region = protocol::Region::new("eu")?;
    let relay = relay::Relay::start(config).await?;
    loop {
        if let RelayEvent::RelayUp { .. } = events.recv().await? {
            break;
        }
    }
    Ok(relay)
}

/// The clinician in `portal` admits `p` (its row in the queue).
async fn admit(portal: &Tab, p: &str) -> Result<()> {
    portal
        .click(&format!("{} [data-key='admit-{p}']", row(p)))
        .await?;
    portal.click("#admit-confirm").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mute_and_camera_off_show_on_the_other_side_and_return_to_queue_works() -> Result<()> {
    let cs = calls_support::start(false).await;
    let relay = relay_for(&cs, "web-relay-1").await?;

    let browser = Browser::launch().await?;
    let base = format!("http://{}", cs.server.addr);
    let patient = browser.tab(&format!("{base}/r/a-nurse")).await?;
    let p = patient_joins(&patient, "Mia Mute", None).await?;
    let portal = browser.tab(&format!("{base}/portal")).await?;
    clinician_signs_in(&portal, "dr-a", PASSWORD).await?;
    admit(&portal, &p).await?;
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

    // Return to queue (with the clinician muted, and the patient's
    // microphone off): the patient waits again, first in line.
    portal.click("#btn-mic").await?;
    portal.click("#btn-cam").await?;
    patient
        .wait_for(&format!("{} === 'mutedcamera off'", flags(doctor_tile)))
        .await?;
    patient.click("#btn-mic").await?;
    portal
        .wait_for(&format!("{} === 'muted'", flags(&patient_tile)))
        .await?;
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

    // The next call starts unmuted: the buttons say so, the new tracks are
    // on, and the patient sees and hears the clinician (no flags, a picture).
    admit(&portal, &p).await?;
    patient.wait_for(&visible("step-call")).await?;
    portal.wait_for(&visible("view-call")).await?;
    assert_eq!(portal.text("#btn-mic").await?, "Mute microphone");
    assert_eq!(portal.text("#btn-cam").await?, "Turn camera off");
    for button in ["btn-mic", "btn-cam"] {
        assert_eq!(
            portal
                .eval(&format!(
                    "document.getElementById('{button}').getAttribute('aria-pressed')"
                ))
                .await?,
            "false"
        );
    }
    assert_eq!(
        portal
            .eval("(() => { const t = Anteroom.debug.call.opts.local.getTracks(); return t.length === 2 && t.every((x) => x.enabled); })()")
            .await?,
        true,
        "the new call's microphone and camera tracks are on"
    );
    decoding(&patient).await?;
    patient
        .wait_for(&format!("{} > 40", brightness(doctor_tile)))
        .await
        .context("the clinician's picture shows in the next call")?;
    portal
        .wait_for("document.getElementById('roster').textContent.includes('(clinician)')")
        .await?;
    let roster = portal.text("#roster").await?;
    assert!(
        !roster.contains("(clinician) · muted") && !roster.contains("camera off"),
        "{roster}"
    );
    assert_eq!(patient.eval(&flags(doctor_tile)).await?, "");
    // The patient's microphone stayed off (their button says so): the
    // clinician sees them muted in the new call too.
    assert_eq!(patient.text("#btn-mic").await?, "Unmute microphone");
    portal
        .wait_for(
            "document.getElementById('roster').textContent.includes('Mia Mute (patient) · muted')",
        )
        .await?;
    portal
        .wait_for(&format!("{} === 'muted'", flags(&patient_tile)))
        .await?;

    drop(browser);
    relay.shutdown().await;
    cs.server.stop().await?;
    Ok(())
}

/// JS run in the patient's page before the call: counts (with their times)
/// the `call_ice_failed` messages the page sends to signaling, and spoils
/// the relay's DTLS fingerprint in every answer, so each new connection
/// fails as soon as DTLS starts. `window.__healRelay()` undoes the fault.
const FAIL_EVERY_CONNECTION: &str = r"(() => {
  window.__iceFailedAt = [];
  const send = WebSocket.prototype.send;
  WebSocket.prototype.send = function (data) {
    try {
      if (JSON.parse(data).type === 'call_ice_failed') window.__iceFailedAt.push(performance.now());
    } catch (_) {}
    return send.call(this, data);
  };
  const setRemote = RTCPeerConnection.prototype.setRemoteDescription;
  RTCPeerConnection.prototype.setRemoteDescription = function (desc) {
    if (desc && desc.type === 'answer') {
      const sdp = desc.sdp.replace(/(a=fingerprint:\S+ )([0-9A-Fa-f:]+)/g,
        (_, head, hex) => head + hex.replace(/[0-9A-Fa-f]{2}/g, 'AB'));
      return setRemote.call(this, { type: 'answer', sdp });
    }
    return setRemote.call(this, desc);
  };
  window.__healRelay = () => { RTCPeerConnection.prototype.setRemoteDescription = setRemote; };
  return true;
})()";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_that_fails_at_once_backs_off_and_recovers() -> Result<()> {
    let cs = calls_support::start(false).await;
    let relay = relay_for(&cs, "web-relay-2").await?;
    let browser = Browser::launch().await?;
    let base = format!("http://{}", cs.server.addr);
    let patient = browser.tab(&format!("{base}/r/a-nurse")).await?;
    let p = patient_joins(&patient, "Fay Failing", None).await?;
    assert_eq!(patient.eval(FAIL_EVERY_CONNECTION).await?, true);
    let portal = browser.tab(&format!("{base}/portal")).await?;
    clinician_signs_in(&portal, "dr-a", PASSWORD).await?;
    admit(&portal, &p).await?;
    patient.wait_for(&visible("step-call")).await?;

    // Four requests for a new placement: each waited about twice as long
    // as the one before (0.5 s doubling, ±30 %), never a tight loop.
    let sent = patient
        .wait_for("window.__iceFailedAt.length >= 4 && window.__iceFailedAt.slice(0, 4)")
        .await?;
    let at: Vec<f64> = sent
        .as_array()
        .context("times")?
        .iter()
        .filter_map(serde_json::Value::as_f64)
        .collect();
    assert_eq!(at.len(), 4, "{sent}");
    for (i, pair) in at.windows(2).enumerate() {
        // The wait before request i + 2 is 500 ms * 2^(i + 1), at least 70 % of it.
        let least = 0.7 * 500.0 * f64::from(2_u32.pow(u32::try_from(i)? + 1));
        let gap = pair[1] - pair[0];
        assert!(
            gap >= least - 5.0,
            "request {} came {gap:.0} ms after the previous one, expected at least {least:.0} ms: {at:?}",
            i + 2
        );
    }
    // One new peer connection per request, not a storm of them.
    let (generation, count) = {
        let v = patient
            .eval("[Anteroom.debug.call.generation, window.__iceFailedAt.length]")
            .await?;
        (
            v[0].as_u64().context("generation")?,
            v[1].as_u64().context("count")?,
        )
    };
    assert!(
        generation <= count + 1,
        "generation {generation} after {count} requests"
    );
    // Meanwhile the patient is told the call is reconnecting.
    assert_eq!(patient.eval(&visible("banner")).await?, true);
    assert!(patient.text("#banner").await?.contains("Reconnecting"));

    // The fault goes away: the next attempt connects, the banner goes and
    // the back-off starts again from the beginning.
    patient.eval("window.__healRelay()").await?;
    decoding(&patient).await?;
    patient.wait_for(&format!("!{}", visible("banner"))).await?;
    assert_eq!(
        patient
            .eval("Anteroom.debug.call.recovery.attempts")
            .await?,
        0
    );

    drop(browser);
    relay.shutdown().await;
    cs.server.stop().await?;
    Ok(())
}
