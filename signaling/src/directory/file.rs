//! The TOML directory file: its schema (unknown fields are refused, so a
//! typo such as `hide_postion` or a plaintext `password` is an error) and the
//! validation that turns it into a [`Directory`].

use std::collections::{HashMap, HashSet};
use std::sync::RwLock;

use protocol::client::IntakeQuestion;
use protocol::{ClinicianId, RoomId, TenantId};
use serde::Deserialize;

use super::{
    Account, Accounts, ClinicianInfo, Directory, RoomInfo, TenantInfo, normalize_username,
    validate_display_name, validate_text, validate_username,
};
use crate::Error;
use crate::auth::{StaffRole, password};

/// Most intake questions per room.
const MAX_INTAKE_QUESTIONS: usize = 20;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileDoc {
    #[serde(default, rename = "tenant")]
    tenants: Vec<TenantEntry>,
    #[serde(default, rename = "room")]
    rooms: Vec<RoomEntry>,
    #[serde(default, rename = "clinician")]
    clinicians: Vec<ClinicianEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TenantEntry {
    id: TenantId,
    name: String,
    #[serde(default)]
    oidc: Option<super::oidc::OidcEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RoomEntry {
    id: RoomId,
    tenant: TenantId,
    name: String,
    #[serde(default)]
    hide_position: bool,
    #[serde(default)]
    kind: super::RoomKind,
    #[serde(default)]
    intake: Vec<IntakeEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IntakeEntry {
    id: String,
    label: String,
    #[serde(default)]
    required: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ClinicianEntry {
    id: ClinicianId,
    tenant: TenantId,
    username: String,
    display_name: String,
    #[serde(default = "default_role")]
    role: StaffRole,
    /// Absent only for accounts that sign in with OpenID Connect.
    #[serde(default)]
    password_hash: Option<String>,
    /// The OpenID Connect subject (`sub` or `oid`) of this clinician.
    #[serde(default)]
    external_subject: Option<String>,
    #[serde(default)]
    disabled: bool,
}

fn default_role() -> StaffRole {
    StaffRole::Clinician
}

fn invalid(msg: String) -> Error {
    Error::Directory(msg)
}

/// Parses and validates a directory file.
pub(super) fn parse(s: &str) -> Result<Directory, Error> {
    let doc: FileDoc = toml::from_str(s)?;
    if doc.tenants.is_empty() {
        return Err(invalid("no [[tenant]] defined".to_owned()));
    }

    let mut tenants = HashMap::new();
    let mut oidc = HashMap::new();
    for t in doc.tenants {
        validate_text("tenant name", &t.name, 100)
            .map_err(|e| invalid(format!("tenant {}: {e}", t.id)))?;
        if tenants.contains_key(&t.id) {
            return Err(invalid(format!("duplicate tenant id {}", t.id)));
        }
        if let Some(entry) = t.oidc {
            let settings = entry
                .validate()
                .map_err(|e| invalid(format!("tenant {}: {e}", t.id)))?;
            oidc.insert(t.id.clone(), settings);
        }
        let info = TenantInfo {
            id: t.id.clone(),
            name: t.name.trim().to_owned(),
        };
        tenants.insert(t.id, info);
    }

    let mut rooms = HashMap::new();
    for r in doc.rooms {
        let at = format!("room {}", r.id);
        if rooms.contains_key(&r.id) {
            return Err(invalid(format!("duplicate room id {}", r.id)));
        }
        if !tenants.contains_key(&r.tenant) {
            return Err(invalid(format!("{at}: unknown tenant {}", r.tenant)));
        }
        validate_text("room name", &r.name, 100).map_err(|e| invalid(format!("{at}: {e}")))?;
        let intake = intake(r.intake).map_err(|e| invalid(format!("{at}: {e}")))?;
        let info = RoomInfo {
            id: r.id.clone(),
            tenant: r.tenant,
            name: r.name.trim().to_owned(),
            intake,
            hide_position: r.hide_position,
            kind: r.kind,
            closed: false,
        };
        rooms.insert(r.id, info);
    }

    let mut accounts = Accounts::default();
    for c in doc.clinicians {
        let at = format!("clinician {}", c.id);
        if accounts.by_id.contains_key(&c.id) {
            return Err(invalid(format!("duplicate clinician id {}", c.id)));
        }
        if !tenants.contains_key(&c.tenant) {
            return Err(invalid(format!("{at}: unknown tenant {}", c.tenant)));
        }
        let username = normalize_username(&c.username);
        validate_username(&username).map_err(|e| invalid(format!("{at}: {e}")))?;
        if accounts.by_username.contains_key(&username) {
            return Err(invalid(format!("{at}: duplicate username {username}")));
        }
        validate_display_name(&c.display_name).map_err(|e| invalid(format!("{at}: {e}")))?;
        match &c.password_hash {
            Some(phc) => {
                password::check_password_hash(phc)
                    .map_err(|e| invalid(format!("{at}: bad password_hash: {e}")))?;
            }
            None if oidc.contains_key(&c.tenant) => {}
            None => {
                return Err(invalid(format!(
                    "{at}: password_hash is required (its organisation has no [tenant.oidc])"
                )));
            }
        }
        if let Some(subject) = &c.external_subject {
            super::oidc::validate_subject(subject).map_err(|e| invalid(format!("{at}: {e}")))?;
            let key = (c.tenant.clone(), subject.clone());
            if accounts.subjects.contains_key(&key) {
                return Err(invalid(format!("{at}: duplicate external_subject")));
            }
            accounts.subjects.insert(key, c.id.clone());
        }
        accounts.by_username.insert(username.clone(), c.id.clone());
        let info = ClinicianInfo {
            id: c.id.clone(),
            tenant: c.tenant,
            username,
            display_name: c.display_name.trim().to_owned(),
            role: c.role,
            enabled: !c.disabled,
        };
        accounts.by_id.insert(
            c.id,
            Account {
                info,
                password_hash: c.password_hash.unwrap_or_default(),
            },
        );
    }

    Ok(Directory {
        tenants,
        rooms: RwLock::new(rooms),
        accounts: RwLock::new(accounts),
        oidc,
    })
}

fn intake(entries: Vec<IntakeEntry>) -> Result<Vec<IntakeQuestion>, String> {
    if entries.len() > MAX_INTAKE_QUESTIONS {
        return Err(format!("at most {MAX_INTAKE_QUESTIONS} intake questions"));
    }
    let mut seen = HashSet::new();
    let mut out = Vec::with_capacity(entries.len());
    for q in entries {
        protocol::ids::validate_id(&q.id)
            .map_err(|e| format!("intake question id {:?}: {e}", q.id))?;
        if !seen.insert(q.id.clone()) {
            return Err(format!("duplicate intake question id {}", q.id));
        }
        validate_text("intake question label", &q.label, 200)
            .map_err(|e| format!("intake question {}: {e}", q.id))?;
        out.push(IntakeQuestion {
            id: q.id,
            label: q.label.trim().to_owned(),
            required: q.required,
        });
    }
    Ok(out)
}
