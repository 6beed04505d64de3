//! ID token verification (OpenID Connect Core §3.1.3.7), with the
//! `jsonwebtoken` crate doing the signature and the registered claims:
//! the signature with the provider's key named by `kid` (RSA or ECDSA only:
//! `none` and HMAC are refused), `iss` (the provider's issuer), `aud` (our
//! client id; `azp` too when there are several audiences), `exp`/`nbf` with
//! [`LEEWAY_SECS`] of clock skew, `iat` not in the future, then the `nonce`
//! of this sign-in and, if the organisation lists tenant ids, the `tid` claim.

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header};
use serde::Deserialize;
use subtle::ConstantTimeEq as _;

use super::OidcError;
use super::provider::Discovery;
use crate::directory::{OidcSettings, UserClaim};

/// Clock skew allowed on `exp`, `nbf` and `iat`, in seconds.
pub(crate) const LEEWAY_SECS: u64 = 60;
/// Longest ID token accepted.
const MAX_TOKEN_BYTES: usize = 16 * 1024;
/// Asymmetric algorithms accepted.
const ALGORITHMS: &[Algorithm] = &[
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
];

#[derive(Deserialize)]
struct Claims {
    aud: serde_json::Value,
    #[serde(default)]
    azp: Option<String>,
    #[serde(default)]
    iat: Option<u64>,
    #[serde(default)]
    nonce: Option<String>,
    #[serde(default)]
    tid: Option<String>,
    #[serde(default)]
    sub: Option<String>,
    #[serde(default)]
    oid: Option<String>,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    email_verified: Option<serde_json::Value>,
    #[serde(default)]
    preferred_username: Option<String>,
    #[serde(default)]
    name: Option<String>,
}

/// What a verified ID token says about the user.
pub(crate) struct Identity {
    /// The value of the organisation's `user_claim`.
    pub(crate) user: String,
    /// The `name` claim, used only to name a provisioned account.
    pub(crate) name: Option<String>,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Identity([redacted])")
    }
}

/// Verifies `token` for this sign-in (`nonce`) at `now_unix` (seconds).
pub(crate) fn verify_id_token(
    token: &str,
    keys: &JwkSet,
    settings: &OidcSettings,
    discovery: &Discovery,
    nonce: &str,
    now_unix: u64,
) -> Result<Identity, OidcError> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(OidcError::InvalidToken("the ID token is too large"));
    }
    let header =
        decode_header(token).map_err(|_| OidcError::InvalidToken("the ID token is malformed"))?;
    if !ALGORITHMS.contains(&header.alg) {
        return Err(OidcError::InvalidToken(
            "the ID token is not signed with RSA or ECDSA",
        ));
    }
    let jwk = match &header.kid {
        Some(kid) => keys.find(kid),
        None if keys.keys.len() == 1 => keys.keys.first(),
        None => None,
    }
    .ok_or(OidcError::BadSignature)?;
    // A key published for one algorithm is not used with another.
    if jwk
        .common
        .key_algorithm
        .is_some_and(|a| format!("{a:?}") != format!("{:?}", header.alg))
    {
        return Err(OidcError::BadSignature);
    }
    let key = DecodingKey::from_jwk(jwk).map_err(|_| OidcError::BadSignature)?;

    let mut v = Validation::new(header.alg);
    v.set_audience(&[settings.client_id.as_str()]);
    v.set_issuer(&discovery.expected_issuers(settings));
    v.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    v.leeway = LEEWAY_SECS;
    v.validate_nbf = true;
    let data = decode::<Claims>(token, &key, &v).map_err(|e| {
        use jsonwebtoken::errors::ErrorKind as K;
        match e.kind() {
            K::InvalidSignature | K::InvalidAlgorithm | K::InvalidKeyFormat => {
                OidcError::BadSignature
            }
            K::ExpiredSignature | K::ImmatureSignature => OidcError::Expired,
            K::InvalidAudience => OidcError::WrongAudience,
            K::InvalidIssuer => OidcError::WrongIssuer,
            K::MissingRequiredClaim(_) => OidcError::MissingClaim("exp, iss, aud or sub"),
            _ => OidcError::InvalidToken("the ID token's claims are malformed"),
        }
    })?;
    let c = data.claims;

    if let serde_json::Value::Array(auds) = &c.aud
        && auds.len() > 1
        && c.azp.as_deref() != Some(settings.client_id.as_str())
    {
        return Err(OidcError::WrongAudience);
    }
    let iat = c.iat.ok_or(OidcError::MissingClaim("iat"))?;
    if iat > now_unix.saturating_add(LEEWAY_SECS) {
        return Err(OidcError::Expired);
    }
    let nonce_ok = c
        .nonce
        .as_deref()
        .is_some_and(|n| bool::from(n.as_bytes().ct_eq(nonce.as_bytes())));
    if !nonce_ok {
        return Err(OidcError::NonceMismatch);
    }
    if !settings.tenant_ids.is_empty() {
        let tid = c.tid.as_deref().ok_or(OidcError::WrongTenant)?;
        if !settings.tenant_ids.iter().any(|t| t == tid) {
            return Err(OidcError::WrongTenant);
        }
    }
    let user = match settings.user_claim {
        UserClaim::Sub => c.sub,
        UserClaim::Oid => c.oid,
        UserClaim::Email => {
            let verified = match &c.email_verified {
                None => true,
                Some(serde_json::Value::Bool(b)) => *b,
                Some(serde_json::Value::String(s)) => s == "true",
                Some(_) => false,
            };
            if !verified {
                return Err(OidcError::EmailNotVerified);
            }
            c.email
        }
        UserClaim::PreferredUsername => c.preferred_username,
    };
    let user = user
        .filter(|u| !u.is_empty())
        .ok_or(OidcError::MissingClaim(settings.user_claim.claim()))?;
    Ok(Identity { user, name: c.name })
}
