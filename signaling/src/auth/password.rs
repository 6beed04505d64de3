//! Password hashing: Argon2id PHC strings, the production cost floor that
//! every stored hash must meet, and verification (including the dummy verify
//! that makes unknown usernames cost as much as known ones).
//!
//! Hashing and verifying cost ~50 ms of CPU at the production parameters:
//! async callers run them on `tokio::task::spawn_blocking`.

use argon2::password_hash::SaltString;
use argon2::{Algorithm, Argon2, Params, PasswordHash, PasswordHasher, PasswordVerifier, Version};

use super::AuthError;

/// Argon2id cost parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HashParams {
    /// Memory cost in KiB.
    pub m_kib: u32,
    /// Number of passes.
    pub t: u32,
    /// Degree of parallelism (lanes).
    pub p: u32,
}

impl HashParams {
    /// The production parameters and the floor every stored hash must meet:
    /// m = 19 MiB, t = 2, p = 1 (OWASP's Argon2id recommendation).
    pub const MINIMUM: HashParams = HashParams {
        m_kib: 19 * 1024,
        t: 2,
        p: 1,
    };

    /// The ceiling accepted from a configuration file, so a typo cannot make
    /// every login allocate gigabytes: m ≤ 1 GiB, t ≤ 16, p ≤ 16.
    pub const MAXIMUM: HashParams = HashParams {
        m_kib: 1024 * 1024,
        t: 16,
        p: 16,
    };
}

impl Default for HashParams {
    fn default() -> Self {
        Self::MINIMUM
    }
}

/// Longest password accepted anywhere, in bytes (longer input is rejected
/// before any hashing work).
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// Hashes `password` with Argon2id at the production parameters and a fresh
/// 128-bit random salt, returning the PHC string to put in the config file
/// (`password_hash = "$argon2id$v=19$m=19456,t=2,p=1$…"`).
///
/// Panics only if `password` is longer than 4 GiB.
pub fn hash_password(password: &str) -> String {
    try_hash_password(password, HashParams::default())
        .expect("Argon2id hashing with valid constant parameters cannot fail")
}

/// Hashes `password` with Argon2id at `params` (which must be at least
/// [`HashParams::MINIMUM`]).
pub fn try_hash_password(password: &str, params: HashParams) -> Result<String, AuthError> {
    if !meets(params, HashParams::MINIMUM) {
        return Err(AuthError::Hash(format!(
            "parameters {params:?} are below the minimum {:?}",
            HashParams::MINIMUM
        )));
    }
    let argon = argon2_with(params)?;
    let salt_bytes: [u8; 16] = rand::random();
    let salt = SaltString::encode_b64(&salt_bytes).map_err(|e| AuthError::Hash(e.to_string()))?;
    argon
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| AuthError::Hash(e.to_string()))
}

/// Whether `password` matches the PHC string `phc` (constant-time compare of
/// the derived key). A malformed `phc` never matches.
pub(crate) fn verify_password(phc: &str, password: &str) -> bool {
    let Ok(hash) = PasswordHash::new(phc) else {
        return false;
    };
    Argon2::default()
        .verify_password(password.as_bytes(), &hash)
        .is_ok()
}

/// Checks that `phc` is an Argon2id (v1.3) PHC string whose parameters lie
/// between [`HashParams::MINIMUM`] and [`HashParams::MAXIMUM`]; returns them.
pub fn check_password_hash(phc: &str) -> Result<HashParams, String> {
    let hash = PasswordHash::new(phc).map_err(|e| format!("not a PHC string ({e})"))?;
    match Algorithm::try_from(hash.algorithm) {
        Ok(Algorithm::Argon2id) => {}
        _ => {
            return Err(format!(
                "algorithm must be argon2id, not {}",
                hash.algorithm
            ));
        }
    }
    if hash.version != Some(Version::V0x13.into()) {
        return Err("argon2 version must be 19 (v=19)".to_owned());
    }
    if hash.salt.is_none() || hash.hash.is_none() {
        return Err("salt or hash output missing".to_owned());
    }
    let params = Params::try_from(&hash).map_err(|e| format!("bad parameters ({e})"))?;
    let got = HashParams {
        m_kib: params.m_cost(),
        t: params.t_cost(),
        p: params.p_cost(),
    };
    if !meets(got, HashParams::MINIMUM) {
        return Err(format!(
            "cost m={},t={},p={} is below the minimum m={},t={},p={}",
            got.m_kib,
            got.t,
            got.p,
            HashParams::MINIMUM.m_kib,
            HashParams::MINIMUM.t,
            HashParams::MINIMUM.p
        ));
    }
    if !meets(HashParams::MAXIMUM, got) {
        return Err(format!(
            "cost m={},t={},p={} is above the maximum m={},t={},p={}",
            got.m_kib,
            got.t,
            got.p,
            HashParams::MAXIMUM.m_kib,
            HashParams::MAXIMUM.t,
            HashParams::MAXIMUM.p
        ));
    }
    Ok(got)
}

/// Whether `a` costs at least as much as `b` in every dimension.
fn meets(a: HashParams, b: HashParams) -> bool {
    a.m_kib >= b.m_kib && a.t >= b.t && a.p >= b.p
}

fn argon2_with(params: HashParams) -> Result<Argon2<'static>, AuthError> {
    let p = Params::new(params.m_kib, params.t, params.p, None)
        .map_err(|e| AuthError::Hash(e.to_string()))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn production_defaults_meet_the_required_cost() {
        let d = HashParams::default();
        assert!(d.m_kib >= 19_456, "m must be at least 19 MiB");
        assert!(d.t >= 2);
        assert_eq!(d.p, 1);
        let phc = hash_password("correct horse battery");
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert_eq!(check_password_hash(&phc), Ok(d));
    }

    #[test]
    fn verify_accepts_the_password_and_rejects_others() {
        let phc = hash_password("correct horse battery");
        assert!(verify_password(&phc, "correct horse battery"));
        assert!(!verify_password(&phc, "correct horse batterY"));
        assert!(!verify_password("not a hash", "x"));
    }

    #[test]
    fn salts_differ() {
        assert_ne!(
            hash_password("same password"),
            hash_password("same password")
        );
    }

    #[test]
    fn weak_or_foreign_hashes_are_refused() {
        assert!(
            try_hash_password(
                "pw",
                HashParams {
                    m_kib: 1024,
                    t: 1,
                    p: 1
                }
            )
            .is_err()
        );
        let weak = "$argon2id$v=19$m=4096,t=3,p=1$c2FsdHNhbHRzYWx0$5nM1rO2oUQ/8RtU2X5rFk3IMYwlVNwzHLd8/nh+Obs4";
        assert!(
            check_password_hash(weak)
                .unwrap_err()
                .contains("below the minimum")
        );
        let argon2i = "$argon2i$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$5nM1rO2oUQ/8RtU2X5rFk3IMYwlVNwzHLd8/nh+Obs4";
        assert!(
            check_password_hash(argon2i)
                .unwrap_err()
                .contains("argon2id")
        );
        let bcrypt = "$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW";
        assert!(check_password_hash(bcrypt).is_err());
        let huge = "$argon2id$v=19$m=4194304,t=2,p=1$c2FsdHNhbHRzYWx0$5nM1rO2oUQ/8RtU2X5rFk3IMYwlVNwzHLd8/nh+Obs4";
        assert!(
            check_password_hash(huge)
                .unwrap_err()
                .contains("above the maximum")
        );
    }
}
