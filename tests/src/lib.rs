//! End-to-end test support: a [`cluster::TestCluster`] of real `signaling` and `relay`
//! processes on 127.0.0.1, and [`client::TestClient`]s (patients, clinicians) that
//! speak the signaling protocol and exchange real media (webrtc-rs) with the relays.
//!
//! Tests using it open WebRTC sockets: run them inside the loopback-only network
//! namespace (`scripts/test`; see /work/shared/ENVIRONMENT.md).
#![forbid(unsafe_code)]
// webrtc-rs futures are large (~20 KiB); boxing each would only add noise in test code.
#![allow(clippy::large_futures)]

pub mod client;
pub mod cluster;
pub mod directory;
pub mod http;
pub mod media;
pub mod process;
pub mod redis;
pub mod scenario;
pub mod stats;
pub mod whip;
