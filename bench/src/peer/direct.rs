//! [`DirectNegotiator`]: answers offers with another bench peer in the same process, so
//! two bench peers talk peer-to-peer (tests, `bench loopback`), optionally through the
//! impairment [`Shim`]. Also the SDP candidate helpers it needs.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering::Relaxed};

use str0m::change::{SdpAnswer, SdpOffer};

use super::{
    BoxFuture, LoopSender, NegotiateRequest, Negotiator, PeerFactory, PeerId, PeerKind, PeerRole,
};
use crate::shim::Shim;
use crate::{Error, Result};

/// Answers every offer by creating a bench peer of `answer_role` and running it on
/// `target`. With a shim, both peers see only shim addresses, and the media direction
/// (offerer→answerer for publisher offers, the reverse for subscriber offers) is impaired.
#[derive(Debug)]
pub struct DirectNegotiator {
    factory: Arc<PeerFactory>,
    target: LoopSender,
    answer_role: PeerRole,
    shim: Option<Arc<Shim>>,
    next_id: AtomicU32,
}

impl DirectNegotiator {
    /// Answering peers get ids from `first_id` up, role `answer_role`, and run on `target`.
    pub fn new(
        factory: Arc<PeerFactory>,
        target: LoopSender,
        answer_role: PeerRole,
        first_id: u32,
    ) -> Self {
        DirectNegotiator {
            factory,
            target,
            answer_role,
            shim: None,
            next_id: AtomicU32::new(first_id),
        }
    }

    /// Routes every pair through `shim`.
    #[must_use]
    pub fn with_shim(mut self, shim: Arc<Shim>) -> Self {
        self.shim = Some(shim);
        self
    }

    fn answer_now(&self, request: NegotiateRequest) -> Result<SdpAnswer> {
        let id = PeerId(self.next_id.fetch_add(1, Relaxed));
        let Some(shim) = &self.shim else {
            let (ready, answer) = self.factory.answer(id, self.answer_role, request.offer)?;
            self.target.add(ready)?;
            return Ok(answer);
        };
        let offer_sdp = request.offer.to_sdp_string();
        let offerer = host_candidate(&offer_sdp)
            .ok_or_else(|| Error::Sdp("offer has no host candidate".into()))?;
        let socket = self.factory.bind_socket()?;
        let answerer = socket.local_addr()?;
        // Who sends media decides which side the shim impairs.
        let (offerer_sees, answerer_sees) = match request.kind {
            PeerKind::Publisher => {
                let link = shim.link(offerer, answerer)?;
                (link.for_sender, link.for_receiver)
            }
            PeerKind::Subscriber => {
                let link = shim.link(answerer, offerer)?;
                (link.for_receiver, link.for_sender)
            }
        };
        let offer =
            SdpOffer::from_sdp_string(&rewrite_candidate(&offer_sdp, offerer, answerer_sees)?)?;
        let (ready, answer) = self
            .factory
            .answer_on(socket, id, self.answer_role, offer)?;
        self.target.add(ready)?;
        let answer_sdp = rewrite_candidate(&answer.to_sdp_string(), answerer, offerer_sees)?;
        Ok(SdpAnswer::from_sdp_string(&answer_sdp)?)
    }
}

impl Negotiator for DirectNegotiator {
    fn negotiate(&self, request: NegotiateRequest) -> BoxFuture<'_, Result<SdpAnswer>> {
        Box::pin(async move { self.answer_now(request) })
    }
}

/// `(ip, port)` of an `a=candidate` line: fields 5 and 6 (RFC 8839 §5.1).
fn candidate_addr(line: &str) -> Option<SocketAddr> {
    let rest = line.trim().strip_prefix("a=candidate:")?;
    let fields: Vec<&str> = rest.split_ascii_whitespace().collect();
    let (proto, ip, port, typ) = (
        fields.get(2)?,
        fields.get(4)?,
        fields.get(5)?,
        fields.get(7)?,
    );
    if !proto.eq_ignore_ascii_case("udp") || *typ != "host" {
        return None;
    }
    Some(SocketAddr::new(ip.parse().ok()?, port.parse().ok()?))
}

/// The first UDP host candidate address in an SDP.
pub fn host_candidate(sdp: &str) -> Option<SocketAddr> {
    sdp.lines().find_map(candidate_addr)
}

/// Replaces the host candidate `from` with `to` everywhere in `sdp`.
pub fn rewrite_candidate(sdp: &str, from: SocketAddr, to: SocketAddr) -> Result<String> {
    let mut found = false;
    let mut out = String::with_capacity(sdp.len() + 16);
    for line in sdp.split_inclusive('\n') {
        if candidate_addr(line) == Some(from) {
            found = true;
            let ending = &line[line.trim_end().len()..];
            let fields: Vec<String> = line
                .trim_end()
                .split(' ')
                .enumerate()
                .map(|(i, f)| match i {
                    4 => to.ip().to_string(),
                    5 => to.port().to_string(),
                    _ => f.to_owned(),
                })
                .collect();
            out.push_str(&fields.join(" "));
            out.push_str(ending);
        } else {
            out.push_str(line);
        }
    }
    if found {
        Ok(out)
    } else {
        Err(Error::Candidate(from))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SDP: &str = "v=0\r\n\
        m=audio 9 UDP/TLS/RTP/SAVPF 111\r\n\
        a=candidate:abc 1 udp 2130706175 127.0.0.1 50000 typ host\r\n\
        a=candidate:def 1 udp 2130706175 127.0.0.1 50001 typ host\r\n\
        m=video 9 UDP/TLS/RTP/SAVPF 96\r\n\
        a=candidate:abc 1 udp 2130706175 127.0.0.1 50000 typ host\r\n";

    #[test]
    fn finds_and_rewrites_host_candidates() {
        let from: SocketAddr = "127.0.0.1:50000".parse().unwrap();
        let to: SocketAddr = "127.0.0.1:6000".parse().unwrap();
        assert_eq!(host_candidate(SDP), Some(from));
        let out = rewrite_candidate(SDP, from, to).unwrap();
        assert_eq!(out.matches("127.0.0.1 6000 typ host\r\n").count(), 2);
        assert_eq!(
            out.matches("127.0.0.1 50001 typ host").count(),
            1,
            "others kept"
        );
        assert!(!out.contains(" 50000 "));
        let missing: SocketAddr = "127.0.0.1:1".parse().unwrap();
        assert!(matches!(
            rewrite_candidate(SDP, missing, to),
            Err(Error::Candidate(_))
        ));
    }
}
