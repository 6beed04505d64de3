//! Joining as a WHIP publisher or a WHEP player, the way standard clients
//! (OBS, GStreamer, browsers) do it: a grant with the `publisher` or
//! `subscriber` role and one offer without a data channel. The harness
//! still answers any server offer, so a test can see that none is made.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use protocol::{Grant, GrantRole, ParticipantId, RoomId};
use str0m::change::SdpAnswer;
use str0m::media::{Direction, MediaKind, Mid};

use super::{Harness, Peer, SECRET, UNIX_NOW};
use crate::sfu::SfuError;

/// A WHEP player in the harness.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Player {
    /// The peer's index.
    pub index: usize,
    /// Its recvonly audio m-line.
    pub audio: Mid,
    /// Its recvonly video m-line.
    pub video: Mid,
}

impl Harness {
    /// A WHIP publisher: a `publisher` grant, sendonly audio and video (no
    /// simulcast, no data channel). Returns the peer's index; publish with
    /// [`Peer::send_media`] as usual.
    ///
    /// # Panics
    /// If the relay refuses the offer.
    pub fn join_whip(&mut self, room: &str, participant: &str) -> usize {
        let (index, mids) = self
            .join_role(room, participant, GrantRole::Publisher, Direction::SendOnly)
            .expect("the relay accepts a WHIP offer");
        let p = &mut self.peers[index];
        p.audio_mid = Some(mids[0]);
        p.video_mid = Some(mids[1]);
        index
    }

    /// A WHEP player: a `subscriber` grant, recvonly audio and video, no
    /// data channel.
    ///
    /// # Panics
    /// If the relay refuses the offer.
    pub fn join_whep(&mut self, room: &str, participant: &str) -> Player {
        let (index, mids) = self
            .join_role(
                room,
                participant,
                GrantRole::Subscriber,
                Direction::RecvOnly,
            )
            .expect("the relay accepts a WHEP offer");
        Player {
            index,
            audio: mids[0],
            video: mids[1],
        }
    }

    /// Offers an audio and a video m-line in `direction` with a `role`
    /// grant and applies the answer. Returns the peer and its two mids.
    fn join_role(
        &mut self,
        room: &str,
        participant: &str,
        role: GrantRole,
        direction: Direction,
    ) -> Result<(usize, [Mid; 2]), SfuError> {
        let index = self.peers.len();
        let addr = SocketAddr::new(
            IpAddr::V4(Ipv4Addr::new(
                10,
                2,
                (index / 250) as u8,
                (index % 250) as u8 + 2,
            )),
            5000,
        );
        let room_id = RoomId::new(room).expect("room id");
        let id = ParticipantId::new(participant).expect("participant id");
        let mut p = Peer::new(
            room_id.clone(),
            id.clone(),
            addr,
            self.now,
            &self.crypto,
            &self.cert,
        );
        let stream = Some(participant.to_owned());
        let mut change = p.rtc.sdp_api();
        let audio = change.add_media(MediaKind::Audio, direction, stream.clone(), None, None);
        let video = change.add_media(MediaKind::Video, direction, stream, None, None);
        let (offer, pending) = change.apply().expect("an offer");
        let token = Grant {
            room: room_id,
            participant: id,
            role,
            node: self.node.clone(),
            exp: UNIX_NOW + 3600,
        }
        .sign(SECRET);
        let accepted = self
            .sfu
            .handle_offer(self.now, UNIX_NOW, &token, &offer.to_sdp_string())?;
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
        Ok((index, [audio, video]))
    }
}
