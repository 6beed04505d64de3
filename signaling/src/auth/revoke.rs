//! Ending sessions early, seen at once by their holders: every logout and
//! every disabled account bumps a counter ([`Auth::revocations`]); an open
//! clinician WebSocket waits on it and re-checks its own session
//! ([`Auth::session_is_live`]) on each change, so a disabled clinician's
//! sockets close immediately rather than at their next message.

use std::time::Instant;

use tokio::sync::watch;

use super::Auth;

impl Auth {
    /// Changes whenever sessions end before their time (logout, disabled
    /// account): a holder of a session re-validates it on each change.
    pub fn revocations(&self) -> watch::Receiver<u64> {
        self.revoked.subscribe()
    }

    /// Whether `token` names a live session of an enabled account, without
    /// extending its idle deadline (a check, not a use).
    pub fn session_is_live(&self, token: &str, now: Instant) -> bool {
        // The account may also have been disabled in the directory directly.
        self.sessions
            .peek(token, now)
            .and_then(|info| self.directory.clinician(&info.clinician))
            .is_some_and(|c| c.enabled)
    }
}
