//! The OpenID Connect routes:
//!
//! - `GET /auth/oidc/{org}/start`: `303` to the provider, setting the
//!   sign-in cookie (`__Host-anteroom_oidc` over HTTPS, `anteroom_oidc` over
//!   plain HTTP; `HttpOnly`, `SameSite=Lax` so it comes back on the
//!   provider's top-level redirect, 10 minutes).
//! - `GET /auth/oidc/callback`: the redirect URI. `303` to `/portal` with the
//!   session cookie on success; `303` to
//!   `/portal?org=<org>&login_error=<code>` on any failure.
//! - `GET /api/login-options?org=<org>[&error=<code>]`: what the portal's
//!   sign-in page offers (`oidc_start` when the organisation has a provider)
//!   and the message for a `login_error` code.
//!
//! Every response is `Cache-Control: no-store` and `Referrer-Policy:
//! no-referrer` (the callback URL carries the code until it is used).

use std::sync::Arc;
use std::time::Instant;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::header::{CACHE_CONTROL, COOKIE, LOCATION, REFERRER_POLICY, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router, middleware};
use protocol::TenantId;
use serde::{Deserialize, Serialize};

use super::{Callback, Oidc, OidcError};
use crate::account_api::http::{ClientIp, session_cookie};
use crate::auth::Auth;

/// The sign-in cookie over plain HTTP.
pub const BINDING_COOKIE: &str = "anteroom_oidc";
/// The sign-in cookie over HTTPS (`__Host-`: Secure, Path=/, no Domain).
pub const SECURE_BINDING_COOKIE: &str = "__Host-anteroom_oidc";

#[derive(Clone)]
struct RouteState {
    oidc: Arc<Oidc>,
    secure: bool,
}

/// The OIDC routes over `auth`'s directory and sessions, ready to merge.
/// `secure_cookie`: served over HTTPS (cookies get `Secure` and `__Host-`).
pub fn router(auth: Arc<Auth>, secure_cookie: bool) -> Router {
    router_with(Arc::new(Oidc::new(auth)), secure_cookie)
}

/// [`router`] over an existing [`Oidc`] service.
pub fn router_with(oidc: Arc<Oidc>, secure_cookie: bool) -> Router {
    Router::new()
        .route("/auth/oidc/{org}/start", get(start))
        .route("/auth/oidc/callback", get(callback))
        .route("/api/login-options", get(login_options))
        .layer(middleware::map_response(private))
        .with_state(RouteState {
            oidc,
            secure: secure_cookie,
        })
}

async fn private(mut res: Response) -> Response {
    let h = res.headers_mut();
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    res
}

fn binding_cookie(value: &str, max_age: u64, secure: bool) -> String {
    let (name, flag) = if secure {
        (SECURE_BINDING_COOKIE, "; Secure")
    } else {
        (BINDING_COOKIE, "")
    };
    format!("{name}={value}; HttpOnly; SameSite=Lax; Path=/; Max-Age={max_age}{flag}")
}

fn binding_from(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, v)| (*n == BINDING_COOKIE || *n == SECURE_BINDING_COOKIE) && !v.is_empty())
        .map(|(_, v)| v.to_owned())
}

fn see_other(location: &str, cookies: &[String]) -> Response {
    let mut res = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(location) {
        res.headers_mut().insert(LOCATION, v);
    }
    for c in cookies {
        if let Ok(v) = HeaderValue::from_str(c) {
            res.headers_mut().append(SET_COOKIE, v);
        }
    }
    res
}

/// Where a failure sends the browser: the portal's sign-in page with the code.
fn portal_error(tenant: Option<&TenantId>, error: &OidcError) -> String {
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    if let Some(t) = tenant {
        q.append_pair("org", t.as_str());
    }
    q.append_pair("login_error", error.code());
    format!("/portal?{}", q.finish())
}

async fn start(
    State(st): State<RouteState>,
    ClientIp(ip): ClientIp,
    Path(org): Path<String>,
) -> Response {
    let Ok(tenant) = TenantId::new(org) else {
        return see_other(&portal_error(None, &OidcError::NotConfigured), &[]);
    };
    match st.oidc.start(&tenant, ip, Instant::now()).await {
        Ok(s) => {
            let max_age = super::pending::PENDING_TTL.as_secs();
            see_other(
                &s.redirect,
                &[binding_cookie(&s.binding, max_age, st.secure)],
            )
        }
        Err(e) => {
            tracing::warn!(tenant = %tenant, code = e.code(), error = %e, "oidc sign-in could not start");
            see_other(&portal_error(Some(&tenant), &e), &[])
        }
    }
}

async fn callback(
    State(st): State<RouteState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    query: Result<Query<Callback>, QueryRejection>,
) -> Response {
    let cb = query.map(|Query(q)| q).unwrap_or_default();
    let binding = binding_from(&headers);
    let clear = binding_cookie("", 0, st.secure);
    match st
        .oidc
        .finish(cb, binding.as_deref(), ip, Instant::now())
        .await
    {
        Ok((token, _)) => {
            let max_age = st.oidc.auth.settings().max_age.as_secs();
            let session = session_cookie(&token, max_age, st.secure);
            see_other("/portal", &[clear, session])
        }
        Err(f) => see_other(&portal_error(f.tenant.as_ref(), &f.error), &[clear]),
    }
}

#[derive(Default, Deserialize)]
struct OptionsQuery {
    #[serde(default)]
    org: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

#[derive(Serialize)]
struct LoginOptions {
    /// The organisation asked about, if it exists.
    org: Option<TenantId>,
    /// Its display name.
    org_name: Option<String>,
    /// Where "Sign in with your organisation" goes, if it has a provider.
    oidc_start: Option<String>,
    /// The message for `error`, if one was asked for.
    error_message: Option<String>,
}

async fn login_options(
    State(st): State<RouteState>,
    query: Result<Query<OptionsQuery>, QueryRejection>,
) -> Json<LoginOptions> {
    let q = query.map(|Query(q)| q).unwrap_or_default();
    let dir = &st.oidc.auth.directory;
    let tenant = q
        .org
        .and_then(|o| TenantId::new(o).ok())
        .and_then(|t| dir.tenant(&t));
    let oidc_start = tenant
        .as_ref()
        .filter(|t| st.oidc.enabled_for(&t.id))
        .map(|t| format!("/auth/oidc/{}/start", t.id));
    Json(LoginOptions {
        org: tenant.as_ref().map(|t| t.id.clone()),
        org_name: tenant.map(|t| t.name),
        oidc_start,
        error_message: q.error.as_deref().map(OidcError::message_for_code),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binding_cookie_is_lax_and_host_prefixed_over_https() {
        let c = binding_cookie("v", 600, true);
        assert!(c.starts_with("__Host-anteroom_oidc=v;"));
        assert!(c.contains("SameSite=Lax") && c.contains("Path=/") && c.ends_with("Secure"));
        assert!(!binding_cookie("v", 600, false).contains("Secure"));
        let mut h = HeaderMap::new();
        h.insert(COOKIE, HeaderValue::from_static("a=1; anteroom_oidc=xyz"));
        assert_eq!(binding_from(&h).as_deref(), Some("xyz"));
    }

    #[test]
    fn failures_redirect_with_a_code_only() {
        let t = TenantId::new("north").unwrap();
        assert_eq!(
            portal_error(Some(&t), &OidcError::WrongTenant),
            "/portal?org=north&login_error=wrong_tenant"
        );
        assert!(OidcError::message_for_code("wrong_tenant").contains("another organisation"));
        assert_eq!(
            OidcError::message_for_code("<script>"),
            "Sign-in with your organisation failed."
        );
    }
}
