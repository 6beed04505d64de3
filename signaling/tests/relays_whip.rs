//! WHIP and WHEP on a real server with a fake relay: a bearer-token `POST`
//! of an SDP offer gets `201 Created`, a `Location` and the relay's answer;
//! `PATCH` trickles candidates; `DELETE` ends the session; bad tokens get 401.

mod relays_support;
mod support;

use std::net::SocketAddr;
use std::time::Duration;

use protocol::control::{RelayToSignaling, SignalingToRelay};
use protocol::{Grant, GrantRole};
use relays_support::{FakeRelay, SECRET, Server, header, next_event, node, room, unix_now};
use signaling::relays::RelayEvent;
use signaling::relays::whip::mint_ingest_token;
use support::http_raw as http;
use tokio::task::JoinHandle;

const TTL: Duration = Duration::from_secs(60);
const OFFER: &str = "v=0 whip offer\r\n";

/// Answers the next offer the relay gets with `answer`; returns its grant.
async fn answer_next_offer(relay: &mut FakeRelay, answer: &str) -> Grant {
    let Some(SignalingToRelay::Offer {
        request,
        grant,
        sdp,
    }) = relay.recv().await
    else {
        panic!("expected an offer");
    };
    assert_eq!(sdp, OFFER);
    let grant = Grant::verify(&grant, SECRET.as_bytes(), &node("eu-1"), unix_now()).unwrap();
    relay
        .send(&RelayToSignaling::Answer {
            request,
            participant: grant.participant.clone(),
            sdp: answer.into(),
        })
        .await;
    grant
}

/// A request in the background (the fake relay must answer meanwhile).
fn spawn_http(
    addr: SocketAddr,
    method: &'static str,
    path: String,
    token: &str,
    content_type: &'static str,
    body: &'static str,
) -> JoinHandle<(u16, String, String)> {
    let auth = format!("Bearer {token}");
    tokio::spawn(async move {
        let headers = [
            ("Authorization", auth.as_str()),
            ("Content-Type", content_type),
        ];
        http(addr, method, &path, &headers, body).await
    })
}

#[tokio::test]
async fn whip_publish_gets_201_location_and_answer_then_trickle_and_delete() {
    let server = Server::start().await;
    let mut relay = server.relay("eu-1", "eu", &[]).await;
    let call = room("c-whip");
    let token = server.pool.ingest_token(&call, GrantRole::Publisher, TTL);

    let post = spawn_http(
        server.addr,
        "POST",
        "/whip/c-whip".into(),
        &token,
        "application/sdp",
        OFFER,
    );
    let grant = answer_next_offer(&mut relay, "v=0 answer\r\n").await;
    assert_eq!(grant.role, GrantRole::Publisher);
    assert_eq!(grant.room, call);
    let (status, head, body) = post.await.unwrap();
    assert_eq!(status, 201, "{head}");
    assert_eq!(body, "v=0 answer\r\n");
    assert_eq!(header(&head, "content-type"), Some("application/sdp"));
    let location = header(&head, "location").unwrap().to_owned();
    assert_eq!(location, format!("/whip/c-whip/{}", grant.participant));
    assert_eq!(server.pool.ingest_sessions().len(), 1);

    let frag = "a=ice-ufrag:abcd\r\na=candidate:1 1 UDP 2130706431 127.0.0.1 5004 typ host\r\n";
    let patch = spawn_http(
        server.addr,
        "PATCH",
        location.clone(),
        &token,
        "application/trickle-ice-sdpfrag",
        frag,
    );
    assert_eq!(patch.await.unwrap().0, 204);
    assert_eq!(
        relay.recv().await,
        Some(SignalingToRelay::Candidate {
            room: call.clone(),
            participant: grant.participant.clone(),
            candidate: "candidate:1 1 UDP 2130706431 127.0.0.1 5004 typ host".into(),
        })
    );

    // Another call's token may not end this session.
    let other = server
        .pool
        .ingest_token(&room("c-other"), GrantRole::Publisher, TTL);
    let (status, _, _) = spawn_http(
        server.addr,
        "DELETE",
        location.clone(),
        &other,
        "text/plain",
        "",
    )
    .await
    .unwrap();
    assert_eq!(status, 401);
    let (status, _, _) = spawn_http(
        server.addr,
        "DELETE",
        location.clone(),
        &token,
        "text/plain",
        "",
    )
    .await
    .unwrap();
    assert_eq!(status, 200);
    assert_eq!(
        relay.recv().await,
        Some(SignalingToRelay::Kick {
            room: call.clone(),
            participant: grant.participant
        })
    );
    assert!(server.pool.ingest_sessions().is_empty());
    let (status, _, _) = spawn_http(server.addr, "DELETE", location, &token, "text/plain", "")
        .await
        .unwrap();
    assert_eq!(status, 404);
    server.stop().await;
}

#[tokio::test]
async fn whep_playback_is_placed_on_the_call_s_relay_as_a_subscriber() {
    let server = Server::start().await;
    let mut relay = server.relay("eu-1", "eu", &[]).await;
    let _other = server.relay("eu-2", "eu", &[]).await;
    let call = room("c-1");
    // The call already lives on eu-1 (whichever relay placement chose).
    let at = server.pool.place(&call, None).unwrap();
    assert_eq!(at, node("eu-1"));
    // A token minted outside the server with the shared secret works too.
    let token = mint_ingest_token(
        SECRET.as_bytes(),
        &call,
        GrantRole::Subscriber,
        unix_now() + 60,
    );
    let post = spawn_http(
        server.addr,
        "POST",
        "/whep/c-1".into(),
        &token,
        "application/sdp",
        OFFER,
    );
    let grant = answer_next_offer(&mut relay, "v=0 answer\r\n").await;
    assert_eq!(grant.role, GrantRole::Subscriber);
    let (status, head, _) = post.await.unwrap();
    assert_eq!(status, 201);
    assert!(header(&head, "location").unwrap().starts_with("/whep/c-1/"));

    // The relay's renegotiation offers for the WHEP player cannot reach it
    // and are not passed to the calls layer; others' are.
    let mut events = server.pool.subscribe();
    let other = protocol::ParticipantId::new("p-other").unwrap();
    for participant in [grant.participant.clone(), other.clone()] {
        relay
            .send(&RelayToSignaling::Renegotiate {
                room: call.clone(),
                participant,
                sdp: "o".into(),
            })
            .await;
    }
    assert_eq!(
        next_event(&mut events).await,
        RelayEvent::Renegotiate {
            call: call.clone(),
            participant: other,
            sdp: "o".into()
        }
    );
    server.stop().await;
}

#[tokio::test]
async fn bad_tokens_content_types_and_missing_relays_are_refused() {
    let server = Server::start().await;
    let call = room("c-1");
    let publish = server.pool.ingest_token(&call, GrantRole::Publisher, TTL);
    let play = server.pool.ingest_token(&call, GrantRole::Subscriber, TTL);
    let other_call = server
        .pool
        .ingest_token(&room("c-2"), GrantRole::Publisher, TTL);
    let expired = mint_ingest_token(
        SECRET.as_bytes(),
        &call,
        GrantRole::Publisher,
        unix_now() - 1,
    );
    // A relay grant is not an ingest token.
    let relay_grant = server.pool.grant(
        &call,
        &protocol::ParticipantId::random(),
        GrantRole::Publisher,
        &node("eu-1"),
    );
    for (path, token) in [
        ("/whip/c-1", "nonsense"),
        ("/whip/c-1", other_call.as_str()),
        ("/whip/c-1", play.as_str()),
        ("/whep/c-1", publish.as_str()),
        ("/whip/c-1", relay_grant.as_str()),
        ("/whip/c-1", expired.as_str()),
    ] {
        let (status, head, _) = spawn_http(
            server.addr,
            "POST",
            path.into(),
            token,
            "application/sdp",
            OFFER,
        )
        .await
        .unwrap();
        assert_eq!(status, 401, "{path}");
        assert_eq!(header(&head, "www-authenticate"), Some("Bearer"));
    }
    let (status, _, _) = http(
        server.addr,
        "POST",
        "/whip/c-1",
        &[("Content-Type", "application/sdp")],
        OFFER,
    )
    .await;
    assert_eq!(status, 401, "no token at all");
    let (status, _, _) = spawn_http(
        server.addr,
        "POST",
        "/whip/c-1".into(),
        &publish,
        "application/json",
        "{}",
    )
    .await
    .unwrap();
    assert_eq!(status, 415);
    // No relay registered: 503 with Retry-After.
    let (status, head, _) = spawn_http(
        server.addr,
        "POST",
        "/whip/c-1".into(),
        &publish,
        "application/sdp",
        OFFER,
    )
    .await
    .unwrap();
    assert_eq!(status, 503);
    assert!(header(&head, "retry-after").is_some());
    server.stop().await;
}

#[tokio::test]
async fn a_refused_offer_is_a_400_with_the_reason() {
    let server = Server::start().await;
    let mut relay = server.relay("eu-1", "eu", &[]).await;
    let token = server
        .pool
        .ingest_token(&room("c-1"), GrantRole::Publisher, TTL);
    let post = spawn_http(
        server.addr,
        "POST",
        "/whip/c-1".into(),
        &token,
        "application/sdp",
        OFFER,
    );
    let Some(SignalingToRelay::Offer { request, .. }) = relay.recv().await else {
        panic!("expected an offer");
    };
    relay
        .send(&RelayToSignaling::Refused {
            request,
            reason: "bad SDP".into(),
        })
        .await;
    let (status, _, body) = post.await.unwrap();
    assert_eq!(status, 400);
    assert!(body.contains("bad SDP"), "{body}");
    assert!(server.pool.ingest_sessions().is_empty());
    server.stop().await;
}
