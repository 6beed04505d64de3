//! Hostile datagrams into the SFU core (deterministic random input): no
//! panic, no reply to unauthenticated input, every datagram counted.
//! The same harness backs the cargo-fuzz target `fuzz/sfu_receive`.

use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};
use relay::fuzzing::{DatagramHarness, parse_control};
use relay::sfu::DropReason;

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
