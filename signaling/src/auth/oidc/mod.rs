//! OpenID Connect sign-in for clinicians (authorization code flow with PKCE),
//! an option per organisation (`[tenant.oidc]` in the directory file).
//!
//! [`Oidc::start`] makes a sign-in: random `state`, `nonce` and PKCE verifier
//! kept server-side ([`pending`]), bound to a random cookie value, and the
//! provider's authorization URL (from its discovery document, [`provider`]).
//! [`Oidc::finish`] takes the callback: the state (single use, bound to the
//! cookie, 10 min), the code exchanged with the verifier ([`http`]), the ID
//! token verified ([`verify`]), the user mapped to an account of that
//! organisation (by external subject or username; provisioned only if the
//! organisation allows it), and then the same session a password login
//! opens, in the same table, so idle/absolute expiry, logout and "disabling
//! an account ends its sessions" all apply. Routes are in [`routes`].
//!
//! Nothing here logs or audits tokens, codes, verifiers, secrets, names or
//! e-mail addresses: audit lines carry the account id and a reason code.

mod error;
mod http;
mod pending;
mod provider;
pub mod routes;
mod verify;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use protocol::TenantId;
use serde::Deserialize;
use sha2::{Digest as _, Sha256};

use super::{Auth, SessionInfo};
use crate::audit::{AuditAction, AuditEvent};
pub use error::OidcError;
pub use routes::router;

/// A started sign-in: send the browser to `redirect`, with `binding` in the
/// sign-in cookie.
#[derive(Debug)]
pub struct Started {
    /// The provider's authorization URL for this sign-in.
    pub redirect: String,
    /// The random value the sign-in cookie must carry back.
    pub binding: String,
}

/// The callback's query string.
#[derive(Debug, Default, Deserialize)]
pub struct Callback {
    /// The authorization code.
    #[serde(default)]
    pub code: Option<String>,
    /// Our state.
    #[serde(default)]
    pub state: Option<String>,
    /// An error from the provider instead of a code.
    #[serde(default)]
    pub error: Option<String>,
}

/// A failed callback: the error, and the organisation if it was known.
#[derive(Debug)]
pub struct Failed {
    /// The organisation of the sign-in, when the state named one.
    pub tenant: Option<TenantId>,
    /// What went wrong.
    pub error: OidcError,
}

#[derive(Deserialize)]
struct TokenResponse {
    #[serde(default)]
    id_token: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

/// The sign-in service: see the module docs. Shared as `Arc<Oidc>`.
pub struct Oidc {
    auth: Arc<Auth>,
    http: Result<http::HttpClient, String>,
    pending: pending::PendingStore,
    providers: provider::ProviderCache,
}

impl std::fmt::Debug for Oidc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Oidc").finish_non_exhaustive()
    }
}

fn random_token() -> String {
    URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>())
}

/// An OAuth error code from a provider, if it looks like one (else `other`),
/// so nothing the provider sends is echoed unchecked.
fn oauth_code(s: Option<&str>) -> String {
    match s {
        Some(c)
            if !c.is_empty()
                && c.len() <= 64
                && c.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') =>
        {
            c.to_owned()
        }
        _ => "other".to_owned(),
    }
}

impl Oidc {
    /// The service over `auth` (its directory, audit trail and session table).
    pub fn new(auth: Arc<Auth>) -> Self {
        Self {
            auth,
            http: http::HttpClient::new(),
            pending: pending::PendingStore::default(),
            providers: provider::ProviderCache::default(),
        }
    }

    fn http(&self) -> Result<&http::HttpClient, OidcError> {
        self.http
            .as_ref()
            .map_err(|e| OidcError::Provider(e.clone()))
    }

    /// Whether `tenant` signs in with an identity provider.
    pub fn enabled_for(&self, tenant: &TenantId) -> bool {
        self.auth.directory.oidc(tenant).is_some()
    }

    /// Starts a sign-in for `tenant` from the client at `source`.
    pub async fn start(
        &self,
        tenant: &TenantId,
        source: IpAddr,
        now: Instant,
    ) -> Result<Started, OidcError> {
        let settings = self
            .auth
            .directory
            .oidc(tenant)
            .ok_or(OidcError::NotConfigured)?;
        let discovery = self
            .providers
            .discovery(self.http()?, tenant, settings, now)
            .await?;
        let (state, nonce, verifier, binding) = (
            random_token(),
            random_token(),
            random_token(),
            random_token(),
        );
        let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
        let mut url = discovery.authorization_endpoint.clone();
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", &settings.client_id)
            .append_pair("redirect_uri", &settings.redirect_uri())
            .append_pair("scope", "openid profile email")
            .append_pair("state", &state)
            .append_pair("nonce", &nonce)
            .append_pair("code_challenge", &challenge)
            .append_pair("code_challenge_method", "S256");
        self.pending.insert(
            &state,
            &binding,
            (tenant.clone(), source),
            nonce,
            verifier,
            now,
        );
        Ok(Started {
            redirect: url.into(),
            binding,
        })
    }

    /// Finishes a sign-in from the provider's callback; `binding` is the
    /// sign-in cookie's value. On success returns the new session's token.
    pub async fn finish(
        &self,
        cb: Callback,
        binding: Option<&str>,
        source: IpAddr,
        now: Instant,
    ) -> Result<(String, SessionInfo), Failed> {
        let pending = self
            .pending
            .take(cb.state.as_deref().unwrap_or_default(), binding, now)
            .map_err(|e| Failed {
                tenant: None,
                error: match e {
                    pending::TakeError::Unknown => OidcError::StateUnknown,
                    pending::TakeError::Binding => OidcError::StateMismatch,
                },
            });
        let pending = match pending {
            Ok(p) => p,
            Err(f) => {
                self.audit_failure(None, None, &f.error, source);
                return Err(f);
            }
        };
        let tenant = pending.tenant.clone();
        let result = self.exchange_and_map(cb, &pending, now).await;
        match result {
            Ok(info) => {
                let session = SessionInfo {
                    clinician: info.id.clone(),
                    tenant: info.tenant.clone(),
                    role: info.role,
                    display_name: info.display_name.clone(),
                };
                self.auth.sweep_expired(now);
                let Ok(token) = self.auth.open_session(session.clone(), now) else {
                    let error = OidcError::Unavailable;
                    self.audit_failure(Some(&tenant), Some(session.clinician), &error, source);
                    return Err(Failed {
                        tenant: Some(tenant),
                        error,
                    });
                };
                self.auth.audit.record(
                    AuditEvent::new(AuditAction::Login)
                        .actor(info.id)
                        .tenant(info.tenant)
                        .source(source)
                        .detail("oidc"),
                );
                tracing::info!(tenant = %tenant, clinician = %session.clinician, "oidc sign-in");
                Ok((token, session))
            }
            Err((actor, error)) => {
                self.audit_failure(Some(&tenant), actor, &error, source);
                Err(Failed {
                    tenant: Some(tenant),
                    error,
                })
            }
        }
    }

    fn audit_failure(
        &self,
        tenant: Option<&TenantId>,
        actor: Option<protocol::ClinicianId>,
        error: &OidcError,
        source: IpAddr,
    ) {
        let mut e = AuditEvent::new(AuditAction::LoginFailed)
            .source(source)
            .detail(format!("oidc_{}", error.code()));
        if let Some(t) = tenant {
            e = e.tenant(t.clone());
        }
        if let Some(a) = actor {
            e = e.actor(a);
        }
        self.auth.audit.record(e);
        // The error's text holds no token, code or personal data.
        tracing::warn!(tenant = ?tenant.map(TenantId::as_str), code = error.code(), error = %error, "oidc sign-in failed");
    }

    async fn exchange_and_map(
        &self,
        cb: Callback,
        pending: &pending::Pending,
        now: Instant,
    ) -> Result<crate::directory::ClinicianInfo, (Option<protocol::ClinicianId>, OidcError)> {
        let tenant = &pending.tenant;
        let settings = self
            .auth
            .directory
            .oidc(tenant)
            .ok_or((None, OidcError::NotConfigured))?;
        if cb.error.is_some() {
            return Err((
                None,
                OidcError::ProviderRefused(oauth_code(cb.error.as_deref())),
            ));
        }
        let code = cb
            .code
            .filter(|c| !c.is_empty() && c.len() <= 4096)
            .ok_or((None, OidcError::InvalidToken("the callback has no code")))?;
        let http = self.http().map_err(|e| (None, e))?;
        let discovery = self
            .providers
            .discovery(http, tenant, settings, now)
            .await
            .map_err(|e| (None, e))?;

        let redirect_uri = settings.redirect_uri();
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", redirect_uri.as_str()),
            ("code_verifier", pending.verifier.expose().as_str()),
        ];
        let secret = settings.client_secret.as_ref().map(|s| s.expose().as_str());
        let post_only = !discovery.token_endpoint_auth_methods_supported.is_empty()
            && !discovery
                .token_endpoint_auth_methods_supported
                .iter()
                .any(|m| m == "client_secret_basic");
        let basic = match secret {
            Some(s) if !post_only => Some((settings.client_id.as_str(), s)),
            Some(s) => {
                form.push(("client_id", settings.client_id.as_str()));
                form.push(("client_secret", s));
                None
            }
            None => {
                form.push(("client_id", settings.client_id.as_str()));
                None
            }
        };
        let (status, body) = http
            .post_form(&discovery.token_endpoint, &form, basic)
            .await
            .map_err(|e| (None, e))?;
        // Never put the body in an error: it holds tokens.
        let reply: Option<TokenResponse> = serde_json::from_slice(&body).ok();
        if !status.is_success() {
            let code = oauth_code(reply.as_ref().and_then(|r| r.error.as_deref()));
            return Err((None, OidcError::TokenExchange(code)));
        }
        let id_token = reply.and_then(|r| r.id_token).ok_or((
            None,
            OidcError::InvalidToken("the token response has no ID token"),
        ))?;

        let kid = jsonwebtoken::decode_header(&id_token)
            .ok()
            .and_then(|h| h.kid);
        let keys = self
            .providers
            .jwks(http, tenant, &discovery, kid.as_deref(), now)
            .await
            .map_err(|e| (None, e))?;
        let now_unix = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let identity = verify::verify_id_token(
            &id_token,
            &keys,
            settings,
            &discovery,
            pending.nonce.expose(),
            now_unix,
        )
        .map_err(|e| (None, e))?;

        let dir = &self.auth.directory;
        let found = if settings.user_claim.is_subject() {
            dir.clinician_by_subject(tenant, &identity.user)
        } else {
            dir.clinician_by_username(tenant, &identity.user)
        };
        let account = match found {
            Some(a) => a,
            None if settings.provision && settings.user_claim.is_subject() => dir
                .provision_clinician(
                    tenant,
                    &identity.user,
                    identity.name.as_deref().unwrap_or_default(),
                )
                .map_err(|_| (None, OidcError::UnknownUser))?,
            None => return Err((None, OidcError::UnknownUser)),
        };
        if !account.enabled || &account.tenant != tenant {
            return Err((Some(account.id), OidcError::AccountDisabled));
        }
        Ok(account)
    }
}
