//! Abuse load against a real `signaling` process: 2,000 TCP connections
//! that send nothing, 300 slowloris HTTP requests (one header byte every
//! 200 ms), 200 WebSockets trickling a partial 60 KB frame, 100 patients
//! flooding `join`, 20 clients sending 2 MiB frames over and over — while a
//! well-behaved patient keeps asking for its room and new patients keep
//! joining. The well-behaved side must stay responsive; the figures are
//! printed (run with `--nocapture` to see them).

mod support;

use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::json;
use support::Client;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::task::JoinSet;
use tokio_tungstenite::connect_async;
use tokio_tungstenite::tungstenite::Message;

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Server {
    fn rss_kib(&self) -> u64 {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.0.id())).unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    }
}

fn start() -> (Server, SocketAddr, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_signaling"))
        .args(["--dev", "--no-embedded-relay", "--listen", "127.0.0.1:0"])
        .args(["--log", "error"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start signaling");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let server = Server(child);
    let (mut addr, mut room) = (None, None);
    while addr.is_none() || room.is_none() {
        let line = rx.recv_timeout(Duration::from_secs(30)).expect("banner");
        if let Some(a) = line.strip_prefix("listening on http://") {
            addr = a.trim().parse().ok();
        }
        if let Some((_, r)) = line.split_once("waiting room: ") {
            room = Some(r.trim().to_owned());
        }
    }
    (
        server,
        addr.unwrap_or_else(|| unreachable!()),
        room.unwrap_or_default(),
    )
}

fn hello() -> String {
    json!({"type": "hello", "version": protocol::PROTOCOL_VERSION, "role": "patient"}).to_string()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(i).copied().unwrap_or_default()
}

async fn joined_patient(addr: SocketAddr, room: &str, n: usize) -> Client {
    let mut c = Client::connect(addr).await;
    c.send_raw(&hello()).await;
    c.expect_type("welcome").await;
    let join = json!({"type": "join", "room": room, "display_name": format!("P{n}"), "intake": {"reason": "r"}});
    c.send(&join).await;
    c.expect_type("joined").await;
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn well_behaved_clients_stay_responsive_under_abuse() {
    let (server, addr, room) = start();
    let mut good = joined_patient(addr, &room, 0).await;
    // A well-behaved client stays under the rate limit (20/s): 10 per second.
    let mut pace = tokio::time::interval(Duration::from_millis(100));
    // After a slow round trip, wait a full period again: the default (`Burst`)
    // would fire the missed ticks back to back and exceed the limit itself.
    pace.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut baseline = Vec::new();
    for _ in 0..20 {
        pace.tick().await;
        let t = Instant::now();
        good.ping_room(&room).await;
        baseline.push(t.elapsed());
    }
    baseline.sort();
    let rss_before = server.rss_kib();

    // The attackers run on a runtime of their own (one thread), so their
    // CPU use is bounded and the measuring client is not queued behind them.
    let attack_room = room.clone();
    let (stop_attack, stopped) = tokio::sync::oneshot::channel::<()>();
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel::<usize>();
    let attacker = std::thread::spawn(move || {
        let room = attack_room;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("attack runtime");
        rt.block_on(async move {
            // Idle connections: connected, never a byte.
            let mut idle = Vec::new();
            for _ in 0..2000 {
                if let Ok(s) = TcpStream::connect(addr).await {
                    idle.push(s);
                }
            }
            let mut attack = JoinSet::new();
            // Slowloris: an HTTP request head, one byte every 200 ms.
            for _ in 0..300 {
                attack.spawn(async move {
                    let Ok(mut s) = TcpStream::connect(addr).await else {
                        return;
                    };
                    let _ = s.write_all(b"GET /ws HTTP/1.1\r\nHost: x\r\n").await;
                    let mut tick = tokio::time::interval(Duration::from_millis(200));
                    for b in b"X-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
                        .iter()
                        .cycle()
                    {
                        tick.tick().await;
                        if s.write_all(&[*b]).await.is_err() {
                            return;
                        }
                    }
                });
            }
            // WebSockets that announce a 60 KB text frame and trickle it.
            for _ in 0..200 {
                attack.spawn(async move {
                    let Ok(mut tcp) = TcpStream::connect(addr).await else {
                        return;
                    };
                    let upgrade = "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\
                                   Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\
                                   Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
                    let _ = tcp.write_all(upgrade.as_bytes()).await;
                    let mut head = [0u8; 256];
                    let _ = tcp.read(&mut head).await;
                    // FIN + text, masked, 16-bit length 60000, mask key; then 1 byte per tick.
                    let _ = tcp.write_all(&[0x81, 0xfe, 0xea, 0x60, 1, 2, 3, 4]).await;
                    let mut tick = tokio::time::interval(Duration::from_millis(200));
                    loop {
                        tick.tick().await;
                        if tcp.write_all(b"a").await.is_err() {
                            return;
                        }
                    }
                });
            }
            // Join floods: as fast as the socket takes them, replies drained.
            for i in 0..100 {
                let room = room.clone();
                attack.spawn(async move {
                    let Ok((ws, _)) = connect_async(format!("ws://{addr}/ws")).await else { return };
                    let (mut tx, mut rx) = ws.split();
                    tokio::spawn(async move { while let Some(Ok(_)) = rx.next().await {} });
                    let _ = tx.send(Message::text(hello())).await;
                    // 200 joins per second each: ten times the rate limit.
                    let mut tick = tokio::time::interval(Duration::from_millis(5));
                    for n in 0.. {
                        tick.tick().await;
                        let join = json!({"type": "join", "room": room, "display_name": format!("F{i}-{n}"), "intake": {"reason": "r"}});
                        if tx.send(Message::text(join.to_string())).await.is_err() {
                            return;
                        }
                    }
                });
            }
            // Oversized frames, reconnecting after each close.
            for _ in 0..20 {
                attack.spawn(async move {
                    let big = "x".repeat(2 << 20);
                    let mut tick = tokio::time::interval(Duration::from_millis(100));
                    loop {
                        tick.tick().await;
                        let Ok((mut ws, _)) = connect_async(format!("ws://{addr}/ws")).await else {
                            return;
                        };
                        let _ = ws.send(Message::text(hello())).await;
                        let _ = ws.send(Message::text(big.clone())).await;
                        while let Some(Ok(_)) = ws.next().await {}
                    }
                });
            }

            let _ = ready_tx.send(idle.len());
            let _ = stopped.await;
            attack.abort_all();
            drop(idle);
        });
    });
    let idle_open = ready_rx.await.expect("attack started");

    // Let the attack build up while measuring the well-behaved side.
    let mut during = Vec::new();
    let mut joins = Vec::new();
    let attack_start = Instant::now();
    let mut newcomers = Vec::new();
    while attack_start.elapsed() < Duration::from_secs(6) {
        pace.tick().await;
        let t = Instant::now();
        good.ping_room(&room).await;
        during.push(t.elapsed());
        if during.len() % 10 == 0 {
            let t = Instant::now();
            newcomers.push(joined_patient(addr, &room, during.len()).await);
            joins.push(t.elapsed());
        }
    }
    let rss_during = server.rss_kib();
    let mut probe = TcpStream::connect(addr).await.expect("connect");
    probe
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .expect("write");
    let mut health = String::new();
    let _ = tokio::time::timeout(support::GUARD, probe.read_to_string(&mut health)).await;
    let _ = stop_attack.send(());
    let _ = tokio::task::spawn_blocking(move || attacker.join()).await;

    during.sort();
    joins.sort();
    eprintln!(
        "abuse: {idle_open} idle connections open; baseline get_room p50 {:?} p99 {:?}; under attack ({} round trips) p50 {:?} p99 {:?} max {:?}; \
         new patient connect+hello+join ({}) p50 {:?} max {:?}; signaling RSS {} KiB -> {} KiB",
        percentile(&baseline, 0.5),
        percentile(&baseline, 0.99),
        during.len(),
        percentile(&during, 0.5),
        percentile(&during, 0.99),
        during.last().copied().unwrap_or_default(),
        joins.len(),
        percentile(&joins, 0.5),
        joins.last().copied().unwrap_or_default(),
        rss_before,
        rss_during,
    );
    assert!(
        health.starts_with("HTTP/1.1 200"),
        "/healthz under attack: {health}"
    );
    assert!(
        during.len() >= 20,
        "only {} round trips in 6 s",
        during.len()
    );
    assert!(
        percentile(&during, 0.99) < Duration::from_secs(1),
        "p99 under attack"
    );
    assert!(
        joins.iter().all(|j| *j < Duration::from_secs(3)),
        "joins under attack: {joins:?}"
    );
}
