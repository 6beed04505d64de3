//! The seat writer of the lobby task: the lobby's seat changes go, in
//! order, to one task that applies them to the [`SeatStore`] on tokio's
//! blocking pool. A failed write (or [`super::Command::RewriteSeats`])
//! makes it write every seat again from the lobby's memory once it has
//! caught up; it stops before its next write when the lobby task is
//! dropped, and writes what is pending when the lobby task ends.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::{Notify, mpsc};

use crate::lobby::Lobby;
use crate::lobby::persist::{self, SeatChange};
use crate::store::seats::SeatStore;

/// Most seat changes queued for the writer; beyond (the store is down or
/// too slow) changes are dropped and every seat is rewritten once the
/// writer has caught up.
const MAX_PENDING_CHANGES: usize = 50_000;

/// The writer of seat changes: batches go to one task, in order.
pub(super) struct SeatWriter {
    tx: mpsc::UnboundedSender<Vec<SeatChange>>,
    task: tokio::task::JoinHandle<()>,
    /// Set when the lobby task ends or is dropped: no write after that.
    pub(super) stopped: Arc<AtomicBool>,
    /// Changes sent and not written yet.
    pending: Arc<AtomicUsize>,
    /// A write failed since the last rewrite.
    failed: Arc<AtomicBool>,
    /// Every seat must be written again (set by failures and overflows).
    rewrite: bool,
    /// Notified when `pending` drops to zero.
    idle: Arc<Notify>,
}

impl SeatWriter {
    pub(super) fn spawn(store: Arc<dyn SeatStore>, ttl: Duration) -> Self {
        let (tx, mut rx) = mpsc::unbounded_channel::<Vec<SeatChange>>();
        let stopped = Arc::new(AtomicBool::new(false));
        let pending = Arc::new(AtomicUsize::new(0));
        let failed = Arc::new(AtomicBool::new(false));
        let idle = Arc::new(Notify::new());
        let (stop, left, fail) = (stopped.clone(), pending.clone(), failed.clone());
        let done = idle.clone();
        let task = tokio::spawn(async move {
            while let Some(mut batch) = rx.recv().await {
                while let Ok(more) = rx.try_recv() {
                    batch.extend(more);
                }
                let (store, stop, fail) = (store.clone(), stop.clone(), fail.clone());
                let n = batch.len();
                let wrote = tokio::task::spawn_blocking(move || {
                    for change in &batch {
                        if stop.load(Ordering::SeqCst) {
                            return;
                        }
                        if persist::apply(store.as_ref(), change, ttl).is_err() {
                            fail.store(true, Ordering::SeqCst);
                        }
                    }
                })
                .await;
                if left.fetch_sub(n, Ordering::SeqCst) == n {
                    done.notify_waiters();
                }
                if wrote.is_err() {
                    tracing::error!("the seat writer panicked; seat changes are no longer written");
                    done.notify_waiters();
                    return;
                }
            }
        });
        Self {
            tx,
            task,
            stopped,
            pending,
            failed,
            rewrite: false,
            idle,
        }
    }

    /// Hands the lobby's new seat changes to the writer. After a failed
    /// write (or a [`super::Command::RewriteSeats`]) every seat is written again,
    /// once the writer has written what it had.
    pub(super) fn write_from(&mut self, lobby: &mut Lobby) {
        if self.failed.swap(false, Ordering::SeqCst) || lobby.take_seat_rewrite_request() {
            self.rewrite = true;
        }
        let idle = self.pending.load(Ordering::SeqCst) == 0;
        let changes = if self.rewrite && idle {
            self.rewrite = false;
            tracing::info!("writing every seat to the store again");
            lobby.seat_snapshot()
        } else {
            lobby.take_seat_changes()
        };
        if changes.is_empty() || (self.rewrite && !idle) {
            // Superseded by the rewrite to come.
            return;
        }
        if self.pending.load(Ordering::SeqCst) + changes.len() > MAX_PENDING_CHANGES {
            tracing::warn!(
                "the seat store is behind; seats will be written again when it catches up"
            );
            self.rewrite = true;
            return;
        }
        let n = changes.len();
        self.pending.fetch_add(n, Ordering::SeqCst);
        if self.tx.send(changes).is_err() {
            self.pending.fetch_sub(n, Ordering::SeqCst);
            tracing::warn!("the seat writer has stopped; seat changes are not written");
        }
    }

    /// Waits until every change sent so far is written.
    async fn wait_idle(&self) {
        loop {
            let notified = self.idle.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.pending.load(Ordering::SeqCst) == 0 || self.task.is_finished() {
                return;
            }
            notified.await;
        }
    }

    /// The lobby task ends: writes what is pending and, if writes failed,
    /// every seat again (twice at most), so the next owner finds the
    /// lobby's last state.
    pub(super) async fn finish(mut self, lobby: &mut Lobby) {
        for _ in 0..2 {
            self.wait_idle().await;
            let failed = self.failed.swap(false, Ordering::SeqCst);
            if !(failed || self.rewrite || lobby.take_seat_rewrite_request()) {
                break;
            }
            self.rewrite = false;
            let all = lobby.seat_snapshot();
            let n = all.len();
            self.pending.fetch_add(n, Ordering::SeqCst);
            if self.tx.send(all).is_err() {
                self.pending.fetch_sub(n, Ordering::SeqCst);
            }
        }
        let Self {
            tx, task, stopped, ..
        } = self;
        drop(tx);
        let _ = task.await;
        stopped.store(true, Ordering::SeqCst);
    }
}

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// Stops the writer when the lobby task's future is dropped (aborted).
pub(super) struct StopOnDrop(pub(super) Arc<AtomicBool>);
