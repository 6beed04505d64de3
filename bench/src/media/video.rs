//! VP8-shaped video: frames at a bitrate and frame rate, periodic larger keyframes,
//! optional three simulcast layers (`q`, `h`, `f` at 1/4, 1/2 and full bitrate).

use std::time::{Duration, Instant};

use super::vp8::{self, DESCRIPTOR_LEN, FrameInfo, MAX_PAYLOAD};
use super::{Kind, LATE, OutPacket, Probe, Source, StreamId};
use crate::clock::ns_since_epoch;

/// Shape of a synthetic video track.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct VideoShape {
    /// Target bitrate of the full-quality layer, bits per second.
    pub bitrate_bps: u32,
    /// Frames per second (each layer).
    pub fps: u32,
    /// Time between keyframes.
    #[serde(
        rename = "keyframe_interval_ms",
        serialize_with = "crate::clock::serialize_ms"
    )]
    pub keyframe_interval: Duration,
    /// How many times larger a keyframe is than a delta frame.
    pub keyframe_factor: u32,
    /// Send three simulcast layers instead of one.
    pub simulcast: bool,
}

impl Default for VideoShape {
    fn default() -> Self {
        VideoShape {
            bitrate_bps: 1_000_000,
            fps: 30,
            keyframe_interval: Duration::from_secs(3),
            keyframe_factor: 6,
            simulcast: false,
        }
    }
}

/// One encoded layer of a video track.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layer {
    /// RTP stream id (`a=rid`), `None` without simulcast.
    pub rid: Option<&'static str>,
    /// Bitrate of this layer, bits per second.
    pub bitrate_bps: u32,
    /// Coded width.
    pub width: u16,
    /// Coded height.
    pub height: u16,
}

impl VideoShape {
    /// The layers this shape sends, lowest first.
    pub fn layers(&self) -> Vec<Layer> {
        let full = |rid| Layer {
            rid,
            bitrate_bps: self.bitrate_bps,
            width: 1280,
            height: 720,
        };
        if !self.simulcast {
            return vec![full(None)];
        }
        vec![
            Layer {
                rid: Some("q"),
                bitrate_bps: self.bitrate_bps / 4,
                width: 320,
                height: 180,
            },
            Layer {
                rid: Some("h"),
                bitrate_bps: self.bitrate_bps / 2,
                width: 640,
                height: 360,
            },
            full(Some("f")),
        ]
    }

    /// Frames per keyframe period (at least 1).
    pub fn gop(&self) -> u64 {
        (self.keyframe_interval.as_secs_f64() * f64::from(self.fps.max(1)))
            .round()
            .max(1.0) as u64
    }

    /// (delta, key) frame sizes in bytes for a layer, so the average over a keyframe
    /// period equals the layer's bitrate.
    pub fn frame_sizes(&self, layer: &Layer) -> (usize, usize) {
        let avg = f64::from(layer.bitrate_bps) / 8.0 / f64::from(self.fps.max(1));
        let gop = self.gop() as f64;
        let factor = f64::from(self.keyframe_factor.max(1));
        let delta = gop * avg / (gop - 1.0 + factor);
        (delta.round() as usize, (delta * factor).round() as usize)
    }
}

#[derive(Debug)]
struct LayerState {
    layer: Layer,
    stream: StreamId,
    seq: u64,
    picture_id: u16,
    tl0_pic_idx: u8,
    sizes: (usize, usize),
}

/// Generates a [`VideoShape`] track: all layers tick together, one frame per interval.
#[derive(Debug)]
pub struct VideoSource {
    shape: VideoShape,
    layers: Vec<LayerState>,
    start: Instant,
    frame: u64,
    force_keyframe: bool,
}

impl VideoSource {
    /// A source whose first frame (a keyframe) is due at `start`. Layer `i` stamps its
    /// probes with `streams[i]`; pass one id per [`VideoShape::layers`] entry.
    pub fn new(shape: VideoShape, streams: &[StreamId], start: Instant) -> Self {
        let layers = shape
            .layers()
            .into_iter()
            .zip(streams)
            .map(|(layer, &stream)| LayerState {
                sizes: shape.frame_sizes(&layer),
                layer,
                stream,
                seq: 0,
                picture_id: 0,
                tl0_pic_idx: 0,
            })
            .collect();
        VideoSource {
            shape,
            layers,
            start,
            frame: 0,
            force_keyframe: false,
        }
    }

    /// Makes the next frame a keyframe (answering a PLI/FIR).
    pub fn request_keyframe(&mut self) {
        self.force_keyframe = true;
    }

    /// Stream ids per layer, in [`VideoShape::layers`] order.
    pub fn streams(&self) -> Vec<(Option<&'static str>, StreamId)> {
        self.layers
            .iter()
            .map(|l| (l.layer.rid, l.stream))
            .collect()
    }

    /// Packets produced so far per layer stream (the next probe sequence of each).
    pub fn produced(&self) -> Vec<(StreamId, u64)> {
        self.layers.iter().map(|l| (l.stream, l.seq)).collect()
    }

    fn frame_due(&self, frame: u64) -> Instant {
        // Exact: frame × 1 s / fps, not frame × a rounded interval.
        let fps = u64::from(self.shape.fps.max(1));
        self.start + Duration::from_nanos(frame.saturating_mul(1_000_000_000) / fps)
    }

    fn emit_frame(&mut self, now: Instant, out: &mut Vec<OutPacket>) {
        let keyframe = self.frame.is_multiple_of(self.shape.gop()) || self.force_keyframe;
        self.force_keyframe = false;
        let rtp_time = (self.frame * 90_000 / u64::from(self.shape.fps.max(1))) as u32;
        let sent_ns = ns_since_epoch(now);
        for state in &mut self.layers {
            let info = FrameInfo {
                picture_id: state.picture_id,
                tl0_pic_idx: state.tl0_pic_idx,
                keyframe,
                width: state.layer.width,
                height: state.layer.height,
            };
            let size = if keyframe {
                state.sizes.1
            } else {
                state.sizes.0
            };
            let bodies = split(size, vp8::header_len(keyframe));
            let count = bodies.len();
            for (i, body) in bodies.into_iter().enumerate() {
                let mut payload = vec![0u8; DESCRIPTOR_LEN + body];
                let mut desc = [0; DESCRIPTOR_LEN];
                vp8::write_descriptor(&mut desc, &info, i == 0);
                payload[..DESCRIPTOR_LEN].copy_from_slice(&desc);
                if i == 0 {
                    let first_partition = (size / 8).max(1) as u32;
                    vp8::write_header(&mut payload[DESCRIPTOR_LEN..], &info, first_partition);
                }
                Probe {
                    stream: state.stream,
                    kind: Kind::Video,
                    seq: state.seq,
                    sent_ns,
                }
                .write_tail(&mut payload);
                out.push(OutPacket {
                    rid: state.layer.rid,
                    seq: state.seq,
                    rtp_time,
                    marker: i + 1 == count,
                    keyframe,
                    payload,
                });
                state.seq += 1;
            }
            state.picture_id = (state.picture_id + 1) & 0x7FFF;
            state.tl0_pic_idx = state.tl0_pic_idx.wrapping_add(1);
        }
        self.frame += 1;
    }
}

/// Splits a frame of `size` bytes into near-equal packet bodies of at most
/// `MAX_PAYLOAD - DESCRIPTOR_LEN` bytes, each big enough for its headers and a probe.
fn split(size: usize, header_len: usize) -> Vec<usize> {
    let max_body = MAX_PAYLOAD - DESCRIPTOR_LEN;
    let size = size.max(header_len + Probe::LEN);
    let n = size.div_ceil(max_body);
    let (base, rem) = (size / n, size % n);
    (0..n).map(|i| base + usize::from(i < rem)).collect()
}

impl Source for VideoSource {
    fn next_due(&self) -> Instant {
        self.frame_due(self.frame)
    }

    fn produce(&mut self, now: Instant, out: &mut Vec<OutPacket>) -> u32 {
        let mut late = 0;
        loop {
            let due = self.frame_due(self.frame);
            if due > now {
                return late;
            }
            if now - due > LATE {
                late += 1;
            }
            self.emit_frame(now, out);
        }
    }
}

#[cfg(test)]
#[path = "video_tests.rs"]
mod tests;
