//! The `LeaseStore` contract on memory and Redis (virtual time: expiry is
//! decided against the `now` given), and what a Redis outage looks like to
//! the stores: a clear error, no panic, and recovery once Redis is back.

use std::time::{Duration, Instant};

use protocol::{ClinicianId, NodeId, TenantId};
use signaling::auth::{SessionInfo, StaffRole};
use signaling::store::RedisHandle;
use signaling::store::lease::{LeaseStore, MemoryLeases, RedisLeases};
use signaling::store::redis_server::RedisServer;
use signaling::store::seats::{RedisSeats, SeatStore};
use signaling::store::sessions::{Lookup, RedisSessions, SessionBackend};

const TTL: Duration = Duration::from_secs(10);

fn n(s: &str) -> NodeId {
    NodeId::new(s).unwrap()
}

fn contract(l: &dyn LeaseStore) {
    let t0 = Instant::now();
    let (a, b) = (n("sig-a"), n("sig-b"));
    assert_eq!(l.holder("tenant:acme", t0).unwrap(), None);
    let first = l
        .acquire("tenant:acme", &a, TTL, t0)
        .unwrap()
        .expect("free");
    assert_eq!(l.holder("tenant:acme", t0).unwrap(), Some(a.clone()));
    assert_eq!(
        l.acquire("tenant:acme", &b, TTL, t0).unwrap(),
        None,
        "held by A"
    );
    assert!(
        l.acquire("tenant:other", &b, TTL, t0).unwrap().is_some(),
        "leases are independent"
    );

    // Renewing keeps the token and moves the deadline.
    let t1 = t0 + Duration::from_secs(8);
    assert_eq!(l.acquire("tenant:acme", &a, TTL, t1).unwrap(), Some(first));
    let t2 = t0 + Duration::from_secs(15);
    assert_eq!(
        l.acquire("tenant:acme", &b, TTL, t2).unwrap(),
        None,
        "renewed at 8 s"
    );

    // A lapses: B takes over with a larger fencing token; A cannot renew.
    let t3 = t1 + TTL;
    assert_eq!(l.holder("tenant:acme", t3).unwrap(), None);
    let second = l
        .acquire("tenant:acme", &b, TTL, t3)
        .unwrap()
        .expect("lapsed");
    assert!(second > first);
    assert_eq!(l.acquire("tenant:acme", &a, TTL, t3).unwrap(), None);

    // Only the holder releases; then the next owner gets a larger token again.
    assert!(!l.release("tenant:acme", &a).unwrap());
    assert!(l.release("tenant:acme", &b).unwrap());
    assert_eq!(l.holder("tenant:acme", t3).unwrap(), None);
    let third = l
        .acquire("tenant:acme", &a, TTL, t3)
        .unwrap()
        .expect("released");
    assert!(third > second);
}

#[test]
fn the_memory_lease_store_keeps_the_contract() {
    contract(&MemoryLeases::new());
}

#[test]
fn the_redis_lease_store_keeps_the_contract() {
    let server = RedisServer::start().expect("a private redis-server");
    contract(&RedisLeases::new(RedisHandle::new(&server.url()).unwrap()));
}

#[test]
fn a_redis_outage_is_a_clear_error_and_heals_when_redis_is_back() {
    let mut server = RedisServer::start().expect("a private redis-server");
    let port = server.addr().port();
    let handle = RedisHandle::new(&server.url()).unwrap();
    let sessions = RedisSessions::new(handle.clone(), TTL, TTL * 10, 4);
    let seats = RedisSeats::new(handle.clone());
    let leases = RedisLeases::new(handle);
    let info = SessionInfo {
        clinician: ClinicianId::new("doc").unwrap(),
        tenant: TenantId::new("acme").unwrap(),
        role: StaffRole::Clinician,
        display_name: "Dr X".into(),
    };
    let t0 = Instant::now();
    let token = sessions.create(info.clone(), t0).unwrap();

    server.kill();
    let err = sessions.touch(&token, t0).expect_err("Redis is down");
    assert!(err.to_string().contains("Redis"), "{err}");
    assert!(!err.to_string().contains(&token), "no token in errors");
    assert!(seats.seats_of(&info.tenant).is_err());
    assert!(leases.holder("tenant:acme", t0).is_err());

    // Redis comes back (empty: nothing was persisted, by design).
    drop(server);
    let _again = RedisServer::start_on(port).expect("redis-server again on its port");
    assert_eq!(sessions.touch(&token, t0).unwrap(), Lookup::Missing);
    let token = sessions.create(info, t0).unwrap();
    assert!(matches!(
        sessions.touch(&token, t0).unwrap(),
        Lookup::Valid(_)
    ));
    assert!(
        seats
            .seats_of(&TenantId::new("acme").unwrap())
            .unwrap()
            .is_empty()
    );
}
