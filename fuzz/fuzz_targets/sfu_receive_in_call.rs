//! Arbitrary datagrams into an SFU core carrying a live call, some spoofing
//! the participants' own addresses so that they reach their DTLS/SRTP
//! sessions. The core must never panic or hang.
#![no_main]

use std::sync::Mutex;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use relay::fuzzing::CallHarness;

static HARNESS: OnceLock<Mutex<CallHarness>> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let harness = HARNESS.get_or_init(|| Mutex::new(CallHarness::new()));
    let mut harness = harness
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    for chunk in data.split(|&b| b == 0xff) {
        harness.feed(chunk);
    }
});
