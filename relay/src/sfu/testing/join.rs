//! Joining the harness's room: a simulated client peer makes its offer,
//! the SFU answers, the peer applies the answer.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use protocol::{ParticipantId, RoomId};
use str0m::change::SdpAnswer;
use str0m::media::{Direction, MediaKind, Simulcast, SimulcastLayer};

use super::{Harness, Peer, Publish, UNIX_NOW};
use crate::sfu::SfuError;

impl Harness {
    /// Creates a peer that offers what `publish` says plus a data channel,
    /// and applies the relay's answer. Returns its index.
    ///
    /// # Panics
    /// If the relay refuses the offer (use [`Harness::join_with`] to test refusals).
    pub fn join(&mut self, room: &str, participant: &str, publish: &Publish) -> usize {
        self.join_with(room, participant, publish, |sdp| sdp)
            .expect("the relay accepts the offer")
    }

    /// Like [`Harness::join`], with the offer's SDP text passed through
    /// `edit` first (to test what the relay refuses). On a refusal the peer
    /// is not added.
    pub fn join_with(
        &mut self,
        room: &str,
        participant: &str,
        publish: &Publish,
        edit: impl FnOnce(String) -> String,
    ) -> Result<usize, SfuError> {
        let index = self.peers.len();
        let addr = SocketAddr::new(
            IpAddr::V4(Ipv4Addr::new(
                10,
                1,
                (index / 250) as u8,
                (index % 250) as u8 + 2,
            )),
            5000,
        );
        let mut p = Peer::new(
            RoomId::new(room).expect("room id"),
            ParticipantId::new(participant).expect("participant id"),
            addr,
            self.now,
            &self.crypto,
            &self.cert,
        );
        let mut change = p.rtc.sdp_api();
        if publish.audio {
            p.audio_mid = Some(change.add_media(
                MediaKind::Audio,
                Direction::SendOnly,
                Some(participant.to_owned()),
                None,
                None,
            ));
        }
        if publish.video {
            let simulcast = (!publish.simulcast.is_empty()).then(|| {
                let mut s = Simulcast::new();
                for rid in &publish.simulcast {
                    s.add_send_layer(SimulcastLayer::new(rid));
                }
                s
            });
            p.rids = publish.simulcast.iter().map(|r| (*r).into()).collect();
            p.video_mid = Some(change.add_media(
                MediaKind::Video,
                Direction::SendOnly,
                Some(participant.to_owned()),
                None,
                simulcast,
            ));
        }
        change.add_channel("room".into());
        let (offer, pending) = change.apply().expect("an offer");
        let token = self.grant(room, participant);
        let accepted =
            self.sfu
                .handle_offer(self.now, UNIX_NOW, &token, &edit(offer.to_sdp_string()))?;
        let answer = SdpAnswer::from_sdp_string(&accepted.answer_sdp).expect("answer parses");
        accepted
            .answer_sdp
            .lines()
            .find_map(|l| l.trim().strip_prefix("a=ice-ufrag:"))
            .unwrap_or_default()
            .clone_into(&mut p.relay_ufrag);
        p.rtc
            .sdp_api()
            .accept_answer(pending, answer)
            .expect("answer accepted");
        self.by_addr.insert(p.addr, index);
        self.peers.push(p);
        Ok(index)
    }
}
