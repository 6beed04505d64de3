//! The lobby task with a seat store: changes are written in order and all
//! written before the task ends; a lobby taken over from the store serves
//! the same seats; a failing store is counted and the lobby keeps serving.

use std::sync::Arc;

use protocol::client::{ClientToSignaling as C, IntakeAnswers, SignalingToClient as S};
use protocol::{ParticipantId, RoomId, Sensitive, TenantId};
use tokio::sync::mpsc;

use super::{Command, Outbound};
use crate::Error;
use crate::audit::Audit;
use crate::clock::Clock;
use crate::directory::Directory;
use crate::lobby::persist;
use crate::lobby::{ConnId, Lobby, LobbySettings, Peer};
use crate::store::seats::{
    MemorySeats, PatientDetails, QueueEnd, SeatRecord, SeatStore, TokenHash,
};
use crate::ws::LobbyHandle;

const DIRECTORY: &str = r#"
[[tenant]]
id = "a"
name = "A"

[[tenant]]
id = "b"
name = "B"

[[room]]
id = "a-gp"
tenant = "a"
name = "GP"

[[room]]
id = "b-gp"
tenant = "b"
name = "GP B"
"#;

fn directory() -> Arc<Directory> {
    Arc::new(Directory::from_toml_str(DIRECTORY).unwrap())
}

fn lobby(dir: &Arc<Directory>) -> Lobby {
    Lobby::new(dir.clone(), LobbySettings::default())
}

/// A patient connection to the lobby task.
struct Patient {
    conn: ConnId,
    rx: mpsc::Receiver<Outbound>,
}

impl Patient {
    async fn connect(h: &LobbyHandle, conn: u64) -> Self {
        let (tx, rx) = mpsc::channel(64);
        let conn = ConnId(conn);
        let hello = Command::Hello {
            conn,
            peer: Peer::Patient,
            region: None,
            tx,
        };
        h.send(hello).await.unwrap();
        Self { conn, rx }
    }

    async fn send(&mut self, h: &LobbyHandle, msg: C) -> S {
        let conn = self.conn;
        h.send(Command::Message { conn, msg }).await.unwrap();
        self.next().await
    }

    /// The next message.
    async fn next(&mut self) -> S {
        match self.rx.recv().await {
            Some(Outbound::Msg(m)) => m,
            other => panic!("{other:?}"),
        }
    }

    /// Joins `room`: (participant, resume token, position).
    async fn join(&mut self, h: &LobbyHandle, room: &str) -> (ParticipantId, String, Option<u32>) {
        let msg = C::Join {
            room: RoomId::new(room).unwrap(),
            display_name: Sensitive::new(format!("Patient {}", self.conn.0)),
            intake: Sensitive::new(IntakeAnswers::new()),
        };
        let S::Joined {
            participant,
            resume_token,
            ..
        } = self.send(h, msg).await
        else {
            panic!("not joined")
        };
        let S::QueueStatus { position, .. } = self.next().await else {
            panic!("no queue status")
        };
        (participant, resume_token.expose().clone(), position)
    }
}

fn t(s: &str) -> TenantId {
    TenantId::new(s).unwrap()
}

#[tokio::test]
async fn seat_changes_are_written_in_order_and_a_takeover_serves_the_same_seats() {
    let dir = directory();
    let store = Arc::new(MemorySeats::new());
    let (h, task) =
        LobbyHandle::spawn_with_store(lobby(&dir), Audit::stderr(), Clock::Tokio, store.clone());
    let mut seated = Vec::new();
    for (conn, room) in [(1, "a-gp"), (2, "a-gp"), (3, "a-gp"), (4, "b-gp")] {
        let mut p = Patient::connect(&h, conn).await;
        let (id, token, _) = p.join(&h, room).await;
        seated.push((p, id, token));
    }
    assert!(matches!(seated[1].0.send(&h, C::Leave).await, S::Left));
    drop(h);
    task.await.unwrap();

    let (p1, p2, p3) = (&seated[0].1, &seated[1].1, &seated[2].1);
    let gp = RoomId::new("a-gp").unwrap();
    assert_eq!(store.queue(&t("a"), &gp).unwrap(), [p1.clone(), p3.clone()]);
    assert_eq!(store.details(p2).unwrap(), None, "left: details gone");
    let d = store.details(p3).unwrap().unwrap();
    assert_eq!(d.display_name.expose(), "Patient 3");

    // Another node takes over: load, restore, serve with the same store.
    let seats = persist::load(store.as_ref(), &dir).unwrap();
    assert_eq!(seats.len(), 3);
    let mut next = lobby(&dir);
    next.restore(seats, Clock::Tokio.now());
    let (h, task) =
        LobbyHandle::spawn_with_store(next, Audit::stderr(), Clock::Tokio, store.clone());
    let mut back = Patient::connect(&h, 10).await;
    let resume = C::Resume {
        token: Sensitive::new(seated[2].2.clone()),
    };
    match back.send(&h, resume).await {
        S::Joined {
            participant,
            resumed,
            ..
        } => assert_eq!((&participant, resumed), (p3, true)),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        back.next().await,
        S::QueueStatus {
            position: Some(2),
            ..
        }
    ));
    back.send(&h, C::Leave).await;
    drop(h);
    task.await.unwrap();
    assert_eq!(store.queue(&t("a"), &gp).unwrap(), std::slice::from_ref(p1));
}

/// A store whose every write fails (Redis down).
#[derive(Debug)]
struct Down;

fn down<T>() -> Result<T, Error> {
    Err(Error::Redis("adding a seat: IoError".into()))
}

impl SeatStore for Down {
    fn insert(
        &self,
        _: &SeatRecord,
        _: &PatientDetails,
        _: std::time::Duration,
    ) -> Result<(), Error> {
        down()
    }
    fn get(&self, _: &ParticipantId) -> Result<Option<SeatRecord>, Error> {
        down()
    }
    fn by_token(&self, _: &TokenHash) -> Result<Option<SeatRecord>, Error> {
        down()
    }
    fn details(&self, _: &ParticipantId) -> Result<Option<PatientDetails>, Error> {
        down()
    }
    fn queue(&self, _: &TenantId, _: &RoomId) -> Result<Vec<ParticipantId>, Error> {
        down()
    }
    fn position(&self, _: &ParticipantId) -> Result<Option<u32>, Error> {
        down()
    }
    fn admit(&self, _: &ParticipantId, _: &protocol::ClinicianId, _: &str) -> Result<bool, Error> {
        down()
    }
    fn requeue(&self, _: &ParticipantId, _: Option<&RoomId>, _: QueueEnd) -> Result<bool, Error> {
        down()
    }
    fn refresh(&self, _: &ParticipantId, _: std::time::Duration) -> Result<bool, Error> {
        down()
    }
    fn remove(&self, _: &ParticipantId) -> Result<Option<SeatRecord>, Error> {
        down()
    }
    fn seats_of(&self, _: &TenantId) -> Result<Vec<SeatRecord>, Error> {
        down()
    }
}

#[tokio::test]
async fn a_failing_store_is_counted_and_the_lobby_keeps_serving() {
    let before = persist::store_errors();
    let dir = directory();
    let (h, task) =
        LobbyHandle::spawn_with_store(lobby(&dir), Audit::stderr(), Clock::Tokio, Arc::new(Down));
    let mut a = Patient::connect(&h, 1).await;
    let mut b = Patient::connect(&h, 2).await;
    assert_eq!(a.join(&h, "a-gp").await.2, Some(1));
    assert_eq!(b.join(&h, "a-gp").await.2, Some(2), "served from memory");
    drop(h);
    task.await.unwrap();
    assert!(persist::store_errors() >= before + 2);
}

/// Memory seats that fail while `down` is set.
#[derive(Debug, Default)]
struct Flaky {
    seats: MemorySeats,
    down: std::sync::atomic::AtomicBool,
    failures: std::sync::atomic::AtomicUsize,
    failed: tokio::sync::Notify,
}

impl Flaky {
    fn up(&self) -> Result<&MemorySeats, Error> {
        if self.down.load(std::sync::atomic::Ordering::SeqCst) {
            self.failures
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            self.failed.notify_waiters();
            return down();
        }
        Ok(&self.seats)
    }
}

impl SeatStore for Flaky {
    fn insert(
        &self,
        s: &SeatRecord,
        d: &PatientDetails,
        ttl: std::time::Duration,
    ) -> Result<(), Error> {
        self.up()?.insert(s, d, ttl)
    }
    fn get(&self, p: &ParticipantId) -> Result<Option<SeatRecord>, Error> {
        self.up()?.get(p)
    }
    fn by_token(&self, h: &TokenHash) -> Result<Option<SeatRecord>, Error> {
        self.up()?.by_token(h)
    }
    fn details(&self, p: &ParticipantId) -> Result<Option<PatientDetails>, Error> {
        self.up()?.details(p)
    }
    fn queue(&self, t: &TenantId, r: &RoomId) -> Result<Vec<ParticipantId>, Error> {
        self.up()?.queue(t, r)
    }
    fn position(&self, p: &ParticipantId) -> Result<Option<u32>, Error> {
        self.up()?.position(p)
    }
    fn admit(&self, p: &ParticipantId, c: &protocol::ClinicianId, n: &str) -> Result<bool, Error> {
        self.up()?.admit(p, c, n)
    }
    fn requeue(&self, p: &ParticipantId, r: Option<&RoomId>, e: QueueEnd) -> Result<bool, Error> {
        self.up()?.requeue(p, r, e)
    }
    fn refresh(&self, p: &ParticipantId, ttl: std::time::Duration) -> Result<bool, Error> {
        self.up()?.refresh(p, ttl)
    }
    fn remove(&self, p: &ParticipantId) -> Result<Option<SeatRecord>, Error> {
        self.up()?.remove(p)
    }
    fn seats_of(&self, t: &TenantId) -> Result<Vec<SeatRecord>, Error> {
        self.up()?.seats_of(t)
    }
}

#[tokio::test]
async fn seats_lost_while_the_store_was_down_are_written_again() {
    let dir = directory();
    let store = Arc::new(Flaky::default());
    store.down.store(true, std::sync::atomic::Ordering::SeqCst);
    let (h, task) =
        LobbyHandle::spawn_with_store(lobby(&dir), Audit::stderr(), Clock::Tokio, store.clone());
    let mut ids = Vec::new();
    for conn in 1..=3 {
        let mut p = Patient::connect(&h, conn).await;
        ids.push(p.join(&h, "a-gp").await.0);
    }
    // The three joins' writes have failed before the store comes back.
    loop {
        let failed = store.failed.notified();
        tokio::pin!(failed);
        failed.as_mut().enable();
        if store.failures.load(std::sync::atomic::Ordering::SeqCst) >= 3 {
            break;
        }
        failed.await;
    }
    store.down.store(false, std::sync::atomic::Ordering::SeqCst);
    drop(h);
    task.await.unwrap();
    let gp = RoomId::new("a-gp").unwrap();
    assert_eq!(store.seats.queue(&t("a"), &gp).unwrap(), ids);
    assert!(store.seats.details(&ids[0]).unwrap().is_some());
}
