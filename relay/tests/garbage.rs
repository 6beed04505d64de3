//! Hostile datagrams into the SFU core (deterministic random input): no
//! panic, no reply to unauthenticated input, every datagram counted.
//! The same harness backs the cargo-fuzz target `fuzz/sfu_receive`.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use protocol::ParticipantId;
use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};
use relay::fuzzing::{CallHarness, DatagramHarness, parse_control};
use relay::sfu::DropReason;
use relay::sfu::testing::{Harness, Publish};
use str0m::media::MediaKind;

const DATAGRAMS: u64 = 5_000;

/// A datagram whose first byte lands in each of the demultiplexing ranges
/// (STUN 0–3, DTLS 20–63, RTP/RTCP 128–191) or anywhere.
fn datagram(rng: &mut StdRng, i: u64) -> Vec<u8> {
    let len = match i % 5 {
        0 => rng.random_range(0..24),
        4 => rng.random_range(1400..4000),
        _ => rng.random_range(0..1400),
    };
    let mut d = vec![0u8; len];
    rng.fill(&mut d[..]);
    if let Some(first) = d.first_mut() {
        *first = match i % 4 {
            0 => rng.random_range(0..4),
            1 => rng.random_range(20..64),
            2 => rng.random_range(128..192),
            _ => *first,
        };
    }
    // Half the STUN-looking ones carry the magic cookie, to get past the
    // first check into attribute parsing.
    if i.is_multiple_of(8) && d.len() >= 8 {
        d[4..8].copy_from_slice(&0x2112_a442_u32.to_be_bytes());
    }
    d
}

#[test]
fn thousands_of_random_datagrams_never_panic_and_get_no_reply() {
    let mut harness = DatagramHarness::new();
    let mut rng = StdRng::seed_from_u64(0x00a7_e400);
    for i in 0..DATAGRAMS {
        let mut input = vec![rng.random::<u8>(), rng.random_range(0..4)];
        input.extend(datagram(&mut rng, i));
        harness.feed(&input);
    }
    assert_eq!(
        harness.transmits(),
        0,
        "the relay answered unauthenticated input"
    );
    let stats = harness.sfu().stats();
    assert_eq!(stats.packets_in, DATAGRAMS);
    let dropped: u64 = DropReason::ALL.iter().map(|&r| stats.dropped(r)).sum();
    assert_eq!(
        dropped, DATAGRAMS,
        "every datagram is counted as a drop: {stats:?}"
    );
    assert!(stats.dropped(DropReason::Oversized) > 0);
    assert_eq!(stats.participants, 0);
}

#[test]
fn random_control_messages_never_panic() {
    let mut rng = StdRng::seed_from_u64(7);
    let seeds: [&[u8]; 4] = [
        br#"{"type":"offer","request":1,"grant":"a.b","sdp":"v=0"}"#,
        br#"{"type":"kick","room":"r","participant":"p"}"#,
        br#"{"type":"registered","heartbeat_ms":1000}"#,
        b"eyJyb29tIjoiciJ9.c2ln",
    ];
    for i in 0..5_000 {
        let mut input = seeds[i % seeds.len()].to_vec();
        // Flip, insert or truncate a few bytes.
        for _ in 0..rng.random_range(1..4) {
            let at = rng.random_range(0..input.len());
            match rng.random_range(0..3) {
                0 => input[at] = rng.random(),
                1 => input.insert(at, rng.random()),
                _ => input.truncate(at.max(1)),
            }
        }
        parse_control(&input);
    }
}

/// Hostile datagrams that claim to come from connected participants (a
/// spoofed source address) and from strangers, in the middle of a call:
/// each is dropped and counted, and the call goes on with every packet.
#[test]
#[allow(clippy::disallowed_methods)] // the virtual clock starts from one real Instant
fn hostile_datagrams_in_a_call_are_dropped_and_the_call_goes_on() {
    let mut h = Harness::new(Instant::now());
    let av = Publish {
        audio: true,
        video: true,
        simulcast: Vec::new(),
    };
    let alice = h.join("room", "alice", &av);
    let bob = h.join("room", "bob", &Publish::default());
    let wired = h.run_until(
        |h| h.peer(alice).connected && h.peer(bob).remote_media.len() == 2,
        Duration::from_secs(5),
    );
    assert!(wired, "the call is set up");

    let stranger: SocketAddr = "10.9.9.9:5000".parse().unwrap();
    let sources = [h.peer(alice).addr, h.peer(bob).addr, stranger];
    let before = h.sfu.stats();
    let mut rng = StdRng::seed_from_u64(0x0bad_ca11);
    let mut sent = 0u64;
    for round in 0..30 {
        for i in 0..100 {
            let d = datagram(&mut rng, round * 100 + i);
            let source = sources[(i % 3) as usize];
            let (now, to) = (h.now, h.sfu_addr);
            h.sfu.handle_receive(now, source, to, &d);
            sent += 1;
        }
        // Real media goes on between the bursts.
        let now = h.now;
        h.peer_mut(alice).send_audio(now, 30);
        let key = round == 0 || h.peer(alice).keyframe_wanted(None);
        h.peer_mut(alice).send_video_frame(now, None, key, 2, 600);
        h.run_for(Duration::from_millis(20));
    }
    h.run_for(Duration::from_millis(300));

    let after = h.sfu.stats();
    assert_eq!(after.participants, 2, "nobody was disconnected by garbage");
    assert!(after.packets_in - before.packets_in >= sent);
    let dropped: u64 = DropReason::ALL
        .iter()
        .map(|&r| after.dropped(r) - before.dropped(r))
        .sum();
    assert!(
        dropped >= sent / 3,
        "at least the strangers' datagrams are counted: {dropped} of {sent}"
    );

    // Media sent after the garbage still reaches bob, every packet.
    let alice_id = ParticipantId::new("alice").unwrap();
    let received_before = h.peer(bob).received_from(&alice_id, MediaKind::Audio).len();
    let mut sent_after = 0;
    for _ in 0..10 {
        let now = h.now;
        sent_after += usize::from(h.peer_mut(alice).send_audio(now, 30).is_some());
        h.run_for(Duration::from_millis(20));
    }
    h.run_for(Duration::from_millis(200));
    let received_after = h.peer(bob).received_from(&alice_id, MediaKind::Audio).len();
    assert_eq!(received_after - received_before, sent_after);
}

/// The in-call fuzz harness (`fuzz/sfu_receive_in_call`) on seeded input.
#[test]
fn the_in_call_fuzz_harness_survives_random_input() {
    let mut harness = CallHarness::new();
    let mut rng = StdRng::seed_from_u64(99);
    for i in 0..1_000 {
        let mut input = vec![rng.random::<u8>(), rng.random_range(0..3)];
        input.extend(datagram(&mut rng, i));
        harness.feed(&input);
    }
    assert_eq!(harness.participants(), 2);
}
