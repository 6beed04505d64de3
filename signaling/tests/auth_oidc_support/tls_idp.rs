//! A provider behind HTTPS with a self-signed certificate (no public CA
//! vouches for it): it answers every request with a well-formed discovery
//! document, so only certificate verification stops a client from using it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::json;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;
use tokio::sync::watch;

/// A running HTTPS provider with an untrusted certificate.
#[derive(Clone, Debug)]
pub struct TlsIdp {
    /// Its address.
    pub addr: SocketAddr,
    /// TLS handshakes that failed (the client refused the certificate).
    pub failed_handshakes: Arc<watch::Sender<usize>>,
    /// HTTP requests answered (after a completed handshake).
    pub requests: Arc<AtomicUsize>,
}

impl TlsIdp {
    /// Waits (at most 10 s) until `n` handshakes have failed.
    pub async fn handshakes_failed(&self, n: usize) {
        let mut rx = self.failed_handshakes.subscribe();
        tokio::time::timeout(std::time::Duration::from_secs(10), rx.wait_for(|f| *f >= n))
            .await
            .expect("the failed handshake in time")
            .expect("provider running");
    }

    /// Starts it on 127.0.0.1.
    pub async fn start() -> TlsIdp {
        let tls = signaling::tls::Tls::self_signed(&["127.0.0.1", "localhost"]).unwrap();
        let acceptor = tls.acceptor();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let me = TlsIdp {
            addr,
            failed_handshakes: Arc::new(watch::Sender::new(0)),
            requests: Arc::default(),
        };
        let state = me.clone();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                let state = state.clone();
                tokio::spawn(async move {
                    let Ok(mut s) = acceptor.accept(tcp).await else {
                        state.failed_handshakes.send_modify(|n| *n += 1);
                        return;
                    };
                    let mut buf = vec![0u8; 4096];
                    let _ = s.read(&mut buf).await;
                    state.requests.fetch_add(1, Ordering::SeqCst);
                    let base = format!("https://{}", state.addr);
                    let body = json!({
                        "issuer": base,
                        "authorization_endpoint": format!("{base}/authorize"),
                        "token_endpoint": format!("{base}/token"),
                        "jwks_uri": format!("{base}/jwks"),
                    })
                    .to_string();
                    let reply = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = s.write_all(reply.as_bytes()).await;
                    let _ = s.shutdown().await;
                });
            }
        });
        me
    }
}
