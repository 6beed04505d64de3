//! A Redis restart (issue 7): Redis keeps nothing on disk, so it comes back
//! empty. The lobby owner keeps its lobby (same term) and writes every seat
//! and queue again from memory, so waiting patients keep their seats: the
//! seat is back in Redis within moments and the resume token still resumes
//! with the same participant id and position.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use protocol::{NodeId, ParticipantId, RoomId, TenantId};
use serde_json::json;
use sha2::{Digest as _, Sha256};
use signaling::cluster::ClusterSettings;
use signaling::cluster::owner::{Change, LOBBY_LEASE, LeaseState, Term};
use signaling::store::RedisHandle;
use signaling::store::backends::Backends;
use signaling::store::lease::{LeaseStore, MemoryLeases};
use signaling::store::redis_server::RedisServer;
use signaling::store::seats::SeatStore;
use support::{TestServer, http};

/// Longest wait for the owner to write its seats again.
const REWRITE_WITHIN: Duration = Duration::from_secs(5);

/// The stored queue of `a-gp` (read off the runtime: the store blocks).
async fn queue(seats: &Arc<dyn SeatStore>) -> Vec<ParticipantId> {
    let seats = seats.clone();
    tokio::task::spawn_blocking(move || {
        let tenant = TenantId::new("org-a").unwrap();
        let room = RoomId::new("a-gp").unwrap();
        seats.queue(&tenant, &room).unwrap_or_default()
    })
    .await
    .unwrap()
}

/// An emptied store whose fencing counter is at `seq` (a restarted Redis
/// where another node took and released the lease already has 1).
fn emptied_store(seq: u64) -> MemoryLeases {
    let store = MemoryLeases::new();
    let other = NodeId::new("sig-x").unwrap();
    for _ in 0..seq {
        store
            .acquire(LOBBY_LEASE, &other, TTL, Instant::now())
            .unwrap();
        store.release(LOBBY_LEASE, &other).unwrap();
    }
    store
}

const TTL: Duration = Duration::from_millis(1500);

#[test]
fn a_renewal_under_a_new_token_within_the_ttl_keeps_the_term_and_asks_for_a_rewrite() {
    let t0 = Instant::now();
    let before = emptied_store(4);
    let mut a = LeaseState::new(NodeId::new("sig-a").unwrap(), TTL);
    let (took, next) = a.step(&before, t0);
    assert_eq!(took, Change::Took(5));
    assert_eq!(a.term(), Term::Owner(5));

    // The store restarts empty: the next renewal gets token 1 (or 2, …).
    let after = emptied_store(0);
    let (change, next) = a.step(&after, next);
    assert_eq!(change, Change::StoreLost);
    assert_eq!(
        a.term(),
        Term::Owner(5),
        "same term: the lobby keeps running"
    );
    // Later renewals on the new store are plain renewals.
    let (change, next) = a.step(&after, next);
    assert_eq!(change, Change::None);
    assert_eq!(a.term(), Term::Owner(5));

    // A refused renewal is still a loss.
    let taken = emptied_store(0);
    let b = NodeId::new("sig-b").unwrap();
    assert!(taken.acquire(LOBBY_LEASE, &b, TTL, next).unwrap().is_some());
    let (change, _) = a.step(&taken, next);
    assert_eq!(change, Change::Lost("renewal refused"));
    assert_eq!(a.term(), Term::FrontEnd);
}

#[test]
fn a_term_kept_over_a_store_loss_still_ends_when_its_number_comes_round_again() {
    let t0 = Instant::now();
    let mut a = LeaseState::new(NodeId::new("sig-a").unwrap(), TTL);
    assert_eq!(a.step(&emptied_store(1), t0).0, Change::Took(2));
    let (change, next) = a.step(&emptied_store(0), t0 + TTL / 3);
    assert_eq!(change, Change::StoreLost);
    assert_eq!(a.term(), Term::Owner(2));
    // Our lease lapses; someone else had token 1; we take token 2 again.
    let store = emptied_store(1);
    let (change, next) = a.step(&store, next + TTL);
    assert_eq!(change, Change::Lost("fencing token reused"));
    assert_eq!(a.term(), Term::FrontEnd);
    assert_eq!(a.step(&store, next).0, Change::Took(2));
}

#[test]
fn a_new_token_after_the_ttl_lapsed_is_a_new_term() {
    let t0 = Instant::now();
    let mut a = LeaseState::new(NodeId::new("sig-a").unwrap(), TTL);
    assert_eq!(a.step(&emptied_store(4), t0).0, Change::Took(5));
    // Our lease lapsed (someone may have owned the lobby meanwhile).
    let (change, _) = a.step(&emptied_store(0), t0 + TTL);
    assert_eq!(change, Change::Took(1));
    assert_eq!(a.term(), Term::Owner(1));
}

/// The stored queue once it equals `want` (polled: the owner writes
/// through in the background), or as it is after [`REWRITE_WITHIN`].
async fn queue_becomes(seats: &Arc<dyn SeatStore>, want: &[ParticipantId]) -> Vec<ParticipantId> {
    let deadline = tokio::time::Instant::now() + REWRITE_WITHIN;
    loop {
        let stored = queue(seats).await;
        if stored == want || tokio::time::Instant::now() >= deadline {
            return stored;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_redis_restart_the_owner_writes_its_seats_again_and_patients_resume() {
    let mut redis = RedisServer::start().expect("a private redis-server");
    let port = redis.addr().port();
    let url = redis.url();
    let backends = Backends::redis(RedisHandle::new(&url).unwrap());
    let seats = backends.seats.clone();
    let server = TestServer::start_with(move |s| {
        s.backends = backends;
        s.cluster = ClusterSettings {
            node: NodeId::new("sig-a").unwrap(),
            // Long enough for a restart well within 5/6 of it.
            lease: Duration::from_secs(3),
        };
    })
    .await;

    let (first, p1, _) = server.joined_patient("a-gp", "First", "x").await;
    let (second, p2, token2) = server.joined_patient("a-gp", "Second", "x").await;
    let both = vec![p1.clone(), p2.clone()];
    assert_eq!(queue_becomes(&seats, &both).await, both, "written through");

    // Restart: the same port, nothing kept.
    redis.kill();
    let _again = RedisServer::start_on(port).expect("redis-server on the same port");

    // The owner writes its seats again (queue order kept).
    assert_eq!(
        queue_becomes(&seats, &both).await,
        both,
        "the owner did not write its seats to the restarted Redis"
    );
    let hash: [u8; 32] = Sha256::digest(token2.as_bytes()).into();
    let by_token = {
        let seats = seats.clone();
        tokio::task::spawn_blocking(move || seats.by_token(&hash))
            .await
            .unwrap()
            .expect("the store answers")
    };
    assert_eq!(by_token.map(|s| s.participant), Some(p2.clone()));

    // Still the owner, same lobby: the resume token resumes the same seat.
    let (status, _, body) = http(server.addr, "POST", "/whip/c-1", None).await;
    assert_ne!(status, 503, "{body}");
    second.close().await;
    let mut resumed = server.patient().await;
    resumed
        .send(&json!({"type": "resume", "token": token2}))
        .await;
    let joined = resumed.expect_type("joined").await;
    assert_eq!(
        (joined["participant"].clone(), joined["resumed"].clone()),
        (json!(p2), json!(true))
    );
    assert_eq!(resumed.expect_type("queue_status").await["position"], 2);

    first.close().await;
    resumed.close().await;
    server.stop().await.unwrap();
}
