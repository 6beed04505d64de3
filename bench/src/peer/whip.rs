//! [`WhipNegotiator`]: a [`Negotiator`] that carries publishers' offers to a WHIP
//! endpoint and subscribers' (recvonly) offers to a WHEP endpoint over plain HTTP/1.1,
//! remembers every session's `Location`, and `DELETE`s them all at the end
//! ([`WhipNegotiator::end_all`]).
//!
//! The HTTP client is deliberately tiny (one request per connection, `Connection:
//! close`, `Content-Length` or chunked bodies, a size cap and a timeout): bench only
//! talks to endpoints it was told about, and a `Location` pointing at another host is
//! sent to the endpoint bench was given, never followed elsewhere.

use std::fmt;
use std::net::SocketAddr;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use str0m::change::SdpAnswer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::{BoxFuture, NegotiateRequest, Negotiator, PeerKind, host_candidate};
use crate::target::{check_addr, check_target};
use crate::{Error, Result};

/// Largest HTTP response bench reads.
const MAX_RESPONSE: u64 = 256 * 1024;
/// How often a `503` answer (no server available yet) is retried.
const RETRIES_503: u32 = 5;
/// How long one HTTP exchange may take.
const HTTP_TIMEOUT: Duration = Duration::from_secs(10);

/// One HTTP endpoint: where to connect, the `Host` header and the request path.
#[derive(Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// The address bench connects to.
    pub addr: SocketAddr,
    /// The `Host` header (`host:port` as given).
    pub host: String,
    /// The request path, e.g. `/whip/c-123`.
    pub path: String,
}

impl fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The path names the call only; no credentials live in an endpoint.
        write!(f, "http://{}{}", self.host, self.path)
    }
}

impl Endpoint {
    /// Parses `whip://host:port/path`, `whep://…` or `http://…` (plain HTTP only) and
    /// applies the loopback guard before resolving anything.
    pub async fn parse(url: &str, allow_remote: bool) -> Result<Endpoint> {
        let invalid = |why| Error::InvalidTarget(url.to_owned(), why);
        check_target(url, allow_remote)?;
        let (scheme, rest) = url.split_once("://").ok_or_else(|| invalid("no scheme"))?;
        if !["whip", "whep", "http"].contains(&scheme.to_ascii_lowercase().as_str()) {
            return Err(invalid(
                "use whip://, whep:// or http:// (TLS is not supported)",
            ));
        }
        let (authority, path) = match rest.find('/') {
            Some(i) => rest.split_at(i),
            None => return Err(invalid("no path (e.g. /whip/<call>)")),
        };
        if authority.contains('@') {
            return Err(invalid("credentials in the URL; use --token"));
        }
        let with_port = if authority.rsplit_once(':').is_some_and(|(h, p)| {
            !h.is_empty() && p.chars().all(|c| c.is_ascii_digit()) && !h.ends_with(':')
        }) {
            authority.to_owned()
        } else {
            format!("{authority}:80")
        };
        let addr = tokio::net::lookup_host(&with_port)
            .await
            .map_err(|_| invalid("cannot resolve the host"))?
            .next()
            .ok_or_else(|| invalid("cannot resolve the host"))?;
        check_addr(addr, allow_remote)?;
        Ok(Endpoint {
            addr,
            host: authority.to_owned(),
            path: path.to_owned(),
        })
    }

    /// The WHEP endpoint next to a WHIP one: the last `/whip/` in the path becomes
    /// `/whep/`.
    pub fn whep_sibling(&self) -> Option<Endpoint> {
        let i = self.path.rfind("/whip/")?;
        let mut path = self.path.clone();
        path.replace_range(i..i + 6, "/whep/");
        Some(Endpoint {
            path,
            ..self.clone()
        })
    }
}

/// A parsed HTTP response.
#[derive(Debug)]
pub struct HttpResponse {
    /// Status code.
    pub status: u16,
    /// `Location`, if any.
    pub location: Option<String>,
    /// `Retry-After` in seconds (zero if absent).
    pub retry_after: Duration,
    /// The body (decoded if chunked).
    pub body: Vec<u8>,
}

/// One HTTP/1.1 request on a fresh connection to `endpoint.addr`.
pub async fn http_request(
    endpoint: &Endpoint,
    method: &str,
    path: &str,
    token: &str,
    body: Option<(&str, &[u8])>,
) -> Result<HttpResponse> {
    tokio::time::timeout(HTTP_TIMEOUT, async {
        let mut stream = TcpStream::connect(endpoint.addr).await?;
        stream.set_nodelay(true)?;
        let (ctype, bytes) = body.unwrap_or(("", &[]));
        let ctype = if ctype.is_empty() {
            String::new()
        } else {
            format!("Content-Type: {ctype}\r\n")
        };
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {token}\r\n\
             Connection: close\r\n{ctype}Content-Length: {}\r\n\r\n",
            endpoint.host,
            bytes.len()
        );
        stream.write_all(head.as_bytes()).await?;
        stream.write_all(bytes).await?;
        let mut raw = Vec::new();
        stream.take(MAX_RESPONSE).read_to_end(&mut raw).await?;
        parse_response(&raw)
    })
    .await
    .map_err(|_| Error::Negotiation(format!("{method} {endpoint:?}: no response in time")))?
}

/// Parses a complete HTTP/1.1 response (the connection was closed after it).
pub fn parse_response(raw: &[u8]) -> Result<HttpResponse> {
    let bad = |why: &str| Error::Negotiation(format!("bad HTTP response: {why}"));
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| bad("no end of headers"))?;
    let (head, rest) = raw.split_at(split);
    let body = rest.get(4..).unwrap_or_default();
    let head = std::str::from_utf8(head).map_err(|_| bad("headers are not UTF-8"))?;
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split_ascii_whitespace().nth(1))
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(|| bad("no status"))?;
    let (mut location, mut chunked, mut length) = (None, false, None);
    let mut retry_after = Duration::ZERO;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        match name.trim().to_ascii_lowercase().as_str() {
            "location" => location = Some(value.to_owned()),
            "transfer-encoding" => chunked = value.to_ascii_lowercase().contains("chunked"),
            "content-length" => length = value.parse::<usize>().ok(),
            "retry-after" => {
                retry_after = Duration::from_secs(value.parse::<u64>().unwrap_or_default());
            }
            _ => {}
        }
    }
    let body = if chunked {
        dechunk(body).ok_or_else(|| bad("broken chunked body"))?
    } else {
        let n = length.unwrap_or(body.len()).min(body.len());
        body.get(..n).unwrap_or_default().to_vec()
    };
    Ok(HttpResponse {
        status,
        location,
        retry_after,
        body,
    })
}

fn dechunk(mut data: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let eol = data.windows(2).position(|w| w == b"\r\n")?;
        let size = std::str::from_utf8(data.get(..eol)?).ok()?;
        let size = usize::from_str_radix(size.split(';').next()?.trim(), 16).ok()?;
        data = data.get(eol + 2..)?;
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(data.get(..size)?);
        data = data.get(size + 2..)?;
    }
}

/// An open WHIP/WHEP session to `DELETE` at the end.
#[derive(Debug)]
struct Session {
    kind: PeerKind,
    path: String,
}

/// Negotiates publishers with WHIP and subscribers with WHEP.
pub struct WhipNegotiator {
    whip: Endpoint,
    whep: Endpoint,
    whip_token: String,
    whep_token: String,
    allow_remote: bool,
    sessions: Mutex<Vec<Session>>,
}

impl fmt::Debug for WhipNegotiator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Tokens are credentials: never printed.
        f.debug_struct("WhipNegotiator")
            .field("whip", &self.whip)
            .field("whep", &self.whep)
            .finish_non_exhaustive()
    }
}

impl WhipNegotiator {
    /// Publishers go to `whip` with `whip_token`, subscribers to `whep` with
    /// `whep_token`. Answers whose media address is not loopback are refused unless
    /// `allow_remote`.
    pub fn new(
        whip: Endpoint,
        whep: Endpoint,
        whip_token: String,
        whep_token: String,
        allow_remote: bool,
    ) -> Self {
        WhipNegotiator {
            whip,
            whep,
            whip_token,
            whep_token,
            allow_remote,
            sessions: Mutex::default(),
        }
    }

    fn endpoint(&self, kind: PeerKind) -> (&Endpoint, &str) {
        match kind {
            PeerKind::Publisher => (&self.whip, &self.whip_token),
            PeerKind::Subscriber => (&self.whep, &self.whep_token),
        }
    }

    /// Sessions still open.
    pub fn open_sessions(&self) -> usize {
        self.sessions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    async fn post(&self, endpoint: &Endpoint, token: &str, offer: &str) -> Result<HttpResponse> {
        let body = Some(("application/sdp", offer.as_bytes()));
        http_request(endpoint, "POST", &endpoint.path, token, body).await
    }

    async fn negotiate_now(&self, request: NegotiateRequest) -> Result<SdpAnswer> {
        let (endpoint, token) = self.endpoint(request.kind);
        let offer = request.offer.to_sdp_string();
        let mut r = self.post(endpoint, token, &offer).await?;
        for _ in 0..RETRIES_503 {
            if r.status != 503 {
                break;
            }
            // "No relay available yet": WHIP clients retry after Retry-After.
            tokio::time::sleep(
                r.retry_after
                    .clamp(Duration::from_millis(200), HTTP_TIMEOUT),
            )
            .await;
            r = self.post(endpoint, token, &offer).await?;
        }
        if r.status != 201 {
            let why = String::from_utf8_lossy(&r.body);
            let why: String = why.trim().chars().take(200).collect();
            return Err(Error::Negotiation(format!(
                "POST {endpoint:?}: HTTP {} {why}",
                r.status
            )));
        }
        let answer =
            String::from_utf8(r.body).map_err(|_| Error::Sdp("the answer is not UTF-8".into()))?;
        if let Some(location) = r.location {
            // Only the path is kept: a DELETE goes to the endpoint bench was given.
            let path = match location.split_once("://") {
                Some((_, rest)) => rest.find('/').map_or("/", |i| &rest[i..]).to_owned(),
                None => location,
            };
            self.sessions
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(Session {
                    kind: request.kind,
                    path,
                });
        }
        // Media goes wherever the answer says: refuse to flood a remote address.
        if let Some(media) = host_candidate(&answer) {
            check_addr(media, self.allow_remote)?;
        }
        Ok(SdpAnswer::from_sdp_string(&answer)?)
    }

    /// `DELETE`s every session this negotiator opened; returns how many were refused
    /// or failed.
    pub async fn end_all(&self) -> usize {
        let sessions =
            std::mem::take(&mut *self.sessions.lock().unwrap_or_else(PoisonError::into_inner));
        let mut failed = 0;
        for s in sessions {
            let (endpoint, token) = self.endpoint(s.kind);
            match http_request(endpoint, "DELETE", &s.path, token, None).await {
                Ok(r) if (200..300).contains(&r.status) => {}
                Ok(r) => {
                    tracing::warn!(status = r.status, "session DELETE refused");
                    failed += 1;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "session DELETE failed");
                    failed += 1;
                }
            }
        }
        failed
    }
}

impl Negotiator for WhipNegotiator {
    fn negotiate(&self, request: NegotiateRequest) -> BoxFuture<'_, Result<SdpAnswer>> {
        Box::pin(self.negotiate_now(request))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responses_parse_with_length_or_chunks() {
        let r = parse_response(
            b"HTTP/1.1 201 Created\r\nlocation: /whip/c/p\r\ncontent-length: 3\r\n\r\nv=0junk",
        )
        .unwrap();
        assert_eq!(
            (r.status, r.location.as_deref(), &r.body[..]),
            (201, Some("/whip/c/p"), &b"v=0"[..])
        );
        let r = parse_response(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nv=\r\n1\r\n0\r\n0\r\n\r\n",
        )
        .unwrap();
        assert_eq!((r.status, &r.body[..]), (200, &b"v=0"[..]));
        assert!(parse_response(b"HTTP/1.1 200 OK\r\n").is_err());
        assert!(
            parse_response(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n").is_err()
        );
    }

    #[tokio::test]
    async fn endpoints_follow_the_loopback_guard_and_find_their_whep_sibling() {
        let e = Endpoint::parse("whip://127.0.0.1:8080/whip/c-1", false)
            .await
            .unwrap();
        assert_eq!(e.addr, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(e.whep_sibling().unwrap().path, "/whep/c-1");
        let e = Endpoint::parse("whip://[::1]/x", false).await.unwrap();
        assert_eq!(e.addr.port(), 80);
        assert!(e.whep_sibling().is_none());
        assert!(matches!(
            Endpoint::parse("whip://203.0.113.9:80/whip/c", false).await,
            Err(Error::RemoteTarget(_))
        ));
        assert!(
            Endpoint::parse("https://127.0.0.1/whip/c", false)
                .await
                .is_err()
        );
        assert!(Endpoint::parse("whip://127.0.0.1:80", false).await.is_err());
    }
}
