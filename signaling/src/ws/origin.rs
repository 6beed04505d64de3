//! Which web pages may open a WebSocket: the `Origin` check of `/ws` and the
//! refusal of browsers on the relays' `/control` (issue 8).
//!
//! Browsers send an `Origin` header with every WebSocket handshake and let
//! any page open a socket to any host, with the user's cookies. Without a
//! check, a page on another site could talk to `/ws` as the visitor
//! (cross-site WebSocket hijacking). So an upgrade whose `Origin` is not
//! allowed is refused with 403 before it is upgraded:
//!
//! - with `--allowed-origin` (repeatable, or comma-separated in
//!   `ANTEROOM_ALLOWED_ORIGINS`): only the listed origins;
//! - without it: only the origin of the host the request was sent to
//!   (`http://` or `https://` + its `Host` header), i.e. signaling's own pages.
//!
//! A request without `Origin` is allowed: browsers always send one on a
//! WebSocket handshake, so its absence means a non-browser client (the Rust
//! client, bench, a mobile app), which could forge any `Origin` anyway. The
//! check protects browser users; clients authenticate by `hello` as always.
//!
//! `/control` is for relays (Rust, no browser): any upgrade there that
//! carries an `Origin` is refused ([`refuse_browsers`]). Relays still prove
//! the shared secret on registration; this only keeps web pages away.

use axum::extract::Request;
use axum::http::header::{HOST, ORIGIN};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse as _, Response};

/// A web origin in canonical form: lower-case `http://host[:port]` or
/// `https://host[:port]`, without the scheme's default port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowedOrigin(String);

impl AllowedOrigin {
    /// Parses an origin as browsers send it (`scheme://host[:port]`, no path).
    pub fn parse(origin: &str) -> Option<Self> {
        let origin = origin.trim().to_ascii_lowercase();
        let (scheme, authority) = origin.split_once("://")?;
        let default_port = match scheme {
            "http" => ":80",
            "https" => ":443",
            _ => return None,
        };
        let bad = |c: char| matches!(c, '/' | '?' | '#' | '@' | '\\') || c.is_whitespace();
        if authority.is_empty() || authority.contains(bad) || authority.starts_with(':') {
            return None;
        }
        let authority = authority.strip_suffix(default_port).unwrap_or(authority);
        Some(Self(format!("{scheme}://{authority}")))
    }

    /// The canonical text, e.g. `https://clinic.example`.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for AllowedOrigin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn parse_origin(s: &str) -> Result<AllowedOrigin, String> {
    AllowedOrigin::parse(s).ok_or_else(|| {
        format!("{s:?} is not a web origin: give scheme://host[:port] with http or https, no path")
    })
}

/// The `--allowed-origin` flag.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct OriginArgs {
    /// A web origin whose pages may open `/ws`, e.g.
    /// `https://clinic.example` (repeat the flag, or comma-separate in the
    /// variable). Default: only pages of the host the request is sent to.
    /// Requests without `Origin` (non-browser clients) are always allowed.
    #[arg(
        long = "allowed-origin",
        env = "ANTEROOM_ALLOWED_ORIGINS",
        value_delimiter = ',',
        value_name = "ORIGIN",
        value_parser = parse_origin
    )]
    pub allowed_origins: Vec<AllowedOrigin>,
}

impl OriginArgs {
    /// The policy these flags describe.
    pub fn policy(&self) -> OriginPolicy {
        if self.allowed_origins.is_empty() {
            OriginPolicy::SameHost
        } else {
            OriginPolicy::List(self.allowed_origins.clone())
        }
    }
}

/// Which `Origin`s may open `/ws`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum OriginPolicy {
    /// Only `http(s)://<Host header>`.
    #[default]
    SameHost,
    /// Only these.
    List(Vec<AllowedOrigin>),
}

impl OriginPolicy {
    /// Whether an upgrade request with these headers may proceed.
    pub fn allows(&self, headers: &HeaderMap) -> bool {
        let Some(origin) = headers.get(ORIGIN) else {
            return true;
        };
        let Some(origin) = origin.to_str().ok().and_then(AllowedOrigin::parse) else {
            return false; // `null` (sandboxed pages, file://) and garbage
        };
        match self {
            Self::List(list) => list.contains(&origin),
            Self::SameHost => {
                let host = headers.get(HOST).and_then(|h| h.to_str().ok());
                let scheme = origin.0.split("://").next().unwrap_or_default();
                host.and_then(|h| AllowedOrigin::parse(&format!("{scheme}://{h}")))
                    .is_some_and(|own| own == origin)
            }
        }
    }
}

/// The 403 of a refused upgrade.
pub fn forbidden() -> Response {
    (StatusCode::FORBIDDEN, "origin not allowed\n").into_response()
}

/// Middleware for endpoints no browser may use (the relays' `/control`):
/// a request carrying `Origin` gets 403.
pub async fn refuse_browsers(req: Request, next: Next) -> Response {
    if req.headers().contains_key(ORIGIN) {
        tracing::debug!("refused a browser (Origin header) on a relay endpoint");
        return forbidden();
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn headers(host: Option<&str>, origin: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Some(v) = host {
            h.insert(HOST, HeaderValue::from_str(v).unwrap());
        }
        if let Some(v) = origin {
            h.insert(ORIGIN, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn origins_are_canonical() {
        let p = |s| AllowedOrigin::parse(s).map(|o| o.0);
        assert_eq!(
            p("HTTPS://Clinic.Example:443").as_deref(),
            Some("https://clinic.example")
        );
        assert_eq!(p("http://x:80").as_deref(), Some("http://x"));
        assert_eq!(p("http://x:8080").as_deref(), Some("http://x:8080"));
        assert_eq!(p("http://[::1]:8080").as_deref(), Some("http://[::1]:8080"));
        for bad in [
            "null",
            "ftp://x",
            "https://",
            "https://x/path",
            "https://u@x",
            "x",
        ] {
            assert_eq!(p(bad), None, "{bad}");
        }
    }

    #[test]
    fn same_host_is_the_default() {
        let p = OriginPolicy::default();
        assert!(p.allows(&headers(Some("a:8080"), Some("http://a:8080"))));
        assert!(p.allows(&headers(Some("a"), Some("https://a:443"))));
        assert!(
            p.allows(&headers(Some("a:8080"), None)),
            "no Origin: not a browser"
        );
        assert!(!p.allows(&headers(Some("a:8080"), Some("http://evil:8080"))));
        assert!(!p.allows(&headers(Some("a:8080"), Some("http://a:9090"))));
        assert!(!p.allows(&headers(None, Some("http://a"))));
        assert!(!p.allows(&headers(Some("a"), Some("null"))));
    }

    #[test]
    fn a_list_allows_only_its_origins() {
        let list = [
            "https://clinic.example".to_owned(),
            "http://a:8080".to_owned(),
        ];
        let p = OriginPolicy::List(
            list.iter()
                .filter_map(|o| AllowedOrigin::parse(o))
                .collect(),
        );
        assert!(p.allows(&headers(Some("a:8080"), Some("https://clinic.example"))));
        assert!(p.allows(&headers(Some("b"), Some("http://a:8080"))));
        assert!(
            !p.allows(&headers(Some("b"), Some("http://b"))),
            "own host not implied"
        );
        assert!(p.allows(&headers(Some("b"), None)));
    }
}
