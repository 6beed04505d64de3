//! Ending sessions early, seen at once by their holders: every logout and
//! every disabled account bumps a counter ([`Auth::revocations`]), here or,
//! through the cluster bus, on another node (`auth::cluster`); an open
//! clinician WebSocket waits on it and re-checks its own session
//! ([`Auth::session_is_live`]) on each change, so a disabled clinician's
//! sockets close immediately rather than at their next message.

use std::time::Instant;

use tokio::sync::watch;

use super::Auth;
use crate::Error;

impl Auth {
    /// Changes whenever sessions end before their time (logout, disabled
    /// account, on any node): a holder of a session re-validates it on each change.
    pub fn revocations(&self) -> watch::Receiver<u64> {
        self.revoked.subscribe()
    }

    /// Whether `token` names a live session of an enabled account, without
    /// extending its idle deadline (a check, not a use). If the session
    /// store does not answer, the session counts as live (an open socket is
    /// not dropped for a Redis blip; its next use is checked again).
    pub fn session_is_live(&self, token: &str, now: Instant) -> bool {
        self.check_session_is_live(token, now).unwrap_or_else(|e| {
            tracing::warn!(error = %e, "session re-check failed: keeping the connection");
            true
        })
    }

    /// [`Auth::session_is_live`] with a store failure as an error.
    pub fn check_session_is_live(&self, token: &str, now: Instant) -> Result<bool, Error> {
        // The account may also have been disabled in the directory directly.
        Ok(self
            .store(|s| s.peek(token, now))?
            .and_then(|info| self.directory.clinician(&info.clinician))
            .is_some_and(|c| c.enabled))
    }
}
