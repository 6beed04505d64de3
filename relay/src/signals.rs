//! Process signals for the binary: the first SIGTERM or SIGINT starts the
//! drain, a second one exits at once.

use std::future::Future;

use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::oneshot;

/// Exit status after a second signal (128 + SIGINT, as shells report it).
const FORCED_EXIT: i32 = 130;

/// Installs the handlers and returns a future that resolves on the first
/// SIGTERM/SIGINT (pass it to [`crate::run`] as its `shutdown`). A second
/// signal ends the process immediately. Must run inside a tokio runtime.
pub fn drain_then_force() -> std::io::Result<impl Future<Output = ()>> {
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let (first_tx, first_rx) = oneshot::channel::<()>();
    tokio::spawn(async move {
        tokio::select! { _ = term.recv() => {}, _ = int.recv() => {} }
        tracing::info!("signal received: draining (send another to exit now)");
        let _ = first_tx.send(());
        tokio::select! { _ = term.recv() => {}, _ = int.recv() => {} }
        tracing::warn!("second signal: exiting now");
        std::process::exit(FORCED_EXIT);
    });
    Ok(async move {
        let _ = first_rx.await;
    })
}
