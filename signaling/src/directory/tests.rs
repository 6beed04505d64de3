//! Tests of directory parsing, validation and account changes.

use super::*;

/// Argon2id(m=19456,t=2,p=1) of "hunter2hunter2" with a fixed salt.
pub(crate) const HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$BwcHBwcHBwcHBwcHBwcHBw$nRjsqwC21oaxfa28uB5X6UeYpp0Qw2/e21WOmvTeXIc";

fn doc(extra: &str) -> String {
    format!(
        r#"
[[tenant]]
id = "north"
name = "Northside Clinic"

[[tenant]]
id = "south"
name = "Southside Clinic"

[[room]]
id = "north-gp"
tenant = "north"
name = "GP"
hide_position = true
[[room.intake]]
id = "reason"
label = "Reason for your visit"
required = true
[[room.intake]]
id = "since"
label = "Since when?"

[[room]]
id = "south-gp"
tenant = "south"
name = "GP South"
kind = "waiting"

[[room]]
id = "north-team"
tenant = "north"
name = "Team meeting"
kind = "meeting"

[[clinician]]
id = "dr-lee"
tenant = "north"
username = "Lee"
display_name = "Dr Lee"
password_hash = "{HASH}"

[[clinician]]
id = "admin-south"
tenant = "south"
username = "boss"
display_name = "South Admin"
role = "admin"
password_hash = "{HASH}"
disabled = true
{extra}
"#
    )
}

fn err(extra: &str) -> String {
    Directory::from_toml_str(&doc(extra))
        .unwrap_err()
        .to_string()
}

fn rid(s: &str) -> RoomId {
    RoomId::new(s).unwrap()
}

fn tid(s: &str) -> TenantId {
    TenantId::new(s).unwrap()
}

#[test]
fn parses_tenants_rooms_and_accounts() {
    let d = Directory::from_toml_str(&doc("")).unwrap();
    let room = d.room(&rid("north-gp")).unwrap();
    assert_eq!(room.tenant, tid("north"));
    assert!(room.hide_position);
    assert_eq!(room.intake.len(), 2);
    assert!(room.intake[0].required && !room.intake[1].required);
    assert!(!d.room(&rid("south-gp")).unwrap().hide_position);
    assert_eq!(d.rooms_of(&tid("north")).len(), 2);
    assert_eq!(
        room.kind,
        RoomKind::Waiting,
        "rooms are waiting rooms by default"
    );
    assert_eq!(d.room(&rid("north-team")).unwrap().kind, RoomKind::Meeting);
    assert!(d.room(&rid("nope")).is_none());
    assert_eq!(d.tenants().len(), 2);

    let lee = d.clinician(&ClinicianId::new("dr-lee").unwrap()).unwrap();
    assert_eq!(
        lee.username, "lee",
        "usernames are normalised to lower case"
    );
    assert_eq!(lee.role, StaffRole::Clinician);
    assert!(lee.enabled);
    let boss = &d.clinicians_of(&tid("south"))[0];
    assert_eq!(boss.role, StaffRole::Admin);
    assert!(!boss.enabled);
    assert!(d.login_record("lee").is_some());
    assert_eq!(d.sample_hash_params(), Some(HashParams::MINIMUM));
}

#[test]
fn reports_each_kind_of_mistake_clearly() {
    let cases = [
        (
            "[[tenant]]\nid = \"north\"\nname = \"again\"",
            "duplicate tenant id north",
        ),
        (
            "[[room]]\nid = \"north-gp\"\ntenant = \"north\"\nname = \"x\"",
            "duplicate room id north-gp",
        ),
        (
            "[[room]]\nid = \"r9\"\ntenant = \"west\"\nname = \"x\"",
            "room r9: unknown tenant west",
        ),
        (
            "[[room]]\nid = \"r9\"\nname = \"x\"",
            "missing field `tenant`",
        ),
        (
            "[[room]]\nid = \"r9\"\ntenant = \"north\"\nname = \"x\"\nhide_postion = true",
            "unknown field `hide_postion`",
        ),
        (
            "[[clinician]]\nid = \"dr-lee\"\ntenant = \"north\"\nusername = \"x\"\ndisplay_name = \"X\"\npassword_hash = \"h\"",
            "duplicate clinician id dr-lee",
        ),
        (
            &format!(
                "[[clinician]]\nid = \"c2\"\ntenant = \"north\"\nusername = \"LEE\"\ndisplay_name = \"X\"\npassword_hash = \"{HASH}\""
            ),
            "duplicate username lee",
        ),
        (
            "[[clinician]]\nid = \"c2\"\ntenant = \"north\"\nusername = \"x\"\ndisplay_name = \"X\"\npassword_hash = \"secret\"",
            "clinician c2: bad password_hash",
        ),
        (
            "[[clinician]]\nid = \"c2\"\ntenant = \"north\"\nusername = \"x\"\ndisplay_name = \"X\"\npassword = \"secret\"",
            "unknown field `password`",
        ),
        (
            &format!(
                "[[clinician]]\nid = \"c2\"\ntenant = \"east\"\nusername = \"x\"\ndisplay_name = \"X\"\npassword_hash = \"{HASH}\""
            ),
            "clinician c2: unknown tenant east",
        ),
        (
            &format!(
                "[[clinician]]\nid = \"c2\"\ntenant = \"north\"\nusername = \"a b\"\ndisplay_name = \"X\"\npassword_hash = \"{HASH}\""
            ),
            "username may only contain",
        ),
        (
            &format!(
                "[[clinician]]\nid = \"c2\"\ntenant = \"north\"\nusername = \"x\"\ndisplay_name = \"X\"\nrole = \"root\"\npassword_hash = \"{HASH}\""
            ),
            "unknown variant `root`",
        ),
        (
            "[[room]]\nid = \"r9\"\ntenant = \"north\"\nname = \"x\"\n[[room.intake]]\nid = \"a\"\nlabel = \"A\"\n[[room.intake]]\nid = \"a\"\nlabel = \"B\"",
            "room r9: duplicate intake question id a",
        ),
        (
            "[[room]]\nid = \"bad/id\"\ntenant = \"north\"\nname = \"x\"",
            "id may only contain",
        ),
    ];
    for (extra, want) in cases {
        let got = err(extra);
        assert!(
            got.contains(want),
            "for {extra:?}\nwanted {want:?}\ngot {got:?}"
        );
    }
    let got = Directory::from_toml_str("").unwrap_err().to_string();
    assert!(got.contains("no [[tenant]]"), "{got}");
    let weak = "$argon2id$v=19$m=4096,t=3,p=1$c2FsdHNhbHRzYWx0$5nM1rO2oUQ/8RtU2X5rFk3IMYwlVNwzHLd8/nh+Obs4";
    let got = err(&format!(
        "[[clinician]]\nid = \"c2\"\ntenant = \"north\"\nusername = \"x\"\ndisplay_name = \"X\"\npassword_hash = \"{weak}\""
    ));
    assert!(got.contains("below the minimum"), "{got}");
}

#[test]
fn load_names_the_file_in_errors() {
    let path = std::env::temp_dir().join(format!("anteroom-dir-{}.toml", std::process::id()));
    std::fs::write(&path, doc("[[tenant]]\nid = \"north\"\nname = \"x\"")).unwrap();
    let got = Directory::load(&path).unwrap_err().to_string();
    let _ = std::fs::remove_file(&path);
    assert!(
        got.contains("anteroom-dir-") && got.contains("duplicate tenant"),
        "{got}"
    );
    let missing = Directory::load(Path::new("/nonexistent/orgs.toml"))
        .unwrap_err()
        .to_string();
    assert!(missing.contains("/nonexistent/orgs.toml"), "{missing}");
}

#[test]
fn accounts_are_created_and_toggled_within_their_tenant_only() {
    let d = Directory::from_toml_str(&doc("")).unwrap();
    let new = |username: &str| NewClinician {
        username: username.to_owned(),
        display_name: " Dr New ".to_owned(),
        role: StaffRole::Clinician,
        password_hash: HASH.to_owned(),
    };
    let c = d.create_clinician(&tid("north"), new("New.One")).unwrap();
    assert_eq!(c.username, "new.one");
    assert_eq!(c.display_name, "Dr New");
    assert_eq!(d.clinicians_of(&tid("north")).len(), 2);
    assert_eq!(
        d.create_clinician(&tid("south"), new("NEW.ONE")),
        Err(AuthError::UsernameTaken)
    );
    assert!(matches!(
        d.create_clinician(&tid("north"), new("bad name")),
        Err(AuthError::Invalid(_))
    ));
    let weak = NewClinician {
        password_hash: "x".to_owned(),
        ..new("other")
    };
    assert!(matches!(
        d.create_clinician(&tid("north"), weak),
        Err(AuthError::Invalid(_))
    ));

    let lee = ClinicianId::new("dr-lee").unwrap();
    assert_eq!(
        d.set_enabled(&tid("south"), &lee, false),
        Err(AuthError::UnknownAccount)
    );
    assert!(d.clinician(&lee).unwrap().enabled);
    assert!(!d.set_enabled(&tid("north"), &lee, false).unwrap().enabled);
    assert!(!d.clinician(&lee).unwrap().enabled);
}

#[test]
fn dev_demo_has_a_room_and_working_random_credentials() {
    let (d, creds) = Directory::dev_demo();
    let room = d.room(&creds.room).unwrap();
    assert_eq!(room.id.as_str(), "demo-room");
    assert!((2..=3).contains(&room.intake.len()));
    assert_eq!(d.rooms_of(&creds.tenant).len(), 1);
    let (info, phc) = d.login_record(&creds.username).unwrap();
    assert_eq!(info.role, StaffRole::Clinician);
    assert!(password::verify_password(&phc, &creds.password));
    let (admin, phc) = d.login_record(&creds.admin_username).unwrap();
    assert_eq!(admin.role, StaffRole::Admin);
    assert!(password::verify_password(&phc, &creds.admin_password));
    assert!(creds.password.len() >= 20);
    let (_, again) = Directory::dev_demo();
    assert_ne!(creds.password, again.password);
    let shown = format!("{creds:?}");
    assert!(!shown.contains(&creds.password) && !shown.contains(&creds.admin_password));
}
