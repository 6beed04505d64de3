//! CSRF protection of the REST API, as one middleware layer over the whole
//! router (see `docs/accounts.md`, "CSRF").
//!
//! A state-changing request (any method but GET/HEAD/OPTIONS/TRACE) under
//! `/api/` that is authenticated by the session **cookie** must carry
//! `X-CSRF-Token: <token>`, where the token is an HMAC-SHA256 of the session
//! token under a per-process random key ([`token_for`]). The page gets it in
//! the login reply and from `GET /api/me`; `web/common.js` sends it back. It
//! is bound to the session: another session's token, a token after logout,
//! or none at all gets `403 csrf_failed`. The cookie is also `SameSite=Strict`;
//! this is the second, independent line.
//!
//! Exempt: requests with `Authorization: Bearer …` (scripts, WHIP/WHEP,
//! ingest; a browser never attaches one on its own, so a forged request
//! cannot use it), requests with no session cookie or a dead one (the
//! handler answers 401), and the login steps (`/api/login`,
//! `/api/login/totp`), which have no session yet. Those get the login-CSRF
//! check instead: a browser's `Sec-Fetch-Site` must be `same-origin` or
//! `none`, else its `Origin` must name the `Host`; a cross-site login POST is
//! refused with `403 cross_site`. Cookie-authenticated requests get the same
//! origin check in addition to the token.
//!
//! Refusals are audited as `csrf_rejected` with the account id (if the
//! cookie's session is live), the source address and a reason — never a token.

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use axum::Router;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::header::{AUTHORIZATION, COOKIE, HOST, ORIGIN};
use axum::http::{HeaderMap, HeaderName, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::account_api::http::ApiError;
use crate::account_api::is_session_cookie;
use crate::audit::{Audit, AuditAction, AuditEvent};
use crate::auth::Auth;

/// The request header that carries the token.
pub const CSRF_HEADER: HeaderName = HeaderName::from_static("x-csrf-token");

/// Paths that log in (no session yet): only the origin check applies.
const LOGIN_PATHS: [&str; 2] = ["/api/login", "/api/login/totp"];

/// Domain separation of the MAC input.
const MAC_CONTEXT: &[u8] = b"anteroom csrf v1\0";

static KEY: OnceLock<[u8; 32]> = OnceLock::new();

/// The MAC key: random per process, unless [`use_shared_key`] set the one
/// every node shares (sessions in Redis: a session's CSRF token must verify
/// on whichever node the next request reaches).
fn key() -> &'static [u8; 32] {
    KEY.get_or_init(rand::random)
}

/// Uses `shared` as the MAC key (before the first request). Returns false
/// if a different key is already in use (tokens already handed out).
pub fn use_shared_key(shared: [u8; 32]) -> bool {
    *KEY.get_or_init(|| shared) == shared
}

fn mac(session_token: &str) -> Hmac<Sha256> {
    let mut m =
        <Hmac<Sha256> as Mac>::new_from_slice(key()).expect("HMAC takes keys of any length");
    m.update(MAC_CONTEXT);
    m.update(session_token.as_bytes());
    m
}

/// The CSRF token of the session whose token is `session_token`
/// (base64url, 43 characters).
pub fn token_for(session_token: &str) -> String {
    URL_SAFE_NO_PAD.encode(mac(session_token).finalize().into_bytes())
}

/// Whether `presented` is the CSRF token of `session_token` (constant time).
pub fn verify(session_token: &str, presented: &str) -> bool {
    if presented.len() > 128 {
        return false;
    }
    let Ok(bytes) = URL_SAFE_NO_PAD.decode(presented.trim()) else {
        return false;
    };
    mac(session_token).verify_slice(&bytes).is_ok()
}

#[derive(Clone)]
struct CsrfState {
    auth: Arc<Auth>,
    audit: Audit,
}

/// Wraps every route of `router` in the CSRF check. Apply it after the last
/// `merge`/`route`: axum layers only cover routes that exist when added.
pub fn protect(router: Router, auth: Arc<Auth>, audit: Audit) -> Router {
    router.layer(middleware::from_fn_with_state(
        CsrfState { auth, audit },
        check,
    ))
}

/// Why a request was refused (the audit `detail`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    CrossSite,
    Missing,
    Mismatch,
}

impl Refusal {
    fn as_str(self) -> &'static str {
        match self {
            Refusal::CrossSite => "cross_site",
            Refusal::Missing => "missing_token",
            Refusal::Mismatch => "token_mismatch",
        }
    }
}

async fn check(State(st): State<CsrfState>, req: Request, next: Next) -> Response {
    if req.method().is_safe() || !req.uri().path().starts_with("/api/") {
        return next.run(req).await;
    }
    let headers = req.headers();
    if has_bearer(headers) {
        return next.run(req).await;
    }
    let login = LOGIN_PATHS.contains(&req.uri().path());
    let cookie = session_cookie(headers);
    if !login && cookie.is_none() {
        return next.run(req).await;
    }
    let live = match cookie.map(|t| st.auth.check_session(&t, Instant::now()).map(|i| (t, i))) {
        Some(Ok((t, Some(i)))) => Some((t, i)),
        Some(Err(e)) => return e.into_response(),
        None | Some(Ok((_, None))) => None,
    };
    let refusal = if !same_origin(headers) {
        Some(Refusal::CrossSite)
    } else if login {
        None
    } else if let Some((token, _)) = &live {
        match headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok()) {
            None => Some(Refusal::Missing),
            Some(v) if verify(token, v) => None,
            Some(_) => Some(Refusal::Mismatch),
        }
    } else {
        // A dead or unknown cookie authenticates nothing: the handler says 401.
        None
    };
    let Some(refusal) = refusal else {
        return next.run(req).await;
    };
    let mut event = AuditEvent::new(AuditAction::CsrfRejected).detail(refusal.as_str());
    if let Some((_, info)) = live {
        event = event.actor(info.clinician).tenant(info.tenant);
    }
    if let Some(ConnectInfo(addr)) = req.extensions().get::<ConnectInfo<SocketAddr>>() {
        event = event.source(addr.ip());
    }
    st.audit.record(event);
    tracing::debug!(
        reason = refusal.as_str(),
        "request refused by the CSRF check"
    );
    refusal_response(refusal)
}

fn refusal_response(refusal: Refusal) -> Response {
    let (code, message) = match refusal {
        Refusal::CrossSite => (
            "cross_site",
            "this request must come from this site's own pages",
        ),
        Refusal::Missing | Refusal::Mismatch => (
            "csrf_failed",
            "missing or invalid X-CSRF-Token header: reload the page and try again",
        ),
    };
    ApiError::new(StatusCode::FORBIDDEN, code, message).into_response()
}

/// Whether the request carries a non-empty `Authorization: Bearer` token
/// (then that token, not the cookie, authenticates it).
fn has_bearer(headers: &HeaderMap) -> bool {
    headers.get_all(AUTHORIZATION).iter().any(|v| {
        v.to_str().ok().is_some_and(|v| {
            let mut parts = v.trim().splitn(2, ' ');
            parts
                .next()
                .is_some_and(|s| s.eq_ignore_ascii_case("bearer"))
                && parts.next().is_some_and(|t| !t.trim().is_empty())
        })
    })
}

/// The session cookie's value, if any.
fn session_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, v)| is_session_cookie(k) && !v.is_empty())
        .map(|(_, v)| v.to_owned())
}

/// Whether a browser says the request comes from this origin:
/// `Sec-Fetch-Site` (when sent) is `same-origin` or `none` (typed by the
/// user), else `Origin` (when sent) names the `Host`. Requests with neither
/// (not a browser, or a very old one) pass.
pub(crate) fn same_origin(headers: &HeaderMap) -> bool {
    if let Some(site) = headers.get("sec-fetch-site") {
        return matches!(site.to_str(), Ok("same-origin" | "none"));
    }
    let Some(origin) = headers.get(ORIGIN) else {
        return true;
    };
    let host = headers.get(HOST).and_then(|h| h.to_str().ok());
    let origin_host = origin
        .to_str()
        .ok()
        .and_then(|o| o.split_once("://"))
        .map(|(_, rest)| rest);
    origin_host.is_some() && origin_host == host
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn token_is_bound_to_the_session() {
        let t = token_for("session-a");
        assert_eq!(t.len(), 43);
        assert!(verify("session-a", &t));
        assert!(!verify("session-b", &t));
        assert!(!verify("session-a", &token_for("session-b")));
        assert!(!verify("session-a", ""));
        assert!(!verify("session-a", "not base64 !"));
        assert!(!verify("session-a", &"A".repeat(10_000)));
        assert!(!t.contains("session-a"));
    }

    #[test]
    fn bearer_detection_matches_request_token() {
        assert!(has_bearer(&headers(&[("authorization", "Bearer x")])));
        assert!(has_bearer(&headers(&[("authorization", "bearer  x ")])));
        assert!(!has_bearer(&headers(&[("authorization", "Basic x")])));
        assert!(!has_bearer(&headers(&[("authorization", "Bearer ")])));
        assert!(!has_bearer(&HeaderMap::new()));
    }

    #[test]
    fn origin_rules() {
        assert!(same_origin(&HeaderMap::new()));
        assert!(same_origin(&headers(&[("sec-fetch-site", "same-origin")])));
        assert!(same_origin(&headers(&[("sec-fetch-site", "none")])));
        assert!(!same_origin(&headers(&[("sec-fetch-site", "same-site")])));
        assert!(!same_origin(&headers(&[("sec-fetch-site", "cross-site")])));
        let h = |o: &str| headers(&[("host", "a.example:8443"), ("origin", o)]);
        assert!(same_origin(&h("https://a.example:8443")));
        assert!(!same_origin(&h("https://evil.example")));
        assert!(!same_origin(&h("null")));
    }

    #[test]
    fn cookie_is_found_under_either_name() {
        let c = |v: &str| session_cookie(&headers(&[("cookie", v)]));
        assert_eq!(c("a=1; anteroom_session=t").as_deref(), Some("t"));
        assert_eq!(c("__Host-anteroom_session=t").as_deref(), Some("t"));
        assert_eq!(c("anteroom_session="), None);
        assert_eq!(c("other=t"), None);
    }
}
