//! The directory file the test cluster's signaling loads: two organisations, each with
//! a waiting room and clinician accounts whose passwords the tests know.
//!
//! Passwords are hashed at start with Argon2id at signaling's minimum cost (m = 19 MiB,
//! t = 2, p = 1), so the file passes the same validation as a production one.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context as _, Result};

/// One organisation of the test directory.
#[derive(Debug, Clone, Copy)]
pub struct TestOrg {
    /// Tenant id.
    pub tenant: &'static str,
    /// Its waiting room.
    pub room: &'static str,
    /// Its meeting room (one standing call; guests join by link, wait, are admitted).
    pub meeting: &'static str,
    /// Its clinicians' usernames (all share [`PASSWORD`]).
    pub clinicians: &'static [&'static str],
}

/// The password of every test clinician.
pub const PASSWORD: &str = "correct horse battery staple";

/// First organisation: two clinicians (one admits, one joins as a colleague).
pub const NORTH: TestOrg = TestOrg {
    tenant: "north",
    room: "north-gp",
    meeting: "north-team",
    clinicians: &["lee@north", "ng@north"],
};

/// Second organisation, for isolation checks.
pub const SOUTH: TestOrg = TestOrg {
    tenant: "south",
    room: "south-clinic",
    meeting: "south-team",
    clinicians: &["okafor@south"],
};

/// Both organisations.
pub const ORGS: [TestOrg; 2] = [NORTH, SOUTH];

/// The directory TOML for [`ORGS`].
pub fn toml() -> String {
    let hash = hash(PASSWORD);
    let mut out = String::from("# Written by the tests crate (tests/src/directory.rs).\n");
    for org in ORGS {
        let _ = write!(
            out,
            "\n[[tenant]]\nid = \"{t}\"\nname = \"Org {t}\"\n\n\
             [[room]]\nid = \"{r}\"\ntenant = \"{t}\"\nname = \"Room {r}\"\nhide_position = false\n",
            t = org.tenant,
            r = org.room,
        );
        let _ = write!(
            out,
            "\n[[room]]\nid = \"{m}\"\ntenant = \"{t}\"\nname = \"Meeting {m}\"\nkind = \"meeting\"\n",
            t = org.tenant,
            m = org.meeting,
        );
        for (i, user) in org.clinicians.iter().enumerate() {
            let _ = write!(
                out,
                "\n[[clinician]]\nid = \"{t}-c{i}\"\ntenant = \"{t}\"\nusername = \"{user}\"\n\
                 display_name = \"Clinician {i} of {t}\"\nrole = \"clinician\"\n\
                 password_hash = \"{hash}\"\n",
                t = org.tenant,
            );
        }
    }
    out
}

/// The Argon2id PHC string of `password` (fixed salt: test data only).
fn hash(password: &str) -> String {
    use argon2::password_hash::{PasswordHasher as _, SaltString};
    let params = argon2::Params::new(19_456, 2, 1, None).expect("valid argon2 parameters");
    let argon = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let salt = SaltString::encode_b64(b"anteroom-tests-salt").expect("valid salt");
    argon
        .hash_password(password.as_bytes(), &salt)
        .expect("hashing works")
        .to_string()
}

/// Writes [`toml`] to `path`.
pub fn write(path: &Path) -> Result<()> {
    std::fs::write(path, toml()).with_context(|| format!("writing {}", path.display()))
}
