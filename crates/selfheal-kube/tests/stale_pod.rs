//! A pod target on an old revision must not roll back a healthy release: the
//! adapter against the project's test API server, seeded with
//! `examples/checkout-snapshot.yaml` (revision 4 runs api 1.2.0) plus a pod
//! left behind by revision 3 (api 1.1.0, ReplicaSet scaled to 0).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use secrecy::SecretString;
use selfheal_core::{Guard, OutcomeStatus, Policy, RemediationRequest};
use selfheal_kube::{Remediator, client_from_parts};
use selfheal_testserver::TestServer;
use selfheal_testserver::fixtures::NAMESPACE as NS;
use serde_json::{Value, json};

const CURRENT_POD: &str = "checkout-64db67cc5-b984x";
const STALE_POD: &str = "checkout-59d455ddc4-old3x";
const API_1_1: &str = "registry.example/shop/api:1.1.0";
const API_1_2: &str = "registry.example/shop/api:1.2.0";

fn snapshot() -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/checkout-snapshot.yaml");
    serde_saphyr::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The snapshot's current pod, moved to revision 3's ReplicaSet and image:
/// what a late `KubePodCrashLooping` names after the rollout moved on.
fn stale_pod(snapshot: &Value) -> Value {
    let current = snapshot["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["kind"] == "Pod" && o["metadata"]["name"] == CURRENT_POD)
        .unwrap();
    let rs3 = snapshot["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| {
            o["kind"] == "ReplicaSet"
                && o["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "3"
        })
        .unwrap();
    assert_eq!(rs3["spec"]["replicas"], 0, "revision 3 is scaled down");
    let mut pod = current.clone();
    let meta = pod["metadata"].as_object_mut().unwrap();
    meta.remove("uid");
    meta.remove("resourceVersion");
    meta["name"] = json!(STALE_POD);
    meta["generateName"] = json!("checkout-59d455ddc4-");
    meta["labels"]["pod-template-hash"] = rs3["metadata"]["labels"]["pod-template-hash"].clone();
    meta["ownerReferences"][0]["name"] = rs3["metadata"]["name"].clone();
    meta["ownerReferences"][0]["uid"] = rs3["metadata"]["uid"].clone();
    pod["spec"]["containers"][0]["image"] = json!(API_1_1);
    pod
}

/// The server holding the snapshot and the stale pod. The controller
/// emulation is stopped first: it would delete the pod of a ReplicaSet
/// scaled to 0, and a real cluster keeps it only while it terminates.
async fn server() -> TestServer {
    let server = TestServer::start().await.unwrap();
    server.controller().pause_automatic(true);
    let snapshot = snapshot();
    server.try_apply_objects(snapshot.clone()).unwrap();
    server.try_apply_objects(stale_pod(&snapshot)).unwrap();
    assert!(server.object("Pod", NS, STALE_POD).is_some());
    server.clear_requests();
    server
}

fn remediator(server: &TestServer) -> Remediator {
    let client =
        client_from_parts(&server.url(), None, SecretString::from(server.token())).unwrap();
    Remediator::new(client, Policy::default())
}

fn rollback_of(pod: &str) -> RemediationRequest {
    serde_json::from_value(json!({
        "action": "rollback",
        "target": {"namespace": NS, "pod": pod, "container": "api"},
        "reason": "KubePodCrashLooping"
    }))
    .unwrap()
}

fn api_image(server: &TestServer) -> Value {
    server.object("Deployment", NS, "checkout").unwrap()["spec"]["template"]["spec"]["containers"]
        [0]["image"]
        .clone()
}

#[tokio::test]
async fn pod_of_an_old_revision_is_refused_and_nothing_is_written() {
    let server = server().await;
    let before = server.object("Deployment", NS, "checkout").unwrap();

    for dry_run in [false, true] {
        let mut request = rollback_of(STALE_POD);
        request.dry_run = dry_run;
        let outcome = remediator(&server).remediate(&request).await.unwrap();

        assert_eq!(outcome.status, OutcomeStatus::Refused, "{outcome:?}");
        assert_eq!(outcome.guard, Some(Guard::StalePod));
        assert!(outcome.changes.is_empty());
        assert_eq!(outcome.target.pod.as_deref(), Some(STALE_POD));
        assert_eq!(outcome.target.deployment.as_deref(), Some("checkout"));
        assert!(
            outcome.message.contains("revision 3") && outcome.message.contains("revision 4"),
            "{}",
            outcome.message
        );
        let writes: Vec<String> = server
            .requests()
            .iter()
            .filter(|r| r.method != "GET")
            .map(|r| format!("{} {}", r.method, r.path))
            .collect();
        assert!(writes.is_empty(), "no PATCH, no Event: {writes:?}");
        assert_eq!(
            server.object("Deployment", NS, "checkout").unwrap(),
            before,
            "the Deployment is untouched"
        );
    }
    assert_eq!(api_image(&server), API_1_2);
}

#[tokio::test]
async fn pause_through_a_stale_pod_is_refused_too() {
    let server = server().await;
    let before = server.object("Deployment", NS, "checkout").unwrap();
    let mut request = rollback_of(STALE_POD);
    request.action = selfheal_core::Action::Pause;
    request.target.container = None;

    let outcome = remediator(&server).remediate(&request).await.unwrap();

    assert_eq!(outcome.guard, Some(Guard::StalePod), "{outcome:?}");
    assert_eq!(server.object("Deployment", NS, "checkout").unwrap(), before);
}

#[tokio::test]
async fn pod_of_the_current_revision_still_rolls_back() {
    let server = server().await;

    let outcome = remediator(&server)
        .remediate(&rollback_of(CURRENT_POD))
        .await
        .unwrap();

    assert_eq!(outcome.status, OutcomeStatus::Applied, "{outcome:?}");
    assert_eq!(outcome.changes.len(), 1);
    assert_eq!(outcome.changes[0].from, API_1_2);
    assert_eq!(outcome.changes[0].to, API_1_1);
    assert_eq!(api_image(&server), API_1_1);
    let lines: Vec<String> = server
        .requests()
        .iter()
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert_eq!(
        lines,
        [
            format!("GET /api/v1/namespaces/shop/pods/{CURRENT_POD}"),
            "GET /apis/apps/v1/namespaces/shop/replicasets/checkout-64db67cc5".to_owned(),
            "GET /apis/apps/v1/namespaces/shop/deployments/checkout".to_owned(),
            "GET /apis/apps/v1/namespaces/shop/replicasets".to_owned(),
            "PATCH /apis/apps/v1/namespaces/shop/deployments/checkout".to_owned(),
            "POST /api/v1/namespaces/shop/events".to_owned(),
        ]
    );
}
