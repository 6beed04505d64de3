//! The HTTP client that talks to identity providers: discovery, JWKS and
//! the token endpoint. HTTPS verifies the server certificate against the
//! system's root store (rustls, aws-lc-rs); plain HTTP is refused except to
//! loopback hosts (tests, local development). Every request has a timeout
//! and every response body a size limit, so a slow or hostile provider
//! cannot hold a login or memory for long. Nothing here logs URLs or bodies
//! (the token request carries the code, the verifier and the secret).

use std::time::Duration;

use axum::body::Bytes;
use axum::http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use axum::http::{HeaderValue, Method, Request, StatusCode};
use http_body_util::{BodyExt as _, Full, Limited};
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use url::Url;

use super::OidcError;
use crate::directory::allowed_url;

/// Longest wait for one request, connection included.
const TIMEOUT: Duration = Duration::from_secs(10);
/// Largest response body accepted (discovery documents and JWKS are a few KiB).
const MAX_BODY: usize = 256 * 1024;

/// A pooled HTTPS client for provider requests. Cheap to clone.
#[derive(Clone)]
pub(crate) struct HttpClient {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
}

impl std::fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpClient").finish_non_exhaustive()
    }
}

impl HttpClient {
    /// A client trusting the system roots. Without any usable root (no CA
    /// bundle installed) it trusts none, so HTTPS requests fail visibly.
    pub(crate) fn new() -> Result<Self, String> {
        let provider = tokio_rustls::rustls::crypto::aws_lc_rs::default_provider();
        let builder =
            match HttpsConnectorBuilder::new().with_provider_and_native_roots(provider.clone()) {
                Ok(b) => b,
                Err(e) => {
                    tracing::warn!(error = %e, "no system CA roots: OIDC over HTTPS will fail");
                    let config = tokio_rustls::rustls::ClientConfig::builder_with_provider(
                        std::sync::Arc::new(provider),
                    )
                    .with_safe_default_protocol_versions()
                    .map_err(|e| format!("TLS client configuration: {e}"))?
                    .with_root_certificates(tokio_rustls::rustls::RootCertStore::empty())
                    .with_no_client_auth();
                    HttpsConnectorBuilder::new().with_tls_config(config)
                }
            };
        let connector = builder.https_or_http().enable_http1().build();
        let client = Client::builder(TokioExecutor::new()).build(connector);
        Ok(Self { client })
    }

    /// GETs a JSON document.
    pub(crate) async fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        url: &Url,
        what: &'static str,
    ) -> Result<T, OidcError> {
        let req = Request::builder()
            .method(Method::GET)
            .uri(url.as_str())
            .header(ACCEPT, "application/json")
            .body(Full::new(Bytes::new()))
            .map_err(|_| OidcError::Provider(format!("bad {what} URL")))?;
        let (status, body) = self.send(url, req, what).await?;
        if status != StatusCode::OK {
            return Err(OidcError::Provider(format!("{what} answered {status}")));
        }
        serde_json::from_slice(&body)
            .map_err(|e| OidcError::Provider(format!("{what} is not valid JSON: {e}")))
    }

    /// POSTs a form (the token request); returns status and body.
    pub(crate) async fn post_form(
        &self,
        url: &Url,
        form: &[(&str, &str)],
        basic_auth: Option<(&str, &str)>,
    ) -> Result<(StatusCode, Bytes), OidcError> {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let mut req = Request::builder()
            .method(Method::POST)
            .uri(url.as_str())
            .header(ACCEPT, "application/json")
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded");
        if let Some((user, pass)) = basic_auth {
            use base64::Engine as _;
            // RFC 6749 §2.3.1: each part is form-urlencoded before base64.
            let enc =
                |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
            let creds = base64::engine::general_purpose::STANDARD.encode(format!(
                "{}:{}",
                enc(user),
                enc(pass)
            ));
            let mut value = HeaderValue::from_str(&format!("Basic {creds}"))
                .map_err(|_| OidcError::Provider("bad client credentials".to_owned()))?;
            value.set_sensitive(true);
            req = req.header(AUTHORIZATION, value);
        }
        let req = req
            .body(Full::new(Bytes::from(body)))
            .map_err(|_| OidcError::Provider("bad token endpoint URL".to_owned()))?;
        self.send(url, req, "token endpoint").await
    }

    async fn send(
        &self,
        url: &Url,
        req: Request<Full<Bytes>>,
        what: &'static str,
    ) -> Result<(StatusCode, Bytes), OidcError> {
        if !allowed_url(url) {
            return Err(OidcError::Provider(format!(
                "{what} URL must be https (http only for loopback)"
            )));
        }
        let work = async {
            let res =
                self.client.request(req).await.map_err(|e| {
                    OidcError::Provider(format!("{what} unreachable: {}", chain(&e)))
                })?;
            let status = res.status();
            let body = Limited::new(res.into_body(), MAX_BODY)
                .collect()
                .await
                .map_err(|_| {
                    OidcError::Provider(format!("{what} response unreadable or too large"))
                })?
                .to_bytes();
            Ok((status, body))
        };
        tokio::time::timeout(TIMEOUT, work)
            .await
            .map_err(|_| OidcError::Provider(format!("{what} timed out")))?
    }
}

/// An error and its causes on one line (the TLS failure is usually a cause).
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}
