//! A pipe over a real Redis (a private `redis-server`, see
//! [`RedisServer`]): node B, a front end, pipes a patient's socket to node
//! A, the lobby owner, whose connection logic answers `hello`. Each node has
//! its own bus (its own Redis connections), as two processes would.

use std::sync::Arc;
use std::time::Duration;

use protocol::{NodeId, PROTOCOL_VERSION, Sensitive};
use tokio::sync::watch;
use tokio::time::timeout;

use super::owner::Term;
use super::pipe::{PIPE_QUEUE, Pipes};
use super::pipe_tests::owner_shared;
use super::socket::{PipeOut, PipedSocket};
use super::{Mailbox, PipeKind};
use crate::store::RedisHandle;
use crate::store::bus::{EventBus, RedisBus};
use crate::store::redis_server::RedisServer;

/// Longest wait for anything here (a failure must not hang the suite).
const PATIENCE: Duration = Duration::from_secs(10);

fn id(s: &str) -> NodeId {
    NodeId::new(s).unwrap()
}

#[tokio::test]
async fn a_patient_hello_through_the_front_end_is_answered_by_the_owner_over_redis() {
    let server = RedisServer::start().expect("a private redis-server");
    let handle = RedisHandle::with_prefix(&server.url(), "pipe-redis-test").unwrap();
    let bus = || -> Arc<dyn EventBus> { Arc::new(RedisBus::new(handle.clone())) };
    let (_owner, owner_rx) = watch::channel(Some(id("sig-a")));
    let (_a_term, a_term) = watch::channel(Term::Owner(1));
    let (_b_term, b_term) = watch::channel(Term::FrontEnd);
    let (_shutdown, stop) = watch::channel(false);
    let a = Pipes::start_with(
        Mailbox::new(bus(), id("sig-a")),
        owner_rx.clone(),
        a_term,
        stop.clone(),
    )
    .await
    .expect("node A subscribes");
    let b = Pipes::start_with(Mailbox::new(bus(), id("sig-b")), owner_rx, b_term, stop)
        .await
        .expect("node B subscribes");
    let (shared, pool, _running, mut gone) = owner_shared();
    a.serve_locally(&shared, &pool);
    assert!(b.should_pipe() && !a.should_pipe());

    let (socket, mut browser) = PipedSocket::pair(PIPE_QUEUE);
    tokio::spawn(Arc::clone(&b).run_front(socket, PipeKind::Client, None));
    let hello = format!(r#"{{"type":"hello","version":{PROTOCOL_VERSION},"role":"patient"}}"#);
    browser.tx.send(Sensitive::new(hello)).await.unwrap();
    let reply = timeout(PATIENCE, browser.rx.recv())
        .await
        .expect("a reply in time");
    let Some(PipeOut::Text(welcome)) = reply else {
        panic!("expected welcome, got {reply:?}");
    };
    assert!(
        welcome.expose().contains(r#""type":"welcome""#),
        "{welcome:?}"
    );
    assert_eq!(a.open_pipes(), (0, 1), "A serves the piped socket");
    assert_eq!(b.open_pipes(), (1, 0), "B holds the real one");

    // The browser leaves: B's pipe ends, and A's connection with it (the
    // connection task holds the last `Shared` now: `gone` ends with it).
    drop(shared);
    drop(browser);
    let ended = timeout(PATIENCE, gone.recv()).await;
    assert_eq!(ended, Ok(None), "A's connection ended");
    assert_eq!(a.open_pipes(), (0, 0));
    assert_eq!(b.open_pipes(), (0, 0));
}
