//! The bounded fuzzing run of every `cargo test`: each committed corpus file
//! of `fuzz/corpus/<target>/`, then a fixed number of seeded mutations of
//! them, through the same entry functions the cargo-fuzz targets call.
//! Deterministic (fixed seeds), so a failure reproduces.
//!
//! `write_corpus` (ignored) regenerates the seed corpus from the protocol's
//! golden fixtures and from offers made by real str0m peers:
//! `cargo test -p signaling --lib fuzzing::replay::write_corpus -- --ignored`.

use std::path::PathBuf;

use base64::Engine as _;
use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};

use super::{FUZZ_SECRET, client_message, control_message, grant, hmac_sha256, relay_offer};

fn corpus_dir(target: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target)
}

fn corpus(target: &str) -> Vec<Vec<u8>> {
    let dir = corpus_dir(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    files.sort();
    let inputs: Vec<Vec<u8>> = files.iter().filter_map(|f| std::fs::read(f).ok()).collect();
    assert!(inputs.len() >= 3, "{target}: corpus too small");
    inputs
}

/// One random edit of the kinds libFuzzer makes.
fn mutate(rng: &mut StdRng, input: &mut Vec<u8>, other: &[u8]) {
    const INTERESTING: &[u8] = b"{}[]\":,\\0-9e.\r\n\x00\xff=a";
    for _ in 0..rng.random_range(1..=4) {
        let len = input.len();
        match rng.random_range(0..7) {
            0 if len > 0 => {
                let i = rng.random_range(0..len);
                input[i] ^= 1 << rng.random_range(0..8);
            }
            1 => {
                let i = rng.random_range(0..=len);
                let b = INTERESTING[rng.random_range(0..INTERESTING.len())];
                input.insert(i, b);
            }
            2 if len > 0 => {
                let i = rng.random_range(0..len);
                let j = rng.random_range(i..=len.min(i + 16));
                input.drain(i..j);
            }
            3 if len > 0 => input.truncate(rng.random_range(0..len)),
            4 if !other.is_empty() => {
                // Splice: a prefix of this input and a suffix of another.
                let i = rng.random_range(0..=len);
                let j = rng.random_range(0..other.len());
                input.truncate(i);
                input.extend_from_slice(&other[j..]);
            }
            5 if len > 0 => {
                let i = rng.random_range(0..len);
                let j = rng.random_range(i..=len.min(i + 64));
                let chunk = input[i..j].to_vec();
                input.splice(i..i, chunk);
            }
            _ => {
                let i = rng.random_range(0..=len);
                input.insert(i, rng.random());
            }
        }
    }
}

fn replay(target: &str, run: fn(&[u8]), mutations: usize) {
    let inputs = corpus(target);
    for input in &inputs {
        run(input);
    }
    let mut rng = StdRng::seed_from_u64(0x5eed_0000 + target.len() as u64);
    for _ in 0..mutations {
        let mut input = inputs[rng.random_range(0..inputs.len())].clone();
        let other = &inputs[rng.random_range(0..inputs.len())];
        mutate(&mut rng, &mut input, other);
        run(&input);
    }
}

#[test]
fn client_message_corpus() {
    replay("client_message", client_message, 20_000);
}

#[test]
fn control_message_corpus() {
    replay("signaling_control", control_message, 10_000);
}

#[test]
fn grant_corpus() {
    replay("grant", grant, 10_000);
}

#[test]
fn relay_offer_corpus() {
    replay("relay_offer", relay_offer, 300);
}

/// The harness's signing matches the protocol's, so odd-mode grant inputs
/// really reach the checks behind the signature.
#[test]
fn grant_harness_signs_like_the_protocol() {
    let token = super::offer_grant();
    let (payload, sig) = token.split_once('.').expect("payload.signature");
    let ours = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(hmac_sha256(FUZZ_SECRET, payload.as_bytes()));
    assert_eq!(ours, sig);
}

/// The corpus offers get past the grant to SDP acceptance (the target
/// exercises the offer path, not only the grant refusal).
#[test]
fn corpus_offers_are_accepted() {
    let mut harness = relay::fuzzing::DatagramHarness::new();
    let offers = corpus("relay_offer");
    let accepted = offers
        .iter()
        .filter(|o| {
            let sdp = String::from_utf8_lossy(o);
            let now = harness.now();
            harness
                .sfu()
                .handle_offer(now, 1_000_000, &super::offer_grant(), &sdp)
                .is_ok()
        })
        .count();
    assert!(
        accepted >= 3,
        "only {accepted} of {} accepted",
        offers.len()
    );
}

#[test]
#[ignore = "regenerates fuzz/corpus; run by hand"]
fn write_corpus() {
    use relay::sfu::testing::{Harness, Publish};
    let write = |target: &str, name: &str, data: &[u8]| {
        let dir = corpus_dir(target);
        std::fs::create_dir_all(&dir).expect("mkdir");
        std::fs::write(dir.join(name), data).expect("write");
    };
    let fixtures = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../protocol/fixtures");
    for (sub, target) in [
        ("client", "client_message"),
        ("control", "signaling_control"),
    ] {
        for f in std::fs::read_dir(fixtures.join(sub))
            .expect("fixtures")
            .flatten()
        {
            let name = f.file_name().to_string_lossy().into_owned();
            write(target, &name, &std::fs::read(f.path()).expect("read"));
        }
    }
    let token = super::offer_grant();
    let (payload, _) = token.split_once('.').expect("payload.signature");
    let json = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("base64");
    write(
        "grant",
        "valid_token",
        &[&[0u8][..], token.as_bytes()].concat(),
    );
    write("grant", "signed_payload", &[&[1u8][..], &json].concat());
    write(
        "grant",
        "forged",
        &[&[0u8][..], payload.as_bytes(), b".AAAA"].concat(),
    );
    let expired = String::from_utf8_lossy(&json).replace("2000000", "999999");
    write(
        "grant",
        "signed_expired",
        &[&[1u8][..], expired.as_bytes()].concat(),
    );
    let other = String::from_utf8_lossy(&json).replace("relay-fuzz", "relay-other");
    write(
        "grant",
        "signed_other_node",
        &[&[1u8][..], other.as_bytes()].concat(),
    );

    #[allow(clippy::disallowed_methods)]
    let mut h = Harness::new(std::time::Instant::now());
    let shapes = [
        (
            "audio",
            Publish {
                audio: true,
                ..Publish::default()
            },
        ),
        (
            "audio_video",
            Publish {
                audio: true,
                video: true,
                simulcast: Vec::new(),
            },
        ),
        (
            "simulcast",
            Publish {
                audio: true,
                video: true,
                simulcast: vec!["q", "h", "f"],
            },
        ),
        ("receive_only", Publish::default()),
    ];
    for (i, (name, publish)) in shapes.iter().enumerate() {
        let mut sdp = String::new();
        let _ = h.join_with("room-gen", &format!("p{i}"), publish, |s| {
            sdp.clone_from(&s);
            s
        });
        write("relay_offer", &format!("{name}.sdp"), sdp.as_bytes());
    }
}
