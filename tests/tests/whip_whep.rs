//! WHIP publish + WHEP playback with webrtc-rs, through signaling's HTTP API and a
//! relay of the cluster.
//!
//! Opens WebRTC sockets: run inside the loopback namespace (scripts/test).

#![allow(clippy::large_futures)] // webrtc-rs futures

use protocol::{GrantRole, RoomId};
use tests::cluster::TestCluster;
use tests::http;
use tests::media::{Kind, MediaLog};
use tests::whip::{Endpoint, IngestSession, PLAYBACK_TIMEOUT, ingest_token};

/// Bad tokens and content types are refused; a WHIP publisher connects to a relay
/// of signaling's own region; `DELETE` ends the session once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whip_publisher_is_placed_and_bad_requests_are_refused() -> anyhow::Result<()> {
    let cluster = TestCluster::start().await?;
    let call = RoomId::new("c-whip-e2e")?;
    let addr = cluster.http_addr();
    let path = "/whip/c-whip-e2e";
    let offer = b"v=0\r\n";
    let sdp = Some(("application/sdp", &offer[..]));

    let r = http::request(addr, "POST", path, &[], sdp).await?;
    assert_eq!(r.status, 401, "no token: {}", r.body);
    let whep_token = format!("Bearer {}", ingest_token(&call, GrantRole::Subscriber)?);
    let r = http::request(addr, "POST", path, &[("Authorization", &whep_token)], sdp).await?;
    assert_eq!(r.status, 401, "a player's token cannot publish: {}", r.body);
    let other = RoomId::new("c-other")?;
    let other_token = format!("Bearer {}", ingest_token(&other, GrantRole::Publisher)?);
    let r = http::request(addr, "POST", path, &[("Authorization", &other_token)], sdp).await?;
    assert_eq!(r.status, 401, "another call's token: {}", r.body);
    let whip_token = format!("Bearer {}", ingest_token(&call, GrantRole::Publisher)?);
    let text = Some(("text/plain", &offer[..]));
    let r = http::request(addr, "POST", path, &[("Authorization", &whip_token)], text).await?;
    assert_eq!(r.status, 415, "{}", r.body);

    let publisher =
        IngestSession::start(&cluster, Endpoint::Whip, &call, "obs", MediaLog::default()).await?;
    assert!(
        publisher.location.starts_with("/whip/c-whip-e2e/"),
        "{}",
        publisher.location
    );
    let load = cluster.participants_per_relay().await?;
    let busy: Vec<_> = load.iter().filter(|(_, n)| **n > 0).collect();
    assert_eq!(busy.len(), 1, "{load:?}");
    assert!(
        busy[0].0.starts_with("r-eu-"),
        "signaling's region first: {load:?}"
    );

    assert_eq!(publisher.delete(&cluster).await?, 200);
    assert_eq!(
        publisher.delete(&cluster).await?,
        404,
        "a session ends once"
    );
    Ok(())
}

/// A WHEP player receives a WHIP publisher's audio and video.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whep_player_receives_whip_media() -> anyhow::Result<()> {
    let cluster = TestCluster::start().await?;
    let call = RoomId::new("c-whep-e2e")?;
    let publisher =
        IngestSession::start(&cluster, Endpoint::Whip, &call, "obs", MediaLog::default()).await?;
    let seen = MediaLog::default();
    let player =
        IngestSession::start(&cluster, Endpoint::Whep, &call, "player", seen.clone()).await?;
    assert!(
        player.location.starts_with("/whep/c-whep-e2e/"),
        "{}",
        player.location
    );
    for kind in [Kind::Audio, Kind::Video] {
        seen.wait_count(0, 20, PLAYBACK_TIMEOUT, |p| {
            p.from == "obs" && p.kind == kind
        })
        .await
        .map_err(|e| anyhow::anyhow!("WHEP player got no {kind:?} from WHIP: {e}"))?;
    }
    assert_eq!(player.delete(&cluster).await?, 200);
    assert_eq!(publisher.delete(&cluster).await?, 200);
    Ok(())
}
