//! Anteroom signaling service: virtual waiting rooms, clinician accounts and
//! (later) relay placement. `main.rs` only parses [`config::Config`] and calls
//! [`server::run`].
#![forbid(unsafe_code)]

pub mod account_api;
pub mod audit;
pub mod auth;
pub mod calls;
pub mod check;
pub mod clock;
pub mod cluster;
pub mod config;
pub mod csrf;
pub mod directory;
pub mod error;
pub mod fuzzing;
pub mod http;
pub mod listen;
pub mod lobby;
pub mod logging;
pub mod metrics;
pub mod relays;
pub mod server;
pub mod store;
pub mod tls;
pub mod web;
pub mod ws;

pub use error::Error;
