//! The service's clock. Production reads tokio's clock (real time, or
//! virtual time under `tokio::time::pause`); tests that must move time
//! precisely while real sockets run use a manual clock and advance it by
//! hand, since a paused tokio clock also jumps ahead whenever the runtime
//! waits on I/O.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

/// Where `now` comes from. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub enum Clock {
    /// `tokio::time::Instant::now()`.
    #[default]
    Tokio,
    /// A clock that only moves when [`Clock::advance`] is called.
    Manual(Arc<Manual>),
}

/// State of a manual clock.
#[derive(Debug)]
pub struct Manual {
    base: Instant,
    offset_nanos: AtomicU64,
    moved: Notify,
}

impl Clock {
    /// A manual clock starting at the current instant.
    pub fn manual() -> Self {
        Self::Manual(Arc::new(Manual {
            base: Instant::now(),
            offset_nanos: AtomicU64::new(0),
            moved: Notify::new(),
        }))
    }

    /// The current time.
    pub fn now(&self) -> Instant {
        match self {
            Self::Tokio => tokio::time::Instant::now().into_std(),
            Self::Manual(m) => m.base + Duration::from_nanos(m.offset_nanos.load(Ordering::SeqCst)),
        }
    }

    /// Moves a manual clock forward (and wakes whoever waits on it); does
    /// nothing to the tokio clock.
    pub fn advance(&self, by: Duration) {
        if let Self::Manual(m) = self {
            let nanos = u64::try_from(by.as_nanos()).unwrap_or(u64::MAX);
            m.offset_nanos.fetch_add(nanos, Ordering::SeqCst);
            m.moved.notify_waiters();
        }
    }

    /// Completes at `deadline` on this clock.
    pub async fn sleep_until(&self, deadline: Instant) {
        match self {
            Self::Tokio => tokio::time::sleep_until(tokio::time::Instant::from_std(deadline)).await,
            Self::Manual(m) => loop {
                let moved = m.moved.notified();
                if self.now() >= deadline {
                    return;
                }
                moved.await;
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_manual_clock_moves_only_when_advanced() {
        let c = Clock::manual();
        let t0 = c.now();
        assert_eq!(c.now(), t0);
        let deadline = t0 + Duration::from_secs(5);
        let waiter = tokio::spawn({
            let c = c.clone();
            async move { c.sleep_until(deadline).await }
        });
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        c.advance(Duration::from_secs(5));
        waiter.await.unwrap();
        assert_eq!(c.now(), deadline);
    }
}
