//! Pipes between two nodes in one process (a [`MemoryBus`]): node A is a
//! front end, node B owns the lobby. The "browser" is a [`PipedSocket`]
//! pair handed to A's front-end task, so the test reads exactly what a
//! client would see, close codes included.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use protocol::{NodeId, PROTOCOL_VERSION, Region, Sensitive};
use tokio::sync::{mpsc, watch};

use super::owner::Term;
use super::pipe::{
    ACK_TIMEOUT, CLOSE_OVERFLOW, CLOSE_OWNER_CHANGED, CLOSE_TRY_AGAIN, PIPE_QUEUE, PipeService,
    Pipes,
};
use super::socket::{Incoming, PipeEnd, PipeOut, PipedSocket, Socket};
use super::{Mailbox, PipeKind};
use crate::audit::Audit;
use crate::auth::{Auth, AuthSettings};
use crate::clock::Clock;
use crate::directory::Directory;
use crate::lobby::{Lobby, LobbySettings};
use crate::relays::{RelayPool, RelaySettings};
use crate::store::bus::{EventBus, MemoryBus};
use crate::ws::{LobbyHandle, Shared, WsSettings};

/// A piped socket as the owner's service received it.
type Served = (PipeKind, PipedSocket, Option<Sensitive<String>>);

/// Hands every piped socket to the test.
#[derive(Debug)]
struct Handoff(Mutex<mpsc::UnboundedSender<Served>>);

impl PipeService for Handoff {
    fn serve(
        &self,
        kind: PipeKind,
        socket: PipedSocket,
        cookie: Option<Sensitive<String>>,
    ) -> Option<futures_util::future::BoxFuture<'static, ()>> {
        let tx = self.0.lock().ok()?.clone();
        let _ = tx.send((kind, socket, cookie));
        Some(Box::pin(async {}))
    }
}

fn id(s: &str) -> NodeId {
    NodeId::new(s).unwrap()
}

/// Front end A and owner B on one bus.
struct Two {
    a: Arc<Pipes>,
    b: Arc<Pipes>,
    owner: watch::Sender<Option<NodeId>>,
    b_term: watch::Sender<Term>,
    _a_term: watch::Sender<Term>,
    _shutdown: watch::Sender<bool>,
}

async fn two() -> Two {
    let bus: Arc<dyn EventBus> = Arc::new(MemoryBus::new());
    let (owner, owner_rx) = watch::channel(Some(id("sig-b")));
    let (a_term, a_term_rx) = watch::channel(Term::FrontEnd);
    let (b_term, b_term_rx) = watch::channel(Term::Owner(1));
    let (shutdown, shutdown_rx) = watch::channel(false);
    let mailbox = |n: &str| Mailbox::new(bus.clone(), id(n));
    let a = Pipes::start_with(
        mailbox("sig-a"),
        owner_rx.clone(),
        a_term_rx,
        shutdown_rx.clone(),
    );
    let b = Pipes::start_with(mailbox("sig-b"), owner_rx, b_term_rx, shutdown_rx);
    Two {
        a: a.await.unwrap(),
        b: b.await.unwrap(),
        owner,
        b_term,
        _a_term: a_term,
        _shutdown: shutdown,
    }
}

impl Two {
    /// B hands its piped sockets to the returned receiver.
    fn handoff(&self) -> mpsc::UnboundedReceiver<Served> {
        let (tx, rx) = mpsc::unbounded_channel();
        self.b.set_service(Some(Arc::new(Handoff(Mutex::new(tx)))));
        rx
    }

    /// A browser connected to A, piped to B; returns its end.
    fn connect(&self, kind: PipeKind, cookie: Option<&str>) -> PipeEnd {
        let (socket, browser) = PipedSocket::pair(PIPE_QUEUE);
        let cookie = cookie.map(|c| Sensitive::new(c.to_owned()));
        tokio::spawn(Arc::clone(&self.a).run_front(socket, kind, cookie));
        browser
    }
}

async fn send(browser: &PipeEnd, text: &str) {
    browser.tx.send(Sensitive::new(text.into())).await.unwrap();
}

async fn recv_text(socket: &mut PipedSocket) -> Option<String> {
    match socket.recv().await? {
        Incoming::Text(t) => Some(t.as_str().to_owned()),
        other => panic!("unexpected {other:?}"),
    }
}

/// The browser's next frame: `Ok(text)` or `Err(close code)`.
async fn next(browser: &mut PipeEnd) -> Result<String, u16> {
    match browser.rx.recv().await.expect("a frame or a close") {
        PipeOut::Text(t) => Ok(t.into_inner()),
        PipeOut::Close(code) => Err(code),
    }
}

/// A lobby and its connection state, as on one node (no relays); the
/// server's shutdown switch (dropping it means "shutting down"); and the
/// receiver that ends once `Shared` and every connection are gone.
pub(super) fn owner_shared() -> (
    Arc<Shared>,
    Arc<RelayPool>,
    watch::Sender<bool>,
    mpsc::Receiver<()>,
) {
    let (directory, _) = Directory::dev_demo();
    let directory = Arc::new(directory);
    let (audit, _) = Audit::memory();
    let lobby = Lobby::new(directory.clone(), LobbySettings::default());
    let (lobby, _) = LobbyHandle::spawn(lobby, audit.clone(), Clock::default());
    let auth = Arc::new(Auth::new(directory, audit, AuthSettings::default()));
    let (stop_tx, stop) = watch::channel(false);
    let (alive, gone) = mpsc::channel(1);
    let shared = Shared::new(
        lobby,
        auth,
        WsSettings::default(),
        Clock::default(),
        stop,
        alive,
    );
    let pool = RelayPool::new(RelaySettings::new(
        b"0123456789abcdef0123".to_vec(),
        Region::new("local").unwrap(),
    ));
    (Arc::new(shared), pool, stop_tx, gone)
}

#[tokio::test]
async fn a_client_frame_reaches_the_owners_conn_logic_and_the_reply_comes_back() {
    let two = two().await;
    let (shared, pool, _running, _gone) = owner_shared();
    two.b.serve_locally(&shared, &pool);
    assert!(two.a.should_pipe() && !two.b.should_pipe());

    let mut browser = two.connect(PipeKind::Client, None);
    let hello = format!(r#"{{"type":"hello","version":{PROTOCOL_VERSION},"role":"patient"}}"#);
    send(&browser, &hello).await;
    let welcome = next(&mut browser).await.expect("a reply");
    assert!(welcome.contains(r#""type":"welcome""#), "{welcome}");
    assert!(welcome.contains(r#""role":"patient""#), "{welcome}");
    // The owner's rules apply: a second hello is refused.
    send(&browser, &hello).await;
    let refused = next(&mut browser).await.expect("a reply");
    assert!(refused.contains("already received"), "{refused}");

    // A bad protocol version closes the connection at the owner; the close
    // reaches the browser, and both nodes forget the pipe.
    let mut other = two.connect(PipeKind::Client, None);
    send(&other, r#"{"type":"hello","version":999,"role":"patient"}"#).await;
    let error = next(&mut other).await.expect("an error");
    assert!(error.contains("version_mismatch"), "{error}");
    assert!(next(&mut other).await.is_err(), "then the socket closes");
}

#[tokio::test]
async fn frames_and_the_cookie_reach_the_owner_and_closes_propagate_both_ways() {
    let two = two().await;
    let mut served = two.handoff();

    // Front end closes (the browser went away): the owner's socket ends.
    let browser = two.connect(PipeKind::Client, Some("cookie-token"));
    let (kind, mut socket, cookie) = served.recv().await.unwrap();
    assert_eq!(kind, PipeKind::Client);
    assert_eq!(cookie.unwrap().expose(), "cookie-token");
    send(&browser, "first").await;
    assert_eq!(recv_text(&mut socket).await.as_deref(), Some("first"));
    drop(browser);
    assert_eq!(recv_text(&mut socket).await, None, "the owner's side ends");

    // Owner closes with a code: the browser gets frames, then that code.
    let mut browser = two.connect(PipeKind::Relay, None);
    let (kind, mut socket, cookie) = served.recv().await.unwrap();
    assert_eq!((kind, cookie.is_none()), (PipeKind::Relay, true));
    socket.send_text("registered".into()).await.unwrap();
    socket.send_close(Some((4000, "bye"))).await.unwrap();
    assert_eq!(next(&mut browser).await, Ok("registered".into()));
    assert_eq!(next(&mut browser).await, Err(4000));
    assert_eq!(
        browser.rx.recv().await,
        None,
        "the front end's socket ended"
    );
}

#[tokio::test]
async fn an_oversized_client_frame_is_refused_at_the_front_end_and_never_sent_to_the_owner() {
    let two = two().await;
    let mut served = two.handoff();
    let mut browser = two.connect(PipeKind::Client, None);
    let (_, mut socket, _) = served.recv().await.unwrap();

    let limit = WsSettings::default().max_frame_bytes;
    send(&browser, &"x".repeat(limit + 1)).await;
    let reply = tokio::time::timeout(Duration::from_secs(5), next(&mut browser))
        .await
        .expect("the front end answers the oversized frame itself")
        .expect("an error, not a close");
    assert!(reply.contains("too_large"), "{reply}");
    // The socket stays open, and the owner's next frame is the next small one.
    send(&browser, &"y".repeat(limit)).await;
    assert_eq!(recv_text(&mut socket).await.map(|t| t.len()), Some(limit));
}

#[tokio::test(start_paused = true)]
async fn an_owner_that_never_acknowledges_gets_1013_after_two_seconds() {
    let two = two().await;
    // The lease names a node that is not running.
    two.owner.send_replace(Some(id("sig-dead")));
    let started = tokio::time::Instant::now();
    let mut browser = two.connect(PipeKind::Client, None);
    assert_eq!(next(&mut browser).await, Err(CLOSE_TRY_AGAIN));
    let waited = started.elapsed();
    assert!(waited >= ACK_TIMEOUT && waited < ACK_TIMEOUT + Duration::from_millis(100));
    assert_eq!(two.a.open_pipes(), (0, 0));

    // No owner known at all: the same after the same wait.
    two.owner.send_replace(None);
    let mut browser = two.connect(PipeKind::Client, None);
    assert_eq!(next(&mut browser).await, Err(CLOSE_TRY_AGAIN));
}

#[tokio::test]
async fn an_owner_change_closes_pipes_with_1012_on_both_sides() {
    let two = two().await;
    let mut served = two.handoff();

    // The front end sees a new owner: its pipe closes, and the old owner's.
    let mut browser = two.connect(PipeKind::Client, None);
    let (_, mut socket, _) = served.recv().await.unwrap();
    two.owner.send_replace(Some(id("sig-c")));
    assert_eq!(next(&mut browser).await, Err(CLOSE_OWNER_CHANGED));
    assert_eq!(recv_text(&mut socket).await, None);
    assert_eq!(two.a.open_pipes(), (0, 0));

    // The owner loses its lease: it closes its piped sockets.
    two.owner.send_replace(Some(id("sig-b")));
    let mut browser = two.connect(PipeKind::Client, None);
    let (_, mut socket, _) = served.recv().await.unwrap();
    socket.send_text("hi".into()).await.unwrap();
    assert_eq!(next(&mut browser).await, Ok("hi".into()));
    assert_eq!(two.b.open_pipes(), (0, 1));
    two.b_term.send_replace(Term::FrontEnd);
    assert_eq!(next(&mut browser).await, Err(CLOSE_OWNER_CHANGED));
    assert_eq!(recv_text(&mut socket).await, None);
    assert_eq!(two.b.open_pipes(), (0, 0));
}

#[tokio::test]
async fn a_pipe_whose_queue_overflows_is_closed() {
    let two = two().await;
    let mut served = two.handoff();

    // The owner's logic stops reading: past the queue, the pipe closes.
    let PipeEnd { tx, mut rx } = two.connect(PipeKind::Client, None);
    let (_, socket, _) = served.recv().await.unwrap();
    let flood = async {
        for i in 0..PIPE_QUEUE * 4 {
            if tx.send(Sensitive::new(format!("{i}"))).await.is_err() {
                break;
            }
        }
    };
    let ((), closed) = tokio::join!(flood, rx.recv());
    assert_eq!(closed, Some(PipeOut::Close(CLOSE_OVERFLOW)));
    drop(socket);

    // The browser stops reading: the front end's queue overflows, and the
    // owner's socket is closed.
    let mut browser = two.connect(PipeKind::Client, None);
    let (_, mut socket, _) = served.recv().await.unwrap();
    // The browser's own queue holds PIPE_QUEUE frames, the front end's as
    // many again: sending beyond both must end the pipe.
    for i in 0..PIPE_QUEUE * 3 {
        socket.send_text(format!("{i}")).await.unwrap();
        tokio::task::yield_now().await;
    }
    assert_eq!(recv_text(&mut socket).await, None, "the owner's side ends");
    // What was queued is delivered, then the overflow close.
    let mut last = Ok(String::new());
    while let Some(out) = browser.rx.recv().await {
        last = match out {
            PipeOut::Text(t) => Ok(t.into_inner()),
            PipeOut::Close(code) => Err(code),
        };
    }
    assert_eq!(last, Err(CLOSE_OVERFLOW));
}

#[tokio::test]
async fn a_relay_registers_through_the_front_end_with_the_owners_pool() {
    use protocol::control::{Register, RelayToSignaling, SignalingToRelay, register_auth};

    let two = two().await;
    let (shared, pool, _running, _gone) = owner_shared();
    two.b.serve_locally(&shared, &pool);
    let node = id("relay-eu-1");
    let ts = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let register = RelayToSignaling::Register(Register {
        version: PROTOCOL_VERSION,
        auth: register_auth(b"0123456789abcdef0123", &node, ts),
        node: node.clone(),
        region: Region::new("local").unwrap(),
        advertise: vec!["127.0.0.1:40000".into()],
        capacity: 10,
        rooms: Vec::new(),
        ts,
    });
    let mut relay = two.connect(PipeKind::Relay, None);
    send(&relay, &serde_json::to_string(&register).unwrap()).await;
    let reply = next(&mut relay).await.expect("a reply");
    let reply: SignalingToRelay = serde_json::from_str(&reply).unwrap();
    assert!(
        matches!(reply, SignalingToRelay::Registered { .. }),
        "{reply:?}"
    );
    let known = pool.snapshot();
    assert_eq!(known.len(), 1);
    assert_eq!(known[0].node, node, "the owner's pool holds the relay");

    // A bad HMAC is refused by the owner, as on one node.
    let mut forged = two.connect(PipeKind::Relay, None);
    let mut bad = serde_json::to_value(&register).unwrap();
    bad["auth"] = "forged".into();
    send(&forged, &bad.to_string()).await;
    let reply = next(&mut forged).await.expect("a reply");
    assert!(reply.contains("bad auth"), "{reply}");
    assert!(next(&mut forged).await.is_err(), "then the socket closes");
}
