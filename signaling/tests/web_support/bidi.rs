//! A headless Firefox driven over WebDriver BiDi, for the Firefox browser
//! test. Current Firefox has no CDP and Debian packages no geckodriver, but
//! `firefox-esr --remote-debugging-port` speaks BiDi (JSON over one
//! WebSocket) by itself, and the workspace already has `tokio-tungstenite`.
//!
//! Firefox is Debian's `firefox-esr` (installed by `.ci/run`). Its profile is
//! a fresh temporary directory whose `user.js` gives a fake camera and
//! microphone without prompts, loopback ICE candidates without mDNS names,
//! autoplay, and turns off the background traffic (updates, telemetry, safe
//! browsing, captive-portal checks…) that a closed network would only stall.
//! Each [`FxTab`] has its own user context (cookies and storage). Page
//! conditions are awaited inside the page, never by sleeping in the test.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{BufRead as _, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context as _, Result, anyhow, bail};
use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::Message;

use super::cdp::PAGE_GUARD;

/// Debian's Firefox ESR.
pub const FIREFOX: &str = "firefox-esr";

/// The profile's preferences (`user.js`).
const PREFS: &[(&str, &str)] = &[
    // Fake devices, no permission prompt, autoplay allowed.
    ("media.navigator.streams.fake", "true"),
    ("media.navigator.permission.disabled", "true"),
    ("media.autoplay.default", "0"),
    ("media.autoplay.blocking_policy", "0"),
    // No sound device in CI: a mock audio backend, else Web Audio (the
    // microphone level meter) never leaves "suspended".
    ("media.cubeb.force_mock_context", "true"),
    // WebRTC on 127.0.0.1: loopback candidates, real addresses (no mDNS).
    ("media.peerconnection.ice.loopback", "true"),
    ("media.peerconnection.ice.obfuscate_host_addresses", "false"),
    ("media.peerconnection.ice.default_address_only", "false"),
    // No background network traffic (the network is closed: loopback only).
    ("app.update.enabled", "false"),
    ("app.update.auto", "false"),
    ("app.normandy.enabled", "false"),
    ("app.shield.optoutstudies.enabled", "false"),
    ("browser.shell.checkDefaultBrowser", "false"),
    ("browser.safebrowsing.malware.enabled", "false"),
    ("browser.safebrowsing.phishing.enabled", "false"),
    ("browser.safebrowsing.downloads.enabled", "false"),
    ("browser.safebrowsing.blockedURIs.enabled", "false"),
    ("browser.safebrowsing.provider.mozilla.updateURL", "\"\""),
    ("browser.search.update", "false"),
    ("browser.region.network.url", "\"\""),
    ("browser.region.update.enabled", "false"),
    ("browser.newtabpage.enabled", "false"),
    ("browser.startup.page", "0"),
    ("browser.ping-centre.telemetry", "false"),
    ("browser.contentblocking.report.lockwise.enabled", "false"),
    ("datareporting.policy.dataSubmissionEnabled", "false"),
    ("datareporting.healthreport.uploadEnabled", "false"),
    ("toolkit.telemetry.enabled", "false"),
    ("toolkit.telemetry.unified", "false"),
    ("toolkit.telemetry.server", "\"\""),
    ("extensions.update.enabled", "false"),
    ("extensions.getAddons.cache.enabled", "false"),
    ("extensions.blocklist.enabled", "false"),
    ("media.gmp-manager.url", "\"\""),
    ("media.gmp-gmpopenh264.autoupdate", "false"),
    ("network.captive-portal-service.enabled", "false"),
    ("network.connectivity-service.enabled", "false"),
    ("network.dns.disablePrefetch", "true"),
    ("network.prefetch-next", "false"),
    ("network.predictor.enabled", "false"),
    ("network.trr.mode", "5"),
    ("services.settings.server", "\"http://127.0.0.1:9/\""),
    ("security.OCSP.enabled", "0"),
    ("security.remote_settings.crlite_filters.enabled", "false"),
];

type Pending = Mutex<HashMap<u64, oneshot::Sender<Result<Value, String>>>>;

#[derive(Debug)]
struct Inner {
    out: mpsc::UnboundedSender<String>,
    pending: Pending,
    next: AtomicU64,
}

/// One running Firefox with a BiDi session.
#[derive(Debug)]
pub struct Firefox {
    child: Child,
    inner: Arc<Inner>,
    dir: PathBuf,
    /// Its version, e.g. "153.7.0esr" (from the session's capabilities).
    pub version: String,
}

impl Drop for Firefox {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Whether `firefox-esr` is on the PATH.
pub fn available() -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(FIREFOX).is_file()))
}

impl Firefox {
    /// Starts a headless Firefox and opens a BiDi session.
    pub async fn launch() -> Result<Self> {
        Self::launch_with(&[]).await
    }

    /// [`Firefox::launch`] with `extra` preferences (name, JS value).
    pub async fn launch_with(extra: &[(&str, &str)]) -> Result<Self> {
        if !available() {
            bail!("{FIREFOX} is missing: apt-get install firefox-esr (see .ci/run)");
        }
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let dir =
            std::env::temp_dir().join(format!("anteroom-firefox-{}-{nanos}", std::process::id()));
        let profile = dir.join("profile");
        std::fs::create_dir_all(&profile)?;
        let mut user_js = String::new();
        for (k, v) in PREFS.iter().chain(extra) {
            use std::fmt::Write as _;
            let _ = writeln!(user_js, "user_pref(\"{k}\", {v});");
        }
        std::fs::write(profile.join("user.js"), user_js)?;
        let mut child = Command::new(FIREFOX)
            .args(["--headless", "--no-remote", "--remote-debugging-port=0"])
            .arg("--profile")
            .arg(&profile)
            .arg("about:blank")
            .env("MOZ_CRASHREPORTER_DISABLE", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .context("starting firefox-esr")?;
        let stderr = child.stderr.take().context("firefox stderr")?;
        let (url_tx, url_rx) = oneshot::channel::<String>();
        let log_path = dir.join("firefox.log");
        std::thread::spawn(move || {
            let mut url_tx = Some(url_tx);
            let mut log = std::fs::File::create(log_path).ok();
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("WebDriver BiDi listening on ")
                    && let Some(tx) = url_tx.take()
                {
                    let _ = tx.send(url.trim().to_owned());
                }
                if let Some(f) = log.as_mut() {
                    use std::io::Write as _;
                    let _ = writeln!(f, "{line}");
                }
            }
        });
        let url = tokio::time::timeout(Duration::from_secs(30), url_rx)
            .await
            .context("firefox did not print its WebDriver BiDi address in 30 s")?
            .context("firefox exited before it was ready")?;
        let (ws, _) = tokio_tungstenite::connect_async(format!("{url}/session"))
            .await
            .context("connecting to WebDriver BiDi")?;
        let (mut sink, mut stream) = ws.split();
        let (out, mut out_rx) = mpsc::unbounded_channel::<String>();
        let inner = Arc::new(Inner {
            out,
            pending: Mutex::new(HashMap::new()),
            next: AtomicU64::new(1),
        });
        tokio::spawn(async move {
            while let Some(text) = out_rx.recv().await {
                if sink.send(Message::Text(text.into())).await.is_err() {
                    break;
                }
            }
        });
        let reader = Arc::downgrade(&inner);
        tokio::spawn(async move {
            while let Some(Ok(msg)) = stream.next().await {
                let Message::Text(text) = msg else { continue };
                let Ok(v) = serde_json::from_str::<Value>(text.as_str()) else {
                    continue;
                };
                let Some(inner) = reader.upgrade() else { break };
                dispatch(&inner, &v);
            }
        });
        let session = call(&inner, "session.new", json!({"capabilities": {}})).await?;
        let version = session["capabilities"]["browserVersion"]
            .as_str()
            .unwrap_or("unknown")
            .to_owned();
        // Page errors and console warnings go to the test's output.
        call(
            &inner,
            "session.subscribe",
            json!({"events": ["log.entryAdded"]}),
        )
        .await?;
        Ok(Self {
            child,
            inner,
            dir,
            version,
        })
    }

    /// What Firefox printed on stderr so far (for failure messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("firefox.log")).unwrap_or_default()
    }

    /// Opens `url` in a new tab with its own user context.
    pub async fn tab(&self, url: &str) -> Result<FxTab> {
        let user = call(&self.inner, "browser.createUserContext", json!({})).await?;
        let user = user["userContext"].as_str().context("user context")?;
        let created = call(
            &self.inner,
            "browsingContext.create",
            json!({"type": "tab", "userContext": user}),
        )
        .await?;
        let context = created["context"].as_str().context("context")?.to_owned();
        let tab = FxTab {
            inner: self.inner.clone(),
            context,
        };
        tab.goto(url).await?;
        Ok(tab)
    }
}

fn dispatch(inner: &Inner, v: &Value) {
    if let Some(id) = v.get("id").and_then(Value::as_u64) {
        let tx = inner
            .pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&id);
        if let Some(tx) = tx {
            let result = if v["type"] == "error" {
                Err(format!("{}: {}", v["error"], v["message"]))
            } else {
                Ok(v.get("result").cloned().unwrap_or(Value::Null))
            };
            let _ = tx.send(result);
        }
        return;
    }
    if v["method"] == "log.entryAdded" {
        let p = &v["params"];
        if matches!(p["level"].as_str(), Some("error" | "warn")) {
            eprintln!("[firefox {}] {}", p["type"], p["text"]);
        }
    }
}

async fn call(inner: &Inner, method: &str, params: Value) -> Result<Value> {
    let id = inner.next.fetch_add(1, Ordering::Relaxed);
    let (tx, rx) = oneshot::channel();
    inner
        .pending
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .insert(id, tx);
    let msg = json!({"id": id, "method": method, "params": params});
    inner
        .out
        .send(msg.to_string())
        .map_err(|_| anyhow!("WebDriver BiDi connection closed"))?;
    let reply = tokio::time::timeout(PAGE_GUARD + Duration::from_secs(15), rx)
        .await
        .with_context(|| format!("{method}: no reply"))?
        .map_err(|_| anyhow!("{method}: WebDriver BiDi connection closed"))?;
    reply.map_err(|e| anyhow!("{method}: {e}"))
}

/// One tab (top-level browsing context) of Firefox.
#[derive(Debug, Clone)]
pub struct FxTab {
    inner: Arc<Inner>,
    context: String,
}

/// Why an evaluation failed: the page threw, or the protocol call failed
/// (e.g. the document went away during a navigation).
enum EvalError {
    Thrown(String),
    Protocol(anyhow::Error),
}

impl FxTab {
    async fn try_eval(&self, js: &str) -> Result<Value, EvalError> {
        // Values come back as JSON text: simpler than BiDi's RemoteValue.
        let wrapped = format!(
            "(async () => {{ const v = await ({js}); return v === undefined ? 'null' : JSON.stringify(v); }})()"
        );
        let r = call(
            &self.inner,
            "script.evaluate",
            json!({"expression": wrapped, "target": {"context": self.context},
                   "awaitPromise": true, "resultOwnership": "none"}),
        )
        .await
        .map_err(EvalError::Protocol)?;
        if r["type"] == "exception" {
            let d = &r["exceptionDetails"];
            let text = d["text"]
                .as_str()
                .map_or_else(|| d.to_string(), str::to_owned);
            return Err(EvalError::Thrown(text));
        }
        let text = r["result"]["value"].as_str().unwrap_or("null");
        serde_json::from_str(text).map_err(|e| EvalError::Protocol(e.into()))
    }

    /// Evaluates `js` (awaiting it if it is a promise) and returns its value.
    pub async fn eval(&self, js: &str) -> Result<Value> {
        match self.try_eval(js).await {
            Ok(v) => Ok(v),
            Err(EvalError::Thrown(t)) => bail!("{t}"),
            Err(EvalError::Protocol(e)) => Err(e),
        }
    }

    /// Awaits until the JS expression `cond` is truthy in the page (checked
    /// every 50 ms inside the page, across navigations); returns its value.
    pub async fn wait_for(&self, cond: &str) -> Result<Value> {
        let guard = PAGE_GUARD.as_millis();
        let js = format!(
            "new Promise((resolve, reject) => {{ const t0 = Date.now(); const check = () => {{ \
               let v; try {{ v = ({cond}); }} catch (e) {{ v = undefined; }} \
               if (v) return resolve(v); \
               if (Date.now() - t0 > {guard}) return reject(new Error('timed out waiting for: ' + {src})); \
               setTimeout(check, 50); }}; check(); }})",
            src = serde_json::to_string(cond)?,
        );
        let deadline = tokio::time::Instant::now() + PAGE_GUARD + Duration::from_secs(5);
        loop {
            match self.try_eval(&js).await {
                Ok(v) => return Ok(v),
                Err(EvalError::Thrown(t)) => bail!("{t}"),
                // The document went away while we waited: ask the new one.
                Err(EvalError::Protocol(_)) if tokio::time::Instant::now() < deadline => {
                    tokio::task::yield_now().await;
                }
                Err(EvalError::Protocol(e)) => return Err(e),
            }
        }
    }

    /// Navigates and waits for the new document to load.
    pub async fn goto(&self, url: &str) -> Result<()> {
        call(
            &self.inner,
            "browsingContext.navigate",
            json!({"context": self.context, "url": url, "wait": "complete"}),
        )
        .await?;
        Ok(())
    }

    /// Reloads and waits for the new document to load.
    pub async fn reload(&self) -> Result<()> {
        call(
            &self.inner,
            "browsingContext.reload",
            json!({"context": self.context, "wait": "complete"}),
        )
        .await?;
        Ok(())
    }

    /// Waits for the element `selector` to be visible, then clicks it.
    pub async fn click(&self, selector: &str) -> Result<()> {
        let sel = serde_json::to_string(selector)?;
        self.wait_for(&format!(
            "(() => {{ const e = document.querySelector({sel}); return e && !e.disabled && e.offsetParent !== null; }})()"
        ))
        .await
        .with_context(|| format!("{selector} visible"))?;
        self.eval(&format!("document.querySelector({sel}).click()"))
            .await?;
        Ok(())
    }

    /// Types `value` into the field `selector` (as an `input` event).
    pub async fn fill(&self, selector: &str, value: &str) -> Result<()> {
        let sel = serde_json::to_string(selector)?;
        let val = serde_json::to_string(value)?;
        self.wait_for(&format!("document.querySelector({sel})"))
            .await
            .with_context(|| format!("{selector} present"))?;
        self.eval(&format!(
            "(() => {{ const e = document.querySelector({sel}); e.focus(); e.value = {val}; \
             e.dispatchEvent(new Event('input', {{bubbles: true}})); }})()"
        ))
        .await?;
        Ok(())
    }

    /// The visible text of `selector` ("" if absent).
    pub async fn text(&self, selector: &str) -> Result<String> {
        let sel = serde_json::to_string(selector)?;
        let v = self
            .eval(&format!(
                "(() => {{ const e = document.querySelector({sel}); return e ? e.textContent : ''; }})()"
            ))
            .await?;
        Ok(v.as_str().unwrap_or_default().to_owned())
    }
}
