//! The optional TOTP second factor of local accounts (RFC 6238: HMAC-SHA-1,
//! 6 digits, 30 s steps, ±1 step of clock skew — what every authenticator
//! app speaks). This module owns the per-account secrets, enrolment, code
//! verification with replay rejection (a step is accepted at most once per
//! account, and never one older than the last accepted), and the login
//! tickets that carry a correct password to the code step.
//!
//! The code arithmetic is `totp-rs`'s (maintained, RFC test vectors, constant
//! time comparison, and it reports the matched step, which replay rejection
//! needs). Secrets live in memory only, like accounts created through the
//! admin API; they never appear in `Debug` output or logs.
//!
//! The [`Auth`](super::Auth) methods that use this store are in `totp_login`.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use protocol::ClinicianId;
use sha2::{Digest, Sha256};
use totp_rs::{Algorithm, Builder, Totp};

use super::throttle::Attempt;

/// Digits of a code.
pub const DIGITS: u8 = 6;
/// Seconds per step.
pub const STEP_SECS: u64 = 30;
/// Steps of clock skew accepted either side of the current one.
pub const SKEW_STEPS: u16 = 1;
/// Bytes of a secret (160 bits, RFC 4226's recommendation).
const SECRET_BYTES: usize = 20;
/// Issuer shown in authenticator apps.
pub const ISSUER: &str = "Anteroom";
/// How long a started enrolment may be confirmed.
pub const ENROLMENT_TTL: Duration = Duration::from_secs(10 * 60);
/// Wrong codes before a started enrolment is dropped.
const ENROLMENT_TRIES: u32 = 5;
/// How long a login ticket (password checked, code pending) lives.
pub const TICKET_TTL: Duration = Duration::from_secs(5 * 60);
/// Wrong codes before a login ticket is dropped (the throttle counts each too).
pub const TICKET_TRIES: u32 = 5;
/// Most open login tickets (each needs a correct password, so few are real).
const MAX_TICKETS: usize = 10_000;
/// Longest code or ticket string looked at.
pub const MAX_INPUT: usize = 128;

/// Why a code was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeError {
    /// Not the code of any step in the window (or not 6 digits).
    Wrong,
    /// The code of a step already used (or older than the last used one).
    Replayed,
}

impl CodeError {
    /// Audit detail: `bad_totp` or `totp_replayed`.
    pub fn as_str(self) -> &'static str {
        match self {
            CodeError::Wrong => "bad_totp",
            CodeError::Replayed => "totp_replayed",
        }
    }
}

/// The RFC 6238 generator for `secret` (SHA-1, 6 digits, 30 s, skew 1).
fn generator(secret: &[u8], account: &str) -> Option<Totp> {
    Builder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_digits(DIGITS)
        .with_step_duration(STEP_SECS)
        .with_skew(SKEW_STEPS)
        .with_secret(secret.to_vec())
        .with_account_name(account)
        .with_issuer(Some(ISSUER))
        .build()
        .ok()
}

/// Checks `code` against `secret` at `unix_secs`; `last_step` is the last
/// step accepted for this account. Returns the matched step.
pub fn check_code(
    secret: &[u8],
    code: &str,
    unix_secs: u64,
    last_step: Option<u64>,
) -> Result<u64, CodeError> {
    let code = code.trim();
    if code.len() != usize::from(DIGITS) {
        return Err(CodeError::Wrong);
    }
    let step = generator(secret, "")
        .and_then(|t| t.check(code, unix_secs))
        .ok_or(CodeError::Wrong)?;
    if last_step.is_some_and(|last| step <= last) {
        return Err(CodeError::Replayed);
    }
    Ok(step)
}

/// The code of `secret` at `unix_secs` (for tests and tools).
pub fn code_at(secret: &[u8], unix_secs: u64) -> String {
    generator(secret, "")
        .map(|t| t.generate(unix_secs).to_string())
        .unwrap_or_default()
}

/// Decodes a base32 secret as shown to the user (for tests and tools).
pub fn secret_from_base32(b32: &str) -> Option<Vec<u8>> {
    totp_rs::Secret::try_from_base32(b32)
        .ok()
        .map(|s| s.as_bytes().to_vec())
}

/// What a user needs to add the account to an authenticator app.
pub struct Enrolment {
    /// The secret, base32 (RFC 4648, no padding) for typing in.
    pub secret_base32: String,
    /// `otpauth://totp/Anteroom:<username>?secret=…&issuer=Anteroom` (for a QR code).
    pub otpauth_uri: String,
}

impl std::fmt::Debug for Enrolment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Enrolment(<redacted>)")
    }
}

struct Enrolled {
    secret: Vec<u8>,
    last_step: Option<u64>,
}

struct Pending {
    secret: Vec<u8>,
    created: Instant,
    tries: u32,
}

/// A correct password waiting for its code.
pub(crate) struct Ticket {
    pub(crate) clinician: ClinicianId,
    /// Normalised username (the throttle's key).
    pub(crate) username: String,
    pub(crate) source: IpAddr,
    pub(crate) created: Instant,
    pub(crate) tries: u32,
    /// The password attempt, still counted as a failure until the code is right.
    pub(crate) attempt: Attempt,
}

type TicketKey = [u8; 32];

#[derive(Default)]
struct Inner {
    enrolled: HashMap<ClinicianId, Enrolled>,
    pending: HashMap<ClinicianId, Pending>,
    tickets: HashMap<TicketKey, Ticket>,
}

/// Secrets, enrolments and login tickets. Thread-safe.
#[derive(Default)]
pub(crate) struct TotpStore {
    inner: Mutex<Inner>,
}

impl std::fmt::Debug for TotpStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let g = self.lock();
        f.debug_struct("TotpStore")
            .field("enrolled", &g.enrolled.len())
            .field("pending", &g.pending.len())
            .field("tickets", &g.tickets.len())
            .finish()
    }
}

impl TotpStore {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether `who` has a confirmed second factor.
    pub(crate) fn enabled(&self, who: &ClinicianId) -> bool {
        self.lock().enrolled.contains_key(who)
    }

    /// Starts (or restarts) enrolment of `who` with a fresh secret.
    pub(crate) fn start(&self, who: &ClinicianId, username: &str, now: Instant) -> Enrolment {
        let secret: [u8; SECRET_BYTES] = rand::random();
        let secret_base32 = totp_rs::Secret::from(secret.to_vec()).to_base32();
        let otpauth_uri = generator(&secret, username)
            .and_then(|t| t.to_url().ok())
            .unwrap_or_default();
        self.lock().pending.insert(
            who.clone(),
            Pending {
                secret: secret.to_vec(),
                created: now,
                tries: 0,
            },
        );
        Enrolment {
            secret_base32,
            otpauth_uri,
        }
    }

    /// Confirms the pending enrolment of `who` with a code. `Ok(false)`: no
    /// pending enrolment (never started, expired, or too many wrong codes).
    pub(crate) fn confirm(
        &self,
        who: &ClinicianId,
        code: &str,
        unix_secs: u64,
        now: Instant,
    ) -> Result<bool, CodeError> {
        let mut g = self.lock();
        let Some(p) = g.pending.get_mut(who) else {
            return Ok(false);
        };
        if now.saturating_duration_since(p.created) >= ENROLMENT_TTL {
            g.pending.remove(who);
            return Ok(false);
        }
        match check_code(&p.secret, code, unix_secs, None) {
            Ok(step) => {
                let secret = std::mem::take(&mut p.secret);
                g.pending.remove(who);
                g.enrolled.insert(
                    who.clone(),
                    Enrolled {
                        secret,
                        last_step: Some(step),
                    },
                );
                Ok(true)
            }
            Err(e) => {
                p.tries += 1;
                if p.tries >= ENROLMENT_TRIES {
                    g.pending.remove(who);
                }
                Err(e)
            }
        }
    }

    /// Removes the second factor (and any pending enrolment) of `who`.
    /// Returns whether one was enabled.
    pub(crate) fn reset(&self, who: &ClinicianId) -> bool {
        let mut g = self.lock();
        g.pending.remove(who);
        g.tickets.retain(|_, t| &t.clinician != who);
        g.enrolled.remove(who).is_some()
    }

    /// Checks a login code of `who`, consuming its step on success.
    /// `None`: `who` has no second factor (any more).
    pub(crate) fn check_login(
        &self,
        who: &ClinicianId,
        code: &str,
        unix_secs: u64,
    ) -> Option<Result<u64, CodeError>> {
        let mut g = self.lock();
        let e = g.enrolled.get_mut(who)?;
        let result = check_code(&e.secret, code, unix_secs, e.last_step);
        if let Ok(step) = result {
            e.last_step = Some(step);
        }
        Some(result)
    }

    /// Stores a login ticket and returns its string (256 random bits,
    /// base64url; kept only as SHA-256).
    pub(crate) fn open_ticket(&self, ticket: Ticket, now: Instant) -> String {
        let bytes: [u8; 32] = rand::random();
        let token = URL_SAFE_NO_PAD.encode(bytes);
        let mut g = self.lock();
        g.tickets
            .retain(|_, t| now.saturating_duration_since(t.created) < TICKET_TTL);
        if g.tickets.len() >= MAX_TICKETS
            && let Some(oldest) = g
                .tickets
                .iter()
                .min_by_key(|(_, t)| t.created)
                .map(|(k, _)| *k)
        {
            g.tickets.remove(&oldest);
        }
        g.tickets.insert(ticket_key(&token), ticket);
        token
    }

    /// Takes the live ticket of `token` out of the store (put it back with
    /// [`TotpStore::return_ticket`] after a wrong code).
    pub(crate) fn take_ticket(&self, token: &str, now: Instant) -> Option<Ticket> {
        if token.is_empty() || token.len() > MAX_INPUT {
            return None;
        }
        let t = self.lock().tickets.remove(&ticket_key(token))?;
        (now.saturating_duration_since(t.created) < TICKET_TTL).then_some(t)
    }

    /// Puts a ticket back, counting a wrong code if `wrong_code`, unless it
    /// has had its tries.
    pub(crate) fn return_ticket(&self, token: &str, mut ticket: Ticket, wrong_code: bool) {
        ticket.tries += u32::from(wrong_code);
        if ticket.tries < TICKET_TRIES {
            self.lock().tickets.insert(ticket_key(token), ticket);
        }
    }
}

fn ticket_key(token: &str) -> TicketKey {
    Sha256::digest(token.as_bytes()).into()
}

#[cfg(test)]
#[path = "totp_tests.rs"]
mod tests;
