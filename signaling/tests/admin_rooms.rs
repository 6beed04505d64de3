//! The admin room API through real HTTP on 127.0.0.1: an admin creates,
//! edits, closes and reopens rooms of their own organisation only; bad
//! input is refused with the rule; clinicians and strangers are refused;
//! every change is audited by ids only.

#[path = "auth_support/mod.rs"]
mod support;

use serde_json::json;
use support::{Server, two_orgs};

/// `PUT` with a Bearer token and a JSON body.
async fn put_json(s: &Server, path: &str, token: &str, body: &serde_json::Value) -> support::Reply {
    let auth = format!("Bearer {token}");
    s.call(
        "PUT",
        path,
        &[
            ("Content-Type", "application/json"),
            ("Authorization", &auth),
        ],
        Some(&body.to_string()),
    )
    .await
}

#[tokio::test]
async fn an_admin_creates_edits_closes_and_reopens_a_room() {
    let s = Server::start(&two_orgs()).await;
    let admin = s.login("nadmin").await;
    let body = json!({
        "name": "Physio follow-ups",
        "kind": "waiting",
        "hide_position": true,
        "intake": [{"id": "reason", "label": "Which treatment is this about?", "required": true}]
    });
    let r = s.post_json("/api/admin/rooms", Some(&admin), &body).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let room = r.json();
    let id = room["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("physio-follow-ups-"), "{id}");
    assert_eq!(room["link"], format!("/r/{id}"));
    assert_eq!(room["hide_position"], true);
    assert_eq!(room["closed"], false);
    assert_eq!(room["intake"][0]["required"], true);
    // The lobby sees it at once (it reads the shared directory).
    let live = s
        .directory
        .room(&protocol::RoomId::new(&id).unwrap())
        .unwrap();
    assert_eq!(live.tenant.as_str(), "north");

    let list = s.with_token("GET", "/api/admin/rooms", &admin).await;
    assert_eq!(list.status, 200);
    let ids: Vec<String> = list.json()["rooms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        ids,
        ["north-gp".to_owned(), id.clone()],
        "own organisation only"
    );

    let r = put_json(
        &s,
        &format!("/api/admin/rooms/{id}"),
        &admin,
        &json!({"name": "Team huddle", "kind": "meeting"}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["kind"], "meeting");
    assert_eq!(r.json()["intake"], json!([]));

    let r = s
        .with_token("POST", &format!("/api/admin/rooms/{id}/close"), &admin)
        .await;
    assert_eq!((r.status, r.json()["closed"].clone()), (200, json!(true)));
    let r = s
        .with_token("POST", &format!("/api/admin/rooms/{id}/reopen"), &admin)
        .await;
    assert_eq!((r.status, r.json()["closed"].clone()), (200, json!(false)));

    // A room from the file can be closed too; /api/me still lists it.
    let r = s
        .with_token("POST", "/api/admin/rooms/north-gp/close", &admin)
        .await;
    assert_eq!(r.status, 200, "{}", r.body);

    let events = s.audit_events();
    let rooms: Vec<(String, String)> = events
        .iter()
        .filter(|e| e["action"].as_str().unwrap().starts_with("room_"))
        .map(|e| {
            (
                e["action"].as_str().unwrap().to_owned(),
                e["room"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        rooms,
        [
            ("room_created".to_owned(), id.clone()),
            ("room_updated".to_owned(), id.clone()),
            ("room_closed".to_owned(), id.clone()),
            ("room_reopened".to_owned(), id.clone()),
            ("room_closed".to_owned(), "north-gp".to_owned()),
        ]
    );
    for e in events.iter().filter(|e| e["action"] == "room_created") {
        assert_eq!(e["actor"], "north-admin");
        assert_eq!(e["tenant"], "north");
        assert_eq!(e["source"], "127.0.0.1");
        assert_eq!(e["detail"], "kind=waiting");
    }
    // Names and questions stay out of the audit trail.
    s.assert_audit_free_of(&["Physio", "Which treatment", "Team huddle"]);
}

#[tokio::test]
async fn another_organisation_s_rooms_are_not_found() {
    let s = Server::start(&two_orgs()).await;
    let south = s.login("sadmin").await;
    for (method, path) in [
        ("POST", "/api/admin/rooms/north-gp/close"),
        ("POST", "/api/admin/rooms/north-gp/reopen"),
        ("POST", "/api/admin/rooms/no-such-room/close"),
    ] {
        let r = s.with_token(method, path, &south).await;
        assert_eq!(
            (r.status, r.error_code()),
            (404, "not_found".to_owned()),
            "{path}"
        );
    }
    let r = put_json(
        &s,
        "/api/admin/rooms/north-gp",
        &south,
        &json!({"name": "Mine now"}),
    )
    .await;
    assert_eq!(r.status, 404);
    let north = s
        .directory
        .room(&protocol::RoomId::new("north-gp").unwrap())
        .unwrap();
    assert_eq!(
        (north.name.as_str(), north.closed),
        ("North GP", false),
        "untouched"
    );
    // Ids are unique across organisations: taking north's id is a conflict.
    let r = s
        .post_json(
            "/api/admin/rooms",
            Some(&south),
            &json!({"id": "north-gp", "name": "X"}),
        )
        .await;
    assert_eq!(
        (r.status, r.error_code()),
        (409, "room_id_taken".to_owned())
    );
    assert!(
        s.audit_events()
            .iter()
            .all(|e| !e["action"].as_str().unwrap().starts_with("room_"))
    );
}

#[tokio::test]
async fn only_admins_may_manage_rooms() {
    let s = Server::start(&two_orgs()).await;
    let doc = s.login("lee").await;
    let r = s.with_token("GET", "/api/admin/rooms", &doc).await;
    assert_eq!((r.status, r.error_code()), (403, "forbidden".to_owned()));
    let r = s
        .post_json("/api/admin/rooms", Some(&doc), &json!({"name": "X"}))
        .await;
    assert_eq!(r.status, 403);
    let r = s
        .with_token("POST", "/api/admin/rooms/north-gp/close", &doc)
        .await;
    assert_eq!(r.status, 403);
    let r = s
        .post_json("/api/admin/rooms", None, &json!({"name": "X"}))
        .await;
    assert_eq!(
        (r.status, r.error_code()),
        (401, "unauthenticated".to_owned())
    );
    assert_eq!(
        s.directory
            .rooms_of(&protocol::TenantId::new("north").unwrap())
            .len(),
        1
    );
}

#[tokio::test]
async fn invalid_rooms_are_refused_with_the_rule() {
    let s = Server::start(&two_orgs()).await;
    let admin = s.login("nadmin").await;
    let q = |id: &str| json!({"id": id, "label": "Question?"});
    let many: Vec<serde_json::Value> = (0..21).map(|i| q(&format!("q{i}"))).collect();
    for (body, says) in [
        (json!({"name": "  "}), "room name"),
        (json!({"name": "x".repeat(101)}), "at most 100"),
        (
            json!({"name": "Ok", "intake": [q("a"), q("a")]}),
            "duplicate intake question id",
        ),
        (
            json!({"name": "Ok", "intake": [q("bad id")]}),
            "intake question id",
        ),
        (
            json!({"name": "Ok", "intake": [{"id": "a", "label": ""}]}),
            "label",
        ),
        (json!({"name": "Ok", "intake": many}), "at most 20"),
        (json!({"name": "Ok", "id": "has space"}), "room id"),
        (json!({"name": "Ok", "kind": "party"}), "kind"),
        (json!({"name": "Ok", "colour": "red"}), "colour"),
    ] {
        let r = s.post_json("/api/admin/rooms", Some(&admin), &body).await;
        assert_eq!(r.status, 400, "{body}: {}", r.body);
        let message = r.json()["error"]["message"].as_str().unwrap().to_owned();
        assert!(message.contains(says), "{body}: {message}");
    }
    let r = put_json(
        &s,
        "/api/admin/rooms/north-gp",
        &admin,
        &json!({"id": "other", "name": "X"}),
    )
    .await;
    assert_eq!(r.status, 400, "the id cannot change");
    assert_eq!(
        s.directory
            .rooms_of(&protocol::TenantId::new("north").unwrap())
            .len(),
        1
    );
}
