//! Real media for the test clients, on webrtc-rs (an independent stack from the
//! relay's str0m): a [`MediaPeer`] is one peer connection to one relay that publishes
//! an Opus-typed audio track (every 20 ms) and a VP8 video track (every 40 ms, every
//! frame a key frame), opens the `anteroom` data channel, answers the relay's
//! renegotiation offers, and records every packet it receives into a [`MediaLog`].
//!
//! Every payload carries a marker, its sender's tag and a running number, so a
//! receiver knows who sent what and the tests can measure gaps per sender. The relay
//! forwards RTP without decoding, so synthetic payloads are enough.

mod log;
mod payload;

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, anyhow};
use rtc::ice::mdns::MulticastDnsMode;
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use rtc::rtp_transceiver::{RTCRtpTransceiverDirection, RTCRtpTransceiverInit};
use tokio::sync::watch;
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use webrtc::peer_connection::{
    MediaEngine, PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler,
    RTCIceGatheringState, RTCPeerConnectionState, RTCSessionDescription, SettingEngineBuilder,
};

pub use log::{Kind, Mark, MediaLog, RxPacket};
use payload::{local_track, parse_payload, stream};

/// How long gathering or connecting may take.
pub const MEDIA_TIMEOUT: Duration = Duration::from_secs(15);

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
