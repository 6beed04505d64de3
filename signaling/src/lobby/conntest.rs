//! The patient device check's connection test: a throwaway call on a relay.
//!
//! `connection_test_start` places a fresh call id `t-<random>` on a relay
//! exactly as a call would be placed (the connection's region first) and
//! replies `connection_test_ready` with a participant id and a grant; the
//! page then offers through the ordinary `call_offer`/`call_candidate` path
//! and measures the connection. The test takes no seat, touches no waiting
//! room and says nothing about other patients. It ends — and its relay room
//! is closed — on `connection_test_stop`, when the connection closes, when
//! its relay goes away, or after [`MAX_TEST`] at most (`call_ended`).
//!
//! Rate limits: one test at a time per connection, at most
//! [`MAX_TESTS_PER_CONN`] per connection in all, and at most
//! [`MAX_CONCURRENT`] running on this signaling node.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use protocol::client::{ClientToSignaling, ErrorCode, RequestId, SignalingToClient};
use protocol::{GrantRole, NodeId, ParticipantId, RoomId, Sensitive};

use super::{Conn, ConnId, Lobby, Output, Reject, reject};
use crate::calls::{OfferDone, OfferJob};
use crate::relays::{RelayCallError, RelayEvent};

/// The longest a connection test lives.
pub const MAX_TEST: Duration = Duration::from_secs(60);
/// Connection tests one connection may start in all.
pub const MAX_TESTS_PER_CONN: u32 = 10;
/// Connection tests running at once on this node.
pub const MAX_CONCURRENT: usize = 64;

/// Longest trickled candidate accepted, in bytes.
const MAX_CANDIDATE_BYTES: usize = 1024;

#[derive(Debug)]
struct TestCall {
    conn: ConnId,
    participant: ParticipantId,
    node: NodeId,
    deadline: Instant,
}

/// The running connection tests. See the module documentation.
#[derive(Debug, Default)]
pub(super) struct ConnTests {
    by_call: HashMap<RoomId, TestCall>,
    by_conn: HashMap<ConnId, RoomId>,
    started: HashMap<ConnId, u32>,
}

impl ConnTests {
    /// Whether `call` is a running connection test.
    pub(super) fn contains(&self, call: &RoomId) -> bool {
        self.by_call.contains_key(call)
    }

    /// How many tests are running.
    pub(super) fn len(&self) -> usize {
        self.by_call.len()
    }

    /// The earliest deadline of a running test.
    pub(super) fn next_deadline(&self) -> Option<Instant> {
        self.by_call.values().map(|t| t.deadline).min()
    }
}

fn no_test() -> Reject {
    reject(ErrorCode::NotFound, "no such connection test")
}

/// A fresh test call id: `t-` and 12 random base32 characters.
fn new_test_id() -> RoomId {
    const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
    let bytes: [u8; 12] = rand::random();
    let s: String = bytes
        .iter()
        .map(|b| char::from(ALPHABET[usize::from(b & 31)]))
        .collect();
    RoomId::new(format!("t-{s}")).unwrap_or_else(|_| RoomId::random())
}

impl Lobby {
    /// `connection_test_start` from a patient connection.
    pub(super) fn connection_test_start(
        &mut self,
        conn: ConnId,
        request: Option<RequestId>,
        now: Instant,
    ) -> Result<(), Reject> {
        if self.conn_tests.by_conn.contains_key(&conn) {
            return Err(reject(
                ErrorCode::RateLimited,
                "a connection test is already running on this connection",
            ));
        }
        if self.conn_tests.started.get(&conn).copied().unwrap_or(0) >= MAX_TESTS_PER_CONN {
            return Err(reject(
                ErrorCode::RateLimited,
                "too many connection tests; reload the page to test again",
            ));
        }
        if self.conn_tests.len() >= MAX_CONCURRENT {
            return Err(reject(
                ErrorCode::RateLimited,
                "the connection test is busy; try again in a minute",
            ));
        }
        let unavailable = || {
            reject(
                ErrorCode::NoRelay,
                "no video relay is available right now, so video calls cannot start",
            )
        };
        let relays = self.calls.relays().ok_or_else(unavailable)?;
        let region = match self.conns.get(&conn) {
            Some(Conn::Patient { region, .. } | Conn::Clinician { region, .. }) => region.clone(),
            None => None,
        };
        let call = new_test_id();
        let node = relays.place(&call, region.as_ref()).map_err(|e| {
            tracing::warn!(call = %call, error = %e, "no relay for a connection test");
            unavailable()
        })?;
        let participant = ParticipantId::random();
        let grant = relays.grant(&call, &participant, GrantRole::Participant, &node);
        *self.conn_tests.started.entry(conn).or_default() += 1;
        self.conn_tests.by_conn.insert(conn, call.clone());
        self.conn_tests.by_call.insert(
            call.clone(),
            TestCall {
                conn,
                participant: participant.clone(),
                node: node.clone(),
                deadline: now + MAX_TEST,
            },
        );
        tracing::debug!(call = %call, node = %node, "connection test placed");
        self.send(
            conn,
            SignalingToClient::ConnectionTestReady {
                request,
                call,
                participant,
                relay: node,
                grant: Sensitive::new(grant),
            },
        );
        Ok(())
    }

    /// `connection_test_stop`: only the connection that started it may stop it.
    pub(super) fn connection_test_stop(
        &mut self,
        conn: ConnId,
        call: &RoomId,
    ) -> Result<(), Reject> {
        if self.conn_tests.by_conn.get(&conn) != Some(call) {
            return Err(no_test());
        }
        self.end_conn_test(call, false);
        Ok(())
    }

    /// A `call_*` message naming a running test's call (the caller checked
    /// [`ConnTests::contains`]). Only the test's own connection reaches it.
    pub(super) fn conn_test_message(
        &mut self,
        conn: ConnId,
        msg: ClientToSignaling,
    ) -> Result<(), Reject> {
        let call = msg.call().cloned().ok_or_else(no_test)?;
        let t = self
            .conn_tests
            .by_call
            .get(&call)
            .filter(|t| t.conn == conn)
            .ok_or_else(no_test)?;
        let (participant, node) = (t.participant.clone(), t.node.clone());
        let relays = self.calls.relays().ok_or_else(no_test)?;
        match msg {
            ClientToSignaling::CallOffer { sdp, .. } => {
                let grant = relays.grant(&call, &participant, GrantRole::Participant, &node);
                self.out.push_back(Output::Offer(OfferJob {
                    conn,
                    call,
                    participant,
                    node,
                    grant: Sensitive::new(grant),
                    sdp: Sensitive::new(sdp),
                }));
            }
            ClientToSignaling::CallCandidate { candidate, .. } => {
                if candidate.len() > MAX_CANDIDATE_BYTES {
                    return Err(reject(ErrorCode::BadRequest, "the candidate is too long"));
                }
                relays.candidate(&node, &call, &participant, candidate);
            }
            ClientToSignaling::CallAnswer { sdp, .. } => {
                relays.renegotiate_answer(&node, &call, &participant, sdp);
            }
            ClientToSignaling::CallLeave { .. } => self.end_conn_test(&call, false),
            // The page judges the test itself; nothing to re-place.
            ClientToSignaling::CallIceFailed { .. } | ClientToSignaling::CallMute { .. } => {}
            _ => return Err(reject(ErrorCode::BadRequest, "not a call message")),
        }
        Ok(())
    }

    /// The relay's reply to a test's offer; `false` if `done` is not a test's.
    pub(super) fn conn_test_offer_done(&mut self, done: &OfferDone) -> bool {
        let Some(t) = self.conn_tests.by_call.get(&done.call) else {
            return false;
        };
        if t.conn != done.conn || t.participant != done.participant || t.node != done.node {
            return true;
        }
        let msg = match &done.result {
            Ok(sdp) => SignalingToClient::CallAnswer {
                call: done.call.clone(),
                sdp: sdp.expose().clone(),
            },
            Err(e) => {
                let kind = match e {
                    RelayCallError::Refused(_) => "refused",
                    RelayCallError::Timeout => "timeout",
                    RelayCallError::RelayGone => "relay gone",
                };
                tracing::warn!(call = %done.call, node = %done.node, kind, "connection test offer failed");
                SignalingToClient::error(
                    ErrorCode::NoRelay,
                    "the video relay did not answer the connection test",
                    None,
                )
            }
        };
        self.send(done.conn, msg);
        true
    }

    /// A relay event about a test's call; `false` if it is not a test's.
    pub(super) fn conn_test_relay_event(&mut self, event: &RelayEvent) -> bool {
        match event {
            RelayEvent::CallMoved { call, .. } | RelayEvent::CallOrphaned { call, .. } => {
                if !self.conn_tests.contains(call) {
                    return false;
                }
                // The relay it tested is gone: the test is over.
                self.end_conn_test(call, true);
                true
            }
            RelayEvent::Renegotiate {
                call,
                participant,
                sdp,
            } => {
                let Some(t) = self.conn_tests.by_call.get(call) else {
                    return false;
                };
                if &t.participant == participant {
                    let msg = SignalingToClient::CallRenegotiate {
                        call: call.clone(),
                        sdp: sdp.clone(),
                    };
                    self.send(t.conn, msg);
                }
                true
            }
            RelayEvent::ParticipantLeft { call, .. } => self.conn_tests.contains(call),
            RelayEvent::RelayUp { .. } => false,
        }
    }

    /// Ends the test of a closed connection, if it had one.
    pub(super) fn conn_test_disconnected(&mut self, conn: ConnId) {
        if let Some(call) = self.conn_tests.by_conn.get(&conn).cloned() {
            self.end_conn_test(&call, false);
        }
        self.conn_tests.started.remove(&conn);
    }

    /// Ends the tests whose time is up.
    pub(super) fn conn_test_timeouts(&mut self, now: Instant) {
        let expired: Vec<RoomId> = self
            .conn_tests
            .by_call
            .iter()
            .filter(|(_, t)| t.deadline <= now)
            .map(|(c, _)| c.clone())
            .collect();
        for call in expired {
            tracing::debug!(call = %call, "connection test timed out");
            self.end_conn_test(&call, true);
        }
    }

    /// Forgets the test, closes its relay room and, if `tell`, sends
    /// `call_ended` to its connection.
    fn end_conn_test(&mut self, call: &RoomId, tell: bool) {
        let Some(t) = self.conn_tests.by_call.remove(call) else {
            return;
        };
        self.conn_tests.by_conn.remove(&t.conn);
        if let Some(relays) = self.calls.relays() {
            relays.close_call(call);
        }
        if tell {
            self.send(t.conn, SignalingToClient::CallEnded { call: call.clone() });
        }
    }
}
