//! Keyframe request throttling: subscribers' PLI/FIR and the SFU's own
//! requests (new subscriber, layer switch) reach a publisher's layer at most
//! once per [`KEYFRAME_INTERVAL`]. A request inside the window is remembered
//! and sent when the window ends, so nobody waits forever for a keyframe.
//!
//! Also holds keyframe detection for the forwarded codecs.

use std::time::{Duration, Instant};

use str0m::format::Codec;

/// Minimum time between two keyframe requests to one publisher layer.
pub(crate) const KEYFRAME_INTERVAL: Duration = Duration::from_secs(1);

/// Throttle state of one layer.
#[derive(Debug, Default)]
pub(crate) struct KeyframeThrottle {
    last: Option<Instant>,
    pending: bool,
}

impl KeyframeThrottle {
    /// Asks for a keyframe: `true` if it may be sent now, else it is deferred.
    pub(crate) fn request(&mut self, now: Instant) -> bool {
        if self.open(now) {
            self.last = Some(now);
            self.pending = false;
            true
        } else {
            self.pending = true;
            false
        }
    }

    /// `true` (once) when a deferred request is due.
    pub(crate) fn poll_pending(&mut self, now: Instant) -> bool {
        if self.pending && self.open(now) {
            self.last = Some(now);
            self.pending = false;
            true
        } else {
            false
        }
    }

    fn open(&self, now: Instant) -> bool {
        self.last
            .is_none_or(|t| now.saturating_duration_since(t) >= KEYFRAME_INTERVAL)
    }
}

/// Whether `payload` starts a keyframe of `codec`. Codecs without a
/// detector count every packet as a keyframe (forwarded without waiting).
pub(crate) fn is_keyframe(codec: Codec, payload: &[u8]) -> bool {
    use str0m::format::{
        detect_av1_keyframe, detect_h264_keyframe, detect_vp8_keyframe, detect_vp9_keyframe,
    };
    match codec {
        Codec::Vp8 => detect_vp8_keyframe(payload),
        Codec::Vp9 => detect_vp9_keyframe(payload),
        Codec::H264 => detect_h264_keyframe(payload),
        Codec::Av1 => detect_av1_keyframe(payload),
        _ => true,
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // tests start a virtual clock from one real Instant
mod tests {
    use super::*;

    #[test]
    fn at_most_one_request_per_interval_and_deferred_ones_are_sent_later() {
        let t0 = Instant::now();
        let mut k = KeyframeThrottle::default();
        assert!(k.request(t0));
        assert!(!k.request(t0 + Duration::from_millis(10)));
        assert!(!k.request(t0 + Duration::from_millis(500)));
        assert!(!k.poll_pending(t0 + Duration::from_millis(900)));
        assert!(k.poll_pending(t0 + Duration::from_secs(1)));
        assert!(!k.poll_pending(t0 + Duration::from_secs(3)));
        assert!(k.request(t0 + Duration::from_secs(3)));
    }

    #[test]
    fn vp8_keyframes_are_detected_from_the_payload_header() {
        // S=1, PID=0, no extension; P bit (bit 0 of next byte) 0 = keyframe.
        assert!(is_keyframe(Codec::Vp8, &[0x10, 0x00, 0x9d]));
        assert!(!is_keyframe(Codec::Vp8, &[0x10, 0x01, 0x9d]));
        // Not the start of a partition.
        assert!(!is_keyframe(Codec::Vp8, &[0x00, 0x00]));
        assert!(!is_keyframe(Codec::Vp8, &[]));
        assert!(is_keyframe(Codec::Opus, &[1, 2, 3]));
    }
}
