//! The web pages signaling serves: the patient page (`/r/<room>`), the
//! invitation page (`/i/<token>`, the patient page joining by invitation), the
//! clinician portal (`/portal`), the admin view (`/admin`), a landing page
//! (`/`) and their scripts and styles (`/static/<file>`).
//!
//! Every file is embedded in the binary from `web/` at build time, so a
//! single `signaling --dev` serves the whole product. Every response carries a
//! strict Content-Security-Policy (no inline script or style, nothing from
//! other origins), `X-Content-Type-Options: nosniff`, `Referrer-Policy:
//! no-referrer` and `X-Frame-Options: DENY`; pages and assets are revalidated
//! with a content-hash `ETag` (`Cache-Control: no-cache`), so a deploy is seen
//! at once and an unchanged file costs a `304`.

use std::fmt::Write as _;
use std::sync::OnceLock;

use axum::Router;
use axum::extract::Path;
use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, ETAG, HOST, IF_NONE_MATCH,
    REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use sha2::{Digest as _, Sha256};

/// One embedded file.
#[derive(Debug)]
struct Asset {
    /// Name under `/static/` (or the page it backs).
    name: &'static str,
    /// MIME type sent as `Content-Type`.
    content_type: &'static str,
    /// The bytes.
    body: &'static [u8],
}

macro_rules! asset {
    ($name:literal, $ty:expr) => {
        Asset {
            name: $name,
            content_type: $ty,
            body: include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/../web/", $name)),
        }
    };
}

const HTML: &str = "text/html; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

/// Every embedded file.
static ASSETS: &[Asset] = &[
    asset!("index.html", HTML),
    asset!("patient.html", HTML),
    asset!("portal.html", HTML),
    asset!("admin.html", HTML),
    asset!("style.css", CSS),
    asset!("common.js", JS),
    asset!("devices.js", JS),
    asset!("media.js", JS),
    asset!("conntest.js", JS),
    asset!("index.js", JS),
    asset!("patient.js", JS),
    asset!("alerts.js", JS),
    asset!("portal-call.js", JS),
    asset!("portal-dialogs.js", JS),
    asset!("portal.js", JS),
    asset!("portal-oidc.js", JS),
    asset!("admin.js", JS),
    asset!("admin-rooms.js", JS),
    asset!("favicon.svg", "image/svg+xml"),
];

/// The page routes and the static files.
pub fn router() -> Router {
    Router::new()
        .route(
            "/",
            get(|h: HeaderMap| async move { page("index.html", &h) }),
        )
        .route(
            "/r/{room}",
            get(|h: HeaderMap| async move { page("patient.html", &h) }),
        )
        .route(
            "/i/{token}",
            get(|h: HeaderMap| async move { page("patient.html", &h) }),
        )
        .route(
            "/portal",
            get(|h: HeaderMap| async move { page("portal.html", &h) }),
        )
        .route(
            "/admin",
            get(|h: HeaderMap| async move { page("admin.html", &h) }),
        )
        .route("/static/{file}", get(static_file))
        .route(
            "/favicon.ico",
            get(|h: HeaderMap| async move { page("favicon.svg", &h) }),
        )
}

async fn static_file(Path(file): Path<String>, headers: HeaderMap) -> Response {
    // Pages have one URL each; their files are not reachable under /static/.
    match find(&file) {
        Some((asset, _)) if asset.content_type != HTML => page(&file, &headers),
        _ => not_found(&headers),
    }
}

fn find(name: &str) -> Option<(&'static Asset, &'static str)> {
    static TAGS: OnceLock<Vec<String>> = OnceLock::new();
    let tags = TAGS.get_or_init(|| {
        ASSETS
            .iter()
            .map(|a| {
                let digest = Sha256::digest(a.body);
                let mut tag = String::with_capacity(26);
                tag.push('"');
                for b in digest.iter().take(12) {
                    let _ = write!(tag, "{b:02x}");
                }
                tag.push('"');
                tag
            })
            .collect()
    });
    let i = ASSETS.iter().position(|a| a.name == name)?;
    Some((ASSETS.get(i)?, tags.get(i)?.as_str()))
}

fn page(name: &str, headers: &HeaderMap) -> Response {
    let Some((asset, etag)) = find(name) else {
        return not_found(headers);
    };
    let fresh = headers
        .get(IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    let mut resp = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        asset.body.into_response()
    };
    let h = resp.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static(asset.content_type));
    if let Ok(v) = HeaderValue::from_str(etag) {
        h.insert(ETAG, v);
    }
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    security_headers(h, headers);
    resp
}

fn not_found(headers: &HeaderMap) -> Response {
    let mut resp = (StatusCode::NOT_FOUND, "not found\n").into_response();
    let h = resp.headers_mut();
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    security_headers(h, headers);
    resp
}

/// The Content-Security-Policy for a request to `host` (the `Host` header,
/// used only if it is a plain host[:port]): scripts, styles, images, media
/// and connections only from this origin (and its own `ws:`/`wss:`).
pub fn content_security_policy(host: Option<&str>) -> String {
    let ws = host
        .filter(|h| {
            !h.is_empty()
                && h.len() <= 255
                && h.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
        })
        .map(|h| format!(" ws://{h} wss://{h}"))
        .unwrap_or_default();
    format!(
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
         media-src 'self' blob: mediastream:; connect-src 'self'{ws}; object-src 'none'; \
         base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    )
}

fn security_headers(h: &mut HeaderMap, request: &HeaderMap) {
    let host = request.get(HOST).and_then(|v| v.to_str().ok());
    if let Ok(v) = HeaderValue::from_str(&content_security_policy(host)) {
        h.insert(CONTENT_SECURITY_POLICY, v);
    }
    h.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        "permissions-policy",
        HeaderValue::from_static("camera=(self), microphone=(self), geolocation=()"),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_asset_has_a_type_matching_its_extension() {
        for a in ASSETS {
            let want = match a.name.rsplit('.').next() {
                Some("html") => HTML,
                Some("js") => JS,
                Some("css") => CSS,
                _ => continue,
            };
            assert_eq!(a.content_type, want, "{}", a.name);
        }
    }

    #[test]
    fn csp_ignores_a_hostile_host_header() {
        let csp = content_security_policy(Some("evil.example; script-src *"));
        assert!(!csp.contains("evil"));
        let csp = content_security_policy(Some("127.0.0.1:8080"));
        assert!(csp.contains("connect-src 'self' ws://127.0.0.1:8080 wss://127.0.0.1:8080;"));
    }
}
