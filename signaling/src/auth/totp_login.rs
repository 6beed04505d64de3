//! The [`Auth`] side of the TOTP second factor: enrolment by the signed-in
//! user, the admin reset, and the login step that follows a correct password.
//!
//! Throttling: the password step's attempt stays counted as a failure while
//! its ticket waits for the code; the code step is a throttled attempt of its
//! own (same username and source counters). Only a right code uncounts both,
//! so a known password does not reset the back-off, and every wrong code is a
//! failed login (audited `login_failed`, detail `bad_totp`/`totp_replayed`).

use std::net::IpAddr;
use std::sync::PoisonError;
use std::time::Instant;

use protocol::{ClinicianId, Sensitive};

use super::throttle::Attempt;
use super::totp::{CodeError, Enrolment, MAX_INPUT, Ticket};
use super::{Auth, AuthError, SessionInfo, ceil_secs};
use crate::audit::{AuditAction, AuditEvent};
use crate::directory::ClinicianInfo;

impl Auth {
    /// Whether `clinician` has a confirmed TOTP second factor.
    pub fn totp_enabled(&self, clinician: &ClinicianId) -> bool {
        self.totp.enabled(clinician)
    }

    /// Starts TOTP enrolment for the session's account: a fresh secret that
    /// becomes active only once [`Auth::confirm_totp`] sees a valid code.
    pub fn start_totp_enrolment(
        &self,
        session: &SessionInfo,
        now: Instant,
    ) -> Result<Enrolment, AuthError> {
        if self.totp.enabled(&session.clinician) {
            return Err(AuthError::TotpAlreadyEnabled);
        }
        let account = self
            .directory
            .clinician(&session.clinician)
            .ok_or(AuthError::UnknownAccount)?;
        Ok(self.totp.start(&session.clinician, &account.username, now))
    }

    /// Confirms enrolment with a code from the app; from then on login asks
    /// for a code. The confirming code's step counts as used.
    pub fn confirm_totp(
        &self,
        session: &SessionInfo,
        code: &str,
        unix_secs: u64,
        now: Instant,
    ) -> Result<(), AuthError> {
        if code.len() > MAX_INPUT {
            return Err(AuthError::Invalid("the code has 6 digits".to_owned()));
        }
        match self.totp.confirm(&session.clinician, code, unix_secs, now) {
            Ok(true) => {
                self.audit.record(
                    AuditEvent::new(AuditAction::TotpEnrolled)
                        .actor(session.clinician.clone())
                        .tenant(session.tenant.clone()),
                );
                Ok(())
            }
            Ok(false) => Err(AuthError::Invalid(
                "no enrolment is in progress (or it expired): start again".to_owned(),
            )),
            Err(_) => Err(AuthError::Invalid(
                "that code is not valid: check the time on your device and try the current code"
                    .to_owned(),
            )),
        }
    }

    /// Removes `clinician`'s second factor (admin reset; the caller checks
    /// the organisation and audits). Returns whether one was enabled.
    pub fn reset_totp(&self, clinician: &ClinicianId) -> bool {
        self.totp.reset(clinician)
    }

    /// Called by [`Auth::login`] once the password matched: an account with
    /// a second factor gets a ticket for [`Auth::login_totp`] (and keeps the
    /// attempt counted); others get their attempt back to complete the login.
    pub(super) fn totp_gate(
        &self,
        info: &ClinicianInfo,
        username: &str,
        attempt: Attempt,
        source: IpAddr,
        now: Instant,
    ) -> Result<Attempt, AuthError> {
        if !self.totp.enabled(&info.id) {
            return Ok(attempt);
        }
        let ticket = self.totp.open_ticket(
            Ticket {
                clinician: info.id.clone(),
                username: username.to_owned(),
                source,
                created: now,
                tries: 0,
                attempt,
            },
            now,
        );
        Err(AuthError::TotpRequired {
            ticket: Sensitive::new(ticket),
        })
    }

    /// The second login step: the ticket from a correct password plus the
    /// current code. Opens the session like [`Auth::login`] on success.
    /// Throttled like a password attempt; a wrong or replayed code is a
    /// failed login; an unknown, expired or used ticket (or one from another
    /// address) is [`AuthError::LoginExpired`].
    pub fn login_totp(
        &self,
        ticket: &str,
        code: &str,
        source: IpAddr,
        now: Instant,
        unix_secs: u64,
    ) -> Result<(String, SessionInfo), AuthError> {
        self.sweep_expired(now);
        let Some(t) = self.totp.take_ticket(ticket, now) else {
            return Err(AuthError::LoginExpired);
        };
        if t.source != source {
            return Err(AuthError::LoginExpired);
        }
        let who = t.clinician.clone();
        let audit = |action, detail: Option<&str>| {
            let mut e = AuditEvent::new(action).actor(who.clone()).source(source);
            if let Some(info) = self.directory.clinician(&who) {
                e = e.tenant(info.tenant);
            }
            if let Some(d) = detail {
                e = e.detail(d);
            }
            self.audit.record(e);
        };
        let attempt = self
            .throttle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .begin(&t.username, source, now);
        let attempt = match attempt {
            Ok(a) => a,
            Err(wait) => {
                audit(AuditAction::LoginThrottled, None);
                self.totp.return_ticket(ticket, t, false);
                return Err(AuthError::Throttled {
                    retry_after_secs: ceil_secs(wait),
                });
            }
        };
        let account = self.directory.clinician(&t.clinician).filter(|a| a.enabled);
        let Some(account) = account else {
            audit(AuditAction::LoginFailed, Some("account_disabled"));
            return Err(AuthError::InvalidCredentials);
        };
        let checked = if code.len() > MAX_INPUT {
            Some(Err(CodeError::Wrong))
        } else {
            self.totp.check_login(&t.clinician, code, unix_secs)
        };
        match checked {
            None => return Err(AuthError::LoginExpired),
            Some(Err(e)) => {
                audit(AuditAction::LoginFailed, Some(e.as_str()));
                self.totp.return_ticket(ticket, t, true);
                return Err(AuthError::InvalidCredentials);
            }
            Some(Ok(_)) => {}
        }
        {
            let mut throttle = self.throttle.lock().unwrap_or_else(PoisonError::into_inner);
            throttle.succeeded(&t.attempt, now);
            throttle.succeeded(&attempt, now);
        }
        let session = SessionInfo {
            clinician: account.id.clone(),
            tenant: account.tenant.clone(),
            role: account.role,
            display_name: account.display_name.clone(),
        };
        let token = self.open_session(session.clone(), now)?;
        audit(AuditAction::Login, Some("totp"));
        Ok((token, session))
    }
}
