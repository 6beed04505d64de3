//! The signaling server: builds the services from a [`Config`], serves
//! `/ws`, `/healthz`, `/readyz`, `/` and the account API on one listener,
//! and shuts down gracefully.
//!
//! Shutdown: when the `shutdown` future completes, the listener stops
//! accepting, `/readyz` turns 503, every WebSocket gets a `shutting_down`
//! error and a close frame, and [`serve`] returns once they have all ended
//! (or after [`DRAIN_TIMEOUT`]).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};

use crate::Error;
use crate::account_api;
use crate::audit::Audit;
use crate::auth::Auth;
use crate::clock::Clock;
use crate::cluster::owner::{self, LeaseLoop};
use crate::cluster::pipe::Pipes;
use crate::cluster::runner::{self, LobbyParts};
use crate::cluster::{Mailbox, Ownership};
use crate::config::Config;
use crate::directory::{DemoCredentials, Directory};
use crate::lobby::LobbySettings;
use crate::relays::{self, RelayPool};
use crate::store::backends::Backends;
use crate::ws::{self, Shared, WsSettings};

/// Longest wait for open connections to finish after shutdown starts.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Longest wait at shutdown for the lobby to finish its seat writes before
/// it is aborted and the lobby lease released.
pub const LOBBY_STOP_TIMEOUT: Duration = Duration::from_secs(2);

/// How often expired sessions are swept (and audited as expired).
const SESSION_SWEEP: Duration = Duration::from_secs(60);

/// Everything the server runs on. Tests build it by hand to use their own
/// directory, audit buffer, sessions or limits.
#[derive(Debug, Clone)]
pub struct Services {
    /// Tenants, rooms, accounts.
    pub directory: Arc<Directory>,
    /// Sessions and logins.
    pub auth: Arc<Auth>,
    /// The audit trail.
    pub audit: Audit,
    /// Lobby tunables.
    pub lobby: LobbySettings,
    /// Connection limits.
    pub ws: WsSettings,
    /// Where `now` comes from (tests may use a manual clock).
    pub clock: Clock,
    /// The relays and the calls placed on them.
    pub relays: Arc<RelayPool>,
    /// Serve HTTPS/WSS with this (HSTS, `__Host-` secure cookies); `None`: plain HTTP.
    pub tls: Option<crate::tls::Tls>,
    /// Who may read `/metrics`.
    pub metrics: crate::metrics::MetricsArgs,
    /// Header-read and TLS-handshake time limits of the listener.
    pub listen: crate::listen::ListenLimits,
    /// Where shared state lives: memory by default, Redis with `--redis-url`.
    pub backends: Backends,
    /// This node's id and lobby lease (used with Redis backends).
    pub cluster: crate::cluster::ClusterSettings,
}

impl Services {
    /// Builds the services a [`Config`] describes. With `--dev`, also returns
    /// the demo credentials (to print once).
    ///
    /// The backends come from [`Backends::open`] (not checked: call
    /// [`Backends::from_config`] and [`Services::from_config_with`] for that).
    pub fn from_config(config: &Config) -> Result<(Self, Option<DemoCredentials>), Error> {
        config.validate()?;
        Self::from_config_with(config, Backends::open(config)?)
    }

    /// [`Services::from_config`] on backends made beforehand.
    pub fn from_config_with(
        config: &Config,
        backends: Backends,
    ) -> Result<(Self, Option<DemoCredentials>), Error> {
        config.validate()?;
        let (directory, demo) = if let Some(path) = &config.config {
            (Directory::load(path)?, None)
        } else {
            let (d, creds) = Directory::dev_demo();
            (d, Some(creds))
        };
        let audit = match &config.audit_log {
            Some(path) => Audit::to_file(path)?,
            None => Audit::stderr(),
        };
        let mut services = Self::with_backends(Arc::new(directory), audit, config, backends);
        services.tls = config.tls.load()?;
        Ok((services, demo))
    }

    /// Services over an existing directory and audit trail, with the
    /// config's session lifetimes and limits, state in memory.
    pub fn new(directory: Arc<Directory>, audit: Audit, config: &Config) -> Self {
        let backends = Backends::memory_with(&config.auth_settings());
        Self::with_backends(directory, audit, config, backends)
    }

    /// [`Services::new`] on `backends` (e.g. two nodes sharing one Redis).
    pub fn with_backends(
        directory: Arc<Directory>,
        audit: Audit,
        config: &Config,
        backends: Backends,
    ) -> Self {
        let auth = Arc::new(
            Auth::with_sessions(
                directory.clone(),
                audit.clone(),
                config.auth_settings(),
                backends.sessions.clone(),
            )
            .with_bus(backends.bus.clone(), config.cluster_settings().node),
        );
        if backends.redis.is_some() {
            auth.spawn_cluster_watch();
        }
        Self {
            directory,
            auth,
            audit,
            lobby: config.lobby_settings(),
            ws: config.ws_settings(),
            clock: Clock::default(),
            relays: RelayPool::new(config.relay_settings()),
            tls: None,
            metrics: config.metrics.clone(),
            listen: config.timeouts.limits(),
            backends,
            cluster: config.cluster_settings(),
        }
    }
}

/// Builds the services from `config` and serves until `shutdown` completes.
pub async fn run(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    let backends = Backends::from_config(&config).await?;
    let (services, _) = Services::from_config_with(&config, backends)?;
    serve(listener, services, shutdown).await
}

/// Serves `services` on `listener` until `shutdown` completes, then drains.
pub async fn serve(
    listener: TcpListener,
    services: Services,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    let (ownership, lease) = ownership(&services);
    let (lobby, lobby_runner) = runner::spawn(lobby_parts(&services), &ownership);
    let (stop_tx, stop_rx) = watch::channel(false);
    let (alive_tx, mut alive_rx) = mpsc::channel::<()>(1);
    let shared = Arc::new(Shared::new(
        lobby,
        services.auth.clone(),
        services.ws.clone(),
        services.clock.clone(),
        stop_rx,
        alive_tx,
    ));

    let sweeper = tokio::spawn(sweep_sessions(
        services.auth.clone(),
        services.clock.clone(),
    ));
    let relay_sweeper = services.relays.spawn_sweeper();
    let pipes = start_pipes(&services, &ownership, &shared).await?;
    let app = Router::new()
        .route("/ws", get(ws::handler))
        .with_state(shared.clone())
        .merge(relays::router(services.relays.clone()))
        .merge(relays::ingest_api::router(
            &shared,
            &services.relays,
            &services.audit,
        ))
        .merge(crate::http::router(shared.clone()))
        .merge(crate::metrics::router(
            shared.clone(),
            services.relays.clone(),
            &services.metrics,
        ))
        .merge(account_api::router_with(
            services.auth.clone(),
            services.directory.clone(),
            services.audit.clone(),
            account_api::ApiOptions {
                secure_cookie: services.tls.is_some(),
            },
        ));
    // OpenID Connect sign-in (issue 8): /auth/oidc/…, /api/login-options.
    let app = app.merge(crate::auth::oidc::router(
        services.auth.clone(),
        services.tls.is_some(),
    ));
    // Last, so that it covers every route above (CSRF on cookie-authenticated /api/ writes).
    let app = crate::csrf::protect(app, services.auth.clone(), services.audit.clone());
    // Cluster: lobby endpoints answer 503 off the owner; sockets are piped there.
    let app = app.layer(axum::middleware::from_fn_with_state(
        ownership.clone(),
        runner::owner_only,
    ));
    let app = match pipes {
        Some(pipes) => app.layer(axum::Extension(pipes)),
        None => app,
    };
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, "signaling listening");
    }
    let pool = services.relays.clone();
    let graceful = async move {
        shutdown.await;
        tracing::info!("shutting down: refusing new connections, closing WebSockets");
        let _ = stop_tx.send(true);
        pool.close_all();
    };
    let (tls, limits) = (services.tls.clone(), services.listen);
    let result = crate::listen::serve(listener, app, tls, limits, graceful).await;

    // Every connection task holds a clone of `alive`; wait for them to end.
    drop(shared);
    if tokio::time::timeout(DRAIN_TIMEOUT, alive_rx.recv())
        .await
        .is_err()
    {
        tracing::warn!("connections still open after the drain timeout");
    }
    sweeper.abort();
    relay_sweeper.abort();
    // The lobby finishes its queue and seat writes (at most
    // LOBBY_STOP_TIMEOUT, then it is aborted) before the lease is released:
    // the next owner must not restore while this node still writes.
    lobby_runner.shutdown(LOBBY_STOP_TIMEOUT).await;
    if let Some(lease) = lease {
        // After the lobby stopped: the next owner takes over at once.
        lease.stop();
    }
    tracing::info!("signaling stopped");
    result.map_err(Error::Io)
}

/// Who owns the lobby: this node for good on memory backends (one node,
/// as before issue 7); with Redis, the lease loop decides.
fn ownership(services: &Services) -> (Ownership, Option<LeaseLoop>) {
    let node = services.cluster.node.clone();
    if services.backends.redis.is_none() {
        return (Ownership::single(node), None);
    }
    tracing::info!(node = %node, lease_ms = services.cluster.lease.as_millis(), "cluster node: following the lobby lease");
    let (ownership, lease) = owner::spawn(
        services.backends.leases.clone(),
        node,
        services.cluster.lease,
        services.clock.clone(),
    );
    (ownership, Some(lease))
}

/// What each term's lobby is built from (seats in the shared store only
/// with Redis: a single node keeps them in the lobby's memory as before).
fn lobby_parts(services: &Services) -> LobbyParts {
    LobbyParts {
        directory: services.directory.clone(),
        settings: services.lobby.clone(),
        audit: services.audit.clone(),
        clock: services.clock.clone(),
        relays: services.relays.clone(),
        seats: services
            .backends
            .redis
            .as_ref()
            .map(|_| services.backends.seats.clone()),
        bus: services
            .backends
            .redis
            .as_ref()
            .map(|_| services.backends.bus.clone()),
    }
}

/// With Redis: this node's pipes on its mailbox (front end: sockets go to
/// the owner; owner: piped sockets run here). `None` on memory backends.
async fn start_pipes(
    services: &Services,
    ownership: &Ownership,
    shared: &Arc<Shared>,
) -> Result<Option<Arc<Pipes>>, Error> {
    if services.backends.redis.is_none() {
        return Ok(None);
    }
    let mailbox = Mailbox::new(services.backends.bus.clone(), ownership.node().clone());
    let pipes = Pipes::start(mailbox, ownership, shared.shutdown.clone()).await?;
    pipes.serve_locally(shared, &services.relays);
    Ok(Some(pipes))
}

async fn sweep_sessions(auth: Arc<Auth>, clock: Clock) {
    let mut tick = tokio::time::interval(SESSION_SWEEP);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        auth.sweep_expired(clock.now());
    }
}
