//! Simulcast: the layers of one published video track, their measured
//! bitrates, and per-subscriber layer choice.
//!
//! Layers are ranked by measured bitrate (declaration order breaks ties and
//! ranks layers before any measurement). A subscriber's target is the best
//! active layer within both its requested quality and its share of the
//! bandwidth estimate; the forwarder only switches to the target on a
//! keyframe of the target layer.

use std::time::{Duration, Instant};

use str0m::media::Rid;
use str0m::rtp::Ssrc;

/// A layer that sent nothing for this long is not chosen.
const LAYER_IDLE: Duration = Duration::from_millis(1500);

/// One incoming encoding of a track (a simulcast layer, or the only one).
#[derive(Debug)]
pub(crate) struct Layer {
    /// The RTP stream id, `None` without simulcast.
    pub rid: Option<Rid>,
    /// The main SSRC, once learnt.
    pub ssrc: Option<Ssrc>,
    /// Payload bytes in the current measurement window.
    pub window_bytes: u64,
    /// Smoothed bitrate, bits per second.
    pub bitrate: u64,
    /// Last packet arrival.
    pub last_packet: Option<Instant>,
}

impl Layer {
    pub(crate) fn new(rid: Option<Rid>) -> Self {
        Self {
            rid,
            ssrc: None,
            window_bytes: 0,
            bitrate: 0,
            last_packet: None,
        }
    }

    fn active(&self, now: Instant) -> bool {
        self.last_packet
            .is_some_and(|t| now.saturating_duration_since(t) < LAYER_IDLE)
    }

    /// Closes a measurement window of length `window`.
    pub(crate) fn measure(&mut self, window: Duration) {
        let ms = window.as_millis().max(1) as u64;
        let rate = self.window_bytes * 8 * 1000 / ms;
        self.bitrate = if self.bitrate == 0 {
            rate
        } else {
            (self.bitrate * 3 + rate) / 4
        };
        self.window_bytes = 0;
    }
}

/// The quality a subscriber asked for (per publisher), highest allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Quality {
    /// Receive no video from this publisher.
    Off,
    /// The lowest layer.
    Low,
    /// The middle layer (or the lowest of two).
    Medium,
    /// The best layer.
    High,
}

/// What the forwarder does with one packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decision {
    Drop,
    Forward,
    /// Start a new run at this packet (first keyframe, or layer switch).
    Switch,
}

/// Per-subscriber layer state of one outgoing track.
#[derive(Debug)]
pub(crate) struct LayerSelect {
    /// Layer being forwarded.
    pub current: Option<usize>,
    /// Layer wanted; switched to at its next keyframe.
    pub target: Option<usize>,
    /// The subscriber's requested ceiling.
    pub quality: Quality,
}

impl LayerSelect {
    pub(crate) fn new() -> Self {
        Self {
            current: None,
            target: None,
            quality: Quality::High,
        }
    }

    /// Decides for a packet of `layer`; `keyframe` if it starts a keyframe.
    pub(crate) fn decide(&mut self, layer: usize, keyframe: bool) -> Decision {
        if self.target == Some(layer) && self.current != Some(layer) && keyframe {
            self.current = Some(layer);
            return Decision::Switch;
        }
        if self.current == Some(layer) && self.target.is_some() {
            return Decision::Forward;
        }
        Decision::Drop
    }
}

/// Index of the best active layer allowed by `quality` whose bitrate fits
/// `budget` (bits/s, `None` = unlimited); the lowest active layer if none fits,
/// or while a budget applies and some layer's bitrate is not measured yet.
pub(crate) fn choose(
    layers: &[Layer],
    now: Instant,
    quality: Quality,
    budget: Option<u64>,
) -> Option<usize> {
    if quality == Quality::Off {
        return None;
    }
    let mut active: [(u64, usize); 4] = [(0, 0); 4];
    let mut n = 0;
    for (i, l) in layers.iter().enumerate().take(4) {
        if l.active(now) {
            active[n] = (l.bitrate, i);
            n += 1;
        }
    }
    let active = &mut active[..n];
    if active.is_empty() {
        return None;
    }
    active.sort_unstable();
    let ceiling = match quality {
        Quality::Off => return None,
        Quality::Low => 0,
        Quality::Medium => 1.min(n - 1),
        Quality::High => n - 1,
    };
    if budget.is_some() && active.iter().any(|(rate, _)| *rate == 0) {
        return Some(active[0].1);
    }
    let fits = |rate: u64| budget.is_none_or(|b| rate <= b);
    let pick = (0..=ceiling)
        .rev()
        .find(|&r| fits(active[r].0))
        .unwrap_or(0);
    Some(active[pick].1)
}

/// Bitrate of the best layer allowed by `quality` (for BWE's desired rate).
pub(crate) fn top_bitrate(layers: &[Layer], now: Instant, quality: Quality) -> u64 {
    choose(layers, now, quality, None).map_or(0, |i| layers[i].bitrate)
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // tests start a virtual clock from one real Instant
mod tests {
    use super::*;

    fn layers(now: Instant, rates: &[u64]) -> Vec<Layer> {
        rates
            .iter()
            .map(|&r| {
                let mut l = Layer::new(None);
                l.bitrate = r;
                l.last_packet = Some(now);
                l
            })
            .collect()
    }

    #[test]
    fn picks_best_fitting_layer_within_quality() {
        let now = Instant::now();
        let ls = layers(now, &[2_000_000, 150_000, 500_000]);
        assert_eq!(choose(&ls, now, Quality::High, None), Some(0));
        assert_eq!(choose(&ls, now, Quality::High, Some(600_000)), Some(2));
        assert_eq!(choose(&ls, now, Quality::Medium, None), Some(2));
        assert_eq!(choose(&ls, now, Quality::Low, None), Some(1));
        assert_eq!(choose(&ls, now, Quality::High, Some(1)), Some(1));
        assert_eq!(choose(&ls, now, Quality::Off, None), None);
    }

    #[test]
    fn idle_layers_are_not_chosen() {
        let now = Instant::now();
        let mut ls = layers(now, &[150_000, 2_000_000]);
        ls[1].last_packet = None;
        assert_eq!(choose(&ls, now, Quality::High, None), Some(0));
    }

    #[test]
    fn switches_only_on_a_keyframe_of_the_target() {
        let mut s = LayerSelect::new();
        s.target = Some(1);
        assert_eq!(s.decide(1, false), Decision::Drop);
        assert_eq!(s.decide(0, true), Decision::Drop);
        assert_eq!(s.decide(1, true), Decision::Switch);
        assert_eq!(s.decide(1, false), Decision::Forward);
        s.target = Some(0);
        assert_eq!(s.decide(1, false), Decision::Forward);
        assert_eq!(s.decide(0, false), Decision::Drop);
        assert_eq!(s.decide(0, true), Decision::Switch);
        assert_eq!(s.decide(1, false), Decision::Drop);
    }
}
