//! Room changes at run time (the admin API): create a room, edit it, close
//! and reopen it. Changes live in memory only, like account changes; the
//! lobby reads rooms from the directory on every use, so a change applies
//! at once (a closed room refuses new patients; those waiting keep their
//! seats). Every change is scoped to one organisation: another
//! organisation's room is [`RoomError::NotFound`], exactly like an unknown id.

use std::collections::{HashMap, HashSet};
use std::sync::{PoisonError, RwLockReadGuard, RwLockWriteGuard};

use protocol::client::IntakeQuestion;
use protocol::{RoomId, TenantId};

use super::{Directory, RoomInfo, RoomKind, validate_text};

/// Most intake questions per room (as in the directory file).
pub const MAX_INTAKE_QUESTIONS: usize = 20;
/// Most rooms one organisation may have.
pub const MAX_ROOMS_PER_TENANT: usize = 200;

/// Why a room change was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoomError {
    /// No such room in that organisation.
    NotFound,
    /// The room id is already used (room ids are unique deployment-wide).
    IdTaken,
    /// Input that breaks a rule; the message says which.
    Invalid(String),
}

/// The editable settings of a room (create and edit).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomSettings {
    /// Shown to patients and clinicians (1–100 characters).
    pub name: String,
    /// Waiting room or meeting room.
    pub kind: RoomKind,
    /// Questions asked before joining (at most 20, ids unique).
    pub intake: Vec<IntakeQuestion>,
    /// Patients see only their estimated wait, not their position.
    pub hide_position: bool,
}

impl RoomSettings {
    /// Checks and normalises (trims) the settings.
    fn checked(mut self) -> Result<Self, RoomError> {
        validate_text("room name", &self.name, 100).map_err(RoomError::Invalid)?;
        self.name = String::from(self.name.trim());
        if self.intake.len() > MAX_INTAKE_QUESTIONS {
            return Err(RoomError::Invalid(format!(
                "at most {MAX_INTAKE_QUESTIONS} intake questions"
            )));
        }
        let mut seen = HashSet::new();
        for q in &mut self.intake {
            q.id = String::from(q.id.trim());
            protocol::ids::validate_id(&q.id)
                .map_err(|e| RoomError::Invalid(format!("intake question id {:?}: {e}", q.id)))?;
            if !seen.insert(q.id.clone()) {
                return Err(RoomError::Invalid(format!(
                    "duplicate intake question id {}",
                    q.id
                )));
            }
            validate_text("intake question label", &q.label, 200)
                .map_err(|e| RoomError::Invalid(format!("intake question {}: {e}", q.id)))?;
            q.label = String::from(q.label.trim());
        }
        Ok(self)
    }
}

/// A room id made from a name: lower-case letters and digits joined by
/// `-` (at most 40 characters), then `-` and 6 random characters.
pub fn room_id_from_name(name: &str) -> RoomId {
    const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
    let mut slug = String::new();
    for c in name.trim().chars().flat_map(char::to_lowercase) {
        if c.is_ascii_alphanumeric() {
            slug.push(c);
        } else if !slug.ends_with('-') && !slug.is_empty() {
            slug.push('-');
        }
        if slug.len() >= 40 {
            break;
        }
    }
    let slug = slug.trim_end_matches('-');
    let bytes: [u8; 6] = rand::random();
    let suffix: String = bytes
        .iter()
        .map(|b| char::from(ALPHABET[usize::from(b & 31)]))
        .collect();
    let id = if slug.is_empty() {
        format!("room-{suffix}")
    } else {
        format!("{slug}-{suffix}")
    };
    RoomId::new(id).unwrap_or_else(|_| RoomId::random())
}

impl Directory {
    pub(super) fn rooms_read(&self) -> RwLockReadGuard<'_, HashMap<RoomId, RoomInfo>> {
        self.rooms.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn rooms_write(&self) -> RwLockWriteGuard<'_, HashMap<RoomId, RoomInfo>> {
        self.rooms.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// Creates an open room of `tenant` with `id` (or one made from the
    /// name when `None`).
    pub fn create_room(
        &self,
        tenant: &TenantId,
        id: Option<RoomId>,
        settings: RoomSettings,
    ) -> Result<RoomInfo, RoomError> {
        if !self.tenants.contains_key(tenant) {
            return Err(RoomError::NotFound);
        }
        let s = settings.checked()?;
        let id = id.unwrap_or_else(|| room_id_from_name(&s.name));
        let mut rooms = self.rooms_write();
        if rooms.contains_key(&id) {
            return Err(RoomError::IdTaken);
        }
        if rooms.values().filter(|r| &r.tenant == tenant).count() >= MAX_ROOMS_PER_TENANT {
            return Err(RoomError::Invalid(format!(
                "an organisation has at most {MAX_ROOMS_PER_TENANT} rooms"
            )));
        }
        let info = RoomInfo {
            id: id.clone(),
            tenant: tenant.clone(),
            name: s.name,
            intake: s.intake,
            hide_position: s.hide_position,
            kind: s.kind,
            closed: false,
        };
        rooms.insert(id, info.clone());
        Ok(info)
    }

    /// Replaces the settings of `tenant`'s room `id` (its id, organisation
    /// and open/closed state stay). Patients already waiting keep their
    /// seats and the answers they gave.
    pub fn update_room(
        &self,
        tenant: &TenantId,
        id: &RoomId,
        settings: RoomSettings,
    ) -> Result<RoomInfo, RoomError> {
        let s = settings.checked()?;
        let mut rooms = self.rooms_write();
        let room = rooms
            .get_mut(id)
            .filter(|r| &r.tenant == tenant)
            .ok_or(RoomError::NotFound)?;
        room.name = s.name;
        room.kind = s.kind;
        room.intake = s.intake;
        room.hide_position = s.hide_position;
        Ok(room.clone())
    }

    /// Closes (`true`) or reopens `tenant`'s room `id`.
    pub fn set_room_closed(
        &self,
        tenant: &TenantId,
        id: &RoomId,
        closed: bool,
    ) -> Result<RoomInfo, RoomError> {
        let mut rooms = self.rooms_write();
        let room = rooms
            .get_mut(id)
            .filter(|r| &r.tenant == tenant)
            .ok_or(RoomError::NotFound)?;
        room.closed = closed;
        Ok(room.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn demo() -> (Directory, TenantId) {
        let (dir, creds) = Directory::dev_demo();
        (dir, creds.tenant)
    }

    fn settings(name: &str) -> RoomSettings {
        RoomSettings {
            name: name.to_owned(),
            kind: RoomKind::Waiting,
            intake: vec![IntakeQuestion {
                id: "reason".into(),
                label: " Why? ".into(),
                required: true,
            }],
            hide_position: true,
        }
    }

    #[test]
    fn a_created_room_is_listed_edited_closed_and_reopened() {
        let (dir, tenant) = demo();
        let room = dir
            .create_room(&tenant, None, settings(" Physio & Rehab "))
            .unwrap();
        assert!(room.id.as_str().starts_with("physio-rehab-"), "{}", room.id);
        assert_eq!(
            (room.name.as_str(), room.intake[0].label.as_str()),
            ("Physio & Rehab", "Why?")
        );
        assert!(dir.rooms_of(&tenant).iter().any(|x| x.id == room.id));
        let mut set = settings("Physio");
        set.kind = RoomKind::Meeting;
        set.intake.clear();
        let edited = dir.update_room(&tenant, &room.id, set).unwrap();
        assert_eq!(
            (edited.name.as_str(), edited.kind, edited.intake.len()),
            ("Physio", RoomKind::Meeting, 0)
        );
        assert!(dir.set_room_closed(&tenant, &room.id, true).unwrap().closed);
        assert!(dir.room(&room.id).unwrap().closed);
        assert!(
            !dir.set_room_closed(&tenant, &room.id, false)
                .unwrap()
                .closed
        );
    }

    #[test]
    fn another_organisation_s_room_is_not_found_and_ids_are_unique() {
        let (dir, tenant) = demo();
        let other = TenantId::new("elsewhere").unwrap();
        let demo_room = RoomId::new("demo-room").unwrap();
        assert_eq!(
            dir.create_room(&other, None, settings("X")).err(),
            Some(RoomError::NotFound)
        );
        assert_eq!(
            dir.set_room_closed(&other, &demo_room, true).err(),
            Some(RoomError::NotFound)
        );
        assert_eq!(
            dir.update_room(&other, &demo_room, settings("X")).err(),
            Some(RoomError::NotFound)
        );
        assert!(!dir.room(&demo_room).unwrap().closed);
        assert_eq!(
            dir.create_room(&tenant, Some(demo_room), settings("X"))
                .err(),
            Some(RoomError::IdTaken)
        );
    }

    #[test]
    fn bad_settings_are_refused_with_the_rule() {
        let (dir, tenant) = demo();
        let mut set = settings("  ");
        assert!(
            matches!(dir.create_room(&tenant, None, set.clone()), Err(RoomError::Invalid(m)) if m.contains("room name"))
        );
        set.name = "Ok".into();
        set.intake.push(set.intake[0].clone());
        assert!(
            matches!(dir.create_room(&tenant, None, set.clone()), Err(RoomError::Invalid(m)) if m.contains("duplicate"))
        );
        set.intake.truncate(1);
        set.intake[0].id = "bad id".into();
        assert!(
            matches!(dir.create_room(&tenant, None, set), Err(RoomError::Invalid(m)) if m.contains("intake question id"))
        );
        assert_eq!(dir.rooms_of(&tenant).len(), 1, "nothing was created");
    }
}
