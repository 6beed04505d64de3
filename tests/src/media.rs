//! Real media for the test clients, on webrtc-rs (an independent stack from the
//! relay's str0m): a [`MediaPeer`] is one peer connection to one relay that publishes
//! an Opus-typed audio track (every 20 ms) and a VP8 video track (every 40 ms, every
//! frame a key frame), opens the `anteroom` data channel, answers the relay's
//! renegotiation offers, and records every packet it receives into a [`MediaLog`].
//!
//! Every payload carries a marker, its sender's tag and a running number, so a
//! receiver knows who sent what and the tests can measure gaps per sender. The relay
//! forwards RTP without decoding, so synthetic payloads are enough.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, anyhow};
use bytes::Bytes;
use rtc::ice::mdns::MulticastDnsMode;
use rtc::media::Sample;
use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::configuration::media_engine::{MIME_TYPE_OPUS, MIME_TYPE_VP8};
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodec, RTCRtpCodingParameters, RTCRtpEncodingParameters, RtpCodecKind,
};
use rtc::rtp_transceiver::{RTCRtpTransceiverDirection, RTCRtpTransceiverInit};
use tokio::sync::watch;
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::media_stream::track_local::static_sample::TrackLocalStaticSample;
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use webrtc::peer_connection::{
    MediaEngine, PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler,
    RTCIceGatheringState, RTCPeerConnectionState, RTCSessionDescription, SettingEngineBuilder,
};
use webrtc::rtp_transceiver::RtpSender;

/// Bytes every synthetic payload carries before its sender's tag.
const MARKER: &[u8] = b"anteroom-e2e:";
/// A VP8 key-frame start (frame tag + start code + size), so the relay sees key frames.
const VP8_KEY: [u8; 10] = [0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a, 0x40, 0x01, 0xf0, 0x00];
/// How long gathering or connecting may take.
pub const MEDIA_TIMEOUT: Duration = Duration::from_secs(15);

/// Audio or video.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The audio track.
    Audio,
    /// The video track.
    Video,
}

/// One received RTP packet.
#[derive(Debug, Clone)]
pub struct RxPacket {
    /// When it arrived.
    pub at: Instant,
    /// Which peer connection of the receiver got it (0, 1, … after each relay move).
    pub generation: u32,
    /// The relay that peer connection was talking to.
    pub relay: String,
    /// The sender's tag.
    pub from: String,
    /// Audio or video.
    pub kind: Kind,
    /// The sender's running number for that track.
    pub number: u32,
}

/// A step of a client's call, timestamped (for failover breakdowns).
#[derive(Debug, Clone)]
pub struct Mark {
    /// When.
    pub at: Instant,
    /// The peer connection generation it concerns.
    pub generation: u32,
    /// What happened: `placed`, `offer_sent`, `answered`, `connected`, `renegotiated`.
    pub what: &'static str,
}

/// Every packet a client received, shared with its peer connections' track readers,
/// and the marks of its call's steps.
#[derive(Debug, Clone)]
pub struct MediaLog {
    packets: Arc<Mutex<Vec<RxPacket>>>,
    count: watch::Sender<usize>,
    marks: Arc<Mutex<Vec<Mark>>>,
}

impl Default for MediaLog {
    fn default() -> Self {
        MediaLog {
            packets: Arc::default(),
            count: watch::channel(0).0,
            marks: Arc::default(),
        }
    }
}

impl MediaLog {
    /// Records a step of the call now.
    pub fn mark(&self, generation: u32, what: &'static str) {
        if let Ok(mut m) = self.marks.lock() {
            m.push(Mark {
                at: Instant::now(),
                generation,
                what,
            });
        }
    }

    /// The first mark `what` of `generation`.
    pub fn mark_at(&self, generation: u32, what: &str) -> Option<Instant> {
        let marks = self.marks.lock().ok()?;
        marks
            .iter()
            .find(|m| m.generation == generation && m.what == what)
            .map(|m| m.at)
    }

    fn push(&self, packet: RxPacket) {
        let n = {
            let Ok(mut p) = self.packets.lock() else {
                return;
            };
            p.push(packet);
            p.len()
        };
        self.count.send_replace(n);
    }

    /// A copy of every packet so far.
    pub fn snapshot(&self) -> Vec<RxPacket> {
        self.packets.lock().map(|p| p.clone()).unwrap_or_default()
    }

    /// Packets received so far (a cursor for [`MediaLog::wait_for`]).
    pub fn len(&self) -> usize {
        *self.count.borrow()
    }

    /// Whether nothing was received yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Awaits the first packet at index `from` or later matching `pred`.
    pub async fn wait_for(
        &self,
        from: usize,
        timeout: Duration,
        pred: impl Fn(&RxPacket) -> bool,
    ) -> Result<RxPacket> {
        let mut rx = self.count.subscribe();
        let mut seen = from;
        tokio::time::timeout(timeout, async {
            loop {
                {
                    let packets = self.packets.lock().map_err(|_| anyhow!("poisoned"))?;
                    if let Some(p) = packets.iter().skip(seen).find(|p| pred(p)) {
                        return Ok(p.clone());
                    }
                    seen = packets.len().max(seen);
                }
                rx.changed().await?;
            }
        })
        .await
        .map_err(|_| anyhow!("no matching media packet within {timeout:?}"))?
    }

    /// Awaits `n` packets from `from` on (index) that match `pred`.
    pub async fn wait_count(
        &self,
        from: usize,
        n: usize,
        timeout: Duration,
        pred: impl Fn(&RxPacket) -> bool,
    ) -> Result<()> {
        let mut rx = self.count.subscribe();
        tokio::time::timeout(timeout, async {
            loop {
                let got = {
                    let packets = self.packets.lock().map_err(|_| anyhow!("poisoned"))?;
                    packets.iter().skip(from).filter(|p| pred(p)).count()
                };
                if got >= n {
                    return Ok(());
                }
                rx.changed().await?;
            }
        })
        .await
        .map_err(|_| anyhow!("fewer than {n} matching media packets within {timeout:?}"))?
    }
}

fn payload(tag: &str, number: u32, kind: Kind) -> Bytes {
    let mut p = Vec::with_capacity(600);
    if kind == Kind::Video {
        p.extend_from_slice(&VP8_KEY);
    } else {
        p.push(0xfc); // An Opus TOC byte (CELT FB 20 ms).
    }
    p.extend_from_slice(MARKER);
    p.push(tag.len() as u8);
    p.extend_from_slice(tag.as_bytes());
    p.extend_from_slice(&number.to_be_bytes());
    p.resize(if kind == Kind::Video { 600 } else { 120 }, 0xa5);
    Bytes::from(p)
}

/// Parses `(tag, number)` out of a received payload (after any codec descriptor).
fn parse_payload(payload: &[u8]) -> Option<(String, u32)> {
    let at = payload.windows(MARKER.len()).position(|w| w == MARKER)? + MARKER.len();
    let len = usize::from(*payload.get(at)?);
    let tag = payload.get(at + 1..at + 1 + len)?;
    let number = payload.get(at + 1 + len..at + 5 + len)?;
    Some((
        String::from_utf8_lossy(tag).into_owned(),
        u32::from_be_bytes(number.try_into().ok()?),
    ))
}

struct Handler {
    generation: u32,
    relay: String,
    log: MediaLog,
    gathered: watch::Sender<bool>,
    state: watch::Sender<RTCPeerConnectionState>,
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Handler {
    async fn on_ice_gathering_state_change(&self, state: RTCIceGatheringState) {
        if state == RTCIceGatheringState::Complete {
            self.gathered.send_replace(true);
        }
    }

    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        if state == RTCPeerConnectionState::Connected {
            self.log.mark(self.generation, "connected");
        }
        self.state.send_replace(state);
    }

    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        let (log, generation, relay) = (self.log.clone(), self.generation, self.relay.clone());
        tokio::spawn(async move {
            let kind = match track.kind().await {
                RtpCodecKind::Audio => Kind::Audio,
                _ => Kind::Video,
            };
            while let Some(event) = track.poll().await {
                if let TrackRemoteEvent::OnRtpPacket(packet) = event
                    && let Some((from, number)) = parse_payload(&packet.payload)
                {
                    log.push(RxPacket {
                        at: Instant::now(),
                        generation,
                        relay: relay.clone(),
                        from,
                        kind,
                        number,
                    });
                }
            }
        });
    }
}

static SSRCS: AtomicU32 = AtomicU32::new(0x1000);

fn local_track(tag: &str, kind: Kind) -> Result<(Arc<TrackLocalStaticSample>, u32)> {
    let ssrc = SSRCS.fetch_add(1, Ordering::Relaxed) ^ (std::process::id() << 16);
    let (codec_kind, codec) = match kind {
        Kind::Audio => (
            RtpCodecKind::Audio,
            RTCRtpCodec {
                mime_type: MIME_TYPE_OPUS.to_owned(),
                clock_rate: 48_000,
                channels: 2,
                sdp_fmtp_line: "minptime=10;useinbandfec=1".to_owned(),
                rtcp_feedback: vec![],
            },
        ),
        Kind::Video => (
            RtpCodecKind::Video,
            RTCRtpCodec {
                mime_type: MIME_TYPE_VP8.to_owned(),
                clock_rate: 90_000,
                channels: 0,
                sdp_fmtp_line: String::new(),
                rtcp_feedback: vec![],
            },
        ),
    };
    let track = TrackLocalStaticSample::new(
        Instant::now(),
        MediaStreamTrack::new(
            format!("{tag}-stream"),
            format!("{tag}-{kind:?}").to_lowercase(),
            format!("{kind:?}"),
            codec_kind,
            vec![RTCRtpEncodingParameters {
                rtp_coding_parameters: RTCRtpCodingParameters {
                    ssrc: Some(ssrc),
                    ..Default::default()
                },
                codec,
                ..Default::default()
            }],
        ),
    )
    .map_err(|e| anyhow!("local track: {e}"))?;
    Ok((Arc::new(track), ssrc))
}

/// What a [`MediaPeer`] offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Sends and receives audio + video, with the `anteroom` data channel (a call
    /// participant).
    SendRecv,
    /// Sends audio + video only, no data channel (a WHIP publisher).
    SendOnly,
    /// Receives audio + video only (a WHEP player).
    RecvOnly,
}

/// One webrtc-rs peer connection to one relay.
pub struct MediaPeer {
    pc: Arc<dyn PeerConnection>,
    /// Which connection of its client this is.
    pub generation: u32,
    /// The relay it talks to.
    pub relay: String,
    gathered: watch::Receiver<bool>,
    state: watch::Receiver<RTCPeerConnectionState>,
    senders: Vec<tokio::task::JoinHandle<()>>,
}

impl std::fmt::Debug for MediaPeer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MediaPeer")
            .field("generation", &self.generation)
            .field("relay", &self.relay)
            .finish_non_exhaustive()
    }
}

impl MediaPeer {
    /// Builds the peer connection (host candidates on 127.0.0.1 only, no mDNS); a
    /// `SendRecv` peer starts sending as soon as it connects, stamping `tag`.
    pub async fn new(
        tag: &str,
        direction: Direction,
        generation: u32,
        relay: &str,
        log: MediaLog,
    ) -> Result<MediaPeer> {
        let mut media = MediaEngine::default();
        media
            .register_default_codecs()
            .map_err(|e| anyhow!("codecs: {e}"))?;
        let settings = SettingEngineBuilder::new()
            .with_multicast_dns_mode(MulticastDnsMode::Disabled)
            // Pace connectivity checks at RFC 8445's Ta = 50 ms, as browsers do
            // (webrtc-rs defaults to 200 ms, which alone adds ~150 ms per connect).
            .with_ice_connection_attempts(Some(Duration::from_millis(50)), Some(25))
            .build();
        let (gathered_tx, gathered) = watch::channel(false);
        let (state_tx, state) = watch::channel(RTCPeerConnectionState::New);
        let pc = PeerConnectionBuilder::new()
            .with_media_engine(media)
            .with_setting_engine(settings)
            .with_handler(Arc::new(Handler {
                generation,
                relay: relay.to_owned(),
                log,
                gathered: gathered_tx,
                state: state_tx,
            }))
            .with_udp_addrs(vec!["127.0.0.1:0".to_owned()])
            .build()
            .await
            .map_err(|e| anyhow!("peer connection: {e}"))?;
        let pc: Arc<dyn PeerConnection> = Arc::new(pc);
        let mut peer = MediaPeer {
            pc,
            generation,
            relay: relay.to_owned(),
            gathered,
            state,
            senders: Vec::new(),
        };
        match direction {
            Direction::SendRecv | Direction::SendOnly => {
                for kind in [Kind::Audio, Kind::Video] {
                    let (track, ssrc) = local_track(tag, kind)?;
                    let sender = if direction == Direction::SendRecv {
                        peer.pc
                            .add_track(Arc::clone(&track) as Arc<dyn TrackLocal>)
                            .await
                            .map_err(|e| anyhow!("add track: {e}"))?
                    } else {
                        let init = RTCRtpTransceiverInit {
                            direction: RTCRtpTransceiverDirection::Sendonly,
                            streams: vec![],
                            send_encodings: vec![],
                        };
                        peer.pc
                            .add_transceiver_from_track(
                                Arc::clone(&track) as Arc<dyn TrackLocal>,
                                Some(init),
                            )
                            .await
                            .map_err(|e| anyhow!("add transceiver: {e}"))?
                            .sender()
                            .await
                            .map_err(|e| anyhow!("sender: {e}"))?
                            .context("send-only transceiver has no sender")?
                    };
                    peer.senders.push(tokio::spawn(stream(
                        tag.to_owned(),
                        kind,
                        track,
                        ssrc,
                        sender,
                        peer.state.clone(),
                    )));
                }
                if direction == Direction::SendRecv {
                    peer.pc
                        .create_data_channel("anteroom", None)
                        .await
                        .map_err(|e| anyhow!("data channel: {e}"))?;
                }
            }
            Direction::RecvOnly => {
                for kind in [RtpCodecKind::Audio, RtpCodecKind::Video] {
                    peer.pc
                        .add_transceiver_from_kind(
                            kind,
                            Some(RTCRtpTransceiverInit {
                                direction: RTCRtpTransceiverDirection::Recvonly,
                                streams: vec![],
                                send_encodings: vec![],
                            }),
                        )
                        .await
                        .map_err(|e| anyhow!("transceiver: {e}"))?;
                }
            }
        }
        Ok(peer)
    }

    /// Creates the offer and waits for ICE gathering, so the SDP holds the candidate.
    pub async fn offer(&mut self) -> Result<String> {
        let offer = self
            .pc
            .create_offer(None)
            .await
            .map_err(|e| anyhow!("create offer: {e}"))?;
        self.pc
            .set_local_description(offer)
            .await
            .map_err(|e| anyhow!("set local offer: {e}"))?;
        tokio::time::timeout(MEDIA_TIMEOUT, self.gathered.wait_for(|g| *g))
            .await
            .context("ICE gathering did not complete")??;
        Ok(self
            .pc
            .local_description()
            .await
            .context("no local description")?
            .sdp)
    }

    /// Applies the relay's answer.
    pub async fn accept_answer(&self, sdp: String) -> Result<()> {
        let answer = RTCSessionDescription::answer(sdp).map_err(|e| anyhow!("answer: {e}"))?;
        self.pc
            .set_remote_description(answer)
            .await
            .map_err(|e| anyhow!("set remote answer: {e}"))
    }

    /// Answers a renegotiation offer from the relay.
    pub async fn answer_offer(&self, sdp: String) -> Result<String> {
        let offer = RTCSessionDescription::offer(sdp).map_err(|e| anyhow!("offer: {e}"))?;
        self.pc
            .set_remote_description(offer)
            .await
            .map_err(|e| anyhow!("set remote offer: {e}"))?;
        let answer = self
            .pc
            .create_answer(None)
            .await
            .map_err(|e| anyhow!("create answer: {e}"))?;
        self.pc
            .set_local_description(answer)
            .await
            .map_err(|e| anyhow!("set local answer: {e}"))?;
        Ok(self
            .pc
            .local_description()
            .await
            .context("no local description")?
            .sdp)
    }

    /// The connection state now.
    pub fn state(&self) -> RTCPeerConnectionState {
        *self.state.borrow()
    }

    /// A receiver of connection state changes.
    pub fn watch_state(&self) -> watch::Receiver<RTCPeerConnectionState> {
        self.state.clone()
    }

    /// Awaits the connected state.
    pub async fn connected(&mut self) -> Result<()> {
        tokio::time::timeout(
            MEDIA_TIMEOUT,
            self.state
                .wait_for(|s| *s == RTCPeerConnectionState::Connected),
        )
        .await
        .context("the peer did not connect to the relay")??;
        Ok(())
    }

    /// Stops sending and closes the connection (in the background: closing a
    /// connection to a dead relay must not delay the new one).
    pub fn close(self) {
        for s in &self.senders {
            s.abort();
        }
        let pc = self.pc;
        tokio::spawn(async move {
            let _ = pc.close().await;
        });
    }
}

/// Sends one track's samples from connection until the task is aborted.
async fn stream(
    tag: String,
    kind: Kind,
    track: Arc<TrackLocalStaticSample>,
    ssrc: u32,
    sender: Arc<dyn RtpSender>,
    mut state: watch::Receiver<RTCPeerConnectionState>,
) {
    if state
        .wait_for(|s| *s == RTCPeerConnectionState::Connected)
        .await
        .is_err()
    {
        return;
    }
    let Ok(params) = sender.get_parameters().await else {
        return;
    };
    let Some(payload_type) = params.rtp_parameters.codecs.first().map(|c| c.payload_type) else {
        return;
    };
    let period = Duration::from_millis(if kind == Kind::Audio { 20 } else { 40 });
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    for number in 0.. {
        tick.tick().await;
        let sample = Sample {
            data: payload(&tag, number, kind),
            duration: period,
            ..Sample::new(Instant::now())
        };
        // Errors (e.g. the relay died) are not fatal: the client moves on by itself.
        let _ = track
            .sample_writer(ssrc, payload_type)
            .write_sample(&sample)
            .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_carry_tag_and_number() {
        let p = payload("patient", 42, Kind::Video);
        // A receiver sees the VP8 payload descriptor first.
        let mut rx = vec![0x10];
        rx.extend_from_slice(&p);
        assert_eq!(parse_payload(&rx), Some(("patient".to_owned(), 42)));
        assert_eq!(
            parse_payload(&payload("x", 7, Kind::Audio)),
            Some(("x".into(), 7))
        );
        assert_eq!(parse_payload(b"garbage"), None);
        assert_eq!(parse_payload(&p[..20]), None);
    }
}
