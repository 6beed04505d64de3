//! Captured log output: the global subscriber (JSON lines, every crate at
//! TRACE) writing into memory, for tests asserting what logs never contain.
//! Only one per test binary: the subscriber is global.

use std::io::Write;
use std::sync::{Arc, Mutex};

use signaling::config::LogFormat;

/// Everything the global subscriber wrote since [`CapturedLogs::install`].
#[derive(Clone, Default)]
pub struct CapturedLogs(Arc<Mutex<Vec<u8>>>);

impl CapturedLogs {
    /// Installs the global subscriber (JSON, `trace`) writing here.
    pub fn install() -> Self {
        let logs = Self::default();
        let sink = logs.clone();
        signaling::logging::init_with_writer(LogFormat::Json, "trace", move || sink.clone())
            .unwrap();
        logs
    }

    /// The text written so far.
    pub fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

impl Write for CapturedLogs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
