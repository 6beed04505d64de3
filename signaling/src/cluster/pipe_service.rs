//! What the lobby owner runs on a socket piped to it ([`PipeService`]):
//! normally [`LocalService`], this node's own client and relay logic; tests
//! plug in their own.

use std::sync::{Arc, Weak};

use futures_util::future::BoxFuture;
use protocol::Sensitive;

use super::PipeKind;
use super::socket::PipedSocket;
use crate::relays::RelayPool;
use crate::relays::control_ws;

/// What the owner runs on a piped socket: the normal client or relay
/// connection logic. Returns `None` if this kind is not served here.
pub trait PipeService: Send + Sync + std::fmt::Debug {
    /// The connection task for `socket` (to spawn).
    fn serve(
        &self,
        kind: PipeKind,
        socket: PipedSocket,
        cookie: Option<Sensitive<String>>,
    ) -> Option<BoxFuture<'static, ()>>;
}

/// The owner's normal connection logic: clients on this node's lobby
/// ([`crate::ws::serve_piped`]), relays on its pool
/// ([`crate::relays::control_ws::serve_piped`]). Weak references: the
/// server owns both, and its shutdown waits for their connections.
#[derive(Debug)]
pub struct LocalService {
    clients: Weak<crate::ws::Shared>,
    relays: Weak<RelayPool>,
}

impl LocalService {
    /// Serves piped sockets on `clients` and `relays`.
    pub fn new(clients: &Arc<crate::ws::Shared>, relays: &Arc<RelayPool>) -> Arc<Self> {
        Arc::new(Self {
            clients: Arc::downgrade(clients),
            relays: Arc::downgrade(relays),
        })
    }
}

impl PipeService for LocalService {
    fn serve(
        &self,
        kind: PipeKind,
        socket: PipedSocket,
        cookie: Option<Sensitive<String>>,
    ) -> Option<BoxFuture<'static, ()>> {
        Some(match kind {
            PipeKind::Client => Box::pin(crate::ws::serve_piped(
                self.clients.upgrade()?,
                socket,
                cookie,
            )),
            PipeKind::Relay => Box::pin(control_ws::serve_piped(self.relays.upgrade()?, socket)),
        })
    }
}
