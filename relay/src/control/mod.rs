//! The control link to signaling: the relay dials signaling's `/control`
//! WebSocket, registers, sends a heartbeat with its load every interval,
//! answers offers through its workers and reports participants that left.
//!
//! When the connection drops (signaling restarted), the relay reconnects with
//! exponential back-off and jitter, and re-announces the rooms it still
//! carries in its new `register`. Core events that happen while disconnected
//! wait in a bounded buffer and are sent after the next registration.
//!
//! Given several signaling URLs (one per signaling node), every reconnect
//! attempt dials the next one in the list, round-robin: a dead node costs
//! one back-off delay, not the relay's link. Calls (media) go on while the
//! relay has no link; nothing in the workers depends on it.

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

/// Keeps the relay registered with signaling at one of `urls` until `stop`
/// turns true: the first URL first, then each reconnect attempt the next
/// one (round-robin). Does nothing if `urls` is empty.
pub async fn run(
    node: Arc<Node>,
    urls: Vec<String>,
    options: ControlOptions,
    mut stop: watch::Receiver<bool>,
) {
    if urls.is_empty() {
        return;
    }
    // Subscribed once, before the first connection, so events raised while
    // disconnected are kept (up to the channel's capacity) for the next session.
    let mut events = node.subscribe();
    let mut backoff = options.backoff.clone();
    for url in urls.iter().cycle() {
        let outcome = tokio::select! {
            outcome = session::run(&node, url, &options, &mut events, &mut backoff) => outcome,
            _ = stop.wait_for(|s| *s) => return,
        };
        node.set_registered(false);
        match outcome {
            Ok(()) => tracing::warn!(%url, "signaling closed the control connection"),
            Err(e) => tracing::warn!(%url, error = %e, "control connection failed"),
        }
        let delay = backoff.next_delay();
        tracing::info!(
            delay_ms = delay.as_millis() as u64,
            urls = urls.len(),
            "reconnecting to signaling"
        );
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}

pub(crate) use session::register_message;
