//! Sign-ins in progress: what `/auth/oidc/<org>/start` remembers until the
//! provider sends the browser back to the callback. Each entry is keyed by
//! the SHA-256 of its `state`, holds the nonce and PKCE verifier, and is
//! bound to the SHA-256 of a random value kept in the browser's cookie, so a
//! callback URL replayed, forged or opened in another browser finds nothing.
//! Entries are single-use (taken on the first callback), live
//! [`PENDING_TTL`], and the table is bounded: at most [`MAX_PER_SOURCE`] per
//! client address (an IPv6 /64 counts as one), then at most [`MAX_PENDING`]
//! in all, the oldest dropped first — so one client starting sign-ins in a
//! loop only drops its own.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use protocol::{Sensitive, TenantId};
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;

/// How long a sign-in may take at the provider.
pub(crate) const PENDING_TTL: Duration = Duration::from_secs(10 * 60);
/// Most sign-ins in progress at once; the oldest is dropped past it.
const MAX_PENDING: usize = 10_000;
/// Most sign-ins in progress per client address (or IPv6 /64).
const MAX_PER_SOURCE: usize = 32;
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
    source: IpAddr,
}

/// The address a client is counted under: IPv4 as is, IPv6 by its /64.
fn source_group(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => {
            let mut o = v6.octets();
            o[8..].fill(0);
            IpAddr::from(o)
        }
    }
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
    /// Remembers a sign-in from `source` under `state`, bound to the cookie
    /// value `binding`.
    pub(crate) fn insert(
        &self,
        state: &str,
        binding: &str,
        (tenant, source): (TenantId, IpAddr),
        nonce: String,
        verifier: String,
        now: Instant,
    ) {
        let source = source_group(source);
        let mut map = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let mut mine: Vec<([u8; 32], Instant)> = map
            .iter()
            .filter(|(_, p)| p.source == source)
            .map(|(k, p)| (*k, p.created))
            .collect();
        if mine.len() >= MAX_PER_SOURCE {
            mine.sort_by_key(|(_, created)| *created);
            for (k, _) in mine.iter().take(mine.len() + 1 - MAX_PER_SOURCE) {
                map.remove(k);
            }
        }
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
                source,
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

    fn tenant() -> (TenantId, IpAddr) {
        from([192, 0, 2, 1])
    }

    fn from(ip: impl Into<IpAddr>) -> (TenantId, IpAddr) {
        (TenantId::new("t").unwrap(), ip.into())
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
            let ip = [10, (i >> 16) as u8, (i >> 8) as u8, i as u8];
            s.insert(&format!("s{i}"), "c", from(ip), "n".into(), "v".into(), t0);
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

    #[test]
    fn one_client_only_drops_its_own() {
        let s = PendingStore::default();
        let t0 = Instant::now();
        s.insert("victim", "c", tenant(), "n".into(), "v".into(), t0);
        let v6 = |last: u16| std::net::Ipv6Addr::new(0x2001, 0xdb8, 0, 1, 0, 0, 0, last);
        for i in 0..100u16 {
            let at = t0 + Duration::from_millis(u64::from(i) + 1);
            s.insert(
                &format!("a{i}"),
                "c",
                from(v6(i)),
                "n".into(),
                "v".into(),
                at,
            );
        }
        // The whole /64 counts as one client.
        assert_eq!(s.len(), 1 + MAX_PER_SOURCE);
        assert!(s.take("victim", Some("c"), t0).is_ok());
        assert!(s.take("a99", Some("c"), t0).is_ok());
        assert_eq!(s.take("a0", Some("c"), t0).unwrap_err(), TakeError::Unknown);
    }
}
