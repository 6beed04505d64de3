//! Wire types shared by every Anteroom component.
//!
//! - [`ids`]: newtype identifiers (tenant, room, participant, node, …).
//! - [`sensitive`]: a wrapper for patient data whose `Debug` redacts it.
//! - [`grant`]: the signed, short-lived permission to join a room on a relay.
//! - [`control`]: relay ⇄ signaling messages on the control WebSocket.
//!
//! Every message is JSON with a `"type"` tag in snake_case. Golden fixtures in
//! `protocol/fixtures/` pin the exact wire format; `docs/protocol.md` describes it.
#![forbid(unsafe_code)]

pub mod client;
pub mod control;
pub mod grant;
pub mod ids;
pub mod sensitive;

pub use grant::{Grant, GrantError, GrantRole};
pub use ids::{ClinicianId, NodeId, ParticipantId, Region, RoomId, TenantId};
pub use sensitive::Sensitive;

/// Version of the wire protocol, exchanged in the first message of every
/// connection (client `hello`, relay `register`). Bumped on incompatible changes.
pub const PROTOCOL_VERSION: u32 = 1;
