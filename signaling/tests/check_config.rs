//! `signaling --check-config` on the real binary (issue 7): it prints
//! `config ok` and exits 0 for a good configuration without binding its port
//! or connecting to Redis, and names the problem (exit 2) for a missing relay
//! secret, a bad directory file, TLS files that are missing, garbage or do
//! not belong together, a bad origin list or a bad Redis URL.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const SECRET: &str = "check-config-relay-secret-0123";

fn example_orgs() -> String {
    concat!(env!("CARGO_MANIFEST_DIR"), "/examples/orgs.toml").to_owned()
}

/// Runs `signaling <args> --check-config` with only `env` set.
fn check(args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_signaling"))
        .args(args)
        .arg("--check-config")
        .env_clear()
        .envs(env.iter().copied())
        .output()
        .expect("run signaling")
}

fn ok(out: &Output) -> bool {
    out.status.success() && String::from_utf8_lossy(&out.stdout).contains("config ok")
}

/// The error of a refused configuration (exit 2).
fn refused(out: &Output) -> String {
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("config ok"));
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A scratch directory removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("anteroom-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("scratch dir");
        Self(dir)
    }

    fn write(&self, name: &str, body: &str) -> String {
        let path = self.0.join(name);
        std::fs::write(&path, body).expect("write");
        path.display().to_string()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn a_good_configuration_is_ok_without_binding_or_connecting() {
    // The port is taken and nothing listens on the Redis port: a start would
    // fail on both, the check touches neither.
    let taken = TcpListener::bind("127.0.0.1:0").expect("bind");
    let listen = taken.local_addr().expect("addr").to_string();
    let orgs = example_orgs();
    let out = check(
        &["--config", &orgs, "--listen", &listen],
        &[
            ("ANTEROOM_RELAY_SECRET", SECRET),
            ("ANTEROOM_REDIS_URL", "redis://127.0.0.1:1/0"),
            (
                "ANTEROOM_ALLOWED_ORIGINS",
                "https://a.example,https://b.example:8443",
            ),
        ],
    );
    assert!(ok(&out), "{out:?}");
    assert!(ok(&check(&["--dev"], &[])), "--dev needs nothing else");
}

#[test]
fn missing_secret_bad_directory_origins_and_redis_url_are_named() {
    let orgs = example_orgs();
    let err = refused(&check(&["--config", &orgs], &[]));
    assert!(err.contains("ANTEROOM_RELAY_SECRET"), "{err}");

    let scratch = Scratch::new("check-dir");
    let broken = scratch.write("orgs.toml", "[[tenant]]\nid = \"x\"\nnot toml at all");
    let err = refused(&check(
        &["--config", &broken],
        &[("ANTEROOM_RELAY_SECRET", SECRET)],
    ));
    assert!(err.contains("orgs.toml"), "{err}");

    let bad_origin = [("ANTEROOM_ALLOWED_ORIGINS", "https://a.example,a.example")];
    let err = refused(&check(&["--dev"], &bad_origin));
    assert!(err.contains("origin"), "{err}");

    let err = refused(&check(
        &["--dev"],
        &[("ANTEROOM_REDIS_URL", "http://127.0.0.1:6379")],
    ));
    assert!(err.contains("redis"), "{err}");
}

#[test]
fn tls_files_must_exist_parse_and_match() {
    let scratch = Scratch::new("check-tls");
    let made = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("cert");
    let other = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("cert");
    let cert = scratch.write("cert.pem", &made.cert.pem());
    let key = scratch.write("key.pem", &made.signing_key.serialize_pem());
    let other_key = scratch.write("other.pem", &other.signing_key.serialize_pem());
    let garbage = scratch.write("garbage.pem", "not a certificate\n");
    let missing = Path::new(&scratch.0)
        .join("missing.pem")
        .display()
        .to_string();
    let orgs = example_orgs();
    let env = [("ANTEROOM_RELAY_SECRET", SECRET)];
    let run = |cert: &str, key: &str| {
        check(
            &["--config", &orgs, "--tls-cert", cert, "--tls-key", key],
            &env,
        )
    };

    assert!(ok(&run(&cert, &key)), "{:?}", run(&cert, &key));
    let err = refused(&run(&cert, &other_key));
    assert!(err.contains("TLS"), "a key of another certificate: {err}");
    let err = refused(&run(&cert, &missing));
    assert!(err.contains("--tls-key"), "{err}");
    let err = refused(&run(&garbage, &key));
    assert!(err.contains("--tls-cert"), "{err}");
    let err = refused(&check(&["--config", &orgs, "--tls-cert", &cert], &env));
    assert!(err.contains("--tls-key"), "{err}");
}
