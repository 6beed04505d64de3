//! A simulated client: a str0m `Rtc` (RTP mode) that publishes synthetic
//! VP8-shaped video (optionally simulcast) and audio with audio levels, and
//! records everything it receives.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use protocol::{ParticipantId, RoomId};
use str0m::channel::ChannelId;
use str0m::config::{CryptoProvider, DtlsCert};
use str0m::format::Codec;
use str0m::media::{KeyframeRequest, MediaKind, Mid, Rid};
use str0m::rtp::{ExtensionValues, RtpWrite, SeqNo, Ssrc};
use str0m::{Candidate, Rtc, RtcConfig};

/// One RTP packet as a subscriber received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// The subscriber's m-line.
    pub mid: Mid,
    /// SSRC as received (the relay's outgoing SSRC).
    pub ssrc: Ssrc,
    /// Extended sequence number.
    pub seq: u64,
    /// RTP timestamp.
    pub ts: u32,
    /// Marker bit.
    pub marker: bool,
    /// Payload (VP8 descriptor + body for video).
    pub payload: Arc<[u8]>,
    /// When it arrived (virtual time).
    pub at: Instant,
}

/// What a peer publishes.
#[derive(Debug, Clone, Default)]
pub struct Publish {
    /// An audio (Opus) track.
    pub audio: bool,
    /// A video (VP8) track.
    pub video: bool,
    /// Simulcast rids for the video track, lowest quality first (empty: none).
    pub simulcast: Vec<&'static str>,
}

/// Per-layer sender state of a publishing peer.
#[derive(Debug, Default)]
struct SendState {
    seq: u64,
    ts: u32,
    picture_id: u16,
    keyframe_wanted: bool,
}

/// A simulated client peer.
#[derive(Debug)]
pub struct Peer {
    /// Room joined.
    pub room: RoomId,
    /// Participant id.
    pub id: ParticipantId,
    /// The peer's (virtual) UDP address.
    pub addr: SocketAddr,
    /// Its str0m instance.
    pub rtc: Rtc,
    /// Next timeout of `rtc`.
    pub timeout: Instant,
    /// ICE+DTLS connected.
    pub connected: bool,
    /// Published audio m-line.
    pub audio_mid: Option<Mid>,
    /// Published video m-line.
    pub video_mid: Option<Mid>,
    /// Simulcast rids of the video track.
    pub rids: Vec<Rid>,
    /// Packets received, in arrival order.
    pub received: Vec<Received>,
    /// Keyframe requests received as a publisher.
    pub keyframe_requests: Vec<KeyframeRequest>,
    /// Text messages received on the data channel.
    pub messages: Vec<String>,
    /// Remote m-lines added by the relay: mid → (kind, msid stream id).
    pub remote_media: HashMap<Mid, (MediaKind, String)>,
    /// The data channel, once open.
    pub channel: Option<ChannelId>,
    /// The relay's ICE ufrag for this peer (from its answer).
    pub relay_ufrag: String,
    send: HashMap<Option<Rid>, SendState>,
    audio_seq: u64,
    audio_ts: u32,
}

impl Peer {
    pub(crate) fn new(
        room: RoomId,
        id: ParticipantId,
        addr: SocketAddr,
        now: Instant,
        crypto: &Arc<CryptoProvider>,
        cert: &DtlsCert,
    ) -> Self {
        let mut rtc = RtcConfig::new()
            .set_rtp_mode(true)
            .set_crypto_provider(Arc::clone(crypto))
            .set_dtls_cert(cert.clone())
            .build(now);
        if let Ok(c) = Candidate::host(addr, "udp") {
            rtc.add_local_candidate(c);
        }
        Self {
            room,
            id,
            addr,
            rtc,
            timeout: now,
            connected: false,
            audio_mid: None,
            video_mid: None,
            rids: Vec::new(),
            received: Vec::new(),
            keyframe_requests: Vec::new(),
            messages: Vec::new(),
            remote_media: HashMap::new(),
            channel: None,
            relay_ufrag: String::new(),
            send: HashMap::new(),
            audio_seq: 1,
            audio_ts: 0,
        }
    }

    /// Packets received on the m-line carrying `publisher`'s media of `kind`.
    pub fn received_from(&self, publisher: &ParticipantId, kind: MediaKind) -> Vec<&Received> {
        let mids: Vec<Mid> = self
            .remote_media
            .iter()
            .filter(|(_, (k, s))| *k == kind && s == publisher.as_str())
            .map(|(m, _)| *m)
            .collect();
        self.received
            .iter()
            .filter(|r| mids.contains(&r.mid))
            .collect()
    }

    /// Whether a keyframe was requested for `rid` and not yet sent.
    pub fn keyframe_wanted(&self, rid: Option<&str>) -> bool {
        let rid = rid.map(Rid::from);
        self.send.get(&rid).is_some_and(|s| s.keyframe_wanted)
    }

    pub(crate) fn on_keyframe_request(&mut self, req: KeyframeRequest) {
        self.send.entry(req.rid).or_default().keyframe_wanted = true;
        self.keyframe_requests.push(req);
    }

    /// Writes one video frame of `packets` packets of `size` bytes on layer
    /// `rid`, a keyframe if `keyframe`; returns the sequence numbers used.
    /// Payload: VP8 descriptor (15-bit picture id), the VP8 header byte, then
    /// a tag ([`video_tag`]): the layer's index in the simulcast list and the
    /// sending sequence number.
    pub fn send_video_frame(
        &mut self,
        now: Instant,
        rid: Option<&str>,
        keyframe: bool,
        packets: usize,
        size: usize,
    ) -> Vec<u64> {
        let Some(mid) = self.video_mid else {
            return Vec::new();
        };
        let rid = rid.map(Rid::from);
        let layer = rid
            .and_then(|r| self.rids.iter().position(|x| *x == r))
            .unwrap_or(0) as u8;
        let pt = codec_pt(&self.rtc, Codec::Vp8);
        let st = self.send.entry(rid).or_default();
        if keyframe {
            st.keyframe_wanted = false;
        }
        st.ts = st.ts.wrapping_add(3000);
        st.picture_id = (st.picture_id + 1) & 0x7fff;
        let (ts, pid) = (st.ts, st.picture_id);
        let mut seqs = Vec::with_capacity(packets);
        let mut writes = Vec::with_capacity(packets);
        for i in 0..packets {
            st.seq += 1;
            let start = i == 0;
            let mut payload = vec![0u8; size.max(10)];
            payload[0] = if start { 0x90 } else { 0x80 };
            payload[1] = 0x80;
            payload[2] = 0x80 | (pid >> 8) as u8;
            payload[3] = pid as u8;
            payload[4] = u8::from(!keyframe);
            payload[5] = layer;
            payload[6..10].copy_from_slice(&(st.seq as u32).to_be_bytes());
            seqs.push(st.seq);
            writes.push(
                RtpWrite::new(pt, SeqNo::from(st.seq), ts, now, payload)
                    .marker(i + 1 == packets)
                    .nackable(true),
            );
        }
        let mut api = self.rtc.direct_api();
        if let Some(tx) = api.stream_tx_by_mid(mid, rid) {
            for w in writes {
                tx.write_rtp(w);
            }
        }
        seqs
    }

    /// Sends 20 ms of media: an audio packet at `level` (if publishing audio)
    /// and one video frame per layer (layer `i` of the simulcast list has
    /// `i * 2 + 1` packets of 1000 bytes; a single layer has 2). A layer's
    /// first frame, and any frame after a keyframe request, is a keyframe.
    pub fn send_media(&mut self, now: Instant, level: i8) {
        if self.audio_mid.is_some() {
            self.send_audio(now, level);
        }
        if self.video_mid.is_none() {
            return;
        }
        let rids: Vec<Option<String>> = if self.rids.is_empty() {
            vec![None]
        } else {
            self.rids.iter().map(|r| Some(r.to_string())).collect()
        };
        for (i, rid) in rids.iter().enumerate() {
            let key = rid.as_deref().map(Rid::from);
            let st = self.send.get(&key);
            let keyframe = st.is_none_or(|s| s.seq == 0 || s.keyframe_wanted);
            let packets = if self.rids.is_empty() { 2 } else { i * 2 + 1 };
            self.send_video_frame(now, rid.as_deref(), keyframe, packets, 1000);
        }
    }

    /// Writes one 20 ms Opus-shaped audio packet with an RFC 6464 level
    /// (−dBov, 0 = loudest, 127 = silence); returns its sequence number.
    pub fn send_audio(&mut self, now: Instant, level: i8) -> Option<u64> {
        let mid = self.audio_mid?;
        let pt = codec_pt(&self.rtc, Codec::Opus);
        self.audio_seq += 1;
        self.audio_ts = self.audio_ts.wrapping_add(960);
        let seq = self.audio_seq;
        let ext = ExtensionValues {
            audio_level: Some(-level),
            voice_activity: Some(level < 60),
            ..ExtensionValues::default()
        };
        let mut payload = vec![0xfc_u8; 80];
        payload[..8].copy_from_slice(&seq.to_be_bytes());
        let w = RtpWrite::new(pt, SeqNo::from(seq), self.audio_ts, now, payload).ext_vals(ext);
        let mut api = self.rtc.direct_api();
        api.stream_tx_by_mid(mid, None)?.write_rtp(w);
        Some(seq)
    }

    /// As a subscriber, sends a PLI for the relay's m-line `mid`.
    pub fn request_keyframe(&mut self, mid: Mid) -> bool {
        let mut api = self.rtc.direct_api();
        let Some(rx) = api.stream_rx_by_mid(mid, None) else {
            return false;
        };
        rx.request_keyframe(str0m::media::KeyframeRequestKind::Pli);
        true
    }

    /// The relay's m-line carrying `publisher`'s media of `kind`.
    pub fn mid_from(&self, publisher: &ParticipantId, kind: MediaKind) -> Option<Mid> {
        self.remote_media
            .iter()
            .find(|(_, (k, s))| *k == kind && s == publisher.as_str())
            .map(|(m, _)| *m)
    }

    /// Sends a text message on the data channel.
    pub fn send_message(&mut self, text: &str) -> bool {
        let Some(id) = self.channel else { return false };
        self.rtc
            .channel(id)
            .is_some_and(|mut ch| ch.write(false, text.as_bytes()).is_ok())
    }
}

/// The tag [`Peer::send_video_frame`] puts in a payload: (layer index,
/// sending sequence number, starts a keyframe).
pub fn video_tag(payload: &[u8]) -> Option<(u8, u32, bool)> {
    let seq = u32::from_be_bytes(payload.get(6..10)?.try_into().ok()?);
    let start = payload.first()? & 0x10 != 0;
    Some((*payload.get(5)?, seq, start && payload.get(4)? & 1 == 0))
}

/// The local PT of `codec`.
fn codec_pt(rtc: &Rtc, codec: Codec) -> str0m::media::Pt {
    rtc.codec_config()
        .params()
        .iter()
        .find(|p| p.spec().codec == codec)
        .map_or_else(|| 96.into(), str0m::format::PayloadParams::pt)
}
