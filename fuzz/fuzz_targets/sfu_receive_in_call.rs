//! Arbitrary datagrams into an SFU core carrying a live call, some spoofing
//! the participants' own addresses so that they reach their DTLS/SRTP
//! sessions. The core must never panic or hang.
#![no_main]

use std::cell::RefCell;

use libfuzzer_sys::fuzz_target;
use relay::fuzzing::CallHarness;

thread_local! {
    // One call for the whole run (libFuzzer calls from one thread); the
    // harness holds non-Send test peers, hence thread-local, not static.
    static HARNESS: RefCell<Option<CallHarness>> = const { RefCell::new(None) };
}

fuzz_target!(|data: &[u8]| {
    HARNESS.with(|cell| {
        let mut slot = cell.borrow_mut();
        let harness = slot.get_or_insert_with(CallHarness::new);
        for chunk in data.split(|&b| b == 0xff) {
            harness.feed(chunk);
        }
    });
});
