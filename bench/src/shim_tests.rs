//! Shim tests with plain UDP sockets on loopback.

use std::net::UdpSocket;
use std::time::{Duration, Instant};

use super::*;

fn socket() -> UdpSocket {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s
}

fn rtp(seq: u16) -> Vec<u8> {
    let mut p = vec![0x80, 96];
    p.extend_from_slice(&seq.to_be_bytes());
    p.resize(100, 0);
    p
}

/// Sends `n` RTP packets through a link, each batch followed by a non-RTP end marker
/// (never dropped: `media_only`), reading until the marker: returns how many arrived.
fn pump(shim: &Shim, n: u16) -> u64 {
    let (tx, rx) = (socket(), socket());
    let link = shim
        .link(tx.local_addr().unwrap(), rx.local_addr().unwrap())
        .unwrap();
    let mut got = 0;
    let mut buf = [0u8; 2048];
    // In batches of 50, so no socket buffer overflows and every loss is the shim's.
    for batch in (0..n).collect::<Vec<_>>().chunks(50) {
        for &seq in batch {
            tx.send_to(&rtp(seq), link.for_sender).unwrap();
        }
        tx.send_to(&[0x00, 0xFF], link.for_sender).unwrap();
        loop {
            let (len, from) = rx.recv_from(&mut buf).unwrap();
            assert_eq!(from, link.for_receiver, "the receiver only sees the shim");
            if buf[..len] == [0x00, 0xFF] {
                break;
            }
            got += 1;
        }
    }
    got
}

#[test]
fn drops_the_configured_fraction_of_rtp() {
    let shim = Shim::start(ShimConfig {
        loss: 0.1,
        ..ShimConfig::default()
    })
    .unwrap();
    let got = pump(&shim, 2000);
    let dropped = shim.counters().dropped.load(Relaxed);
    assert_eq!(got + dropped, 2000);
    assert!(
        (150..=250).contains(&dropped),
        "dropped {dropped} of 2000 at 10 %"
    );
}

#[test]
fn adds_the_configured_delay() {
    let shim = Shim::start(ShimConfig {
        delay: Duration::from_millis(40),
        ..ShimConfig::default()
    })
    .unwrap();
    let (tx, rx) = (socket(), socket());
    let link = shim
        .link(tx.local_addr().unwrap(), rx.local_addr().unwrap())
        .unwrap();
    let mut buf = [0u8; 2048];
    for seq in 0..5 {
        let sent = Instant::now();
        tx.send_to(&rtp(seq), link.for_sender).unwrap();
        let (len, _) = rx.recv_from(&mut buf).unwrap();
        let d = sent.elapsed();
        assert_eq!(buf[..len], rtp(seq)[..]);
        assert!(
            d >= Duration::from_millis(40) && d < Duration::from_millis(200),
            "{d:?}"
        );
    }
}

#[test]
fn returns_traffic_and_ignores_strangers() {
    let shim = Shim::start(ShimConfig {
        loss: 1.0,
        ..ShimConfig::default()
    })
    .unwrap();
    let (a, b, stranger) = (socket(), socket(), socket());
    let link = shim
        .link(a.local_addr().unwrap(), b.local_addr().unwrap())
        .unwrap();
    let mut buf = [0u8; 64];
    // Non-RTP (a STUN-like first byte) passes even at 100 % loss: media_only.
    a.send_to(&[0x00, 0x01, 0, 0], link.for_sender).unwrap();
    assert_eq!(b.recv_from(&mut buf).unwrap().0, 4);
    // The receiver's replies reach the sender from the shim's front port.
    b.send_to(b"reply", link.for_receiver).unwrap();
    let (n, from) = a.recv_from(&mut buf).unwrap();
    assert_eq!((&buf[..n], from), (&b"reply"[..], link.for_sender));
    // A stranger gets nothing forwarded: the next thing b sees is a's next packet.
    stranger.send_to(b"hello", link.for_sender).unwrap();
    a.send_to(&[0x00, 0x02], link.for_sender).unwrap();
    let n = b.recv_from(&mut buf).unwrap().0;
    assert_eq!(&buf[..n], &[0x00, 0x02]);
    assert_eq!(shim.counters().strangers.load(Relaxed), 1);
}

#[test]
fn refuses_bad_config_and_remote_endpoints() {
    assert!(
        Shim::start(ShimConfig {
            loss: 1.5,
            ..ShimConfig::default()
        })
        .is_err()
    );
    let shim = Shim::start(ShimConfig::default()).unwrap();
    let remote: SocketAddr = "192.0.2.1:9".parse().unwrap();
    assert!(shim.link(remote, "127.0.0.1:9".parse().unwrap()).is_err());
}

#[test]
fn rtp_classification_follows_rfc7983() {
    assert!(is_rtp(&[0x80, 96]));
    assert!(is_rtp(&[0x80, 0x60 | 0x80])); // marker bit set
    assert!(!is_rtp(&[0x80, 200])); // RTCP SR
    assert!(!is_rtp(&[0x00, 0x01])); // STUN
    assert!(!is_rtp(&[22, 0xfe])); // DTLS
    assert!(!is_rtp(&[0x80]));
}
