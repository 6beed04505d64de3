//! How many waiting patients one signaling process holds, and its memory per
//! connection.
//!
//! Opens N patient WebSockets to a running signaling (127.0.0.1 only), each
//! says hello and joins one waiting room; prints the server's RSS (from
//! `/proc/<pid>/status`) before and after, then measures one O(n) position
//! update: the head of the queue leaves and every other patient must receive
//! its new position.
//!
//! ```text
//! cargo build --release -p signaling --bins --examples
//! target/release/signaling --dev --log warn & PID=$!
//! target/release/examples/lobby_load --pid $PID --patients 19500
//! ```
//!
//! Each side needs one file descriptor per patient: raise `ulimit -n` first
//! where the hard limit allows (it is 20000 on the development machines).
#![forbid(unsafe_code)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use futures_util::{SinkExt as _, StreamExt as _, stream};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, connect_async};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

struct Args {
    addr: SocketAddr,
    room: String,
    patients: usize,
    concurrency: usize,
    pid: u32,
}

fn parse_args() -> Result<Args> {
    let mut a = Args {
        addr: "127.0.0.1:8080".parse()?,
        room: "demo-room".into(),
        patients: 5000,
        concurrency: 256,
        pid: 0,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let v = it.next().with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--addr" => a.addr = v.parse()?,
            "--room" => a.room = v,
            "--patients" => a.patients = v.parse()?,
            "--concurrency" => a.concurrency = v.parse()?,
            "--pid" => a.pid = v.parse()?,
            _ => bail!("unknown flag {flag}"),
        }
    }
    if !a.addr.ip().is_loopback() {
        bail!("only 127.0.0.1 targets are allowed");
    }
    if a.pid == 0 {
        bail!("--pid <signaling pid> is required (to read its memory)");
    }
    Ok(a)
}

/// VmRSS of `pid` in KiB.
fn rss_kib(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .context("no VmRSS")
}

async fn next_json(ws: &mut Ws) -> Result<Value> {
    loop {
        match tokio::time::timeout(Duration::from_secs(60), ws.next()).await? {
            Some(Ok(Message::Text(t))) => return Ok(serde_json::from_str(t.as_str())?),
            Some(Ok(_)) => {}
            other => bail!("connection ended: {other:?}"),
        }
    }
}

async fn expect(ws: &mut Ws, ty: &str) -> Result<Value> {
    loop {
        let v = next_json(ws).await?;
        if v["type"] == ty {
            return Ok(v);
        }
        if v["type"] == "error" {
            bail!("error while waiting for {ty}: {v}");
        }
    }
}

async fn hello(addr: SocketAddr) -> Result<Ws> {
    let (mut ws, _) = connect_async(format!("ws://{addr}/ws")).await?;
    let hello = json!({"type": "hello", "version": protocol::PROTOCOL_VERSION, "role": "patient"});
    ws.send(Message::text(hello.to_string())).await?;
    expect(&mut ws, "welcome").await?;
    Ok(ws)
}

/// One patient: hello, join; returns the socket and its first position.
async fn patient(addr: SocketAddr, join: String) -> Result<(Ws, u64)> {
    let mut ws = hello(addr).await?;
    ws.send(Message::text(join)).await?;
    expect(&mut ws, "joined").await?;
    let status = expect(&mut ws, "queue_status").await?;
    Ok((ws, status["position"].as_u64().unwrap_or(0)))
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = parse_args()?;
    // The room's questions, to answer the required ones.
    let mut probe = hello(args.addr).await?;
    let get = json!({"type": "get_room", "room": args.room});
    probe.send(Message::text(get.to_string())).await?;
    let info = expect(&mut probe, "room_info").await?;
    let mut intake = serde_json::Map::new();
    for q in info["intake"].as_array().into_iter().flatten() {
        if let Some(id) = q["id"].as_str() {
            intake.insert(id.to_owned(), json!("load test"));
        }
    }
    drop(probe);

    let before = rss_kib(args.pid)?;
    println!("signaling pid {} RSS before: {before} KiB", args.pid);
    let started = Instant::now();
    let joins = (0..args.patients).map(|i| {
        let join = json!({"type": "join", "room": args.room,
                          "display_name": format!("Load patient {i}"), "intake": intake});
        patient(args.addr, join.to_string())
    });
    let mut sockets = Vec::with_capacity(args.patients);
    let mut max_position = 0;
    let mut results = stream::iter(joins).buffer_unordered(args.concurrency);
    while let Some(r) = results.next().await {
        let (ws, position) = r?;
        max_position = max_position.max(position);
        sockets.push((ws, position));
        if sockets.len() % 5000 == 0 {
            println!(
                "  {} joined after {:.1} s, RSS {} KiB",
                sockets.len(),
                started.elapsed().as_secs_f64(),
                rss_kib(args.pid)?
            );
        }
    }
    let took = started.elapsed();
    // Let the server settle (allocator, outbound queues) before measuring.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = rss_kib(args.pid)?;
    let n = sockets.len() as u64;
    println!(
        "{n} patients waiting (max position {max_position}) in {:.1} s ({:.0} joins/s)",
        took.as_secs_f64(),
        n as f64 / took.as_secs_f64()
    );
    println!(
        "RSS after: {after} KiB; +{} KiB = {:.1} KiB per waiting patient connection",
        after.saturating_sub(before),
        after.saturating_sub(before) as f64 / n as f64
    );

    // One O(n) update: the patient at position 1 leaves; everyone else moves
    // up. One reader task per socket reports each queue_status.
    let mut tasks = Vec::new();
    let mut positions = Vec::with_capacity(sockets.len());
    let (pos_tx, mut pos_rx) = tokio::sync::mpsc::unbounded_channel::<(usize, u64)>();
    for (i, (mut ws, position)) in sockets.into_iter().enumerate() {
        positions.push(position);
        let tx = pos_tx.clone();
        let (cmd_tx, mut cmd_rx) = tokio::sync::mpsc::unbounded_channel::<String>();
        tasks.push(cmd_tx);
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    frame = ws.next() => match frame {
                        Some(Ok(Message::Text(t))) => {
                            let v: Value = serde_json::from_str(t.as_str()).unwrap_or_default();
                            if v["type"] == "queue_status" {
                                let _ = tx.send((i, v["position"].as_u64().unwrap_or(0)));
                            }
                        }
                        Some(Ok(_)) => {}
                        _ => break,
                    },
                    cmd = cmd_rx.recv() => match cmd {
                        Some(text) => { let _ = ws.send(Message::text(text)).await; }
                        None => break,
                    },
                }
            }
        });
    }
    drop(pos_tx);
    let head = positions
        .iter()
        .position(|p| *p == 1)
        .context("nobody at position 1")?;
    let t0 = Instant::now();
    tasks[head].send(json!({"type": "leave"}).to_string())?;
    let mut remaining = positions.iter().filter(|p| **p > 1).count();
    while remaining > 0 {
        let (i, p) = tokio::time::timeout(Duration::from_secs(60), pos_rx.recv())
            .await?
            .context("readers ended")?;
        if p + 1 == positions[i] {
            positions[i] = p;
            remaining -= 1;
        }
    }
    println!(
        "head left: all {} other patients received their new position in {:.0} ms",
        tasks.len() - 1,
        t0.elapsed().as_secs_f64() * 1000.0
    );
    Ok(())
}
