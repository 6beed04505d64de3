//! A participant: its str0m `Rtc` (ICE-lite, RTP mode), the tracks it
//! publishes ([`TrackIn`]) and the tracks it receives ([`TrackOut`]).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use protocol::{GrantRole, ParticipantId, RoomId};
use str0m::bwe::Bitrate;
use str0m::change::SdpPendingOffer;
use str0m::channel::ChannelId;
use str0m::config::{CryptoProvider, DtlsCert};
use str0m::media::{MediaKind, Mid, Pt, Rid};
use str0m::rtp::{Ssrc, StreamTxQueueInfo};
use str0m::{Candidate, Rtc, RtcConfig};

use super::forward::Rewriter;
use super::keyframe::KeyframeThrottle;
use super::simulcast::{Layer, LayerSelect};
use super::slab::PKey;

/// Most addresses remembered per participant (ICE may try several).
pub(crate) const MAX_ADDRS: usize = 4;

/// How long a simulcast track waits for all its layers before layers are chosen.
pub(crate) const SETTLE: std::time::Duration = std::time::Duration::from_millis(300);

/// A subscriber's video queue (str0m's pacer queue, with BWE) whose oldest
/// packet waited longer than this is behind: its video is dropped until the
/// next keyframe instead of queueing more (audio is never dropped).
pub(crate) const STALE_VIDEO: std::time::Duration = std::time::Duration::from_millis(300);

/// Whether the send queue of outgoing stream `ssrc` holds a packet older
/// than [`STALE_VIDEO`] (as of str0m's latest pacer sample).
pub(crate) fn queue_behind(rtc: &mut Rtc, ssrc: Ssrc, now: Instant) -> bool {
    rtc.direct_api()
        .stream_tx(&ssrc)
        .and_then(|tx| tx.queue_info().and_then(StreamTxQueueInfo::first_unsent))
        .is_some_and(|at| now.saturating_duration_since(at) > STALE_VIDEO)
}

/// Unique id of a published track on this worker.
pub(crate) type TrackId = u64;

/// Everything needed to build a participant's `Rtc`.
#[derive(Debug, Clone)]
pub(crate) struct RtcFactory {
    pub crypto: Arc<CryptoProvider>,
    pub cert: Option<DtlsCert>,
    pub local_addr: SocketAddr,
}

impl RtcFactory {
    /// A server-side `Rtc`: ICE-lite, RTP mode, shared certificate, one host
    /// candidate (the worker's advertised address); TWCC bandwidth
    /// estimation (and str0m's pacer) from `bwe_initial` bits/s if set.
    pub(crate) fn build(&self, now: Instant, bwe_initial: Option<u64>) -> Rtc {
        let mut config = RtcConfig::new()
            .set_ice_lite(true)
            .set_rtp_mode(true)
            // The peer's DTLS certificate must match its SDP fingerprint
            // (str0m's default, stated here because security rests on it).
            .set_fingerprint_verification(true)
            .set_crypto_provider(Arc::clone(&self.crypto));
        if let Some(cert) = &self.cert {
            config = config.set_dtls_cert(cert.clone());
        }
        config = config
            .set_stats_interval(Some(std::time::Duration::from_secs(1)))
            .clear_codecs()
            .enable_opus(true, false)
            .enable_vp8(true)
            .enable_h264(true)
            .enable_vp9(true);
        if let Some(bps) = bwe_initial {
            config = config.enable_bwe(Some(Bitrate::bps(bps)));
        }
        let mut rtc = config.build(now);
        if let Ok(c) = Candidate::host(self.local_addr, "udp") {
            rtc.add_local_candidate(c);
        }
        rtc
    }
}

/// Negotiation state of an outgoing track's m-line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OutState {
    /// Needs an m-line in the next server offer.
    ToOpen,
    /// Offered, awaiting the answer.
    Negotiating(Mid),
    /// Negotiated; media flows.
    Open(Mid),
    /// The source went away: stop the m-line in the next offer.
    ToStop(Mid),
    /// Stop offered, awaiting the answer.
    NegotiatingStop(Mid),
}

impl OutState {
    pub(crate) fn mid(self) -> Option<Mid> {
        match self {
            Self::ToOpen => None,
            Self::Negotiating(m) | Self::Open(m) | Self::ToStop(m) | Self::NegotiatingStop(m) => {
                Some(m)
            }
        }
    }
}

/// A track this participant publishes.
#[derive(Debug)]
pub(crate) struct TrackIn {
    pub id: TrackId,
    pub mid: Mid,
    pub kind: MediaKind,
    pub layers: Vec<Layer>,
    pub throttles: Vec<KeyframeThrottle>,
    /// Where each packet goes: subscriber and its `tracks_out` slot.
    pub subs: Vec<SubRef>,
    /// Some subscriber may lack a layer target: recompute before forwarding.
    pub retarget: bool,
    /// Arrival of the track's first packet.
    pub first_packet: Option<Instant>,
}

impl TrackIn {
    /// Whether a simulcast track is still waiting for its other layers'
    /// first packets (for [`SETTLE`]), so that no subscriber starts on
    /// whichever layer happened to arrive first.
    pub(crate) fn settling(&self, now: Instant) -> bool {
        self.layers.len() > 1
            && self.layers.iter().any(|l| l.last_packet.is_none())
            && self
                .first_packet
                .is_none_or(|t| now.saturating_duration_since(t) < SETTLE)
    }
}

impl TrackIn {
    /// Index of the layer for `rid`, adding it if new (at most 4 layers).
    pub(crate) fn layer_index(&mut self, rid: Option<Rid>) -> Option<usize> {
        if let Some(i) = self.layers.iter().position(|l| l.rid == rid) {
            return Some(i);
        }
        if self.layers.len() >= 4 {
            return None;
        }
        self.layers.push(Layer::new(rid));
        self.throttles.push(KeyframeThrottle::default());
        Some(self.layers.len() - 1)
    }
}

/// A subscriber of a track: its key and the index in its `tracks_out`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SubRef {
    pub sub: PKey,
    pub slot: usize,
}

/// A track this participant receives from another participant.
#[derive(Debug)]
pub(crate) struct TrackOut {
    pub source: PKey,
    pub track: TrackId,
    pub kind: MediaKind,
    /// msid stream id: the publisher's participant id.
    pub stream_id: String,
    /// msid track id: `<publisher>-<publisher's mid>`.
    pub track_label: String,
    pub state: OutState,
    /// Outgoing SSRC, known once open.
    pub ssrc: Option<Ssrc>,
    /// Incoming PT → outgoing PT, learnt on first use.
    pub pts: Vec<(Pt, Option<Pt>)>,
    pub select: LayerSelect,
    pub rewriter: Rewriter,
    /// Cumulative NACKs/PLIs last seen in str0m's egress stats.
    pub seen_nacks: u64,
    /// Video is being dropped until the next keyframe because the
    /// subscriber's queue fell behind (`fanout.rs` `STALE_VIDEO`).
    pub stale: bool,
}

/// One participant in one room.
#[derive(Debug)]
pub(crate) struct Participant {
    pub id: ParticipantId,
    pub room: RoomId,
    pub role: GrantRole,
    pub rtc: Rtc,
    pub ufrag: String,
    pub pwd: String,
    /// Remote DTLS fingerprint line from the first offer (re-offer detection).
    pub fingerprint: String,
    pub addrs: Vec<SocketAddr>,
    pub connected: bool,
    pub joined_at: Instant,
    /// The deadline registered in the SFU's timer set.
    pub timeout: Option<Instant>,
    pub tracks_in: Vec<TrackIn>,
    pub tracks_out: Vec<Option<TrackOut>>,
    /// Main SSRC → (track index, layer index), learnt on first packet.
    pub ssrcs: Vec<(Ssrc, usize, usize)>,
    pub pending_offer: Option<SdpPendingOffer>,
    pub channel: Option<ChannelId>,
    /// Whether one of its offers published simulcast video.
    pub offers_simulcast: bool,
    /// Whether its `Rtc` runs bandwidth estimation (see `BwePolicy`).
    pub bwe: bool,
    /// Latest egress bandwidth estimate, bits/s (`None` without BWE).
    pub estimate: Option<u64>,
    /// Desired egress bitrate last given to str0m's BWE.
    pub desired: u64,
    /// Audio loudness accumulated since the last speaker tick.
    pub loudness_sum: u64,
    pub loudness_count: u32,
    /// Data channel messages since the last tick (flood limit).
    pub messages_this_tick: u32,
    /// Written to since its `Rtc` was last drained (queued in `Sfu::unflushed`).
    pub unflushed: bool,
}

impl Participant {
    /// A free `tracks_out` slot (or a new one) for `track`.
    pub(crate) fn add_track_out(&mut self, out: TrackOut) -> usize {
        if let Some(i) = self.tracks_out.iter().position(Option::is_none) {
            self.tracks_out[i] = Some(out);
            i
        } else {
            self.tracks_out.push(Some(out));
            self.tracks_out.len() - 1
        }
    }

    /// Whether the next server offer has something to say.
    pub(crate) fn wants_negotiation(&self) -> bool {
        self.tracks_out
            .iter()
            .flatten()
            .any(|t| matches!(t.state, OutState::ToOpen | OutState::ToStop(_)))
    }

    /// The outgoing track slot negotiated on `mid`.
    pub(crate) fn slot_by_mid(&self, mid: Mid) -> Option<usize> {
        self.tracks_out
            .iter()
            .position(|t| t.as_ref().is_some_and(|t| t.state.mid() == Some(mid)))
    }

    /// `(track index, layer index)` of an incoming main SSRC, if known.
    pub(crate) fn lookup_ssrc(&self, ssrc: Ssrc) -> Option<(usize, usize)> {
        self.ssrcs
            .iter()
            .find(|(s, _, _)| *s == ssrc)
            .map(|&(_, t, l)| (t, l))
    }
}
