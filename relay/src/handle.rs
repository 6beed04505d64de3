//! Starting and stopping a relay: [`Relay::start`] gives a [`RelayHandle`]
//! (bound addresses, in-process signaling calls, drain, shutdown), and
//! [`run`] is the whole lifecycle for the binary.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use protocol::control::{Register, RelayLoad};
use protocol::{NodeId, ParticipantId, RoomId};
use tokio::sync::{broadcast, watch};
use tokio::task::JoinHandle;

use crate::config::Config;
use crate::control::{self, ControlOptions};
use crate::error::RelayError;
use crate::metrics;
use crate::node::Node;
use crate::sfu::{OfferAccepted, SfuError, SfuEvent, SfuStats};

/// Entry point to start a relay in-process.
#[derive(Debug)]
pub struct Relay;

/// A running relay. Dropping it stops the relay at once.
#[derive(Debug)]
pub struct RelayHandle {
    node: Arc<Node>,
    udp_addrs: Vec<SocketAddr>,
    metrics_addr: SocketAddr,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Relay {
    /// Validates `config`, binds the worker UDP sockets and the metrics
    /// listener, starts the workers, and (unless standalone) the control
    /// link to signaling. Must run inside a tokio runtime.
    pub async fn start(config: Config) -> Result<RelayHandle, RelayError> {
        Self::start_with(config, ControlOptions::default()).await
    }

    /// [`Relay::start`] with explicit control-link timeouts and back-off.
    pub async fn start_with(
        config: Config,
        options: ControlOptions,
    ) -> Result<RelayHandle, RelayError> {
        let valid = config.validate()?;
        let listener = tokio::net::TcpListener::bind(valid.config.metrics_listen)
            .await
            .map_err(|e| {
                RelayError::io(
                    format!("binding metrics to {}", valid.config.metrics_listen),
                    e,
                )
            })?;
        let metrics_addr = listener
            .local_addr()
            .map_err(|e| RelayError::io("reading the metrics address", e))?;
        let signaling = valid.signaling.clone();
        let node = Arc::new(Node::start(valid)?);
        let udp_addrs = node.workers().addrs();
        let (stop, stopped) = watch::channel(false);
        let mut tasks = Vec::new();

        let mut metrics_stop = stopped.clone();
        let metrics_node = Arc::clone(&node);
        tasks.push(tokio::spawn(async move {
            let shutdown = async move {
                let _ = metrics_stop.wait_for(|s| *s).await;
            };
            if let Err(e) = metrics::serve(listener, metrics_node, shutdown).await {
                tracing::error!(error = %e, "metrics listener failed");
            }
        }));
        if !signaling.is_empty() {
            tasks.push(tokio::spawn(control::run(
                Arc::clone(&node),
                signaling,
                options,
                stopped,
            )));
        }
        tracing::info!(
            node = %node.config().config.node_id,
            udp = ?udp_addrs,
            metrics = %metrics_addr,
            "relay started"
        );
        Ok(RelayHandle {
            node,
            udp_addrs,
            metrics_addr,
            stop,
            tasks,
        })
    }
}

impl RelayHandle {
    /// The advertised UDP address of each worker (advertised IP, bound port).
    pub fn udp_addrs(&self) -> &[SocketAddr] {
        &self.udp_addrs
    }

    /// Where `/metrics`, `/healthz` and `/readyz` are served.
    pub fn metrics_addr(&self) -> SocketAddr {
        self.metrics_addr
    }

    /// This relay's node id (grants must name it).
    pub fn node_id(&self) -> &NodeId {
        &self.node.config().config.node_id
    }

    /// In-process signaling: admit an offer (grant checked, drain and
    /// capacity enforced) and get the SDP answer.
    pub async fn offer(
        &self,
        grant_token: impl Into<String>,
        offer_sdp: impl Into<String>,
    ) -> Result<OfferAccepted, SfuError> {
        self.node.offer(grant_token.into(), offer_sdp.into()).await
    }

    /// In-process signaling: a client's answer to [`SfuEvent::Renegotiate`].
    pub async fn answer(
        &self,
        room: &RoomId,
        participant: ParticipantId,
        answer_sdp: impl Into<String>,
    ) -> Result<(), SfuError> {
        self.node.answer(room, participant, answer_sdp.into()).await
    }

    /// In-process signaling: a trickled ICE candidate.
    pub fn candidate(&self, room: &RoomId, participant: ParticipantId, candidate: String) {
        self.node.candidate(room, participant, candidate);
    }

    /// Removes a participant.
    pub fn kick(&self, room: &RoomId, participant: ParticipantId) {
        self.node.kick(room, participant);
    }

    /// Ends a room.
    pub fn close_room(&self, room: &RoomId) {
        self.node.close_room(room);
    }

    /// Core events (participant connected/left, renegotiation offers, …)
    /// from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<SfuEvent> {
        self.node.subscribe()
    }

    /// Summed core counters of every worker (refreshed a few times a second).
    pub fn stats(&self) -> SfuStats {
        self.node.totals()
    }

    /// Waits until the summed counters satisfy `done` and returns them
    /// (for tests and tools: no polling loop needed).
    pub async fn stats_when(&self, done: impl Fn(&SfuStats) -> bool) -> SfuStats {
        self.node.workers().totals_when(done).await
    }

    /// Current load (rooms, participants, tracks).
    pub fn load(&self) -> RelayLoad {
        self.node.load()
    }

    /// The `register` message the relay would send now (for tests and tools).
    pub fn register_message(&self) -> Register {
        control::register_message(&self.node)
    }

    /// Starts draining: new rooms are refused, existing calls go on.
    pub fn drain(&self) {
        self.node.start_drain();
    }

    /// Whether the relay drains.
    pub fn is_draining(&self) -> bool {
        self.node.is_draining()
    }

    /// Resolves when the last participant has left, or after the configured
    /// drain timeout. Call [`RelayHandle::drain`] first.
    pub async fn drained(&self) {
        self.node
            .drained(self.node.config().config.drain_timeout())
            .await;
    }

    /// Stops everything now: the control link closes, workers end their
    /// loops (calls end abruptly), the metrics listener closes.
    pub async fn shutdown(mut self) {
        self.stop_now();
        for task in self.tasks.drain(..) {
            let _ = task.await;
        }
        let node = Arc::clone(&self.node);
        // Joining worker threads blocks; they end within one loop iteration.
        let _ = tokio::task::spawn_blocking(move || node.stop()).await;
        tracing::info!("relay stopped");
    }

    fn stop_now(&self) {
        self.stop.send_replace(true);
    }
}

impl Drop for RelayHandle {
    fn drop(&mut self) {
        self.stop_now();
        for task in &self.tasks {
            task.abort();
        }
        self.node
            .workers()
            .broadcast(|| crate::driver::Command::Stop);
    }
}

/// Runs a relay until `shutdown` resolves, then drains: new rooms are
/// refused, and the relay exits once the last call ended or the drain
/// timeout passed. (The binary exits at once on a second signal.)
pub async fn run(config: Config, shutdown: impl Future<Output = ()>) -> Result<(), RelayError> {
    let relay = Relay::start(config).await?;
    shutdown.await;
    relay.drain();
    relay.drained().await;
    relay.shutdown().await;
    Ok(())
}
