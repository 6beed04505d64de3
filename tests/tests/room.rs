//! A 4-party room, Teams-style: the clinician invites an interpreter and a family
//! member with single-use links; each waits until admitted, then everyone sees and
//! hears everyone; the roster lists all four; a used link does not work twice;
//! when its relay is killed, all four resume together on one sibling.
//!
//! Opens WebRTC sockets: run inside the loopback namespace (scripts/test).
#![allow(clippy::large_futures)] // webrtc-rs futures

use protocol::Sensitive;
use protocol::client::{ClientToSignaling, ErrorCode, RosterRole, SignalingToClient};
use tests::client::{PATIENCE, TestClient};
use tests::cluster::TestCluster;
use tests::directory::NORTH;
use tests::scenario::{consultation, invite, kill_and_measure, receives_from};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_party_room_with_an_invited_interpreter() -> anyhow::Result<()> {
    let mut cluster = TestCluster::start().await?;
    let c = consultation(&cluster, "patient", NORTH.clinicians[0], None).await?;
    let (interpreter, token) = invite(&cluster, &c.clinician, &c.call, "interpreter").await?;
    let (family, _) = invite(&cluster, &c.clinician, &c.call, "family").await?;
    for guest in [&interpreter, &family] {
        assert_eq!(
            guest.call_view().relay.as_deref(),
            Some(c.relay.as_str()),
            "one relay per call"
        );
    }

    let everyone = [&c.patient, &c.clinician, &interpreter, &family];
    for rx in everyone {
        for tx in everyone {
            if rx.tag() != tx.tag() {
                receives_from(rx, tx.tag()).await?;
            }
        }
    }
    let on_relay = cluster.participants_per_relay().await?;
    assert_eq!(on_relay.get(&c.relay), Some(&4), "{on_relay:?}");

    // kill -9 its relay: all four move together to one sibling (never split).
    let pairs = [
        (&c.patient, "interpreter"),
        (&c.clinician, "family"),
        (&interpreter, "patient"),
        (&family, c.clinician.tag()),
    ];
    let (gaps, sibling) = kill_and_measure(&mut cluster, &c.relay, &pairs).await?;
    println!("4-party room {} -> {sibling}: gaps {gaps:?}", c.relay);
    assert!(
        sibling.starts_with("r-eu-") && sibling != c.relay,
        "{sibling}"
    );

    // Everyone's latest roster lists the four, with their roles.
    for client in everyone {
        let roster = client
            .wait_for(PATIENCE, |m| match m {
                SignalingToClient::Roster { participants, .. } if participants.len() == 4 => {
                    Some(participants.clone())
                }
                _ => None,
            })
            .await?;
        let mut names: Vec<(String, RosterRole)> = roster
            .iter()
            .map(|e| (e.display_name.expose().clone(), e.role))
            .collect();
        names.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(names.len(), 4, "{}: {names:?}", client.tag());
        for (name, role) in &names {
            let expected = match name.as_str() {
                "patient" => RosterRole::Patient,
                "interpreter" | "family" => RosterRole::Guest,
                _ => RosterRole::Clinician,
            };
            assert_eq!(*role, expected, "{}: {names:?}", client.tag());
        }
    }

    // The interpreter's link was single-use.
    let again = TestClient::connect(
        &cluster,
        "again",
        protocol::client::Role::Patient,
        None,
        None,
    )
    .await?;
    again.send(ClientToSignaling::JoinInvite {
        token: Sensitive::new(token),
        display_name: Sensitive::new("again".to_owned()),
    })?;
    let code = again
        .wait_for(PATIENCE, |m| match m {
            SignalingToClient::Error { code, .. } => Some(*code),
            SignalingToClient::Joined { .. } => Some(ErrorCode::Conflict),
            _ => None,
        })
        .await?;
    assert_eq!(code, ErrorCode::InviteInvalid);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn meeting_room_guests_wait_then_share_its_standing_call() -> anyhow::Result<()> {
    let cluster = TestCluster::start().await?;
    let host = TestClient::clinician(&cluster, NORTH.clinicians[0], None).await?;
    let mut guests = Vec::new();
    let mut call = None;
    for tag in ["guest-a", "guest-b"] {
        let guest = TestClient::patient(&cluster, tag, NORTH.meeting, None).await?;
        // In the lobby until admitted.
        assert!(guest.call_view().call.is_none());
        let id = host.wait_patient(tag).await?;
        host.admit(&id).await?;
        let (guest_call, _) = guest.wait_call_ready().await?;
        assert_eq!(
            call.get_or_insert(guest_call.clone()),
            &guest_call,
            "one standing call"
        );
        guests.push(guest);
    }
    let everyone = [&host, &guests[0], &guests[1]];
    for rx in everyone {
        for tx in everyone {
            if rx.tag() != tx.tag() {
                receives_from(rx, tx.tag()).await?;
            }
        }
    }
    let roster = host
        .wait_for(PATIENCE, |m| match m {
            SignalingToClient::Roster { participants, .. } if participants.len() == 3 => {
                Some(participants.clone())
            }
            _ => None,
        })
        .await?;
    let guests_in_roster = roster
        .iter()
        .filter(|e| e.role == RosterRole::Guest)
        .count();
    assert_eq!(guests_in_roster, 2, "{roster:?}");
    Ok(())
}
