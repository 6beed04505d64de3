//! Relay CPU per forwarded packet: one publisher (≈2.5 Mbit/s VP8-shaped
//! video + Opus-shaped audio) to N in-memory subscribers on virtual time.
//!
//! ```text
//! cargo run --release -p relay --example fanout_cpu -- [--no-bwe | --bwe-always] [--one-by-one | --paced] [--worst] [--secs S] [N ...]
//! ```
//!
//! `--worst` lists the 15 frames with the worst latency, with the relay's
//! CPU time and the thread's minor page faults in each (to tell the core's
//! own bursts from waiting for a shared CPU).
//!
//! BWE: by default the relay's own policy ([`BwePolicy::SimulcastRooms`]):
//! this publisher sends one layer, so no subscriber gets BWE;
//! `--bwe-always` gives every subscriber BWE and str0m's pacer (the relay's
//! behaviour before the policy); `--no-bwe` turns BWE off in the config.
//!
//! Only the SFU's own work is timed (thread CPU time from
//! `clock_gettime(CLOCK_THREAD_CPUTIME_ID)`, and wall time, around every
//! SFU call). The simulated clients run in the same thread but outside
//! the meter.
//!
//! Latency, per publisher datagram (so per copy: the SFU hands out a
//! batch's copies when the driver polls it after the batch): wall time from
//! the datagram's arrival until the SFU was polled empty after it, i.e.
//! until its last subscriber copy was ready to send. Two arrival patterns:
//! - default: each 20 ms of media (one audio packet and a six-packet video
//!   frame) arrives at one instant and is handed in as one batch, as a
//!   `recvmmsg` would return it: the worst case, every packet waits for the
//!   whole batch;
//! - `--one-by-one`: every datagram is handed in and polled out on its own
//!   (a publisher that paces its packets, a relay that keeps up): no waiting
//!   behind other packets, but no batching either;
//! - `--paced`: the publisher's datagrams arrive one at a time, [`PACE_GAP`]
//!   apart in virtual time (a browser's pacer sends a frame's packets at
//!   about 2.5× the media rate); the relay reads them as a driver would:
//!   when it is free (on the "queued" model below), everything that has
//!   arrived, as one batch. A relay that keeps up handles each datagram on
//!   its own; one that falls behind batches more.
//!
//! "queued" latency, per copy: the same hand-out, on a model of a relay
//! whose one core runs in real time: every SFU call starts at its virtual
//! instant or when the previous call ended, whichever is later, and takes
//! the wall time it took here. It adds what the plain per-copy figure
//! leaves out: waiting for earlier work still in progress (a core that
//! cannot keep up shows a queue that grows), and in `--one-by-one` mode the
//! wait behind the earlier datagrams of the same batch.
//!
//! With BWE (`--bwe-always`) str0m's pacer spreads each subscriber's copies
//! over time: that delay is measured separately, per copy, on virtual time
//! (from the publisher's send to the subscriber's receipt; the simulated
//! network has no delay, so it is the relay's pacing alone).
#![allow(clippy::disallowed_methods)] // a benchmark binary: it reads clocks

use std::time::{Duration, Instant};

use std::collections::HashMap;

use nix::time::{ClockId, clock_gettime};
use relay::sfu::BwePolicy;
use relay::sfu::testing::{Harness, Meter, Publish, video_tag};
use str0m::media::MediaKind;

/// Video packets per 20 ms frame and their size: 50 × 6 × 1050 B ≈ 2.5 Mbit/s.
const PACKETS_PER_FRAME: usize = 6;
const PACKET_BYTES: usize = 1050;

/// `--paced`: gap between the publisher's datagrams, the time a 1050-byte
/// packet takes at 2.5 × 2.5 Mbit/s (a frame's 7 datagrams span 8 ms).
const PACE_GAP: Duration = Duration::from_micros(1344);

/// Frames sent before measuring (4 s): past the first 3 s, in which every
/// subscriber's str0m RTX cache (3 s of sent packets) grows by doubling, all
/// subscribers at once here, which costs bursts of page faults (tens of ms at
/// 200 subscribers). Measured is the steady state after it.
const WARMUP_FRAMES: usize = 200;

/// This thread's CPU time (`CLOCK_THREAD_CPUTIME_ID`: exact at every read,
/// unlike `/proc/thread-self/schedstat`, which moves at scheduler ticks).
fn thread_cpu() -> Duration {
    clock_gettime(ClockId::CLOCK_THREAD_CPUTIME_ID).map_or(Duration::ZERO, Duration::from)
}

fn minflt() -> u64 {
    std::fs::read_to_string("/proc/thread-self/stat")
        .ok()
        .and_then(|s| {
            s.rsplit(')')
                .next()?
                .split_whitespace()
                .nth(7)?
                .parse()
                .ok()
        })
        .unwrap_or(0)
}

fn wall() -> Duration {
    static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    START.get_or_init(Instant::now).elapsed()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i]
}

/// Virtual send times of the publisher's packets, by (video, sending seq).
type Sent = HashMap<(bool, u64), Instant>;

/// 20 ms of publisher media: one audio packet, one video frame.
fn send(h: &mut Harness, publisher: usize, frame: u64, sent: &mut Sent) {
    let now = h.now;
    let p = h.peer_mut(publisher);
    if let Some(seq) = p.send_audio(now, 30) {
        sent.insert((false, seq), now);
    }
    let key = frame.is_multiple_of(100) || p.keyframe_wanted(None);
    for seq in p.send_video_frame(now, None, key, PACKETS_PER_FRAME, PACKET_BYTES) {
        sent.insert((true, seq & 0xffff_ffff), now);
    }
}

/// Per copy received by a subscriber: virtual time from the publisher's
/// send to the subscriber's receipt (the relay's pacing delay).
fn pacing_delays(h: &Harness, subs: &[usize], from: &[usize], sent: &Sent) -> Vec<Duration> {
    let mut out = Vec::new();
    for (&s, &b) in subs.iter().zip(from) {
        let peer = h.peer(s);
        for r in &peer.received[b..] {
            let video = peer
                .remote_media
                .get(&r.mid)
                .is_some_and(|(k, _)| *k == MediaKind::Video);
            let seq = if video {
                video_tag(&r.payload).map(|t| u64::from(t.1))
            } else {
                r.payload
                    .get(..8)
                    .and_then(|b| b.try_into().ok())
                    .map(u64::from_be_bytes)
            };
            if let Some(at) = seq.and_then(|q| sent.get(&(video, q))) {
                out.push(r.at.saturating_duration_since(*at));
            }
        }
    }
    out
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Bwe {
    Off,
    Policy,
    Always,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Arrival {
    Batched,
    OneByOne,
    Paced,
}

fn run(subscribers: usize, secs: u64, bwe: Bwe, arrival: Arrival, show_worst: bool) {
    let setup = Instant::now();
    let mut h = Harness::with_config(Instant::now(), |c| {
        c.bwe_initial_bps = (bwe != Bwe::Off).then_some(5_000_000);
        c.bwe_policy = if bwe == Bwe::Always {
            BwePolicy::Always
        } else {
            BwePolicy::SimulcastRooms
        };
        c.max_participants = subscribers + 10;
    });
    let mut sent = Sent::new();
    let publisher = h.join(
        "bench",
        "pub",
        &Publish {
            audio: true,
            video: true,
            simulcast: Vec::new(),
        },
    );
    let subs: Vec<usize> = (0..subscribers)
        .map(|i| h.join("bench", &format!("s{i}"), &Publish::default()))
        .collect();
    let wired = h.run_until(
        |h| subs.iter().all(|&s| h.peer(s).remote_media.len() == 2),
        Duration::from_secs(60),
    );
    assert!(wired, "subscribers connected");
    if arrival == Arrival::Paced {
        let addr = h.peer(publisher).addr;
        h.set_pacing(addr, PACE_GAP);
    }
    let mut frame = 0;
    for _ in 0..WARMUP_FRAMES {
        send(&mut h, publisher, frame, &mut sent);
        frame += 1;
        h.run_for(Duration::from_millis(20));
    }
    let setup = setup.elapsed();

    let received_before: Vec<usize> = subs.iter().map(|&s| h.peer(s).received.len()).collect();
    let before = h.sfu.stats();
    h.meter = Some(Meter::new(thread_cpu, wall, Some(h.peer(publisher).addr)));
    h.one_by_one = arrival == Arrival::OneByOne;
    let frames = secs * 50;
    let mut worst = Vec::new();
    for i in 0..frames {
        send(&mut h, publisher, frame, &mut sent);
        frame += 1;
        let f0 = minflt();
        let (n, cpu0) = h
            .meter
            .as_ref()
            .map_or((0, Duration::ZERO), |m| (m.latency.len(), m.total_cpu));
        h.run_for(Duration::from_millis(20));
        if let Some(m) = &h.meter {
            let max = m.latency[n..].iter().max().copied().unwrap_or_default();
            worst.push((
                max,
                i,
                m.total_cpu.saturating_sub(cpu0),
                minflt().saturating_sub(f0),
            ));
        }
    }
    if show_worst {
        worst.sort_unstable();
        for (max, i, cpu, pin) in worst.iter().rev().take(15) {
            println!(
                "frame {i} (t={} ms): worst latency {max:?}, relay cpu in the 20 ms {cpu:?}, minor faults {pin}",
                i * 20
            );
        }
    }
    let meter = h.meter.take().expect("meter");
    let after = h.sfu.stats();
    h.run_for(Duration::from_millis(500));

    let forwarded = after.rtp_forwarded - before.rtp_forwarded;
    let sent_pkts = frames * (PACKETS_PER_FRAME as u64 + 1);
    let expected = sent_pkts * subscribers as u64;
    let got: u64 = subs
        .iter()
        .zip(&received_before)
        .map(|(&s, &b)| (h.peer(s).received.len() - b) as u64)
        .sum();
    let video_subs = subs
        .iter()
        .filter(|&&s| {
            h.peer(s)
                .remote_media
                .values()
                .any(|(k, _)| *k == MediaKind::Video)
        })
        .count();
    let mut latency = meter.latency.clone();
    latency.sort_unstable();
    let mut copies = meter.copy_latency.clone();
    copies.sort_unstable();
    let mut queued = meter.queued_latency.clone();
    queued.sort_unstable();
    let mut pacing = pacing_delays(&h, &subs, &received_before, &sent);
    pacing.sort_unstable();
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    println!(
        "{subscribers:>4} subs | bwe {:>6} | {:>7} fwd | cpu {:>5.2} µs/pkt (wall {:>5.2}) | relay cpu {:>6.1} ms per media-s | {} latency per pkt p50 {:>5.0} µs p99 {:>5.0} µs max {:>5.0} µs, per copy p50 {:>5.0} µs p99 {:>5.0} µs, queued p50 {:>5.0} µs p99 {:>5.0} µs max {:>6.0} µs | pacing p50 {:>5.0} µs p99 {:>5.0} µs max {:>6.0} µs | delivered {:.4} of {expected} | out datagrams {} | setup {:.1}s ({video_subs} video subs)",
        match bwe {
            Bwe::Off => "off",
            Bwe::Policy => "policy",
            Bwe::Always => "always",
        },
        forwarded,
        us(meter.total_cpu) / forwarded.max(1) as f64,
        us(meter.total_wall) / forwarded.max(1) as f64,
        meter.total_cpu.as_secs_f64() * 1e3 / secs as f64,
        match arrival {
            Arrival::Batched => "batched",
            Arrival::OneByOne => "one-by-one",
            Arrival::Paced => "paced",
        },
        us(percentile(&latency, 0.5)),
        us(percentile(&latency, 0.99)),
        us(percentile(&latency, 1.0)),
        us(percentile(&copies, 0.5)),
        us(percentile(&copies, 0.99)),
        us(percentile(&queued, 0.5)),
        us(percentile(&queued, 0.99)),
        us(percentile(&queued, 1.0)),
        us(percentile(&pacing, 0.5)),
        us(percentile(&pacing, 0.99)),
        us(percentile(&pacing, 1.0)),
        got as f64 / expected.max(1) as f64,
        after.packets_out - before.packets_out,
        setup.as_secs_f64(),
    );
}

fn main() {
    let mut bwe = Bwe::Policy;
    let mut arrival = Arrival::Batched;
    let mut show_worst = false;
    let mut secs = 5;
    let mut counts = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--no-bwe" => bwe = Bwe::Off,
            "--bwe-always" => bwe = Bwe::Always,
            "--one-by-one" => arrival = Arrival::OneByOne,
            "--paced" => arrival = Arrival::Paced,
            "--worst" => show_worst = true,
            "--secs" => secs = args.next().and_then(|s| s.parse().ok()).unwrap_or(secs),
            n => counts.extend(n.parse::<usize>().ok()),
        }
    }
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!("load average at start: {}", load.trim());
    if counts.is_empty() {
        counts = vec![50, 200, 500];
    }
    for n in counts {
        run(n, secs, bwe, arrival, show_worst);
    }
}
