//! [`SyncRedis`]: one synchronous Redis connection with timeouts, made on
//! first use and made again after it broke.

use std::sync::{Mutex, MutexGuard, PoisonError};

use redis::{Connection, RedisResult};

use super::{COMMAND_TIMEOUT, CONNECT_TIMEOUT, RedisHandle};

/// A lazily (re)connected synchronous connection. Operations are serialised
/// on it; each is one command, pipeline or script, so it stays short.
pub(crate) struct SyncRedis {
    handle: RedisHandle,
    conn: Mutex<Option<Connection>>,
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
            conn: Mutex::new(None),
        }
    }

    /// `prefix:rest`.
    pub(crate) fn key(&self, rest: &str) -> String {
        self.handle.key(rest)
    }

    fn lock(&self) -> MutexGuard<'_, Option<Connection>> {
        // A panic inside `run` leaves at worst a connection mid-reply; it is
        // dropped below on the next error, so a poisoned lock is usable.
        self.conn.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `f` on the connection, connecting first if needed. A connection
    /// that failed at the transport level is dropped, so the next call
    /// reconnects (a Redis restart heals without a signaling restart).
    pub(crate) fn run<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> RedisResult<T>,
    ) -> RedisResult<T> {
        let mut guard = self.lock();
        let mut conn = if let Some(c) = guard.take() {
            c
        } else {
            self.connect()?
        };
        let result = f(&mut conn);
        let broken = result.as_ref().is_err_and(|e| {
            e.is_io_error()
                || e.is_connection_dropped()
                || e.is_timeout()
                || e.is_unrecoverable_error()
        });
        if !broken {
            *guard = Some(conn);
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
