//! Arbitrary datagrams from arbitrary sources into one SFU core, with
//! virtual time advancing between them. The core must never panic or hang.
#![no_main]

use std::sync::Mutex;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use relay::fuzzing::DatagramHarness;

// One core for the whole run (creating one generates a DTLS certificate):
// state carried between inputs finds more than a fresh core each time.
static HARNESS: OnceLock<Mutex<DatagramHarness>> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let harness = HARNESS.get_or_init(|| Mutex::new(DatagramHarness::new()));
    let mut harness = harness
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    // Several datagrams per input, split at 0xff bytes.
    for chunk in data.split(|&b| b == 0xff) {
        harness.feed(chunk);
    }
});
