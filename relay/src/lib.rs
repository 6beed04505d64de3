//! Anteroom relay: an SFU node built on str0m.
//!
//! - [`sfu`]: the sans-IO core (rooms, participants, tracks, forwarding). No
//!   sockets, no tokio, no clock: time and datagrams are arguments.
//! - the driver, control and config modules: sockets, timers, the control
//!   connection to signaling, and configuration.
#![forbid(unsafe_code)]

pub mod sfu;
