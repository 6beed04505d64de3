//! Interop over real UDP on 127.0.0.1 with an independent WebRTC stack: a
//! webrtc-rs client publishes a VP8 track through the relay and another
//! webrtc-rs client receives it.
//!
//! Opens WebRTC sockets: run inside the loopback-only namespace
//! (`scripts/test` does; see ENVIRONMENT.md). mDNS is off and the clients bind
//! 127.0.0.1 only.

// webrtc-rs timestamps samples with the real clock, and its futures are large.
#![allow(clippy::disallowed_methods, clippy::large_futures)]

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{PATIENCE, SECRET, get, grant, node};
use protocol::ParticipantId;
use relay::sfu::SfuEvent;
use relay::{Config, Relay, RelayHandle};
use rtc::ice::mdns::MulticastDnsMode;
use rtc::media::Sample;
use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::configuration::media_engine::MIME_TYPE_VP8;
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodec, RTCRtpCodingParameters, RTCRtpEncodingParameters, RtpCodecKind,
};
use tokio::sync::{mpsc, watch};
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::media_stream::track_local::static_sample::TrackLocalStaticSample;
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use webrtc::peer_connection::{
    MediaEngine, PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler,
    RTCIceGatheringState, RTCPeerConnectionState, RTCSessionDescription, SettingEngineBuilder,
};
use webrtc::rtp_transceiver::RtpSender;

/// Bytes every synthetic frame carries after its number, to recognise it.
const MARKER: &[u8] = b"anteroom-interop";

/// Events of one client's peer connection.
struct Handler {
    gathered: watch::Sender<bool>,
    state: watch::Sender<RTCPeerConnectionState>,
    rtp: mpsc::UnboundedSender<(RtpCodecKind, Bytes)>,
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Handler {
    async fn on_ice_gathering_state_change(&self, state: RTCIceGatheringState) {
        if state == RTCIceGatheringState::Complete {
            self.gathered.send_replace(true);
        }
    }

    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        self.state.send_replace(state);
    }

    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        let rtp = self.rtp.clone();
        tokio::spawn(async move {
            let kind = track.kind().await;
            while let Some(event) = track.poll().await {
                if let TrackRemoteEvent::OnRtpPacket(packet) = event
                    && rtp.send((kind, packet.payload.clone())).is_err()
                {
                    return;
                }
            }
        });
    }
}

/// A webrtc-rs client: one peer connection, offering to the relay.
struct Client {
    pc: Arc<dyn PeerConnection>,
    gathered: watch::Receiver<bool>,
    state: watch::Receiver<RTCPeerConnectionState>,
    rtp: mpsc::UnboundedReceiver<(RtpCodecKind, Bytes)>,
}

impl Client {
    async fn new() -> Self {
        let mut media = MediaEngine::default();
        media.register_default_codecs().unwrap();
        let settings = SettingEngineBuilder::new()
            .with_multicast_dns_mode(MulticastDnsMode::Disabled)
            .build();
        let (gathered_tx, gathered) = watch::channel(false);
        let (state_tx, state) = watch::channel(RTCPeerConnectionState::New);
        let (rtp_tx, rtp) = mpsc::unbounded_channel();
        let pc = PeerConnectionBuilder::new()
            .with_media_engine(media)
            .with_setting_engine(settings)
            .with_handler(Arc::new(Handler {
                gathered: gathered_tx,
                state: state_tx,
                rtp: rtp_tx,
            }))
            .with_udp_addrs(vec!["127.0.0.1:0".to_owned()])
            .build()
            .await
            .unwrap();
        Self {
            pc: Arc::new(pc),
            gathered,
            state,
            rtp,
        }
    }

    /// The client's offer, with its candidates (no trickle).
    async fn offer(&mut self) -> String {
        let offer = self.pc.create_offer(None).await.unwrap();
        self.pc.set_local_description(offer).await.unwrap();
        tokio::time::timeout(PATIENCE, self.gathered.wait_for(|g| *g))
            .await
            .expect("ICE gathering completes")
            .unwrap();
        self.pc.local_description().await.unwrap().sdp
    }

    async fn accept_answer(&self, sdp: String) {
        let answer = RTCSessionDescription::answer(sdp).unwrap();
        self.pc.set_remote_description(answer).await.unwrap();
    }

    async fn connected(&mut self) {
        tokio::time::timeout(
            PATIENCE,
            self.state
                .wait_for(|s| *s == RTCPeerConnectionState::Connected),
        )
        .await
        .expect("the client connects to the relay")
        .unwrap();
    }
}

/// Answers the relay's renegotiation offers for each client, as signaling
/// and the client would.
fn answer_renegotiations(
    relay: Arc<RelayHandle>,
    clients: HashMap<ParticipantId, Arc<dyn PeerConnection>>,
) {
    let mut events = relay.subscribe();
    tokio::spawn(async move {
        while let Ok(event) = events.recv().await {
            let SfuEvent::Renegotiate {
                room,
                participant,
                offer_sdp,
            } = event
            else {
                continue;
            };
            let Some(pc) = clients.get(&participant) else {
                continue;
            };
            let offer = RTCSessionDescription::offer(offer_sdp).unwrap();
            pc.set_remote_description(offer).await.unwrap();
            let answer = pc.create_answer(None).await.unwrap();
            pc.set_local_description(answer).await.unwrap();
            let sdp = pc.local_description().await.unwrap().sdp;
            relay.answer(&room, participant, sdp).await.unwrap();
        }
    });
}

/// A synthetic VP8 key frame: a valid frame tag and start code, then the
/// frame number and a marker. The relay forwards RTP; it does not decode.
fn frame(n: u32) -> Bytes {
    let mut f = vec![0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a, 0x40, 0x01, 0xf0, 0x00];
    f.extend_from_slice(&n.to_be_bytes());
    f.extend_from_slice(MARKER);
    f.resize(600, 0xa5);
    Bytes::from(f)
}

fn video_track() -> Arc<TrackLocalStaticSample> {
    Arc::new(
        TrackLocalStaticSample::new(
            Instant::now(),
            MediaStreamTrack::new(
                "publisher-stream".to_owned(),
                "publisher-video".to_owned(),
                "camera".to_owned(),
                RtpCodecKind::Video,
                vec![RTCRtpEncodingParameters {
                    rtp_coding_parameters: RTCRtpCodingParameters {
                        ssrc: Some(0x1234_5678),
                        ..Default::default()
                    },
                    codec: RTCRtpCodec {
                        mime_type: MIME_TYPE_VP8.to_owned(),
                        clock_rate: 90_000,
                        channels: 0,
                        sdp_fmtp_line: String::new(),
                        rtcp_feedback: vec![],
                    },
                    ..Default::default()
                }],
            ),
        )
        .unwrap(),
    )
}

/// Sends 30 frames a second until the task is aborted.
async fn stream_video(track: Arc<TrackLocalStaticSample>, sender: Arc<dyn RtpSender>) {
    let payload_type = sender.get_parameters().await.unwrap().rtp_parameters.codecs[0].payload_type;
    let mut tick = tokio::time::interval(Duration::from_millis(33));
    for n in 0.. {
        tick.tick().await;
        let sample = Sample {
            data: frame(n),
            duration: Duration::from_millis(33),
            ..Sample::new(Instant::now())
        };
        if track
            .sample_writer(0x1234_5678, payload_type)
            .write_sample(&sample)
            .await
            .is_err()
        {
            return;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webrtc_rs_publisher_reaches_a_webrtc_rs_subscriber_through_the_relay() {
    let relay = Arc::new(Relay::start(Config::local(node(), SECRET)).await.unwrap());
    let publisher_id = ParticipantId::new("publisher").unwrap();
    let subscriber_id = ParticipantId::new("subscriber").unwrap();

    let mut publisher = Client::new().await;
    let track = video_track();
    let sender = publisher
        .pc
        .add_track(Arc::clone(&track) as Arc<dyn TrackLocal>)
        .await
        .unwrap();
    let mut subscriber = Client::new().await;
    // The subscriber publishes nothing: its offer holds just a data channel;
    // the relay offers it the room's tracks once connected.
    subscriber
        .pc
        .create_data_channel("room", None)
        .await
        .unwrap();

    answer_renegotiations(
        Arc::clone(&relay),
        HashMap::from([
            (publisher_id.clone(), Arc::clone(&publisher.pc)),
            (subscriber_id.clone(), Arc::clone(&subscriber.pc)),
        ]),
    );

    let token = grant("interop-room", publisher_id.as_str()).sign(SECRET.as_bytes());
    let accepted = relay.offer(token, publisher.offer().await).await.unwrap();
    assert_eq!(accepted.participant, publisher_id);
    publisher.accept_answer(accepted.answer_sdp).await;
    publisher.connected().await;
    let streaming = tokio::spawn(stream_video(track, sender));

    let token = grant("interop-room", subscriber_id.as_str()).sign(SECRET.as_bytes());
    let accepted = relay.offer(token, subscriber.offer().await).await.unwrap();
    subscriber.accept_answer(accepted.answer_sdp).await;
    subscriber.connected().await;

    // The subscriber receives the publisher's frames: VP8 payload descriptor,
    // then the frame with its marker, numbers increasing.
    let mut frames = Vec::new();
    tokio::time::timeout(PATIENCE, async {
        while frames.len() < 30 {
            let (kind, payload) = subscriber.rtp.recv().await.expect("track open");
            assert_eq!(kind, RtpCodecKind::Video);
            let Some(at) = payload.windows(MARKER.len()).position(|w| w == MARKER) else {
                panic!("forwarded payload lost its content: {payload:?}");
            };
            let number = u32::from_be_bytes(payload[at - 4..at].try_into().unwrap());
            frames.push(number);
        }
    })
    .await
    .expect("the subscriber receives the publisher's video through the relay");
    assert!(
        frames.windows(2).all(|w| w[0] < w[1]),
        "frames in order: {frames:?}"
    );

    let stats = relay.stats_when(|s| s.rtp_forwarded >= 30).await;
    assert_eq!(stats.participants, 2);
    assert_eq!(stats.rooms, 1);
    assert!(stats.tracks >= 1);
    let (status, body) = get(relay.metrics_addr(), "/metrics").await;
    assert_eq!(status, 200);
    let forwarded: u64 = body
        .lines()
        .find_map(|l| l.strip_prefix("anteroom_relay_rtp_forwarded_total{worker=\"0\"} "))
        .and_then(|v| v.parse().ok())
        .expect("forwarded packets in /metrics");
    assert!(forwarded >= 30, "{body}");
    assert!(
        body.contains("anteroom_relay_participants{worker=\"0\"} 2"),
        "{body}"
    );

    streaming.abort();
    publisher.pc.close().await.unwrap();
    subscriber.pc.close().await.unwrap();
    if let Ok(relay) = Arc::try_unwrap(relay) {
        relay.shutdown().await;
    }
}
