//! Parsing a client frame into a [`ClientToSignaling`], classifying failures
//! into the stable error codes clients see.

use std::borrow::Cow;

use serde::Deserialize;

use super::{ClientToSignaling, ErrorCode};

/// Why a frame is not a valid client message. `message` is safe to send back
/// to the sender; it may quote the sender's own input, so never log it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code:?}: {message}")]
pub struct ParseError {
    /// [`ErrorCode::BadJson`], [`ErrorCode::UnknownType`] or [`ErrorCode::BadRequest`].
    pub code: ErrorCode,
    /// What was wrong.
    pub message: String,
}

/// Only the tag, to classify a frame that did not parse as a message.
#[derive(Deserialize)]
struct Probe<'a> {
    #[serde(rename = "type", borrow, default)]
    kind: Option<Cow<'a, str>>,
}

impl ClientToSignaling {
    /// Parses one text frame.
    ///
    /// - not JSON, or not an object → [`ErrorCode::BadJson`]
    /// - no string `type`, or known type with bad fields → [`ErrorCode::BadRequest`]
    /// - a `type` that names no message → [`ErrorCode::UnknownType`]
    pub fn parse(text: &str) -> Result<Self, ParseError> {
        let err = match serde_json::from_str::<Self>(text) {
            Ok(msg) => return Ok(msg),
            Err(e) => e,
        };
        let fail = |code, message: String| Err(ParseError { code, message });
        match serde_json::from_str::<Probe<'_>>(text) {
            Err(e) if e.is_syntax() || e.is_eof() => {
                fail(ErrorCode::BadJson, format!("malformed JSON: {e}"))
            }
            Err(_) => fail(
                ErrorCode::BadJson,
                "expected a JSON object with a string \"type\" field".into(),
            ),
            Ok(Probe { kind: None }) => {
                fail(ErrorCode::BadRequest, "missing the \"type\" field".into())
            }
            Ok(Probe { kind: Some(kind) }) if !Self::TYPES.contains(&kind.as_ref()) => {
                let mut shown: String = kind.chars().take(40).collect();
                if shown.len() < kind.len() {
                    shown.push('…');
                }
                fail(
                    ErrorCode::UnknownType,
                    format!("unknown message type {shown:?}"),
                )
            }
            Ok(Probe { kind: Some(kind) }) => fail(
                ErrorCode::BadRequest,
                format!("invalid \"{kind}\" message: {err}"),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::Role;

    fn code(text: &str) -> ErrorCode {
        ClientToSignaling::parse(text).unwrap_err().code
    }

    #[test]
    fn good_messages_parse() {
        let m = ClientToSignaling::parse(r#"{"type":"hello","version":1,"role":"patient"}"#);
        assert_eq!(
            m,
            Ok(ClientToSignaling::Hello {
                version: 1,
                role: Role::Patient,
                session: None,
                region: None
            })
        );
        assert_eq!(
            ClientToSignaling::parse(r#"{"type":"leave"}"#),
            Ok(ClientToSignaling::Leave)
        );
    }

    #[test]
    fn failures_are_classified() {
        assert_eq!(code("{not json"), ErrorCode::BadJson);
        assert_eq!(code(""), ErrorCode::BadJson);
        assert_eq!(code("[1,2]"), ErrorCode::BadJson);
        assert_eq!(code("\"hello\""), ErrorCode::BadJson);
        assert_eq!(code(r#"{"type":42}"#), ErrorCode::BadJson);
        assert_eq!(code(r#"{"version":1}"#), ErrorCode::BadRequest);
        assert_eq!(
            code(r#"{"type":"launch_missiles"}"#),
            ErrorCode::UnknownType
        );
        assert_eq!(code(r#"{"type":"admit"}"#), ErrorCode::BadRequest);
        assert_eq!(
            code(r#"{"type":"admit","participant":"../etc"}"#),
            ErrorCode::BadRequest
        );
        assert_eq!(
            code(r#"{"type":"hello","version":"1","role":"patient"}"#),
            ErrorCode::BadRequest
        );
    }

    #[test]
    fn every_listed_type_is_known_to_serde() {
        for t in ClientToSignaling::TYPES {
            let e = ClientToSignaling::parse(&format!(r#"{{"type":"{t}","x":[]}}"#));
            if let Err(e) = e {
                assert_ne!(e.code, ErrorCode::UnknownType, "{t}");
            }
        }
    }

    #[test]
    fn unknown_type_message_is_bounded() {
        let long = "x".repeat(10_000);
        let e = ClientToSignaling::parse(&format!(r#"{{"type":"{long}"}}"#)).unwrap_err();
        assert!(e.message.len() < 100);
    }
}
