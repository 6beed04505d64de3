//! Which subscribers get bandwidth estimation (`BwePolicy`): BWE makes
//! str0m pace every packet (costly, and it delays copies), and it only
//! serves simulcast layer choice, so by default a subscriber gets it only
//! when it joins a room with a simulcast track. (That a subscriber of a
//! simulcast room still follows its estimate is shown by
//! `sfu_simulcast::with_bandwidth_estimation_the_layer_starts_low_and_follows_the_estimate`,
//! which runs under the default policy.)
#![allow(clippy::disallowed_methods)] // the virtual clock starts from one real Instant

use std::collections::HashMap;
use std::time::{Duration, Instant};

use protocol::ParticipantId;
use relay::sfu::BwePolicy;
use relay::sfu::testing::{Harness, Publish, video_tag};
use str0m::media::MediaKind;

/// One single-layer publisher (2 × 1000-byte video packets per 20 ms frame,
/// ≈ 800 kbit/s) and one subscriber, BWE starting at 300 kbit/s; returns,
/// per video copy received, its delay from the publisher's send
/// (virtual time; the simulated network adds none).
fn video_delays(policy: BwePolicy) -> Vec<Duration> {
    let mut h = Harness::with_config(Instant::now(), |c| {
        c.bwe_initial_bps = Some(300_000);
        c.bwe_policy = policy;
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
    let mut sent = HashMap::new();
    for frame in 0..100 {
        let now = h.now;
        let p = h.peer_mut(publisher);
        p.send_audio(now, 30);
        let key = frame == 0 || p.keyframe_wanted(None);
        for seq in p.send_video_frame(now, None, key, 2, 1000) {
            sent.insert(seq as u32, now);
        }
        h.run_for(Duration::from_millis(20));
    }
    h.run_for(Duration::from_millis(500));
    let id = ParticipantId::new("pub").unwrap();
    let got = h.peer(sub).received_from(&id, MediaKind::Video);
    assert_eq!(got.len(), sent.len(), "every video packet arrives");
    got.iter()
        .map(|r| {
            let seq = video_tag(&r.payload).unwrap().1;
            r.at.saturating_duration_since(sent[&seq])
        })
        .collect()
}

#[test]
fn a_subscriber_of_single_layer_tracks_gets_no_bwe_so_no_pacing_delay() {
    let delays = video_delays(BwePolicy::SimulcastRooms);
    let worst = delays.iter().max().copied().unwrap_or_default();
    assert!(
        worst < Duration::from_millis(1),
        "every copy leaves when it arrives (no pacer): worst {worst:?}"
    );
}

#[test]
fn with_bwe_for_everyone_the_same_subscriber_is_paced() {
    // The contrast that shows the test above can fail: with BWE, str0m
    // paces the 800 kbit/s stream at its estimate and copies wait.
    let delays = video_delays(BwePolicy::Always);
    let worst = delays.iter().max().copied().unwrap_or_default();
    assert!(
        worst >= Duration::from_millis(5),
        "the pacer delays copies under a 300 kbit/s estimate: worst {worst:?}"
    );
}
