//! The synthetic patients and clinicians of `bench lobby`, and the state they share:
//! the queue of bench's waiting patients (clinicians admit the oldest), when each
//! admit was sent, and the latency histograms.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use protocol::client::{ClientToSignaling, IntakeAnswers, Role, SignalingToClient};
use protocol::{ParticipantId, RoomId, Sensitive};
use tokio::sync::watch;
use tokio::time::MissedTickBehavior;

use super::client::Conn;
use crate::Result;
use crate::stats::DurationHistogram;

/// Latencies measured by all users.
#[derive(Debug, Default)]
pub struct Hists {
    /// Connect → `queue_status` (seated, position known).
    pub join: DurationHistogram,
    /// Admit sent → a waiting patient behind sees its position drop.
    pub position: DurationHistogram,
    /// Admit sent → the patient receives `admitted`.
    pub admit: DurationHistogram,
    /// Admit sent → the clinician receives `ok`.
    pub admit_ack: DurationHistogram,
}

/// Counters of all users.
#[derive(Debug, Default)]
pub struct Counters {
    /// Patients seated (ever).
    pub joined: AtomicU64,
    /// Patients waiting now.
    pub waiting: AtomicU64,
    /// Patients admitted.
    pub admitted: AtomicU64,
    /// Consultations ended.
    pub ended: AtomicU64,
    /// Users that failed (connect, protocol error, closed early).
    pub errors: AtomicU64,
    /// Admit ticks skipped because the clinician was still in a call or nobody waited.
    pub idle_ticks: AtomicU64,
    /// Events clinicians received (queue snapshots, arrivals, updates, waiting times).
    pub clinician_events: AtomicU64,
}

/// What every user task shares.
#[derive(Debug)]
pub struct Shared {
    /// Signaling's WebSocket URLs (users are spread over them round-robin).
    pub urls: Vec<String>,
    /// The waiting room.
    pub room: RoomId,
    /// Answers to its intake questions.
    pub intake: IntakeAnswers,
    /// Bench patients waiting, oldest first.
    pub waiting: Mutex<VecDeque<ParticipantId>>,
    admit_sent: Mutex<HashMap<ParticipantId, Instant>>,
    last_admit: Mutex<Option<Instant>>,
    /// Latencies.
    pub hists: Mutex<Hists>,
    /// Counters.
    pub counters: Counters,
    /// Clinicians admit only while this is set (after the fill).
    pub admitting: AtomicBool,
    /// Becomes true when users must stop.
    pub stop: watch::Receiver<bool>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    /// Shared state for users of `room` at `url`.
    pub fn new(
        urls: Vec<String>,
        room: RoomId,
        intake: IntakeAnswers,
        stop: watch::Receiver<bool>,
    ) -> Self {
        Shared {
            urls,
            room,
            intake,
            waiting: Mutex::default(),
            admit_sent: Mutex::default(),
            last_admit: Mutex::default(),
            hists: Mutex::default(),
            counters: Counters::default(),
            admitting: AtomicBool::new(false),
            stop,
        }
    }

    /// The URL user number `i` connects to.
    pub fn url(&self, i: u64) -> &str {
        let n = self.urls.len().max(1) as u64;
        usize::try_from(i % n)
            .ok()
            .and_then(|k| self.urls.get(k))
            .map_or("", String::as_str)
    }

    /// The latency histograms.
    pub fn hists(&self) -> MutexGuard<'_, Hists> {
        lock(&self.hists)
    }
}

/// Resolves once the run stops (drops watch's non-`Send` guard inside).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// One patient: connect, join, wait (recording position updates), get admitted, leave
/// when the consultation ends or the run stops.
pub async fn patient(sh: Arc<Shared>, i: u64) {
    if let Err(e) = run_patient(&sh, i).await {
        sh.counters.errors.fetch_add(1, Relaxed);
        tracing::debug!(patient = i, error = %e, "patient failed");
    }
}

async fn run_patient(sh: &Shared, i: u64) -> Result<()> {
    let t0 = Instant::now();
    let mut conn = Conn::open(sh.url(i), Role::Patient, None).await?;
    conn.send(&ClientToSignaling::Join {
        room: sh.room.clone(),
        display_name: Sensitive::new(format!("Bench patient {i}")),
        intake: Sensitive::new(sh.intake.clone()),
    })
    .await?;
    let SignalingToClient::Joined { participant, .. } = conn
        .expect(|m| matches!(m, SignalingToClient::Joined { .. }))
        .await?
    else {
        return Ok(());
    };
    let SignalingToClient::QueueStatus { mut position, .. } = conn
        .expect(|m| matches!(m, SignalingToClient::QueueStatus { .. }))
        .await?
    else {
        return Ok(());
    };
    sh.hists().join.record(t0.elapsed());
    lock(&sh.waiting).push_back(participant.clone());
    sh.counters.joined.fetch_add(1, Relaxed);
    sh.counters.waiting.fetch_add(1, Relaxed);
    let mut waiting = true;
    let mut stop = sh.stop.clone();
    loop {
        let msg = tokio::select! {
            () = stopped(&mut stop) => break,
            m = conn.recv() => m,
        };
        let now = Instant::now();
        match msg {
            None => {
                return Err(crate::Error::Negotiation(
                    "signaling closed the seat".into(),
                ));
            }
            Some(Err(e)) => return Err(e),
            Some(Ok(SignalingToClient::QueueStatus { position: p, .. })) => {
                if let (Some(new), Some(old)) = (p, position)
                    && new < old
                    && let Some(t) = *lock(&sh.last_admit)
                {
                    sh.hists().position.record(now.saturating_duration_since(t));
                }
                position = p;
            }
            Some(Ok(SignalingToClient::Admitted { .. })) => {
                if let Some(t) = lock(&sh.admit_sent).remove(&participant) {
                    sh.hists().admit.record(now.saturating_duration_since(t));
                }
                if std::mem::take(&mut waiting) {
                    sh.counters.waiting.fetch_sub(1, Relaxed);
                }
                sh.counters.admitted.fetch_add(1, Relaxed);
            }
            Some(Ok(
                SignalingToClient::ConsultationEnded
                | SignalingToClient::Left
                | SignalingToClient::Denied { .. },
            )) => {
                sh.counters.ended.fetch_add(1, Relaxed);
                break;
            }
            Some(Ok(_)) => {}
        }
    }
    if waiting {
        sh.counters.waiting.fetch_sub(1, Relaxed);
    }
    conn.close().await;
    Ok(())
}

/// How a clinician works.
#[derive(Debug, Clone, Copy)]
pub struct ClinicianPlan {
    /// Time between admit attempts.
    pub interval: Duration,
    /// First attempt.
    pub first: Instant,
    /// How long each consultation lasts before the clinician ends it.
    pub call: Duration,
    /// The clinician's number (which URL it connects to: see [`Shared::url`]).
    pub index: u64,
}

enum State {
    Idle,
    Admitting {
        request: u64,
        sent: Instant,
        participant: ParticipantId,
    },
    InCall {
        participant: ParticipantId,
        until: Instant,
    },
    Ending {
        request: u64,
    },
}

/// One clinician: subscribe to the organisation's queues, then admit the oldest bench
/// patient every `plan.interval` while idle, end the consultation after `plan.call`.
pub async fn clinician(sh: Arc<Shared>, session: Arc<str>, plan: ClinicianPlan) {
    if let Err(e) = run_clinician(&sh, &session, plan).await {
        sh.counters.errors.fetch_add(1, Relaxed);
        tracing::warn!(error = %e, "clinician failed");
    }
}

async fn run_clinician(sh: &Shared, session: &str, plan: ClinicianPlan) -> Result<()> {
    let mut conn = Conn::open(sh.url(plan.index), Role::Clinician, Some(session)).await?;
    conn.send(&ClientToSignaling::Subscribe { request: Some(0) })
        .await?;
    let mut tick = tokio::time::interval_at(plan.first.into(), plan.interval);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut stop = sh.stop.clone();
    let mut state = State::Idle;
    let mut next_request = 1u64;
    let far = Instant::now() + Duration::from_secs(86_400);
    loop {
        let until = match &state {
            State::InCall { until, .. } => *until,
            _ => far,
        };
        tokio::select! {
            () = stopped(&mut stop) => break,
            _ = tick.tick() => {
                let ready = matches!(state, State::Idle) && sh.admitting.load(Relaxed);
                let next = if ready { lock(&sh.waiting).pop_front() } else { None };
                let Some(participant) = next else {
                    sh.counters.idle_ticks.fetch_add(1, Relaxed);
                    continue;
                };
                let (request, sent) = (next_request, Instant::now());
                next_request += 1;
                lock(&sh.admit_sent).insert(participant.clone(), sent);
                *lock(&sh.last_admit) = Some(sent);
                conn.send(&ClientToSignaling::Admit {
                    participant: participant.clone(),
                    request: Some(request),
                }).await?;
                state = State::Admitting { request, sent, participant };
            }
            () = tokio::time::sleep_until(until.into()) => {
                if let State::InCall { participant, .. } = &state {
                    let request = next_request;
                    next_request += 1;
                    conn.send(&ClientToSignaling::EndConsultation {
                        participant: participant.clone(),
                        request: Some(request),
                    }).await?;
                    state = State::Ending { request };
                }
            }
            m = conn.recv() => {
                let Some(m) = m else {
                    return Err(crate::Error::Negotiation("signaling closed".into()));
                };
                state = on_message(sh, state, m?, plan.call);
            }
        }
    }
    conn.close().await;
    Ok(())
}

fn on_message(sh: &Shared, state: State, m: SignalingToClient, call: Duration) -> State {
    match (state, m) {
        (
            State::Admitting {
                request,
                sent,
                participant,
            },
            SignalingToClient::Ok { request: Some(r) },
        ) if r == request => {
            sh.hists().admit_ack.record(sent.elapsed());
            State::InCall {
                participant,
                until: Instant::now() + call,
            }
        }
        (State::Ending { request }, SignalingToClient::Ok { request: Some(r) }) if r == request => {
            State::Idle
        }
        (
            State::Admitting { request, .. } | State::Ending { request },
            SignalingToClient::Error {
                request: Some(r), ..
            },
        ) if r == request => {
            sh.counters.errors.fetch_add(1, Relaxed);
            State::Idle
        }
        (state, _) => {
            sh.counters.clinician_events.fetch_add(1, Relaxed);
            state
        }
    }
}
