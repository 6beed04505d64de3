//! The directory: organisations (tenants), their waiting rooms and their
//! clinician accounts, loaded from a TOML file (`file` submodule; format in
//! `docs/accounts.md`). Rooms (`rooms` submodule) can be created, edited,
//! closed and reopened, and accounts created, disabled and enabled, at run
//! time through the admin API, in memory only (a restart reloads the file).
//!
//! Shared as `Arc<Directory>`; all methods take `&self` and are thread-safe.
//! Lookups never expose password hashes outside the crate.

mod demo;
mod file;
mod oidc;
pub mod rooms;

use std::collections::HashMap;
use std::path::Path;
use std::sync::{PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use protocol::client::IntakeQuestion;
use protocol::{ClinicianId, RoomId, TenantId};
use serde::Serialize;

use crate::Error;
use crate::auth::{AuthError, HashParams, StaffRole, password};
pub use demo::DemoCredentials;
pub use oidc::{OidcSettings, UserClaim, allowed_url};

/// An organisation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TenantInfo {
    /// Its id.
    pub id: TenantId,
    /// Its display name.
    pub name: String,
}

/// A waiting room of one organisation.
#[derive(Clone, Debug)]
pub struct RoomInfo {
    /// Unique across the deployment.
    pub id: RoomId,
    /// The organisation that owns it.
    pub tenant: TenantId,
    /// Shown to patients and clinicians.
    pub name: String,
    /// Questions patients answer before joining (answers stay in memory only).
    pub intake: Vec<IntakeQuestion>,
    /// Whether patients are told only their estimated wait, not their position.
    pub hide_position: bool,
    /// A consultation waiting room, or a meeting room with one standing call.
    pub kind: RoomKind,
    /// Closed by an admin: new patients are refused; those waiting keep
    /// their seats.
    pub closed: bool,
}

/// What a room is for (`kind` in the directory file).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RoomKind {
    /// A waiting room: each admitted patient gets a consultation (a call of
    /// their own) with the admitting clinician.
    #[default]
    Waiting,
    /// A meeting room: guests join it by link and wait in its lobby; `admit`
    /// puts them into the room's single standing call.
    Meeting,
}

/// A staff account as the rest of the service sees it (no password hash).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ClinicianInfo {
    /// Its id.
    pub id: ClinicianId,
    /// Its organisation.
    pub tenant: TenantId,
    /// Login name, lower case, unique across the deployment.
    pub username: String,
    /// Name shown to colleagues and patients.
    pub display_name: String,
    /// Clinician or admin.
    pub role: StaffRole,
    /// Disabled accounts cannot log in and have no sessions.
    pub enabled: bool,
}

/// A new account for [`Directory::create_clinician`].
#[derive(Clone)]
pub struct NewClinician {
    /// Login name (normalised to lower case).
    pub username: String,
    /// Name shown to colleagues and patients.
    pub display_name: String,
    /// Clinician or admin.
    pub role: StaffRole,
    /// Argon2id PHC string meeting [`HashParams::MINIMUM`].
    pub password_hash: String,
}

impl std::fmt::Debug for NewClinician {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewClinician")
            .field("username", &self.username)
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

#[derive(Clone)]
struct Account {
    info: ClinicianInfo,
    password_hash: String,
}

#[derive(Default)]
struct Accounts {
    by_id: HashMap<ClinicianId, Account>,
    by_username: HashMap<String, ClinicianId>,
    /// (organisation, external subject) of OpenID Connect users.
    subjects: HashMap<(TenantId, String), ClinicianId>,
}

/// Tenants, rooms and accounts. See the module docs.
pub struct Directory {
    tenants: HashMap<TenantId, TenantInfo>,
    rooms: RwLock<HashMap<RoomId, RoomInfo>>,
    accounts: RwLock<Accounts>,
    oidc: HashMap<TenantId, OidcSettings>,
}

impl std::fmt::Debug for Directory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Directory")
            .field("tenants", &self.tenants.len())
            .field("rooms", &self.rooms_read().len())
            .field("accounts", &self.read().by_id.len())
            .field("oidc_tenants", &self.oidc.len())
            .finish()
    }
}

impl Directory {
    /// Loads and validates the TOML directory file at `path`.
    pub fn load(path: &Path) -> Result<Directory, Error> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::Directory(format!("cannot read {}: {e}", path.display())))?;
        Self::from_toml_str(&text).map_err(|e| Error::Directory(format!("{}: {e}", path.display())))
    }

    /// Parses and validates a TOML directory. Errors name the offending
    /// entry: duplicate ids or usernames, unknown tenants, unknown fields,
    /// weak or malformed password hashes, bad intake questions, …
    pub fn from_toml_str(s: &str) -> Result<Directory, Error> {
        file::parse(s)
    }

    /// A demo directory for `--dev`: organisation `demo`, waiting room
    /// `demo-room` with three intake questions, a clinician and an admin
    /// whose passwords are random, generated now, and returned once.
    pub fn dev_demo() -> (Directory, DemoCredentials) {
        demo::build()
    }

    fn read(&self) -> RwLockReadGuard<'_, Accounts> {
        self.accounts.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, Accounts> {
        self.accounts
            .write()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The waiting room `id`, if it exists.
    pub fn room(&self, id: &RoomId) -> Option<RoomInfo> {
        self.rooms_read().get(id).cloned()
    }

    /// The waiting rooms of `tenant`, sorted by id.
    pub fn rooms_of(&self, tenant: &TenantId) -> Vec<RoomInfo> {
        let mut v: Vec<RoomInfo> = self
            .rooms_read()
            .values()
            .filter(|r| &r.tenant == tenant)
            .cloned()
            .collect();
        v.sort_by(|a, b| a.id.cmp(&b.id));
        v
    }

    /// The organisation `id`, if it exists.
    pub fn tenant(&self, id: &TenantId) -> Option<TenantInfo> {
        self.tenants.get(id).cloned()
    }

    /// Every organisation, sorted by id.
    pub fn tenants(&self) -> Vec<TenantInfo> {
        let mut v: Vec<TenantInfo> = self.tenants.values().cloned().collect();
        v.sort_by(|a, b| a.id.cmp(&b.id));
        v
    }

    /// The account `id` (any organisation; check `tenant` before acting).
    pub fn clinician(&self, id: &ClinicianId) -> Option<ClinicianInfo> {
        self.read().by_id.get(id).map(|a| a.info.clone())
    }

    /// The accounts of `tenant`, sorted by username.
    pub fn clinicians_of(&self, tenant: &TenantId) -> Vec<ClinicianInfo> {
        let mut v: Vec<ClinicianInfo> = self
            .read()
            .by_id
            .values()
            .filter(|a| &a.info.tenant == tenant)
            .map(|a| a.info.clone())
            .collect();
        v.sort_by(|a, b| a.username.cmp(&b.username));
        v
    }

    /// Adds an enabled account to `tenant` with a fresh random id.
    pub fn create_clinician(
        &self,
        tenant: &TenantId,
        new: NewClinician,
    ) -> Result<ClinicianInfo, AuthError> {
        if !self.tenants.contains_key(tenant) {
            return Err(AuthError::UnknownAccount);
        }
        let username = normalize_username(&new.username);
        validate_username(&username).map_err(AuthError::Invalid)?;
        validate_display_name(&new.display_name).map_err(AuthError::Invalid)?;
        password::check_password_hash(&new.password_hash)
            .map_err(|e| AuthError::Invalid(format!("password hash: {e}")))?;
        let info = ClinicianInfo {
            id: ClinicianId::random(),
            tenant: tenant.clone(),
            username: username.clone(),
            display_name: new.display_name.trim().to_owned(),
            role: new.role,
            enabled: true,
        };
        let mut acc = self.write();
        if acc.by_username.contains_key(&username) {
            return Err(AuthError::UsernameTaken);
        }
        acc.by_username.insert(username, info.id.clone());
        acc.by_id.insert(
            info.id.clone(),
            Account {
                info: info.clone(),
                password_hash: new.password_hash,
            },
        );
        Ok(info)
    }

    /// Enables or disables the account `id` of `tenant`. An account of
    /// another organisation is reported as unknown. Callers disabling an
    /// account must also end its sessions ([`crate::auth::Auth::end_sessions_of`]).
    pub fn set_enabled(
        &self,
        tenant: &TenantId,
        id: &ClinicianId,
        enabled: bool,
    ) -> Result<ClinicianInfo, AuthError> {
        let mut acc = self.write();
        match acc.by_id.get_mut(id) {
            Some(a) if &a.info.tenant == tenant => {
                a.info.enabled = enabled;
                Ok(a.info.clone())
            }
            _ => Err(AuthError::UnknownAccount),
        }
    }

    /// The account with (normalised) `username` and its password hash.
    pub(crate) fn login_record(&self, username: &str) -> Option<(ClinicianInfo, String)> {
        let acc = self.read();
        let id = acc.by_username.get(username)?;
        acc.by_id
            .get(id)
            // Accounts without a password (OIDC only) log in like unknown usernames.
            .filter(|a| !a.password_hash.is_empty())
            .map(|a| (a.info.clone(), a.password_hash.clone()))
    }

    /// The cost parameters of some stored hash (for the dummy hash).
    pub(crate) fn sample_hash_params(&self) -> Option<HashParams> {
        let acc = self.read();
        let mut ids: Vec<&ClinicianId> = acc
            .by_id
            .iter()
            .filter(|(_, a)| !a.password_hash.is_empty())
            .map(|(id, _)| id)
            .collect();
        ids.sort();
        let first = acc.by_id.get(*ids.first()?)?;
        password::check_password_hash(&first.password_hash).ok()
    }
}

/// The canonical form of a username: trimmed, ASCII lower case.
pub fn normalize_username(s: &str) -> String {
    s.trim().to_ascii_lowercase()
}

/// A (normalised) username is 1–64 characters from `[a-z0-9._@-]`.
pub fn validate_username(s: &str) -> Result<(), String> {
    if s.is_empty() || s.len() > 64 {
        return Err("username must be 1 to 64 characters".to_owned());
    }
    if !s.bytes().all(|b| {
        b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'@' | b'-')
    }) {
        return Err("username may only contain letters, digits, '.', '_', '@' and '-'".to_owned());
    }
    Ok(())
}

/// A display name is 1–100 characters (after trimming), no control characters.
pub fn validate_display_name(s: &str) -> Result<(), String> {
    validate_text("display name", s, 100)
}

/// Checks a free-text field: non-empty after trimming, at most `max`
/// characters, no control characters.
fn validate_text(what: &str, s: &str, max: usize) -> Result<(), String> {
    let t = s.trim();
    if t.is_empty() {
        return Err(format!("{what} must not be empty"));
    }
    if t.chars().count() > max {
        return Err(format!("{what} must be at most {max} characters"));
    }
    if t.chars().any(char::is_control) {
        return Err(format!("{what} must not contain control characters"));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
