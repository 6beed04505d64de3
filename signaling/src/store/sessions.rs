//! Clinician sessions behind [`SessionBackend`]: the in-memory table
//! (`auth::sessions::SessionStore`, the default) and [`RedisSessions`]
//! (shared by all signaling nodes), with one contract suite run on both.
//!
//! [`crate::auth::Auth`] holds an `Arc<dyn SessionBackend>`
//! ([`crate::store::backends::Backends::sessions`]); a Redis error reaches
//! its callers as [`Error::Redis`] (HTTP 503).

use std::fmt;
use std::time::Instant;

use protocol::ClinicianId;

pub use super::sessions_redis::RedisSessions;
use crate::Error;
use crate::auth::SessionInfo;
use crate::auth::sessions::{Lookup as MemoryLookup, SessionStore};

/// What a session lookup found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// A live session (now touched).
    Valid(SessionInfo),
    /// A session that had expired; it is now removed.
    Expired(SessionInfo),
    /// No such session.
    Missing,
}

impl From<MemoryLookup> for Lookup {
    fn from(l: MemoryLookup) -> Self {
        match l {
            MemoryLookup::Valid(i) => Self::Valid(i),
            MemoryLookup::Expired(i) => Self::Expired(i),
            MemoryLookup::Missing => Self::Missing,
        }
    }
}

/// Where clinician sessions live. Tokens are never stored: only their
/// SHA-256. Time is an argument, as everywhere in signaling.
pub trait SessionBackend: Send + Sync + fmt::Debug {
    /// Opens a session and returns its token (256 random bits, base64url).
    /// The account's least recently used session goes if it already has
    /// the maximum number.
    fn create(&self, info: SessionInfo, now: Instant) -> Result<String, Error>;

    /// Validates `token`; a live session's idle deadline moves to `now + idle`.
    /// An idle or too old session is removed and reported `Expired`.
    fn touch(&self, token: &str, now: Instant) -> Result<Lookup, Error>;

    /// Ends one session (logout), returning whose it was.
    fn remove(&self, token: &str) -> Result<Option<SessionInfo>, Error>;

    /// Ends every session of `clinician` (account disabled); returns how many.
    fn remove_clinician(&self, clinician: &ClinicianId) -> Result<usize, Error>;

    /// The live session of `token`, without touching it (a check, not a use).
    fn peek(&self, token: &str, now: Instant) -> Result<Option<SessionInfo>, Error>;

    /// Removes every session that has expired by `now` and returns their
    /// owners, each exactly once across all nodes sharing the store (for
    /// the `session_expired` audit line).
    fn sweep(&self, now: Instant) -> Result<Vec<SessionInfo>, Error>;

    /// Whether operations may wait on the network (Redis): async callers
    /// then move them off the tokio worker. Memory answers at once.
    fn blocks(&self) -> bool {
        false
    }
}

impl SessionBackend for SessionStore {
    fn create(&self, info: SessionInfo, now: Instant) -> Result<String, Error> {
        Ok(SessionStore::create(self, info, now))
    }
    fn touch(&self, token: &str, now: Instant) -> Result<Lookup, Error> {
        Ok(SessionStore::touch(self, token, now).into())
    }
    fn remove(&self, token: &str) -> Result<Option<SessionInfo>, Error> {
        Ok(SessionStore::remove(self, token))
    }
    fn remove_clinician(&self, clinician: &ClinicianId) -> Result<usize, Error> {
        Ok(SessionStore::remove_clinician(self, clinician))
    }
    fn peek(&self, token: &str, now: Instant) -> Result<Option<SessionInfo>, Error> {
        Ok(SessionStore::peek(self, token, now))
    }
    fn sweep(&self, now: Instant) -> Result<Vec<SessionInfo>, Error> {
        Ok(SessionStore::sweep(self, now))
    }
}

#[cfg(test)]
mod contract {
    //! The contract every session backend keeps, run on memory and Redis.

    use std::time::Duration;

    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use protocol::TenantId;

    use super::*;
    use crate::auth::StaffRole;
    use crate::store::RedisHandle;
    use crate::store::redis_server::RedisServer;

    const MIN: Duration = Duration::from_secs(60);
    const IDLE: Duration = Duration::from_secs(20 * 60);
    const MAX_AGE: Duration = Duration::from_secs(12 * 3600);

    fn info(id: &str) -> SessionInfo {
        SessionInfo {
            clinician: ClinicianId::new(id).unwrap(),
            tenant: TenantId::new("t").unwrap(),
            role: StaffRole::Admin,
            display_name: "Dr X".into(),
        }
    }

    fn valid(l: &Lookup) -> bool {
        matches!(l, Lookup::Valid(_))
    }

    /// Runs every clause on fresh backends made by `make` (idle 20 min,
    /// absolute 12 h, at most 4 sessions per clinician).
    fn contract(make: &dyn Fn() -> Box<dyn SessionBackend>) {
        let t0 = Instant::now();

        // Tokens: 256 random bits; the session comes back as it was made.
        let s = make();
        let token = s.create(info("a"), t0).unwrap();
        assert_eq!(URL_SAFE_NO_PAD.decode(&token).unwrap().len(), 32);
        assert_ne!(token, s.create(info("a"), t0).unwrap());
        match s.touch(&token, t0).unwrap() {
            Lookup::Valid(i) => assert_eq!(i, info("a")),
            other => panic!("{other:?}"),
        }

        // Idle expiry; each touch extends it.
        let s = make();
        let token = s.create(info("a"), t0).unwrap();
        assert!(valid(&s.touch(&token, t0 + 19 * MIN).unwrap()));
        assert!(valid(&s.touch(&token, t0 + 38 * MIN).unwrap()));
        assert!(matches!(
            s.touch(&token, t0 + 58 * MIN).unwrap(),
            Lookup::Expired(_)
        ));
        assert!(matches!(
            s.touch(&token, t0 + 58 * MIN).unwrap(),
            Lookup::Missing
        ));

        // Absolute expiry despite activity.
        let s = make();
        let token = s.create(info("a"), t0).unwrap();
        let mut t = t0;
        while t + 10 * MIN < t0 + MAX_AGE {
            t += 10 * MIN;
            assert!(valid(&s.touch(&token, t).unwrap()), "at {:?}", t - t0);
        }
        assert!(matches!(
            s.touch(&token, t0 + MAX_AGE).unwrap(),
            Lookup::Expired(_)
        ));

        // Logout (revoke) and revoke-all-for-clinician.
        let s = make();
        let a1 = s.create(info("a"), t0).unwrap();
        let a2 = s.create(info("a"), t0).unwrap();
        let b = s.create(info("b"), t0).unwrap();
        assert_eq!(s.remove(&a1).unwrap().unwrap().clinician.as_str(), "a");
        assert!(matches!(s.touch(&a1, t0).unwrap(), Lookup::Missing));
        assert!(s.remove(&a1).unwrap().is_none());
        assert_eq!(
            s.remove_clinician(&ClinicianId::new("a").unwrap()).unwrap(),
            1
        );
        assert!(matches!(s.touch(&a2, t0).unwrap(), Lookup::Missing));
        assert!(valid(&s.touch(&b, t0).unwrap()));

        // Unknown, empty and oversized tokens are simply missing.
        for bad in [String::new(), "nope".into(), "x".repeat(10_000)] {
            assert!(matches!(s.touch(&bad, t0).unwrap(), Lookup::Missing));
        }

        // Peek sees a live session without extending it.
        let s = make();
        let token = s.create(info("a"), t0).unwrap();
        assert_eq!(s.peek(&token, t0 + 19 * MIN).unwrap(), Some(info("a")));
        assert_eq!(s.peek(&token, t0 + 20 * MIN).unwrap(), None, "not touched");
        assert_eq!(s.peek("nope", t0).unwrap(), None);

        // Sweep removes the expired ones only, and reports each once.
        let s = make();
        let _old = s.create(info("a"), t0).unwrap();
        let fresh = s.create(info("b"), t0 + 15 * MIN).unwrap();
        let gone = s.sweep(t0 + 21 * MIN).unwrap();
        assert_eq!(gone, vec![info("a")]);
        assert!(s.sweep(t0 + 21 * MIN).unwrap().is_empty());
        assert!(valid(&s.touch(&fresh, t0 + 21 * MIN).unwrap()));
        // A touched session's new deadline is the one the sweep uses.
        assert!(s.sweep(t0 + 40 * MIN).unwrap().is_empty());
        assert_eq!(s.sweep(t0 + 41 * MIN).unwrap(), vec![info("b")]);

        // At most 4 per clinician: the least recently used goes.
        let s = make();
        let tokens: Vec<String> = (0..4u64)
            .map(|i| s.create(info("a"), t0 + Duration::from_secs(i)).unwrap())
            .collect();
        assert!(valid(
            &s.touch(&tokens[0], t0 + Duration::from_secs(10)).unwrap()
        ));
        let newest = s.create(info("a"), t0 + Duration::from_secs(11)).unwrap();
        let at = t0 + Duration::from_secs(12);
        assert!(matches!(s.touch(&tokens[1], at).unwrap(), Lookup::Missing));
        for kept in [&tokens[0], &tokens[2], &tokens[3], &newest] {
            assert!(valid(&s.touch(kept, at).unwrap()));
        }
    }

    #[test]
    fn the_memory_session_store_keeps_the_contract() {
        contract(&|| Box::new(SessionStore::new(IDLE, MAX_AGE, 4)));
    }

    #[test]
    fn the_redis_session_store_keeps_the_contract() {
        let server = RedisServer::start().expect("a private redis-server");
        let n = std::sync::atomic::AtomicU64::new(0);
        contract(&|| {
            let prefix = format!("t{}", n.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
            let handle = RedisHandle::with_prefix(&server.url(), &prefix).unwrap();
            Box::new(RedisSessions::new(handle, IDLE, MAX_AGE, 4))
        });
    }

    #[test]
    fn redis_sessions_are_shared_between_nodes_and_hold_no_token() {
        let server = RedisServer::start().expect("a private redis-server");
        let node_a = RedisSessions::new(RedisHandle::new(&server.url()).unwrap(), IDLE, MAX_AGE, 4);
        let node_b = RedisSessions::new(RedisHandle::new(&server.url()).unwrap(), IDLE, MAX_AGE, 4);
        let t0 = Instant::now();
        let token = node_a.create(info("a"), t0).unwrap();
        assert!(valid(&node_b.touch(&token, t0 + MIN).unwrap()));
        // Every key and value in Redis: no token anywhere.
        let client = redis::Client::open(server.url()).unwrap();
        let mut c = client.get_connection().unwrap();
        let keys: Vec<String> = redis::cmd("KEYS").arg("*").query(&mut c).unwrap();
        assert!(!keys.is_empty());
        for k in keys {
            assert!(!k.contains(&token));
            let kind: String = redis::cmd("TYPE").arg(&k).query(&mut c).unwrap();
            if kind == "hash" {
                let h: Vec<String> = redis::cmd("HGETALL").arg(&k).query(&mut c).unwrap();
                assert!(h.iter().all(|v| !v.contains(&token)));
                let ttl: i64 = redis::cmd("PTTL").arg(&k).query(&mut c).unwrap();
                assert!(ttl > 0, "session keys expire by themselves");
            }
        }
        assert!(node_b.remove(&token).unwrap().is_some());
        assert!(matches!(
            node_a.touch(&token, t0 + MIN).unwrap(),
            Lookup::Missing
        ));
    }
}
