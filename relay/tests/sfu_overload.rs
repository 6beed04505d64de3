//! A subscriber that cannot keep up: when its send queue falls behind, the
//! relay drops its video until the next keyframe (counted as
//! `stale_video`), asks the publisher for that keyframe, and keeps every
//! audio packet.
#![allow(clippy::disallowed_methods)] // the virtual clock starts from one real Instant

use std::time::{Duration, Instant};

use protocol::ParticipantId;
use relay::sfu::testing::{Harness, Publish, video_tag};
use relay::sfu::{BwePolicy, DropReason};
use str0m::media::MediaKind;

#[test]
fn a_lagging_subscriber_loses_stale_video_not_audio_and_recovers_on_a_keyframe() {
    // BWE starting at 100 kbit/s paces an ~850 kbit/s stream: the
    // subscriber's queue grows far past the staleness limit at once.
    let mut h = Harness::with_config(Instant::now(), |c| {
        c.bwe_initial_bps = Some(100_000);
        c.bwe_policy = BwePolicy::Always;
    });
    let publisher = h.join(
        "r",
        "pub",
        &Publish {
            audio: true,
            video: true,
            simulcast: Vec::new(),
        },
    );
    let sub = h.join("r", "sub", &Publish::default());
    assert!(h.run_until(
        |h| h.peer(publisher).connected && h.peer(sub).remote_media.len() == 2,
        Duration::from_secs(5)
    ));

    let mut audio_sent = 0;
    let mut requests_at_first_drop = None;
    for frame in 0..250 {
        let now = h.now;
        let p = h.peer_mut(publisher);
        audio_sent += usize::from(p.send_audio(now, 30).is_some());
        let key = frame == 0 || p.keyframe_wanted(None);
        p.send_video_frame(now, None, key, 2, 1000);
        h.run_for(Duration::from_millis(20));
        if requests_at_first_drop.is_none() && h.sfu.stats().dropped(DropReason::StaleVideo) > 0 {
            requests_at_first_drop = Some(h.peer(publisher).keyframe_requests.len());
        }
    }
    h.run_for(Duration::from_secs(3));

    let at_drop = requests_at_first_drop.expect("the lagging subscriber's video was dropped");
    assert!(
        h.peer(publisher).keyframe_requests.len() > at_drop,
        "the publisher was asked for a keyframe after the drop"
    );
    let id = ParticipantId::new("pub").unwrap();
    let audio = h.peer(sub).received_from(&id, MediaKind::Audio).len();
    assert_eq!(audio, audio_sent, "every audio packet arrives");

    let video = h.peer(sub).received_from(&id, MediaKind::Video);
    let sent_seqs: Vec<u32> = video
        .iter()
        .map(|r| video_tag(&r.payload).unwrap().1)
        .collect();
    let gap = sent_seqs
        .windows(2)
        .position(|w| w[1] != w[0] + 1)
        .expect("some video was skipped");
    let resumed = video[gap + 1];
    assert!(
        video_tag(&resumed.payload).unwrap().2,
        "forwarding resumes on a keyframe"
    );
    let mut seqs: Vec<u64> = video.iter().map(|r| r.seq).collect();
    seqs.sort_unstable();
    for w in seqs.windows(2) {
        assert_eq!(
            w[1],
            w[0] + 1,
            "the subscriber's sequence numbers stay continuous"
        );
    }
}
