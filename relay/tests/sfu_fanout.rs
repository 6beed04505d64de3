//! One publisher reaches every subscriber with every packet.
#![allow(clippy::disallowed_methods)] // the virtual clock starts from one real Instant

use std::time::{Duration, Instant};

use protocol::ParticipantId;
use relay::sfu::testing::{Harness, Publish};
use str0m::media::MediaKind;

fn av() -> Publish {
    Publish {
        audio: true,
        video: true,
        simulcast: Vec::new(),
    }
}

#[test]
fn one_publisher_reaches_n_subscribers_with_every_packet() {
    let mut h = Harness::new(Instant::now());
    let publisher = h.join("room1", "pub", &av());
    let subs: Vec<usize> = (0..5)
        .map(|i| h.join("room1", &format!("sub{i}"), &Publish::default()))
        .collect();
    let wired = h.run_until(
        |h| h.peer(publisher).connected && subs.iter().all(|&s| h.peer(s).remote_media.len() == 2),
        Duration::from_secs(5),
    );
    assert!(wired, "subscribers did not get the publisher's two tracks");

    let mut audio_seqs = Vec::new();
    let mut video_seqs = Vec::new();
    for frame in 0..60 {
        let now = h.now;
        audio_seqs.extend(h.peer_mut(publisher).send_audio(now, 30));
        let key = frame == 0 || h.peer(publisher).keyframe_wanted(None);
        video_seqs.extend(
            h.peer_mut(publisher)
                .send_video_frame(now, None, key, 3, 900),
        );
        h.run_for(Duration::from_millis(20));
    }
    h.run_for(Duration::from_millis(500));

    let pub_id = ParticipantId::new("pub").unwrap();
    for &s in &subs {
        let audio = h.peer(s).received_from(&pub_id, MediaKind::Audio);
        assert_eq!(audio.len(), audio_seqs.len(), "sub {s}: every audio packet");
        let video = h.peer(s).received_from(&pub_id, MediaKind::Video);
        assert_eq!(video.len(), video_seqs.len(), "sub {s}: every video packet");
        // Consecutive, no gaps, no duplicates.
        let mut seqs: Vec<u64> = video.iter().map(|r| r.seq).collect();
        seqs.sort_unstable();
        seqs.dedup();
        assert_eq!(seqs.len(), video_seqs.len());
        assert_eq!(seqs.last().unwrap() - seqs[0] + 1, seqs.len() as u64);
    }
    let stats = h.sfu.stats();
    assert_eq!(stats.participants, 6);
    assert_eq!(stats.tracks, 2);
    assert!(stats.rtp_forwarded >= 5 * (audio_seqs.len() + video_seqs.len()) as u64);
}
