//! Tests of the TOTP rules: RFC 6238 vectors, the skew window, replay
//! rejection, enrolment and the login ticket (through `Auth`).

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::*;
use crate::audit::Audit;
use crate::auth::{Auth, AuthError, AuthSettings};
use crate::directory::Directory;

/// RFC 6238 appendix B's SHA-1 seed.
const RFC_SECRET: &[u8] = b"12345678901234567890";

#[test]
fn rfc_6238_sha1_vectors_truncated_to_six_digits() {
    // Appendix B lists 8 digits; the last 6 of each are the 6-digit code.
    for (t, eight) in [
        (59, "94287082"),
        (1_111_111_109, "07081804"),
        (1_234_567_890, "89005924"),
        (2_000_000_000, "69279037"),
    ] {
        assert_eq!(code_at(RFC_SECRET, t), eight[2..], "t={t}");
    }
}

#[test]
fn accepts_one_step_either_side_and_no_further() {
    let t = 1_234_567_890;
    let step = t / STEP_SECS;
    assert_eq!(
        check_code(RFC_SECRET, &code_at(RFC_SECRET, t), t, None),
        Ok(step)
    );
    assert_eq!(
        check_code(RFC_SECRET, &code_at(RFC_SECRET, t - 30), t, None),
        Ok(step - 1)
    );
    assert_eq!(
        check_code(RFC_SECRET, &code_at(RFC_SECRET, t + 30), t, None),
        Ok(step + 1)
    );
    for off in [-90i64, -60, 60, 90] {
        let code = code_at(RFC_SECRET, t.checked_add_signed(off).unwrap());
        assert_eq!(
            check_code(RFC_SECRET, &code, t, None),
            Err(CodeError::Wrong)
        );
    }
    for junk in ["", "12345", "1234567", "+12345", "abcdef", "１２３４５６"] {
        assert_eq!(check_code(RFC_SECRET, junk, t, None), Err(CodeError::Wrong));
    }
}

#[test]
fn a_used_step_and_older_ones_are_replays() {
    let t = 1_234_567_890;
    let step = t / STEP_SECS;
    let now = code_at(RFC_SECRET, t);
    assert_eq!(
        check_code(RFC_SECRET, &now, t, Some(step)),
        Err(CodeError::Replayed)
    );
    assert_eq!(
        check_code(RFC_SECRET, &code_at(RFC_SECRET, t - 30), t, Some(step)),
        Err(CodeError::Replayed)
    );
    assert_eq!(
        check_code(RFC_SECRET, &code_at(RFC_SECRET, t + 30), t, Some(step)),
        Ok(step + 1)
    );
}

#[test]
fn store_consumes_each_step_once() {
    let store = TotpStore::default();
    let who = ClinicianId::new("dr-x").unwrap();
    let t0 = Instant::now();
    let e = store.start(&who, "x@org", t0);
    assert!(!store.enabled(&who), "not active before confirmation");
    assert!(
        e.otpauth_uri
            .starts_with("otpauth://totp/Anteroom:x%40org?secret=")
    );
    assert!(e.otpauth_uri.contains("issuer=Anteroom"));
    assert!(!format!("{e:?}").contains(&e.secret_base32));
    let secret = secret_from_base32(&e.secret_base32).unwrap();
    assert_eq!(secret.len(), 20);
    let unix = 1_800_000_000;
    assert_eq!(
        store.confirm(&who, "000000x", unix, t0),
        Err(CodeError::Wrong)
    );
    assert_eq!(
        store.confirm(&who, &code_at(&secret, unix), unix, t0),
        Ok(true)
    );
    assert!(store.enabled(&who));
    // The confirming step is used; the next one logs in once.
    let again = store.check_login(&who, &code_at(&secret, unix), unix);
    assert_eq!(again, Some(Err(CodeError::Replayed)));
    let next = store.check_login(&who, &code_at(&secret, unix + 30), unix);
    assert_eq!(next, Some(Ok(unix / 30 + 1)));
    let replay = store.check_login(&who, &code_at(&secret, unix + 30), unix + 31);
    assert_eq!(replay, Some(Err(CodeError::Replayed)));
    assert!(store.reset(&who));
    assert!(!store.enabled(&who));
    assert_eq!(store.check_login(&who, "123456", unix), None);
}

#[test]
fn enrolment_expires_and_gives_up_after_five_wrong_codes() {
    let store = TotpStore::default();
    let who = ClinicianId::new("dr-x").unwrap();
    let t0 = Instant::now();
    let e = store.start(&who, "x", t0);
    let secret = secret_from_base32(&e.secret_base32).unwrap();
    let unix = 1_800_000_000;
    let late = t0 + ENROLMENT_TTL;
    assert_eq!(
        store.confirm(&who, &code_at(&secret, unix), unix, late),
        Ok(false)
    );

    let e = store.start(&who, "x", t0);
    let secret = secret_from_base32(&e.secret_base32).unwrap();
    for _ in 0..5 {
        assert_eq!(
            store.confirm(&who, "999999a", unix, t0),
            Err(CodeError::Wrong)
        );
    }
    assert_eq!(
        store.confirm(&who, &code_at(&secret, unix), unix, t0),
        Ok(false)
    );
    assert!(!store.enabled(&who));
}

const HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$BwcHBwcHBwcHBwcHBwcHBw$nRjsqwC21oaxfa28uB5X6UeYpp0Qw2/e21WOmvTeXIc";
const PASSWORD: &str = "hunter2hunter2";

fn enrolled_auth(unix: u64) -> (Auth, Vec<u8>, crate::audit::AuditBuffer) {
    let toml = format!(
        "[[tenant]]\nid = \"north\"\nname = \"North\"\n[[clinician]]\nid = \"dr-lee\"\n\
         tenant = \"north\"\nusername = \"lee\"\ndisplay_name = \"Dr Lee\"\npassword_hash = \"{HASH}\"\n"
    );
    let dir = Arc::new(Directory::from_toml_str(&toml).unwrap());
    let (audit, buf) = Audit::memory();
    let auth = Auth::new(dir, audit, AuthSettings::default());
    let who = ClinicianId::new("dr-lee").unwrap();
    let e = auth.totp.start(&who, "lee", Instant::now());
    let secret = secret_from_base32(&e.secret_base32).unwrap();
    assert_eq!(
        auth.totp
            .confirm(&who, &code_at(&secret, unix), unix, Instant::now()),
        Ok(true)
    );
    (auth, secret, buf)
}

fn ticket_of(r: Result<(String, crate::auth::SessionInfo), AuthError>) -> String {
    match r {
        Err(AuthError::TotpRequired { ticket }) => ticket.expose().clone(),
        other => panic!("expected totp_required, got {other:?}"),
    }
}

#[test]
fn login_needs_the_code_and_a_wrong_code_counts_as_a_failure() {
    let unix = 1_800_000_000;
    let (auth, secret, buf) = enrolled_auth(unix);
    let src: IpAddr = "10.0.0.1".parse().unwrap();
    let t0 = Instant::now();
    let ticket = ticket_of(auth.login("lee", PASSWORD, src, t0));
    assert_eq!(
        auth.login_totp(&ticket, "000000", src, t0, unix),
        Err(AuthError::InvalidCredentials)
    );
    // Another address cannot use the ticket (and that spends it).
    let other: IpAddr = "10.0.0.2".parse().unwrap();
    let good = code_at(&secret, unix + 30);
    assert_eq!(
        auth.login_totp(&ticket, &good, other, t0, unix),
        Err(AuthError::LoginExpired)
    );
    let ticket = ticket_of(auth.login("lee", PASSWORD, src, t0));
    let (token, info) = auth.login_totp(&ticket, &good, src, t0, unix).unwrap();
    assert_eq!(info.clinician.as_str(), "dr-lee");
    assert!(auth.session(&token, t0).is_some());
    // The ticket is single use.
    assert_eq!(
        auth.login_totp(&ticket, &good, src, t0, unix),
        Err(AuthError::LoginExpired)
    );
    let lines = buf.lines().join("\n");
    assert!(lines.contains(r#""detail":"bad_totp""#), "{lines}");
    assert!(!lines.contains(&ticket) && !lines.contains(&good));
}

#[test]
fn wrong_codes_are_throttled_like_wrong_passwords() {
    let unix = 1_800_000_000;
    let (auth, secret, _) = enrolled_auth(unix);
    let src: IpAddr = "10.0.0.1".parse().unwrap();
    let t0 = Instant::now();
    let ticket = ticket_of(auth.login("lee", PASSWORD, src, t0));
    // The password attempt is still counted: 4 more wrong codes reach the
    // 5 free failures; the next attempt must wait.
    for i in 0..4 {
        assert_eq!(
            auth.login_totp(&ticket, "000000", src, t0, unix),
            Err(AuthError::InvalidCredentials),
            "wrong code {i}"
        );
    }
    let good = code_at(&secret, unix + 30);
    assert!(matches!(
        auth.login_totp(&ticket, &good, src, t0, unix),
        Err(AuthError::Throttled { .. })
    ));
    assert!(matches!(
        auth.login("lee", PASSWORD, src, t0),
        Err(AuthError::Throttled { .. })
    ));
    // After the back-off, the right code still works (the ticket survived).
    let later = t0 + Duration::from_secs(2);
    assert!(auth.login_totp(&ticket, &good, src, later, unix).is_ok());
}
