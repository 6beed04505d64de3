//! Peer-level tests through the public API: a WHEP-style subscriber offer answered by a
//! publishing bench peer, and a loop that stops by itself.
//!
//! Opens WebRTC sockets: run inside the loopback-only namespace.

use std::sync::Arc;
use std::time::Duration;

use bench::media::AudioShape;
use bench::peer::{
    DirectNegotiator, LoopConfig, PeerFactory, PeerId, PeerLoop, PeerRole, PublishSpec, join,
};

#[tokio::test]
async fn subscriber_offer_is_answered_by_a_publisher() {
    let factory = Arc::new(PeerFactory::new().unwrap());
    let timing = LoopConfig::for_duration(Duration::from_secs(1), Duration::from_millis(300));
    let pubs = PeerLoop::spawn("pubs", timing).unwrap();
    let subs = PeerLoop::spawn("subs", timing).unwrap();
    let answer_as = PeerRole::Publisher(PublishSpec {
        audio: Some(AudioShape::default()),
        video: None,
        first_stream: 0,
    });
    let negotiator = DirectNegotiator::new(Arc::clone(&factory), pubs.sender(), answer_as, 100);
    join(
        &factory,
        &negotiator,
        &subs.sender(),
        PeerId(1),
        PeerRole::Subscriber,
    )
    .await
    .unwrap();
    let (p, s) = (pubs.join().unwrap(), subs.join().unwrap());
    assert_eq!(p.peers.connected, 1);
    assert_eq!(s.peers.connected, 1);
    // ~50 audio packets in 1 s; the subscriber counted what the publisher sent.
    assert!(p.peers.sent_packets >= 40, "{:?}", p.peers);
    assert_eq!(s.streams.delivered, p.peers.sent_packets);
    assert_eq!(s.streams.lost, 0);
    assert_eq!(s.join.count(), 1);
}

#[test]
fn a_loop_stops_by_itself_and_refuses_peers_after() {
    let timing = LoopConfig::for_duration(Duration::from_millis(50), Duration::from_millis(50));
    let l = PeerLoop::spawn("short", timing).unwrap();
    let sender = l.sender();
    let rec = l.join().unwrap();
    assert_eq!(rec.peers.added, 0);
    let factory = PeerFactory::new().unwrap();
    let (pending, _offer) = factory.offer(PeerId(1), PeerRole::Subscriber).unwrap();
    assert!(pending.local_addr().ip().is_loopback());
    // The loop is gone: handing it a peer fails instead of hanging.
    let (ready, _) = factory
        .answer(PeerId(2), PeerRole::Subscriber, {
            let (_, offer) = factory
                .offer(
                    PeerId(3),
                    PeerRole::Publisher(PublishSpec {
                        audio: Some(AudioShape::default()),
                        video: None,
                        first_stream: 0,
                    }),
                )
                .unwrap();
            offer
        })
        .unwrap();
    assert!(sender.add(ready).is_err());
}
