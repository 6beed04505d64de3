//! Tests of the login throttle on virtual time.

use super::*;

const S: Duration = Duration::from_secs(1);

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// Fails one attempt (begin without success); panics if throttled.
fn fail(t: &mut Throttle, user: &str, src: &str, now: Instant) {
    t.begin(user, ip(src), now)
        .unwrap_or_else(|w| panic!("throttled for {w:?}"));
}

#[test]
fn backoff_starts_after_five_failures_doubles_and_is_capped() {
    let mut t = Throttle::new(ThrottlePolicy::default());
    let t0 = Instant::now();
    for _ in 0..5 {
        fail(&mut t, "lee", "10.0.0.1", t0);
    }
    // Sixth attempt: 1 s after the fifth failure.
    assert_eq!(t.begin("lee", ip("10.0.0.1"), t0).unwrap_err(), S);
    let mut now = t0;
    let mut expected = Vec::new();
    for _ in 0..8 {
        let wait = t.begin("lee", ip("10.0.0.1"), now).unwrap_err();
        expected.push(wait.as_secs());
        now += wait;
        fail(&mut t, "lee", "10.0.0.1", now);
    }
    assert_eq!(expected, [1, 2, 4, 8, 16, 32, 60, 60]);
}

#[test]
fn backoff_is_per_source_and_success_clears_it() {
    let mut t = Throttle::new(ThrottlePolicy::default());
    let t0 = Instant::now();
    for _ in 0..8 {
        let _ = t.begin("lee", ip("10.0.0.1"), t0);
    }
    assert!(t.begin("lee", ip("10.0.0.1"), t0).is_err());
    // Another address is not slowed by the first one's failures.
    let ok = t.begin("lee", ip("10.0.0.2"), t0).unwrap();
    t.succeeded(&ok, t0);
    // After waiting, a success from the first address clears its back-off.
    let later = t0 + 10 * S;
    let ok = t.begin("lee", ip("10.0.0.1"), later).unwrap();
    t.succeeded(&ok, later);
    for _ in 0..5 {
        fail(&mut t, "lee", "10.0.0.1", later);
    }
}

#[test]
fn per_address_hourly_cap_across_usernames() {
    let mut t = Throttle::new(ThrottlePolicy::default());
    let t0 = Instant::now();
    for i in 0..100u32 {
        fail(&mut t, &format!("user{i}"), "10.0.0.9", t0 + i * S);
    }
    let wait = t.begin("fresh", ip("10.0.0.9"), t0 + 100 * S).unwrap_err();
    // Until the first failure (at t0) leaves the one-hour window.
    assert_eq!(wait, Duration::from_secs(3600 - 100));
    assert!(t.begin("fresh", ip("10.0.0.9"), t0 + 3600 * S).is_ok());
    // Other addresses are unaffected.
    assert!(t.begin("fresh", ip("10.0.0.10"), t0 + 100 * S).is_ok());
}

#[test]
fn per_account_cap_with_a_reserve_for_known_sources() {
    let mut t = Throttle::new(ThrottlePolicy::default());
    let t0 = Instant::now();
    // The clinician logged in from their usual address last week.
    let ok = t.begin("lee", ip("192.0.2.7"), t0).unwrap();
    t.succeeded(&ok, t0);
    let now = t0 + 7 * 24 * 3600 * S;
    // A distributed attacker: 80 addresses, one guess each.
    for i in 0..80 {
        fail(&mut t, "lee", &format!("198.51.100.{i}"), now);
    }
    // New addresses are now refused for this account (and only this account)...
    assert!(t.begin("lee", ip("203.0.113.1"), now).is_err());
    assert!(t.begin("other", ip("203.0.113.1"), now).is_ok());
    // ...but the clinician's known address still gets in.
    let ok = t.begin("lee", ip("192.0.2.7"), now).unwrap();
    t.succeeded(&ok, now);
    // The known address has the remaining 20 failures, then the hard cap holds.
    for _ in 0..5 {
        fail(&mut t, "lee", "192.0.2.7", now);
    }
    let mut at = now;
    for _ in 0..15 {
        at += Duration::from_secs(60);
        fail(&mut t, "lee", "192.0.2.7", at);
    }
    let wait = t.begin("lee", ip("192.0.2.7"), at + 60 * S).unwrap_err();
    // Hard cap: wait until the burst at `now` leaves the window.
    assert_eq!(wait, Duration::from_secs(3600 - 960));
    // An hour after the burst everything is open again.
    assert!(t.begin("lee", ip("203.0.113.1"), now + 3600 * S).is_ok());
}

#[test]
fn attacker_elsewhere_cannot_lock_out_the_clinician_beyond_the_cap() {
    let mut t = Throttle::new(ThrottlePolicy::default());
    let t0 = Instant::now();
    let ok = t.begin("lee", ip("192.0.2.7"), t0).unwrap();
    t.succeeded(&ok, t0);
    // One attacker address hammering as fast as it is allowed for an hour.
    let mut now = t0;
    let mut refused = 0;
    while now < t0 + 3600 * S {
        match t.begin("lee", ip("198.51.100.1"), now) {
            Ok(_) => {}
            Err(w) => {
                refused += 1;
                now += w;
                continue;
            }
        }
        // The clinician, between the attacker's attempts, is never throttled.
        let ok = t.begin("lee", ip("192.0.2.7"), now).unwrap();
        t.succeeded(&ok, now);
        now += S;
    }
    assert!(refused > 0);
}

#[test]
fn concurrent_attempts_cannot_overrun_the_cap() {
    let policy = ThrottlePolicy {
        free_failures: 1000,
        ..ThrottlePolicy::default()
    };
    let mut t = Throttle::new(policy);
    let t0 = Instant::now();
    // 150 attempts in flight at once (none has finished): only 100 pass.
    let passed = (0..150)
        .filter(|i| t.begin(&format!("u{i}"), ip("10.1.1.1"), t0).is_ok())
        .count();
    assert_eq!(passed, 100);
}

#[test]
fn unknown_and_known_usernames_are_throttled_alike() {
    let mut t = Throttle::new(ThrottlePolicy::default());
    let t0 = Instant::now();
    let mut waits = Vec::new();
    for user in ["lee", "nobody-here"] {
        for i in 0..80 {
            fail(&mut t, user, &format!("198.51.100.{i}"), t0);
        }
        waits.push(t.begin(user, ip("203.0.113.5"), t0).unwrap_err());
    }
    assert_eq!(waits[0], waits[1]);
}

#[test]
fn ipv6_sources_are_grouped_by_slash_64() {
    let mut t = Throttle::new(ThrottlePolicy::default());
    let t0 = Instant::now();
    for i in 0..100 {
        fail(
            &mut t,
            &format!("u{i}"),
            &format!("2001:db8:1:2::{i:x}"),
            t0,
        );
    }
    assert!(t.begin("x", ip("2001:db8:1:2:ffff::1"), t0).is_err());
    assert!(t.begin("x", ip("2001:db8:1:3::1"), t0).is_ok());
    assert_eq!(source_key(ip("::ffff:10.0.0.1")), ip("10.0.0.1"));
}

#[test]
fn old_entries_are_pruned() {
    let mut t = Throttle::new(ThrottlePolicy::default());
    let t0 = Instant::now();
    for i in 0..50 {
        fail(&mut t, &format!("u{i}"), &format!("10.0.{i}.1"), t0);
    }
    assert_eq!(t.entries(), 150);
    let later = t0 + 3601 * S;
    fail(&mut t, "late", "10.9.9.9", later);
    assert_eq!(t.entries(), 3);
}

#[test]
fn memory_is_bounded_under_a_flood() {
    let policy = ThrottlePolicy {
        max_entries: 100,
        ..ThrottlePolicy::default()
    };
    let mut t = Throttle::new(policy);
    let t0 = Instant::now();
    for i in 0..5000u32 {
        let a = i.to_be_bytes();
        let src = format!("10.{}.{}.{}", a[1], a[2], a[3]);
        let _ = t.begin(
            &format!("u{i}"),
            ip(&src),
            t0 + Duration::from_millis(u64::from(i)),
        );
        assert!(t.entries() <= 3 * 100 + 1, "{} entries", t.entries());
    }
}
