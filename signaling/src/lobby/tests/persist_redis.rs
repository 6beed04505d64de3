//! Write-through to a real (private) redis-server: a lobby rebuilt from
//! Redis after its first node is gone equals the first (queues, names,
//! intake answers, tokens, states), and the patient details in Redis carry
//! a TTL and are deleted when the consultation ends, the patient leaves or
//! is denied.

use std::collections::BTreeMap;
use std::time::Duration;

use protocol::client::{ClientToSignaling as C, SignalingToClient as S};
use protocol::{ParticipantId, RoomId, Sensitive, TenantId};

use super::{Harness, admit, is_ok};
use crate::lobby::persist;
use crate::store::RedisHandle;
use crate::store::WallClock;
use crate::store::redis_server::RedisServer;
use crate::store::seats::RedisSeats;

/// Everything a lobby knows about its seats, comparable across lobbies.
type Picture = (
    BTreeMap<RoomId, (Vec<ParticipantId>, Vec<ParticipantId>)>,
    BTreeMap<ParticipantId, (TenantId, String, String, [u8; 32], String)>,
);

fn picture(h: &Harness) -> Picture {
    let rooms = h
        .lobby
        .rooms
        .iter()
        .filter(|(_, q)| !q.is_empty())
        .map(|(id, q)| {
            let mut consulting = q.consulting.clone();
            consulting.sort();
            (
                id.clone(),
                (q.waiting.iter().cloned().collect(), consulting),
            )
        })
        .collect();
    let seats = h
        .lobby
        .seats
        .iter()
        .map(|(p, s)| {
            let answers = format!("{:?}", s.intake.expose());
            let state = format!("{:?}", s.state);
            (
                p.clone(),
                (
                    s.tenant.clone(),
                    s.display_name.expose().clone(),
                    answers,
                    s.token_hash,
                    state,
                ),
            )
        })
        .collect();
    (rooms, seats)
}

fn write(h: &mut Harness, store: &RedisSeats) {
    let ttl = persist::seat_ttl(h.lobby.settings());
    for change in h.lobby.take_seat_changes() {
        persist::apply(store, &change, ttl).unwrap();
    }
}

fn tenants() -> [TenantId; 2] {
    [TenantId::new("a").unwrap(), TenantId::new("b").unwrap()]
}

#[test]
fn a_lobby_rebuilt_from_redis_equals_the_one_that_died() {
    let server = RedisServer::start().expect("a private redis-server");
    let store = RedisSeats::new(RedisHandle::new(&server.url()).unwrap());
    let mut a = Harness::new();
    a.lobby.record_seat_changes(WallClock::new());
    let doc = a.clinician("c1", "a");
    let mut tokens = Vec::new();
    for (room, name) in [
        ("a-gp", "Ann"),
        ("a-gp", "Bob"),
        ("a-nurse", "Cy"),
        ("a-gp", "Dan"),
        ("b-gp", "Zed"),
    ] {
        let (_, p, token) = a.join(room, name);
        tokens.push((p, token));
    }
    assert!(is_ok(&admit(&mut a, doc, &tokens[0].0)));
    assert!(is_ok(&admit(&mut a, doc, &tokens[1].0)));
    let back = C::ReturnToQueue {
        participant: tokens[1].0.clone(),
        request: None,
    };
    assert!(is_ok(&a.send(doc, back)));
    write(&mut a, &store);
    let before = picture(&a);
    drop(a); // node A is killed

    let other = RedisSeats::new(RedisHandle::new(&server.url()).unwrap());
    let seats = persist::load_tenants(&other, tenants()).unwrap();
    let mut b = Harness::new();
    b.lobby.restore(seats, b.now);
    assert_eq!(picture(&b), before);
    for (p, token) in tokens {
        let c = b.patient();
        let out = b.send(
            c,
            C::Resume {
                token: Sensitive::new(token),
            },
        );
        assert!(
            matches!(out.first(), Some(S::Joined { participant, resumed: true, .. }) if *participant == p),
            "{out:?}"
        );
    }
}

/// Every key of the store holding `text`, with its TTL in ms.
fn keys_holding(c: &mut redis::Connection, text: &str) -> Vec<(String, i64)> {
    let keys: Vec<String> = redis::cmd("KEYS").arg("*").query(c).unwrap();
    let mut out = Vec::new();
    for k in keys {
        let kind: String = redis::cmd("TYPE").arg(&k).query(c).unwrap();
        let body = match kind.as_str() {
            "string" => redis::cmd("GET").arg(&k).query::<String>(c).unwrap(),
            "hash" => redis::cmd("HGETALL")
                .arg(&k)
                .query::<Vec<String>>(c)
                .unwrap()
                .join(" "),
            _ => String::new(),
        };
        if body.contains(text) {
            let ttl: i64 = redis::cmd("PTTL").arg(&k).query(c).unwrap();
            out.push((k, ttl));
        }
    }
    out
}

#[test]
fn details_in_redis_expire_and_go_at_consultation_end_leave_and_deny() {
    let server = RedisServer::start().expect("a private redis-server");
    let store = RedisSeats::new(RedisHandle::new(&server.url()).unwrap());
    let client = redis::Client::open(server.url()).unwrap();
    let mut c = client.get_connection().unwrap();
    let mut h = Harness::new();
    h.lobby.record_seat_changes(WallClock::new());
    let doc = h.clinician("c1", "a");
    let (_, ended, _) = h.join("a-gp", "Ended Secret");
    let (left_c, _, _) = h.join("a-gp", "Left Secret");
    let (_, denied, _) = h.join("a-gp", "Denied Secret");
    write(&mut h, &store);

    let ttl = persist::seat_ttl(h.lobby.settings());
    let max = i64::try_from(ttl.as_millis()).unwrap();
    for name in ["Ended Secret", "Left Secret", "Denied Secret"] {
        let held = keys_holding(&mut c, name);
        assert_eq!(held.len(), 1, "{name} in one key only: {held:?}");
        let (key, pttl) = &held[0];
        assert!(key.starts_with("anteroom:details:"), "{key}");
        assert!(*pttl > max - 60_000 && *pttl <= max, "{key}: TTL {pttl} ms");
    }
    assert!(
        ttl >= Duration::from_secs(12 * 3600),
        "covers a long consultation"
    );

    assert!(is_ok(&admit(&mut h, doc, &ended)));
    let end = C::EndConsultation {
        participant: ended,
        request: None,
    };
    assert!(is_ok(&h.send(doc, end)));
    h.send(left_c, C::Leave);
    let deny = C::Deny {
        participant: denied,
        message: None,
        request: None,
    };
    assert!(is_ok(&h.send(doc, deny)));
    write(&mut h, &store);
    for name in [
        "Ended Secret",
        "Left Secret",
        "Denied Secret",
        "sore throat",
    ] {
        assert_eq!(keys_holding(&mut c, name), [], "{name} is gone");
    }
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("anteroom:seat:*")
        .query(&mut c)
        .unwrap();
    assert_eq!(keys, Vec::<String>::new());
}
