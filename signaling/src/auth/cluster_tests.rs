//! `Auth` on sessions shared through a real Redis: two `Auth`s are two
//! signaling nodes (each with its own directory, as two processes would
//! have), on one `redis-server`.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use protocol::{ClinicianId, NodeId, TenantId};

use super::tests::{HASH, PASSWORD};
use super::{Auth, AuthError, AuthSettings};
use crate::Error;
use crate::audit::{Audit, AuditBuffer};
use crate::directory::Directory;
use crate::store::RedisHandle;
use crate::store::backends::Backends;
use crate::store::redis_server::RedisServer;

const MIN: Duration = Duration::from_secs(60);
const LOCAL: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

fn directory() -> Directory {
    let toml = format!(
        r#"
[[tenant]]
id = "north"
name = "North"
[[clinician]]
id = "dr-lee"
tenant = "north"
username = "lee"
display_name = "Dr Lee"
password_hash = "{HASH}"
"#
    );
    Directory::from_toml_str(&toml).unwrap()
}

/// One "node": its own directory and audit trail, sessions and bus in `redis`.
struct Node {
    auth: Arc<Auth>,
    directory: Arc<Directory>,
    audit: AuditBuffer,
}

fn node(redis: &RedisServer, name: &str) -> Node {
    let directory = Arc::new(directory());
    let (audit, buffer) = Audit::memory();
    let settings = AuthSettings::default();
    let handle = RedisHandle::new(&redis.url()).unwrap();
    let backends = Backends::redis_with(handle, &settings);
    let auth = Auth::with_sessions(
        directory.clone(),
        audit,
        settings,
        backends.sessions.clone(),
    )
    .with_bus(backends.bus.clone(), NodeId::new(name).unwrap());
    Node {
        auth: Arc::new(auth),
        directory,
        audit: buffer,
    }
}

fn lee() -> ClinicianId {
    ClinicianId::new("dr-lee").unwrap()
}

fn count(buf: &AuditBuffer, action: &str) -> usize {
    buf.lines()
        .iter()
        .filter(|l| l.contains(&format!("\"action\":\"{action}\"")))
        .count()
}

// Multi-threaded: Redis calls run in block_in_place on the workers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_opened_on_one_node_works_on_the_other_and_logout_ends_it_on_both() {
    let redis = RedisServer::start().expect("a private redis-server");
    let (a, b) = (node(&redis, "sig-a"), node(&redis, "sig-b"));
    let t0 = Instant::now();
    let (token, info) = a.auth.login("lee", PASSWORD, LOCAL, t0).unwrap();
    assert_eq!(b.auth.session(&token, t0 + MIN), Some(info.clone()));
    assert!(b.auth.session_is_live(&token, t0 + MIN));
    // Logged out on B: gone on A too, and audited on B only.
    assert_eq!(b.auth.try_logout_from(&token, None).unwrap(), Some(info));
    assert_eq!(a.auth.check_session(&token, t0 + MIN).unwrap(), None);
    assert!(!a.auth.session_is_live(&token, t0 + MIN));
    assert_eq!(
        (count(&a.audit, "logout"), count(&b.audit, "logout")),
        (0, 1)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_expiry_holds_across_nodes_and_is_audited_once() {
    let redis = RedisServer::start().expect("a private redis-server");
    let (a, b) = (node(&redis, "sig-a"), node(&redis, "sig-b"));
    let t0 = Instant::now();
    let (token, _) = a.auth.login("lee", PASSWORD, LOCAL, t0).unwrap();
    // Used on B at 19 min: A sees the extended deadline at 38 min.
    assert!(b.auth.session(&token, t0 + 19 * MIN).is_some());
    assert!(a.auth.session(&token, t0 + 38 * MIN).is_some());
    // Idle 20 min since then: both nodes sweep, one audit line in all.
    let late = t0 + 58 * MIN + Duration::from_secs(1);
    a.auth.sweep_expired(late);
    b.auth.sweep_expired(late);
    assert_eq!(
        count(&a.audit, "session_expired") + count(&b.audit, "session_expired"),
        1
    );
    assert_eq!(b.auth.check_session(&token, late).unwrap(), None);
    assert_eq!(a.auth.check_session(&token, late).unwrap(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disabling_or_logging_out_on_one_node_revokes_on_the_other_within_a_second() {
    let redis = RedisServer::start().expect("a private redis-server");
    let (a, b) = (node(&redis, "sig-a"), node(&redis, "sig-b"));
    let watch = b.auth.watch_cluster().await.unwrap();
    let t0 = Instant::now();

    // Logout on A: B's sockets are told to re-check, and find it gone.
    let (token, _) = a.auth.login("lee", PASSWORD, LOCAL, t0).unwrap();
    let mut revoked = b.auth.revocations();
    revoked.borrow_and_update();
    assert!(a.auth.logout(&token).is_some());
    tokio::time::timeout(Duration::from_secs(1), revoked.changed())
        .await
        .expect("B hears of the logout within a second")
        .unwrap();
    assert!(!b.auth.session_is_live(&token, t0));

    // Account disabled on A (B's own directory still says enabled).
    let (t1, _) = a.auth.login("lee", PASSWORD, LOCAL, t0).unwrap();
    let (t2, _) = b.auth.login("lee", PASSWORD, LOCAL, t0).unwrap();
    revoked.borrow_and_update();
    let north = TenantId::new("north").unwrap();
    a.directory.set_enabled(&north, &lee(), false).unwrap();
    assert_eq!(a.auth.try_end_sessions_of(&lee()).unwrap(), 2);
    tokio::time::timeout(Duration::from_secs(1), revoked.changed())
        .await
        .expect("B hears of the disabled account within a second")
        .unwrap();
    assert!(b.directory.clinician(&lee()).unwrap().enabled);
    assert!(!b.auth.session_is_live(&t1, t0));
    assert!(!b.auth.session_is_live(&t2, t0));
    watch.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_redis_is_unavailable_not_logged_out_and_service_recovers() {
    let mut redis = RedisServer::start().expect("a private redis-server");
    let port = redis.addr().port();
    let a = node(&redis, "sig-a");
    let t0 = Instant::now();
    let (token, _) = a.auth.login("lee", PASSWORD, LOCAL, t0).unwrap();
    redis.kill();

    let err = a.auth.check_session(&token, t0).unwrap_err();
    assert!(matches!(err, Error::Redis(_)), "{err}");
    assert!(err.is_unavailable());
    assert!(!err.to_string().contains(&token), "no token in errors");
    assert_eq!(
        a.auth.login("lee", PASSWORD, LOCAL, t0).unwrap_err(),
        AuthError::Unavailable
    );
    assert!(a.auth.try_logout_from(&token, None).is_err());
    // An open socket is not dropped for an outage.
    assert!(a.auth.session_is_live(&token, t0));

    // Redis back (empty: no persistence, so earlier sessions are gone).
    let _redis = RedisServer::start_on(port).expect("redis-server again on its port");
    assert_eq!(a.auth.check_session(&token, t0).unwrap(), None);
    let (again, _) = a.auth.login("lee", PASSWORD, LOCAL, t0).unwrap();
    assert!(a.auth.check_session(&again, t0).unwrap().is_some());
    assert!(!a.audit.lines().join("\n").contains(&token));
}
