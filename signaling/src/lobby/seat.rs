//! A patient's seat: who they are (in memory only), where they wait, their
//! connection and resume token, and the checks on what they send to join.

use std::time::Instant;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use protocol::client::{IntakeAnswers, IntakeQuestion};
use protocol::{ClinicianId, ParticipantId, RoomId, Sensitive, TenantId};
use sha2::{Digest, Sha256};

use super::ConnId;

/// Longest display name accepted, in characters.
pub const MAX_NAME_CHARS: usize = 100;
/// Longest intake answer accepted, in characters.
pub const MAX_ANSWER_CHARS: usize = 2000;
/// Longest deny message accepted, in characters.
pub const MAX_DENY_MESSAGE_CHARS: usize = 500;

/// SHA-256 of a resume token: the lobby keys seats by it, never by the token.
pub(crate) type TokenHash = [u8; 32];

/// Where a seat is.
#[derive(Debug, Clone)]
pub(crate) enum SeatState {
    /// In its room's queue.
    Waiting,
    /// In a consultation.
    Admitted {
        clinician: ClinicianId,
        clinician_name: String,
    },
}

/// One patient's seat. Patient data lives here only, and goes with the seat.
#[derive(Debug)]
pub(crate) struct Seat {
    pub participant: ParticipantId,
    pub tenant: TenantId,
    pub room: RoomId,
    pub display_name: Sensitive<String>,
    pub intake: Sensitive<IntakeAnswers>,
    pub token_hash: TokenHash,
    /// When the patient joined (clinicians see the wait since then).
    pub joined_at: Instant,
    /// When the seat entered its current room's queue (for service times).
    pub queued_at: Instant,
    pub state: SeatState,
    /// The patient's connection; `None` during the grace period.
    pub conn: Option<ConnId>,
    /// When the seat is released if the patient does not resume.
    pub grace_until: Option<Instant>,
    /// The last (position, estimate) sent, to push only changes.
    pub last_status: Option<(Option<u32>, Option<u64>)>,
    /// Admitted: the call the seat is in.
    pub call: Option<RoomId>,
    /// Invitees: the call they were invited to.
    pub invited_to: Option<RoomId>,
}

/// A fresh resume token (256 random bits, base64url) and its hash.
pub(crate) fn new_token() -> (String, TokenHash) {
    let bytes: [u8; 32] = rand::random();
    let token = URL_SAFE_NO_PAD.encode(bytes);
    let hash = hash_token(&token);
    (token, hash)
}

/// The key a token is stored under.
pub(crate) fn hash_token(token: &str) -> TokenHash {
    Sha256::digest(token.as_bytes()).into()
}

/// Checks a display name: 1–100 characters after trimming, no control characters.
pub(crate) fn check_name(name: &str) -> Result<String, &'static str> {
    let name = name.trim();
    if name.is_empty() {
        return Err("the display name is empty");
    }
    if name.chars().count() > MAX_NAME_CHARS {
        return Err("the display name is longer than 100 characters");
    }
    if name.chars().any(char::is_control) {
        return Err("the display name contains control characters");
    }
    Ok(name.to_owned())
}

/// Checks intake answers against the room's questions: only known questions,
/// every required one answered, no answer longer than 2000 characters.
pub(crate) fn check_intake(
    questions: &[IntakeQuestion],
    answers: &IntakeAnswers,
) -> Result<(), String> {
    for (id, answer) in answers {
        if !questions.iter().any(|q| &q.id == id) {
            let mut shown: String = id.chars().take(40).collect();
            if shown.len() < id.len() {
                shown.push('…');
            }
            return Err(format!("unknown intake question {shown:?}"));
        }
        if answer.chars().count() > MAX_ANSWER_CHARS {
            return Err(format!(
                "the answer to {id:?} is longer than {MAX_ANSWER_CHARS} characters"
            ));
        }
    }
    for q in questions.iter().filter(|q| q.required) {
        if answers.get(&q.id).is_none_or(|a| a.trim().is_empty()) {
            return Err(format!("the intake question {:?} needs an answer", q.id));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(id: &str, required: bool) -> IntakeQuestion {
        IntakeQuestion {
            id: id.into(),
            label: id.into(),
            required,
        }
    }

    #[test]
    fn tokens_are_long_random_and_hashed() {
        let (a, ha) = new_token();
        let (b, hb) = new_token();
        assert_ne!(a, b);
        assert_ne!(ha, hb);
        assert!(a.len() >= 43, "256 bits in base64url");
        assert_eq!(hash_token(&a), ha);
    }

    #[test]
    fn names_are_checked() {
        assert_eq!(check_name("  Ann  "), Ok("Ann".into()));
        assert!(check_name("   ").is_err());
        assert!(check_name(&"x".repeat(101)).is_err());
        assert!(check_name("a\u{7}b").is_err());
    }

    #[test]
    fn intake_is_checked_against_the_questions() {
        let qs = [q("reason", true), q("dob", false)];
        let ok: IntakeAnswers = [("reason".to_owned(), "cough".to_owned())].into();
        assert!(check_intake(&qs, &ok).is_ok());
        assert!(check_intake(&qs, &IntakeAnswers::new()).is_err());
        let blank: IntakeAnswers = [("reason".to_owned(), "  ".to_owned())].into();
        assert!(check_intake(&qs, &blank).is_err());
        let unknown: IntakeAnswers = [
            ("reason".to_owned(), "x".to_owned()),
            ("ssn".to_owned(), "1".to_owned()),
        ]
        .into();
        assert!(check_intake(&qs, &unknown).is_err());
        let long: IntakeAnswers = [("reason".to_owned(), "x".repeat(2001))].into();
        assert!(check_intake(&qs, &long).is_err());
    }
}
