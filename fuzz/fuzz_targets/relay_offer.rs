//! Arbitrary SDP offers into the relay's offer path (Sfu::handle_offer with a
//! valid grant), one core for the whole run.
//! Entry function: `signaling::fuzzing::relay_offer`; the corpus in
//! `fuzz/corpus/relay_offer/` is replayed by `cargo test -p signaling`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    signaling::fuzzing::relay_offer(data);
});
