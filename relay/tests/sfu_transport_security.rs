//! Media transport security (issue 8): DTLS-SRTP only, the DTLS certificate
//! must match the SDP fingerprint, and a peer silent for 30 s gets nothing.
#![allow(clippy::disallowed_methods)] // the virtual clock starts from one real Instant

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use protocol::ParticipantId;
use relay::sfu::testing::{Harness, Publish};
use relay::sfu::{LeaveReason, SfuError, SfuEvent};
use str0m::media::MediaKind;

fn av() -> Publish {
    Publish {
        audio: true,
        video: true,
        simulcast: Vec::new(),
    }
}

fn left(h: &Harness, who: &str) -> Option<LeaveReason> {
    h.events.iter().find_map(|e| match e {
        SfuEvent::ParticipantLeft {
            participant,
            reason,
            ..
        } if participant.as_str() == who => Some(*reason),
        _ => None,
    })
}

fn connected(h: &Harness, who: &str) -> bool {
    h.events.iter().any(|e| {
        matches!(e, SfuEvent::ParticipantConnected { participant, .. } if participant.as_str() == who)
    })
}

fn refused(result: Result<usize, SfuError>) -> String {
    match result {
        Err(SfuError::Sdp(why)) => why,
        other => panic!("expected an SDP refusal, got {other:?}"),
    }
}

#[test]
fn offers_that_are_not_dtls_srtp_are_refused() {
    let mut h = Harness::new(Instant::now());
    let no_fingerprint = h.join_with("r", "a", &av(), |sdp| {
        sdp.lines()
            .filter(|l| !l.starts_with("a=fingerprint:"))
            .fold(String::new(), |acc, l| acc + l + "\r\n")
    });
    assert!(refused(no_fingerprint).contains("fingerprint"));

    let sdes = h.join_with("r", "b", &av(), |sdp| {
        sdp.replace(
            "a=mid:",
            "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz\r\na=mid:",
        )
    });
    assert!(refused(sdes).contains("a=crypto"));

    for proto in ["RTP/SAVPF", "RTP/AVPF", "RTP/AVP"] {
        let plain = h.join_with("r", "c", &av(), |sdp| {
            sdp.replace("UDP/TLS/RTP/SAVPF", proto)
        });
        assert!(refused(plain).contains("not DTLS-SRTP"), "{proto}");
    }
    assert_eq!(h.sfu.stats().participants, 0, "nobody was let in");

    // The unedited offer is fine.
    h.join("r", "d", &av());
    assert_eq!(h.sfu.stats().participants, 1);
}

/// Changes the first byte of the offer's certificate fingerprint: the
/// peer's real DTLS certificate no longer matches what the SDP promises
/// (as when someone on the path substitutes their own certificate).
fn wrong_fingerprint(sdp: String) -> String {
    let Some(at) = sdp.find("a=fingerprint:sha-256 ") else {
        return sdp;
    };
    let hex = at + "a=fingerprint:sha-256 ".len();
    let first = if sdp[hex..].starts_with("00") {
        "01"
    } else {
        "00"
    };
    let mut out = sdp;
    out.replace_range(hex..hex + 2, first);
    out
}

#[test]
fn a_peer_whose_certificate_does_not_match_its_fingerprint_never_gets_media() {
    let mut h = Harness::new(Instant::now());
    let publisher = h.join("r", "pub", &av());
    let honest = h.join("r", "honest", &Publish::default());
    let impostor = h
        .join_with("r", "impostor", &Publish::default(), wrong_fingerprint)
        .expect("the SDP itself is acceptable");
    let impostor_addr = h.peer(impostor).addr;
    // Count every SRTP/SRTCP datagram (first byte 128..=191) the relay
    // sends to the impostor.
    let srtp_to_impostor = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&srtp_to_impostor);
    h.set_drop(move |d| {
        if d.destination == impostor_addr && matches!(d.contents.first(), Some(128..=191)) {
            counter.fetch_add(1, Ordering::Relaxed);
        }
        false
    });
    let pub_id = ParticipantId::new("pub").unwrap();
    let wired = h.run_until(
        |h| h.peer(honest).mid_from(&pub_id, MediaKind::Video).is_some(),
        Duration::from_secs(5),
    );
    assert!(wired, "the honest subscriber is set up");
    h.media_for(&[publisher], Duration::from_secs(3));

    assert!(
        !h.peer(honest)
            .received_from(&pub_id, MediaKind::Video)
            .is_empty(),
        "the honest subscriber gets media (the test can tell)"
    );
    assert!(
        h.peer(impostor).received.is_empty(),
        "no media for the impostor"
    );
    assert_eq!(
        srtp_to_impostor.load(Ordering::Relaxed),
        0,
        "no SRTP at all"
    );
    assert!(!connected(&h, "impostor"), "never reported connected");
    assert_eq!(left(&h, "impostor"), Some(LeaveReason::Disconnected));
    assert!(left(&h, "honest").is_none());
}

#[test]
fn a_peer_silent_for_30_seconds_is_dropped_and_sent_nothing_more() {
    let mut h = Harness::new(Instant::now());
    let publisher = h.join("r", "pub", &av());
    let quiet = h.join("r", "quiet", &Publish::default());
    let quiet_addr = h.peer(quiet).addr;
    let pub_id = ParticipantId::new("pub").unwrap();
    let wired = h.run_until(
        |h| h.peer(quiet).mid_from(&pub_id, MediaKind::Video).is_some(),
        Duration::from_secs(5),
    );
    assert!(wired);
    h.media_for(&[publisher], Duration::from_secs(1));
    assert!(!h.peer(quiet).received.is_empty(), "media flows at first");

    // From now on nothing from the quiet peer reaches the relay (no STUN
    // consent checks, no RTCP); count what the relay still sends it.
    let silent = Arc::new(AtomicBool::new(true));
    let to_quiet = Arc::new(AtomicUsize::new(0));
    let (s, t) = (Arc::clone(&silent), Arc::clone(&to_quiet));
    h.set_drop(move |d| {
        if d.destination == quiet_addr {
            t.fetch_add(1, Ordering::Relaxed);
        }
        s.load(Ordering::Relaxed) && d.source == quiet_addr
    });
    let went_silent = h.now;
    while left(&h, "quiet").is_none() && h.now < went_silent + Duration::from_secs(40) {
        h.media_for(&[publisher], Duration::from_millis(100));
    }
    let after = h.now - went_silent;
    assert_eq!(left(&h, "quiet"), Some(LeaveReason::Disconnected));
    assert!(after <= Duration::from_secs(30), "dropped after {after:?}");
    assert!(
        after >= Duration::from_secs(5),
        "a short silence is tolerated (dropped after {after:?})"
    );

    // Nothing more is sent to it, while the publisher, which keeps its
    // consent fresh, stays.
    to_quiet.store(0, Ordering::Relaxed);
    h.media_for(&[publisher], Duration::from_secs(5));
    assert_eq!(to_quiet.load(Ordering::Relaxed), 0);
    assert!(left(&h, "pub").is_none(), "the talking peer stays");
}
