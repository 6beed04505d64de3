//! The web pages as served over HTTP, without a browser: every page and
//! asset is served with its type, a strict Content-Security-Policy and the
//! other security headers; ETags give `304`s; and no file refers to anything
//! outside this origin or needs inline script/style (which the CSP forbids).

mod support;

use std::net::SocketAddr;
use std::path::PathBuf;

use support::{GUARD, TestServer};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

/// A response: status, lower-cased headers, body.
struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Resp {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

async fn get(addr: SocketAddr, path: &str, extra: &str) -> Resp {
    let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{extra}\r\n");
    let mut s = TcpStream::connect(addr).await.expect("connect");
    s.write_all(req.as_bytes()).await.expect("write");
    let mut out = Vec::new();
    tokio::time::timeout(GUARD, s.read_to_end(&mut out))
        .await
        .expect("reply in time")
        .expect("read");
    let split = out
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("header end");
    let head = String::from_utf8_lossy(&out[..split]).into_owned();
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|c| c.parse().ok())
        .expect("status");
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let mut body = out[split + 4..].to_vec();
    // Small bodies only; axum sends a Content-Length, no chunking.
    if let Some(n) = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(str::trim)
                .map(str::to_owned)
        })
        .and_then(|n| n.parse::<usize>().ok())
    {
        body.truncate(n);
    }
    Resp {
        status,
        headers,
        body,
    }
}

/// The file name's extension ("" if none).
fn extension(name: &str) -> &str {
    name.rsplit_once('.').map_or("", |(_, e)| e)
}

fn web_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../web")
}

/// Every file of web/ with its contents.
fn web_files() -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(web_dir())
        .expect("web/ exists")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.is_file())
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&p).expect("read"))
        })
        .collect();
    files.sort();
    files
}

fn assert_security_headers(r: &Resp, what: &str) {
    let csp = r
        .header("content-security-policy")
        .unwrap_or_else(|| panic!("{what}: no CSP"));
    for part in [
        "default-src 'self'",
        "script-src 'self';",
        "style-src 'self';",
        "object-src 'none'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
    ] {
        assert!(csp.contains(part), "{what}: CSP lacks {part}: {csp}");
    }
    assert!(
        !csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"),
        "{what}: {csp}"
    );
    assert!(
        !csp.contains('*') && !csp.contains("https:;"),
        "{what}: CSP allows other origins: {csp}"
    );
    assert_eq!(
        r.header("x-content-type-options"),
        Some("nosniff"),
        "{what}"
    );
    assert_eq!(r.header("x-frame-options"), Some("DENY"), "{what}");
    assert_eq!(r.header("referrer-policy"), Some("no-referrer"), "{what}");
}

#[tokio::test]
async fn pages_are_served_with_a_strict_csp_and_security_headers() {
    let server = TestServer::start().await;
    for (path, marker) in [
        ("/", "Video consultations"),
        ("/r/a-gp", "Check your camera and microphone"),
        ("/i/some-invite-token", "Check your camera and microphone"),
        ("/portal", "Clinician sign-in"),
        ("/admin", "Administrator sign-in"),
    ] {
        let r = get(server.addr, path, "").await;
        assert_eq!(r.status, 200, "{path}");
        assert_eq!(
            r.header("content-type"),
            Some("text/html; charset=utf-8"),
            "{path}"
        );
        assert!(String::from_utf8_lossy(&r.body).contains(marker), "{path}");
        assert_security_headers(&r, path);
        let csp = r.header("content-security-policy").unwrap();
        let host = server.addr.to_string();
        assert!(
            csp.contains(&format!("connect-src 'self' ws://{host} wss://{host};")),
            "{path}: the page may open its own WebSocket: {csp}"
        );
    }
    let r = get(server.addr, "/static/nope.js", "").await;
    assert_eq!(r.status, 404);
    assert_security_headers(&r, "404");
    // Pages are not reachable as static files (one URL per page).
    assert_eq!(
        get(server.addr, "/static/portal.html", "").await.status,
        404
    );
    server.stop().await.unwrap();
}

#[tokio::test]
async fn every_file_in_web_is_served_unchanged_with_its_type() {
    let server = TestServer::start().await;
    let files = web_files();
    assert!(files.len() >= 10, "web/ has the pages, scripts and styles");
    for (name, contents) in &files {
        let path = if extension(name) == "html" {
            match name.as_str() {
                "index.html" => "/".to_owned(),
                "patient.html" => "/r/demo".to_owned(),
                "portal.html" => "/portal".to_owned(),
                "admin.html" => "/admin".to_owned(),
                other => panic!("web/{other} is not served by any route"),
            }
        } else {
            format!("/static/{name}")
        };
        let r = get(server.addr, &path, "").await;
        assert_eq!(r.status, 200, "{name} is embedded and served");
        assert_eq!(&r.body, contents, "{name} served unchanged");
        let want = match name.rsplit('.').next() {
            Some("html") => "text/html; charset=utf-8",
            Some("js") => "text/javascript; charset=utf-8",
            Some("css") => "text/css; charset=utf-8",
            Some("svg") => "image/svg+xml",
            other => panic!("unexpected file type {other:?}"),
        };
        assert_eq!(r.header("content-type"), Some(want), "{name}");
        assert_eq!(r.header("cache-control"), Some("no-cache"), "{name}");
        assert_security_headers(&r, name);
    }
    server.stop().await.unwrap();
}

#[tokio::test]
async fn etag_revalidation_answers_304_and_a_changed_tag_gets_the_file() {
    let server = TestServer::start().await;
    for path in ["/", "/portal", "/static/common.js", "/static/style.css"] {
        let first = get(server.addr, path, "").await;
        let tag = first.header("etag").expect("etag").to_owned();
        assert!(
            tag.starts_with('"') && tag.ends_with('"'),
            "{path}: strong tag {tag}"
        );
        let again = get(server.addr, path, &format!("If-None-Match: {tag}\r\n")).await;
        assert_eq!(again.status, 304, "{path}");
        assert!(again.body.is_empty(), "{path}: 304 has no body");
        assert_eq!(again.header("etag"), Some(tag.as_str()));
        assert_security_headers(&again, path);
        let list = get(
            server.addr,
            path,
            &format!("If-None-Match: \"x\", {tag}\r\n"),
        )
        .await;
        assert_eq!(list.status, 304, "{path}: a tag in a list matches");
        let stale = get(server.addr, path, "If-None-Match: \"0000\"\r\n").await;
        assert_eq!(stale.status, 200, "{path}");
        assert_eq!(stale.body, first.body);
    }
    let a = get(server.addr, "/static/common.js", "").await;
    let b = get(server.addr, "/static/media.js", "").await;
    assert_ne!(
        a.header("etag"),
        b.header("etag"),
        "tags follow the content"
    );
    server.stop().await.unwrap();
}

/// Attribute values of `attr="…"` in `html`.
fn attr_values<'a>(html: &'a str, attr: &str) -> Vec<&'a str> {
    let needle = format!(" {attr}=\"");
    html.match_indices(&needle)
        .filter_map(|(i, _)| {
            let rest = &html[i + needle.len()..];
            rest.find('"').map(|end| &rest[..end])
        })
        .collect()
}

#[test]
fn no_asset_refers_to_another_origin_or_needs_inline_code() {
    for (name, contents) in web_files() {
        let text = String::from_utf8(contents).unwrap_or_else(|_| panic!("{name} is UTF-8"));
        let lower = text.to_ascii_lowercase();
        // The SVG namespace is an identifier, not a fetch.
        let scrubbed = lower.replace("xmlns=\"http://www.w3.org/2000/svg\"", "");
        for bad in [
            "http://", "https://", "//cdn", "@import", "url(http", "wss://", "ws://",
        ] {
            assert!(!scrubbed.contains(bad), "{name} contains {bad}");
        }
        assert!(!lower.contains("eval("), "{name}: no eval (CSP forbids it)");
        assert!(
            !lower.contains("innerhtml"),
            "{name}: text only, never innerHTML"
        );
        if extension(&name) == "html" {
            assert!(!lower.contains("<style"), "{name}: no inline <style>");
            assert!(!lower.contains(" style=\""), "{name}: no style attributes");
            assert!(
                !lower.contains("javascript:"),
                "{name}: no javascript: URLs"
            );
            for (i, _) in lower.match_indices("<script") {
                let tag = &lower[i..lower[i..].find('>').map_or(lower.len(), |e| i + e)];
                assert!(
                    tag.contains(" src=\"/static/"),
                    "{name}: inline script {tag}"
                );
            }
            for handler in [
                " onclick=",
                " onload=",
                " onerror=",
                " onsubmit=",
                " oninput=",
            ] {
                assert!(!lower.contains(handler), "{name}: inline handler {handler}");
            }
            for attr in ["src", "href", "action"] {
                for v in attr_values(&text, attr) {
                    assert!(
                        v.starts_with('/') && !v.starts_with("//") || v.starts_with('#'),
                        "{name}: {attr}=\"{v}\" must be a path on this origin"
                    );
                }
            }
            assert!(
                text.contains("<html lang=\"en\">"),
                "{name}: declares its language"
            );
        }
    }
}
