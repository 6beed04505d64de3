//! The admin view (`/admin`) in headless Chromium against the `--dev` demo:
//! an administrator lists the organisation's accounts and rooms, creates a
//! clinician account and disables it; a clinician without the admin role is
//! told the page is for administrators. Screenshot: `docs/screenshots/admin.png`.
//!
//! Run inside the loopback-only namespace, as `scripts/test` does.

mod web_support;

use anyhow::{Context as _, Result};
use signaling::config::Config;
use signaling::server::{Services, serve};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use web_support::cdp::{Browser, Tab};
use web_support::screenshot_path;

fn visible(id: &str) -> String {
    format!(
        "(() => {{ const e = document.getElementById('{id}'); return e && !e.hidden && e.offsetParent !== null; }})()"
    )
}

async fn sign_in(tab: &Tab, username: &str, password: &str) -> Result<()> {
    tab.wait_for(&visible("view-login")).await?;
    tab.fill("#username", username).await?;
    tab.fill("#password", password).await?;
    tab.click("#login-form button[type=submit]").await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_manages_accounts_and_sees_the_rooms() -> Result<()> {
    let (services, demo) = Services::from_config(&Config::dev())?;
    let demo = demo.context("--dev has demo credentials")?;
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(serve(listener, services, async {
        let _ = stopped.await;
    }));
    let browser = Browser::launch().await?;

    let admin = browser.tab(&format!("{base}/admin")).await?;
    sign_in(&admin, &demo.admin_username, &demo.admin_password).await?;
    admin.wait_for(&visible("view-admin")).await?;
    admin
        .wait_for(&format!(
            "document.getElementById('accounts').textContent.includes('{}')",
            demo.username
        ))
        .await?;
    let rooms = admin.text("#room-list").await?;
    assert!(
        rooms.contains(&format!("{base}/r/{}", demo.room)),
        "the room's patient link: {rooms}"
    );

    // A too-short password is refused in the page, before any request.
    admin.fill("#new-username", "new@demo").await?;
    admin.fill("#new-name", "Dr New").await?;
    admin.fill("#new-password", "short").await?;
    admin.click("#create-form button[type=submit]").await?;
    admin
        .wait_for("document.getElementById('create-error').textContent.includes('12 characters')")
        .await?;

    admin
        .fill("#new-password", "a-password-long-enough")
        .await?;
    admin.click("#create-form button[type=submit]").await?;
    let row = "[...document.querySelectorAll('#accounts tr')].find(r => r.textContent.includes('new@demo'))";
    admin
        .wait_for(&format!("{row} && {row}.textContent.includes('active')"))
        .await?;
    admin.click("button[aria-label='Disable new@demo']").await?;
    admin
        .wait_for(&format!("{row}.textContent.includes('disabled')"))
        .await?;
    assert!(admin.text("#status").await?.contains("new@demo disabled"));
    admin.screenshot(&screenshot_path("admin.png")).await?;

    // A clinician is sent to the portal instead.
    let clinician = browser.tab(&format!("{base}/admin")).await?;
    sign_in(&clinician, &demo.username, &demo.password).await?;
    clinician.wait_for(&visible("view-forbidden")).await?;
    assert!(
        clinician.eval(&visible("view-admin")).await? == false,
        "no admin view for a clinician"
    );

    let _ = stop.send(());
    server.await??;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_creates_a_room_a_patient_joins_it_and_closing_turns_new_patients_away()
-> Result<()> {
    let (services, demo) = Services::from_config(&Config::dev())?;
    let demo = demo.context("--dev has demo credentials")?;
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(serve(listener, services, async {
        let _ = stopped.await;
    }));
    let browser = Browser::launch().await?;

    let admin = browser.tab(&format!("{base}/admin")).await?;
    sign_in(&admin, &demo.admin_username, &demo.admin_password).await?;
    admin.wait_for(&visible("view-admin")).await?;
    admin
        .wait_for("document.getElementById('room-list').textContent.includes('Demo waiting room')")
        .await?;

    // An empty name is refused in the page; an empty question too.
    admin.click("#room-submit").await?;
    admin
        .wait_for("document.getElementById('room-error').textContent.includes('name')")
        .await?;
    admin.fill("#room-name", "Physio follow-ups").await?;
    admin.click("#room-hide").await?;
    admin.click("#room-add-question").await?;
    admin.click("#room-submit").await?;
    admin
        .wait_for(
            "document.getElementById('room-error').textContent.includes('Question 1 is empty')",
        )
        .await?;
    admin
        .fill("#room-questions .q-label", "Which treatment is this about?")
        .await?;
    admin.click("#room-questions .q-required").await?;
    // Every control of the form has a label.
    let unlabelled = admin
        .eval("[...document.querySelectorAll('#room-form input, #room-form select')].filter(i => !i.labels || i.labels.length === 0).map(i => i.id)")
        .await?;
    assert_eq!(unlabelled, serde_json::json!([]), "unlabelled controls");
    admin.click("#room-submit").await?;
    let row = "[...document.querySelectorAll('#room-list tr')].find(r => r.textContent.includes('Physio follow-ups'))";
    admin
        .wait_for(&format!("{row} && {row}.textContent.includes('open')"))
        .await?;
    assert!(
        admin
            .text("#status")
            .await?
            .contains("Physio follow-ups created")
    );
    let link = admin
        .eval(&format!("{row}.querySelector('a').getAttribute('href')"))
        .await?;
    let link = link.as_str().context("the room's link")?.to_owned();
    assert!(
        link.starts_with(&format!("{base}/r/physio-follow-ups-")),
        "{link}"
    );
    admin
        .screenshot(&screenshot_path("admin-rooms.png"))
        .await?;

    // A patient opens the link, answers the room's question and waits.
    let patient = browser.tab(&link).await?;
    patient.wait_for(&visible("step-device")).await?;
    patient
        .wait_for("document.getElementById('room-name').textContent === 'Physio follow-ups'")
        .await?;
    patient.click("#device-next").await?;
    patient.wait_for(&visible("step-intake")).await?;
    patient.fill("#display-name", "Alex Example").await?;
    patient
        .fill("textarea[data-question=q1]", "Knee exercises")
        .await?;
    patient.click("#join").await?;
    patient.wait_for(&visible("step-waiting")).await?;
    assert!(
        patient.eval(&visible("queue-info")).await? == false,
        "the room hides the position"
    );

    // Closed: a new patient is turned away; the waiting one keeps the seat.
    admin
        .click("button[aria-label='Close Physio follow-ups']")
        .await?;
    admin
        .wait_for(&format!("{row}.textContent.includes('closed')"))
        .await?;
    let late = browser.tab(&link).await?;
    late.wait_for(&visible("step-error")).await?;
    assert!(
        late.text("#error-text").await?.contains("closed"),
        "the late patient is told the room is closed"
    );
    assert!(patient.eval(&visible("step-waiting")).await? == true);

    // Reopened: the late patient can join.
    admin
        .click("button[aria-label='Reopen Physio follow-ups']")
        .await?;
    admin
        .wait_for(&format!("{row}.textContent.includes('open')"))
        .await?;
    late.reload().await?;
    late.wait_for(&visible("step-device")).await?;

    let _ = stop.send(());
    server.await??;
    Ok(())
}
