//! A headless Chromium driven over the DevTools protocol (CDP), for the
//! browser tests. No driver crate: CDP is JSON over one WebSocket, and the
//! workspace already has `tokio-tungstenite` and `serde_json`.
//!
//! Chromium is Debian's (`/usr/lib/chromium/chromium`, installed by
//! `.ci/run`), started with the flags of ENVIRONMENT.md: fake camera and
//! microphone, no permission prompts, loopback ICE candidates allowed. Each
//! [`Tab`] lives in its own browser context (own cookies and storage), like a
//! separate person's browser. Page conditions are awaited inside the page
//! (a promise that settles when the condition holds, or fails after a guard
//! time), never by sleeping in the test.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context as _, Result, anyhow, bail};
use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::Message;

/// Debian's Chromium binary (`/usr/bin/chromium` is a wrapper script).
pub const CHROMIUM: &str = "/usr/lib/chromium/chromium";

/// Longest wait for one page condition (a guard against hangs).
pub const PAGE_GUARD: Duration = Duration::from_secs(45);

type Pending = Mutex<HashMap<u64, oneshot::Sender<Result<Value, String>>>>;

#[derive(Debug)]
struct Inner {
    out: mpsc::UnboundedSender<String>,
    pending: Pending,
    next: AtomicU64,
}

/// One running Chromium.
#[derive(Debug)]
pub struct Browser {
    child: Child,
    inner: Arc<Inner>,
    dir: PathBuf,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn fresh_dir() -> PathBuf {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    std::env::temp_dir().join(format!(
        "anteroom-chromium-{}-{}-{nanos}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ))
}

impl Browser {
    /// Whether Chromium is installed (tests fail with a clear message if not).
    pub fn available() -> bool {
        Path::new(CHROMIUM).exists()
    }

    /// Starts a headless Chromium and connects to its DevTools socket.
    pub async fn launch() -> Result<Self> {
        if !Self::available() {
            bail!("{CHROMIUM} is missing: apt-get install chromium (see .ci/run)");
        }
        let dir = fresh_dir();
        std::fs::create_dir_all(&dir)?;
        let mut child = Command::new(CHROMIUM)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-extensions",
                "--disable-background-timer-throttling",
                "--disable-renderer-backgrounding",
                "--disable-backgrounding-occluded-windows",
                "--allow-loopback-in-peer-connection",
                "--use-fake-device-for-media-stream",
                "--use-fake-ui-for-media-stream",
                "--autoplay-policy=no-user-gesture-required",
                "--window-size=1280,900",
                "--remote-debugging-port=0",
            ])
            .arg(format!("--user-data-dir={}", dir.join("profile").display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .context("starting chromium")?;
        let stderr = child.stderr.take().context("chromium stderr")?;
        let (url_tx, url_rx) = oneshot::channel::<String>();
        let log_path = dir.join("chromium.log");
        std::thread::spawn(move || {
            let mut url_tx = Some(url_tx);
            let mut log = std::fs::File::create(log_path).ok();
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("DevTools listening on ")
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
            .context("chromium did not print its DevTools address in 30 s")?
            .context("chromium exited before it was ready")?;
        let (ws, _) = tokio_tungstenite::connect_async(url.as_str())
            .await
            .context("connecting to DevTools")?;
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
        Ok(Self { child, inner, dir })
    }

    /// Opens `url` in a new tab with its own browser context.
    pub async fn tab(&self, url: &str) -> Result<Tab> {
        let ctx = call(&self.inner, None, "Target.createBrowserContext", json!({})).await?;
        let ctx = ctx["browserContextId"]
            .as_str()
            .context("context id")?
            .to_owned();
        let target = call(
            &self.inner,
            None,
            "Target.createTarget",
            json!({"url": "about:blank", "browserContextId": ctx}),
        )
        .await?;
        let target = target["targetId"].as_str().context("target id")?.to_owned();
        let attached = call(
            &self.inner,
            None,
            "Target.attachToTarget",
            json!({"targetId": target, "flatten": true}),
        )
        .await?;
        let session = attached["sessionId"]
            .as_str()
            .context("session id")?
            .to_owned();
        let tab = Tab {
            inner: self.inner.clone(),
            session,
            context: ctx,
        };
        tab.call("Page.enable", json!({})).await?;
        tab.call("Runtime.enable", json!({})).await?;
        tab.call(
            "Emulation.setDeviceMetricsOverride",
            json!({"width": 1280, "height": 860, "deviceScaleFactor": 1, "mobile": false}),
        )
        .await?;
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
            let result = match v.get("error") {
                Some(e) => Err(e.to_string()),
                None => Ok(v.get("result").cloned().unwrap_or(Value::Null)),
            };
            let _ = tx.send(result);
        }
        return;
    }
    // Page errors go to the test's output: they explain failures.
    match v.get("method").and_then(Value::as_str) {
        Some("Runtime.exceptionThrown") => {
            eprintln!("[page exception] {}", v["params"]["exceptionDetails"]);
        }
        Some("Runtime.consoleAPICalled")
            if matches!(v["params"]["type"].as_str(), Some("error" | "warning")) =>
        {
            eprintln!("[page console] {}", v["params"]["args"]);
        }
        _ => {}
    }
}

async fn call(inner: &Inner, session: Option<&str>, method: &str, params: Value) -> Result<Value> {
    let id = inner.next.fetch_add(1, Ordering::Relaxed);
    let (tx, rx) = oneshot::channel();
    inner
        .pending
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .insert(id, tx);
    let mut msg = json!({"id": id, "method": method, "params": params});
    if let Some(s) = session {
        msg["sessionId"] = json!(s);
    }
    inner
        .out
        .send(msg.to_string())
        .map_err(|_| anyhow!("DevTools connection closed"))?;
    let reply = tokio::time::timeout(PAGE_GUARD + Duration::from_secs(15), rx)
        .await
        .with_context(|| format!("{method}: no reply"))?
        .map_err(|_| anyhow!("{method}: DevTools connection closed"))?;
    reply.map_err(|e| anyhow!("{method}: {e}"))
}

/// One tab (page) of the browser.
#[derive(Debug, Clone)]
pub struct Tab {
    inner: Arc<Inner>,
    session: String,
    context: String,
}

impl Tab {
    /// A raw CDP command in this tab's session.
    pub async fn call(&self, method: &str, params: Value) -> Result<Value> {
        call(&self.inner, Some(&self.session), method, params).await
    }

    /// Evaluates `js` (awaiting it if it is a promise) and returns its value.
    pub async fn eval(&self, js: &str) -> Result<Value> {
        let r = self
            .call(
                "Runtime.evaluate",
                json!({"expression": js, "awaitPromise": true, "returnByValue": true}),
            )
            .await?;
        if let Some(ex) = r.get("exceptionDetails") {
            let text = ex["exception"]["description"]
                .as_str()
                .or_else(|| ex["text"].as_str())
                .unwrap_or("exception");
            bail!("{text}");
        }
        Ok(r["result"]["value"].clone())
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
            match self.eval(&js).await {
                Ok(v) => return Ok(v),
                // The page navigated while we waited: ask the new document.
                Err(e)
                    if e.to_string().contains("context")
                        && tokio::time::Instant::now() < deadline =>
                {
                    tokio::task::yield_now().await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Navigates and waits for the new document to load.
    pub async fn goto(&self, url: &str) -> Result<()> {
        self.eval("window.__anteroomOld = true").await.ok();
        self.call("Page.navigate", json!({"url": url})).await?;
        self.wait_for("!window.__anteroomOld && document.readyState === 'complete'")
            .await?;
        Ok(())
    }

    /// Reloads and waits for the new document to load.
    pub async fn reload(&self) -> Result<()> {
        self.eval("window.__anteroomOld = true").await?;
        self.call("Page.reload", json!({})).await?;
        self.wait_for("!window.__anteroomOld && document.readyState === 'complete'")
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

    /// Lets the page show desktop notifications (and leaves every other
    /// permission as it was: `Browser.grantPermissions` would deny the rest,
    /// camera and microphone included).
    pub async fn grant_notifications(&self, origin: &str) -> Result<()> {
        call(
            &self.inner,
            None,
            "Browser.setPermission",
            json!({"permission": {"name": "notifications"}, "setting": "granted",
                   "origin": origin, "browserContextId": self.context}),
        )
        .await?;
        Ok(())
    }

    /// Saves a PNG of the viewport to `path`.
    pub async fn screenshot(&self, path: &Path) -> Result<()> {
        let r = self
            .call("Page.captureScreenshot", json!({"format": "png"}))
            .await?;
        let data = r["data"].as_str().context("screenshot data")?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(path, base64_decode(data)?)?;
        Ok(())
    }
}

/// Standard base64 (CDP's encoding of binary data).
fn base64_decode(s: &str) -> Result<Vec<u8>> {
    fn val(c: u8) -> Option<u32> {
        match c {
            b'A'..=b'Z' => Some(u32::from(c - b'A')),
            b'a'..=b'z' => Some(u32::from(c - b'a') + 26),
            b'0'..=b'9' => Some(u32::from(c - b'0') + 52),
            b'+' => Some(62),
            b'/' => Some(63),
            _ => None,
        }
    }
    let mut out = Vec::with_capacity(s.len() / 4 * 3);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in s.bytes().filter(|c| !c.is_ascii_whitespace() && *c != b'=') {
        acc = (acc << 6) | val(c).context("bad base64")?;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Ok(out)
}
