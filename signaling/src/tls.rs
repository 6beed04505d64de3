//! TLS for the signaling listener (HTTPS and WSS on one port), with rustls.
//!
//! - [`TlsArgs`]: the `--tls-cert`/`--tls-key` (PEM) and `--dev-tls` flags,
//!   flattened into [`crate::config::Config`].
//! - [`Tls`]: a loaded server configuration (TLS 1.3 and 1.2 only, AWS-LC
//!   provider, ALPN `http/1.1`), its leaf certificate's SHA-256 fingerprint
//!   and the HSTS header it implies. [`Tls::self_signed`] makes one with
//!   rcgen for `--dev-tls` and tests.
//! - [`TlsListener`]: accepts TCP connections and hands on those whose TLS
//!   handshake completed ([`crate::listen::serve`] serves them). Handshakes
//!   run in their own tasks, each bounded by a timeout
//!   (`--tls-handshake-timeout-ms`, default [`HANDSHAKE_TIMEOUT`]) and at
//!   most [`MAX_HANDSHAKES`] at a time, so a client that opens a connection
//!   and sends nothing (or half a ClientHello) delays nobody else.
//! - [`with_hsts`]: adds `Strict-Transport-Security` to every response when
//!   TLS is on.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::HeaderValue;
use axum::http::header::STRICT_TRANSPORT_SECURITY;
use axum::response::Response;
use sha2::{Digest as _, Sha256};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::pki_types::pem::PemObject as _;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio_rustls::rustls::{self, ServerConfig};
use tokio_rustls::server::TlsStream;

use crate::Error;

/// Default of the longest a client may take to complete its TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Handshakes in progress at once; connections beyond are closed at once.
pub const MAX_HANDSHAKES: usize = 1024;

/// Default HSTS lifetime: one year.
pub const DEFAULT_HSTS_MAX_AGE_SECS: u64 = 31_536_000;

/// TLS flags of the signaling service.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct TlsArgs {
    /// Certificate chain (PEM, leaf first) to serve HTTPS/WSS with. Needs --tls-key.
    #[arg(long, env = "ANTEROOM_TLS_CERT", value_name = "PEM")]
    pub tls_cert: Option<PathBuf>,

    /// Private key (PEM: PKCS#8, PKCS#1 or SEC1) of --tls-cert.
    #[arg(long, env = "ANTEROOM_TLS_KEY", value_name = "PEM")]
    pub tls_key: Option<PathBuf>,

    /// With --dev: serve HTTPS/WSS with a self-signed certificate made at
    /// start (for localhost and 127.0.0.1); its SHA-256 fingerprint is printed.
    #[arg(long, env = "ANTEROOM_DEV_TLS")]
    pub dev_tls: bool,

    /// `max-age` of the Strict-Transport-Security header sent when TLS is on.
    #[arg(long, env = "ANTEROOM_HSTS_MAX_AGE_SECS", default_value_t = DEFAULT_HSTS_MAX_AGE_SECS)]
    pub hsts_max_age_secs: u64,
}

impl TlsArgs {
    /// Checks the flags make sense together (`dev`: whether `--dev` is on).
    pub fn validate(&self, dev: bool) -> Result<(), Error> {
        let bad = |m: &str| Err(Error::Config(m.to_owned()));
        match (&self.tls_cert, &self.tls_key) {
            (Some(_), None) | (None, Some(_)) => {
                return bad("--tls-cert and --tls-key go together");
            }
            (Some(_), Some(_)) if self.dev_tls => {
                return bad("--dev-tls and --tls-cert exclude each other");
            }
            _ => {}
        }
        if self.dev_tls && !dev {
            return bad("--dev-tls needs --dev (use --tls-cert/--tls-key in production)");
        }
        if self.hsts_max_age_secs > 2 * DEFAULT_HSTS_MAX_AGE_SECS {
            return bad("--hsts-max-age-secs must be at most two years");
        }
        Ok(())
    }

    /// Whether these flags turn TLS on.
    pub fn enabled(&self) -> bool {
        self.dev_tls || self.tls_cert.is_some()
    }

    /// Loads (or, with `--dev-tls`, makes) the TLS configuration; `None`
    /// when TLS is off.
    pub fn load(&self) -> Result<Option<Tls>, Error> {
        let tls = match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => Tls::from_pem_files(cert, key)?,
            _ if self.dev_tls => Tls::self_signed(&["localhost", "127.0.0.1", "::1"])?,
            _ => return Ok(None),
        };
        Ok(Some(tls.with_hsts_max_age(self.hsts_max_age_secs)))
    }
}

/// A loaded TLS server configuration. Cheap to clone.
#[derive(Clone)]
pub struct Tls {
    acceptor: TlsAcceptor,
    leaf: CertificateDer<'static>,
    fingerprint: String,
    hsts: HeaderValue,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls")
            .field("fingerprint", &self.fingerprint)
            .finish_non_exhaustive()
    }
}

impl Tls {
    /// From a certificate chain and its private key (PEM files).
    pub fn from_pem_files(cert: &std::path::Path, key: &std::path::Path) -> Result<Self, Error> {
        let chain = CertificateDer::pem_file_iter(cert)
            .and_then(Iterator::collect::<Result<Vec<_>, _>>)
            .map_err(|e| Error::Config(format!("--tls-cert {}: {e}", cert.display())))?;
        if chain.is_empty() {
            return Err(Error::Config(format!(
                "--tls-cert {}: no certificate in the file",
                cert.display()
            )));
        }
        // The key's contents never reach an error message.
        let key = PrivateKeyDer::from_pem_file(key)
            .map_err(|e| Error::Config(format!("--tls-key {}: {e}", key.display())))?;
        Self::new(chain, key)
    }

    /// A fresh self-signed certificate for `names` (DNS names or IP
    /// addresses), made with rcgen (ECDSA P-256).
    pub fn self_signed(names: &[&str]) -> Result<Self, Error> {
        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let made = rcgen::generate_simple_self_signed(names)
            .map_err(|e| Error::Config(format!("self-signed certificate: {e}")))?;
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(made.signing_key.serialize_der()));
        Self::new(vec![made.cert.der().clone()], key)
    }

    /// Builds the server configuration: TLS 1.3 and 1.2 only.
    pub fn new(
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
    ) -> Result<Self, Error> {
        let leaf = chain
            .first()
            .cloned()
            .ok_or_else(|| Error::Config("TLS: empty certificate chain".to_owned()))?;
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .map_err(|e| Error::Config(format!("TLS: {e}")))?
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .map_err(|e| Error::Config(format!("TLS certificate/key: {e}")))?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Self {
            acceptor: TlsAcceptor::from(Arc::new(config)),
            fingerprint: fingerprint(&leaf),
            leaf,
            hsts: hsts_value(DEFAULT_HSTS_MAX_AGE_SECS),
        })
    }

    /// The same configuration with another HSTS `max-age`.
    #[must_use]
    pub fn with_hsts_max_age(mut self, secs: u64) -> Self {
        self.hsts = hsts_value(secs);
        self
    }

    /// SHA-256 of the leaf certificate, as `AB:CD:…` (what browsers and
    /// `openssl x509 -fingerprint -sha256` show).
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// The leaf certificate (tests trust it directly).
    pub fn certificate(&self) -> &CertificateDer<'static> {
        &self.leaf
    }

    /// The `Strict-Transport-Security` value sent with every response.
    pub fn hsts(&self) -> &HeaderValue {
        &self.hsts
    }

    /// The handshake half of this configuration.
    pub fn acceptor(&self) -> TlsAcceptor {
        self.acceptor.clone()
    }
}

fn hsts_value(max_age: u64) -> HeaderValue {
    HeaderValue::from_str(&format!("max-age={max_age}"))
        .unwrap_or_else(|_| HeaderValue::from_static("max-age=31536000"))
}

/// `AB:CD:…` SHA-256 fingerprint of a DER certificate.
pub fn fingerprint(der: &[u8]) -> String {
    Sha256::digest(der)
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Adds `Strict-Transport-Security` to every response when `tls` is on.
pub fn with_hsts(app: Router, tls: Option<&Tls>) -> Router {
    let Some(tls) = tls else { return app };
    let value = tls.hsts.clone();
    app.layer(axum::middleware::map_response(move |mut res: Response| {
        let value = value.clone();
        async move {
            res.headers_mut().insert(STRICT_TRANSPORT_SECURITY, value);
            res
        }
    }))
}

/// A listener that yields connections whose TLS handshake completed.
/// Dropping it stops accepting (and abandons handshakes in progress).
#[derive(Debug)]
pub struct TlsListener {
    ready: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
    task: JoinHandle<()>,
}

impl TlsListener {
    /// Starts accepting on `listener`, handshaking with `acceptor`; a
    /// handshake not done within `timeout` is abandoned.
    pub fn new(
        listener: TcpListener,
        acceptor: TlsAcceptor,
        timeout: Duration,
    ) -> std::io::Result<Self> {
        let local = listener.local_addr()?;
        let (tx, ready) = mpsc::channel(64);
        let task = tokio::spawn(accept_loop(listener, acceptor, timeout, tx));
        Ok(Self { ready, local, task })
    }

    /// The next connection whose handshake completed, with its address.
    pub async fn next(&mut self) -> (TlsStream<TcpStream>, SocketAddr) {
        match self.ready.recv().await {
            Some(conn) => conn,
            // The accept loop only ends when this listener is dropped.
            None => std::future::pending().await,
        }
    }

    /// The address this listener is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }
}

impl Drop for TlsListener {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn accept_loop(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    timeout: Duration,
    ready: mpsc::Sender<(TlsStream<TcpStream>, SocketAddr)>,
) {
    let handshakes = Arc::new(Semaphore::new(MAX_HANDSHAKES));
    loop {
        let (tcp, addr) = match listener.accept().await {
            Ok(conn) => conn,
            Err(e) => {
                // Out of file descriptors and the like: back off a little
                // instead of spinning on the error.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(permit) = handshakes.clone().try_acquire_owned() else {
            tracing::debug!("too many TLS handshakes in progress: connection closed");
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let (acceptor, ready) = (acceptor.clone(), ready.clone());
        tokio::spawn(async move {
            let _permit = permit;
            match tokio::time::timeout(timeout, acceptor.accept(tcp)).await {
                Ok(Ok(stream)) => {
                    let _ = ready.send((stream, addr)).await;
                }
                Ok(Err(e)) => tracing::debug!(error = %e, "TLS handshake failed"),
                Err(_) => tracing::debug!("TLS handshake timed out"),
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_must_agree() {
        let ok = TlsArgs::default();
        assert!(ok.validate(false).is_ok() && !ok.enabled());
        let half = TlsArgs {
            tls_cert: Some("c.pem".into()),
            ..TlsArgs::default()
        };
        assert!(half.validate(false).is_err());
        let dev = TlsArgs {
            dev_tls: true,
            ..TlsArgs::default()
        };
        assert!(dev.validate(false).is_err(), "--dev-tls outside --dev");
        assert!(dev.validate(true).is_ok() && dev.enabled());
        let both = TlsArgs {
            tls_cert: Some("c.pem".into()),
            tls_key: Some("k.pem".into()),
            dev_tls: true,
            ..TlsArgs::default()
        };
        assert!(both.validate(true).is_err());
    }

    #[test]
    fn self_signed_fingerprint_is_sha256_of_the_leaf() {
        let tls = Tls::self_signed(&["localhost"]).unwrap();
        let fp = tls.fingerprint();
        assert_eq!(fp.len(), 32 * 3 - 1);
        assert_eq!(fp, fingerprint(tls.certificate()));
        let other = Tls::self_signed(&["localhost"]).unwrap();
        assert_ne!(
            fp,
            other.fingerprint(),
            "a fresh key and certificate each time"
        );
        assert_eq!(tls.hsts(), "max-age=31536000");
    }

    #[test]
    fn missing_files_are_config_errors_naming_the_flag() {
        let e = Tls::from_pem_files("/nonexistent/c.pem".as_ref(), "/nonexistent/k.pem".as_ref())
            .unwrap_err();
        assert!(e.to_string().contains("--tls-cert"), "{e}");
    }
}
