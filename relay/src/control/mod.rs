//! The control link to signaling: the relay dials signaling's `/control`
//! WebSocket, registers, sends a heartbeat with its load every interval,
//! answers offers through its workers and reports participants that left.
//!
//! When the connection drops (signaling restarted), the relay reconnects with
//! exponential back-off and jitter, and re-announces the rooms it still
//! carries in its new `register`. Core events that happen while disconnected
//! wait in a bounded buffer and are sent after the next registration.

mod backoff;
pub mod load;
mod session;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

pub use backoff::Backoff;

use crate::node::Node;

/// Timeouts and back-off of the control link.
#[derive(Debug, Clone)]
pub struct ControlOptions {
    /// Reconnect delays.
    pub backoff: Backoff,
    /// How long connecting plus registering may take.
    pub register_timeout: Duration,
}

impl Default for ControlOptions {
    fn default() -> Self {
        Self {
            backoff: Backoff::default(),
            register_timeout: Duration::from_secs(10),
        }
    }
}

/// Keeps the relay registered with signaling at `url` until `stop` turns true.
pub async fn run(
    node: Arc<Node>,
    url: String,
    options: ControlOptions,
    mut stop: watch::Receiver<bool>,
) {
    // Subscribed once, before the first connection, so events raised while
    // disconnected are kept (up to the channel's capacity) for the next session.
    let mut events = node.subscribe();
    let mut backoff = options.backoff.clone();
    loop {
        let outcome = tokio::select! {
            outcome = session::run(&node, &url, &options, &mut events, &mut backoff) => outcome,
            _ = stop.wait_for(|s| *s) => return,
        };
        node.set_registered(false);
        match outcome {
            Ok(()) => tracing::warn!("signaling closed the control connection"),
            Err(e) => tracing::warn!(error = %e, "control connection failed"),
        }
        let delay = backoff.next_delay();
        tracing::info!(
            delay_ms = delay.as_millis() as u64,
            "reconnecting to signaling"
        );
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}

pub(crate) use session::register_message;
