//! Invite links: single-use, expiring secrets that let someone outside the
//! patient flow (an interpreter, a family member, a colleague) wait to be
//! admitted into an existing call.
//!
//! A token is 256 random bits (base64url); only its SHA-256 is kept, so a
//! memory dump does not reveal usable links. A token is not a session token:
//! it only gets its holder a seat in the call's waiting room, and a clinician
//! still has to admit them. Redeeming removes it; expired ones are purged
//! whenever a new invite is made.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use protocol::{RoomId, TenantId};

use crate::lobby::seat::{TokenHash, hash_token, new_token};

/// What an invite leads to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invite {
    /// The call the invitee joins when admitted.
    pub call: RoomId,
    /// The call's organisation.
    pub tenant: TenantId,
    /// The waiting room the invitee waits in.
    pub room: RoomId,
    /// When the invite stops working.
    pub expires_at: Instant,
}

/// The live invites, by token hash.
#[derive(Debug, Default)]
pub struct Invites {
    by_hash: HashMap<TokenHash, Invite>,
}

impl Invites {
    /// Makes an invite valid for `ttl`; returns the token (shown once).
    pub fn create(
        &mut self,
        invite_for: (RoomId, TenantId, RoomId),
        ttl: Duration,
        now: Instant,
    ) -> String {
        self.by_hash.retain(|_, i| i.expires_at > now);
        let (call, tenant, room) = invite_for;
        let (token, hash) = new_token();
        self.by_hash.insert(
            hash,
            Invite {
                call,
                tenant,
                room,
                expires_at: now + ttl,
            },
        );
        token
    }

    /// Uses up the invite of `token`, if it exists and has not expired.
    pub fn redeem(&mut self, token: &str, now: Instant) -> Option<Invite> {
        if token.is_empty() || token.len() > 128 {
            return None;
        }
        let invite = self.by_hash.remove(&hash_token(token))?;
        (invite.expires_at > now).then_some(invite)
    }

    /// Forgets every invite to `call` (it ended).
    pub fn revoke_call(&mut self, call: &RoomId) {
        self.by_hash.retain(|_, i| &i.call != call);
    }

    /// How many invites are stored (expired ones until the next purge).
    pub fn len(&self) -> usize {
        self.by_hash.len()
    }

    /// Whether no invite is stored.
    pub fn is_empty(&self) -> bool {
        self.by_hash.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target() -> (RoomId, TenantId, RoomId) {
        (
            RoomId::new("c-1").unwrap(),
            TenantId::new("t").unwrap(),
            RoomId::new("gp").unwrap(),
        )
    }

    #[test]
    fn an_invite_works_once_and_only_before_it_expires() {
        let now = Instant::now();
        let mut inv = Invites::default();
        let ttl = Duration::from_secs(900);
        let token = inv.create(target(), ttl, now);
        assert!(token.len() >= 43, "256 bits");
        assert!(inv.redeem("not-the-token", now).is_none());
        let got = inv.redeem(&token, now + Duration::from_secs(899)).unwrap();
        assert_eq!(got.call.as_str(), "c-1");
        assert!(inv.redeem(&token, now).is_none(), "single use");

        let late = inv.create(target(), ttl, now);
        assert!(inv.redeem(&late, now + ttl).is_none(), "expired");

        let revoked = inv.create(target(), ttl, now);
        inv.revoke_call(&RoomId::new("c-1").unwrap());
        assert!(inv.redeem(&revoked, now).is_none());
    }

    #[test]
    fn expired_invites_are_purged_and_tokens_are_not_stored() {
        let now = Instant::now();
        let mut inv = Invites::default();
        let token = inv.create(target(), Duration::from_secs(1), now);
        assert!(!format!("{:?}", inv.by_hash).contains(&token));
        inv.create(
            target(),
            Duration::from_secs(1),
            now + Duration::from_secs(2),
        );
        assert_eq!(inv.len(), 1);
    }
}
