//! One peer inside a [`super::PeerLoop`]: its `Rtc`, socket, media sources and receive
//! accounting. Every mutation of the `Rtc` is followed by a full drain of
//! `poll_output` (str0m's single-mutation rule).

use std::io::ErrorKind;
use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Instant;

use mio::net::UdpSocket;
use str0m::change::{SdpAnswer, SdpOffer};
use str0m::format::Codec;
use str0m::media::{Direction, MediaKind, Mid, Pt, Rid};
use str0m::net::{Protocol, Receive};
use str0m::rtp::{RtpPacket, RtpWrite};
use str0m::{Event, Input, Output, Rtc};

use super::event_loop::LiveCounters;
use super::{PeerId, PeerRole, PublishSpec, ReadyPeer};
use crate::media::{AudioSource, OutPacket, Probe, Source, StreamId, VideoSource};
use crate::stats::{Arrival, FreezeThresholds, Recorder, StreamStats};

/// What a slot operation may touch besides the slot itself.
pub(super) struct Ctx<'a> {
    pub recorder: &'a mut Recorder,
    pub counters: &'a LiveCounters,
    pub freeze: FreezeThresholds,
    pub send_until: Instant,
}

#[derive(Debug)]
struct Publisher {
    spec: PublishSpec,
    audio_mid: Option<Mid>,
    video_mid: Option<Mid>,
    audio: Option<(AudioSource, Pt)>,
    video: Option<(VideoSource, Pt)>,
}

/// A peer run by a loop.
#[derive(Debug)]
pub(super) struct Slot {
    pub peer: PeerId,
    rtc: Rtc,
    pub socket: UdpSocket,
    local: SocketAddr,
    started: Instant,
    connected: bool,
    /// Failed or disconnected before the end of sending.
    pub failed: bool,
    rtc_deadline: Instant,
    /// Earliest timer entry this slot has in the loop's heap.
    pub scheduled: Option<Instant>,
    publisher: Option<Publisher>,
    streams: Vec<StreamStats>,
    got_media: bool,
    out: Vec<OutPacket>,
}

impl Slot {
    pub fn new(ready: ReadyPeer) -> Slot {
        let publisher = match ready.role {
            PeerRole::Publisher(spec) => Some(Publisher {
                spec,
                audio_mid: ready.audio_mid,
                video_mid: ready.video_mid,
                audio: None,
                video: None,
            }),
            PeerRole::Subscriber => None,
        };
        Slot {
            peer: ready.peer,
            rtc: ready.rtc,
            socket: UdpSocket::from_std(ready.socket),
            local: ready.local,
            started: ready.started,
            connected: false,
            failed: false,
            rtc_deadline: ready.started,
            scheduled: None,
            publisher,
            streams: Vec::new(),
            got_media: false,
            out: Vec::new(),
        }
    }

    pub fn alive(&self) -> bool {
        self.rtc.is_alive() && !self.failed
    }

    /// When this slot next needs [`Slot::on_timer`].
    pub fn deadline(&self, send_until: Instant) -> Instant {
        let media = self
            .publisher
            .as_ref()
            .filter(|_| self.connected)
            .and_then(|p| {
                let a = p.audio.as_ref().map(|(s, _)| s.next_due());
                let v = p.video.as_ref().map(|(s, _)| s.next_due());
                a.into_iter().chain(v).min()
            })
            .filter(|due| *due < send_until);
        media.map_or(self.rtc_deadline, |m| m.min(self.rtc_deadline))
    }

    /// Feeds one received datagram.
    pub fn on_datagram(&mut self, now: Instant, source: SocketAddr, data: &[u8], ctx: &mut Ctx) {
        let Ok(receive) = Receive::new(Protocol::Udp, source, self.local, data) else {
            return; // Not STUN/DTLS/RTP: not for us.
        };
        if let Err(e) = self.rtc.handle_input(Input::Receive(now, receive)) {
            tracing::debug!(peer = %self.peer, error = %e, "input rejected");
            return self.fail(ctx);
        }
        self.drain(now, ctx);
    }

    /// Accepts the far side's new offer (renegotiation) and returns the answer.
    pub fn accept_offer(
        &mut self,
        now: Instant,
        offer: SdpOffer,
        ctx: &mut Ctx,
    ) -> crate::Result<SdpAnswer> {
        let answer = self.rtc.sdp_api().accept_offer(offer);
        self.drain(now, ctx);
        Ok(answer?)
    }

    /// Handles the rtc timeout and due media.
    pub fn on_timer(&mut self, now: Instant, ctx: &mut Ctx) {
        if now >= self.rtc_deadline {
            if let Err(e) = self.rtc.handle_input(Input::Timeout(now)) {
                tracing::debug!(peer = %self.peer, error = %e, "timeout handling failed");
                return self.fail(ctx);
            }
            self.drain(now, ctx);
        }
        if self.connected && now < ctx.send_until && self.alive() {
            self.send_media(now, ctx);
        }
    }

    fn fail(&mut self, ctx: &mut Ctx) {
        if !self.failed {
            self.failed = true;
            self.rtc.disconnect();
            ctx.recorder.peers.failed += 1;
            ctx.counters.failed.fetch_add(1, Relaxed);
        }
    }

    fn drain(&mut self, now: Instant, ctx: &mut Ctx) {
        loop {
            match self.rtc.poll_output() {
                Ok(Output::Timeout(t)) => {
                    self.rtc_deadline = t;
                    return;
                }
                Ok(Output::Transmit(t)) => {
                    if let Err(e) = self.socket.send_to(&t.contents, t.destination) {
                        if e.kind() != ErrorKind::WouldBlock {
                            tracing::debug!(peer = %self.peer, error = %e, "send failed");
                        }
                        ctx.recorder.peers.send_drops += 1;
                    }
                }
                Ok(Output::Event(e)) => self.on_event(e, now, ctx),
                Err(e) => {
                    tracing::debug!(peer = %self.peer, error = %e, "rtc failed");
                    return self.fail(ctx);
                }
            }
            if !self.rtc.is_alive() {
                return;
            }
        }
    }

    fn on_event(&mut self, event: Event, now: Instant, ctx: &mut Ctx) {
        match event {
            Event::Connected => {
                self.connected = true;
                ctx.recorder.connect.record(now - self.started);
                ctx.recorder.peers.connected += 1;
                ctx.counters.connected.fetch_add(1, Relaxed);
                self.start_sources(now);
            }
            Event::MediaAdded(m) => {
                if let Some(p) = &mut self.publisher {
                    let sends = matches!(m.direction, Direction::SendOnly | Direction::SendRecv);
                    match m.kind {
                        MediaKind::Audio if sends && p.audio_mid.is_none() => {
                            p.audio_mid = Some(m.mid);
                        }
                        MediaKind::Video if sends && p.video_mid.is_none() => {
                            p.video_mid = Some(m.mid);
                        }
                        _ => {}
                    }
                }
                // str0m may report the media of an accepted offer after Connected.
                if self.connected {
                    self.start_sources(now);
                }
            }
            Event::RtpPacket(packet) => self.on_rtp(&packet, now, ctx),
            Event::KeyframeRequest(req) => {
                if let Some(p) = &mut self.publisher
                    && p.video_mid == Some(req.mid)
                    && let Some((video, _)) = &mut p.video
                {
                    video.request_keyframe();
                }
            }
            _ => {}
        }
    }

    /// Starts the sources whose mid and payload type are known; idempotent.
    fn start_sources(&mut self, now: Instant) {
        let Some(p) = &mut self.publisher else {
            return;
        };
        let mut next_stream = p.spec.first_stream;
        if let (Some(shape), Some(mid), None) = (p.spec.audio, p.audio_mid, &p.audio)
            && let Some(pt) = pt_for(&self.rtc, mid, Codec::Opus)
        {
            p.audio = Some((AudioSource::new(shape, StreamId(next_stream), now), pt));
        }
        next_stream += u32::from(p.spec.audio.is_some());
        if let (Some(shape), Some(mid), None) = (p.spec.video, p.video_mid, &p.video)
            && let Some(pt) = pt_for(&self.rtc, mid, Codec::Vp8)
        {
            let ids: Vec<StreamId> = (0..shape.layers().len() as u32)
                .map(|i| StreamId(next_stream + i))
                .collect();
            p.video = Some((VideoSource::new(shape, &ids, now), pt));
        }
    }

    fn send_media(&mut self, now: Instant, ctx: &mut Ctx) {
        let mut out = std::mem::take(&mut self.out);
        let mut writes: Vec<(Mid, Pt, usize)> = Vec::new();
        if let Some(p) = &mut self.publisher {
            let mut late = 0;
            if let (Some((src, pt)), Some(mid)) = (&mut p.audio, p.audio_mid) {
                late += src.produce(now, &mut out);
                writes.push((mid, *pt, out.len()));
            }
            if let (Some((src, pt)), Some(mid)) = (&mut p.video, p.video_mid) {
                late += src.produce(now, &mut out);
                writes.push((mid, *pt, out.len()));
            }
            ctx.recorder.peers.late_ticks += u64::from(late);
        }
        let mut start = 0;
        for (mid, pt, end) in writes {
            for packet in out.drain(..end - start) {
                self.write(mid, pt, packet, now, ctx);
                if !self.alive() {
                    break;
                }
            }
            start = end;
        }
        out.clear();
        self.out = out;
    }

    fn write(&mut self, mid: Mid, pt: Pt, packet: OutPacket, now: Instant, ctx: &mut Ctx) {
        let bytes = packet.payload.len() as u64;
        let mut api = self.rtc.direct_api();
        let Some(tx) = api.stream_tx_by_mid(mid, packet.rid.map(Rid::from)) else {
            return;
        };
        tx.write_rtp(
            RtpWrite::new(pt, packet.seq.into(), packet.rtp_time, now, packet.payload)
                .marker(packet.marker),
        );
        ctx.recorder.peers.sent_packets += 1;
        ctx.recorder.peers.sent_bytes += bytes;
        ctx.counters.sent_packets.fetch_add(1, Relaxed);
        self.drain(now, ctx);
    }

    fn on_rtp(&mut self, packet: &RtpPacket, now: Instant, ctx: &mut Ctx) {
        let Some(probe) = Probe::read_tail(&packet.payload) else {
            return;
        };
        if !self.got_media {
            self.got_media = true;
            ctx.recorder.join.record(now - self.started);
            ctx.recorder.first_media.push((self.peer.0, now));
        }
        let i = if let Some(i) = self.streams.iter().position(|s| s.stream == probe.stream) {
            i
        } else {
            let threshold = ctx.freeze.for_kind(probe.kind);
            self.streams
                .push(StreamStats::new(probe.stream, probe.kind, threshold));
            self.streams.len() - 1
        };
        let len = packet.payload.len();
        let arrival = ctx
            .recorder
            .on_probe(&mut self.streams[i], &probe, len, now);
        let c = ctx.counters;
        c.rx_packets.fetch_add(1, Relaxed);
        c.rx_bytes.fetch_add(len as u64, Relaxed);
        if let Arrival::New { expected, .. } = arrival {
            c.expected.fetch_add(expected, Relaxed);
            c.delivered.fetch_add(1, Relaxed);
        }
    }

    /// Closes receive accounting at `end` and folds it into `recorder`.
    pub fn finish(mut self, end: Instant, recorder: &mut Recorder) {
        if let Some(p) = &self.publisher {
            let audio = p.audio.iter().map(|(a, _)| (a.stream(), a.produced()));
            let video = p.video.iter().flat_map(|(v, _)| v.produced());
            for (stream, n) in audio.chain(video) {
                let e = recorder.produced.entry(stream).or_default();
                *e = (*e).max(n);
            }
        }
        for s in &mut self.streams {
            s.finish(end);
            recorder.finish_stream(s);
        }
        if !self.connected && !self.failed {
            recorder.peers.failed += 1;
        }
    }
}

/// The payload type negotiated for `codec` on `mid`.
fn pt_for(rtc: &Rtc, mid: Mid, codec: Codec) -> Option<Pt> {
    let ours: Vec<Pt> = rtc
        .codec_config()
        .params()
        .iter()
        .filter(|p| p.spec().codec == codec)
        .map(str0m::format::PayloadParams::pt)
        .collect();
    let remote = rtc.media(mid).map(str0m::media::Media::remote_pts);
    remote
        .and_then(|remote| ours.iter().copied().find(|pt| remote.contains(pt)))
        .or_else(|| ours.first().copied())
}
