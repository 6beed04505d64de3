//! The `--dev` demo directory: one organisation, one waiting room and two
//! accounts whose passwords are generated at start and printed once.

use std::collections::HashMap;
use std::sync::RwLock;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use protocol::client::IntakeQuestion;
use protocol::{ClinicianId, RoomId, TenantId};

use super::{Account, Accounts, ClinicianInfo, Directory, RoomInfo, TenantInfo};
use crate::auth::{StaffRole, hash_password};

/// The demo accounts' credentials, returned once by [`Directory::dev_demo`]
/// so `--dev` can print them. `Debug` hides the passwords.
#[derive(Clone)]
pub struct DemoCredentials {
    /// The demo clinician's username.
    pub username: String,
    /// The demo clinician's random password.
    pub password: String,
    /// The demo admin's username.
    pub admin_username: String,
    /// The demo admin's random password.
    pub admin_password: String,
    /// The demo organisation.
    pub tenant: TenantId,
    /// The demo waiting room.
    pub room: RoomId,
}

impl std::fmt::Debug for DemoCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DemoCredentials")
            .field("username", &self.username)
            .field("password", &"[redacted]")
            .field("admin_username", &self.admin_username)
            .field("admin_password", &"[redacted]")
            .field("tenant", &self.tenant)
            .field("room", &self.room)
            .finish()
    }
}

/// 18 random bytes as 24 base64url characters (144 bits).
fn random_password() -> String {
    let bytes: [u8; 18] = rand::random();
    URL_SAFE_NO_PAD.encode(bytes)
}

fn id<T: std::str::FromStr>(s: &str) -> T
where
    T::Err: std::fmt::Debug,
{
    s.parse().expect("constant demo ids are valid")
}

fn question(id: &str, label: &str, required: bool) -> IntakeQuestion {
    IntakeQuestion {
        id: id.to_owned(),
        label: label.to_owned(),
        required,
    }
}

pub(super) fn build() -> (Directory, DemoCredentials) {
    let tenant: TenantId = id("demo");
    let room: RoomId = id("demo-room");
    let creds = DemoCredentials {
        username: "demo-clinician".to_owned(),
        password: random_password(),
        admin_username: "demo-admin".to_owned(),
        admin_password: random_password(),
        tenant: tenant.clone(),
        room: room.clone(),
    };

    let mut tenants = HashMap::new();
    tenants.insert(
        tenant.clone(),
        TenantInfo {
            id: tenant.clone(),
            name: "Demo Clinic".to_owned(),
        },
    );
    let mut rooms = HashMap::new();
    rooms.insert(
        room.clone(),
        RoomInfo {
            id: room,
            tenant: tenant.clone(),
            name: "Demo waiting room".to_owned(),
            intake: vec![
                question("reason", "What would you like to talk about today?", true),
                question("since", "Since when have you had this?", false),
                question("callback", "A phone number in case the video drops", false),
            ],
            hide_position: false,
            kind: super::RoomKind::Waiting,
            closed: false,
        },
    );

    let mut accounts = Accounts::default();
    for (cid, username, display_name, role, password) in [
        (
            "demo-clinician",
            &creds.username,
            "Dr Demo",
            StaffRole::Clinician,
            &creds.password,
        ),
        (
            "demo-admin",
            &creds.admin_username,
            "Demo Admin",
            StaffRole::Admin,
            &creds.admin_password,
        ),
    ] {
        let cid: ClinicianId = id(cid);
        accounts.by_username.insert(username.clone(), cid.clone());
        accounts.by_id.insert(
            cid.clone(),
            Account {
                info: ClinicianInfo {
                    id: cid,
                    tenant: tenant.clone(),
                    username: username.clone(),
                    display_name: display_name.to_owned(),
                    role,
                    enabled: true,
                },
                password_hash: hash_password(password),
            },
        );
    }

    let dir = Directory {
        tenants,
        rooms: RwLock::new(rooms),
        accounts: RwLock::new(accounts),
        oidc: HashMap::new(),
    };
    (dir, creds)
}
