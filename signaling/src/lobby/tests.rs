//! Lobby state-machine tests on virtual time: plain `#[test]`s, no tokio.

mod actions;
mod call_changes;
mod calls;
mod conntest;
mod flows;
mod invites;
mod isolation;
mod persist;
mod persist_redis;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use protocol::client::{
    ClientToSignaling as C, ErrorCode, IntakeAnswers, IntakeQuestion, SignalingToClient as S,
    StaffIdentity,
};
use protocol::{ClinicianId, ParticipantId, RoomId, Sensitive, TenantId};

use super::{ConnId, Lobby, LobbySettings, Output, Peer, RoomDirectory};
use crate::audit::AuditEvent;
use crate::directory::RoomInfo;

/// Two tenants: `a` with rooms `a-gp` (a required question), `a-nurse`,
/// `a-hidden` (hides positions); `b` with room `b-gp`.
struct Rooms(HashMap<RoomId, RoomInfo>);

impl RoomDirectory for Rooms {
    fn room(&self, id: &RoomId) -> Option<RoomInfo> {
        self.0.get(id).cloned()
    }
    fn rooms_of(&self, tenant: &TenantId) -> Vec<RoomInfo> {
        self.0
            .values()
            .filter(|r| &r.tenant == tenant)
            .cloned()
            .collect()
    }
}

fn rid(s: &str) -> RoomId {
    RoomId::new(s).unwrap()
}

fn room(id: &str, tenant: &str, hide: bool) -> (RoomId, RoomInfo) {
    let intake = if id.ends_with("gp") {
        vec![IntakeQuestion {
            id: "reason".into(),
            label: "Why?".into(),
            required: true,
        }]
    } else {
        vec![]
    };
    let info = RoomInfo {
        id: rid(id),
        tenant: TenantId::new(tenant).unwrap(),
        name: format!("Room {id}"),
        intake,
        hide_position: hide,
        kind: if id.ends_with("meet") {
            crate::directory::RoomKind::Meeting
        } else {
            crate::directory::RoomKind::Waiting
        },
        closed: false,
    };
    (rid(id), info)
}

/// A lobby with its outputs collected per connection.
struct Harness {
    lobby: Lobby,
    now: Instant,
    next_conn: u64,
    inbox: HashMap<ConnId, Vec<S>>,
    closed: Vec<ConnId>,
    audit: Vec<AuditEvent>,
    offers: Vec<crate::calls::OfferJob>,
}

impl Harness {
    fn new() -> Self {
        Self::build(Vec::new(), crate::calls::Calls::disabled())
    }

    /// A harness whose lobby has calls on `relays`, and a meeting room `a-meet`.
    fn with_calls(relays: Arc<dyn crate::calls::CallRelays>) -> Self {
        let calls = crate::calls::Calls::new(relays, crate::calls::CallSettings::default());
        Self::build(vec![room("a-meet", "a", false)], calls)
    }

    fn build(extra: Vec<(RoomId, RoomInfo)>, calls: crate::calls::Calls) -> Self {
        let rooms = Rooms(
            [
                room("a-gp", "a", false),
                room("a-nurse", "a", false),
                room("a-hidden", "a", true),
                room("b-gp", "b", false),
            ]
            .into_iter()
            .chain(extra)
            .collect(),
        );
        Self {
            lobby: Lobby::new(Arc::new(rooms), LobbySettings::default()).with_calls(calls),
            now: Instant::now(),
            next_conn: 0,
            inbox: HashMap::new(),
            closed: Vec::new(),
            audit: Vec::new(),
            offers: Vec::new(),
        }
    }

    fn advance(&mut self, d: Duration) {
        self.now += d;
        while let Some(t) = self.lobby.poll_timeout() {
            if t > self.now {
                break;
            }
            self.lobby.handle_timeout(t);
            self.drain();
        }
    }

    fn drain(&mut self) {
        while let Some(o) = self.lobby.poll_output() {
            match o {
                Output::Send(c, m) => self.inbox.entry(c).or_default().push(m),
                Output::Close(c) => self.closed.push(c),
                Output::Audit(e) => self.audit.push(e),
                Output::Offer(job) => self.offers.push(job),
            }
        }
    }

    fn connect(&mut self, peer: Peer) -> ConnId {
        self.next_conn += 1;
        let c = ConnId(self.next_conn);
        self.lobby.handle_hello(c, peer);
        c
    }

    fn patient(&mut self) -> ConnId {
        self.connect(Peer::Patient)
    }

    fn clinician(&mut self, id: &str, tenant: &str) -> ConnId {
        self.connect(Peer::Clinician(StaffIdentity {
            clinician: ClinicianId::new(id).unwrap(),
            tenant: TenantId::new(tenant).unwrap(),
            display_name: format!("Dr {id}"),
        }))
    }

    fn send(&mut self, c: ConnId, msg: C) -> Vec<S> {
        self.lobby.handle_message(c, msg, self.now);
        self.drain();
        self.take(c)
    }

    fn disconnect(&mut self, c: ConnId) {
        self.lobby.handle_disconnect(c, self.now);
        self.drain();
    }

    /// Everything delivered to `c` since the last take.
    fn take(&mut self, c: ConnId) -> Vec<S> {
        self.inbox.remove(&c).unwrap_or_default()
    }

    /// Joins `room` as a new patient; returns (conn, participant, token).
    fn join(&mut self, room: &str, name: &str) -> (ConnId, ParticipantId, String) {
        let c = self.patient();
        let out = self.send(c, join_msg(room, name, "a sore throat"));
        let Some(S::Joined {
            participant,
            resume_token,
            ..
        }) = out.first()
        else {
            panic!("not joined: {out:?}");
        };
        (c, participant.clone(), resume_token.expose().clone())
    }

    fn subscribe(&mut self, c: ConnId) -> Vec<S> {
        self.send(c, C::Subscribe { request: Some(1) })
    }
}

fn join_msg(room: &str, name: &str, reason: &str) -> C {
    let intake: IntakeAnswers = if room.ends_with("gp") {
        [("reason".to_owned(), reason.to_owned())].into()
    } else {
        IntakeAnswers::new()
    };
    C::Join {
        room: rid(room),
        display_name: Sensitive::new(name.to_owned()),
        intake: Sensitive::new(intake),
    }
}

/// The last `queue_status` in `msgs` as (position, estimate).
fn last_status(msgs: &[S]) -> Option<(Option<u32>, Option<u64>)> {
    msgs.iter().rev().find_map(|m| match m {
        S::QueueStatus {
            position,
            estimated_wait_secs,
            ..
        } => Some((*position, *estimated_wait_secs)),
        _ => None,
    })
}

fn error_code(msgs: &[S]) -> Option<ErrorCode> {
    msgs.iter().find_map(|m| match m {
        S::Error { code, .. } => Some(*code),
        _ => None,
    })
}

fn is_ok(msgs: &[S]) -> bool {
    msgs.iter().any(|m| matches!(m, S::Ok { .. }))
}

/// Admits `p` as the clinician on `c` (request 7).
fn admit(h: &mut Harness, c: ConnId, p: &ParticipantId) -> Vec<S> {
    h.send(
        c,
        C::Admit {
            participant: p.clone(),
            request: Some(7),
        },
    )
}
