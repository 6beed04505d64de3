//! Server-side clinician sessions.
//!
//! A token is 256 random bits (base64url, 43 characters) handed to the client
//! once; the store keeps only its SHA-256, so a memory dump or a debug print
//! of the store yields nothing that authenticates. A session ends when it has
//! not been used for `idle`, when it is `max_age` old, on logout, or when its
//! account is disabled. Time is an argument ([`Instant`]) for virtual-time tests.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use protocol::ClinicianId;
use sha2::{Digest, Sha256};

use super::SessionInfo;

/// Longest token string looked up; anything longer is rejected unhashed.
const MAX_TOKEN_LEN: usize = 128;

/// SHA-256 of a token: the only form in which the server keeps it.
type TokenHash = [u8; 32];

#[derive(Debug)]
struct Session {
    info: SessionInfo,
    created: Instant,
    last_used: Instant,
}

/// What a lookup found.
#[derive(Debug)]
pub(crate) enum Lookup {
    /// A live session (now touched).
    Valid(SessionInfo),
    /// A session that had expired; it is now removed.
    Expired(SessionInfo),
    /// No such session.
    Missing,
}

/// The session table. Bounded: at most `per_clinician` sessions per account
/// (the least recently used is dropped), and expired sessions are swept.
#[derive(Debug)]
pub(crate) struct SessionStore {
    idle: Duration,
    max_age: Duration,
    per_clinician: usize,
    inner: Mutex<HashMap<TokenHash, Session>>,
}

impl SessionStore {
    pub(crate) fn new(idle: Duration, max_age: Duration, per_clinician: usize) -> Self {
        Self {
            idle,
            max_age,
            per_clinician: per_clinician.max(1),
            inner: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<TokenHash, Session>> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn expired(&self, s: &Session, now: Instant) -> bool {
        now.saturating_duration_since(s.last_used) >= self.idle
            || now.saturating_duration_since(s.created) >= self.max_age
    }

    /// Opens a session and returns its token. Drops the account's least
    /// recently used session if it already has `per_clinician` of them.
    pub(crate) fn create(&self, info: SessionInfo, now: Instant) -> String {
        let bytes: [u8; 32] = rand::random();
        let token = URL_SAFE_NO_PAD.encode(bytes);
        let mut map = self.lock();
        let mut mine: Vec<(TokenHash, Instant)> = map
            .iter()
            .filter(|(_, s)| s.info.clinician == info.clinician)
            .map(|(k, s)| (*k, s.last_used))
            .collect();
        if mine.len() >= self.per_clinician {
            mine.sort_by_key(|(_, used)| *used);
            let excess = mine.len() + 1 - self.per_clinician;
            for (k, _) in mine.into_iter().take(excess) {
                map.remove(&k);
            }
        }
        map.insert(
            hash_token(&token),
            Session {
                info,
                created: now,
                last_used: now,
            },
        );
        token
    }

    /// Validates `token` and, if live, extends its idle deadline to `now + idle`.
    pub(crate) fn touch(&self, token: &str, now: Instant) -> Lookup {
        if token.is_empty() || token.len() > MAX_TOKEN_LEN {
            return Lookup::Missing;
        }
        let key = hash_token(token);
        let mut map = self.lock();
        let Some(s) = map.get_mut(&key) else {
            return Lookup::Missing;
        };
        if self.expired(s, now) {
            let info = s.info.clone();
            map.remove(&key);
            return Lookup::Expired(info);
        }
        s.last_used = s.last_used.max(now);
        Lookup::Valid(s.info.clone())
    }

    /// The live session of `token`, without touching it.
    pub(crate) fn peek(&self, token: &str, now: Instant) -> Option<SessionInfo> {
        if token.is_empty() || token.len() > MAX_TOKEN_LEN {
            return None;
        }
        self.lock()
            .get(&hash_token(token))
            .filter(|s| !self.expired(s, now))
            .map(|s| s.info.clone())
    }

    /// Removes the session of `token`, returning who it belonged to.
    pub(crate) fn remove(&self, token: &str) -> Option<SessionInfo> {
        if token.len() > MAX_TOKEN_LEN {
            return None;
        }
        self.lock().remove(&hash_token(token)).map(|s| s.info)
    }

    /// Removes every session of `clinician`; returns how many there were.
    pub(crate) fn remove_clinician(&self, clinician: &ClinicianId) -> usize {
        let mut map = self.lock();
        let before = map.len();
        map.retain(|_, s| &s.info.clinician != clinician);
        before - map.len()
    }

    /// Removes every expired session and returns their owners.
    pub(crate) fn sweep(&self, now: Instant) -> Vec<SessionInfo> {
        let mut map = self.lock();
        let dead: Vec<TokenHash> = map
            .iter()
            .filter(|(_, s)| self.expired(s, now))
            .map(|(k, _)| *k)
            .collect();
        dead.iter()
            .filter_map(|k| map.remove(k).map(|s| s.info))
            .collect()
    }

    /// Number of stored sessions (live or not yet swept).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }
}

fn hash_token(token: &str) -> TokenHash {
    Sha256::digest(token.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::StaffRole;
    use protocol::TenantId;

    const MIN: Duration = Duration::from_secs(60);

    fn info(id: &str) -> SessionInfo {
        SessionInfo {
            clinician: ClinicianId::new(id).unwrap(),
            tenant: TenantId::new("t").unwrap(),
            role: StaffRole::Clinician,
            display_name: "Dr X".into(),
        }
    }

    fn store() -> SessionStore {
        SessionStore::new(20 * MIN, 12 * 60 * MIN, 4)
    }

    fn valid(l: &Lookup) -> bool {
        matches!(l, Lookup::Valid(_))
    }

    #[test]
    fn tokens_are_256_bit_and_stored_only_hashed() {
        let s = store();
        let t0 = Instant::now();
        let token = s.create(info("a"), t0);
        assert_eq!(URL_SAFE_NO_PAD.decode(&token).unwrap().len(), 32);
        let dump = format!("{:?}", s.inner.lock().unwrap());
        assert!(!dump.contains(&token));
        assert_ne!(token, s.create(info("a"), t0));
    }

    #[test]
    fn idle_expiry_and_touch_extends() {
        let s = store();
        let t0 = Instant::now();
        let token = s.create(info("a"), t0);
        assert!(valid(&s.touch(&token, t0 + 19 * MIN)));
        // Touched at 19 min: still valid at 38 min, 19 min after last use.
        assert!(valid(&s.touch(&token, t0 + 38 * MIN)));
        // 20 min without use: gone, and stays gone.
        assert!(matches!(s.touch(&token, t0 + 58 * MIN), Lookup::Expired(_)));
        assert!(matches!(s.touch(&token, t0 + 58 * MIN), Lookup::Missing));
    }

    #[test]
    fn absolute_expiry_despite_activity() {
        let s = store();
        let t0 = Instant::now();
        let token = s.create(info("a"), t0);
        let mut t = t0;
        while t + 10 * MIN < t0 + 12 * 60 * MIN {
            t += 10 * MIN;
            assert!(valid(&s.touch(&token, t)), "at {:?}", t - t0);
        }
        assert!(matches!(
            s.touch(&token, t0 + 12 * 60 * MIN),
            Lookup::Expired(_)
        ));
    }

    #[test]
    fn logout_and_disable_remove_sessions() {
        let s = store();
        let t0 = Instant::now();
        let a1 = s.create(info("a"), t0);
        let a2 = s.create(info("a"), t0);
        let b = s.create(info("b"), t0);
        assert_eq!(s.remove(&a1).unwrap().clinician.as_str(), "a");
        assert!(matches!(s.touch(&a1, t0), Lookup::Missing));
        assert!(s.remove(&a1).is_none());
        assert_eq!(s.remove_clinician(&ClinicianId::new("a").unwrap()), 1);
        assert!(matches!(s.touch(&a2, t0), Lookup::Missing));
        assert!(valid(&s.touch(&b, t0)));
    }

    #[test]
    fn unknown_and_oversized_tokens_are_missing() {
        let s = store();
        assert!(matches!(s.touch("", Instant::now()), Lookup::Missing));
        assert!(matches!(
            s.touch(&"x".repeat(10_000), Instant::now()),
            Lookup::Missing
        ));
        assert!(matches!(s.touch("nope", Instant::now()), Lookup::Missing));
    }

    #[test]
    fn per_clinician_cap_drops_least_recently_used() {
        let s = store();
        let t0 = Instant::now();
        let tokens: Vec<String> = (0..4u64)
            .map(|i| s.create(info("a"), t0 + Duration::from_secs(i)))
            .collect();
        // Use the first one so the second becomes least recently used.
        assert!(valid(&s.touch(&tokens[0], t0 + Duration::from_secs(10))));
        let newest = s.create(info("a"), t0 + Duration::from_secs(11));
        assert_eq!(s.len(), 4);
        assert!(matches!(
            s.touch(&tokens[1], t0 + Duration::from_secs(12)),
            Lookup::Missing
        ));
        assert!(valid(&s.touch(&tokens[0], t0 + Duration::from_secs(12))));
        assert!(valid(&s.touch(&newest, t0 + Duration::from_secs(12))));
    }

    #[test]
    fn sweep_removes_only_expired() {
        let s = store();
        let t0 = Instant::now();
        let _old = s.create(info("a"), t0);
        let fresh = s.create(info("b"), t0 + 15 * MIN);
        let gone = s.sweep(t0 + 21 * MIN);
        assert_eq!(gone.len(), 1);
        assert_eq!(gone[0].clinician.as_str(), "a");
        assert!(valid(&s.touch(&fresh, t0 + 21 * MIN)));
    }
}
