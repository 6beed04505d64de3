//! VP8 RTP packetisation per RFC 7741, enough for an SFU to treat it as real VP8.
//!
//! Every payload starts with a 6-byte payload descriptor: X=1, S on the first packet of
//! a frame, partition index 0 (one partition, like libvpx in real-time mode), a 15-bit
//! picture id, TL0PICIDX and TID/Y/KEYIDX. The first packet of a frame then carries the
//! VP8 payload header (RFC 7741 §4.3) whose P bit is 0 on keyframes, followed on
//! keyframes by the start code and dimensions (RFC 6386 §9.1).

/// Largest RTP payload we produce (descriptor included), as browsers do.
pub const MAX_PAYLOAD: usize = 1200;
/// Length of the payload descriptor we write.
pub const DESCRIPTOR_LEN: usize = 6;
/// Length of the VP8 payload header on a delta frame.
pub const HEADER_LEN_DELTA: usize = 3;
/// Length of the VP8 payload header on a keyframe (frame tag + start code + size).
pub const HEADER_LEN_KEY: usize = 10;

/// Per-frame values the descriptor carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameInfo {
    /// 15-bit picture id (wraps).
    pub picture_id: u16,
    /// Temporal-layer-0 picture index (wraps).
    pub tl0_pic_idx: u8,
    /// Whether this frame is a keyframe.
    pub keyframe: bool,
    /// Coded width in pixels (14 bits).
    pub width: u16,
    /// Coded height in pixels (14 bits).
    pub height: u16,
}

/// Writes the payload descriptor for one packet of a frame.
pub fn write_descriptor(buf: &mut [u8; DESCRIPTOR_LEN], frame: &FrameInfo, start: bool) {
    // X=1 | R | N=0 | S | R | PID=0
    buf[0] = 0x80 | if start { 0x10 } else { 0 };
    // I=1, L=1, T=1, K=0
    buf[1] = 0x80 | 0x40 | 0x20;
    // M=1: 15-bit picture id.
    let pid = frame.picture_id & 0x7FFF;
    buf[2] = 0x80 | (pid >> 8) as u8;
    buf[3] = (pid & 0xFF) as u8;
    buf[4] = frame.tl0_pic_idx;
    // TID=0, Y=1 on keyframes (a layer sync point), KEYIDX=0.
    buf[5] = if frame.keyframe { 0x20 } else { 0 };
}

/// Length of the VP8 payload header for this frame type.
pub fn header_len(keyframe: bool) -> usize {
    if keyframe {
        HEADER_LEN_KEY
    } else {
        HEADER_LEN_DELTA
    }
}

/// Writes the VP8 payload header at the start of a frame's first packet.
///
/// `first_partition_size` is 19 bits; `out` must hold [`header_len`] bytes.
pub fn write_header(out: &mut [u8], frame: &FrameInfo, first_partition_size: u32) {
    let size = first_partition_size & 0x7_FFFF;
    let p = u8::from(!frame.keyframe);
    // |Size0|H|VER|P| with H (show_frame) = 1 and VER = 0.
    let tag = [
        ((size & 0x7) << 5) as u8 | 0x10 | p,
        (size >> 3) as u8,
        (size >> 11) as u8,
    ];
    if let Some(dst) = out.get_mut(..3) {
        dst.copy_from_slice(&tag);
    }
    if frame.keyframe
        && let Some(dst) = out.get_mut(3..HEADER_LEN_KEY)
    {
        let [w0, w1] = (frame.width & 0x3FFF).to_le_bytes();
        let [h0, h1] = (frame.height & 0x3FFF).to_le_bytes();
        dst.copy_from_slice(&[0x9d, 0x01, 0x2a, w0, w1, h0, h1]);
    }
}

/// What a receiver can read back from a VP8 payload we (or anyone) produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Parsed {
    /// S bit: first packet of a partition.
    pub start: bool,
    /// Partition index.
    pub partition: u8,
    /// Picture id, if present.
    pub picture_id: Option<u16>,
    /// Offset of the VP8 payload (after the descriptor).
    pub payload_offset: usize,
    /// Keyframe: S=1, PID=0 and the payload header's P bit is 0.
    pub keyframe: bool,
}

/// Parses a payload descriptor (RFC 7741 §4.2). `None` if truncated.
pub fn parse(payload: &[u8]) -> Option<Parsed> {
    let b0 = *payload.first()?;
    let start = b0 & 0x10 != 0;
    let partition = b0 & 0x07;
    let mut off = 1;
    let mut picture_id = None;
    if b0 & 0x80 != 0 {
        let x = *payload.get(off)?;
        off += 1;
        if x & 0x80 != 0 {
            let m = *payload.get(off)?;
            if m & 0x80 != 0 {
                let lo = *payload.get(off + 1)?;
                picture_id = Some(u16::from(m & 0x7F) << 8 | u16::from(lo));
                off += 2;
            } else {
                picture_id = Some(u16::from(m));
                off += 1;
            }
        }
        if x & 0x40 != 0 {
            off += 1;
        }
        if x & 0x30 != 0 {
            off += 1;
        }
    }
    let keyframe = start && partition == 0 && payload.get(off).is_some_and(|h| h & 0x01 == 0);
    payload.get(off..)?;
    Some(Parsed {
        start,
        partition,
        picture_id,
        payload_offset: off,
        keyframe,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(keyframe: bool) -> FrameInfo {
        FrameInfo {
            picture_id: 0x1234,
            tl0_pic_idx: 9,
            keyframe,
            width: 1280,
            height: 720,
        }
    }

    #[test]
    fn descriptor_bytes_follow_rfc7741() {
        let mut d = [0; DESCRIPTOR_LEN];
        write_descriptor(&mut d, &frame(true), true);
        assert_eq!(d, [0x90, 0xE0, 0x92, 0x34, 9, 0x20]);
        write_descriptor(&mut d, &frame(false), false);
        assert_eq!(d, [0x80, 0xE0, 0x92, 0x34, 9, 0x00]);
    }

    #[test]
    fn keyframe_header_has_p_zero_start_code_and_size() {
        let mut h = [0; HEADER_LEN_KEY];
        write_header(&mut h, &frame(true), 1000);
        assert_eq!(h[0] & 0x01, 0, "P=0 on keyframes");
        assert_eq!(h[0] & 0x10, 0x10, "show_frame");
        let size = u32::from(h[0] >> 5) | u32::from(h[1]) << 3 | u32::from(h[2]) << 11;
        assert_eq!(size, 1000);
        assert_eq!(&h[3..6], &[0x9d, 0x01, 0x2a]);
        assert_eq!(u16::from_le_bytes([h[6], h[7]]), 1280);
        assert_eq!(u16::from_le_bytes([h[8], h[9]]), 720);
        let mut d = [0; HEADER_LEN_DELTA];
        write_header(&mut d, &frame(false), 1000);
        assert_eq!(d[0] & 0x01, 1, "P=1 on delta frames");
    }

    #[test]
    fn parse_reads_back_what_we_write_and_str0m_agrees() {
        for key in [true, false] {
            let mut p = vec![0; DESCRIPTOR_LEN + HEADER_LEN_KEY];
            let mut d = [0; DESCRIPTOR_LEN];
            write_descriptor(&mut d, &frame(key), true);
            p[..DESCRIPTOR_LEN].copy_from_slice(&d);
            write_header(&mut p[DESCRIPTOR_LEN..], &frame(key), 500);
            let parsed = parse(&p).unwrap();
            assert_eq!(parsed.keyframe, key);
            assert_eq!(parsed.picture_id, Some(0x1234));
            assert_eq!(parsed.payload_offset, DESCRIPTOR_LEN);
            assert!(parsed.start);
            assert_eq!(
                str0m::format::detect_vp8_keyframe(&p),
                key,
                "str0m's keyframe detector"
            );
        }
        assert_eq!(parse(&[]), None);
        assert_eq!(parse(&[0x80]), None, "X set but no extension byte");
    }
}
