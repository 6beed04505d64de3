//! Tests of `Auth`: login outcomes, audit lines, sessions on virtual time.

use super::*;
use crate::audit::AuditBuffer;

/// Argon2id(m=19456,t=2,p=1) of "hunter2hunter2" with a fixed salt.
pub(super) const HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$BwcHBwcHBwcHBwcHBwcHBw$nRjsqwC21oaxfa28uB5X6UeYpp0Qw2/e21WOmvTeXIc";
pub(super) const PASSWORD: &str = "hunter2hunter2";
const MIN: Duration = Duration::from_secs(60);

fn setup() -> (Auth, Arc<Directory>, AuditBuffer) {
    let toml = format!(
        r#"
[[tenant]]
id = "north"
name = "North"
[[clinician]]
id = "dr-lee"
tenant = "north"
username = "lee"
display_name = "Dr Lee"
password_hash = "{HASH}"
[[clinician]]
id = "dr-off"
tenant = "north"
username = "off"
display_name = "Dr Off"
password_hash = "{HASH}"
disabled = true
"#
    );
    let dir = Arc::new(Directory::from_toml_str(&toml).unwrap());
    let (audit, buf) = Audit::memory();
    (
        Auth::new(dir.clone(), audit, AuthSettings::default()),
        dir,
        buf,
    )
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn actions(buf: &AuditBuffer) -> Vec<serde_json::Value> {
    buf.lines()
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn default_settings_are_20_minutes_idle_and_12_hours_absolute() {
    let s = AuthSettings::default();
    assert_eq!(s.idle, 20 * MIN);
    assert_eq!(s.max_age, 12 * 60 * MIN);
}

#[test]
fn login_opens_a_session_and_audits_without_secrets() {
    let (auth, _, buf) = setup();
    let t0 = Instant::now();
    let (token, info) = auth.login("  LEE ", PASSWORD, ip("10.0.0.1"), t0).unwrap();
    assert_eq!(info.clinician.as_str(), "dr-lee");
    assert_eq!(info.role, StaffRole::Clinician);
    assert_eq!(auth.session(&token, t0).unwrap(), info);
    let lines = actions(&buf);
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["action"], "login");
    assert_eq!(lines[0]["actor"], "dr-lee");
    assert_eq!(lines[0]["tenant"], "north");
    assert_eq!(lines[0]["source"], "10.0.0.1");
    let all = buf.lines().join("\n");
    assert!(!all.contains(&token) && !all.contains(PASSWORD));
}

#[test]
fn failures_are_indistinguishable_to_the_client_but_audited() {
    let (auth, _, buf) = setup();
    let t0 = Instant::now();
    let src = ip("10.0.0.2");
    assert_eq!(
        auth.login("lee", "wrong password!", src, t0).unwrap_err(),
        AuthError::InvalidCredentials
    );
    assert_eq!(
        auth.login("ghost", PASSWORD, src, t0).unwrap_err(),
        AuthError::InvalidCredentials
    );
    assert_eq!(
        auth.login("off", PASSWORD, src, t0).unwrap_err(),
        AuthError::InvalidCredentials
    );
    let long = "x".repeat(MAX_PASSWORD_BYTES + 1);
    assert_eq!(
        auth.login("lee", &long, src, t0).unwrap_err(),
        AuthError::InvalidCredentials
    );
    let lines = actions(&buf);
    let got: Vec<(&str, &str, &str)> = lines
        .iter()
        .map(|v| {
            (
                v["action"].as_str().unwrap(),
                v["actor"].as_str().unwrap_or("-"),
                v["detail"].as_str().unwrap_or("-"),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("login_failed", "dr-lee", "bad_password"),
            ("login_failed", "-", "unknown_username"),
            ("login_failed", "dr-off", "account_disabled"),
            ("login_failed", "-", "oversized_input"),
        ]
    );
    let all = buf.lines().join("\n");
    assert!(!all.contains("ghost"), "unknown usernames are not logged");
    assert!(!all.contains("wrong password") && !all.contains(PASSWORD));
}

#[test]
fn throttled_logins_skip_the_password_check() {
    let (auth, _, buf) = setup();
    let t0 = Instant::now();
    let src = ip("10.0.0.3");
    for _ in 0..5 {
        assert_eq!(
            auth.login("lee", "bad guess 123", src, t0).unwrap_err(),
            AuthError::InvalidCredentials
        );
    }
    // Even the right password is refused while throttled, with a retry time.
    assert_eq!(
        auth.login("lee", PASSWORD, src, t0).unwrap_err(),
        AuthError::Throttled {
            retry_after_secs: 1
        }
    );
    let last = actions(&buf).pop().unwrap();
    assert_eq!(last["action"], "login_throttled");
    assert_eq!(last["actor"], "dr-lee");
    // Another address is not affected; after the wait it works again.
    assert!(auth.login("lee", PASSWORD, ip("10.0.0.4"), t0).is_ok());
    assert!(
        auth.login("lee", PASSWORD, src, t0 + Duration::from_secs(1))
            .is_ok()
    );
}

#[test]
fn sessions_expire_when_idle_and_touch_extends_them() {
    let (auth, _, buf) = setup();
    let t0 = Instant::now();
    let (token, _) = auth.login("lee", PASSWORD, ip("10.0.0.5"), t0).unwrap();
    assert!(auth.session(&token, t0 + 15 * MIN).is_some());
    assert!(
        auth.session(&token, t0 + 30 * MIN).is_some(),
        "touched at 15 min"
    );
    assert!(auth.session(&token, t0 + 50 * MIN).is_none(), "20 min idle");
    let last = actions(&buf).pop().unwrap();
    assert_eq!(last["action"], "session_expired");
    assert_eq!(last["actor"], "dr-lee");
}

#[test]
fn sessions_end_after_max_age_even_when_used() {
    let (auth, _, _) = setup();
    let t0 = Instant::now();
    let (token, _) = auth.login("lee", PASSWORD, ip("10.0.0.6"), t0).unwrap();
    let mut t = t0;
    for _ in 0..71 {
        t += 10 * MIN;
        assert!(auth.session(&token, t).is_some());
    }
    assert!(auth.session(&token, t0 + 12 * 60 * MIN).is_none());
}

#[test]
fn logout_and_disabling_end_sessions() {
    let (auth, dir, buf) = setup();
    let t0 = Instant::now();
    let (a, _) = auth.login("lee", PASSWORD, ip("10.0.0.7"), t0).unwrap();
    let (b, _) = auth.login("lee", PASSWORD, ip("10.0.0.7"), t0).unwrap();
    assert_eq!(auth.logout(&a).unwrap().clinician.as_str(), "dr-lee");
    assert!(auth.session(&a, t0).is_none());
    assert!(auth.logout(&a).is_none());
    assert_eq!(actions(&buf).pop().unwrap()["action"], "logout");
    assert!(auth.session(&b, t0).is_some());

    let lee = ClinicianId::new("dr-lee").unwrap();
    dir.set_enabled(&TenantId::new("north").unwrap(), &lee, false)
        .unwrap();
    // Even without end_sessions_of, a disabled account's session is refused...
    assert!(auth.session(&b, t0).is_none());
    // ...and end_sessions_of removes them outright.
    dir.set_enabled(&TenantId::new("north").unwrap(), &lee, true)
        .unwrap();
    let (c, _) = auth.login("lee", PASSWORD, ip("10.0.0.7"), t0).unwrap();
    assert_eq!(auth.end_sessions_of(&lee), 1);
    assert!(auth.session(&c, t0).is_none());
}

#[test]
fn new_account_passwords_follow_the_policy() {
    assert!(matches!(
        Auth::hash_new_password("short"),
        Err(AuthError::Invalid(_))
    ));
    assert!(matches!(
        Auth::hash_new_password("elevenchars"),
        Err(AuthError::Invalid(_))
    ));
    let phc = Auth::hash_new_password("twelve chars").unwrap();
    assert!(password::verify_password(&phc, "twelve chars"));
    assert!(matches!(
        Auth::hash_new_password(&"x".repeat(MAX_PASSWORD_BYTES + 1)),
        Err(AuthError::Invalid(_))
    ));
}
