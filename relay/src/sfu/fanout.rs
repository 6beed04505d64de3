//! The per-packet path: one incoming RTP packet to every subscriber of its
//! track, plus keyframe requests and per-subscriber layer targets.
//!
//! Per packet: one slab index for the publisher, a short linear SSRC lookup,
//! one keyframe check, then per subscriber a slab index, the layer decision,
//! the rewrite and str0m's `write_rtp`. The payload is shared (`Arc<[u8]>`),
//! never copied by the SFU. A subscriber's `Rtc` is drained (packets paced,
//! encrypted and turned into datagrams) once per input batch, at the next
//! [`Sfu::poll_output`], not once per packet: str0m runs a full timeout
//! round per drain, and a recvmmsg batch often holds a whole video frame.

use std::sync::Arc;

use str0m::format::{Codec, PayloadParams};
use str0m::media::{KeyframeRequestKind, MediaKind};
use str0m::rtp::{ExtensionValues, RtpPacket, RtpWrite, SeqNo, Ssrc, Vp8Descriptor};

use super::Sfu;
use super::forward::{PacketIn, vp8_patch};
use super::keyframe::is_keyframe;
use super::participant::{OutState, Participant, SubRef, TrackId, queue_behind};
use super::simulcast::{self, Decision, Quality};
use super::slab::PKey;
use super::types::DropReason;

/// Most SSRCs remembered per publisher before the map is relearnt.
const MAX_SSRCS: usize = 32;

/// Audio loudness floor counted for speaker detection (-dBov ≤ this).
const SILENCE_DBOV: i8 = 90;

/// What every subscriber's copy of one packet shares.
struct Shared<'a> {
    packet: &'a RtpPacket,
    layer: usize,
    keyframe: bool,
    input: PacketIn,
    params: PayloadParams,
    ext: ExtensionValues,
    vp8: Option<Vp8Descriptor>,
    video: bool,
}

impl Sfu {
    /// Forwards one packet from publisher `key` to its track's subscribers.
    pub(super) fn fanout(&mut self, key: PKey, packet: &RtpPacket) {
        let now = self.now;
        let Some(p) = self.participants.get_mut(key) else {
            return;
        };
        let ssrc = packet.header.ssrc;
        let found = if let Some(f) = p.lookup_ssrc(ssrc) {
            Some(f)
        } else {
            let f = learn_ssrc(p, ssrc);
            self.drain(key);
            f
        };
        let Some((ti, li)) = found else { return };
        let Some(p) = self.participants.get_mut(key) else {
            return;
        };
        let pt = packet.header.payload_type;
        let Some(params) = p
            .rtc
            .codec_config()
            .params()
            .iter()
            .find(|x| x.pt() == pt)
            .copied()
        else {
            return;
        };
        if let Some(level) = packet.header.ext_vals.audio_level {
            let dbov = level.unsigned_abs().min(127) as i8;
            if dbov <= SILENCE_DBOV {
                p.loudness_sum += u64::from((127 - dbov).unsigned_abs());
            }
            p.loudness_count += 1;
        }
        let Some(track) = p.tracks_in.get_mut(ti) else {
            return;
        };
        let Some(layer) = track.layers.get_mut(li) else {
            return;
        };
        layer.window_bytes += packet.payload.len() as u64;
        if layer.last_packet.is_none() {
            track.retarget = true;
        }
        layer.last_packet = Some(now);
        track.first_packet.get_or_insert(now);
        if std::mem::take(&mut track.retarget) {
            self.retarget_track(key, ti);
        }
        let Some(track) = self
            .participants
            .get_mut(key)
            .and_then(|p| p.tracks_in.get_mut(ti))
        else {
            return;
        };
        let codec = params.spec().codec;
        let video = track.kind == MediaKind::Video;
        let keyframe = !video || is_keyframe(codec, &packet.payload);
        let vp8 = (codec == Codec::Vp8 && track.layers.len() > 1)
            .then(|| Vp8Descriptor::parse(&packet.payload).ok())
            .flatten();
        let subs = std::mem::take(&mut track.subs);
        let track_id = track.id;
        let h = &packet.header;
        let shared = Shared {
            packet,
            layer: li,
            keyframe,
            input: PacketIn {
                seq: *packet.seq_no,
                ts: h.timestamp,
                arrival: packet.timestamp,
                clock_rate: params.spec().clock_rate.get(),
                picture_id: vp8.and_then(|d| d.picture_id()),
                tl0: vp8.and_then(|d| d.tl0_pic_idx()),
            },
            params,
            ext: ExtensionValues {
                audio_level: h.ext_vals.audio_level,
                voice_activity: h.ext_vals.voice_activity,
                video_orientation: h.ext_vals.video_orientation,
                ..ExtensionValues::default()
            },
            vp8,
            video,
        };
        let mut untargeted = false;
        for s in &subs {
            untargeted |= self.forward_one(*s, &shared);
        }
        if std::mem::take(&mut self.stale_keyframe) {
            self.request_keyframe(key, track_id, li);
        }
        if let Some(t) = self
            .participants
            .get_mut(key)
            .and_then(|p| p.tracks_in.get_mut(ti))
        {
            // Wiring during the loop appended to the emptied list: keep both.
            let added = std::mem::replace(&mut t.subs, subs);
            t.subs.extend(added);
        }
        if untargeted {
            self.retarget_track(key, ti);
        }
    }

    /// Writes one packet to one subscriber. Returns `true` if the
    /// subscriber has no layer target yet (its track just became active).
    fn forward_one(&mut self, s: SubRef, sh: &Shared) -> bool {
        let Some(sub) = self.participants.get_mut(s.sub) else {
            return false;
        };
        let Some(Some(t)) = sub.tracks_out.get_mut(s.slot) else {
            return false;
        };
        let (OutState::Open(mid), Some(ssrc_out)) = (t.state, t.ssrc) else {
            return false;
        };
        if t.select.target.is_none() {
            return t.select.quality != Quality::Off;
        }
        // Without BWE str0m has no pacer queue (every written packet leaves
        // at the next drain), so only a BWE subscriber can fall behind.
        if sh.video && sub.bwe && !t.stale && queue_behind(&mut sub.rtc, ssrc_out, self.now) {
            // The subscriber's queue is behind: stop adding video until the
            // next keyframe (forwarding resumes there as after a layer
            // switch, sequence numbers continuous) and ask for one.
            t.stale = true;
            t.select.current = None;
            self.stale_keyframe = true;
        }
        let out = match t.select.decide(sh.layer, sh.keyframe) {
            Decision::Drop => {
                if t.stale {
                    self.stats.drops[DropReason::StaleVideo as usize] += 1;
                }
                return false;
            }
            Decision::Switch => {
                t.stale = false;
                t.rewriter.start_run(&sh.input);
                t.rewriter.rewrite(&sh.input)
            }
            Decision::Forward => t.rewriter.rewrite(&sh.input),
        };
        let Some(out) = out else { return false };
        let pt_in = sh.packet.header.payload_type;
        let pt_out = if let Some((_, o)) = t.pts.iter().find(|(i, _)| *i == pt_in) {
            *o
        } else {
            {
                let o = sub
                    .rtc
                    .codec_config()
                    .match_params(sh.params)
                    .map(PayloadParams::pt)
                    .filter(|pt| {
                        sub.rtc
                            .media(mid)
                            .is_some_and(|m| m.remote_pts().contains(pt))
                    });
                t.pts.push((pt_in, o));
                o
            }
        };
        let Some(pt_out) = pt_out else { return false };
        let mut write = RtpWrite::new(
            pt_out,
            SeqNo::from(out.seq),
            out.ts,
            sh.packet.timestamp,
            Arc::clone(&sh.packet.payload),
        )
        .marker(sh.packet.header.marker)
        .ext_vals(sh.ext.clone())
        .nackable(sh.video);
        if let Some(patch) = vp8_patch(sh.vp8, &out) {
            write = write.vp8_patch(patch);
        }
        let mut api = sub.rtc.direct_api();
        let Some(tx) = api.stream_tx(&ssrc_out) else {
            return false;
        };
        tx.write_rtp(write);
        self.stats.rtp_forwarded += 1;
        // Drained at the next poll, once for all packets of this input batch.
        if !std::mem::replace(&mut sub.unflushed, true) {
            self.unflushed.push_back(s.sub);
        }
        false
    }

    /// Sends a (throttled) keyframe request to one layer of a published track.
    pub(super) fn request_keyframe(&mut self, publisher: PKey, track: TrackId, layer: usize) {
        let now = self.now;
        let Some(p) = self.participants.get_mut(publisher) else {
            return;
        };
        let Some(t) = p.tracks_in.iter_mut().find(|t| t.id == track) else {
            return;
        };
        if t.kind != MediaKind::Video {
            return;
        }
        let Some(throttle) = t.throttles.get_mut(layer) else {
            return;
        };
        if throttle.request(now) {
            self.send_keyframe_request(publisher, track, layer);
        }
    }

    /// Sends a keyframe request now (the throttle already agreed).
    pub(super) fn send_keyframe_request(&mut self, publisher: PKey, track: TrackId, layer: usize) {
        let Some(p) = self.participants.get_mut(publisher) else {
            return;
        };
        let Some(t) = p.tracks_in.iter().find(|t| t.id == track) else {
            return;
        };
        let (mid, rid) = (t.mid, t.layers.get(layer).and_then(|l| l.rid));
        let mut api = p.rtc.direct_api();
        if let Some(rx) = api.stream_rx_by_mid(mid, rid) {
            rx.request_keyframe(KeyframeRequestKind::Pli);
            self.stats.keyframe_requests += 1;
        }
        self.drain(publisher);
    }

    /// Recomputes the layer target of every subscriber of one track.
    fn retarget_track(&mut self, publisher: PKey, ti: usize) {
        let subs = match self
            .participants
            .get(publisher)
            .and_then(|p| p.tracks_in.get(ti))
        {
            Some(t) => t.subs.clone(),
            None => return,
        };
        for s in subs {
            self.retarget(s.sub, s.slot);
        }
    }

    /// If an outgoing track still has no layer target (its source sent
    /// nothing yet), has the source retarget at its next packet.
    pub(super) fn flag_retarget(&mut self, sub: PKey, slot: usize) {
        let Some(Some(t)) = self
            .participants
            .get(sub)
            .and_then(|s| s.tracks_out.get(slot))
        else {
            return;
        };
        if t.select.target.is_some() || t.select.quality == Quality::Off {
            return;
        }
        let (source, track) = (t.source, t.track);
        if let Some(t) = self
            .participants
            .get_mut(source)
            .and_then(|p| p.tracks_in.iter_mut().find(|t| t.id == track))
        {
            t.retarget = true;
        }
    }

    /// Recomputes every outgoing track's layer target of one subscriber.
    pub(super) fn retarget_all(&mut self, sub: PKey) {
        let n = self.participants.get(sub).map_or(0, |p| p.tracks_out.len());
        for slot in 0..n {
            self.retarget(sub, slot);
        }
    }

    /// Picks the layer one subscriber should receive of one track, from its
    /// requested quality and its share of the bandwidth estimate; asks the
    /// publisher for a keyframe when the target changes.
    pub(super) fn retarget(&mut self, sub: PKey, slot: usize) {
        let now = self.now;
        let Some(s) = self.participants.get(sub) else {
            return;
        };
        let Some(Some(t)) = s.tracks_out.get(slot) else {
            return;
        };
        if !matches!(t.state, OutState::Open(_)) {
            return;
        }
        let video_tracks = s
            .tracks_out
            .iter()
            .flatten()
            .filter(|t| t.kind == MediaKind::Video && matches!(t.state, OutState::Open(_)))
            .count()
            .max(1) as u64;
        let budget = match t.kind {
            MediaKind::Video => s.estimate.map(|e| e * 9 / 10 / video_tracks),
            MediaKind::Audio => None,
        };
        let (source, track, quality) = (t.source, t.track, t.select.quality);
        let Some(track_in) = self
            .participants
            .get(source)
            .and_then(|p| p.tracks_in.iter().find(|t| t.id == track))
        else {
            return;
        };
        if track_in.settling(now) {
            return;
        }
        let target = simulcast::choose(&track_in.layers, now, quality, budget);
        let Some(Some(t)) = self
            .participants
            .get_mut(sub)
            .and_then(|s| s.tracks_out.get_mut(slot))
        else {
            return;
        };
        if t.select.target == target {
            return;
        }
        t.select.target = target;
        if target.is_none() {
            t.select.current = None;
        }
        if let Some(layer) = target.filter(|l| t.select.current != Some(*l)) {
            self.request_keyframe(source, track, layer);
        }
    }
}

/// Learns which track and layer an unknown incoming SSRC belongs to.
fn learn_ssrc(p: &mut Participant, ssrc: Ssrc) -> Option<(usize, usize)> {
    let (mid, rid) = {
        let mut api = p.rtc.direct_api();
        let rx = api.stream_rx(&ssrc)?;
        (rx.mid(), rx.rid())
    };
    let ti = p.tracks_in.iter().position(|t| t.mid == mid)?;
    let li = p.tracks_in[ti].layer_index(rid)?;
    if let Some(l) = p.tracks_in[ti].layers.get_mut(li) {
        l.ssrc = Some(ssrc);
    }
    if p.ssrcs.len() >= MAX_SSRCS {
        p.ssrcs.clear();
    }
    p.ssrcs.push((ssrc, ti, li));
    Some((ti, li))
}
