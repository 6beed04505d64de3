//! Two signaling nodes sharing a real Redis, two relays in one region (issue 7): a
//! patient joins through node A, a clinician logged in on node B sees them (with
//! their name) and admits them, the call has media both ways; then a node dies and
//! everyone reconnects (back-off with jitter, next URL of their list) and resumes:
//! the patient keeps participant id, seat and position, the clinician keeps the
//! session, and the call keeps its media throughout (it never passes through
//! signaling). Prints the arrival latency across nodes, the takeover and resume
//! times, and the largest media gap at each client.
//!
//! Opens WebRTC sockets: run inside the loopback namespace (scripts/test).
#![allow(clippy::large_futures)] // webrtc-rs futures

use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, ensure};
use protocol::client::{ClientToSignaling, Role, SeatState, SignalingToClient};
use protocol::{ParticipantId, RoomId, Sensitive};
use tests::client::{Dial, PATIENCE, TestClient, login_at};
use tests::cluster::{ClusterSpec, RelaySpec, TestCluster};
use tests::directory::NORTH;
use tests::media::Kind;
use tests::scenario::{MEDIA_PATIENCE, two_way_media};
use tests::stats::longest_silence;

/// A clinician on one node sees a patient who joined through another within this
/// (as on one node: the node the patient used pipes the join to the owner, which
/// tells the clinician's node).
const ARRIVAL_BUDGET: Duration = Duration::from_millis(500);

/// The lease (1500 ms in the test cluster) must expire before the other node takes
/// over; everything after that is reconnects with back-off.
const TAKEOVER_BOUND: Duration = Duration::from_secs(15);

/// The longest silence either party of the call may see while signaling changes
/// hands (audio flows every 20 ms; the media path is untouched).
const MEDIA_GAP_BOUND: Duration = Duration::from_secs(1);

fn two_nodes() -> ClusterSpec {
    ClusterSpec::redis_nodes(
        2,
        vec![
            RelaySpec::new("r-eu-1", "eu"),
            RelaySpec::new("r-eu-2", "eu"),
        ],
    )
}

/// A patient dialled with every node's URL, first `first`, that joins the north
/// room; returns it, its participant id and the time from `join` to the clinician's
/// `patient_arrived`.
async fn join_seen_by(
    cluster: &TestCluster,
    first: usize,
    tag: &str,
    clinician: &TestClient,
) -> Result<(TestClient, ParticipantId, Duration)> {
    let dial = Dial::nodes(&cluster.ws_urls(), first);
    let patient = TestClient::connect_with(dial, tag, Role::Patient, None, None).await?;
    let sent = Instant::now();
    patient.send(ClientToSignaling::Join {
        room: RoomId::new(NORTH.room)?,
        display_name: Sensitive::new(tag.to_owned()),
        intake: Sensitive::new(std::collections::BTreeMap::new()),
    })?;
    // The clinician sees the name: the patient is in their organisation.
    let seen = clinician.wait_patient(tag).await?;
    let latency = sent.elapsed();
    let id = patient
        .wait_for(PATIENCE, |m| match m {
            SignalingToClient::Joined { participant, .. } => Some(participant.clone()),
            _ => None,
        })
        .await?;
    ensure!(seen == id, "clinician saw {seen}, patient has {id}");
    Ok((patient, id, latency))
}

/// A clinician logged in on node `first` and connected there (dialled with every
/// node's URL).
async fn clinician_on(cluster: &TestCluster, first: usize, username: &str) -> Result<TestClient> {
    let token = login_at(cluster.http_addr_of(first), username).await?;
    let dial = Dial::nodes(&cluster.ws_urls(), first);
    TestClient::clinician_with(dial, token, username, None).await
}

/// The clinician admits `id`; both get `call_ready` for one call on one relay and
/// media flows both ways. Returns the relay.
async fn admit_into_call(
    clinician: &TestClient,
    patient: &TestClient,
    id: &ParticipantId,
) -> Result<String> {
    clinician.admit(id).await?;
    let (call, relay) = patient.wait_call_ready().await?;
    let (c_call, c_relay) = clinician.wait_call_ready().await?;
    ensure!(call == c_call && relay == c_relay, "one call on one relay");
    two_way_media(patient, clinician).await?;
    Ok(relay)
}

/// Awaits the patient's `joined` with `resumed` after inbox index `from`; returns its
/// participant id.
async fn resumed(patient: &TestClient, from: usize, within: Duration) -> Result<ParticipantId> {
    patient
        .wait_from(from, within, |m| match m {
            SignalingToClient::Joined {
                participant,
                resumed: true,
                ..
            } => Some(participant.clone()),
            _ => None,
        })
        .await
        .with_context(|| {
            format!(
                "{} did not resume; link {:?}",
                patient.tag(),
                patient.link_view()
            )
        })
}

/// Awaits `count` more packets of each kind from `from` at `rx` (after `since`).
async fn more_media(rx: &TestClient, from: &str, since: Instant, count: usize) -> Result<()> {
    for kind in [Kind::Audio, Kind::Video] {
        rx.media()
            .wait_count(0, count, MEDIA_PATIENCE, |p| {
                p.from == from && p.kind == kind && p.at >= since
            })
            .await
            .with_context(|| format!("{} gets no more {kind:?} from {from}", rx.tag()))?;
    }
    Ok(())
}

/// The call kept its peer connections (same generation, same relay), no call task
/// hit an error, and media never stopped for longer than [`MEDIA_GAP_BOUND`] at
/// either client from `start` to now. Prints the largest gaps.
fn media_kept(
    what: &str,
    pairs: [(&TestClient, &str); 2],
    relay: &str,
    generations: [Option<u32>; 2],
    start: Instant,
) -> Result<()> {
    let end = Instant::now();
    for ((rx, from), generation) in pairs.into_iter().zip(generations) {
        let view = rx.call_view();
        ensure!(view.errors.is_empty(), "{}: {:?}", rx.tag(), view.errors);
        ensure!(
            view.generation == generation && view.relay.as_deref() == Some(relay),
            "{}: the call's peer connection was replaced ({:?} on {:?}, was {generation:?} on \
             {relay}); placements {:?}",
            rx.tag(),
            view.generation,
            view.relay,
            view.placements
        );
        let gap = longest_silence(&rx.media().snapshot(), from, start, end);
        println!(
            "{what}: largest media gap at {} (from {from}) over {:?}: {gap:?}",
            rx.tag(),
            end - start
        );
        ensure!(
            gap <= MEDIA_GAP_BOUND,
            "{}: media from {from} stopped for {gap:?} (bound {MEDIA_GAP_BOUND:?})",
            rx.tag()
        );
    }
    Ok(())
}

/// The clinician's latest snapshot (after `from`) shows `id` admitted.
async fn clinician_sees_admitted(
    clinician: &TestClient,
    from: usize,
    id: &ParticipantId,
) -> Result<()> {
    clinician
        .wait_from(from, TAKEOVER_BOUND, |m| match m {
            SignalingToClient::QueueSnapshot { rooms, .. } => rooms
                .iter()
                .flat_map(|r| &r.entries)
                .find(|e| e.participant == *id)
                .map(|e| e.state == SeatState::Admitted)
                .filter(|admitted| *admitted),
            _ => None,
        })
        .await
        .map(|_| ())
        .with_context(|| {
            format!(
                "clinician never saw {id} admitted again; link {:?}",
                clinician.link_view()
            )
        })
}

/// Issue 7's scenario: node A (the lobby owner) carries the patient, node B the
/// clinician; A is killed: B takes the lobby over, the patient resumes on B with
/// the same seat, the call keeps its media.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn patient_via_a_admitted_on_b_resumes_on_b_when_a_dies_and_the_call_keeps_media()
-> Result<()> {
    let mut cluster = TestCluster::start_with(two_nodes()).await?;
    let (a, b) = (0, 1);
    assert_eq!(
        cluster.lobby_owner(PATIENCE).await?,
        a,
        "node A starts first and owns the lobby"
    );

    // Arrival latency: a clinician on the owner (the one-node path) and one on B.
    let local = clinician_on(&cluster, a, NORTH.clinicians[1]).await?;
    let (waiting, waiting_id, one_node) = join_seen_by(&cluster, a, "waiting", &local).await?;
    let clinician = clinician_on(&cluster, b, NORTH.clinicians[0]).await?;
    let (patient, id, across) = join_seen_by(&cluster, a, "patient", &clinician).await?;
    println!(
        "patient_arrived latency: same node {one_node:?}, across nodes (join on A, clinician on B) {across:?}"
    );
    assert!(one_node <= ARRIVAL_BUDGET, "{one_node:?}");
    assert!(across <= ARRIVAL_BUDGET, "{across:?} > {ARRIVAL_BUDGET:?}");
    let position = waiting
        .wait_for(PATIENCE, |m| match m {
            SignalingToClient::QueueStatus { position, .. } => *position,
            _ => None,
        })
        .await?;

    let relay = admit_into_call(&clinician, &patient, &id).await?;
    let generations = [
        patient.call_view().generation,
        clinician.call_view().generation,
    ];
    let marks = (
        patient.inbox_len(),
        clinician.inbox_len(),
        waiting.inbox_len(),
    );

    let killed = cluster.kill_signaling(a)?;
    let owner = cluster.new_lobby_owner(a, TAKEOVER_BOUND).await?;
    println!(
        "takeover: node {} owns the lobby {:?} after A was killed",
        cluster.node_id(owner),
        killed.elapsed()
    );
    assert_eq!(owner, b);

    let resumed_id = resumed(&patient, marks.0, TAKEOVER_BOUND).await?;
    println!(
        "patient resumed on B {:?} after the kill; link {:?}",
        killed.elapsed(),
        patient.link_view()
    );
    assert_eq!(resumed_id, id, "same participant id, same seat");
    assert_eq!(patient.link_view().url, cluster.ws_url_of(b));
    clinician_sees_admitted(&clinician, marks.1, &id).await?;
    println!(
        "clinician resubscribed {:?} after the kill",
        killed.elapsed()
    );

    // The waiting patient keeps seat and place.
    assert_eq!(
        resumed(&waiting, marks.2, TAKEOVER_BOUND).await?,
        waiting_id
    );
    let after = waiting
        .wait_from(marks.2, PATIENCE, |m| match m {
            SignalingToClient::QueueStatus { position, .. } => *position,
            _ => None,
        })
        .await?;
    assert_eq!(after, position, "the waiting patient keeps its place");

    // Media went on during the takeover and goes on after it.
    let now = Instant::now();
    more_media(&patient, clinician.tag(), now, 25).await?;
    more_media(&clinician, patient.tag(), now, 25).await?;
    media_kept(
        "kill owner A",
        [(&patient, clinician.tag()), (&clinician, patient.tag())],
        &relay,
        generations,
        killed,
    )?;

    // The lobby serves on B: a new patient through B reaches the clinician.
    let (_late, _, latency) = join_seen_by(&cluster, b, "late", &clinician).await?;
    println!("after the takeover: patient_arrived on B in {latency:?}");
    drop(local);
    Ok(())
}

/// The patient's node is only a front end (node 0 owns the lobby, the patient comes
/// in through node 1, piped to the owner): killing the patient's node changes no
/// owner; the patient reconnects to the owner and resumes the same seat, the call
/// keeps its media, the clinician's socket on the owner is untouched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_patients_front_end_node_keeps_seat_and_media() -> Result<()> {
    let mut cluster = TestCluster::start_with(two_nodes()).await?;
    let (owner, front) = (0, 1);
    assert_eq!(cluster.lobby_owner(PATIENCE).await?, owner);

    let clinician = clinician_on(&cluster, owner, NORTH.clinicians[0]).await?;
    let (patient, id, across) = join_seen_by(&cluster, front, "patient", &clinician).await?;
    println!(
        "patient_arrived latency (join through the front end, clinician on the owner): {across:?}"
    );
    assert!(across <= ARRIVAL_BUDGET, "{across:?} > {ARRIVAL_BUDGET:?}");
    let relay = admit_into_call(&clinician, &patient, &id).await?;
    let generations = [
        patient.call_view().generation,
        clinician.call_view().generation,
    ];
    let mark = patient.inbox_len();

    let killed = cluster.kill_signaling(front)?;
    let resumed_id = resumed(&patient, mark, TAKEOVER_BOUND).await?;
    println!(
        "patient resumed on the owner {:?} after its node was killed",
        killed.elapsed()
    );
    assert_eq!(resumed_id, id, "same participant id, same seat");
    assert_eq!(patient.link_view().url, cluster.ws_url_of(owner));
    assert_eq!(
        cluster.lobby_owner(PATIENCE).await?,
        owner,
        "a front end's death changes no owner"
    );
    assert!(
        clinician.link_view().drops.is_empty(),
        "the clinician's socket stayed up"
    );

    let now = Instant::now();
    more_media(&patient, clinician.tag(), now, 25).await?;
    more_media(&clinician, patient.tag(), now, 25).await?;
    media_kept(
        "kill front end",
        [(&patient, clinician.tag()), (&clinician, patient.tag())],
        &relay,
        generations,
        killed,
    )?;
    Ok(())
}
