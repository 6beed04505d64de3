//! Loss recovery: a packet lost on either leg is recovered by NACK/RTX.
#![allow(clippy::disallowed_methods)] // the virtual clock starts from one real Instant

use std::cell::Cell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use protocol::ParticipantId;
use relay::sfu::testing::{Datagram, Harness, Publish, video_tag};
use str0m::format::Codec;
use str0m::media::MediaKind;

fn video() -> Publish {
    Publish {
        audio: false,
        video: true,
        simulcast: Vec::new(),
    }
}

/// The RTP payload type of a datagram, if it is RTP (not RTCP).
fn rtp_pt(d: &Datagram) -> Option<u8> {
    let b0 = *d.contents.first()?;
    let b1 = *d.contents.get(1)?;
    let rtcp = (192..=223).contains(&b1);
    (b0 >> 6 == 2 && !rtcp && d.contents.len() > 200).then_some(b1 & 0x7f)
}

/// Drops the `nth` media-sized RTP datagram of payload type `pt` from `from` to `to`.
fn drop_nth(
    h: &mut Harness,
    from: SocketAddr,
    to: SocketAddr,
    pt: u8,
    nth: usize,
) -> Rc<Cell<usize>> {
    let seen = Rc::new(Cell::new(0));
    let count = Rc::clone(&seen);
    h.set_drop(move |d| {
        if d.source != from || d.destination != to || rtp_pt(d) != Some(pt) {
            return false;
        }
        count.set(count.get() + 1);
        count.get() == nth
    });
    seen
}

fn vp8_pt(h: &Harness, peer: usize) -> u8 {
    let p = h
        .peer(peer)
        .rtc
        .codec_config()
        .params()
        .iter()
        .find(|p| p.spec().codec == Codec::Vp8);
    *p.unwrap().pt()
}

/// Sending sequence numbers of the video a subscriber got from "pub".
fn received_video(h: &Harness, sub: usize) -> Vec<u32> {
    let pub_id = ParticipantId::new("pub").unwrap();
    let mut v: Vec<u32> = h
        .peer(sub)
        .received_from(&pub_id, MediaKind::Video)
        .iter()
        .filter_map(|r| video_tag(&r.payload).map(|t| t.1))
        .collect();
    v.sort_unstable();
    v
}

fn setup() -> (Harness, usize, usize) {
    let mut h = Harness::new(Instant::now());
    let publisher = h.join("r", "pub", &video());
    let sub = h.join("r", "sub", &Publish::default());
    let id = ParticipantId::new("pub").unwrap();
    assert!(h.run_until(
        |h| h.peer(sub).mid_from(&id, MediaKind::Video).is_some(),
        Duration::from_secs(5)
    ));
    (h, publisher, sub)
}

fn assert_complete(seqs: &[u32]) {
    assert!(seqs.len() > 50, "video flowed: {}", seqs.len());
    let span = seqs.last().unwrap() - seqs[0] + 1;
    assert_eq!(span as usize, seqs.len(), "no hole and no duplicate");
}

#[test]
fn a_packet_lost_to_the_subscriber_is_resent_from_the_relay_cache() {
    let (mut h, publisher, sub) = setup();
    h.media_for(&[publisher], Duration::from_millis(500));
    let (sfu, to, pt) = (h.sfu_addr, h.peer(sub).addr, vp8_pt(&h, sub));
    let seen = drop_nth(&mut h, sfu, to, pt, 20);
    h.media_for(&[publisher], Duration::from_secs(2));
    h.clear_drop();
    h.run_for(Duration::from_secs(2));
    assert!(seen.get() >= 20 && h.dropped == 1, "one packet was lost");
    assert_complete(&received_video(&h, sub));
    assert!(h.sfu.stats().nacks >= 1, "the relay counted the NACK");
}

#[test]
fn a_packet_lost_from_the_publisher_is_recovered_and_forwarded() {
    let (mut h, publisher, sub) = setup();
    h.media_for(&[publisher], Duration::from_millis(500));
    let (from, sfu, pt) = (h.peer(publisher).addr, h.sfu_addr, vp8_pt(&h, publisher));
    drop_nth(&mut h, from, sfu, pt, 20);
    h.media_for(&[publisher], Duration::from_secs(2));
    h.clear_drop();
    h.run_for(Duration::from_secs(2));
    assert_eq!(h.dropped, 1, "one packet was lost");
    assert_complete(&received_video(&h, sub));
}
