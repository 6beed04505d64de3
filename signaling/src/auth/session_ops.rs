//! What [`Auth`] does with sessions once they exist: checking and touching
//! them on every authenticated request, logout, ending an account's
//! sessions, the expiry sweep, and running each operation on the session
//! store ([`crate::store::sessions::SessionBackend`]) without holding up a
//! tokio worker while Redis answers.

use std::net::IpAddr;
use std::time::Instant;

use protocol::ClinicianId;

use super::{Auth, AuthError, SessionInfo};
use crate::Error;
use crate::audit::{AuditAction, AuditEvent};
use crate::store::sessions::{Lookup, SessionBackend};

impl Auth {
    /// Validates `token` and extends its idle deadline. `None` if unknown,
    /// expired (idle or absolute), logged out, or its account is disabled —
    /// or if the session store failed (logged); request handlers use
    /// [`Auth::check_session`], which tells that apart.
    pub fn session(&self, token: &str, now: Instant) -> Option<SessionInfo> {
        self.check_session(token, now).unwrap_or_else(|e| {
            tracing::warn!(error = %e, "session check failed: treated as no session");
            None
        })
    }

    /// [`Auth::session`], with a store failure as an error ([`Error::Redis`]:
    /// HTTP 503, a retryable WebSocket error), never as "not logged in".
    pub fn check_session(&self, token: &str, now: Instant) -> Result<Option<SessionInfo>, Error> {
        match self.store(|s| s.touch(token, now))? {
            Lookup::Valid(info) => {
                let enabled = self
                    .directory
                    .clinician(&info.clinician)
                    .is_some_and(|c| c.enabled && c.tenant == info.tenant);
                if enabled {
                    Ok(Some(info))
                } else {
                    self.store(|s| s.remove(token))?;
                    Ok(None)
                }
            }
            Lookup::Expired(info) => {
                self.record_expired(&info);
                Ok(None)
            }
            Lookup::Missing => Ok(None),
        }
    }

    /// Ends the session of `token` (audited as a logout). Returns who it
    /// belonged to, or `None` if there was no such live session (or the
    /// store failed: see [`Auth::try_logout_from`]).
    pub fn logout(&self, token: &str) -> Option<SessionInfo> {
        self.logout_from(token, None)
    }

    /// [`Auth::logout`], recording the requester's address in the audit line.
    pub fn logout_from(&self, token: &str, source: Option<IpAddr>) -> Option<SessionInfo> {
        self.try_logout_from(token, source).unwrap_or_else(|e| {
            tracing::warn!(error = %e, "logout failed");
            None
        })
    }

    /// [`Auth::logout_from`] with a store failure as an error. Every node's
    /// WebSockets of the session close ([`Auth::revocations`]).
    pub fn try_logout_from(
        &self,
        token: &str,
        source: Option<IpAddr>,
    ) -> Result<Option<SessionInfo>, Error> {
        let Some(info) = self.store(|s| s.remove(token))? else {
            return Ok(None);
        };
        self.revoked.send_modify(|n| *n = n.wrapping_add(1));
        self.announce_revoked(&info.clinician);
        let mut e = AuditEvent::new(AuditAction::Logout)
            .actor(info.clinician.clone())
            .tenant(info.tenant.clone());
        if let Some(ip) = source {
            e = e.source(ip);
        }
        self.audit.record(e);
        Ok(Some(info))
    }

    /// Ends every session of `clinician` at once (e.g. the account was
    /// disabled). Returns how many ended (0 if the store failed: see
    /// [`Auth::try_end_sessions_of`]).
    pub fn end_sessions_of(&self, clinician: &ClinicianId) -> usize {
        self.try_end_sessions_of(clinician).unwrap_or_else(|e| {
            tracing::warn!(error = %e, %clinician, "ending an account's sessions failed");
            // Still make this node's sockets re-check (the directory may say disabled).
            self.revoked.send_modify(|n| *n = n.wrapping_add(1));
            0
        })
    }

    /// [`Auth::end_sessions_of`] with a store failure as an error. Every
    /// node's WebSockets of those sessions close ([`Auth::revocations`]).
    pub fn try_end_sessions_of(&self, clinician: &ClinicianId) -> Result<usize, Error> {
        let ended = self.store(|s| s.remove_clinician(clinician))?;
        self.revoked.send_modify(|n| *n = n.wrapping_add(1));
        self.announce_revoked(clinician);
        Ok(ended)
    }

    /// Removes expired sessions (auditing each as `session_expired`). Login
    /// calls it; a server also calls it periodically. A store failure is
    /// logged and left for the next sweep.
    pub fn sweep_expired(&self, now: Instant) {
        match self.store(|s| s.sweep(now)) {
            Ok(gone) => {
                for info in gone {
                    self.record_expired(&info);
                }
            }
            Err(e) => tracing::warn!(error = %e, "sweeping expired sessions failed"),
        }
    }

    /// Opens a session for `info` (password, TOTP and OIDC sign-ins).
    pub(crate) fn open_session(
        &self,
        info: SessionInfo,
        now: Instant,
    ) -> Result<String, AuthError> {
        self.store(|s| s.create(info, now)).map_err(|e| {
            tracing::warn!(error = %e, "opening a session failed");
            AuthError::Unavailable
        })
    }

    /// Runs `op` on the session store; a store that blocks (Redis) runs in
    /// `block_in_place` on a multi-threaded runtime's worker, so that the
    /// worker's other tasks are not held up meanwhile.
    pub(super) fn store<T>(&self, op: impl FnOnce(&dyn SessionBackend) -> T) -> T {
        let store = self.sessions.as_ref();
        if store.blocks() && on_multi_thread_runtime() {
            tokio::task::block_in_place(|| op(store))
        } else {
            op(store)
        }
    }
}

/// Whether this thread runs inside a multi-threaded tokio runtime (where
/// `block_in_place` is allowed; elsewhere a blocking call just runs).
fn on_multi_thread_runtime() -> bool {
    tokio::runtime::Handle::try_current()
        .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread)
}
