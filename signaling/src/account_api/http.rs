//! HTTP plumbing of the account API: the JSON error body, the client-address
//! extractor, and reading/writing the session token (Bearer header or cookie).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::header::{AUTHORIZATION, COOKIE, RETRY_AFTER, WWW_AUTHENTICATE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::auth::AuthError;

/// Name of the session cookie over plain HTTP.
pub const SESSION_COOKIE: &str = "anteroom_session";

/// Name of the session cookie over HTTPS: the `__Host-` prefix makes
/// browsers refuse it unless it is `Secure`, has `Path=/` and no `Domain`,
/// so no sibling subdomain or plain-HTTP page can set or shadow it.
pub const SECURE_SESSION_COOKIE: &str = "__Host-anteroom_session";

/// Whether a cookie name is the session cookie (either form).
pub fn is_session_cookie(name: &str) -> bool {
    name == SESSION_COOKIE || name == SECURE_SESSION_COOKIE
}

/// An error response: `{"error": {"code", "message"}}` with its status
/// (and `Retry-After` / `WWW-Authenticate` where they apply).
#[derive(Debug)]
pub(crate) struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    retry_after_secs: Option<u64>,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            retry_after_secs: None,
        }
    }

    pub(crate) fn unauthenticated() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "a valid session is required: log in again",
        )
    }

    pub(crate) fn forbidden() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "this needs the admin role",
        )
    }

    pub(crate) fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", "no such account")
    }

    pub(crate) fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error",
        )
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::InvalidCredentials => Self::new(
                StatusCode::UNAUTHORIZED,
                "invalid_credentials",
                e.to_string(),
            ),
            AuthError::Throttled { retry_after_secs } => Self {
                retry_after_secs: Some(retry_after_secs),
                ..Self::new(StatusCode::TOO_MANY_REQUESTS, "throttled", e.to_string())
            },
            AuthError::UsernameTaken => {
                Self::new(StatusCode::CONFLICT, "username_taken", e.to_string())
            }
            AuthError::UnknownAccount => Self::not_found(),
            AuthError::Invalid(msg) => Self::new(StatusCode::BAD_REQUEST, "invalid_request", msg),
            AuthError::TotpRequired { .. } => {
                Self::new(StatusCode::UNAUTHORIZED, "totp_required", e.to_string())
            }
            AuthError::LoginExpired => {
                Self::new(StatusCode::UNAUTHORIZED, "login_expired", e.to_string())
            }
            AuthError::TotpAlreadyEnabled => {
                Self::new(StatusCode::CONFLICT, "totp_already_enabled", e.to_string())
            }
            AuthError::Hash(_) => {
                tracing::error!("password hashing failed");
                Self::internal()
            }
            AuthError::Unavailable => crate::Error::Redis(String::new()).into(),
        }
    }
}

/// A Redis outage is 503 `unavailable` (retry shortly); anything else 500.
impl From<crate::Error> for ApiError {
    fn from(e: crate::Error) -> Self {
        if e.is_unavailable() {
            tracing::warn!(error = %e, "shared state unavailable");
            Self {
                retry_after_secs: Some(crate::http::UNAVAILABLE_RETRY_SECS),
                ..Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    crate::http::UNAVAILABLE_MESSAGE,
                )
            }
        } else {
            tracing::error!(error = %e, "request failed");
            Self::internal()
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        let (status, code) = match r.status() {
            StatusCode::UNSUPPORTED_MEDIA_TYPE => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
            }
            StatusCode::PAYLOAD_TOO_LARGE => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            _ => (StatusCode::BAD_REQUEST, "invalid_json"),
        };
        Self::new(status, code, r.body_text())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = json!({ "error": { "code": self.code, "message": self.message } });
        if let (Some(secs), Some(err)) = (self.retry_after_secs, body.get_mut("error")) {
            err["retry_after_secs"] = json!(secs);
        }
        let mut res = (self.status, Json(body)).into_response();
        if let Some(secs) = self.retry_after_secs {
            res.headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from(secs));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            res.headers_mut()
                .insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        res
    }
}

/// The client's address, from axum's `ConnectInfo<SocketAddr>` (the server
/// must serve with `into_make_service_with_connect_info::<SocketAddr>()`).
/// Without it every request counts as `0.0.0.0`: throttling then errs on the
/// strict side (one shared per-address bucket) and a warning is logged.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ClientIp(pub(crate) IpAddr);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        if let Some(ConnectInfo(addr)) = parts.extensions.get::<ConnectInfo<SocketAddr>>() {
            return Ok(ClientIp(addr.ip()));
        }
        tracing::warn!("no ConnectInfo<SocketAddr>: login throttling cannot tell clients apart");
        Ok(ClientIp(IpAddr::V4(Ipv4Addr::UNSPECIFIED)))
    }
}

/// The session token of a request: `Authorization: Bearer <token>` if
/// present, else the `anteroom_session` cookie.
pub(crate) fn request_token(headers: &HeaderMap) -> Option<String> {
    for v in headers.get_all(AUTHORIZATION) {
        let Ok(v) = v.to_str() else { continue };
        let mut parts = v.trim().splitn(2, ' ');
        if let (Some(scheme), Some(token)) = (parts.next(), parts.next())
            && scheme.eq_ignore_ascii_case("bearer")
            && !token.trim().is_empty()
        {
            return Some(token.trim().to_owned());
        }
    }
    for v in headers.get_all(COOKIE) {
        let Ok(v) = v.to_str() else { continue };
        for pair in v.split(';') {
            if let Some((name, value)) = pair.trim().split_once('=')
                && is_session_cookie(name)
                && !value.is_empty()
            {
                return Some(value.to_owned());
            }
        }
    }
    None
}

/// `Set-Cookie` value opening a session cookie that lives at most `max_age_secs`.
/// With `secure` (HTTPS) it is `__Host-` prefixed and `Secure`.
pub(crate) fn session_cookie(token: &str, max_age_secs: u64, secure: bool) -> String {
    let (name, secure) = if secure {
        (SECURE_SESSION_COOKIE, "; Secure")
    } else {
        (SESSION_COOKIE, "")
    };
    format!("{name}={token}; HttpOnly; SameSite=Strict; Path=/; Max-Age={max_age_secs}{secure}")
}

/// `Set-Cookie` value deleting the session cookie.
pub(crate) fn clear_cookie(secure: bool) -> String {
    session_cookie("", 0, secure)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn token_from_bearer_then_cookie() {
        assert_eq!(
            request_token(&headers(&[("authorization", "Bearer abc")])).as_deref(),
            Some("abc")
        );
        assert_eq!(
            request_token(&headers(&[("authorization", "bearer  abc ")])).as_deref(),
            Some("abc")
        );
        assert_eq!(
            request_token(&headers(&[("cookie", "x=1; anteroom_session=tok; y=2")])).as_deref(),
            Some("tok")
        );
        assert_eq!(
            request_token(&headers(&[
                ("authorization", "Bearer a"),
                ("cookie", "anteroom_session=b")
            ]))
            .as_deref(),
            Some("a")
        );
        assert_eq!(
            request_token(&headers(&[("authorization", "Basic abc")])),
            None
        );
        assert_eq!(
            request_token(&headers(&[("cookie", "anteroom_session=")])),
            None
        );
        assert_eq!(request_token(&HeaderMap::new()), None);
    }

    #[test]
    fn cookie_attributes() {
        let c = session_cookie("t", 60, false);
        assert_eq!(
            c,
            "anteroom_session=t; HttpOnly; SameSite=Strict; Path=/; Max-Age=60"
        );
        assert!(session_cookie("t", 60, true).ends_with("; Secure"));
        assert!(clear_cookie(false).contains("Max-Age=0"));
    }
}
