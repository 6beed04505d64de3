//! The `SeatStore` contract, written once against the trait and run on the
//! memory store and on a real (private) redis-server; plus what only Redis
//! must show: patient details carry a TTL, are deleted with their seat, and
//! a second node sees the same seats.

use std::time::Duration;

use protocol::client::IntakeAnswers;
use protocol::{ClinicianId, NodeId, ParticipantId, RoomId, Sensitive, TenantId};
use signaling::store::RedisHandle;
use signaling::store::redis_server::RedisServer;
use signaling::store::seats::{
    MemorySeats, PatientDetails, QueueEnd, RedisSeats, SeatRecord, SeatState, SeatStore,
};

const TTL: Duration = Duration::from_secs(3600);

fn p(s: &str) -> ParticipantId {
    ParticipantId::new(s).unwrap()
}
fn t(s: &str) -> TenantId {
    TenantId::new(s).unwrap()
}
fn r(s: &str) -> RoomId {
    RoomId::new(s).unwrap()
}

fn seat(id: &str, tenant: &str, room: &str, token: u8) -> SeatRecord {
    SeatRecord {
        participant: p(id),
        tenant: t(tenant),
        room: r(room),
        token_hash: [token; 32],
        state: SeatState::Waiting,
        joined_unix_ms: 1_700_000_000_000 + u64::from(token),
        call: None,
        relay: None,
        invited_to: None,
    }
}

fn details(name: &str, answer: &str) -> PatientDetails {
    let intake: IntakeAnswers = [("reason".to_owned(), answer.to_owned())].into();
    PatientDetails {
        display_name: Sensitive::new(name.to_owned()),
        intake: Sensitive::new(intake),
    }
}

fn ids(v: &[&str]) -> Vec<ParticipantId> {
    v.iter().map(|s| p(s)).collect()
}

/// The contract every seat store keeps.
fn contract(s: &dyn SeatStore) {
    let (acme, room, other) = (t("acme"), r("gp"), r("nurse"));
    s.insert(&seat("a", "acme", "gp", 1), &details("Ann", "cough"), TTL)
        .unwrap();
    s.insert(&seat("b", "acme", "gp", 2), &details("Bob", "rash"), TTL)
        .unwrap();
    s.insert(&seat("c", "acme", "gp", 3), &details("Cy", "flu"), TTL)
        .unwrap();
    s.insert(&seat("z", "zeta", "zz", 9), &details("Zed", "x"), TTL)
        .unwrap();

    // Arrival order is queue order; positions are 1-based.
    assert_eq!(s.queue(&acme, &room).unwrap(), ids(&["a", "b", "c"]));
    assert_eq!(s.position(&p("c")).unwrap(), Some(3));
    assert_eq!(s.get(&p("b")).unwrap(), Some(seat("b", "acme", "gp", 2)));
    assert_eq!(
        s.by_token(&[2; 32]).unwrap().map(|x| x.participant),
        Some(p("b"))
    );
    assert_eq!(s.by_token(&[7; 32]).unwrap(), None);
    let d = s.details(&p("a")).unwrap().unwrap();
    assert_eq!(d.display_name.expose(), "Ann");
    assert_eq!(
        d.intake.expose().get("reason").map(String::as_str),
        Some("cough")
    );

    // Admitting takes the seat out of the queue; the others move up.
    let doc = ClinicianId::new("doc").unwrap();
    assert!(s.admit(&p("a"), &doc, "Dr Who").unwrap());
    assert!(
        !s.admit(&p("a"), &doc, "Dr Who").unwrap(),
        "only waiting seats"
    );
    assert_eq!(s.queue(&acme, &room).unwrap(), ids(&["b", "c"]));
    assert_eq!(s.position(&p("a")).unwrap(), None);
    assert_eq!(s.position(&p("c")).unwrap(), Some(2));
    assert_eq!(
        s.get(&p("a")).unwrap().unwrap().state,
        SeatState::Admitted {
            clinician: doc.clone(),
            clinician_name: "Dr Who".into()
        }
    );

    // Returned to the queue: next in line. Transferred: last in the other room.
    assert!(s.requeue(&p("a"), None, QueueEnd::Front).unwrap());
    assert_eq!(s.queue(&acme, &room).unwrap(), ids(&["a", "b", "c"]));
    assert_eq!(s.get(&p("a")).unwrap().unwrap().state, SeatState::Waiting);
    assert!(s.requeue(&p("b"), Some(&other), QueueEnd::Back).unwrap());
    assert!(s.requeue(&p("c"), Some(&other), QueueEnd::Back).unwrap());
    assert_eq!(s.queue(&acme, &room).unwrap(), ids(&["a"]));
    assert_eq!(s.queue(&acme, &other).unwrap(), ids(&["b", "c"]));
    assert_eq!(s.get(&p("b")).unwrap().unwrap().room, other);
    assert!(!s.requeue(&p("nobody"), None, QueueEnd::Back).unwrap());

    // Tenants see only their own seats.
    let mine: Vec<ParticipantId> = s
        .seats_of(&acme)
        .unwrap()
        .into_iter()
        .map(|x| x.participant)
        .collect();
    assert_eq!(mine, ids(&["a", "b", "c"]));
    assert!(s.queue(&t("zeta"), &room).unwrap().is_empty());

    // Removing a seat removes its token, its place and the patient's details.
    assert!(s.refresh(&p("b"), TTL).unwrap());
    assert_eq!(
        s.remove(&p("b")).unwrap().map(|x| x.participant),
        Some(p("b"))
    );
    assert_eq!(s.remove(&p("b")).unwrap(), None);
    assert_eq!(s.get(&p("b")).unwrap(), None);
    assert_eq!(s.details(&p("b")).unwrap(), None);
    assert_eq!(s.by_token(&[2; 32]).unwrap(), None);
    assert!(!s.refresh(&p("b"), TTL).unwrap());
    assert_eq!(s.queue(&acme, &other).unwrap(), ids(&["c"]));

    // Re-inserting a participant replaces the seat (one place in line).
    s.insert(&seat("c", "acme", "gp", 4), &details("Cy", "flu"), TTL)
        .unwrap();
    assert_eq!(s.queue(&acme, &other).unwrap(), Vec::<ParticipantId>::new());
    assert_eq!(s.queue(&acme, &room).unwrap(), ids(&["a", "c"]));
    assert_eq!(s.by_token(&[3; 32]).unwrap(), None, "the old token is gone");

    // An admitted seat keeps its call, relay and invitation; it is not
    // queued. Back in the queue it has left its call (not the invitation).
    let mut ivy = seat("i", "acme", "gp", 5);
    ivy.state = SeatState::Admitted {
        clinician: doc,
        clinician_name: "Dr Who".into(),
    };
    ivy.call = Some(r("c-call1"));
    ivy.relay = Some(NodeId::new("relay-1").unwrap());
    ivy.invited_to = Some(r("c-call1"));
    s.insert(&ivy, &details("Ivy", "-"), TTL).unwrap();
    assert_eq!(s.get(&p("i")).unwrap(), Some(ivy.clone()));
    assert_eq!(s.queue(&acme, &room).unwrap(), ids(&["a", "c"]));
    assert!(s.requeue(&p("i"), None, QueueEnd::Front).unwrap());
    let back = s.get(&p("i")).unwrap().unwrap();
    assert_eq!(
        (back.state, back.call, back.relay, back.invited_to),
        (SeatState::Waiting, None, None, Some(r("c-call1")))
    );
    assert_eq!(s.queue(&acme, &room).unwrap(), ids(&["i", "a", "c"]));
}

#[test]
fn the_memory_seat_store_keeps_the_contract() {
    contract(&MemorySeats::new());
}

#[test]
fn the_redis_seat_store_keeps_the_contract() {
    let server = RedisServer::start().expect("a private redis-server");
    contract(&RedisSeats::new(RedisHandle::new(&server.url()).unwrap()));
}

#[test]
fn redis_patient_details_expire_are_deleted_with_the_seat_and_are_shared() {
    let server = RedisServer::start().expect("a private redis-server");
    let node_a = RedisSeats::new(RedisHandle::new(&server.url()).unwrap());
    let node_b = RedisSeats::new(RedisHandle::new(&server.url()).unwrap());
    node_a
        .insert(
            &seat("a", "acme", "gp", 1),
            &details("Ann Secret", "chest pain"),
            TTL,
        )
        .unwrap();
    assert_eq!(node_b.queue(&t("acme"), &r("gp")).unwrap(), ids(&["a"]));
    assert_eq!(
        node_b
            .details(&p("a"))
            .unwrap()
            .unwrap()
            .display_name
            .expose(),
        "Ann Secret"
    );

    let client = redis::Client::open(server.url()).unwrap();
    let mut c = client.get_connection().unwrap();
    let keys: Vec<String> = redis::cmd("KEYS").arg("*").query(&mut c).unwrap();
    let mut holding = Vec::new();
    for k in &keys {
        if contents(&mut c, k).contains("chest pain") {
            holding.push(k.clone());
            let ttl: i64 = redis::cmd("PTTL").arg(k).query(&mut c).unwrap();
            assert!(ttl > 0 && ttl <= 3_600_000, "{k}: patient data needs a TTL");
        }
    }
    assert_eq!(
        holding,
        ["anteroom:details:a"],
        "answers live in one key only"
    );

    node_b.remove(&p("a")).unwrap();
    let left: Vec<String> = redis::cmd("KEYS").arg("*").query(&mut c).unwrap();
    for k in &left {
        let text = contents(&mut c, k);
        assert!(
            !text.contains("chest pain") && !text.contains("Ann Secret"),
            "{k}"
        );
    }
}

/// Everything a key holds, as text (by its type).
fn contents(c: &mut redis::Connection, key: &str) -> String {
    let kind: String = redis::cmd("TYPE").arg(key).query(c).unwrap();
    let parts: Vec<String> = match kind.as_str() {
        "string" => vec![redis::cmd("GET").arg(key).query(c).unwrap()],
        "hash" => redis::cmd("HGETALL").arg(key).query(c).unwrap(),
        "set" => redis::cmd("SMEMBERS").arg(key).query(c).unwrap(),
        "zset" => redis::cmd("ZRANGE")
            .arg(key)
            .arg(0)
            .arg(-1)
            .query(c)
            .unwrap(),
        other => panic!("unexpected key type {other} for {key}"),
    };
    parts.join(" ")
}
