//! Failed-login throttling (see `docs/accounts.md`, "Login throttling").
//!
//! Three counters, all over a sliding window (default one hour):
//!
//! - **per (username, source)**: the first 5 failures are free, then each new
//!   attempt must wait 1 s, 2 s, 4 s, … after the previous failure, capped at
//!   60 s. A success from that source clears it. This is the back-off, and it
//!   only slows the source that is failing.
//! - **per source address** (IPv6 grouped by /64): at most 100 failures per window.
//! - **per username**: at most 100 failures per window, the hard limit. Sources
//!   that have not logged in to this account successfully in the last 30 days
//!   may use only 80 of them; 20 are reserved for the account's known sources,
//!   so an attacker elsewhere cannot lock the clinician out of their usual place.
//!
//! Every attempt is counted as a failure *before* the password is checked and
//! uncounted on success, so concurrent requests cannot overrun a limit.
//! Unknown usernames are throttled exactly like known ones (keyed by a hash of
//! the normalised username) so throttling reveals nothing about which exist.
//! Memory is bounded: old entries are pruned, and past `max_entries` per table
//! the least recently active entries are evicted.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::net::{IpAddr, Ipv6Addr};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

/// Tunables of the throttle. `Default` is the documented production policy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ThrottlePolicy {
    /// Length of the sliding window of every counter.
    pub window: Duration,
    /// Failures per (username, source) before back-off starts.
    pub free_failures: u32,
    /// First back-off delay; doubles with each further failure.
    pub base_delay: Duration,
    /// Longest back-off delay.
    pub max_delay: Duration,
    /// Hard limit of failures per username per window.
    pub max_failures_per_account: usize,
    /// Part of `max_failures_per_account` only known sources may use.
    pub reserved_for_known_sources: usize,
    /// Hard limit of failures per source address per window.
    pub max_failures_per_address: usize,
    /// How long a successful login makes its source "known" to the account.
    pub known_source_ttl: Duration,
    /// Known sources remembered per account (most recent kept).
    pub known_sources_per_account: usize,
    /// Entries per table before the least recently active are evicted.
    pub max_entries: usize,
}

impl Default for ThrottlePolicy {
    fn default() -> Self {
        Self {
            window: Duration::from_secs(3600),
            free_failures: 5,
            base_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(60),
            max_failures_per_account: 100,
            reserved_for_known_sources: 20,
            max_failures_per_address: 100,
            known_source_ttl: Duration::from_secs(30 * 24 * 3600),
            known_sources_per_account: 8,
            max_entries: 20_000,
        }
    }
}

/// SHA-256 of the normalised username (so mistyped passwords in the
/// username field are not kept in memory).
type UserKey = [u8; 32];

#[derive(Debug, Clone, Copy)]
struct PairState {
    failures: u32,
    last: Instant,
}

/// A login attempt that passed the throttle and is provisionally counted as
/// a failure; hand it back to [`Throttle::succeeded`] if the password matched.
#[derive(Debug)]
pub(crate) struct Attempt {
    user: UserKey,
    source: IpAddr,
    at: Instant,
}

/// The throttle state. Not thread-safe by itself: `Auth` keeps it in a mutex.
#[derive(Debug, Default)]
pub(crate) struct Throttle {
    policy: ThrottlePolicy,
    pairs: HashMap<(UserKey, IpAddr), PairState>,
    accounts: HashMap<UserKey, VecDeque<Instant>>,
    addresses: HashMap<IpAddr, VecDeque<Instant>>,
    known: HashMap<UserKey, Vec<(IpAddr, Instant)>>,
    last_prune: Option<Instant>,
}

impl Throttle {
    pub(crate) fn new(policy: ThrottlePolicy) -> Self {
        Self {
            policy,
            ..Self::default()
        }
    }

    /// Admits an attempt by `username` (already normalised) from `source`,
    /// counting it as a failure, or returns how long to wait.
    pub(crate) fn begin(
        &mut self,
        username: &str,
        source: IpAddr,
        now: Instant,
    ) -> Result<Attempt, Duration> {
        self.maybe_prune(now);
        let user = user_key(username);
        let source = source_key(source);
        let p = &self.policy;
        let mut wait = Duration::ZERO;

        if let Some(pair) = self.pairs.get(&(user, source))
            && now.saturating_duration_since(pair.last) < p.window
            && pair.failures >= p.free_failures
        {
            let delay = backoff(p, pair.failures - p.free_failures);
            wait = wait.max((pair.last + delay).saturating_duration_since(now));
        }
        if let Some(q) = self.addresses.get_mut(&source) {
            wait = wait.max(window_wait(q, p.max_failures_per_address, p.window, now));
        }
        let known = self.known.get(&user).is_some_and(|list| {
            list.iter().any(|(ip, at)| {
                *ip == source && now.saturating_duration_since(*at) < p.known_source_ttl
            })
        });
        let account_limit = if known {
            p.max_failures_per_account
        } else {
            p.max_failures_per_account
                .saturating_sub(p.reserved_for_known_sources)
        };
        if let Some(q) = self.accounts.get_mut(&user) {
            wait = wait.max(window_wait(q, account_limit, p.window, now));
        }
        if account_limit == 0 || p.max_failures_per_address == 0 {
            wait = wait.max(p.window);
        }
        if !wait.is_zero() {
            return Err(wait);
        }

        let window = p.window;
        let pair = self.pairs.entry((user, source)).or_insert(PairState {
            failures: 0,
            last: now,
        });
        if now.saturating_duration_since(pair.last) >= window {
            pair.failures = 0;
        }
        pair.failures = pair.failures.saturating_add(1);
        pair.last = now;
        self.addresses.entry(source).or_default().push_back(now);
        self.accounts.entry(user).or_default().push_back(now);
        Ok(Attempt {
            user,
            source,
            at: now,
        })
    }

    /// The attempt's password matched: uncount it, clear the source's
    /// back-off and remember the source as known to the account.
    pub(crate) fn succeeded(&mut self, attempt: &Attempt, now: Instant) {
        self.pairs.remove(&(attempt.user, attempt.source));
        for q in [
            self.accounts.get_mut(&attempt.user),
            self.addresses.get_mut(&attempt.source),
        ]
        .into_iter()
        .flatten()
        {
            if let Some(i) = q.iter().rposition(|t| *t == attempt.at) {
                q.remove(i);
            }
        }
        let cap = self.policy.known_sources_per_account.max(1);
        let list = self.known.entry(attempt.user).or_default();
        list.retain(|(ip, _)| *ip != attempt.source);
        list.push((attempt.source, now));
        if list.len() > cap {
            list.sort_by_key(|(_, at)| std::cmp::Reverse(*at));
            list.truncate(cap);
        }
    }

    /// Entries in all tables.
    #[cfg(test)]
    pub(crate) fn entries(&self) -> usize {
        self.pairs.len() + self.accounts.len() + self.addresses.len() + self.known.len()
    }

    fn maybe_prune(&mut self, now: Instant) {
        let max = self.policy.max_entries.max(1);
        let due = self
            .last_prune
            .is_none_or(|t| now.saturating_duration_since(t) >= Duration::from_secs(60));
        let full = self.pairs.len() >= max
            || self.accounts.len() >= max
            || self.addresses.len() >= max
            || self.known.len() >= max;
        if !due && !full {
            return;
        }
        self.last_prune = Some(now);
        let window = self.policy.window;
        let ttl = self.policy.known_source_ttl;
        let fresh = |t: Instant| now.saturating_duration_since(t) < window;
        self.pairs.retain(|_, s| fresh(s.last));
        for q in self
            .accounts
            .values_mut()
            .chain(self.addresses.values_mut())
        {
            while q.front().is_some_and(|t| !fresh(*t)) {
                q.pop_front();
            }
        }
        self.accounts.retain(|_, q| !q.is_empty());
        self.addresses.retain(|_, q| !q.is_empty());
        for list in self.known.values_mut() {
            list.retain(|(_, at)| now.saturating_duration_since(*at) < ttl);
        }
        self.known.retain(|_, l| !l.is_empty());

        // Still full: evict the least recently active tenth.
        let keep = max - max / 10 - 1;
        evict(&mut self.pairs, keep, |s| s.last);
        evict(&mut self.accounts, keep, |q| {
            q.back().copied().unwrap_or(now)
        });
        evict(&mut self.addresses, keep, |q| {
            q.back().copied().unwrap_or(now)
        });
        evict(&mut self.known, keep, |l| {
            l.iter().map(|(_, at)| *at).max().unwrap_or(now)
        });
    }
}

/// Drops the least recently active entries of `map` until `keep` remain.
fn evict<K: Eq + Hash + Clone, V>(
    map: &mut HashMap<K, V>,
    keep: usize,
    last_active: impl Fn(&V) -> Instant,
) {
    if map.len() <= keep {
        return;
    }
    let mut by_age: Vec<(Instant, K)> = map
        .iter()
        .map(|(k, v)| (last_active(v), k.clone()))
        .collect();
    by_age.sort_by_key(|(t, _)| *t);
    let excess = map.len() - keep;
    for (_, k) in by_age.into_iter().take(excess) {
        map.remove(&k);
    }
}

/// Back-off after `over` failures beyond the free ones: base · 2^over, capped.
fn backoff(p: &ThrottlePolicy, over: u32) -> Duration {
    let factor = 1u32.checked_shl(over.min(31)).unwrap_or(u32::MAX);
    p.base_delay.saturating_mul(factor).min(p.max_delay)
}

/// Drops entries older than `window` from `q`; if `limit` or more remain,
/// returns how long until one fewer than `limit` remain.
fn window_wait(
    q: &mut VecDeque<Instant>,
    limit: usize,
    window: Duration,
    now: Instant,
) -> Duration {
    while q
        .front()
        .is_some_and(|t| now.saturating_duration_since(*t) >= window)
    {
        q.pop_front();
    }
    if limit == 0 || q.len() < limit {
        return Duration::ZERO;
    }
    q.get(q.len() - limit)
        .map_or(window, |t| (*t + window).saturating_duration_since(now))
}

fn user_key(username: &str) -> UserKey {
    Sha256::digest(username.as_bytes()).into()
}

/// The address a source is counted under: IPv4 (also when IPv4-mapped), or
/// the /64 prefix of an IPv6 address (one subscriber usually holds a whole /64).
pub(crate) fn source_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return IpAddr::V4(v4);
            }
            let s = v6.segments();
            IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
        }
    }
}

#[cfg(test)]
mod tests;
