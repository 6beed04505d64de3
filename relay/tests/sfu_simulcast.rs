//! Simulcast: the relay switches a subscriber's layer only on a keyframe of
//! the new layer, keeping its sequence numbers continuous.
#![allow(clippy::disallowed_methods)] // the virtual clock starts from one real Instant

use std::time::{Duration, Instant};

use protocol::{ParticipantId, RoomId};
use relay::sfu::Quality;
use relay::sfu::testing::{Harness, Publish, Received, video_tag};
use str0m::media::MediaKind;

fn simulcast() -> Publish {
    Publish {
        audio: false,
        video: true,
        simulcast: vec!["l", "m", "h"],
    }
}

fn video_from_pub(h: &Harness, sub: usize) -> Vec<Received> {
    let id = ParticipantId::new("pub").unwrap();
    let mut v: Vec<Received> = h
        .peer(sub)
        .received_from(&id, MediaKind::Video)
        .into_iter()
        .cloned()
        .collect();
    v.sort_by_key(|r| r.seq);
    v
}

fn start(bwe: Option<u64>) -> (Harness, usize, usize) {
    let mut h = Harness::with_config(Instant::now(), |c| c.bwe_initial_bps = bwe);
    let publisher = h.join("r", "pub", &simulcast());
    let sub = h.join("r", "sub", &Publish::default());
    let id = ParticipantId::new("pub").unwrap();
    assert!(h.run_until(
        |h| h.peer(sub).mid_from(&id, MediaKind::Video).is_some(),
        Duration::from_secs(5)
    ));
    (h, publisher, sub)
}

#[test]
fn a_layer_switch_happens_on_a_keyframe_and_sequence_numbers_stay_continuous() {
    // No BWE: the subscriber gets the best layer until it asks for less.
    let (mut h, publisher, sub) = start(None);
    h.media_for(&[publisher], Duration::from_secs(2));
    let before = video_from_pub(&h, sub).len();
    assert!(before > 100, "video flowed: {before}");
    assert!(
        video_from_pub(&h, sub)
            .iter()
            .rev()
            .take(20)
            .all(|r| video_tag(&r.payload).unwrap().0 == 2),
        "the subscriber receives the high layer"
    );

    let room = RoomId::new("r").unwrap();
    let (sub_id, pub_id) = (
        ParticipantId::new("sub").unwrap(),
        ParticipantId::new("pub").unwrap(),
    );
    h.sfu
        .set_quality(&room, &sub_id, &pub_id, Quality::Low)
        .unwrap();
    h.media_for(&[publisher], Duration::from_secs(2));

    let got = video_from_pub(&h, sub);
    let layers: Vec<u8> = got
        .iter()
        .map(|r| video_tag(&r.payload).unwrap().0)
        .collect();
    let switch = before
        + layers[before..]
            .iter()
            .position(|&l| l == 0)
            .expect("switched to the low layer");
    assert!(
        layers[before - 20..switch].iter().all(|&l| l == 2),
        "high until the switch"
    );
    assert!(
        layers[switch..].iter().all(|&l| l == 0),
        "low after it, no flapping back"
    );
    assert!(
        video_tag(&got[switch].payload).unwrap().2,
        "the switch starts on a keyframe"
    );
    assert!(
        h.peer(publisher)
            .keyframe_requests
            .iter()
            .any(|k| k.rid == Some("l".into())),
        "the relay asked the low layer for a keyframe"
    );
    for w in got.windows(2) {
        assert_eq!(w[1].seq, w[0].seq + 1, "sequence numbers are continuous");
        assert!(
            w[1].ts.wrapping_sub(w[0].ts) < 1 << 31,
            "timestamps never go back"
        );
    }
    assert_eq!(got[switch].ssrc, got[0].ssrc, "one outgoing SSRC");
}

#[test]
fn with_bandwidth_estimation_the_layer_starts_low_and_follows_the_estimate() {
    let (mut h, publisher, sub) = start(Some(300_000));
    // The estimate starts at 300 kbit/s; str0m probes it up within ~0.5 s
    // on this loss-free link.
    h.media_for(&[publisher], Duration::from_millis(400));
    let early: Vec<u8> = video_from_pub(&h, sub)
        .iter()
        .map(|r| video_tag(&r.payload).unwrap().0)
        .collect();
    assert!(early.len() > 10);
    assert!(
        early.iter().all(|&l| l == 0),
        "on the lowest layer under a 300 kbit/s estimate: {early:?}"
    );
    h.media_for(&[publisher], Duration::from_secs(3));
    let got = video_from_pub(&h, sub);
    let last = video_tag(&got.last().unwrap().payload).unwrap().0;
    assert_eq!(
        last, 2,
        "the estimate grew and the layer went up to the best"
    );
    for w in got.windows(2) {
        assert_eq!(w[1].seq, w[0].seq + 1, "sequence numbers are continuous");
    }
}
