//! Loading a real relay without signaling: bench plays signaling's part of the
//! control protocol itself.
//!
//! - [`control`]: the control WebSocket endpoint relays dial into (register, offers,
//!   answers, heartbeats, renegotiation carried to the bench peer it is for);
//! - [`negotiator`]: [`RelayNegotiator`], the [`crate::peer::Negotiator`] that signs a
//!   grant per peer and sends its offer over that endpoint;
//! - [`process`]: a relay process bench starts (and stops), and the relay's CPU, memory
//!   and forwarded-packet counter read from `/proc/<pid>` and `/metrics`.

pub mod control;
pub mod negotiator;
pub mod process;

pub use control::{ControlServer, LinkCounters, RelayLink};
pub use negotiator::{RelayNegotiator, RoomOf, participant_of};
pub use process::{LocalRelay, LocalRelaySpec, Memory, default_relay_binary, memory_of};
