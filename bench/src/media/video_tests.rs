//! Tests of the video shape: rates, keyframes, packetisation, simulcast.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::*;
use crate::media::vp8;

/// Runs a source for `secs` seconds and returns its packets.
fn run(shape: VideoShape, secs: u64) -> Vec<OutPacket> {
    let t0 = Instant::now();
    let ids: Vec<StreamId> = (0..3).map(StreamId).collect();
    let mut src = VideoSource::new(shape, &ids, t0);
    let mut out = Vec::new();
    let end = t0 + Duration::from_secs(secs);
    // Step at the source's own schedule, stopping before `end`.
    while src.next_due() < end {
        assert_eq!(src.produce(src.next_due(), &mut out), 0);
    }
    out
}

fn bits_per_second(packets: &[&OutPacket], secs: u64) -> f64 {
    let bytes: usize = packets.iter().map(|p| p.payload.len()).sum();
    bytes as f64 * 8.0 / secs as f64
}

#[test]
fn bitrate_and_frame_rate_match_the_shape() {
    let shape = VideoShape::default(); // 1 Mbit/s, 30 fps, keyframe every 3 s
    let out = run(shape, 6);
    let all: Vec<&OutPacket> = out.iter().collect();
    let bps = bits_per_second(&all, 6);
    // Payload bytes include our 6-byte descriptors: allow a few percent above.
    assert!((1_000_000.0..1_060_000.0).contains(&bps), "{bps} bit/s");
    let frames = out.iter().filter(|p| p.marker).count();
    assert_eq!(frames, 180, "30 fps for 6 s, one marker per frame");
}

#[test]
fn keyframes_are_periodic_larger_and_detectable() {
    let out = run(VideoShape::default(), 6);
    let mut frames: BTreeMap<u32, Vec<&OutPacket>> = BTreeMap::new();
    for p in &out {
        frames.entry(p.rtp_time).or_default().push(p);
    }
    let keyframe_times: Vec<u32> = frames
        .iter()
        .filter(|(_, f)| f[0].keyframe)
        .map(|(t, _)| *t)
        .collect();
    assert_eq!(
        keyframe_times,
        vec![0, 270_000],
        "every 90 frames at 90 kHz"
    );
    let size = |f: &Vec<&OutPacket>| f.iter().map(|p| p.payload.len()).sum::<usize>();
    let key = size(&frames[&0]);
    let delta = size(&frames[&3000]);
    assert!(key > 5 * delta, "keyframe {key} vs delta {delta}");
    for f in frames.values() {
        let first = vp8::parse(&f[0].payload).unwrap();
        assert!(first.start && first.partition == 0);
        assert_eq!(first.keyframe, f[0].keyframe, "P bit matches");
        assert_eq!(
            str0m::format::detect_vp8_keyframe(&f[0].payload),
            f[0].keyframe
        );
        for p in &f[1..] {
            assert!(
                !vp8::parse(&p.payload).unwrap().start,
                "S only on the first packet"
            );
        }
        let markers: Vec<bool> = f.iter().map(|p| p.marker).collect();
        assert_eq!(markers.iter().filter(|m| **m).count(), 1);
        assert!(
            markers.last().copied().unwrap_or(false),
            "marker on the last packet"
        );
    }
}

#[test]
fn packets_fit_the_mtu_and_carry_sequential_probes() {
    let out = run(VideoShape::default(), 1);
    assert!(out.iter().all(|p| p.payload.len() <= vp8::MAX_PAYLOAD));
    for (i, p) in out.iter().enumerate() {
        let probe = Probe::read_tail(&p.payload).unwrap();
        assert_eq!(probe.seq, i as u64);
        assert_eq!(p.seq, i as u64);
    }
    // Picture ids advance by one per frame.
    let pids: Vec<u16> = out
        .iter()
        .filter(|p| p.marker)
        .map(|p| vp8::parse(&p.payload).unwrap().picture_id.unwrap())
        .collect();
    assert_eq!(pids[..3], [0, 1, 2]);
}

#[test]
fn simulcast_layers_run_at_a_quarter_half_and_full_rate() {
    let shape = VideoShape {
        simulcast: true,
        ..VideoShape::default()
    };
    let out = run(shape, 6);
    let rate = |rid| {
        let layer: Vec<&OutPacket> = out.iter().filter(|p| p.rid == Some(rid)).collect();
        bits_per_second(&layer, 6)
    };
    let (q, h, f) = (rate("q"), rate("h"), rate("f"));
    assert!((1_000_000.0..1_060_000.0).contains(&f), "f {f}");
    assert!((0.23..0.28).contains(&(q / f)), "q/f {}", q / f);
    assert!((0.48..0.53).contains(&(h / f)), "h/f {}", h / f);
    // Each layer has its own stream id and probe sequence.
    let ids: Vec<u32> = ["q", "h", "f"]
        .iter()
        .map(|rid| {
            let p = out.iter().find(|p| p.rid == Some(rid)).unwrap();
            Probe::read_tail(&p.payload).unwrap().stream.0
        })
        .collect();
    assert_eq!(ids, vec![0, 1, 2]);
}

#[test]
fn a_keyframe_request_makes_the_next_frame_a_keyframe() {
    let t0 = Instant::now();
    let mut src = VideoSource::new(VideoShape::default(), &[StreamId(0)], t0);
    let mut out = Vec::new();
    src.produce(t0, &mut out);
    out.clear();
    src.request_keyframe();
    src.produce(src.next_due(), &mut out);
    assert!(out.iter().all(|p| p.keyframe));
    out.clear();
    src.produce(src.next_due(), &mut out);
    assert!(out.iter().all(|p| !p.keyframe));
}
