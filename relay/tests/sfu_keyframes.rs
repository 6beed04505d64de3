//! Keyframe requests: a new subscriber triggers exactly one, and a
//! subscriber's repeated PLIs reach the publisher at most once a second.
#![allow(clippy::disallowed_methods)] // the virtual clock starts from one real Instant

use std::time::{Duration, Instant};

use protocol::ParticipantId;
use relay::sfu::testing::{Harness, Publish, video_tag};
use str0m::media::MediaKind;

fn video() -> Publish {
    Publish {
        audio: false,
        video: true,
        simulcast: Vec::new(),
    }
}

fn connected(h: &Harness, publisher: usize, subs: &[usize]) -> bool {
    let id = h.peer(publisher).id.clone();
    subs.iter()
        .all(|&s| h.peer(s).mid_from(&id, MediaKind::Video).is_some())
}

#[test]
fn a_new_subscriber_triggers_exactly_one_keyframe_request() {
    let mut h = Harness::new(Instant::now());
    let publisher = h.join("r", "pub", &video());
    let first = h.join("r", "first", &Publish::default());
    assert!(h.run_until(
        |h| connected(h, publisher, &[first]),
        Duration::from_secs(5)
    ));
    h.media_for(&[publisher], Duration::from_secs(3));
    let before = h.peer(publisher).keyframe_requests.len();

    let late = h.join("r", "late", &Publish::default());
    assert!(h.run_until(|h| connected(h, publisher, &[late]), Duration::from_secs(5)));
    h.media_for(&[publisher], Duration::from_secs(3));

    assert_eq!(
        h.peer(publisher).keyframe_requests.len(),
        before + 1,
        "one request for the new subscriber"
    );
    let pub_id = ParticipantId::new("pub").unwrap();
    let got = h.peer(late).received_from(&pub_id, MediaKind::Video);
    assert!(!got.is_empty(), "the late subscriber receives video");
    let (_, _, keyframe) = video_tag(&got[0].payload).unwrap();
    assert!(keyframe, "and its first packet starts a keyframe");
}

#[test]
fn repeated_subscriber_plis_are_throttled_to_one_per_second() {
    let mut h = Harness::new(Instant::now());
    let publisher = h.join("r", "pub", &video());
    let sub = h.join("r", "sub", &Publish::default());
    assert!(h.run_until(|h| connected(h, publisher, &[sub]), Duration::from_secs(5)));
    h.media_for(&[publisher], Duration::from_secs(2));
    let before = h.peer(publisher).keyframe_requests.len();
    let pub_id = ParticipantId::new("pub").unwrap();
    let mid = h.peer(sub).mid_from(&pub_id, MediaKind::Video).unwrap();

    // A PLI every 40 ms for 3 s: 75 requests.
    let mut sent = 0;
    let end = h.now + Duration::from_secs(3);
    while h.now < end {
        if h.peer_mut(sub).request_keyframe(mid) {
            sent += 1;
        }
        h.media_for(&[publisher], Duration::from_millis(40));
    }
    h.media_for(&[publisher], Duration::from_secs(1));
    let forwarded = h.peer(publisher).keyframe_requests.len() - before;
    assert!(sent >= 70, "the subscriber sent {sent} PLIs");
    assert!(
        (2..=4).contains(&forwarded),
        "{forwarded} keyframe requests reached the publisher in ~4 s"
    );
}
