//! Arbitrary bytes as a client WebSocket frame (and as a server message):
//! parsing must never panic, and whatever parses must round-trip.
//! Entry function: `signaling::fuzzing::client_message`; the corpus in
//! `fuzz/corpus/client_message/` is replayed by `cargo test -p signaling`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    signaling::fuzzing::client_message(data);
});
