//! Sign-ins in progress: what `/auth/oidc/<org>/start` remembers until the
//! provider sends the browser back to the callback. Each entry is keyed by
//! the SHA-256 of its `state`, holds the nonce and PKCE verifier, and is
//! bound to the SHA-256 of a random value kept in the browser's cookie, so a
//! callback URL replayed, forged or opened in another browser finds nothing.
//! Entries are single-use (taken on the first callback), live
//! [`PENDING_TTL`], and the table is bounded (oldest dropped first).

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use protocol::{Sensitive, TenantId};
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;

/// How long a sign-in may take at the provider.
pub(crate) const PENDING_TTL: Duration = Duration::from_secs(10 * 60);
/// Most sign-ins in progress at once; the oldest is dropped past it.
const MAX_PENDING: usize = 10_000;
/// Longest `state` looked up.
const MAX_STATE_LEN: usize = 128;

/// One sign-in in progress.
#[derive(Debug)]
pub(crate) struct Pending {
    /// The organisation signing in.
    pub(crate) tenant: TenantId,
    /// Must come back in the ID token.
    pub(crate) nonce: Sensitive<String>,
    /// The PKCE code verifier sent with the code.
    pub(crate) verifier: Sensitive<String>,
    binding: [u8; 32],
    created: Instant,
}

/// Why a callback's state was refused.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum TakeError {
    /// Unknown, already used, or expired.
    Unknown,
    /// Known, but the browser's cookie does not match (the entry is gone now).
    Binding,
}

/// The table of sign-ins in progress.
#[derive(Debug, Default)]
pub(crate) struct PendingStore {
    inner: Mutex<HashMap<[u8; 32], Pending>>,
}

fn digest(s: &str) -> [u8; 32] {
    Sha256::digest(s.as_bytes()).into()
}

impl PendingStore {
    /// Remembers a sign-in under `state`, bound to the cookie value `binding`.
    pub(crate) fn insert(
        &self,
        state: &str,
        binding: &str,
        tenant: TenantId,
        nonce: String,
        verifier: String,
        now: Instant,
    ) {
        let mut map = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        if map.len() >= MAX_PENDING {
            map.retain(|_, p| now.saturating_duration_since(p.created) < PENDING_TTL);
        }
        if map.len() >= MAX_PENDING
            && let Some(oldest) = map.iter().min_by_key(|(_, p)| p.created).map(|(k, _)| *k)
        {
            map.remove(&oldest);
        }
        map.insert(
            digest(state),
            Pending {
                tenant,
                nonce: Sensitive::new(nonce),
                verifier: Sensitive::new(verifier),
                binding: digest(binding),
                created: now,
            },
        );
    }

    /// Takes (removes) the sign-in of `state` if it is live and `binding`
    /// is the cookie it was bound to.
    pub(crate) fn take(
        &self,
        state: &str,
        binding: Option<&str>,
        now: Instant,
    ) -> Result<Pending, TakeError> {
        if state.is_empty() || state.len() > MAX_STATE_LEN {
            return Err(TakeError::Unknown);
        }
        let p = self
            .inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&digest(state))
            .ok_or(TakeError::Unknown)?;
        if now.saturating_duration_since(p.created) >= PENDING_TTL {
            return Err(TakeError::Unknown);
        }
        let bound = binding.is_some_and(|b| bool::from(digest(b).ct_eq(&p.binding)));
        if !bound {
            return Err(TakeError::Binding);
        }
        Ok(p)
    }

    /// Number of sign-ins in progress (including expired, not yet pruned).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tenant() -> TenantId {
        TenantId::new("t").unwrap()
    }

    #[test]
    fn single_use_bound_and_expiring() {
        let s = PendingStore::default();
        let t0 = Instant::now();
        s.insert("st", "cookie", tenant(), "n".into(), "v".into(), t0);
        let p = s.take("st", Some("cookie"), t0).unwrap();
        assert_eq!(p.verifier.expose(), "v");
        // Replayed: gone.
        assert_eq!(
            s.take("st", Some("cookie"), t0).unwrap_err(),
            TakeError::Unknown
        );

        s.insert("st2", "cookie", tenant(), "n".into(), "v".into(), t0);
        assert_eq!(
            s.take("st2", Some("other"), t0).unwrap_err(),
            TakeError::Binding
        );
        // A failed binding check also consumes it.
        assert_eq!(
            s.take("st2", Some("cookie"), t0).unwrap_err(),
            TakeError::Unknown
        );

        s.insert("st3", "cookie", tenant(), "n".into(), "v".into(), t0);
        assert_eq!(s.take("st3", None, t0).unwrap_err(), TakeError::Binding);

        s.insert("st4", "cookie", tenant(), "n".into(), "v".into(), t0);
        assert_eq!(
            s.take("st4", Some("cookie"), t0 + PENDING_TTL).unwrap_err(),
            TakeError::Unknown
        );
    }

    #[test]
    fn bounded_and_pruned() {
        let s = PendingStore::default();
        let t0 = Instant::now();
        for i in 0..MAX_PENDING + 5 {
            s.insert(&format!("s{i}"), "c", tenant(), "n".into(), "v".into(), t0);
        }
        assert_eq!(s.len(), MAX_PENDING);
        s.insert(
            "late",
            "c",
            tenant(),
            "n".into(),
            "v".into(),
            t0 + PENDING_TTL,
        );
        assert_eq!(s.len(), 1);
    }
}
