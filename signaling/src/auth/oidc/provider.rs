//! What an identity provider publishes: its discovery document
//! (`<issuer>/.well-known/openid-configuration`) and its signing keys (JWKS),
//! fetched on first use and cached per organisation. Discovery is kept for
//! [`DISCOVERY_TTL`]; the key set is refetched when a token names a key id it
//! does not hold (key rotation), at most once per [`JWKS_MIN_REFRESH`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::JwkSet;
use protocol::TenantId;
use serde::Deserialize;
use url::Url;

use super::OidcError;
use super::http::HttpClient;
use crate::directory::{OidcSettings, allowed_url};

/// How long a discovery document is reused.
const DISCOVERY_TTL: Duration = Duration::from_secs(3600);
/// Shortest interval between two JWKS fetches for an unknown key id.
const JWKS_MIN_REFRESH: Duration = Duration::from_secs(60);
/// After a failed discovery, sign-ins fail at once for this long instead of
/// each asking the provider again (a flood of `/start` cannot hammer it).
const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(10);

/// The parts of a discovery document the login uses.
#[derive(Clone, Debug, Deserialize)]
pub(crate) struct Discovery {
    /// Must equal the configured issuer (or be Entra's `{tenantid}` template).
    pub(crate) issuer: String,
    /// Where the browser is sent to sign in.
    pub(crate) authorization_endpoint: Url,
    /// Where the code is exchanged.
    pub(crate) token_endpoint: Url,
    /// The signing keys.
    pub(crate) jwks_uri: Url,
    /// How the client authenticates at the token endpoint.
    #[serde(default)]
    pub(crate) token_endpoint_auth_methods_supported: Vec<String>,
    /// Challenge methods; if listed, must include `S256`.
    #[serde(default)]
    pub(crate) code_challenge_methods_supported: Option<Vec<String>>,
}

impl Discovery {
    /// The `iss` values an ID token may carry: the discovered issuer, or for
    /// Entra's multi-tenant template `…/{tenantid}/v2.0` one per allowed tenant.
    pub(crate) fn expected_issuers(&self, settings: &OidcSettings) -> Vec<String> {
        if self.issuer.contains("{tenantid}") {
            settings
                .tenant_ids
                .iter()
                .map(|t| self.issuer.replace("{tenantid}", t))
                .collect()
        } else {
            vec![self.issuer.clone()]
        }
    }

    fn check(&self, settings: &OidcSettings) -> Result<(), OidcError> {
        let configured = settings.issuer.as_str().trim_end_matches('/');
        let same = self.issuer.trim_end_matches('/') == configured;
        let template = self.issuer.contains("{tenantid}") && !settings.tenant_ids.is_empty();
        if !same && !template {
            return Err(OidcError::Provider(
                "the discovery document names another issuer".to_owned(),
            ));
        }
        for (what, url) in [
            ("authorization_endpoint", &self.authorization_endpoint),
            ("token_endpoint", &self.token_endpoint),
            ("jwks_uri", &self.jwks_uri),
        ] {
            if !allowed_url(url) {
                return Err(OidcError::Provider(format!(
                    "{what} must be https (http only for loopback)"
                )));
            }
        }
        if let Some(methods) = &self.code_challenge_methods_supported
            && !methods.iter().any(|m| m == "S256")
        {
            return Err(OidcError::Provider(
                "the provider does not support PKCE S256".to_owned(),
            ));
        }
        Ok(())
    }
}

#[derive(Debug)]
struct Entry {
    discovery: Arc<Discovery>,
    fetched: Instant,
    jwks: Option<(Arc<JwkSet>, Instant)>,
}

/// Per-organisation cache of discovery documents and key sets.
#[derive(Debug, Default)]
pub(crate) struct ProviderCache {
    inner: Mutex<HashMap<TenantId, Entry>>,
    failed: Mutex<HashMap<TenantId, (Instant, OidcError)>>,
}

impl ProviderCache {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<TenantId, Entry>> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The discovery document of `tenant`'s provider (cached or fetched).
    pub(crate) async fn discovery(
        &self,
        http: &HttpClient,
        tenant: &TenantId,
        settings: &OidcSettings,
        now: Instant,
    ) -> Result<Arc<Discovery>, OidcError> {
        if let Some(e) = self.lock().get(tenant)
            && now.saturating_duration_since(e.fetched) < DISCOVERY_TTL
        {
            return Ok(e.discovery.clone());
        }
        if let Some((at, e)) = self
            .failed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(tenant)
            && now.saturating_duration_since(*at) < RETRY_AFTER_FAILURE
        {
            return Err(e.clone());
        }
        let url = discovery_url(&settings.issuer)?;
        let fetched = match http.get_json::<Discovery>(&url, "discovery").await {
            Ok(doc) => doc.check(settings).map(|()| doc),
            Err(e) => Err(e),
        };
        let mut failed = self.failed.lock().unwrap_or_else(PoisonError::into_inner);
        let doc = match fetched {
            Ok(doc) => {
                failed.remove(tenant);
                Arc::new(doc)
            }
            Err(e) => {
                failed.insert(tenant.clone(), (now, e.clone()));
                return Err(e);
            }
        };
        drop(failed);
        self.lock().insert(
            tenant.clone(),
            Entry {
                discovery: doc.clone(),
                fetched: now,
                jwks: None,
            },
        );
        Ok(doc)
    }

    /// The key set of `tenant`'s provider. With `kid` not in the cached
    /// set, refetches it (at most once per [`JWKS_MIN_REFRESH`]).
    pub(crate) async fn jwks(
        &self,
        http: &HttpClient,
        tenant: &TenantId,
        discovery: &Discovery,
        kid: Option<&str>,
        now: Instant,
    ) -> Result<Arc<JwkSet>, OidcError> {
        let cached = self.lock().get(tenant).and_then(|e| e.jwks.clone());
        if let Some((set, fetched)) = &cached {
            let has_key = kid.is_none_or(|k| set.find(k).is_some());
            if has_key || now.saturating_duration_since(*fetched) < JWKS_MIN_REFRESH {
                return Ok(set.clone());
            }
        }
        let set: JwkSet = http.get_json(&discovery.jwks_uri, "JWKS").await?;
        let set = Arc::new(set);
        if let Some(e) = self.lock().get_mut(tenant) {
            e.jwks = Some((set.clone(), now));
        }
        Ok(set)
    }
}

/// `<issuer>/.well-known/openid-configuration` (OIDC Discovery §4).
fn discovery_url(issuer: &Url) -> Result<Url, OidcError> {
    let base = issuer.as_str().trim_end_matches('/');
    Url::parse(&format!("{base}/.well-known/openid-configuration"))
        .map_err(|_| OidcError::Provider("bad issuer URL".to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(issuer: &str, tenants: &[&str]) -> OidcSettings {
        OidcSettings {
            issuer: Url::parse(issuer).unwrap(),
            client_id: "app".into(),
            client_secret: None,
            redirect_base: Url::parse("https://anteroom.example.org").unwrap(),
            tenant_ids: tenants.iter().map(|t| (*t).to_owned()).collect(),
            user_claim: crate::directory::UserClaim::Oid,
            provision: false,
        }
    }

    fn discovery(issuer: &str) -> Discovery {
        let base = "https://login.microsoftonline.com/x/oauth2/v2.0";
        serde_json::from_value(serde_json::json!({
            "issuer": issuer,
            "authorization_endpoint": format!("{base}/authorize"),
            "token_endpoint": format!("{base}/token"),
            "jwks_uri": "https://login.microsoftonline.com/x/discovery/v2.0/keys",
        }))
        .unwrap()
    }

    #[test]
    fn single_tenant_issuer_must_match() {
        let s = settings("https://login.microsoftonline.com/t1/v2.0", &["t1"]);
        let d = discovery("https://login.microsoftonline.com/t1/v2.0");
        assert!(d.check(&s).is_ok());
        assert_eq!(
            d.expected_issuers(&s),
            vec!["https://login.microsoftonline.com/t1/v2.0"]
        );
        let other = discovery("https://login.microsoftonline.com/t2/v2.0");
        assert!(other.check(&s).is_err());
    }

    #[test]
    fn entra_template_issuer_needs_tenant_ids() {
        let template = discovery("https://login.microsoftonline.com/{tenantid}/v2.0");
        let s = settings(
            "https://login.microsoftonline.com/organizations/v2.0",
            &["t1", "t2"],
        );
        assert!(template.check(&s).is_ok());
        assert_eq!(
            template.expected_issuers(&s),
            vec![
                "https://login.microsoftonline.com/t1/v2.0",
                "https://login.microsoftonline.com/t2/v2.0"
            ]
        );
        let open = settings("https://login.microsoftonline.com/organizations/v2.0", &[]);
        assert!(
            template.check(&open).is_err(),
            "any tenant would be accepted"
        );
    }

    #[tokio::test]
    async fn a_failed_discovery_is_not_retried_for_ten_seconds() {
        // A port with nothing listening, then a provider on it.
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = probe.local_addr().unwrap();
        drop(probe);
        let issuer = format!("http://{addr}");
        let s = settings(&issuer, &[]);
        let tenant = TenantId::new("t").unwrap();
        let http = HttpClient::new().unwrap();
        let cache = ProviderCache::default();
        let t0 = Instant::now();
        let first = cache.discovery(&http, &tenant, &s, t0).await.unwrap_err();
        assert!(matches!(first, OidcError::Provider(_)), "{first:?}");

        let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
        let doc = serde_json::json!({
            "issuer": issuer,
            "authorization_endpoint": format!("{issuer}/authorize"),
            "token_endpoint": format!("{issuer}/token"),
            "jwks_uri": format!("{issuer}/jwks"),
        });
        let app = axum::Router::new().route(
            "/.well-known/openid-configuration",
            axum::routing::get(move || async move { axum::Json(doc) }),
        );
        tokio::spawn(async move { axum::serve(listener, app).await });
        // Within 10 s: the same error, without asking.
        let again = cache
            .discovery(&http, &tenant, &s, t0 + Duration::from_secs(9))
            .await
            .unwrap_err();
        assert_eq!(again, first);
        // Later: asked again, and the provider now answers.
        let d = cache
            .discovery(&http, &tenant, &s, t0 + RETRY_AFTER_FAILURE)
            .await
            .unwrap();
        assert_eq!(d.issuer, issuer);
    }

    #[test]
    fn endpoints_must_be_https() {
        let s = settings("https://idp.example.com", &[]);
        let mut d = discovery("https://idp.example.com");
        d.token_endpoint = Url::parse("http://idp.example.com/token").unwrap();
        assert!(d.check(&s).is_err());
    }

    #[test]
    fn discovery_url_appends_well_known() {
        let u = Url::parse("https://login.example.com/tenant/v2.0/").unwrap();
        assert_eq!(
            discovery_url(&u).unwrap().as_str(),
            "https://login.example.com/tenant/v2.0/.well-known/openid-configuration"
        );
    }
}
