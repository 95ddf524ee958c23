//! The StatefulSet and DaemonSet controllers step by step: what the
//! recordings only show converged (tests/tests/fixture_replay.rs compares
//! those) and what they describe in words: ordered updates, partition holds,
//! OnDelete.

use std::time::Duration;

use serde_json::{Value, json};

use crate::fixtures::{LEDGER_HISTORY, NODE_AGENT_HISTORY, ledger, node, node_agent};
use crate::store::Kind;
use crate::{ControllerConfig, TestServer};

const DAY: Duration = Duration::from_secs(86_400);

/// A server whose pods turn ready only when the test moves the clock a day.
async fn server() -> TestServer {
    let server = TestServer::builder()
        .controller(ControllerConfig {
            ready_delay: DAY,
            ..ControllerConfig::default()
        })
        .start()
        .await
        .unwrap();
    server.controller().pause_automatic(true);
    server
}

/// Every pending pod turns ready, as often as a rollout needs.
fn converge(server: &TestServer) {
    for _ in 0..8 {
        server.controller().advance(DAY);
    }
}

/// `(pod name, first container's image)` of `ns`, sorted by name.
fn pods(server: &TestServer, ns: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = server
        .inner
        .shared
        .store()
        .list(Kind::Pod, Some(ns))
        .iter()
        .map(|p| {
            let name = p["metadata"]["name"].as_str().unwrap().to_string();
            let image = p["spec"]["containers"][0]["image"].as_str().unwrap();
            (name, image.to_string())
        })
        .collect();
    out.sort();
    out
}

fn images(server: &TestServer, ns: &str) -> Vec<String> {
    pods(server, ns).into_iter().map(|(_, i)| i).collect()
}

/// Changes the first container's image of `kind ns/name` like a user's write.
fn set_image(server: &TestServer, kind: &str, name: &str, image: &str) {
    let mut obj = server.object(kind, "data", name).unwrap();
    obj["spec"]["template"]["spec"]["containers"][0]["image"] = json!(image);
    server.update(kind, "data", &obj).unwrap();
}

fn status(server: &TestServer, kind: &str, name: &str) -> Value {
    server.object(kind, "data", name).unwrap()["status"].clone()
}

/// `revision → first container's image` of the namespace's ControllerRevisions.
fn revisions(server: &TestServer) -> Vec<(i64, String, String)> {
    let mut out: Vec<(i64, String, String)> = server
        .controller_revisions("data")
        .into_iter()
        .map(|r| {
            let image =
                r.data.as_ref().unwrap().0["spec"]["template"]["spec"]["containers"][0]["image"]
                    .as_str()
                    .unwrap()
                    .to_string();
            (r.revision, r.metadata.name.unwrap(), image)
        })
        .collect();
    out.sort();
    out
}

#[tokio::test]
async fn statefulset_replaces_the_highest_ordinal_first_and_renumbers_a_rollback() {
    let server = server().await;
    server.apply_objects(ledger("db:1", "metrics:1").json());
    // OrderedReady: ledger-1 only once ledger-0 is ready.
    server.controller().reconcile_now();
    assert_eq!(pods(&server, "data"), [("ledger-0".into(), "db:1".into())]);
    converge(&server);
    assert_eq!(images(&server, "data"), ["db:1", "db:1"]);

    set_image(&server, "StatefulSet", "ledger", "db:2");
    server.controller().reconcile_now();
    assert_eq!(
        pods(&server, "data"),
        [
            ("ledger-0".into(), "db:1".into()),
            ("ledger-1".into(), "db:2".into())
        ],
        "ledger-1 goes first and is waited for"
    );
    let s = status(&server, "StatefulSet", "ledger");
    assert_ne!(s["currentRevision"], s["updateRevision"], "{s}");
    assert_eq!(
        (s["currentReplicas"].clone(), s["updatedReplicas"].clone()),
        (json!(1), json!(1))
    );
    converge(&server);
    assert_eq!(images(&server, "data"), ["db:2", "db:2"]);
    let s = status(&server, "StatefulSet", "ledger");
    assert_eq!(s["currentRevision"], s["updateRevision"], "{s}");

    set_image(&server, "StatefulSet", "ledger", "db:3");
    converge(&server);
    let before = revisions(&server);
    set_image(&server, "StatefulSet", "ledger", "db:2");
    converge(&server);
    let after = revisions(&server);
    assert_eq!(after.len(), 3, "no new revision: {after:?}");
    assert_eq!(after[2].0, 4, "{after:?}");
    assert_eq!(
        after[2].1, before[1].1,
        "revision 2 reused under its name as 4"
    );
    assert_eq!(images(&server, "data"), ["db:2", "db:2"]);
}

#[tokio::test]
async fn statefulset_partition_holds_the_lower_ordinals() {
    let server = server().await;
    server.apply_objects(ledger("db:1", "metrics:1").partition(2).json());
    converge(&server);
    set_image(&server, "StatefulSet", "ledger", "db:2");
    converge(&server);
    assert_eq!(images(&server, "data"), ["db:1", "db:1"], "held");
    let s = status(&server, "StatefulSet", "ledger");
    assert_ne!(s["currentRevision"], s["updateRevision"]);
    assert!(s.get("updatedReplicas").is_none(), "{s}");

    let mut set = server.object("StatefulSet", "data", "ledger").unwrap();
    set["spec"]["updateStrategy"]["rollingUpdate"]["partition"] = json!(1);
    server.update("StatefulSet", "data", &set).unwrap();
    converge(&server);
    assert_eq!(images(&server, "data"), ["db:1", "db:2"], "only ordinal 1");
    // A deleted pod below the partition comes back on the current revision.
    server
        .inner
        .shared
        .store()
        .delete(Kind::Pod, "data", "ledger-0");
    converge(&server);
    assert_eq!(images(&server, "data"), ["db:1", "db:2"]);
}

#[tokio::test]
async fn statefulset_on_delete_with_rolling_update_is_invalid() {
    let server = server().await;
    let mut set = ledger("db:1", "metrics:1").json();
    server.apply_objects(set.clone());
    set["spec"]["updateStrategy"] = json!({"type": "OnDelete", "rollingUpdate": {"partition": 0}});
    let err = server.update("StatefulSet", "data", &set).unwrap_err();
    assert!(err.starts_with("422"), "{err}");
}

#[tokio::test]
async fn daemonset_runs_one_pod_per_node_and_rolls_one_node_at_a_time() {
    let server = server().await;
    server.apply_objects(node("node-a"));
    server.apply_objects(node("node-b"));
    server.apply_objects(node_agent("agent:1", "shipper:1").json());
    converge(&server);
    assert_eq!(images(&server, "data"), ["agent:1", "agent:1"]);
    let s = status(&server, "DaemonSet", "node-agent");
    assert_eq!(
        (
            s["desiredNumberScheduled"].clone(),
            s["numberAvailable"].clone()
        ),
        (json!(2), json!(2))
    );

    set_image(&server, "DaemonSet", "node-agent", "agent:2");
    server.controller().reconcile_now();
    let mut now = images(&server, "data");
    now.sort();
    assert_eq!(now, ["agent:1", "agent:2"], "maxUnavailable 1");
    let s = status(&server, "DaemonSet", "node-agent");
    assert_eq!(
        (
            s["updatedNumberScheduled"].clone(),
            s["numberUnavailable"].clone()
        ),
        (json!(1), json!(1))
    );
    converge(&server);
    assert_eq!(images(&server, "data"), ["agent:2", "agent:2"]);
    let ds = server.object("DaemonSet", "data", "node-agent").unwrap();
    assert_eq!(
        ds["metadata"]["annotations"][crate::store::TEMPLATE_GENERATION],
        "2"
    );
}

#[tokio::test]
async fn daemonset_on_delete_replaces_only_deleted_pods() {
    let server = server().await;
    server.apply_objects(node("node-a"));
    server.apply_objects(node("node-b"));
    server.apply_objects(node_agent("agent:1", "shipper:1").on_delete().json());
    converge(&server);
    set_image(&server, "DaemonSet", "node-agent", "agent:2");
    converge(&server);
    assert_eq!(images(&server, "data"), ["agent:1", "agent:1"]);
    let s = status(&server, "DaemonSet", "node-agent");
    assert!(s.get("updatedNumberScheduled").is_none(), "{s}");

    let (first, _) = pods(&server, "data").remove(0);
    server
        .inner
        .shared
        .store()
        .delete(Kind::Pod, "data", &first);
    converge(&server);
    let mut now = images(&server, "data");
    now.sort();
    assert_eq!(now, ["agent:1", "agent:2"]);
}

/// The recorded histories seed in one call, ready for a half-brick
/// rollback: revisions 1–4, the pods on revision 4.
#[tokio::test]
async fn recorded_histories_seed_to_revision_4() {
    let server = TestServer::start().await.unwrap();
    let sts = ledger(
        "registry.example/data/db:15.1",
        "registry.example/data/metrics:0.9",
    );
    assert!(sts.seed_with_history(&server, &LEDGER_HISTORY).await);
    let ds = node_agent(
        "registry.example/obs/agent:2.0",
        "registry.example/obs/shipper:1.4",
    );
    assert!(ds.seed_with_history(&server, &NODE_AGENT_HISTORY).await);
    let revisions = revisions(&server);
    let numbers: Vec<i64> = revisions.iter().map(|r| r.0).collect();
    assert_eq!(numbers, [1, 1, 2, 2, 3, 3, 4, 4]);
    let mut live = images(&server, "data");
    live.sort();
    assert_eq!(
        live,
        [
            "registry.example/data/db:15.3",
            "registry.example/data/db:15.3",
            "registry.example/obs/agent:2.2",
            "registry.example/obs/agent:2.2"
        ]
    );
    let s = status(&server, "StatefulSet", "ledger");
    assert_eq!(s["currentRevision"], s["updateRevision"]);
    assert_eq!(s["readyReplicas"], 2);
    // The controllers' events, as their recorders word them.
    let events: Vec<(String, String, String)> = server
        .events("data")
        .into_iter()
        .map(|e| {
            let source = e.source.and_then(|s| s.component).unwrap_or_default();
            (
                source,
                e.reason.unwrap_or_default(),
                e.message.unwrap_or_default(),
            )
        })
        .collect();
    let has = |source: &str, reason: &str, message: &str| {
        events
            .iter()
            .any(|(s, r, m)| s == source && r == reason && m.starts_with(message))
    };
    assert!(has(
        "statefulset-controller",
        "SuccessfulCreate",
        "create Pod ledger-0 in StatefulSet ledger successful"
    ));
    assert!(has(
        "statefulset-controller",
        "SuccessfulDelete",
        "delete Pod ledger-1 in StatefulSet ledger successful"
    ));
    assert!(has(
        "daemonset-controller",
        "SuccessfulCreate",
        "Created pod: node-agent-"
    ));
    assert!(has(
        "daemonset-controller",
        "SuccessfulDelete",
        "Deleted pod: node-agent-"
    ));
}
