//! Arbitrary bytes as a control-link message (both directions) and as a
//! grant token. Parsing must never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    relay::fuzzing::parse_control(data);
});
