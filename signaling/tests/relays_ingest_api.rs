//! `POST /api/calls/<call>/ingest` over real HTTP: the call's clinician gets
//! a WHIP/WHEP token that the WHIP endpoint then accepts (a fake relay
//! answers); another organisation's call is a 404 like an unknown one; no
//! session is a 401; bad input a 400; the audit line names the actor, call
//! and role but never the token.

mod calls_support;
mod support;

use std::net::SocketAddr;

use calls_support::{CallServer, FakeRelay, SECRET, admit_into_call, start};
use std::sync::Arc;

use protocol::{GrantRole, Region, RoomId};
use serde_json::{Value, json};
use signaling::config::Config;
use signaling::directory::Directory;
use signaling::relays::{RelayPool, RelaySettings};
use signaling::server::Services;
use support::{PASSWORD, TestServer, http_raw as http};

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim().eq_ignore_ascii_case(name).then_some(v.trim())
    })
}

/// Asks for an ingest token with session `session` as a bearer.
async fn ingest(addr: SocketAddr, call: &str, session: &str, body: &str) -> (u16, String, String) {
    let auth = format!("Bearer {session}");
    http(
        addr,
        "POST",
        &format!("/api/calls/{call}/ingest"),
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/json"),
        ],
        body,
    )
    .await
}

fn error_code(body: &str) -> Value {
    let v: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"));
    v["error"]["code"].clone()
}

/// A server with relay `r-eu-1`, and `dr-a` in a call with a patient of
/// `a-gp`. Returns the server, the relay, `dr-a`'s session and the call
/// (the clinician and patient connections are kept open by the caller).
async fn call_with_dr_a() -> (
    CallServer,
    FakeRelay,
    String,
    RoomId,
    (support::Client, support::Client),
) {
    let cs = start(false).await;
    let relay = FakeRelay::register(cs.server.addr, "r-eu-1", "eu").await;
    let session = cs.server.login("dr-a");
    let (mut doc, _) = cs.server.clinician_with(&session).await;
    let (mut patient, p, _) = cs.server.joined_patient("a-gp", "Ann", "cough").await;
    let (pr, _) = admit_into_call(&mut doc, &mut patient, &p).await;
    (cs, relay, session, pr.call, (doc, patient))
}

#[tokio::test]
async fn the_call_s_clinician_gets_a_token_the_whip_endpoint_accepts() {
    let (cs, mut relay, session, call, _conns) = call_with_dr_a().await;
    let addr = cs.server.addr;

    let (status, head, body) =
        ingest(addr, call.as_str(), &session, r#"{"role":"publisher"}"#).await;
    assert_eq!(status, 200, "{head}\n{body}");
    assert_eq!(header(&head, "cache-control"), Some("no-store"));
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["whip_url"], json!(format!("/whip/{call}")));
    assert_eq!(v["whep_url"], json!(format!("/whep/{call}")));
    assert_eq!(v["expires_in_secs"], 900, "15 minutes by default");
    let token = v["token"].as_str().expect("token").to_owned();

    // The WHEP endpoint refuses a publisher token.
    let bearer = format!("Bearer {token}");
    let sdp_headers = [
        ("Authorization", bearer.as_str()),
        ("Content-Type", "application/sdp"),
    ];
    let (status, _, _) = http(
        addr,
        "POST",
        &format!("/whep/{call}"),
        &sdp_headers,
        "v=0\r\n",
    )
    .await;
    assert_eq!(status, 401);

    // The WHIP endpoint takes it: the offer reaches the call's relay as a publisher.
    let path = format!("/whip/{call}");
    let post = tokio::spawn(async move {
        let headers = [
            ("Authorization", bearer.as_str()),
            ("Content-Type", "application/sdp"),
        ];
        http(addr, "POST", &path, &headers, "v=0 whip offer\r\n").await
    });
    let (grant, sdp) = relay.answer_offer("v=0 answer\r\n").await;
    assert_eq!(sdp, "v=0 whip offer\r\n");
    assert_eq!((grant.role, &grant.room), (GrantRole::Publisher, &call));
    let (status, head, body) = post.await.unwrap();
    assert_eq!(status, 201, "{head}");
    assert_eq!(body, "v=0 answer\r\n");
    assert_eq!(
        header(&head, "location"),
        Some(format!("/whip/{call}/{}", grant.participant).as_str())
    );

    // Audited with the actor, call and role; the token is in no audit line.
    let lines = cs.server.audit.lines();
    assert!(
        lines
            .iter()
            .all(|l| !l.contains(&token) && !l.contains(&session))
    );
    let issued: Vec<Value> = cs
        .server
        .audit_json()
        .into_iter()
        .filter(|e| e["action"] == "ingest_token_issued")
        .collect();
    assert_eq!(issued.len(), 1, "{lines:?}");
    assert_eq!(issued[0]["actor"], "dr-a");
    assert_eq!(issued[0]["tenant"], "org-a");
    assert_eq!(issued[0]["room"], "a-gp");
    assert_eq!(
        issued[0]["detail"],
        json!(format!("call={call} role=publisher"))
    );
    cs.server.stop().await.unwrap();
}

#[tokio::test]
async fn a_same_origin_cookie_session_gets_a_whep_token_with_its_ttl() {
    let (cs, _relay, session, call, _conns) = call_with_dr_a().await;
    let addr = cs.server.addr;
    let path = format!("/api/calls/{call}/ingest");
    let cookie = format!("anteroom_session={session}");
    let origin = format!("http://{addr}");
    let body = r#"{"role":"subscriber","ttl_secs":86400}"#;
    // The page's CSRF token (from the login reply or /api/me; docs/accounts.md).
    let csrf = signaling::csrf::token_for(&session);

    let headers = [
        ("Cookie", cookie.as_str()),
        ("Origin", origin.as_str()),
        ("Content-Type", "application/json"),
        ("X-CSRF-Token", csrf.as_str()),
    ];
    let (status, _, reply) = http(addr, "POST", &path, &headers, body).await;
    assert_eq!(status, 200, "{reply}");
    let v: Value = serde_json::from_str(&reply).unwrap();
    assert_eq!(v["expires_in_secs"], 86400);
    assert_eq!(v["role"], "subscriber");

    // Another site's page cannot use the cookie.
    let evil = [
        ("Cookie", cookie.as_str()),
        ("Origin", "http://evil.example"),
        ("Content-Type", "application/json"),
    ];
    let (status, _, reply) = http(addr, "POST", &path, &evil, body).await;
    assert_eq!(status, 403, "{reply}");
    // A form post is refused too: a form cannot add the CSRF header, and
    // even with it the body must be JSON.
    let form = [
        ("Cookie", cookie.as_str()),
        ("Content-Type", "application/x-www-form-urlencoded"),
    ];
    let (status, _, _) = http(addr, "POST", &path, &form, "role=subscriber").await;
    assert_eq!(status, 403);
    let form_with_token = [
        ("Cookie", cookie.as_str()),
        ("Content-Type", "application/x-www-form-urlencoded"),
        ("X-CSRF-Token", csrf.as_str()),
    ];
    let (status, _, _) = http(addr, "POST", &path, &form_with_token, "role=subscriber").await;
    assert_eq!(status, 415);

    let issued = cs
        .server
        .audit_json()
        .into_iter()
        .filter(|e| e["action"] == "ingest_token_issued")
        .count();
    assert_eq!(issued, 1, "only the accepted request is audited");
    cs.server.stop().await.unwrap();
}

#[tokio::test]
async fn another_organisation_s_call_looks_unknown_and_a_colleague_not_in_it_is_refused() {
    let (cs, _relay, _session, call, _conns) = call_with_dr_a().await;
    let addr = cs.server.addr;
    let body = r#"{"role":"publisher"}"#;

    let dr_b = cs.server.login("dr-b");
    let (status, head, cross) = ingest(addr, call.as_str(), &dr_b, body).await;
    assert_eq!(status, 404, "{head}");
    assert_eq!(header(&head, "cache-control"), Some("no-store"));
    let (status, _, unknown) = ingest(addr, "c-aaaaaaaaaaaa", &dr_b, body).await;
    assert_eq!(status, 404);
    assert_eq!(cross, unknown, "the same answer: existence does not leak");
    let (status, _, _) = ingest(addr, "Bad%20Id", &dr_b, body).await;
    assert_eq!(status, 404);

    // Same organisation, not in the call, not an admin.
    let dr_a2 = cs.server.login("dr-a2");
    let (status, _, reply) = ingest(addr, call.as_str(), &dr_a2, body).await;
    assert_eq!(status, 403, "{reply}");
    assert_eq!(error_code(&reply), "forbidden");

    assert!(
        cs.server
            .audit_json()
            .iter()
            .all(|e| e["action"] != "ingest_token_issued")
    );
    cs.server.stop().await.unwrap();
}

#[tokio::test]
async fn no_session_is_401_and_bad_input_is_400() {
    let (cs, _relay, session, call, _conns) = call_with_dr_a().await;
    let addr = cs.server.addr;
    let path = format!("/api/calls/{call}/ingest");
    let json_only = [("Content-Type", "application/json")];

    let (status, head, reply) =
        http(addr, "POST", &path, &json_only, r#"{"role":"publisher"}"#).await;
    assert_eq!(status, 401, "{reply}");
    assert_eq!(header(&head, "www-authenticate"), Some("Bearer"));
    assert_eq!(error_code(&reply), "unauthenticated");
    let (status, _, _) = ingest(
        addr,
        call.as_str(),
        "not-a-session",
        r#"{"role":"publisher"}"#,
    )
    .await;
    assert_eq!(status, 401);

    for bad in [
        r#"{"role":"participant"}"#,
        r#"{"role":"publisher","ttl_secs":0}"#,
        r#"{"role":"publisher","ttl_secs":86401}"#,
        r#"{"role":"publisher","ttl_secs":-5}"#,
        r#"{"role":"publisher","extra":1}"#,
        r#"{"ttl_secs":60}"#,
        "{not json",
    ] {
        let (status, head, reply) = ingest(addr, call.as_str(), &session, bad).await;
        assert_eq!(status, 400, "{bad}: {reply}");
        assert_eq!(header(&head, "cache-control"), Some("no-store"));
        assert!(reply.contains("\"error\""), "{reply}");
    }
    assert!(
        cs.server
            .audit_json()
            .iter()
            .all(|e| e["action"] != "ingest_token_issued")
    );
    cs.server.stop().await.unwrap();
}

/// A server whose organisations `org-a` (room `a-desk`, clinician `dr-a`,
/// admin `adm-a`) and `org-b` (admin `adm-b`) include admins.
async fn start_with_admins() -> TestServer {
    let hash = signaling::auth::hash_password(PASSWORD);
    let account = |id: &str, tenant: &str, role: &str| {
        format!(
            "[[clinician]]\nid = \"{id}\"\ntenant = \"{tenant}\"\nusername = \"{id}\"\n\
             display_name = \"Dr {id}\"\nrole = \"{role}\"\npassword_hash = \"{hash}\"\n"
        )
    };
    let toml = format!(
        "[[tenant]]\nid = \"org-a\"\nname = \"Org A\"\n[[tenant]]\nid = \"org-b\"\nname = \"Org B\"\n\
         [[room]]\nid = \"a-desk\"\ntenant = \"org-a\"\nname = \"Desk\"\n\
         [[room]]\nid = \"b-desk\"\ntenant = \"org-b\"\nname = \"Desk\"\n{}{}{}",
        account("dr-a", "org-a", "clinician"),
        account("adm-a", "org-a", "admin"),
        account("adm-b", "org-b", "admin"),
    );
    let directory = Arc::new(Directory::from_toml_str(&toml).expect("directory"));
    TestServer::start_with(|s| {
        let config = Config::parse_args(["signaling", "--config", "unused.toml"]).unwrap();
        *s = Services::new(directory, s.audit.clone(), &config);
        s.relays = RelayPool::new(RelaySettings::new(SECRET, Region::new("eu").unwrap()));
    })
    .await
}

#[tokio::test]
async fn an_admin_of_the_call_s_organisation_gets_a_token_without_being_in_it() {
    let server = start_with_admins().await;
    let _relay = FakeRelay::register(server.addr, "r-eu-1", "eu").await;
    let (mut doc, _) = server.clinician("dr-a").await;
    let (mut patient, p, _) = server.joined_patient("a-desk", "Ann", "").await;
    let (pr, _) = admit_into_call(&mut doc, &mut patient, &p).await;
    let body = r#"{"role":"subscriber"}"#;

    let adm_a = server.login("adm-a");
    let (status, _, reply) = ingest(server.addr, pr.call.as_str(), &adm_a, body).await;
    assert_eq!(status, 200, "{reply}");
    let adm_b = server.login("adm-b");
    let (status, _, reply) = ingest(server.addr, pr.call.as_str(), &adm_b, body).await;
    assert_eq!(status, 404, "another organisation's admin: {reply}");

    let issued: Vec<Value> = server
        .audit_json()
        .into_iter()
        .filter(|e| e["action"] == "ingest_token_issued")
        .collect();
    assert_eq!(issued.len(), 1);
    assert_eq!(issued[0]["actor"], "adm-a");
    assert_eq!(
        issued[0]["detail"],
        json!(format!("call={} role=subscriber", pr.call))
    );
    server.stop().await.unwrap();
}
