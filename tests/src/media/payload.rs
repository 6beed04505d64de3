//! The synthetic media: payloads that carry a marker, the sender's tag and a running
//! number (so receivers know who sent what), the local tracks, and the task that
//! sends a track's samples once its peer connection is up.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Result, anyhow};
use bytes::Bytes;
use rtc::media::Sample;
use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::configuration::media_engine::{MIME_TYPE_OPUS, MIME_TYPE_VP8};
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodec, RTCRtpCodingParameters, RTCRtpEncodingParameters, RtpCodecKind,
};
use tokio::sync::watch;
use webrtc::media_stream::track_local::static_sample::TrackLocalStaticSample;
use webrtc::peer_connection::RTCPeerConnectionState;
use webrtc::rtp_transceiver::RtpSender;

use super::Kind;

/// Bytes every synthetic payload carries before its sender's tag.
const MARKER: &[u8] = b"anteroom-e2e:";
/// A VP8 key-frame start (frame tag + start code + size), so the relay sees key frames.
const VP8_KEY: [u8; 10] = [0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a, 0x40, 0x01, 0xf0, 0x00];

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
pub(super) fn parse_payload(payload: &[u8]) -> Option<(String, u32)> {
    let at = payload.windows(MARKER.len()).position(|w| w == MARKER)? + MARKER.len();
    let len = usize::from(*payload.get(at)?);
    let tag = payload.get(at + 1..at + 1 + len)?;
    let number = payload.get(at + 1 + len..at + 5 + len)?;
    Some((
        String::from_utf8_lossy(tag).into_owned(),
        u32::from_be_bytes(number.try_into().ok()?),
    ))
}

static SSRCS: AtomicU32 = AtomicU32::new(0x1000);

pub(super) fn local_track(tag: &str, kind: Kind) -> Result<(Arc<TrackLocalStaticSample>, u32)> {
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

/// Sends one track's samples from connection until the task is aborted.
pub(super) async fn stream(
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
