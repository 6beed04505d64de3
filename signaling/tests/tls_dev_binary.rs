//! `signaling --dev --dev-tls`, the real binary: it prints an `https://`
//! address and the SHA-256 fingerprint of a freshly made certificate, and a
//! client that pins exactly that fingerprint (and trusts nothing else) gets
//! `/healthz` with HSTS over TLS; plain HTTP on the same port gets nothing.

use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, mpsc};
use std::time::Duration;

use signaling::tls::fingerprint;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::client::danger::{
    HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier,
};
use tokio_rustls::rustls::crypto::{
    CryptoProvider, verify_tls12_signature, verify_tls13_signature,
};
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use tokio_rustls::rustls::{self, ClientConfig, DigitallySignedStruct, SignatureScheme};

/// Accepts exactly one certificate, by SHA-256 fingerprint (what an operator
/// compares with the printed one), and checks the handshake signatures.
#[derive(Debug)]
struct Pinned {
    fingerprint: String,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if fingerprint(end_entity) == self.fingerprint {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General("fingerprint mismatch".into()))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algs = &self.provider.signature_verification_algorithms;
        verify_tls12_signature(message, cert, dss, algs)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algs = &self.provider.signature_verification_algorithms;
        verify_tls13_signature(message, cert, dss, algs)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

fn pinned(fp: &str) -> TlsConnector {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let verifier = Arc::new(Pinned {
        fingerprint: fp.to_owned(),
        provider: provider.clone(),
    });
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    TlsConnector::from(Arc::new(config))
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts the binary; its address and printed fingerprint.
fn start() -> (Server, SocketAddr, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_signaling"))
        .args([
            "--dev",
            "--dev-tls",
            "--listen",
            "127.0.0.1:0",
            "--log",
            "warn",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start signaling");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let server = Server(child);
    let (mut addr, mut fp) = (None, None);
    while addr.is_none() || fp.is_none() {
        let line = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("signaling prints its address and fingerprint");
        if let Some(a) = line.strip_prefix("listening on https://") {
            addr = Some(a.trim().parse().expect("address"));
        }
        if let Some(f) = line.strip_prefix("TLS certificate SHA-256 fingerprint: ") {
            fp = Some(f.trim().to_owned());
        }
    }
    (
        server,
        addr.unwrap_or_else(|| unreachable!()),
        fp.unwrap_or_default(),
    )
}

async fn get_healthz(addr: SocketAddr, fp: &str) -> std::io::Result<String> {
    let tcp = TcpStream::connect(addr).await?;
    let name = ServerName::try_from("localhost").expect("name");
    let mut tls = pinned(fp).connect(name, tcp).await?;
    tls.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await?;
    let mut out = Vec::new();
    let _ = tls.read_to_end(&mut out).await;
    Ok(String::from_utf8_lossy(&out).into_owned())
}

#[tokio::test]
async fn dev_tls_prints_the_fingerprint_clients_can_pin() {
    let (_server, addr, fp) = start();
    assert_eq!(fp.len(), 95, "AB:CD:… of 32 bytes: {fp}");

    let res = tokio::time::timeout(Duration::from_secs(10), get_healthz(addr, &fp))
        .await
        .expect("in time")
        .expect("TLS with the pinned certificate");
    assert!(res.starts_with("HTTP/1.1 200"), "{res}");
    assert!(
        res.to_ascii_lowercase()
            .contains("strict-transport-security: max-age=31536000"),
        "{res}"
    );

    // Another fingerprint is refused: the pin really is what is checked.
    let wrong = fp.replacen(&fp[..2], if fp.starts_with("00") { "11" } else { "00" }, 1);
    let refused = tokio::time::timeout(Duration::from_secs(10), get_healthz(addr, &wrong))
        .await
        .expect("in time");
    assert!(refused.is_err(), "a different fingerprint must not verify");

    // Plain HTTP on the TLS port gets no HTTP answer.
    let mut tcp = TcpStream::connect(addr).await.expect("connect");
    tcp.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("write");
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), tcp.read_to_end(&mut out)).await;
    assert!(!String::from_utf8_lossy(&out).contains("200 OK"), "{out:?}");
}
