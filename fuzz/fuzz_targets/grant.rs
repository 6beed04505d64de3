//! Arbitrary grant tokens, and arbitrary payloads signed with the right secret
//! so the checks behind the signature are reached (byte 0 picks which).
//! Entry function: `signaling::fuzzing::grant`; the corpus in
//! `fuzz/corpus/grant/` is replayed by `cargo test -p signaling`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    signaling::fuzzing::grant(data);
});
