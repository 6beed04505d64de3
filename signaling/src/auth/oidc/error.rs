//! Why an OpenID Connect sign-in failed ([`OidcError`]), the stable code
//! each failure has (redirected to the portal and written to the audit
//! trail), and the message the portal shows for a code. No variant carries a
//! token, code, name or address: only provider-given OAuth error codes that
//! passed [`super::oauth_code`] and fixed texts.

/// Why an OpenID Connect sign-in failed. [`OidcError::code`] is the stable
/// code the portal shows a message for.
#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
pub enum OidcError {
    /// The organisation does not exist or has no `[tenant.oidc]`.
    #[error("this organisation does not sign in with an identity provider")]
    NotConfigured,
    /// Discovery, JWKS or the token endpoint could not be used.
    #[error("the identity provider could not be reached or answered wrongly: {0}")]
    Provider(String),
    /// The provider sent the user back with an error (e.g. `access_denied`).
    #[error("the identity provider refused the sign-in ({0})")]
    ProviderRefused(String),
    /// No sign-in with that state: unknown, expired or already used.
    #[error("this sign-in link has expired or was already used; start again")]
    StateUnknown,
    /// The state belongs to a sign-in started in another browser.
    #[error("this sign-in was started in another browser; start again")]
    StateMismatch,
    /// The token endpoint refused the code (or the PKCE verifier).
    #[error("the identity provider did not accept the sign-in code ({0})")]
    TokenExchange(String),
    /// The ID token is malformed or misses something.
    #[error("the identity provider's token is invalid: {0}")]
    InvalidToken(&'static str),
    /// The ID token's signature does not verify with the provider's keys.
    #[error("the identity provider's token has a bad signature")]
    BadSignature,
    /// The ID token is from another issuer.
    #[error("the identity provider's token is from another issuer")]
    WrongIssuer,
    /// The ID token is for another client.
    #[error("the identity provider's token is for another application")]
    WrongAudience,
    /// The ID token has expired (or is not yet valid).
    #[error("the identity provider's token has expired; check the server clock and start again")]
    Expired,
    /// The ID token's nonce is not this sign-in's.
    #[error("the identity provider's token belongs to another sign-in")]
    NonceMismatch,
    /// The user's directory tenant (`tid`) is not this organisation's.
    #[error("your account belongs to another organisation's directory")]
    WrongTenant,
    /// A needed claim is missing.
    #[error("the identity provider's token lacks the {0} claim")]
    MissingClaim(&'static str),
    /// `email` is the user claim and the provider says it is unverified.
    #[error("the identity provider has not verified your e-mail address")]
    EmailNotVerified,
    /// No account of this organisation matches, and provisioning is off.
    #[error("you have no Anteroom account in this organisation; ask its administrator")]
    UnknownUser,
    /// The matching account is disabled.
    #[error("your Anteroom account is disabled; ask its administrator")]
    AccountDisabled,
    /// The shared session store (Redis) did not answer: no session was opened.
    #[error("sign-in is unavailable for a moment (the session store does not answer)")]
    Unavailable,
}

impl OidcError {
    /// A stable, non-secret code: redirected to the portal and audited.
    pub fn code(&self) -> &'static str {
        match self {
            OidcError::NotConfigured => "not_configured",
            OidcError::Provider(_) => "provider_unavailable",
            OidcError::ProviderRefused(_) => "provider_refused",
            OidcError::StateUnknown => "expired_or_replayed",
            OidcError::StateMismatch => "browser_mismatch",
            OidcError::TokenExchange(_) => "code_rejected",
            OidcError::InvalidToken(_) => "invalid_token",
            OidcError::BadSignature => "bad_signature",
            OidcError::WrongIssuer => "wrong_issuer",
            OidcError::WrongAudience => "wrong_audience",
            OidcError::Expired => "token_expired",
            OidcError::NonceMismatch => "nonce_mismatch",
            OidcError::WrongTenant => "wrong_tenant",
            OidcError::MissingClaim(_) => "missing_claim",
            OidcError::EmailNotVerified => "email_not_verified",
            OidcError::UnknownUser => "unknown_user",
            OidcError::AccountDisabled => "account_disabled",
            OidcError::Unavailable => "unavailable",
        }
    }

    /// The message the portal shows for `code` (generic for unknown codes).
    pub fn message_for_code(code: &str) -> String {
        let known = [
            OidcError::NotConfigured,
            OidcError::Provider(String::new()),
            OidcError::ProviderRefused("access_denied".to_owned()),
            OidcError::StateUnknown,
            OidcError::StateMismatch,
            OidcError::TokenExchange("invalid_grant".to_owned()),
            OidcError::InvalidToken("malformed"),
            OidcError::BadSignature,
            OidcError::WrongIssuer,
            OidcError::WrongAudience,
            OidcError::Expired,
            OidcError::NonceMismatch,
            OidcError::WrongTenant,
            OidcError::MissingClaim("user"),
            OidcError::EmailNotVerified,
            OidcError::UnknownUser,
            OidcError::AccountDisabled,
            OidcError::Unavailable,
        ];
        match known.iter().find(|e| e.code() == code) {
            Some(OidcError::Provider(_)) => {
                "The identity provider could not be reached. Try again later.".to_owned()
            }
            Some(OidcError::ProviderRefused(_)) => {
                "The identity provider did not sign you in.".to_owned()
            }
            Some(OidcError::TokenExchange(_)) => {
                "The identity provider did not accept the sign-in. Start again.".to_owned()
            }
            Some(OidcError::InvalidToken(_) | OidcError::MissingClaim(_)) => {
                "The identity provider's answer was not usable. Ask your administrator.".to_owned()
            }
            Some(e) => {
                let mut m = e.to_string();
                if let Some(first) = m.get(..1) {
                    m.replace_range(..1, &first.to_ascii_uppercase());
                }
                m.push('.');
                m
            }
            None => "Sign-in with your organisation failed.".to_owned(),
        }
    }
}
