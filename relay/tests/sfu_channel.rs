//! The data channel: room messages reach the other members with the
//! sender's id; the loudest participant is announced as active speaker.
#![allow(clippy::disallowed_methods)] // the virtual clock starts from one real Instant

use std::time::{Duration, Instant};

use relay::sfu::testing::{Harness, Publish};
use serde_json::{Value, json};

fn audio() -> Publish {
    Publish {
        audio: true,
        video: false,
        simulcast: Vec::new(),
    }
}

fn parsed(h: &Harness, peer: usize) -> Vec<Value> {
    h.peer(peer)
        .messages
        .iter()
        .filter_map(|m| serde_json::from_str(m).ok())
        .collect()
}

fn three() -> (Harness, [usize; 3]) {
    let mut h = Harness::new(Instant::now());
    let a = h.join("r", "alice", &audio());
    let b = h.join("r", "bob", &audio());
    let c = h.join("r", "carol", &audio());
    assert!(h.run_until(
        |h| {
            [a, b, c]
                .iter()
                .all(|&p| h.peer(p).channel.is_some() && h.peer(p).remote_media.len() == 2)
        },
        Duration::from_secs(5)
    ));
    (h, [a, b, c])
}

#[test]
fn room_messages_reach_the_other_members_with_the_senders_id() {
    let (mut h, [a, b, c]) = three();
    assert!(
        h.peer_mut(a)
            .send_message(r#"{"type":"chat","text":"hello"}"#)
    );
    assert!(h.peer_mut(a).send_message("not json"));
    h.run_for(Duration::from_millis(200));
    let expected = json!({"type": "room_message", "from": "alice",
        "message": {"type": "chat", "text": "hello"}});
    for p in [b, c] {
        let got: Vec<Value> = parsed(&h, p)
            .into_iter()
            .filter(|v| v["type"] == "room_message")
            .collect();
        assert_eq!(got, vec![expected.clone()], "peer {p}");
    }
    assert!(
        parsed(&h, a).iter().all(|v| v["type"] != "room_message"),
        "not echoed"
    );
    let stats = h.sfu.stats();
    assert_eq!((stats.messages, stats.messages_dropped), (1, 1));
}

#[test]
fn the_loudest_participant_is_announced_as_active_speaker() {
    let (mut h, [a, b, c]) = three();
    // Bob talks (−20 dBov), the others are near silent (−100 dBov).
    for _ in 0..50 {
        let now = h.now;
        h.peer_mut(a).send_audio(now, 100);
        h.peer_mut(b).send_audio(now, 20);
        h.peer_mut(c).send_audio(now, 100);
        h.run_for(Duration::from_millis(20));
    }
    // Then Alice talks louder.
    for _ in 0..50 {
        let now = h.now;
        h.peer_mut(a).send_audio(now, 10);
        h.peer_mut(b).send_audio(now, 100);
        h.peer_mut(c).send_audio(now, 100);
        h.run_for(Duration::from_millis(20));
    }
    for p in [a, b, c] {
        let speakers: Vec<String> = parsed(&h, p)
            .iter()
            .filter(|v| v["type"] == "active_speaker")
            .map(|v| v["participant"].as_str().unwrap_or_default().to_owned())
            .collect();
        assert_eq!(speakers, ["bob", "alice"], "peer {p}");
    }
}
