//! Client ⇄ signaling messages (patients, clinicians, guests) on `/ws`.

use serde::{Deserialize, Serialize};

/// One intake question of a waiting room, shown to patients before they join.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IntakeQuestion {
    /// Stable key of the question within its room (answers refer to it).
    pub id: String,
    /// The question as shown to the patient.
    pub label: String,
    /// Whether an answer is needed to join.
    #[serde(default)]
    pub required: bool,
}
