//! Two in-process signaling servers on one Redis (issue 7): one owns the
//! lobby, the other pipes its WebSockets there. A clinician on node A and a
//! patient on node B share one waiting room: whichever node is the front
//! end, its socket is piped to the owner and the conversation works as on
//! one node (arrival, intake, admit).

mod support;

use serde_json::json;
use signaling::store::redis_server::RedisServer;
use support::action;
use support::cluster::redis_node;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_patient_on_one_node_and_a_clinician_on_the_other_share_the_lobby() {
    let redis = RedisServer::start().expect("a private redis-server");
    let a = redis_node(&redis.url(), "sig-a").await;
    let b = redis_node(&redis.url(), "sig-b").await;

    // The session lives in Redis: a login made on B works on A's socket.
    let token = b.login("dr-a");
    let (mut doc, snap) = a.clinician_with(&token).await;
    assert_eq!(snap["type"], "queue_snapshot");

    let (mut patient, p, _) = b.joined_patient("a-gp", "Ann Example", "a cough").await;
    let status = patient.expect_type("queue_status").await;
    assert_eq!(status["position"].as_u64(), Some(1));
    let arrived = doc.expect_type("patient_arrived").await;
    assert_eq!(arrived["entry"]["participant"], json!(p));

    doc.send(&action("get_intake", &p, 10)).await;
    let intake = doc.expect_type("intake").await;
    assert_eq!(intake["answers"], json!({"reason": "a cough"}));
    doc.send(&action("admit", &p, 11)).await;
    assert_eq!(doc.expect_type("ok").await["request"], 11);
    let admitted = patient.expect_type("admitted").await;
    assert_eq!(admitted["room"], "a-gp");
}
