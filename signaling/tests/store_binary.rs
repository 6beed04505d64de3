//! `signaling --redis-url`: the real binary refuses to start, with a clear
//! message and exit code 2, when the Redis it was given does not answer;
//! with a reachable Redis it starts.

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};

use signaling::store::redis_server::RedisServer;

fn signaling() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_signaling"));
    c.args(["--dev", "--no-embedded-relay", "--listen", "127.0.0.1:0"])
        .env_remove("ANTEROOM_REDIS_URL")
        .stdin(Stdio::null());
    c
}

#[test]
fn an_unreachable_redis_stops_the_start_with_a_clear_error() {
    let server = RedisServer::start().expect("a private redis-server");
    let url = server.url();
    drop(server); // nothing listens on that port any more
    let out = signaling()
        .args(["--redis-url", &url])
        .output()
        .expect("run signaling");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("cannot reach the Redis"), "{stderr}");
    assert!(stderr.contains("--redis-url"), "{stderr}");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("listening on"));
}

#[test]
fn a_reachable_redis_lets_it_start() {
    let server = RedisServer::start().expect("a private redis-server");
    let mut child = signaling()
        .args(["--redis-url", &server.url()])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("run signaling");
    let stdout = child.stdout.take().expect("stdout");
    let first = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .find(|l| l.starts_with("listening on"));
    let _ = child.kill();
    let _ = child.wait();
    assert!(first.is_some(), "signaling printed no 'listening on' line");
}
