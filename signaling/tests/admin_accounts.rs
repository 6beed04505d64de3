//! The admin account API through real HTTP on 127.0.0.1: creating,
//! listing, disabling and enabling accounts, roles, and tenant isolation.

#[path = "auth_support/mod.rs"]
mod support;

use serde_json::json;
use support::{PASSWORD, Server, two_orgs};

const NEW_PASSWORD: &str = "a long enough passphrase";

#[tokio::test]
async fn admin_creates_then_disables_a_clinician_whose_session_ends_at_once() {
    let s = Server::start(&two_orgs()).await;
    let admin = s.login("nadmin").await;
    let r = s
        .post_json(
            "/api/admin/clinicians",
            Some(&admin),
            &json!({ "username": "New.Doc", "display_name": "Dr New", "password": NEW_PASSWORD, "role": "clinician" }),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let created = r.json();
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(created["username"], "new.doc");
    assert_eq!(created["tenant"], "north");
    assert_eq!(created["enabled"], true);
    assert!(created.get("password_hash").is_none());

    let list = s.with_token("GET", "/api/admin/clinicians", &admin).await;
    assert_eq!(list.status, 200);
    let names: Vec<String> = list.json()["clinicians"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["username"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names, ["lee", "nadmin", "new.doc"], "own organisation only");

    // The new clinician logs in and has a live session...
    let doc = s.login_from("127.0.0.1", "new.doc", NEW_PASSWORD).await;
    assert_eq!(s.with_token("GET", "/api/me", &doc).await.status, 200);
    // ...which ends the moment the account is disabled.
    let r = s
        .with_token(
            "POST",
            &format!("/api/admin/clinicians/{id}/disable"),
            &admin,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["enabled"], false);
    assert_eq!(s.with_token("GET", "/api/me", &doc).await.status, 401);
    let again = s
        .post_json(
            "/api/login",
            None,
            &json!({ "username": "new.doc", "password": NEW_PASSWORD }),
        )
        .await;
    assert_eq!(again.status, 401);

    let r = s
        .with_token(
            "POST",
            &format!("/api/admin/clinicians/{id}/enable"),
            &admin,
        )
        .await;
    assert_eq!(r.status, 200);
    let doc2 = s.login_from("127.0.0.3", "new.doc", NEW_PASSWORD).await;

    let events = s.audit_events();
    for action in ["account_created", "account_disabled", "account_enabled"] {
        let e = events
            .iter()
            .find(|e| e["action"] == action)
            .unwrap_or_else(|| panic!("no {action}"));
        assert_eq!(e["actor"], "north-admin");
        assert_eq!(e["target_clinician"], id.as_str());
        assert_eq!(e["tenant"], "north");
        assert_eq!(e["source"], "127.0.0.1");
    }
    s.assert_audit_free_of(&[NEW_PASSWORD, PASSWORD, &admin, &doc, &doc2]);
}

#[tokio::test]
async fn clinicians_without_the_admin_role_get_403() {
    let s = Server::start(&two_orgs()).await;
    let lee = s.login("lee").await;
    assert_eq!(
        s.with_token("GET", "/api/admin/clinicians", &lee)
            .await
            .status,
        403
    );
    let r = s
        .post_json(
            "/api/admin/clinicians",
            Some(&lee),
            &json!({ "username": "x.y", "display_name": "X", "password": NEW_PASSWORD, "role": "admin" }),
        )
        .await;
    assert_eq!((r.status, r.error_code().as_str()), (403, "forbidden"));
    let r = s
        .with_token("POST", "/api/admin/clinicians/north-admin/disable", &lee)
        .await;
    assert_eq!(r.status, 403);
    assert!(
        s.directory
            .clinician(&"north-admin".parse().unwrap())
            .unwrap()
            .enabled
    );
    // Without any session: 401.
    assert_eq!(
        s.call("GET", "/api/admin/clinicians", &[], None)
            .await
            .status,
        401
    );
}

#[tokio::test]
async fn an_admin_cannot_see_or_touch_another_organisations_accounts() {
    let s = Server::start(&two_orgs()).await;
    let north = s.login("nadmin").await;
    let sam = s.login("sam").await;
    for action in ["disable", "enable"] {
        let r = s
            .with_token(
                "POST",
                &format!("/api/admin/clinicians/dr-sam/{action}"),
                &north,
            )
            .await;
        assert_eq!(
            (r.status, r.error_code().as_str()),
            (404, "not_found"),
            "{action}"
        );
    }
    // Indistinguishable from an id that exists nowhere, or a malformed one.
    let r = s
        .with_token("POST", "/api/admin/clinicians/no-such-id/disable", &north)
        .await;
    assert_eq!(r.status, 404);
    let r = s
        .with_token("POST", "/api/admin/clinicians/bad%20id/disable", &north)
        .await;
    assert_eq!(r.status, 404);
    // Sam is untouched and still logged in.
    assert!(
        s.directory
            .clinician(&"dr-sam".parse().unwrap())
            .unwrap()
            .enabled
    );
    assert_eq!(s.with_token("GET", "/api/me", &sam).await.status, 200);
    let list = s
        .with_token("GET", "/api/admin/clinicians", &north)
        .await
        .json();
    assert!(
        list["clinicians"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["tenant"] == "north")
    );
    assert!(
        !s.audit_events()
            .iter()
            .any(|e| e["action"] == "account_disabled")
    );
}

#[tokio::test]
async fn account_creation_enforces_the_rules() {
    let s = Server::start(&two_orgs()).await;
    let admin = s.login("sadmin").await;
    let create = |body: serde_json::Value| {
        let s = &s;
        let admin = admin.clone();
        async move {
            s.post_json("/api/admin/clinicians", Some(&admin), &body)
                .await
        }
    };
    let r =
        create(json!({ "username": "short.pw", "display_name": "X", "password": "elevenchars" }))
            .await;
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (400, "invalid_request")
    );
    assert!(
        r.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("12")
    );
    let r =
        create(json!({ "username": "bad name", "display_name": "X", "password": NEW_PASSWORD }))
            .await;
    assert_eq!(r.status, 400);
    let r = create(json!({ "username": "ok.name", "display_name": " ", "password": NEW_PASSWORD }))
        .await;
    assert_eq!(r.status, 400);
    let r = create(json!({ "username": "ok.name", "display_name": "X", "password": NEW_PASSWORD, "role": "root" })).await;
    assert_eq!(r.status, 400);
    let r = create(
        json!({ "username": "ok.name", "display_name": "X", "password": NEW_PASSWORD, "extra": 1 }),
    )
    .await;
    assert_eq!(r.status, 400);
    // Usernames are unique across organisations (login is by username alone).
    let r =
        create(json!({ "username": "LEE", "display_name": "X", "password": NEW_PASSWORD })).await;
    assert_eq!((r.status, r.error_code().as_str()), (409, "username_taken"));
    // Role defaults to clinician.
    let r = create(json!({ "username": "ok.name", "display_name": "X", "password": NEW_PASSWORD }))
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.json()["role"], "clinician");
    // An admin cannot disable themself (the organisation could lose its last admin).
    let r = s
        .with_token("POST", "/api/admin/clinicians/south-admin/disable", &admin)
        .await;
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (409, "cannot_disable_self")
    );
    let created: Vec<_> = s
        .audit_events()
        .into_iter()
        .filter(|e| e["action"] == "account_created")
        .collect();
    assert_eq!(created.len(), 1);
}
