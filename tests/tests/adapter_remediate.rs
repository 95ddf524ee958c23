//! The kube adapter (`selfheal-kube`) against the project's test API server:
//! every scenario asserts the resulting Deployment and the request log.
//!
//! The `checkout` history is built the way tests/fixtures/k8s/create-and-history.json
//! recorded it (through the API, with the controller emulation numbering the
//! ReplicaSets): api 1.0.0 → 1.1.0, envoy 1.27 → 1.28, api → 1.2.0.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use secrecy::SecretString;
use selfheal_core::{Action, Guard, OutcomeStatus, Policy, RemediationOutcome, RemediationRequest};
use selfheal_kube::{Error, Remediator, client_from_kubeconfig, client_from_parts};
use selfheal_testserver::fixtures::{API_REPO as API, ENVOY_REPO as ENVOY, NAMESPACE as NS};
use selfheal_testserver::{ControllerConfig, Identity, RecordedRequest, TestServer, fixtures};
use serde_json::{Value, json};

const NOW: &str = "2026-11-26T20:00:00Z";
const DEPLOY_PATH: &str = "/apis/apps/v1/namespaces/shop/deployments/checkout";
const RS_PATH: &str = "/apis/apps/v1/namespaces/shop/replicasets";
const EVENTS_PATH: &str = "/api/v1/namespaces/shop/events";
const PODS_PATH: &str = "/api/v1/namespaces/shop/pods";

fn checkout(opt_in: bool) -> Deployment {
    fixtures::checkout(format!("{API}:1.0.0"), format!("{ENVOY}:1.27"))
        .opt_in(opt_in)
        .annotation("team", "payments")
        .recorded_ports()
        .api_env("MODE", "prod")
        .deployment()
}

fn admin_client(server: &TestServer) -> kube::Client {
    client_from_parts(&server.url(), None, SecretString::from(server.token())).unwrap()
}

async fn set_image(api: &Api<Deployment>, index: usize, image: String) {
    set_images(api, &[(index, image)]).await;
}

/// One JSON Patch setting the image of each `(container index, image)`.
async fn set_images(api: &Api<Deployment>, images: &[(usize, String)]) {
    let ops: Vec<Value> = images
        .iter()
        .map(|(index, image)| {
            json!({"op": "replace", "path": format!("/spec/template/spec/containers/{index}/image"), "value": image})
        })
        .collect();
    let patch: json_patch::Patch = serde_json::from_value(Value::Array(ops)).unwrap();
    api.patch(
        "checkout",
        &PatchParams::default(),
        &Patch::Json::<()>(patch),
    )
    .await
    .unwrap();
}

/// Create the namespace and `checkout` (revision 1) on `server` and let the
/// controller settle; the admin's Deployment API for further changes.
async fn create_checkout(server: &TestServer, opt_in: bool) -> Api<Deployment> {
    server
        .apply_objects(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}}));
    let api: Api<Deployment> = Api::namespaced(admin_client(server), NS);
    api.create(&PostParams::default(), &checkout(opt_in))
        .await
        .unwrap();
    assert!(server.controller().settle().await);
    api
}

/// A server holding `checkout` at revision 4 (api 1.2.0 + envoy 1.28), settled,
/// with an empty request log.
async fn checkout_server(opt_in: bool) -> TestServer {
    let server = TestServer::start().await.unwrap();
    let api = create_checkout(&server, opt_in).await;
    set_image(&api, 0, format!("{API}:1.1.0")).await;
    assert!(server.controller().settle().await);
    set_image(&api, 1, format!("{ENVOY}:1.28")).await;
    assert!(server.controller().settle().await);
    set_image(&api, 0, format!("{API}:1.2.0")).await;
    assert!(server.controller().settle().await);
    assert_eq!(revision(&live(&server)), Some("4".into()));
    server.clear_requests();
    server
}

fn fixed_clock() -> selfheal_kube::Clock {
    let now: jiff::Timestamp = NOW.parse().unwrap();
    Arc::new(move || now)
}

fn remediator(server: &TestServer) -> Remediator {
    Remediator::new(admin_client(server), Policy::default())
        .with_reporting_instance("selfheal-it")
        .with_clock(fixed_clock())
}

/// A rollback of `checkout` by the admin's remediator.
async fn rollback(server: &TestServer) -> selfheal_kube::Result<RemediationOutcome> {
    remediator(server).remediate(&request("rollback")).await
}

fn request(action: &str) -> RemediationRequest {
    serde_json::from_value(json!({
        "action": action,
        "target": {"cluster": "test", "namespace": NS, "deployment": "checkout"},
        "reason": "5xx rate above 5% for 3 minutes",
        "execution": "exec-it"
    }))
    .unwrap()
}

fn live(server: &TestServer) -> Value {
    server.object("Deployment", NS, "checkout").unwrap()
}

fn revision(d: &Value) -> Option<String> {
    d.pointer("/metadata/annotations/deployment.kubernetes.io~1revision")
        .and_then(Value::as_str)
        .map(str::to_owned)
}

fn container(d: &Value, i: usize) -> &Value {
    &d["spec"]["template"]["spec"]["containers"][i]
}

/// The api container's image in the stored Deployment.
fn live_api_image(server: &TestServer) -> Value {
    container(&live(server), 0)["image"].clone()
}

fn log(server: &TestServer) -> Vec<RecordedRequest> {
    server.requests()
}

fn lines(reqs: &[RecordedRequest]) -> Vec<String> {
    reqs.iter()
        .map(|r| format!("{} {} {}", r.method, r.path, r.status))
        .collect()
}

/// The ReplicaSet whose `deployment.kubernetes.io/revision` is `revision`.
fn replica_set_at(server: &TestServer, revision: &str) -> ReplicaSet {
    server
        .replica_sets(NS)
        .into_iter()
        .find(|rs| {
            rs.metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get("deployment.kubernetes.io/revision"))
                .map(String::as_str)
                == Some(revision)
        })
        .unwrap_or_else(|| panic!("no ReplicaSet at revision {revision}"))
}

/// The request log of one rollback attempt whose PATCH is answered `patch`:
/// read, list the history, list the current revision's pods, patch.
fn rollback_attempt(patch: u16) -> Vec<String> {
    vec![
        format!("GET {DEPLOY_PATH} 200"),
        format!("GET {RS_PATH} 200"),
        format!("GET {PODS_PATH} 200"),
        format!("PATCH {DEPLOY_PATH} {patch}"),
    ]
}

/// The request log of one pause attempt whose PATCH is answered `patch`:
/// read, patch; a pause needs no history.
fn pause_attempt(patch: u16) -> Vec<String> {
    vec![
        format!("GET {DEPLOY_PATH} 200"),
        format!("PATCH {DEPLOY_PATH} {patch}"),
    ]
}

/// The log line of the audit Event.
fn event_post() -> Vec<String> {
    vec![format!("POST {EVENTS_PATH} 201")]
}

fn patches(reqs: &[RecordedRequest]) -> Vec<&RecordedRequest> {
    reqs.iter().filter(|r| r.method == "PATCH").collect()
}

// ---------------------------------------------------------------------------

#[tokio::test]
async fn half_brick_rollback_reverts_only_the_offending_container() {
    let server = checkout_server(true).await;
    let before = live(&server);
    let outcome = rollback(&server).await.unwrap();

    // Outcome: api 1.2.0 → 1.1.0, nothing else.
    assert_eq!(outcome.status, OutcomeStatus::Applied, "{outcome:?}");
    assert_eq!(outcome.action, Action::Rollback);
    assert_eq!(outcome.changes.len(), 1);
    assert_eq!(outcome.changes[0].container, "api");
    assert_eq!(outcome.changes[0].from, format!("{API}:1.2.0"));
    assert_eq!(outcome.changes[0].to, format!("{API}:1.1.0"));
    assert_eq!(outcome.revision.and_then(|r| r.before), Some(4));

    // Request log: GET + LIST of ReplicaSets + LIST of the current pods
    // (no container named) + one PATCH + one Event POST, nothing more.
    let reqs = log(&server);
    assert_eq!(lines(&reqs), [rollback_attempt(200), event_post()].concat());
    assert_eq!(
        reqs[1].query.get("labelSelector").map(String::as_str),
        Some("app=checkout")
    );
    let patch = &reqs[3];
    assert_eq!(
        patch.content_type.as_deref(),
        Some("application/json-patch+json")
    );
    assert_eq!(
        patch.query.get("fieldManager").map(String::as_str),
        Some("selfheal")
    );
    assert!(!patch.query.contains_key("dryRun"));
    let ops = patch.body.as_ref().unwrap().as_array().unwrap();
    assert_eq!(ops[0]["op"], "test");
    assert_eq!(ops[0]["path"], "/metadata/generation");
    assert_eq!(ops[0]["value"], before["metadata"]["generation"]);
    assert_eq!(ops[1]["path"], "/metadata/labels");
    assert_eq!(ops[1]["value"], before["metadata"]["labels"]);
    let writes: Vec<&Value> = ops.iter().filter(|o| o["op"] != "test").collect();
    assert!(
        writes
            .iter()
            .any(|o| o["path"] == "/spec/template/spec/containers/0/image"
                && o["value"] == format!("{API}:1.1.0")),
        "image replace in {ops:?}"
    );
    assert!(
        writes.iter().all(|o| o["path"]
            .as_str()
            .unwrap()
            .starts_with("/metadata/annotations")
            || o["path"] == "/spec/template/spec/containers/0/image"),
        "only the image and audit annotations are written: {ops:?}"
    );

    // Resulting Deployment: api image only; envoy, env, ports, other annotations untouched.
    let after = live(&server);
    assert_eq!(container(&after, 0)["image"], format!("{API}:1.1.0"));
    assert_eq!(container(&after, 0)["env"], container(&before, 0)["env"]);
    assert_eq!(
        container(&after, 0)["ports"],
        container(&before, 0)["ports"]
    );
    assert_eq!(container(&after, 1), container(&before, 1));
    assert_eq!(after["metadata"]["annotations"]["team"], "payments");
    let last: Value = serde_json::from_str(
        after["metadata"]["annotations"]["selfheal.dev/last-remediation"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(last["action"], "rollback");
    let bad = after["metadata"]["annotations"]["selfheal.dev/bad-images"]
        .as_str()
        .unwrap();
    assert!(bad.contains(&format!("{API}:1.2.0")), "{bad}");

    // Audit Event, core/v1 with reportingComponent.
    let events: Vec<_> = server
        .events(NS)
        .into_iter()
        .filter(|e| e.reason.as_deref() == Some("SelfhealRollback"))
        .collect();
    assert_eq!(events.len(), 1);
    let ev = &events[0];
    assert_eq!(ev.reporting_component.as_deref(), Some("selfheal"));
    assert_eq!(ev.reporting_instance.as_deref(), Some("selfheal-it"));
    assert_eq!(ev.type_.as_deref(), Some("Normal"));
    assert_eq!(ev.involved_object.name.as_deref(), Some("checkout"));
    assert_eq!(ev.involved_object.kind.as_deref(), Some("Deployment"));
    assert_eq!(
        ev.involved_object.uid.as_deref(),
        before["metadata"]["uid"].as_str()
    );
    assert!(
        ev.metadata
            .name
            .as_deref()
            .unwrap()
            .starts_with("checkout.")
    );

    // The controller then reuses the whole-template match (api 1.1.0 + envoy
    // 1.28, revision 3) as revision 5, as recorded on a real control plane.
    assert!(server.controller().settle().await);
    assert_eq!(revision(&live(&server)), Some("5".into()));
    let rs5 = replica_set_at(&server, "5");
    let ann = rs5.metadata.annotations.unwrap();
    assert_eq!(
        ann.get("deployment.kubernetes.io/revision-history")
            .map(String::as_str),
        Some("3")
    );
    let status = remediator(&server).status(NS, "checkout").await.unwrap();
    assert_eq!(
        status.state,
        selfheal_core::RolloutState::Done,
        "{status:?}"
    );
}

#[tokio::test]
async fn same_rollback_again_is_refused_by_cooldown_without_a_write() {
    let server = checkout_server(true).await;
    let r = remediator(&server);
    r.remediate(&request("rollback")).await.unwrap();
    assert!(server.controller().settle().await);
    let applied = live(&server);
    server.clear_requests();

    let outcome = r.remediate(&request("rollback")).await.unwrap();
    assert_eq!(outcome.status, OutcomeStatus::Refused);
    assert_eq!(outcome.guard, Some(Guard::Cooldown));
    assert!(
        patches(&log(&server)).is_empty(),
        "{:?}",
        lines(&log(&server))
    );
    assert_eq!(live(&server), applied);
}

#[tokio::test]
async fn pod_target_is_resolved_to_its_deployment() {
    let server = checkout_server(true).await;
    let current_rs = server
        .replica_sets(NS)
        .into_iter()
        .find(|rs| rs.spec.as_ref().and_then(|s| s.replicas) == Some(2))
        .unwrap();
    let rs_name = current_rs.metadata.name.clone().unwrap();
    let pod = server
        .pods(NS)
        .into_iter()
        .find(|p| {
            p.metadata
                .owner_references
                .as_ref()
                .is_some_and(|o| o.iter().any(|o| o.name == rs_name))
        })
        .expect("the controller emulation created pods");
    let pod_name = pod.metadata.name.unwrap();
    server.clear_requests();

    let mut req = request("rollback");
    req.target.deployment = None;
    req.target.pod = Some(pod_name.clone());
    let outcome = remediator(&server).remediate(&req).await.unwrap();

    assert_eq!(outcome.status, OutcomeStatus::Applied);
    assert_eq!(outcome.target.deployment.as_deref(), Some("checkout"));
    assert_eq!(outcome.target.pod.as_deref(), Some(pod_name.as_str()));
    let reqs = log(&server);
    assert_eq!(
        lines(&reqs)[..3],
        [
            format!("GET /api/v1/namespaces/shop/pods/{pod_name} 200"),
            format!("GET {RS_PATH}/{rs_name} 200"),
            format!("GET {DEPLOY_PATH} 200"),
        ]
    );
    assert_eq!(patches(&reqs).len(), 1);
    assert_eq!(live_api_image(&server), format!("{API}:1.1.0"));
}

#[tokio::test]
async fn dry_run_validates_on_the_server_and_stores_nothing() {
    let server = checkout_server(true).await;
    let before = live(&server);
    let events_before = server.events(NS).len();
    let mut req = request("rollback");
    req.dry_run = true;

    let outcome = remediator(&server).remediate(&req).await.unwrap();

    assert_eq!(outcome.status, OutcomeStatus::DryRun);
    assert_eq!(outcome.changes[0].to, format!("{API}:1.1.0"));
    let reqs = log(&server);
    let p = patches(&reqs);
    assert_eq!(p.len(), 1);
    assert_eq!(p[0].query.get("dryRun").map(String::as_str), Some("All"));
    assert_eq!(p[0].status, 200);
    assert!(
        reqs.iter().all(|r| r.method != "POST"),
        "no Event for a dry run"
    );
    assert_eq!(live(&server), before, "nothing stored");
    assert_eq!(server.events(NS).len(), events_before);
}

/// A writer that lands between our reads and our PATCH, `times` times.
fn concurrent_writer(server: &TestServer, times: u32) -> selfheal_kube::Clock {
    let server = server.clone();
    let calls = Arc::new(AtomicU32::new(0));
    let now: jiff::Timestamp = NOW.parse().unwrap();
    Arc::new(move || {
        // The clock is read once per planning round (before the PATCH) and
        // once for the Event; only planning rounds see a write.
        let n = calls.fetch_add(1, Ordering::SeqCst);
        let has_patched = server
            .requests()
            .iter()
            .any(|r| r.method == "PATCH" && r.status == 200);
        if n < times && !has_patched {
            let mut d = server.object("Deployment", NS, "checkout").unwrap();
            d["metadata"]["annotations"]["other-writer"] = json!(n.to_string());
            // Through the server's update rules: an annotation write bumps
            // the generation, which the patch's guard tests.
            server.update("Deployment", NS, &d).unwrap();
        }
        now
    })
}

#[tokio::test]
async fn object_modified_between_get_and_patch_is_replanned() {
    let server = checkout_server(true).await;
    let r = remediator(&server).with_clock(concurrent_writer(&server, 1));

    let outcome = r.remediate(&request("rollback")).await.unwrap();

    assert_eq!(outcome.status, OutcomeStatus::Applied);
    let reqs = log(&server);
    assert_eq!(
        lines(&reqs),
        [rollback_attempt(422), rollback_attempt(200), event_post()].concat()
    );
    let after = live(&server);
    assert_eq!(container(&after, 0)["image"], format!("{API}:1.1.0"));
    assert_eq!(
        after["metadata"]["annotations"]["other-writer"], "0",
        "their write kept"
    );
}

#[tokio::test]
async fn injected_409_on_patch_is_replanned() {
    let server = checkout_server(true).await;
    let s = server.clone();
    let calls = Arc::new(AtomicU32::new(0));
    let now: jiff::Timestamp = NOW.parse().unwrap();
    let clock: selfheal_kube::Clock = Arc::new(move || {
        if calls.fetch_add(1, Ordering::SeqCst) == 0 {
            s.faults().fail_next(1, 409);
        }
        now
    });
    let outcome = remediator(&server)
        .with_clock(clock)
        .remediate(&request("pause"))
        .await
        .unwrap();
    assert_eq!(outcome.status, OutcomeStatus::Applied);
    assert_eq!(
        lines(&log(&server)),
        [pause_attempt(409), pause_attempt(200), event_post()].concat()
    );
    assert_eq!(live(&server)["spec"]["paused"], true);
}

#[tokio::test]
async fn persistent_conflict_is_a_retryable_error_after_the_budget() {
    let server = checkout_server(true).await;
    let r = remediator(&server)
        .with_replan_budget(2)
        .with_clock(concurrent_writer(&server, u32::MAX));

    let err = r.remediate(&request("rollback")).await.unwrap_err();

    assert!(
        matches!(
            err,
            Error::ConflictBudgetExhausted {
                attempts: 3,
                last_code: 422,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(err.error_type(), "RetryableConflict");
    assert!(err.is_retryable());
    let reqs = log(&server);
    let p = patches(&reqs);
    assert_eq!(p.len(), 3);
    assert!(p.iter().all(|r| r.status == 422));
    assert!(reqs.iter().all(|r| r.method != "POST"));
    assert_eq!(live_api_image(&server), format!("{API}:1.2.0"));
}

#[tokio::test]
async fn missing_deployment_is_not_found_and_nothing_is_written() {
    let server = checkout_server(true).await;
    let mut req = request("rollback");
    req.target.deployment = Some("does-not-exist".into());
    let err = remediator(&server).remediate(&req).await.unwrap_err();
    assert_eq!(err.error_type(), "NonRetryableNotFound", "{err}");
    assert!(!err.is_retryable());
    assert!(
        matches!(&err, Error::NotFound { kind: "Deployment", name, .. } if name == "does-not-exist")
    );
    let reqs = log(&server);
    assert_eq!(
        lines(&reqs),
        ["GET /apis/apps/v1/namespaces/shop/deployments/does-not-exist 404"]
    );
}

#[tokio::test]
async fn forbidden_token_is_non_retryable_and_writes_nothing() {
    let server = checkout_server(true).await;
    server.add_token(
        "viewer-token",
        Identity::Forbidden("system:serviceaccount:shop:viewer".into()),
    );
    let before = live(&server);
    let client =
        client_from_parts(&server.url(), None, SecretString::from("viewer-token")).unwrap();
    let r = Remediator::new(client, Policy::default()).with_clock(fixed_clock());

    let err = r.remediate(&request("rollback")).await.unwrap_err();

    assert_eq!(err.error_type(), "NonRetryableForbidden", "{err}");
    assert!(
        err.to_string()
            .contains("system:serviceaccount:shop:viewer"),
        "{err}"
    );
    assert!(patches(&log(&server)).is_empty());
    assert_eq!(live(&server), before);

    // An unknown token is 401: same class.
    let client = client_from_parts(&server.url(), None, SecretString::from("bogus")).unwrap();
    let err = Remediator::new(client, Policy::default())
        .remediate(&request("pause"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Unauthorized { .. }), "{err:?}");
    assert_eq!(err.error_type(), "NonRetryableForbidden");
}

#[tokio::test]
async fn server_errors_are_retryable_and_not_retried_inside_the_client() {
    for code in [500, 503] {
        let server = checkout_server(true).await;
        server.faults().fail_next(1, code);
        let err = rollback(&server).await.unwrap_err();
        assert_eq!(err.error_type(), "RetryableApiError", "{code}: {err}");
        assert!(err.is_retryable());
        assert_eq!(err.http_status(), Some(code));
        // kube's own retry layer is off: the state machine owns retries.
        assert_eq!(lines(&log(&server)), [format!("GET {DEPLOY_PATH} {code}")]);
        assert_eq!(live_api_image(&server), format!("{API}:1.2.0"));
    }
}

#[tokio::test]
async fn pause_resume_restart_resulting_objects() {
    let server = checkout_server(true).await;
    // No cooldown, so a second pause reaches the "already paused" rule.
    let policy = Policy {
        cooldown: std::time::Duration::ZERO,
        ..Policy::default()
    };
    let r = Remediator::new(admin_client(&server), policy).with_clock(fixed_clock());

    // pause: GET + PATCH + Event; spec.paused and the paused-by mark.
    let outcome = r.remediate(&request("pause")).await.unwrap();
    assert_eq!(outcome.status, OutcomeStatus::Applied);
    assert_eq!(
        lines(&log(&server)),
        [pause_attempt(200), event_post()].concat()
    );
    let d = live(&server);
    assert_eq!(d["spec"]["paused"], true);
    assert_eq!(
        d["metadata"]["annotations"]["selfheal.dev/paused-by"],
        "selfheal"
    );
    assert_eq!(outcome.revision.and_then(|r| r.after), Some(4));

    // pause again: skipped, nothing written.
    server.clear_requests();
    let outcome = r.remediate(&request("pause")).await.unwrap();
    assert_eq!(outcome.status, OutcomeStatus::Skipped, "{outcome:?}");
    assert!(patches(&log(&server)).is_empty());

    // resume: paused cleared, mark removed.
    server.clear_requests();
    let outcome = r.remediate(&request("resume")).await.unwrap();
    assert_eq!(outcome.status, OutcomeStatus::Applied);
    let d = live(&server);
    assert_ne!(d["spec"]["paused"], true);
    assert!(
        d["metadata"]["annotations"]
            .get("selfheal.dev/paused-by")
            .is_none()
    );
    assert_eq!(patches(&log(&server)).len(), 1);

    // restart: restartedAt on the template, a new revision after the controller runs.
    server.clear_requests();
    let before = live(&server);
    let outcome = r.remediate(&request("restart")).await.unwrap();
    assert_eq!(outcome.status, OutcomeStatus::Applied);
    let d = live(&server);
    assert_eq!(
        d["spec"]["template"]["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"],
        NOW
    );
    assert_eq!(container(&d, 0), container(&before, 0));
    assert_eq!(container(&d, 1), container(&before, 1));
    assert_eq!(patches(&log(&server)).len(), 1);
    assert!(server.controller().settle().await);
    assert_eq!(revision(&live(&server)), Some("5".into()));

    // Events list in name order (generated suffixes), so compare as a set.
    let mut reasons: Vec<String> = server
        .events(NS)
        .into_iter()
        .filter_map(|e| e.reason)
        .filter(|r| r.starts_with("Selfheal"))
        .collect();
    reasons.sort();
    assert_eq!(
        reasons,
        ["SelfhealPause", "SelfhealRestart", "SelfhealResume"]
    );
}

#[tokio::test]
async fn refused_guard_sends_no_patch() {
    let server = checkout_server(false).await;
    let before = live(&server);
    let outcome = rollback(&server).await.unwrap();
    assert_eq!(outcome.status, OutcomeStatus::Refused);
    assert_eq!(outcome.guard, Some(Guard::OptIn));
    let reqs = log(&server);
    assert!(patches(&reqs).is_empty(), "{:?}", lines(&reqs));
    assert!(reqs.iter().all(|r| r.method == "GET"));
    assert_eq!(live(&server), before);
    assert!(server.events(NS).iter().all(|e| {
        !e.reason
            .as_deref()
            .unwrap_or_default()
            .starts_with("Selfheal")
    }));
}

#[tokio::test]
async fn kubeconfig_client_and_tls_client_reach_the_server() {
    // kubeconfig (CLI path), context named explicitly.
    let server = checkout_server(true).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kubeconfig");
    server.write_kubeconfig(&path).unwrap();
    let client = client_from_kubeconfig(Some(&path), Some("selfheal-test"))
        .await
        .unwrap();
    let status = Remediator::new(client, Policy::default())
        .status(NS, "checkout")
        .await
        .unwrap();
    assert_eq!(status.state, selfheal_core::RolloutState::Done);

    // HTTPS with the server's CA (EKS path: endpoint + PEM + bearer token).
    let tls = TestServer::builder().tls(true).start().await.unwrap();
    tls.apply_objects(serde_json::to_value(checkout(true)).unwrap());
    assert!(tls.controller().settle().await);
    let pem = tls.ca_pem().unwrap();
    let client =
        client_from_parts(&tls.url(), Some(&pem), SecretString::from(tls.token())).unwrap();
    let snapshot = Remediator::new(client, Policy::default())
        .deployment_snapshot(NS, "checkout")
        .await
        .unwrap();
    assert_eq!(snapshot.workload.metadata.name.as_deref(), Some("checkout"));
    assert_eq!(snapshot.replica_sets.len(), 1);

    // Without the CA the TLS handshake fails: a transport error, retryable.
    let client = client_from_parts(&tls.url(), None, SecretString::from(tls.token())).unwrap();
    let err = Remediator::new(client, Policy::default())
        .status(NS, "checkout")
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Transport { .. }), "{err:?}");
    assert_eq!(err.error_type(), "RetryableApiError");
}

/// A clock the test moves: `NOW` plus the seconds stored in the counter.
fn moving_clock(offset: Arc<AtomicU32>) -> selfheal_kube::Clock {
    let start: jiff::Timestamp = NOW.parse().unwrap();
    Arc::new(move || {
        let seconds = i64::from(offset.load(Ordering::SeqCst));
        start
            .checked_add(jiff::SignedDuration::from_secs(seconds))
            .unwrap()
    })
}

fn history_actions(d: &Value) -> Vec<String> {
    let history: Value = serde_json::from_str(
        d["metadata"]["annotations"]["selfheal.dev/history"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    history
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["action"].as_str().unwrap().to_owned())
        .collect()
}

/// Cooldown and audit rules against the test API server, with the default
/// 600 s cooldown: rollback, pause 30 s later, resume at 60 s, then at 120 s
/// a second rollback (refused: the rollback's own cooldown, although
/// `last-remediation` names the resume), a resume of the running Deployment
/// inside the resume's cooldown (skipped, not refused), and a dry-run
/// rollback (previewed, not refused). The history and
/// `kubernetes.io/change-cause` are asserted on the stored Deployment and on
/// the ReplicaSet the controller rolled out.
#[tokio::test]
async fn cooldown_is_per_action_and_the_history_is_the_audit_trail() {
    let server = checkout_server(true).await;
    let offset = Arc::new(AtomicU32::new(0));
    let r = Remediator::new(admin_client(&server), Policy::default())
        .with_clock(moving_clock(offset.clone()));

    let outcome = r.remediate(&request("rollback")).await.unwrap();
    assert_eq!(outcome.status, OutcomeStatus::Applied, "{outcome:?}");
    let cause = format!(
        "selfheal rollback: api {API}:1.2.0 -> {API}:1.1.0 (reason: 5xx rate above 5% for 3 minutes)"
    );
    assert_eq!(
        live(&server)["metadata"]["annotations"]["kubernetes.io/change-cause"],
        cause.as_str()
    );
    assert!(server.controller().settle().await);
    let rs5 = replica_set_at(&server, "5");
    assert_eq!(
        rs5.metadata
            .annotations
            .unwrap()
            .get("kubernetes.io/change-cause"),
        Some(&cause),
        "the controller copies the change-cause onto the ReplicaSet it rolls out"
    );

    offset.store(30, Ordering::SeqCst);
    let outcome = r.remediate(&request("pause")).await.unwrap();
    assert_eq!(outcome.status, OutcomeStatus::Applied, "{outcome:?}");
    offset.store(60, Ordering::SeqCst);
    let outcome = r.remediate(&request("resume")).await.unwrap();
    assert_eq!(outcome.status, OutcomeStatus::Applied, "{outcome:?}");
    assert!(server.controller().settle().await);
    let resumed = live(&server);
    assert_eq!(history_actions(&resumed), ["rollback", "pause", "resume"]);
    let first: Value = serde_json::from_str(
        resumed["metadata"]["annotations"]["selfheal.dev/history"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        first[0],
        json!({"action": "rollback", "at": NOW, "execution": "exec-it",
               "reason": "5xx rate above 5% for 3 minutes",
               "changes": [{"container": "api", "from": format!("{API}:1.2.0"), "to": format!("{API}:1.1.0")}]})
    );
    assert_eq!(
        resumed["metadata"]["annotations"]["kubernetes.io/change-cause"],
        cause.as_str(),
        "pause and resume leave the change-cause alone"
    );

    offset.store(120, Ordering::SeqCst);
    server.clear_requests();
    let outcome = r.remediate(&request("rollback")).await.unwrap();
    assert_refused(&outcome, Guard::Cooldown, "had a rollback 120s ago");
    let outcome = r.remediate(&request("resume")).await.unwrap();
    assert_eq!(
        (outcome.status, outcome.guard),
        (OutcomeStatus::Skipped, None),
        "resume of a running Deployment is skipped, not refused by the cooldown"
    );
    assert!(
        patches(&log(&server)).is_empty(),
        "{:?}",
        lines(&log(&server))
    );
    assert_eq!(live(&server), resumed);

    let mut dry = request("rollback");
    dry.dry_run = true;
    let outcome = r.remediate(&dry).await.unwrap();
    assert_eq!(outcome.status, OutcomeStatus::DryRun, "{outcome:?}");
    assert_eq!(outcome.changes[0].to, format!("{API}:1.0.0"));
    assert!(
        outcome
            .message
            .contains("a real run would be refused by the cooldown"),
        "{}",
        outcome.message
    );
    let p = log(&server);
    let p = patches(&p);
    assert_eq!(p.len(), 1);
    assert_eq!(p[0].query.get("dryRun").map(String::as_str), Some("All"));
    assert_eq!(live(&server), resumed, "the dry run stored nothing");
}

/// `checkout` at revision 2, a release that bumped both images at once (api
/// 1.0.0 → 1.1.0, envoy 1.27 → 1.28). Pods running the new api image never
/// turn ready by themselves, so the statuses this test writes stay.
async fn two_image_release() -> TestServer {
    let bad_api = format!("{API}:1.1.0");
    let server = TestServer::builder()
        .controller(ControllerConfig::never_ready_image(&bad_api))
        .start()
        .await
        .unwrap();
    let api = create_checkout(&server, true).await;
    set_images(&api, &[(0, bad_api), (1, format!("{ENVOY}:1.28"))]).await;
    assert!(server.controller().settle().await);
    assert_eq!(revision(&live(&server)), Some("2".into()));
    server
}

/// Write, through `pods/status` as the kubelet does, that every pod of
/// revision `at` has api crash-looping (3, 4, … restarts) and envoy ready.
async fn api_crash_loops_on(server: &TestServer, at: &str) -> Vec<String> {
    let hash = replica_set_at(server, at)
        .metadata
        .labels
        .unwrap()
        .remove("pod-template-hash")
        .unwrap();
    let pods: Api<Pod> = Api::namespaced(admin_client(server), NS);
    let listed = pods
        .list(&ListParams::default().labels(&format!("pod-template-hash={hash}")))
        .await
        .unwrap()
        .items;
    assert!(!listed.is_empty(), "revision {at} has pods");
    let mut names = Vec::new();
    for (i, pod) in listed.iter().enumerate() {
        let name = pod.metadata.name.clone().unwrap();
        let status = json!({"status": {"phase": "Running", "startTime": NOW,
        "conditions": [{"type": "Ready", "status": "False", "lastProbeTime": null, "lastTransitionTime": NOW}],
        "containerStatuses": [
            {"name": "api", "image": format!("{API}:1.1.0"), "imageID": "", "ready": false,
             "restartCount": 3 + i, "started": false,
             "state": {"waiting": {"reason": "CrashLoopBackOff",
                 "message": format!("back-off 40s restarting failed container=api pod={name}")}},
             "lastState": {"terminated": {"exitCode": 1, "reason": "Error",
                 "startedAt": NOW, "finishedAt": NOW}}},
            {"name": "envoy", "image": format!("{ENVOY}:1.28"), "imageID": "", "ready": true,
             "restartCount": 0, "started": true, "state": {"running": {"startedAt": NOW}}, "lastState": {}}
        ]}});
        pods.patch_status(&name, &PatchParams::default(), &Patch::Merge(&status))
            .await
            .unwrap();
        names.push(name);
    }
    names
}

#[tokio::test]
async fn pods_evidence_chooses_the_crash_looping_container_of_a_two_image_release() {
    let server = two_image_release().await;
    let new_pods = api_crash_loops_on(&server, "2").await;
    let n = new_pods.len();
    let before = live(&server);
    server.clear_requests();

    let outcome = rollback(&server).await.unwrap();

    assert_eq!(outcome.status, OutcomeStatus::Applied, "{outcome:?}");
    let changed: Vec<(&str, &str, &str)> = outcome
        .changes
        .iter()
        .map(|c| (c.container.as_str(), c.from.as_str(), c.to.as_str()))
        .collect();
    let (from, to) = (format!("{API}:1.1.0"), format!("{API}:1.0.0"));
    assert_eq!(changed, [("api", from.as_str(), to.as_str())]);
    let restarts: usize = (0..n).map(|i| 3 + i).sum();
    assert_eq!(
        serde_json::to_value(&outcome.evidence).unwrap(),
        json!([
            {"container": "api", "verdict": "failing", "reason": "CrashLoopBackOff",
             "podsAffected": n, "podsSeen": n, "restarts": restarts, "exitCode": 1,
             "message": format!("back-off 40s restarting failed container=api pod={}", new_pods[0])},
            {"container": "envoy", "verdict": "healthy", "podsAffected": 0, "podsSeen": n, "restarts": 0}
        ])
    );
    let named = format!(
        "api: CrashLoopBackOff on {n}/{n} new pods, {restarts} restarts, exit code 1; envoy: healthy"
    );
    assert!(outcome.message.contains(&named), "{}", outcome.message);

    // One LIST of the current revision's pods, by selector and hash.
    let reqs = log(&server);
    assert_eq!(lines(&reqs), [rollback_attempt(200), event_post()].concat());
    let hash = replica_set_at(&server, "2").metadata.labels.unwrap()["pod-template-hash"].clone();
    assert_eq!(
        reqs[2].query.get("labelSelector").map(String::as_str),
        Some(format!("app=checkout,pod-template-hash={hash}").as_str())
    );

    // Only api went back; envoy keeps the image it was released with.
    let after = live(&server);
    assert_eq!(container(&after, 0)["image"], format!("{API}:1.0.0"));
    assert_eq!(container(&after, 1), container(&before, 1));
    let event = server
        .events(NS)
        .into_iter()
        .find(|e| e.reason.as_deref() == Some("SelfhealRollback"))
        .unwrap();
    assert!(
        event
            .message
            .as_deref()
            .unwrap_or_default()
            .contains(&named),
        "{event:?}"
    );
}

#[tokio::test]
async fn a_named_container_skips_the_pod_list_and_wins() {
    let server = two_image_release().await;
    api_crash_loops_on(&server, "2").await;
    server.clear_requests();
    let mut envoy = request("rollback");
    envoy.target.container = Some("envoy".into());

    let outcome = remediator(&server).remediate(&envoy).await.unwrap();

    assert_eq!(outcome.status, OutcomeStatus::Applied, "{outcome:?}");
    assert_eq!(outcome.changes.len(), 1);
    assert_eq!(outcome.changes[0].container, "envoy");
    assert!(outcome.evidence.is_empty());
    assert_eq!(
        lines(&log(&server)),
        [
            format!("GET {DEPLOY_PATH} 200"),
            format!("GET {RS_PATH} 200"),
            format!("PATCH {DEPLOY_PATH} 200"),
            format!("POST {EVENTS_PATH} 201"),
        ]
    );
    let after = live(&server);
    assert_eq!(container(&after, 0)["image"], format!("{API}:1.1.0"));
    assert_eq!(container(&after, 1)["image"], format!("{ENVOY}:1.27"));
}

#[tokio::test]
async fn an_unchanged_container_failing_is_refused_without_a_write() {
    // Revision 2 changed only api; the crash-looping api is then "unchanged"
    // once envoy alone moves on in revision 3 (statuses written below).
    let server = two_image_release().await;
    let api: Api<Deployment> = Api::namespaced(admin_client(&server), NS);
    set_image(&api, 1, format!("{ENVOY}:1.29")).await;
    assert!(server.controller().settle().await);
    assert_eq!(revision(&live(&server)), Some("3".into()));
    api_crash_loops_on(&server, "3").await;
    let before = live(&server);
    server.clear_requests();

    let outcome = rollback(&server).await.unwrap();

    assert_eq!(outcome.status, OutcomeStatus::Refused, "{outcome:?}");
    assert_eq!(outcome.guard, Some(Guard::UnchangedContainerFailing));
    assert_eq!(outcome.evidence[0].container, "api");
    assert!(outcome.evidence[0].is_failing());
    assert!(
        patches(&log(&server)).is_empty(),
        "{:?}",
        lines(&log(&server))
    );
    assert_eq!(live(&server), before);
}

/// `outcome` is a refusal by `guard` whose message mentions `mentions`.
fn assert_refused(outcome: &RemediationOutcome, guard: Guard, mentions: &str) {
    assert_eq!(outcome.status, OutcomeStatus::Refused, "{outcome:?}");
    assert_eq!(outcome.guard, Some(guard), "{outcome:?}");
    assert!(outcome.message.contains(mentions), "{}", outcome.message);
}
