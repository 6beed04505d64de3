//! How signaling's one TCP listener serves HTTP/1.1, plain or over TLS, and
//! the time limits that keep slow or silent clients from holding it.
//!
//! - [`ListenArgs`]: the `--header-read-timeout-ms`,
//!   `--tls-handshake-timeout-ms`, `--hello-timeout-ms` and
//!   `--request-timeout-ms` flags, flattened into [`crate::config::Config`].
//! - [`ListenLimits`]: the limits [`serve`] applies.
//! - [`serve`]: our own accept loop over hyper's HTTP/1 connection builder.
//!   `axum::serve` takes no configuration, and without a timer hyper never
//!   times out a request head, so a slowloris client (a request line or
//!   headers sent a byte at a time, or nothing at all) held a task and a file
//!   descriptor for ever. Here every connection has a hyper timer and a
//!   header-read timeout: a request head not complete within it gets
//!   `408 Request Timeout` and the connection is closed. The same limit
//!   closes idle keep-alive connections. WebSocket upgrades leave hyper, so
//!   an upgraded socket is bounded by the `hello` timeout instead (`ws`).
//!   A whole request (body included) must be answered within the request
//!   timeout, or gets `408`: a body trickled in a byte at a time cannot hold
//!   a handler for ever either.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::pin;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper::service::{Service as _, service_fn};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::Error;
use crate::tls::{Tls, TlsListener};

/// Default of the header-read, TLS-handshake and hello limits: ten seconds.
pub const DEFAULT_TIMEOUT_MS: u64 = 10_000;

/// Default of the whole-request limit: thirty seconds.
pub const DEFAULT_REQUEST_TIMEOUT_MS: u64 = 30_000;

/// Connection time limits of the signaling listener.
#[derive(Debug, Clone, clap::Args)]
pub struct ListenArgs {
    /// Longest a client may take to send a whole request head (request line
    /// and headers), in milliseconds; also how long an idle keep-alive
    /// connection stays open. Slowloris clients are answered 408 and closed.
    #[arg(long, env = "ANTEROOM_HEADER_READ_TIMEOUT_MS", default_value_t = DEFAULT_TIMEOUT_MS)]
    pub header_read_timeout_ms: u64,

    /// Longest a TLS handshake may take, in milliseconds (with --tls-cert or
    /// --dev-tls); silent or slow clients are dropped after it.
    #[arg(long, env = "ANTEROOM_TLS_HANDSHAKE_TIMEOUT_MS", default_value_t = DEFAULT_TIMEOUT_MS)]
    pub tls_handshake_timeout_ms: u64,

    /// How long a new WebSocket (`/ws`) may take to send `hello`, in
    /// milliseconds; it is closed with an error after that.
    #[arg(long, env = "ANTEROOM_HELLO_TIMEOUT_MS", default_value_t = DEFAULT_TIMEOUT_MS)]
    pub hello_timeout_ms: u64,

    /// Longest an HTTP request may take from its head to its response, body
    /// upload included, in milliseconds (slow-body attacks get 408).
    /// WebSockets are not bound by it once upgraded.
    #[arg(long, env = "ANTEROOM_REQUEST_TIMEOUT_MS", default_value_t = DEFAULT_REQUEST_TIMEOUT_MS)]
    pub request_timeout_ms: u64,
}

impl Default for ListenArgs {
    fn default() -> Self {
        Self {
            header_read_timeout_ms: DEFAULT_TIMEOUT_MS,
            tls_handshake_timeout_ms: DEFAULT_TIMEOUT_MS,
            hello_timeout_ms: DEFAULT_TIMEOUT_MS,
            request_timeout_ms: DEFAULT_REQUEST_TIMEOUT_MS,
        }
    }
}

impl ListenArgs {
    /// Checks every limit is within 100 ms ..= 10 min.
    pub fn validate(&self) -> Result<(), Error> {
        for (flag, ms) in [
            ("--header-read-timeout-ms", self.header_read_timeout_ms),
            ("--tls-handshake-timeout-ms", self.tls_handshake_timeout_ms),
            ("--hello-timeout-ms", self.hello_timeout_ms),
            ("--request-timeout-ms", self.request_timeout_ms),
        ] {
            if !(100..=600_000).contains(&ms) {
                return Err(Error::Config(format!("{flag} must be 100..=600000")));
            }
        }
        Ok(())
    }

    /// The limits [`serve`] applies.
    pub fn limits(&self) -> ListenLimits {
        ListenLimits {
            header_read_timeout: Duration::from_millis(self.header_read_timeout_ms),
            tls_handshake_timeout: Duration::from_millis(self.tls_handshake_timeout_ms),
            request_timeout: Duration::from_millis(self.request_timeout_ms),
        }
    }

    /// How long a new WebSocket may take to send `hello`.
    pub fn hello_timeout(&self) -> Duration {
        Duration::from_millis(self.hello_timeout_ms)
    }
}

/// Time limits of the listener's connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListenLimits {
    /// A request head must be complete within this (and an idle keep-alive
    /// connection closes after it).
    pub header_read_timeout: Duration,
    /// A TLS handshake must complete within this.
    pub tls_handshake_timeout: Duration,
    /// A request must be answered (its body read) within this.
    pub request_timeout: Duration,
}

impl Default for ListenLimits {
    fn default() -> Self {
        ListenArgs::default().limits()
    }
}

/// Serves `app` on `listener` (over TLS if `tls` is set) with client
/// addresses as `ConnectInfo<SocketAddr>` and the `limits`, until
/// `graceful` completes; then stops accepting, lets requests in progress
/// finish and returns once every HTTP connection has ended (upgraded
/// WebSockets live on in their own tasks).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    tls: Option<Tls>,
    limits: ListenLimits,
    graceful: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = crate::logging::with_request_span(with_request_timeout(
        crate::tls::with_hsts(app, tls.as_ref()),
        limits.request_timeout,
    ));
    // `stop_rx` is dropped when shutdown starts: connections see
    // `stop.closed()`. Every connection task holds a `done_rx` clone.
    let (stop, stop_rx) = watch::channel(());
    let (done, done_rx) = watch::channel(());
    tokio::spawn(async move {
        graceful.await;
        drop(stop_rx);
    });
    let conns = Conns {
        app,
        limits,
        stop: &stop,
        done: &done_rx,
    };
    match tls {
        None => loop {
            let accepted = tokio::select! {
                accepted = listener.accept() => accepted,
                () = stop.closed() => break,
            };
            match accepted {
                Ok((tcp, addr)) => {
                    // Small JSON frames must not wait for delayed ACKs (Nagle
                    // added ~44 ms to every join, measured with `bench lobby`).
                    let _ = tcp.set_nodelay(true);
                    conns.spawn(tcp, addr);
                }
                Err(e) => {
                    // Out of file descriptors and the like: back off a
                    // little instead of spinning on the error.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        },
        Some(tls) => {
            let mut tls_listener =
                TlsListener::new(listener, tls.acceptor(), limits.tls_handshake_timeout)?;
            loop {
                tokio::select! {
                    (stream, addr) = tls_listener.next() => conns.spawn(stream, addr),
                    () = stop.closed() => break,
                }
            }
        }
    }
    drop(done_rx);
    done.closed().await;
    Ok(())
}

/// Answers `408 Request Timeout` to a request not answered within `limit`
/// (a body trickled in a byte at a time holds its handler until then).
fn with_request_timeout(app: Router, limit: Duration) -> Router {
    app.layer(axum::middleware::from_fn(
        move |req: axum::extract::Request, next: axum::middleware::Next| async move {
            if let Ok(response) = tokio::time::timeout(limit, next.run(req)).await {
                response
            } else {
                tracing::debug!("request not complete in time: 408");
                let status = axum::http::StatusCode::REQUEST_TIMEOUT;
                axum::response::IntoResponse::into_response((status, "request timeout\n"))
            }
        },
    ))
}

/// What a new connection task needs.
struct Conns<'a> {
    app: Router,
    limits: ListenLimits,
    stop: &'a watch::Sender<()>,
    done: &'a watch::Receiver<()>,
}

impl Conns<'_> {
    /// Serves one connection in its own task.
    fn spawn<I>(&self, io: I, addr: SocketAddr)
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let router = TowerToHyperService::new(self.app.clone());
        let service = service_fn(move |mut req: hyper::Request<Incoming>| {
            req.extensions_mut().insert(ConnectInfo(addr));
            router.call(req)
        });
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(self.limits.header_read_timeout);
        let stop = self.stop.clone();
        let done = self.done.clone();
        tokio::spawn(async move {
            let mut conn = pin!(
                builder
                    .serve_connection(TokioIo::new(io), service)
                    .with_upgrades()
            );
            let mut stopping = pin!(stop.closed());
            let mut draining = false;
            loop {
                tokio::select! {
                    result = conn.as_mut() => {
                        if let Err(e) = result {
                            tracing::debug!(error = %e, "connection ended with an error");
                        }
                        break;
                    }
                    () = &mut stopping, if !draining => {
                        draining = true;
                        conn.as_mut().graceful_shutdown();
                    }
                }
            }
            drop(done);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_default_to_ten_seconds_and_are_bounded() {
        let limits = ListenLimits::default();
        assert_eq!(limits.header_read_timeout, Duration::from_secs(10));
        assert_eq!(limits.tls_handshake_timeout, Duration::from_secs(10));
        assert!(ListenArgs::default().validate().is_ok());
        let zero = ListenArgs {
            header_read_timeout_ms: 0,
            ..ListenArgs::default()
        };
        assert!(zero.validate().is_err());
        let huge = ListenArgs {
            hello_timeout_ms: 3_600_000,
            ..ListenArgs::default()
        };
        assert!(huge.validate().is_err());
    }
}
