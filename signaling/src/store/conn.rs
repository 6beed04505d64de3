//! [`SyncRedis`]: one synchronous Redis connection with timeouts, made on
//! first use and made again after it broke.
//!
//! After a timeout (a hung or unreachable Redis) the next [`COOL_DOWN`]
//! fails at once instead of trying again: callers hold locks around their
//! steps (the relay pool), and a hung Redis must not cost every step the
//! full timeout. A refused connection costs nothing, so it is retried at
//! once (a restarted Redis is used as soon as it listens).

use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use redis::{Connection, ErrorKind, RedisError, RedisResult};

use super::{COMMAND_TIMEOUT, CONNECT_TIMEOUT, RedisHandle};

/// How long operations fail fast after a timeout.
pub(crate) const COOL_DOWN: Duration = Duration::from_millis(500);

/// The connection, or when the next attempt to make one may be.
#[derive(Default)]
struct Slot {
    conn: Option<Connection>,
    down_until: Option<Instant>,
}

/// A lazily (re)connected synchronous connection. Operations are serialised
/// on it; each is one command, pipeline or script, so it stays short.
pub(crate) struct SyncRedis {
    handle: RedisHandle,
    slot: Mutex<Slot>,
}

impl std::fmt::Debug for SyncRedis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SyncRedis")
            .field("handle", &self.handle)
            .finish_non_exhaustive()
    }
}

impl SyncRedis {
    /// A connection to `handle`'s server, made on first use.
    pub(crate) fn new(handle: RedisHandle) -> Self {
        Self {
            handle,
            slot: Mutex::new(Slot::default()),
        }
    }

    /// `prefix:rest`.
    pub(crate) fn key(&self, rest: &str) -> String {
        self.handle.key(rest)
    }

    fn lock(&self) -> MutexGuard<'_, Slot> {
        // A panic inside `run` leaves at worst a connection mid-reply; it is
        // dropped below on the next error, so a poisoned lock is usable.
        self.slot.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `f` on the connection, connecting first if needed. A connection
    /// that failed at the transport level is dropped, so the next call
    /// reconnects (a Redis restart heals without a signaling restart).
    pub(crate) fn run<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> RedisResult<T>,
    ) -> RedisResult<T> {
        let mut slot = self.lock();
        let mut conn = if let Some(c) = slot.conn.take() {
            c
        } else {
            if slot.down_until.is_some_and(|t| Instant::now() < t) {
                return Err(RedisError::from((
                    ErrorKind::Io,
                    "Redis failed moments ago; retrying shortly",
                )));
            }
            match self.connect() {
                Ok(c) => c,
                Err(e) => {
                    if e.is_timeout() {
                        slot.down_until = Some(Instant::now() + COOL_DOWN);
                    }
                    return Err(e);
                }
            }
        };
        let result = f(&mut conn);
        let broken = result.as_ref().is_err_and(|e| {
            e.is_io_error()
                || e.is_connection_dropped()
                || e.is_timeout()
                || e.is_unrecoverable_error()
        });
        if broken {
            if result.as_ref().is_err_and(RedisError::is_timeout) {
                slot.down_until = Some(Instant::now() + COOL_DOWN);
            }
        } else {
            slot.conn = Some(conn);
            slot.down_until = None;
        }
        result
    }

    fn connect(&self) -> RedisResult<Connection> {
        let c = self
            .handle
            .client()
            .get_connection_with_timeout(CONNECT_TIMEOUT)?;
        c.set_read_timeout(Some(COMMAND_TIMEOUT))?;
        c.set_write_timeout(Some(COMMAND_TIMEOUT))?;
        Ok(c)
    }
}
