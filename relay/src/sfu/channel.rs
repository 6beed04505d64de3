//! The per-participant data channel: room messages (chat, mute state)
//! relayed to the other members, and the relay's own control messages.
//!
//! Accepted input: text JSON objects up to [`MAX_MESSAGE`] bytes, at most
//! [`MAX_MESSAGES_PER_TICK`] per participant per tick; anything else is
//! dropped. The relay never interprets room messages beyond wrapping them
//! with the sender's id, so a client cannot impersonate another.

use protocol::{ParticipantId, RoomId};
use serde_json::{Map, Value, json};
use str0m::channel::ChannelData;

use super::Sfu;
use super::error::SfuError;
use super::simulcast::Quality;
use super::slab::PKey;

/// Largest accepted data channel message, bytes.
pub(crate) const MAX_MESSAGE: usize = 16 * 1024;

/// Messages one participant may send per tick before the rest are dropped.
pub(crate) const MAX_MESSAGES_PER_TICK: u32 = 20;

impl Sfu {
    pub(super) fn on_channel_data(&mut self, key: PKey, data: &ChannelData) {
        let Some(p) = self.participants.get_mut(key) else {
            return;
        };
        p.messages_this_tick += 1;
        if data.binary
            || data.data.len() > MAX_MESSAGE
            || p.messages_this_tick > MAX_MESSAGES_PER_TICK
        {
            self.stats.messages_dropped += 1;
            return;
        }
        let Ok(Value::Object(obj)) = serde_json::from_slice::<Value>(&data.data) else {
            self.stats.messages_dropped += 1;
            return;
        };
        if obj.get("type").and_then(Value::as_str) == Some("set_quality") {
            self.on_set_quality(key, &obj);
            return;
        }
        let text = json!({"type": "room_message", "from": p.id, "message": obj}).to_string();
        let members = self
            .rooms
            .get(&p.room)
            .map(|r| r.members.clone())
            .unwrap_or_default();
        for m in members.into_iter().filter(|m| *m != key) {
            self.send_channel(m, &text);
        }
        self.stats.messages += 1;
    }

    fn on_set_quality(&mut self, key: PKey, obj: &Map<String, Value>) {
        let publisher = obj
            .get("publisher")
            .and_then(Value::as_str)
            .and_then(|s| ParticipantId::new(s).ok());
        let quality = obj
            .get("quality")
            .and_then(Value::as_str)
            .and_then(parse_quality);
        if let (Some(publisher), Some(quality)) = (publisher, quality) {
            self.set_quality_of(key, &publisher, quality);
        } else {
            self.stats.messages_dropped += 1;
        }
    }

    /// Sets the best video quality `subscriber` wants from `publisher`
    /// (also settable by the client over the data channel).
    pub fn set_quality(
        &mut self,
        room: &RoomId,
        subscriber: &ParticipantId,
        publisher: &ParticipantId,
        quality: Quality,
    ) -> Result<(), SfuError> {
        let key = self.find(room, subscriber)?;
        self.set_quality_of(key, publisher, quality);
        self.process();
        Ok(())
    }

    fn set_quality_of(&mut self, key: PKey, publisher: &ParticipantId, quality: Quality) {
        let Some(p) = self.participants.get(key) else {
            return;
        };
        let slots: Vec<usize> = p
            .tracks_out
            .iter()
            .enumerate()
            .filter_map(|(i, t)| {
                let t = t.as_ref()?;
                let src = self.participants.get(t.source)?;
                (&src.id == publisher && t.kind == str0m::media::MediaKind::Video).then_some(i)
            })
            .collect();
        for slot in slots {
            if let Some(Some(t)) = self
                .participants
                .get_mut(key)
                .and_then(|p| p.tracks_out.get_mut(slot))
            {
                t.select.quality = quality;
            }
            self.retarget(key, slot);
        }
    }

    /// Writes a text message on a participant's data channel (if open).
    pub(super) fn send_channel(&mut self, key: PKey, text: &str) {
        let Some(p) = self.participants.get_mut(key) else {
            return;
        };
        let Some(id) = p.channel else { return };
        if let Some(mut ch) = p.rtc.channel(id) {
            let _ = ch.write(false, text.as_bytes());
        }
        self.drain(key);
    }
}

fn parse_quality(s: &str) -> Option<Quality> {
    Some(match s {
        "off" => Quality::Off,
        "low" => Quality::Low,
        "medium" => Quality::Medium,
        "high" => Quality::High,
        _ => return None,
    })
}
