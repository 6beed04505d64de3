//! Steps through the pages shared by the browser tests: a patient joins a
//! waiting room, a clinician signs in to the portal, and the JS snippets
//! that ask the page what a user sees (is an element shown, what does a
//! video tile show).
#![allow(dead_code)]

use anyhow::{Context as _, Result};
use serde_json::Value;

use super::bidi::FxTab;
use super::cdp::Tab;

/// What the steps need of a browser tab: Chromium's ([`Tab`], CDP) and
/// Firefox's ([`FxTab`], WebDriver BiDi) both do it.
#[allow(async_fn_in_trait)]
pub trait Page {
    /// Awaits until the JS expression `cond` is truthy; returns its value.
    async fn wait_for(&self, cond: &str) -> Result<Value>;
    /// Waits for `selector` to be visible, then clicks it.
    async fn click(&self, selector: &str) -> Result<()>;
    /// Types `value` into the field `selector`.
    async fn fill(&self, selector: &str, value: &str) -> Result<()>;
}

macro_rules! page_impl {
    ($t:ty) => {
        impl Page for $t {
            async fn wait_for(&self, cond: &str) -> Result<Value> {
                <$t>::wait_for(self, cond).await
            }
            async fn click(&self, selector: &str) -> Result<()> {
                <$t>::click(self, selector).await
            }
            async fn fill(&self, selector: &str, value: &str) -> Result<()> {
                <$t>::fill(self, selector, value).await
            }
        }
    };
}
page_impl!(Tab);
page_impl!(FxTab);

/// JS: whether the element `#id` is shown.
pub fn visible(id: &str) -> String {
    format!(
        "(() => {{ const e = document.getElementById('{id}'); return e && !e.hidden && e.offsetParent !== null; }})()"
    )
}

/// The patient in `tab` (on a `/r/<room>` page) goes through the device
/// check and the intake form and waits in the queue; returns the seat's
/// participant id. `reason` answers the room's required question, if any.
pub async fn patient_joins(tab: &impl Page, name: &str, reason: Option<&str>) -> Result<String> {
    tab.wait_for(&visible("step-device")).await?;
    tab.click("#device-next").await?;
    tab.wait_for(&visible("step-intake")).await?;
    tab.fill("#display-name", name).await?;
    if let Some(reason) = reason {
        tab.fill("textarea[data-question=reason]", reason).await?;
    }
    tab.click("#join").await?;
    tab.wait_for(&visible("step-waiting")).await?;
    let seat = tab
        .wait_for("Anteroom.debug.seat && Anteroom.debug.seat.participant")
        .await?;
    Ok(seat.as_str().context("participant id")?.to_owned())
}

/// Signs in to the portal in `tab` and waits for the waiting rooms.
pub async fn clinician_signs_in(tab: &impl Page, username: &str, password: &str) -> Result<()> {
    tab.wait_for(&visible("view-login")).await?;
    tab.fill("#username", username).await?;
    tab.fill("#password", password).await?;
    tab.click("#login-submit").await?;
    tab.wait_for(&visible("view-queue")).await?;
    tab.wait_for("document.querySelector('#rooms section.room') !== null")
        .await?;
    Ok(())
}

/// JS: the portal's queue row of `participant` (a selector).
pub fn row(participant: &str) -> String {
    format!("[data-participant='{participant}']")
}

/// JS: the mean brightness (0–255) of the video in the tile `figure`
/// (a selector), drawn into a canvas: what a user sees of that camera.
pub fn brightness(figure: &str) -> String {
    let sel = serde_json::to_string(&format!("{figure} video")).unwrap_or_default();
    format!(
        "(() => {{ const v = document.querySelector({sel}); if (!v || !v.videoWidth) return -1; \
         const c = document.createElement('canvas'); c.width = 64; c.height = 48; \
         const g = c.getContext('2d'); g.drawImage(v, 0, 0, 64, 48); \
         const d = g.getImageData(0, 0, 64, 48).data; let s = 0; \
         for (let i = 0; i < d.length; i += 4) s += (d[i] + d[i + 1] + d[i + 2]) / 3; \
         return s / (d.length / 4); }})()"
    )
}
