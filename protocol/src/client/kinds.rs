//! Per-message metadata of [`ClientToSignaling`]: its `type` tag, which role
//! may send it, and the request id / patient / call it refers to.

use super::{ClientToSignaling, RequestId, Role};
use crate::ids::{ParticipantId, RoomId};

impl ClientToSignaling {
    /// Every `type` tag this enum accepts (unknown tags get `unknown_type`).
    pub const TYPES: &'static [&'static str] = &[
        "hello",
        "get_room",
        "join",
        "resume",
        "leave",
        "subscribe",
        "get_intake",
        "admit",
        "deny",
        "transfer",
        "return_to_queue",
        "end_consultation",
        "call_offer",
        "call_answer",
        "call_candidate",
        "call_ice_failed",
        "call_mute",
        "call_leave",
        "create_invite",
        "join_invite",
        "connection_test_start",
        "connection_test_stop",
    ];

    /// The message's `type` tag.
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::Hello { .. } => "hello",
            Self::GetRoom { .. } => "get_room",
            Self::Join { .. } => "join",
            Self::Resume { .. } => "resume",
            Self::Leave => "leave",
            Self::Subscribe { .. } => "subscribe",
            Self::GetIntake { .. } => "get_intake",
            Self::Admit { .. } => "admit",
            Self::Deny { .. } => "deny",
            Self::Transfer { .. } => "transfer",
            Self::ReturnToQueue { .. } => "return_to_queue",
            Self::EndConsultation { .. } => "end_consultation",
            Self::CallOffer { .. } => "call_offer",
            Self::CallAnswer { .. } => "call_answer",
            Self::CallCandidate { .. } => "call_candidate",
            Self::CallIceFailed { .. } => "call_ice_failed",
            Self::CallMute { .. } => "call_mute",
            Self::CallLeave { .. } => "call_leave",
            Self::CreateInvite { .. } => "create_invite",
            Self::JoinInvite { .. } => "join_invite",
            Self::ConnectionTestStart { .. } => "connection_test_start",
            Self::ConnectionTestStop { .. } => "connection_test_stop",
        }
    }

    /// Which role may send this message; `None` for `hello` (anyone, once)
    /// and for the `call_*` messages (either role, while in that call).
    pub fn sender_role(&self) -> Option<Role> {
        match self {
            Self::Hello { .. }
            | Self::CallOffer { .. }
            | Self::CallAnswer { .. }
            | Self::CallCandidate { .. }
            | Self::CallIceFailed { .. }
            | Self::CallMute { .. }
            | Self::CallLeave { .. } => None,
            Self::GetRoom { .. }
            | Self::Join { .. }
            | Self::Resume { .. }
            | Self::Leave
            | Self::JoinInvite { .. }
            | Self::ConnectionTestStart { .. }
            | Self::ConnectionTestStop { .. } => Some(Role::Patient),
            _ => Some(Role::Clinician),
        }
    }

    /// Whether a connection of `role` may send this message (after `hello`).
    pub fn allowed_for(&self, role: Role) -> bool {
        match self {
            Self::Hello { .. } => false,
            _ => self.sender_role().is_none_or(|r| r == role),
        }
    }

    /// The client's request id, if the message carries one.
    pub fn request(&self) -> Option<RequestId> {
        match self {
            Self::Subscribe { request }
            | Self::GetIntake { request, .. }
            | Self::Admit { request, .. }
            | Self::Deny { request, .. }
            | Self::Transfer { request, .. }
            | Self::ReturnToQueue { request, .. }
            | Self::EndConsultation { request, .. }
            | Self::CreateInvite { request, .. }
            | Self::ConnectionTestStart { request } => *request,
            _ => None,
        }
    }

    /// The patient a clinician message acts on.
    pub fn participant(&self) -> Option<&ParticipantId> {
        match self {
            Self::GetIntake { participant, .. }
            | Self::Admit { participant, .. }
            | Self::Deny { participant, .. }
            | Self::Transfer { participant, .. }
            | Self::ReturnToQueue { participant, .. }
            | Self::EndConsultation { participant, .. } => Some(participant),
            _ => None,
        }
    }

    /// The call a call message refers to.
    pub fn call(&self) -> Option<&RoomId> {
        match self {
            Self::CallOffer { call, .. }
            | Self::CallAnswer { call, .. }
            | Self::CallCandidate { call, .. }
            | Self::CallIceFailed { call }
            | Self::CallMute { call, .. }
            | Self::CallLeave { call }
            | Self::ConnectionTestStop { call }
            | Self::CreateInvite { call, .. } => Some(call),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sensitive::Sensitive;

    #[test]
    fn call_messages_are_for_either_role_and_invites_split_by_role() {
        let call = RoomId::new("c-1").unwrap();
        let offer = ClientToSignaling::CallOffer {
            call: call.clone(),
            sdp: String::new(),
        };
        assert!(offer.allowed_for(Role::Patient) && offer.allowed_for(Role::Clinician));
        assert_eq!(offer.call(), Some(&call));
        let create = ClientToSignaling::CreateInvite {
            call,
            request: Some(3),
        };
        assert!(!create.allowed_for(Role::Patient) && create.allowed_for(Role::Clinician));
        assert_eq!(create.request(), Some(3));
        let join = ClientToSignaling::JoinInvite {
            token: Sensitive::new(String::new()),
            display_name: Sensitive::new(String::new()),
        };
        assert!(join.allowed_for(Role::Patient) && !join.allowed_for(Role::Clinician));
    }
}
