//! Clinician authentication: password login with throttling, server-side
//! sessions with idle and absolute expiry, logout, and ending the sessions
//! of a disabled account. Every outcome is written to the [`Audit`] trail.
//!
//! [`Auth`] is shared as `Arc<Auth>`. Its methods are synchronous and take the
//! current time as an argument; [`Auth::login`] runs Argon2 (~50 ms of CPU), so
//! async code calls it through `tokio::task::spawn_blocking`.
//!
//! Sessions live in a [`SessionBackend`]: this process's memory by default,
//! Redis with `--redis-url` (every signaling node then sees every session).
//! A Redis call blocks; on a multi-threaded tokio worker it runs inside
//! `block_in_place`, so the worker's other tasks move on meanwhile. A Redis
//! failure is [`crate::Error::Redis`] ([`Auth::check_session`]) or
//! [`AuthError::Unavailable`] (login): HTTP 503, never "logged out".
//!
//! - [`password`]: Argon2id hashing ([`hash_password`] makes a config hash).
//! - `sessions`: the token table (tokens stored as SHA-256 only).
//! - [`throttle`]: failed-login limits and back-off.
//! - [`totp`] / `totp_login`: the optional TOTP second factor.

mod cluster;
pub mod oidc;
pub mod password;
mod revoke;
mod session_ops;
pub(crate) mod sessions;
pub mod throttle;
pub mod totp;
mod totp_login;

use std::net::IpAddr;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use protocol::{ClinicianId, Sensitive, TenantId};
use serde::{Deserialize, Serialize};

use crate::audit::{Audit, AuditAction, AuditEvent};
use crate::directory::{Directory, normalize_username};
use crate::store::sessions::SessionBackend;
pub use password::{HashParams, MAX_PASSWORD_BYTES, hash_password, try_hash_password};
use sessions::SessionStore;
use throttle::Throttle;
pub use throttle::ThrottlePolicy;

/// Longest username accepted at login, in bytes (longer input fails at once).
const MAX_LOGIN_USERNAME_BYTES: usize = 256;

/// Session lifetimes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthSettings {
    /// A session ends this long after its last use (default 20 minutes).
    pub idle: Duration,
    /// A session ends this long after login whatever its use (default 12 hours).
    pub max_age: Duration,
}

impl Default for AuthSettings {
    fn default() -> Self {
        Self {
            idle: Duration::from_secs(20 * 60),
            max_age: Duration::from_secs(12 * 3600),
        }
    }
}

/// The role of a staff account.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StaffRole {
    /// Sees and handles the organisation's waiting rooms.
    Clinician,
    /// A clinician who may also manage the organisation's accounts.
    Admin,
}

impl StaffRole {
    /// The wire/config name: `clinician` or `admin`.
    pub fn as_str(self) -> &'static str {
        match self {
            StaffRole::Clinician => "clinician",
            StaffRole::Admin => "admin",
        }
    }
}

/// Who a live session belongs to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionInfo {
    /// The account.
    pub clinician: ClinicianId,
    /// The account's organisation: everything the session sees is scoped to it.
    pub tenant: TenantId,
    /// The account's role.
    pub role: StaffRole,
    /// Name shown to colleagues and patients.
    pub display_name: String,
}

/// Why an authentication or account operation failed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AuthError {
    /// Unknown username, wrong password or disabled account (deliberately
    /// indistinguishable).
    #[error("invalid username or password")]
    InvalidCredentials,
    /// Too many failed logins; the password was not checked.
    #[error("too many failed logins; retry in {retry_after_secs} s")]
    Throttled {
        /// Seconds until an attempt may be admitted (at least 1).
        retry_after_secs: u64,
    },
    /// The username is already in use (usernames are unique deployment-wide).
    #[error("username already taken")]
    UsernameTaken,
    /// No such account in that organisation.
    #[error("no such account")]
    UnknownAccount,
    /// Input that breaks a rule (password policy, username form, …).
    #[error("{0}")]
    Invalid(String),
    /// Hashing failed or was asked for weak parameters.
    #[error("password hashing failed: {0}")]
    Hash(String),
    /// The password was right; the account needs a TOTP code next
    /// ([`Auth::login_totp`] with this ticket).
    #[error("enter the code from your authenticator app")]
    TotpRequired {
        /// Names the checked password for the code step (5 minutes, single use).
        ticket: Sensitive<String>,
    },
    /// The login ticket is unknown, expired, used up or from elsewhere.
    #[error("the sign-in took too long or was already used; sign in again")]
    LoginExpired,
    /// Enrolment asked for an account that already has a second factor.
    #[error("a second factor is already enabled for this account")]
    TotpAlreadyEnabled,
    /// The shared session store (Redis) did not answer: nothing was
    /// decided; the same request may succeed in a few seconds.
    #[error(
        "sign-in is unavailable for a moment (the shared session store does not answer); retry shortly"
    )]
    Unavailable,
}

/// Authentication service: see the module docs.
pub struct Auth {
    directory: Arc<Directory>,
    audit: Audit,
    settings: AuthSettings,
    sessions: Arc<dyn SessionBackend>,
    throttle: Mutex<Throttle>,
    dummy_hash: OnceLock<String>,
    totp: totp::TotpStore,
    /// Bumped whenever sessions end early (logout, account disabled), here
    /// or on another node, so open WebSockets re-check theirs at once
    /// ([`Auth::revocations`]).
    revoked: Arc<tokio::sync::watch::Sender<u64>>,
    /// Where other nodes hear of ended sessions ([`Auth::with_bus`]).
    bus: Option<cluster::ClusterLink>,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Not the sessions themselves (names); the store's kind only.
        let shared = self.sessions.blocks();
        f.debug_struct("Auth")
            .field("settings", &self.settings)
            .field("shared_sessions", &shared)
            .finish_non_exhaustive()
    }
}

/// Most concurrent sessions per account; the least recently used one is
/// dropped when a new login would exceed it.
pub(crate) const SESSIONS_PER_CLINICIAN: usize = 16;

impl Auth {
    /// Creates the service with the default [`ThrottlePolicy`], sessions in memory.
    pub fn new(directory: Arc<Directory>, audit: Audit, settings: AuthSettings) -> Auth {
        Self::with_throttle_policy(directory, audit, settings, ThrottlePolicy::default())
    }

    /// Creates the service on `sessions` (e.g. [`crate::store::backends::Backends::sessions`]),
    /// which must have been made with `settings`' lifetimes.
    pub fn with_sessions(
        directory: Arc<Directory>,
        audit: Audit,
        settings: AuthSettings,
        sessions: Arc<dyn SessionBackend>,
    ) -> Auth {
        let mut auth = Self::new(directory, audit, settings);
        auth.sessions = sessions;
        auth
    }

    /// Creates the service with a custom throttle policy.
    pub fn with_throttle_policy(
        directory: Arc<Directory>,
        audit: Audit,
        settings: AuthSettings,
        policy: ThrottlePolicy,
    ) -> Auth {
        Auth {
            sessions: Arc::new(SessionStore::new(
                settings.idle,
                settings.max_age,
                SESSIONS_PER_CLINICIAN,
            )),
            throttle: Mutex::new(Throttle::new(policy)),
            directory,
            audit,
            settings,
            dummy_hash: OnceLock::new(),
            totp: totp::TotpStore::default(),
            revoked: Arc::new(tokio::sync::watch::Sender::new(0)),
            bus: None,
        }
    }

    /// The session lifetimes in force.
    pub fn settings(&self) -> &AuthSettings {
        &self.settings
    }

    /// Checks a username and password from `source`. On success opens a
    /// session and returns its token (256 random bits, base64url) — the only
    /// time the token exists in clear on the server.
    ///
    /// Costs one Argon2 verification whether or not the username exists,
    /// except when throttled ([`AuthError::Throttled`]), which checks nothing.
    pub fn login(
        &self,
        username: &str,
        password: &str,
        source: IpAddr,
        now: Instant,
    ) -> Result<(String, SessionInfo), AuthError> {
        self.sweep_expired(now);
        if username.len() > MAX_LOGIN_USERNAME_BYTES || password.len() > MAX_PASSWORD_BYTES {
            self.audit.record(
                AuditEvent::new(AuditAction::LoginFailed)
                    .source(source)
                    .detail("oversized_input"),
            );
            return Err(AuthError::InvalidCredentials);
        }
        // Made on the first login of any kind, so that first login's extra
        // cost does not tell an unknown username from a known one.
        let dummy = self.dummy_hash();
        let name = normalize_username(username);
        let record = self.directory.login_record(&name);
        let attempt = self
            .throttle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .begin(&name, source, now);
        let attempt = match attempt {
            Ok(a) => a,
            Err(wait) => {
                let mut e = AuditEvent::new(AuditAction::LoginThrottled).source(source);
                if let Some((info, _)) = &record {
                    e = e.actor(info.id.clone()).tenant(info.tenant.clone());
                }
                self.audit.record(e);
                return Err(AuthError::Throttled {
                    retry_after_secs: ceil_secs(wait),
                });
            }
        };

        let Some((info, phc)) = record else {
            let _ = password::verify_password(dummy, password);
            self.audit.record(
                AuditEvent::new(AuditAction::LoginFailed)
                    .source(source)
                    .detail("unknown_username"),
            );
            return Err(AuthError::InvalidCredentials);
        };
        let matches = password::verify_password(&phc, password);
        if !matches || !info.enabled {
            let why = if matches {
                "account_disabled"
            } else {
                "bad_password"
            };
            self.audit.record(
                AuditEvent::new(AuditAction::LoginFailed)
                    .actor(info.id.clone())
                    .tenant(info.tenant.clone())
                    .source(source)
                    .detail(why),
            );
            return Err(AuthError::InvalidCredentials);
        }
        let attempt = self.totp_gate(&info, &name, attempt, source, now)?;

        self.throttle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .succeeded(&attempt, now);
        let session = SessionInfo {
            clinician: info.id.clone(),
            tenant: info.tenant.clone(),
            role: info.role,
            display_name: info.display_name.clone(),
        };
        let token = self.open_session(session.clone(), now)?;
        self.audit.record(
            AuditEvent::new(AuditAction::Login)
                .actor(info.id)
                .tenant(info.tenant)
                .source(source),
        );
        Ok((token, session))
    }

    /// Hashes a new account's password at the production cost, after
    /// checking the password policy (12 to 1024 characters/bytes).
    pub fn hash_new_password(password: &str) -> Result<String, AuthError> {
        check_password_policy(password)?;
        try_hash_password(password, HashParams::default())
    }

    pub(super) fn record_expired(&self, info: &SessionInfo) {
        self.audit.record(
            AuditEvent::new(AuditAction::SessionExpired)
                .actor(info.clinician.clone())
                .tenant(info.tenant.clone()),
        );
    }

    /// A hash to verify against when the username is unknown, with the same
    /// cost as the directory's hashes, so timing does not reveal usernames.
    fn dummy_hash(&self) -> &str {
        self.dummy_hash.get_or_init(|| {
            let params = self.directory.sample_hash_params().unwrap_or_default();
            let filler: [u8; 16] = rand::random();
            try_hash_password(&format!("{filler:?}"), params)
                .unwrap_or_else(|_| hash_password("dummy password for unknown usernames"))
        })
    }
}

/// The password policy for new accounts: at least 12 characters, at most
/// [`MAX_PASSWORD_BYTES`] bytes.
pub fn check_password_policy(password: &str) -> Result<(), AuthError> {
    if password.chars().count() < 12 {
        return Err(AuthError::Invalid(
            "password must be at least 12 characters".to_owned(),
        ));
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(AuthError::Invalid(format!(
            "password must be at most {MAX_PASSWORD_BYTES} bytes"
        )));
    }
    Ok(())
}

/// Whole seconds, rounded up, at least 1.
fn ceil_secs(d: Duration) -> u64 {
    let s = d.as_secs() + u64::from(d.subsec_nanos() > 0);
    s.max(1)
}

#[cfg(test)]
mod cluster_tests;
#[cfg(test)]
mod tests;
