//! WHEP players (a `subscriber` grant, one offer with recvonly audio and
//! video, no renegotiation) receive a publisher's media on their own
//! m-lines, whoever joined first, and follow the room to the next publisher.
#![allow(clippy::disallowed_methods)] // the virtual clock starts from one real Instant

use std::time::{Duration, Instant};

use protocol::{ParticipantId, RoomId};
use relay::sfu::SfuEvent;
use relay::sfu::testing::{Harness, Player, Received, video_tag};
use str0m::media::Mid;

/// Sends `frames` × 20 ms of audio and single-packet video frames from
/// `publisher` (a keyframe first and when asked), running the harness in
/// between.
/// Returns how many audio and video packets were sent.
fn publish(h: &mut Harness, publisher: usize, frames: usize) -> (usize, usize) {
    let (mut audio, mut video) = (0, 0);
    for frame in 0..frames {
        let now = h.now;
        let p = h.peer_mut(publisher);
        audio += usize::from(p.send_audio(now, 30).is_some());
        let key = frame == 0 || p.keyframe_wanted(None);
        video += p.send_video_frame(now, None, key, 1, 900).len();
        h.run_for(Duration::from_millis(20));
    }
    h.run_for(Duration::from_millis(300));
    (audio, video)
}

fn received_on(h: &Harness, player: &Player, mid: Mid) -> Vec<Received> {
    h.peer(player.index)
        .received
        .iter()
        .filter(|r| r.mid == mid)
        .cloned()
        .collect()
}

/// Sequence numbers are consecutive, one SSRC throughout.
fn assert_one_unbroken_stream(packets: &[Received], what: &str) {
    assert!(!packets.is_empty(), "{what}: nothing received");
    let ssrc = packets[0].ssrc;
    assert!(packets.iter().all(|r| r.ssrc == ssrc), "{what}: one SSRC");
    for w in packets.windows(2) {
        assert_eq!(
            w[1].seq,
            w[0].seq + 1,
            "{what}: consecutive sequence numbers"
        );
    }
}

fn renegotiations(h: &Harness) -> usize {
    h.events
        .iter()
        .filter(|e| matches!(e, SfuEvent::Renegotiate { .. }))
        .count()
}

#[test]
fn whep_player_receives_a_whip_publisher_without_renegotiation() {
    let mut h = Harness::new(Instant::now());
    let obs = h.join_whip("room1", "obs");
    let player = h.join_whep("room1", "player");
    let up = h.run_until(
        |h| h.peer(obs).connected && h.peer(player.index).connected,
        Duration::from_secs(5),
    );
    assert!(up, "publisher and player connect");
    h.run_for(Duration::from_millis(100));

    let (audio_sent, video_sent) = publish(&mut h, obs, 50);

    let audio = received_on(&h, &player, player.audio);
    let video = received_on(&h, &player, player.video);
    assert_eq!(
        audio.len(),
        audio_sent,
        "every audio packet on the audio m-line"
    );
    assert_eq!(
        video.len(),
        video_sent,
        "every video packet on the video m-line"
    );
    assert_one_unbroken_stream(&audio, "audio");
    assert_one_unbroken_stream(&video, "video");
    let first = video_tag(&video[0].payload).expect("tagged");
    assert!(first.2, "the player's video starts with a keyframe");
    assert!(
        !h.peer(obs).keyframe_requests.is_empty(),
        "the relay asked the publisher for a keyframe for the new player"
    );
    assert_eq!(renegotiations(&h), 0, "no server offer for WHIP/WHEP peers");
}

#[test]
fn whep_player_that_joins_first_gets_media_once_someone_publishes() {
    let mut h = Harness::new(Instant::now());
    let player = h.join_whep("room1", "player");
    let up = h.run_until(|h| h.peer(player.index).connected, Duration::from_secs(5));
    assert!(up, "the player connects to an empty room");
    h.run_for(Duration::from_secs(1));

    let obs = h.join_whip("room1", "obs");
    let up = h.run_until(|h| h.peer(obs).connected, Duration::from_secs(5));
    assert!(up, "publisher connects");
    let (audio_sent, video_sent) = publish(&mut h, obs, 50);

    let audio = received_on(&h, &player, player.audio);
    let video = received_on(&h, &player, player.video);
    assert!(
        audio.len() + 2 >= audio_sent,
        "audio arrives: {} of {audio_sent}",
        audio.len()
    );
    assert!(
        video.len() + 2 >= video_sent,
        "video arrives: {} of {video_sent}",
        video.len()
    );
    assert_one_unbroken_stream(&video, "video");
    assert_eq!(renegotiations(&h), 0);
}

#[test]
fn whep_player_moves_to_the_next_publisher_on_the_same_m_lines() {
    let mut h = Harness::new(Instant::now());
    let first = h.join_whip("room1", "first");
    let player = h.join_whep("room1", "player");
    let second = h.join_whip("room1", "second");
    let up = h.run_until(
        |h| {
            [first, player.index, second]
                .iter()
                .all(|&i| h.peer(i).connected)
        },
        Duration::from_secs(5),
    );
    assert!(up, "everyone connects");
    h.run_for(Duration::from_millis(100));

    // Both publish; the player shows the first publisher only.
    for _ in 0..25 {
        let now = h.now;
        for p in [first, second] {
            let peer = h.peer_mut(p);
            peer.send_audio(now, 30);
            let key = peer.keyframe_wanted(None);
            peer.send_video_frame(now, None, key, 1, 900);
        }
        h.run_for(Duration::from_millis(20));
    }
    h.run_for(Duration::from_millis(300));
    let before = received_on(&h, &player, player.video);
    assert!(
        (24..=25).contains(&before.len()),
        "one publisher's video, not both: {}",
        before.len()
    );
    let audio_before = received_on(&h, &player, player.audio).len();

    let requests = h.peer(second).keyframe_requests.len();
    h.sfu.kick(
        &RoomId::new("room1").expect("room id"),
        &ParticipantId::new("first").expect("participant id"),
    );
    let (_, video_sent) = publish(&mut h, second, 50);

    let video = received_on(&h, &player, player.video);
    let after = video.len() - before.len();
    assert!(
        after + 2 >= video_sent,
        "the second publisher's video follows on the same m-line: {after} of {video_sent}"
    );
    assert!(received_on(&h, &player, player.audio).len() > audio_before + 40);
    assert_one_unbroken_stream(&video, "video across the switch");
    assert!(
        h.peer(second).keyframe_requests.len() > requests,
        "the second publisher was asked for a keyframe"
    );
    assert_eq!(
        renegotiations(&h),
        0,
        "the player never gets a server offer"
    );
}
