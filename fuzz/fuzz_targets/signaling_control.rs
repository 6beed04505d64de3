//! Arbitrary bytes as a control-link frame, both directions, as signaling and
//! relays parse them; whatever parses must re-serialise and parse again.
//! Entry function: `signaling::fuzzing::control_message`; the corpus in
//! `fuzz/corpus/signaling_control/` is replayed by `cargo test -p signaling`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    signaling::fuzzing::control_message(data);
});
