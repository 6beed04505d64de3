//! The lobby lease loop (`cluster::owner`) on memory and Redis leases:
//! exactly one owner among two nodes, the other takes over once the first
//! stops renewing, and a node whose lease was taken (or whose store fails
//! for too long) reports the loss before anyone else can own the lobby.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use protocol::NodeId;
use signaling::clock::Clock;
use signaling::cluster::owner::{self, Change, LeaseState, Term};
use signaling::store::RedisHandle;
use signaling::store::lease::{LeaseStore, MemoryLeases, RedisLeases};
use signaling::store::redis_server::RedisServer;

const TTL: Duration = Duration::from_millis(1500);

fn n(s: &str) -> NodeId {
    NodeId::new(s).unwrap()
}

/// Two nodes' rounds on virtual instants against one store.
fn one_owner_then_takeover(leases: &dyn LeaseStore) {
    let t0 = Instant::now();
    let mut a = LeaseState::new(n("sig-a"), TTL);
    let mut b = LeaseState::new(n("sig-b"), TTL);
    let (took, next_a) = a.step(leases, t0);
    let Change::Took(first) = took else {
        panic!("A takes the free lease: {took:?}")
    };
    assert_eq!(next_a, t0 + TTL / 3, "renewed every TTL/3");
    assert_eq!(b.step(leases, t0), (Change::None, t0 + TTL / 3));
    assert_eq!(b.term(), Term::FrontEnd);
    assert_eq!(b.owner(), Some(&n("sig-a")), "B learns who owns the lobby");

    // A renews in time: same term, B still a front end.
    let t1 = t0 + TTL / 3;
    assert_eq!(a.step(leases, t1).0, Change::None);
    assert_eq!(a.term(), Term::Owner(first));
    assert_eq!(b.step(leases, t1 + TTL / 2).0, Change::None);

    // A stops renewing (crashed, paused); B takes over once the lease lapses.
    let lapsed = t1 + TTL;
    assert_eq!(
        b.step(leases, t1 + TTL.saturating_sub(Duration::from_millis(1)))
            .0,
        Change::None
    );
    let (took, _) = b.step(leases, lapsed);
    let Change::Took(second) = took else {
        panic!("B takes the lapsed lease: {took:?}")
    };
    assert!(second > first, "a new fencing token");
    assert_eq!(b.owner(), Some(&n("sig-b")));

    // A comes back: its renewal is refused and it reports the loss.
    let (lost, _) = a.step(leases, lapsed + Duration::from_millis(10));
    assert_eq!(lost, Change::Lost("renewal refused"));
    assert_eq!(a.term(), Term::FrontEnd);
    assert_eq!(a.owner(), Some(&n("sig-b")), "A now pipes to B");
}

#[test]
fn one_owner_and_a_takeover_on_memory_leases() {
    one_owner_then_takeover(&MemoryLeases::new());
}

#[test]
fn one_owner_and_a_takeover_on_redis_leases() {
    let server = RedisServer::start().expect("a private redis-server");
    one_owner_then_takeover(&RedisLeases::new(RedisHandle::new(&server.url()).unwrap()));
}

/// Leases that fail while `down` is set (a Redis outage).
#[derive(Debug, Default)]
struct Flaky {
    inner: MemoryLeases,
    down: AtomicBool,
}

impl Flaky {
    fn check(&self) -> Result<(), signaling::Error> {
        if self.down.load(Ordering::SeqCst) {
            Err(signaling::Error::Redis("test outage".into()))
        } else {
            Ok(())
        }
    }
}

impl LeaseStore for Flaky {
    fn acquire(
        &self,
        name: &str,
        holder: &NodeId,
        ttl: Duration,
        now: Instant,
    ) -> Result<Option<u64>, signaling::Error> {
        self.check()?;
        self.inner.acquire(name, holder, ttl, now)
    }
    fn release(&self, name: &str, holder: &NodeId) -> Result<bool, signaling::Error> {
        self.check()?;
        self.inner.release(name, holder)
    }
    fn holder(&self, name: &str, now: Instant) -> Result<Option<NodeId>, signaling::Error> {
        self.check()?;
        self.inner.holder(name, now)
    }
}

#[test]
fn an_owner_whose_store_fails_gives_up_before_its_lease_can_lapse() {
    let leases = Flaky::default();
    let t0 = Instant::now();
    let mut a = LeaseState::new(n("sig-a"), TTL);
    let mut b = LeaseState::new(n("sig-b"), TTL);
    assert!(matches!(a.step(&leases, t0).0, Change::Took(_)));
    assert_eq!(b.step(&leases, t0).0, Change::None);

    leases.down.store(true, Ordering::SeqCst);
    let mut now = t0 + TTL / 3;
    let mut lost_at = None;
    while lost_at.is_none() {
        let (change, next) = a.step(&leases, now);
        assert!(next > now, "the loop always moves on");
        if change == Change::Lost("store unreachable") {
            lost_at = Some(now);
        } else {
            assert_eq!(change, Change::None);
            assert!(
                a.term() != Term::FrontEnd,
                "still the owner at {:?}",
                now - t0
            );
        }
        now = next;
    }
    let lost_at = lost_at.unwrap();
    assert!(
        lost_at < t0 + TTL,
        "gave up at {:?}, before the lease lapsed",
        lost_at - t0
    );
    assert_eq!(a.owner(), None, "the owner is unknown meanwhile");
    // B (through the same outage) forgets the owner once its lease must have lapsed.
    assert_eq!(b.step(&leases, t0 + TTL).0, Change::None);
    assert_eq!(b.owner(), None);

    // Redis is back: B takes over with a new term.
    leases.down.store(false, Ordering::SeqCst);
    assert!(matches!(b.step(&leases, t0 + TTL).0, Change::Took(_)));
}

#[tokio::test(start_paused = true)]
async fn the_running_loop_hands_the_lobby_over_within_ttl_and_a_round() {
    let leases: Arc<dyn LeaseStore> = Arc::new(MemoryLeases::new());
    let (own_a, loop_a) = owner::spawn(leases.clone(), n("sig-a"), TTL, Clock::Tokio);
    let (mut own_b, loop_b) = owner::spawn(leases.clone(), n("sig-b"), TTL, Clock::Tokio);
    assert!(own_a.is_owner());
    assert!(!own_b.is_owner());
    assert_eq!(own_b.owner(), Some(n("sig-a")));

    // Several rounds later A still owns the lobby (it renews).
    tokio::time::sleep(TTL * 3).await;
    assert!(own_a.is_owner() && !own_b.is_owner());

    let died = tokio::time::Instant::now();
    loop_a.abandon();
    own_b
        .term
        .wait_for(|t| matches!(t, Term::Owner(_)))
        .await
        .expect("B's loop runs");
    let took = died.elapsed();
    assert!(took <= TTL + TTL / 3, "B took over after {took:?}");
    assert_eq!(own_b.owner(), Some(n("sig-b")));
    own_b
        .rx
        .wait_for(|o| o.as_ref() == Some(&n("sig-b")))
        .await
        .unwrap();

    // A graceful stop releases at once: a node that starts now owns at once.
    loop_b.stop();
    let (own_c, loop_c) = owner::spawn(leases, n("sig-c"), TTL, Clock::Tokio);
    assert!(own_c.is_owner());
    loop_c.stop();
}

#[tokio::test]
async fn on_redis_a_node_whose_lease_was_taken_reports_the_loss() {
    let server = RedisServer::start().expect("a private redis-server");
    let store = || -> Arc<dyn LeaseStore> {
        Arc::new(RedisLeases::new(RedisHandle::new(&server.url()).unwrap()))
    };
    let ttl = Duration::from_millis(600);
    let (mut own_a, loop_a) = owner::spawn(store(), n("sig-a"), ttl, Clock::Tokio);
    assert!(own_a.is_owner());
    // Someone else takes the lease behind A's back (as after A was paused
    // past its TTL): the next renewal is refused and A reports the loss.
    let other = store();
    other.release("lobby", &n("sig-a")).unwrap();
    let token = other
        .acquire(
            "lobby",
            &n("sig-z"),
            Duration::from_secs(30),
            Instant::now(),
        )
        .unwrap();
    assert!(token.is_some());
    tokio::time::timeout(
        Duration::from_secs(5),
        own_a.term.wait_for(|t| *t == Term::FrontEnd),
    )
    .await
    .expect("loss reported within a round")
    .unwrap();
    tokio::time::timeout(
        Duration::from_secs(5),
        own_a.rx.wait_for(|o| o.as_ref() == Some(&n("sig-z"))),
    )
    .await
    .expect("the new holder is published")
    .unwrap();
    loop_a.stop();
}

/// Memory leases whose `acquire` waits at a gate once armed (a store call
/// under way), telling the test it has entered.
#[derive(Debug, Default)]
struct GatedLeases {
    inner: MemoryLeases,
    armed: AtomicBool,
    gate: std::sync::Mutex<Option<(std::sync::mpsc::Sender<()>, std::sync::mpsc::Receiver<()>)>>,
}

impl LeaseStore for GatedLeases {
    fn acquire(
        &self,
        name: &str,
        holder: &NodeId,
        ttl: Duration,
        now: Instant,
    ) -> Result<Option<u64>, signaling::Error> {
        if self.armed.swap(false, Ordering::SeqCst) {
            let gate = self.gate.lock().unwrap().take();
            if let Some((entered, go)) = gate {
                entered.send(()).unwrap();
                go.recv().unwrap();
            }
        }
        self.inner.acquire(name, holder, ttl, now)
    }

    fn release(&self, name: &str, holder: &NodeId) -> Result<bool, signaling::Error> {
        self.inner.release(name, holder)
    }

    fn holder(&self, name: &str, now: Instant) -> Result<Option<NodeId>, signaling::Error> {
        self.inner.holder(name, now)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_during_a_renewal_leaves_the_lease_free() {
    let leases = Arc::new(GatedLeases::default());
    let ttl = Duration::from_millis(300);
    let (own_a, loop_a) = owner::spawn(leases.clone(), n("sig-a"), ttl, Clock::Tokio);
    assert!(own_a.is_owner());

    // The next renewal stalls in the store.
    let (entered_tx, entered) = std::sync::mpsc::channel();
    let (go, go_rx) = std::sync::mpsc::channel();
    *leases.gate.lock().unwrap() = Some((entered_tx, go_rx));
    leases.armed.store(true, Ordering::SeqCst);
    let entered = tokio::task::spawn_blocking(move || entered.recv())
        .await
        .unwrap();
    entered.expect("a renewal entered the store");

    // Stop while it is under way: the release must come after it.
    let (stopped_tx, stopped) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        loop_a.stop();
        let _ = stopped_tx.send(());
    });
    let mut stopped = stopped;
    let early = tokio::time::timeout(Duration::from_millis(200), &mut stopped).await;
    assert!(
        early.is_err(),
        "stop returned while a renewal was under way"
    );
    go.send(()).unwrap();
    stopped.await.unwrap();
    assert_eq!(
        leases.holder("lobby", Instant::now()).unwrap(),
        None,
        "the stalled renewal did not take the lease back"
    );
}
