//! How much the Redis stores cost per operation compared with memory
//! (ignored by default; numbers go to docs/operations.md):
//!
//! ```sh
//! cargo test -p signaling --test store_latency -- --ignored --nocapture
//! ```

use std::time::{Duration, Instant};

use protocol::client::IntakeAnswers;
use protocol::{ClinicianId, NodeId, ParticipantId, RoomId, Sensitive, TenantId};
use signaling::store::RedisHandle;
use signaling::store::bus::{BusMessage, ClusterEvent, EventBus, MemoryBus, RedisBus};
use signaling::store::redis_server::RedisServer;
use signaling::store::seats::{
    MemorySeats, PatientDetails, RedisSeats, SeatRecord, SeatState, SeatStore,
};

const ROUNDS: usize = 2000;

fn percentiles(mut v: Vec<Duration>) -> String {
    v.sort();
    let at = |q: f64| v[((v.len() as f64 - 1.0) * q) as usize];
    format!(
        "p50 {:>7.1} µs  p99 {:>7.1} µs",
        at(0.5).as_secs_f64() * 1e6,
        at(0.99).as_secs_f64() * 1e6
    )
}

/// One patient's life in the store: join, position, admit, end.
fn seat_cycle(s: &dyn SeatStore) -> Vec<Duration> {
    let tenant = TenantId::new("acme").unwrap();
    let room = RoomId::new("gp").unwrap();
    let doc = ClinicianId::new("doc").unwrap();
    let details = PatientDetails {
        display_name: Sensitive::new("A Patient".to_owned()),
        intake: Sensitive::new(IntakeAnswers::from([("reason".into(), "x".repeat(200))])),
    };
    (0..ROUNDS)
        .map(|i| {
            let p = ParticipantId::new(format!("p{i}")).unwrap();
            let seat = SeatRecord {
                participant: p.clone(),
                tenant: tenant.clone(),
                room: room.clone(),
                token_hash: [(i % 251) as u8; 32],
                state: SeatState::Waiting,
                joined_unix_ms: 0,
                call: None,
                relay: None,
                invited_to: None,
            };
            let t = Instant::now();
            s.insert(&seat, &details, Duration::from_secs(3600))
                .unwrap();
            assert!(s.position(&p).unwrap().is_some());
            assert!(s.admit(&p, &doc, "Dr").unwrap());
            assert!(s.remove(&p).unwrap().is_some());
            t.elapsed()
        })
        .collect()
}

async fn bus_round_trip(a: &dyn EventBus, b: &dyn EventBus) -> Vec<Duration> {
    let mut sub = b.subscribe().await.unwrap();
    let msg = BusMessage {
        origin: NodeId::new("sig-a").unwrap(),
        event: ClusterEvent::PatientLeft {
            tenant: TenantId::new("acme").unwrap(),
            participant: ParticipantId::new("p").unwrap(),
        },
    };
    let mut out = Vec::with_capacity(ROUNDS);
    for _ in 0..ROUNDS {
        let t = Instant::now();
        a.publish(&msg).await.unwrap();
        sub.recv().await.unwrap();
        out.push(t.elapsed());
    }
    out
}

#[test]
#[ignore = "a measurement: run by hand with --ignored --nocapture"]
fn store_latency_memory_vs_redis() {
    let server = RedisServer::start().expect("a private redis-server");
    let handle = RedisHandle::new(&server.url()).unwrap();
    println!("seat cycle (insert+position+admit+remove), {ROUNDS} rounds");
    println!("  memory  {}", percentiles(seat_cycle(&MemorySeats::new())));
    println!(
        "  redis   {}",
        percentiles(seat_cycle(&RedisSeats::new(handle.clone())))
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mem = MemoryBus::new();
        println!("bus publish -> other node receives, {ROUNDS} rounds");
        println!(
            "  memory  {}",
            percentiles(bus_round_trip(&mem, &mem).await)
        );
        let (a, b) = (RedisBus::new(handle.clone()), RedisBus::new(handle));
        println!("  redis   {}", percentiles(bus_round_trip(&a, &b).await));
    });
}
