//! Joining and leaving: grants are checked, departures stop forwarding,
//! hostile datagrams are dropped and counted, draining refuses new rooms.
#![allow(clippy::disallowed_methods)] // the virtual clock starts from one real Instant

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use protocol::{Grant, GrantError, GrantRole, NodeId, ParticipantId, RoomId};
use relay::sfu::testing::{Harness, Publish, SECRET, UNIX_NOW};
use relay::sfu::{DropReason, LeaveReason, SfuError, SfuEvent};
use str0m::ice::{StunMessage, TransId};
use str0m::media::MediaKind;

fn av() -> Publish {
    Publish {
        audio: true,
        video: true,
        simulcast: Vec::new(),
    }
}

fn wired(h: &Harness, publisher: &str, subs: &[usize]) -> bool {
    let id = ParticipantId::new(publisher).unwrap();
    subs.iter()
        .all(|&s| h.peer(s).mid_from(&id, MediaKind::Video).is_some())
}

/// A minimal valid-looking offer from a throwaway str0m peer.
fn offer() -> String {
    let mut rtc = str0m::Rtc::new(Instant::now());
    let mut change = rtc.sdp_api();
    change.add_channel("room".into());
    change.apply().unwrap().0.to_sdp_string()
}

fn grant(room: &str, participant: &str, node: &str, exp: u64) -> Grant {
    Grant {
        room: RoomId::new(room).unwrap(),
        participant: ParticipantId::new(participant).unwrap(),
        role: GrantRole::Participant,
        node: NodeId::new(node).unwrap(),
        exp,
    }
}

#[test]
fn forged_expired_and_other_node_grants_are_refused() {
    let mut h = Harness::new(Instant::now());
    let now = h.now;
    let sdp = offer();
    let cases = [
        (
            grant("r", "p", "relay-test", UNIX_NOW + 60).sign(b"not-the-secret"),
            GrantError::BadSignature,
        ),
        (
            grant("r", "p", "relay-test", UNIX_NOW - 1).sign(SECRET),
            GrantError::Expired,
        ),
        (
            grant("r", "p", "relay-other", UNIX_NOW + 60).sign(SECRET),
            GrantError::WrongNode,
        ),
        ("garbage".to_owned(), GrantError::Malformed),
    ];
    for (token, expected) in cases {
        match h.sfu.handle_offer(now, UNIX_NOW, &token, &sdp) {
            Err(SfuError::Grant(e)) => assert_eq!(e, expected),
            other => panic!("expected {expected:?}, got {other:?}"),
        }
    }
    let token = grant("r", "p", "relay-test", UNIX_NOW + 60).sign(SECRET);
    assert!(matches!(
        h.sfu.handle_offer(now, UNIX_NOW, &token, "v=0 not sdp"),
        Err(SfuError::Sdp(_))
    ));
    assert!(h.sfu.rooms().is_empty(), "nothing was created");
    assert!(h.sfu.handle_offer(now, UNIX_NOW, &token, &sdp).is_ok());
}

#[test]
fn draining_refuses_new_rooms_but_not_joins_to_existing_ones() {
    let mut h = Harness::new(Instant::now());
    h.join("existing", "a", &Publish::default());
    h.sfu.set_draining(true);
    let now = h.now;
    let sdp = offer();
    let new_room = grant("new", "b", "relay-test", UNIX_NOW + 60).sign(SECRET);
    assert!(matches!(
        h.sfu.handle_offer(now, UNIX_NOW, &new_room, &sdp),
        Err(SfuError::Draining)
    ));
    let existing = grant("existing", "b", "relay-test", UNIX_NOW + 60).sign(SECRET);
    assert!(h.sfu.handle_offer(now, UNIX_NOW, &existing, &sdp).is_ok());
}

#[test]
fn a_participant_leaving_stops_its_forwarding() {
    let mut h = Harness::new(Instant::now());
    let publisher = h.join("r", "pub", &av());
    let stays = h.join("r", "stays", &Publish::default());
    let goes = h.join("r", "goes", &Publish::default());
    assert!(h.run_until(|h| wired(h, "pub", &[stays, goes]), Duration::from_secs(5)));
    h.media_for(&[publisher], Duration::from_secs(1));

    // A subscriber leaves: only the other one is still fed.
    let room = RoomId::new("r").unwrap();
    h.sfu.kick(&room, &ParticipantId::new("goes").unwrap());
    h.run_for(Duration::from_millis(100));
    assert!(h.events.iter().any(|e| matches!(e,
        SfuEvent::ParticipantLeft { participant, reason: LeaveReason::Kicked, .. }
        if participant.as_str() == "goes")));
    let (goes_before, stays_before) = (h.peer(goes).received.len(), h.peer(stays).received.len());
    let fwd = h.sfu.stats().rtp_forwarded;
    h.media_for(&[publisher], Duration::from_secs(1));
    assert_eq!(
        h.peer(goes).received.len(),
        goes_before,
        "nothing after the kick"
    );
    let fed = h.peer(stays).received.len() - stays_before;
    assert!(fed > 100, "the other subscriber is still fed: {fed}");
    assert_eq!(
        h.sfu.stats().rtp_forwarded - fwd,
        fed as u64,
        "one copy per packet, one subscriber"
    );

    // The publisher leaves: its client gets a DTLS close, its tracks stop for
    // the subscriber (new offer), and nothing more is forwarded.
    h.sfu.kick(&room, &ParticipantId::new("pub").unwrap());
    h.run_for(Duration::from_millis(200));
    assert!(
        !h.peer(publisher).rtc.is_alive(),
        "the kicked client was closed"
    );
    let renegotiations = h
        .events
        .iter()
        .filter(|e| matches!(e, SfuEvent::Renegotiate { participant, .. } if participant.as_str() == "stays"))
        .count();
    assert!(
        renegotiations >= 2,
        "the subscriber's m-lines were stopped by a new offer"
    );
    let fwd = h.sfu.stats().rtp_forwarded;
    h.media_for(&[publisher], Duration::from_millis(500));
    assert_eq!(
        h.sfu.stats().rtp_forwarded,
        fwd,
        "a gone publisher is not forwarded"
    );
    assert_eq!(h.sfu.stats().tracks, 0);
    assert_eq!(
        h.sfu.participants(&room),
        vec![ParticipantId::new("stays").unwrap()]
    );
}

#[test]
fn a_silent_participant_times_out_and_leaves() {
    let mut h = Harness::new(Instant::now());
    let a = h.join("r", "a", &av());
    let b = h.join("r", "b", &Publish::default());
    assert!(h.run_until(|h| wired(h, "a", &[b]), Duration::from_secs(5)));
    let gone = h.peer(a).addr;
    h.set_drop(move |d| d.source == gone);
    let left = h.run_until(
        |h| {
            h.events.iter().any(|e| {
                matches!(e,
            SfuEvent::ParticipantLeft { participant, reason: LeaveReason::Disconnected, .. }
            if participant.as_str() == "a")
            })
        },
        Duration::from_secs(60),
    );
    assert!(left, "ICE consent expiry removed the silent participant");
    assert_eq!(h.sfu.stats().participants, 1);
}

#[test]
fn garbage_and_forged_datagrams_are_dropped_and_counted() {
    let mut h = Harness::new(Instant::now());
    let talker = h.join("r", "a", &av());
    let listener = h.join("r", "b", &Publish::default());
    assert!(h.run_until(|h| wired(h, "a", &[listener]), Duration::from_secs(5)));
    h.run_for(Duration::from_millis(100));
    let stranger: SocketAddr = "10.9.9.9:9999".parse().unwrap();
    let (now, to) = (h.now, h.sfu_addr);
    let before = h.sfu.stats();

    h.sfu.handle_receive(now, stranger, to, &[0x80; 1600]);
    h.sfu.handle_receive(now, stranger, to, &[]);
    h.sfu.handle_receive(now, stranger, to, &[0xff, 0x00, 0x13]);
    h.sfu.handle_receive(
        now,
        stranger,
        to,
        &[0x80, 0x60, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1],
    );
    // STUN naming a real ufrag, but signed with the wrong password.
    let user = format!("{}:x", h.peer(talker).relay_ufrag);
    let msg = StunMessage::binding_request(&user, TransId::new(), true, 1, 1, true);
    let mut buf = [0u8; 512];
    let hmac = |k: &[u8], m: &[&[u8]]| {
        let p = str0m::crypto::from_feature_flags();
        p.sha1_hmac_provider.sha1_hmac(k, m)
    };
    let n = msg
        .to_bytes(Some(b"wrong-password"), &mut buf, hmac)
        .unwrap();
    h.sfu.handle_receive(now, stranger, to, &buf[..n]);
    // STUN naming nobody.
    let msg = StunMessage::binding_request("nobody:x", TransId::new(), true, 1, 1, true);
    let n = msg.to_bytes(Some(b"pw"), &mut buf, hmac).unwrap();
    h.sfu.handle_receive(now, stranger, to, &buf[..n]);
    // Garbage from a known peer's address: its str0m instance rejects it.
    let known = h.peer(talker).addr;
    h.sfu.handle_receive(
        now,
        known,
        to,
        &[0x80, 0x60, 0, 9, 0, 0, 0, 0, 0, 0, 0, 1, 1, 2, 3],
    );

    let after = h.sfu.stats();
    let delta = |r| after.dropped(r) - before.dropped(r);
    assert_eq!(delta(DropReason::Oversized), 1);
    assert_eq!(delta(DropReason::Malformed), 2);
    assert_eq!(delta(DropReason::UnknownSource), 2);
    assert_eq!(delta(DropReason::Rejected), 1);
    assert_eq!(after.packets_in - before.packets_in, 7);
    let mut replies = 0;
    while let relay::sfu::Output::Transmit(t) = h.sfu.poll_output() {
        assert_ne!(t.destination, stranger, "no reply to unauthenticated input");
        replies += 1;
    }
    assert!(replies <= 1);
    // The session survives.
    h.media_for(&[talker], Duration::from_millis(500));
    assert!(!h.peer(listener).received.is_empty());
}
