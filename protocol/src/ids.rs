//! Newtype identifiers. Public signatures never take a bare `String` id.
//!
//! Ids are opaque, short, printable strings: 1–64 characters from
//! `[A-Za-z0-9._-]`. [`FromStr`](std::str::FromStr) and deserialisation enforce
//! that, so an id taken from the network is always safe to log and to use as a
//! map key.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};

/// Longest accepted id, in bytes.
pub const MAX_ID_LEN: usize = 64;

/// Why a string is not a valid id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// The string is empty.
    #[error("id is empty")]
    Empty,
    /// The string is longer than [`MAX_ID_LEN`].
    #[error("id is longer than {MAX_ID_LEN} characters")]
    TooLong,
    /// The string holds a character outside `[A-Za-z0-9._-]`.
    #[error("id may only contain letters, digits, '.', '_' and '-'")]
    BadChar,
}

/// Checks that `s` is a well-formed id.
pub fn validate_id(s: &str) -> Result<(), IdError> {
    if s.is_empty() {
        return Err(IdError::Empty);
    }
    if s.len() > MAX_ID_LEN {
        return Err(IdError::TooLong);
    }
    if !s
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        return Err(IdError::BadChar);
    }
    Ok(())
}

macro_rules! id_type {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Creates the id, checking its form.
            pub fn new(s: impl Into<String>) -> Result<Self, IdError> {
                let s = s.into();
                validate_id(&s)?;
                Ok(Self(s))
            }

            /// A fresh random id (128 bits, hex), for ids the system assigns.
            pub fn random() -> Self {
                Self(crate::ids::random_hex128())
            }

            /// The id as a string slice.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0)
            }
        }

        impl std::str::FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, IdError> {
                Self::new(s)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                Self::new(s).map_err(serde::de::Error::custom)
            }
        }
    };
}

id_type!(
    /// An organisation (tenant). Nothing crosses from one tenant to another.
    TenantId
);
id_type!(
    /// A waiting room or a call room. Unique within the whole deployment.
    RoomId
);
id_type!(
    /// One participant (patient, clinician, guest) in a room or queue.
    ParticipantId
);
id_type!(
    /// A relay node.
    NodeId
);
id_type!(
    /// A clinician or admin account.
    ClinicianId
);
id_type!(
    /// A region name (e.g. `eu-west`), used by placement.
    Region
);

/// 128 random bits as 32 lowercase hex characters.
pub(crate) fn random_hex128() -> String {
    use std::fmt::Write;
    let bytes: [u8; 16] = random_bytes();
    let mut s = String::with_capacity(32);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// Random bytes from the OS, via std's hasher seeds mixed through SHA-256.
///
/// The protocol crate stays free of an RNG dependency; ids need uniqueness,
/// not secrecy (secrets such as tokens are made by `signaling` with `rand`).
fn random_bytes() -> [u8; 16] {
    use sha2::{Digest, Sha256};
    use std::collections::hash_map::RandomState;
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = Sha256::new();
    for _ in 0..2 {
        let mut hasher = RandomState::new().build_hasher();
        hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
        h.update(hasher.finish().to_le_bytes());
    }
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    h.update(t.to_le_bytes());
    let out = h.finalize();
    let mut b = [0u8; 16];
    b.copy_from_slice(&out[..16]);
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_plain_ids_and_rejects_others() {
        assert!(RoomId::new("room-1.a_b").is_ok());
        assert_eq!(RoomId::new(""), Err(IdError::Empty));
        assert_eq!(RoomId::new("a".repeat(65)), Err(IdError::TooLong));
        assert_eq!(RoomId::new("a b"), Err(IdError::BadChar));
        assert_eq!(RoomId::new("<script>"), Err(IdError::BadChar));
    }

    #[test]
    fn deserialising_checks_the_form() {
        let ok: TenantId = serde_json::from_str("\"acme\"").unwrap();
        assert_eq!(ok.as_str(), "acme");
        assert!(serde_json::from_str::<TenantId>("\"a/b\"").is_err());
    }

    #[test]
    fn random_ids_differ() {
        let a = ParticipantId::random();
        let b = ParticipantId::random();
        assert_ne!(a, b);
        assert_eq!(a.as_str().len(), 32);
    }
}
