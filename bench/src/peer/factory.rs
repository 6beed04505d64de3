//! Building peers: one shared crypto provider and DTLS certificate, one loopback UDP
//! port per peer, SDP offers and answers.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::Arc;
use std::time::Instant;

use str0m::change::{SdpAnswer, SdpOffer, SdpPendingOffer};
use str0m::crypto::{CryptoProvider, dtls::DtlsCert, from_feature_flags};
use str0m::media::{Direction, MediaKind, Mid, Simulcast, SimulcastLayer};
use str0m::{Candidate, Rtc};

use super::{PeerId, PeerRole};
use crate::{Error, Result};

/// Makes peers. Generating a DTLS certificate costs milliseconds of CPU, so one is made
/// here and shared by every peer (str0m's `set_dtls_cert`).
pub struct PeerFactory {
    provider: Arc<CryptoProvider>,
    cert: DtlsCert,
    bind_ip: IpAddr,
}

impl fmt::Debug for PeerFactory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PeerFactory")
            .field("bind_ip", &self.bind_ip)
            .finish_non_exhaustive()
    }
}

impl PeerFactory {
    /// A factory binding peers on 127.0.0.1.
    pub fn new() -> Result<Self> {
        Self::with_bind_ip(IpAddr::V4(Ipv4Addr::LOCALHOST))
    }

    /// A factory binding peers on `bind_ip` (callers check it with [`crate::target`]).
    pub fn with_bind_ip(bind_ip: IpAddr) -> Result<Self> {
        let provider = from_feature_flags();
        let cert = provider
            .dtls_provider
            .generate_certificate()
            .ok_or(Error::Certificate)?;
        Ok(PeerFactory {
            provider: Arc::new(provider),
            cert,
            bind_ip,
        })
    }

    fn rtc(&self, now: Instant) -> Rtc {
        Rtc::builder()
            .set_crypto_provider(Arc::clone(&self.provider))
            .set_dtls_cert(self.cert.clone())
            .set_rtp_mode(true)
            .clear_codecs()
            .enable_opus(true, false)
            .enable_vp8(true)
            // Media is not retransmitted (writes are not nackable): keep buffers small.
            .set_send_buffer_video(64)
            .build(now)
    }

    /// Binds a non-blocking UDP socket for a peer on the factory's address.
    pub fn bind_socket(&self) -> Result<UdpSocket> {
        let socket = UdpSocket::bind(SocketAddr::new(self.bind_ip, 0))?;
        socket.set_nonblocking(true)?;
        Ok(socket)
    }

    fn bind(&self, rtc: &mut Rtc) -> Result<(UdpSocket, SocketAddr)> {
        let socket = self.bind_socket()?;
        Self::add_candidate(rtc, socket)
    }

    fn add_candidate(rtc: &mut Rtc, socket: UdpSocket) -> Result<(UdpSocket, SocketAddr)> {
        let local = socket.local_addr()?;
        let candidate = Candidate::host(local, "udp")
            .map_err(|e| Error::Sdp(format!("host candidate: {e}")))?;
        rtc.add_local_candidate(candidate);
        Ok((socket, local))
    }

    /// Binds a port and builds the offer for `role`.
    pub fn offer(&self, peer: PeerId, role: PeerRole) -> Result<(PendingPeer, SdpOffer)> {
        let started = Instant::now();
        let mut rtc = self.rtc(started);
        let (socket, local) = self.bind(&mut rtc)?;
        let stream_name = format!("bench-{}", peer.0);
        let mut api = rtc.sdp_api();
        let (mut audio_mid, mut video_mid) = (None, None);
        match role {
            PeerRole::Publisher(spec) => {
                if spec.audio.is_some() {
                    audio_mid = Some(api.add_media(
                        MediaKind::Audio,
                        Direction::SendOnly,
                        Some(stream_name.clone()),
                        Some(format!("{stream_name}-audio")),
                        None,
                    ));
                }
                if let Some(video) = spec.video {
                    let simulcast = video.simulcast.then(|| Simulcast {
                        send: ["q", "h", "f"]
                            .into_iter()
                            .map(SimulcastLayer::new)
                            .collect(),
                        recv: Vec::new(),
                    });
                    video_mid = Some(api.add_media(
                        MediaKind::Video,
                        Direction::SendOnly,
                        Some(stream_name.clone()),
                        Some(format!("{stream_name}-video")),
                        simulcast,
                    ));
                }
            }
            PeerRole::Subscriber => {
                api.add_media(MediaKind::Audio, Direction::RecvOnly, None, None, None);
                api.add_media(MediaKind::Video, Direction::RecvOnly, None, None, None);
            }
        }
        let (offer, pending) = api
            .apply()
            .ok_or_else(|| Error::Sdp("a publisher needs audio or video".into()))?;
        let peer = PendingPeer {
            inner: ReadyPeer {
                peer,
                role,
                rtc,
                socket,
                local,
                started,
                audio_mid,
                video_mid,
            },
            pending,
        };
        Ok((peer, offer))
    }

    /// Binds a port and answers `offer` as `role` (the far side offered).
    pub fn answer(
        &self,
        peer: PeerId,
        role: PeerRole,
        offer: SdpOffer,
    ) -> Result<(ReadyPeer, SdpAnswer)> {
        self.answer_on(self.bind_socket()?, peer, role, offer)
    }

    /// Like [`PeerFactory::answer`] on a socket from [`PeerFactory::bind_socket`] (for
    /// callers that need the address before the answer exists, like the shim).
    pub fn answer_on(
        &self,
        socket: UdpSocket,
        peer: PeerId,
        role: PeerRole,
        offer: SdpOffer,
    ) -> Result<(ReadyPeer, SdpAnswer)> {
        let started = Instant::now();
        let mut rtc = self.rtc(started);
        let (socket, local) = Self::add_candidate(&mut rtc, socket)?;
        let answer = rtc.sdp_api().accept_offer(offer)?;
        let ready = ReadyPeer {
            peer,
            role,
            rtc,
            socket,
            local,
            started,
            // Learnt from MediaAdded events once the loop runs it.
            audio_mid: None,
            video_mid: None,
        };
        Ok((ready, answer))
    }
}

/// A peer whose offer is out, waiting for the answer.
#[derive(Debug)]
pub struct PendingPeer {
    inner: ReadyPeer,
    pending: SdpPendingOffer,
}

impl PendingPeer {
    /// The peer's local UDP address (its host candidate).
    pub fn local_addr(&self) -> SocketAddr {
        self.inner.local
    }

    /// Applies the far side's answer.
    pub fn accept_answer(mut self, answer: SdpAnswer) -> Result<ReadyPeer> {
        self.inner
            .rtc
            .sdp_api()
            .accept_answer(self.pending, answer)?;
        Ok(self.inner)
    }
}

/// A negotiated peer, ready to be run by a [`super::PeerLoop`].
#[derive(Debug)]
pub struct ReadyPeer {
    pub(super) peer: PeerId,
    pub(super) role: PeerRole,
    pub(super) rtc: Rtc,
    pub(super) socket: UdpSocket,
    pub(super) local: SocketAddr,
    pub(super) started: Instant,
    pub(super) audio_mid: Option<Mid>,
    pub(super) video_mid: Option<Mid>,
}

impl ReadyPeer {
    /// The peer's id.
    pub fn id(&self) -> PeerId {
        self.peer
    }

    /// The peer's local UDP address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }
}
