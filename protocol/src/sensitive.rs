//! [`Sensitive`]: patient data (display names, intake answers) in a wrapper
//! whose `Debug` and `Display` never show the value, so it cannot reach a log
//! by accident. Serialisation is transparent: the wire carries the value.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A value that must never be logged. `Debug` prints `[redacted]`.
#[derive(Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Sensitive<T>(pub T);

impl<T> Sensitive<T> {
    /// Wraps a value.
    pub fn new(value: T) -> Self {
        Self(value)
    }

    /// The value, for the few places that must show it to an authorised user.
    pub fn expose(&self) -> &T {
        &self.0
    }

    /// Unwraps the value.
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> fmt::Debug for Sensitive<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_redacts_and_serde_is_transparent() {
        let s = Sensitive::new("Jane Doe".to_string());
        assert_eq!(format!("{s:?}"), "[redacted]");
        assert_eq!(serde_json::to_string(&s).unwrap(), "\"Jane Doe\"");
        let back: Sensitive<String> = serde_json::from_str("\"Jane Doe\"").unwrap();
        assert_eq!(back.expose(), "Jane Doe");
    }
}
