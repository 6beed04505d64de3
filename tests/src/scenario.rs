//! Building blocks the call tests share: a consultation (patient waits, clinician
//! admits, both in one call with media both ways), an invitee admitted into it, and
//! the failover measurement (kill the relay carrying a call, time until media from
//! the other party arrives through the new relay).

use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail, ensure};
use protocol::client::{ClientToSignaling, SignalingToClient};
use protocol::{RoomId, Sensitive};

use crate::client::{PATIENCE, TestClient};
use crate::cluster::TestCluster;
use crate::directory::NORTH;
use crate::media::Kind;
use crate::stats;

/// How long media may take to flow on a fresh call.
pub const MEDIA_PATIENCE: Duration = Duration::from_secs(15);

/// The generous bound on the failover gap the tests assert (measured gaps are
/// printed; the target is far lower).
pub const FAILOVER_BOUND: Duration = Duration::from_secs(15);

/// A patient and a clinician in one call.
#[derive(Debug)]
pub struct Consultation {
    /// The patient.
    pub patient: TestClient,
    /// The admitting clinician.
    pub clinician: TestClient,
    /// The call.
    pub call: RoomId,
    /// The relay both were sent to.
    pub relay: String,
}

/// A patient (tag `patient_tag`, region hint `region`) joins the north room, the
/// clinician `username` admits them; both get `call_ready` for the same call and
/// relay and receive each other's audio and video.
pub async fn consultation(
    cluster: &TestCluster,
    patient_tag: &str,
    username: &str,
    region: Option<&str>,
) -> Result<Consultation> {
    let clinician = TestClient::clinician(cluster, username, None).await?;
    let patient = TestClient::patient(cluster, patient_tag, NORTH.room, region).await?;
    let id = clinician.wait_patient(patient_tag).await?;
    clinician.admit(&id).await?;
    patient
        .wait_for(PATIENCE, |m| {
            matches!(m, SignalingToClient::Admitted { .. }).then_some(())
        })
        .await?;
    let (call, relay) = patient.wait_call_ready().await?;
    let (c_call, c_relay) = clinician.wait_call_ready().await?;
    ensure!(call == c_call, "one call for both: {call} vs {c_call}");
    ensure!(relay == c_relay, "never split: {relay} vs {c_relay}");
    let c = Consultation {
        patient,
        clinician,
        call,
        relay,
    };
    two_way_media(&c.patient, &c.clinician).await?;
    Ok(c)
}

/// Awaits audio and video from each of `a` and `b` at the other, on their current
/// peer connections.
pub async fn two_way_media(a: &TestClient, b: &TestClient) -> Result<()> {
    for (rx, tx) in [(a, b), (b, a)] {
        receives_from(rx, tx.tag()).await?;
    }
    Ok(())
}

/// Awaits 10 audio and 10 video packets from `from` at `rx` on its current peer
/// connection.
pub async fn receives_from(rx: &TestClient, from: &str) -> Result<()> {
    let generation = rx.call_view().generation.unwrap_or(0);
    for kind in [Kind::Audio, Kind::Video] {
        rx.media()
            .wait_count(0, 10, MEDIA_PATIENCE, |p| {
                p.from == from && p.kind == kind && p.generation >= generation
            })
            .await
            .with_context(|| {
                format!(
                    "{} gets no {kind:?} from {from}; call task errors: {:?}",
                    rx.tag(),
                    rx.call_view().errors
                )
            })?;
    }
    Ok(())
}

/// The clinician invites `tag` into the consultation's call; the invitee joins with
/// the token, waits, and is admitted; returns the invitee once it has `call_ready`
/// for that call.
pub async fn invite(
    cluster: &TestCluster,
    clinician: &TestClient,
    call: &RoomId,
    tag: &str,
) -> Result<(TestClient, String)> {
    let request = clinician.request_id();
    clinician.send(ClientToSignaling::CreateInvite {
        call: call.clone(),
        request: Some(request),
    })?;
    let token = clinician
        .wait_for(PATIENCE, |m| match m {
            SignalingToClient::InviteCreated {
                request: Some(r),
                token,
                call: c,
                ..
            } if *r == request && c == call => Some(Ok(token.expose().clone())),
            SignalingToClient::Error {
                request: Some(r),
                code,
                message,
            } if *r == request => Some(Err(anyhow::anyhow!("create_invite: {code:?} {message}"))),
            _ => None,
        })
        .await??;
    let guest =
        TestClient::connect(cluster, tag, protocol::client::Role::Patient, None, None).await?;
    guest.send(ClientToSignaling::JoinInvite {
        token: Sensitive::new(token.clone()),
        display_name: Sensitive::new(tag.to_owned()),
    })?;
    let id = clinician
        .wait_for(PATIENCE, |m| match m {
            SignalingToClient::PatientArrived { entry, .. }
                if entry.display_name.expose() == tag =>
            {
                Some((entry.participant.clone(), entry.invited_to.clone()))
            }
            _ => None,
        })
        .await?;
    if id.1.as_ref() != Some(call) {
        bail!("{tag} arrived without invited_to = {call}: {:?}", id.1);
    }
    clinician.admit(&id.0).await?;
    let (guest_call, _) = guest.wait_call_ready().await?;
    ensure!(&guest_call == call, "{tag} joined {guest_call}, not {call}");
    Ok((guest, token))
}

/// Kills the relay carrying `clients`' call and returns the gap, per client, from
/// the kill to the first packet from `from` (the other party) through another relay,
/// plus that relay.
pub async fn kill_and_measure(
    cluster: &mut TestCluster,
    relay: &str,
    clients: &[(&TestClient, &str)],
) -> Result<(Vec<Duration>, String)> {
    let (kill, _) = cluster.kill_relay(relay)?;
    measure_resume(relay, kill, FAILOVER_BOUND, clients).await
}

/// The gap, per client, from `kill` to the first packet from `from` through a relay
/// other than `relay`, and that relay (the same for all, or an error: never split).
pub async fn measure_resume(
    relay: &str,
    kill: Instant,
    bound: Duration,
    clients: &[(&TestClient, &str)],
) -> Result<(Vec<Duration>, String)> {
    let mut gaps = Vec::new();
    let mut new_relay = None;
    for (client, from) in clients {
        let p = client
            .media()
            .wait_for(0, bound, |p| {
                p.from == *from && p.relay != relay && p.at >= kill
            })
            .await
            .with_context(|| {
                format!(
                    "{}: media from {from} did not resume within {bound:?} of losing {relay}; \
                     placements {:?}, errors {:?}",
                    client.tag(),
                    client.call_view().placements,
                    client.call_view().errors
                )
            })?;
        let gap = stats::resume_gap(&client.media().snapshot(), from, relay, kill)
            .context("gap of a packet just seen")?;
        gaps.push(gap);
        match &new_relay {
            None => new_relay = Some(p.relay.clone()),
            Some(r) => ensure!(*r == p.relay, "call split across {r} and {}", p.relay),
        }
    }
    Ok((gaps, new_relay.context("no clients")?))
}
