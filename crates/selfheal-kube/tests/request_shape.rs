//! Request-shape tests: the Remediator against a scripted in-process API
//! (`tower_test::mock::pair()`, as kube-rs does in `kube/src/mock_tests.rs`).
//! The fake applies JSON Patches for real (including `test` ops), so each test
//! asserts both the exact request sequence and the resulting object.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use http::{Request, Response};
use http_body_util::BodyExt;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use kube::client::Body;
use selfheal_core::{
    Action, Decision, OutcomeStatus, PlanInput, Policy, RemediationRequest, decide,
};
use selfheal_kube::{Error, Remediator};
use selfheal_testserver::fixtures::{self, API_REPO, ENVOY_REPO};
use serde_json::{Value, json};

const NOW: &str = "2026-11-26T20:00:00Z";
const DEPLOY_PATH: &str = "/apis/apps/v1/namespaces/shop/deployments/checkout";
const RS_PATH: &str = "/apis/apps/v1/namespaces/shop/replicasets";
const EVENTS_PATH: &str = "/api/v1/namespaces/shop/events";
const PODS_PATH: &str = "/api/v1/namespaces/shop/pods";

// ---------------------------------------------------------------------------
// Objects shaped like tests/fixtures/k8s/create-and-history.json (checkout, 4 revisions)
// ---------------------------------------------------------------------------

/// The test server's `checkout` running api `api` and envoy `envoy`, with
/// the recorded ports, an env var on api, a team annotation, opted in.
fn checkout_at(api: &str, envoy: &str) -> Value {
    fixtures::checkout(format!("{API_REPO}:{api}"), format!("{ENVOY_REPO}:{envoy}"))
        .recorded_ports()
        .api_env("MODE", "prod")
        .annotation("team", "payments")
        .opt_in(true)
        .progress_deadline(600)
        .json()
}

fn template(api: &str, envoy: &str, hash: Option<&str>) -> Value {
    let mut template = checkout_at(api, envoy)["spec"]["template"].take();
    if let Some(h) = hash {
        template["metadata"]["labels"]["pod-template-hash"] = json!(h);
    }
    template
}

/// [`checkout_at`] as the server stores it at `revision`, rollout complete.
fn deployment(api: &str, envoy: &str, revision: u32) -> Value {
    let mut deployment = checkout_at(api, envoy);
    let metadata = &mut deployment["metadata"];
    metadata["uid"] = json!("3a4925c1-786f-4b23-adb6-0d3b57e345db");
    metadata["resourceVersion"] = json!("637");
    metadata["generation"] = json!(revision);
    metadata["annotations"]["deployment.kubernetes.io/revision"] = json!(revision.to_string());
    deployment["status"] = json!({"observedGeneration": revision, "replicas": 2,
        "updatedReplicas": 2, "readyReplicas": 2, "availableReplicas": 2});
    deployment
}

fn replica_set(hash: &str, api: &str, envoy: &str, revision: u32, replicas: u32) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {
            "name": format!("checkout-{hash}"), "namespace": "shop",
            "uid": format!("rs-uid-{hash}"), "resourceVersion": "600",
            "labels": {"app": "checkout", "pod-template-hash": hash},
            "annotations": {"deployment.kubernetes.io/revision": revision.to_string(),
                            "deployment.kubernetes.io/desired-replicas": "2",
                            "deployment.kubernetes.io/max-replicas": "3"},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "checkout",
                "uid": "3a4925c1-786f-4b23-adb6-0d3b57e345db", "controller": true,
                "blockOwnerDeletion": true}]
        },
        "spec": {"replicas": replicas,
                 "selector": {"matchLabels": {"app": "checkout", "pod-template-hash": hash}},
                 "template": template(api, envoy, Some(hash))},
        "status": {"replicas": replicas}
    })
}

/// History api 1.0.0→1.1.0, envoy 1.27→1.28, api 1.2.0 (revision 4 live).
fn history() -> Vec<Value> {
    vec![
        replica_set("5d8f9b7c4", "1.0.0", "1.27", 1, 0),
        replica_set("7b6c5d4f3", "1.1.0", "1.27", 2, 0),
        replica_set("6f7d8c9b5", "1.1.0", "1.28", 3, 0),
        replica_set("8c9d7b6f4", "1.2.0", "1.28", 4, 2),
    ]
}

fn pod(owner_kind: &str, owner_name: &str, owner_uid: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "checkout-8c9d7b6f4-x2x7q", "namespace": "shop",
            "labels": {"app": "checkout", "pod-template-hash": "8c9d7b6f4"},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": owner_kind, "name": owner_name,
                "uid": owner_uid, "controller": true, "blockOwnerDeletion": true}]},
        "spec": {"containers": [{"name": "api", "image": "registry.example/shop/api:1.2.0"}]}
    })
}

fn request(action: &str) -> RemediationRequest {
    serde_json::from_value(json!({
        "action": action,
        "target": {"cluster": "prod-eks", "namespace": "shop", "deployment": "checkout"},
        "reason": "5xx rate above 5% for 3 minutes",
        "execution": "exec-1"
    }))
    .unwrap()
}

// ---------------------------------------------------------------------------
// The scripted API server
// ---------------------------------------------------------------------------

#[derive(Debug, Clone)]
struct Seen {
    method: String,
    path: String,
    query: String,
    content_type: Option<String>,
    body: Option<Value>,
}

impl Seen {
    fn line(&self) -> String {
        format!("{} {}", self.method, self.path)
    }

    /// Query parameters as sent (still percent-encoded), empty segments dropped.
    fn params(&self) -> Vec<&str> {
        let mut p: Vec<&str> = self.query.split('&').filter(|s| !s.is_empty()).collect();
        p.sort_unstable();
        p
    }
}

fn status(code: u16, reason: &str, message: &str) -> (u16, Value) {
    (
        code,
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
               "message": message, "reason": reason, "code": code}),
    )
}

/// A tiny API server: one workload (a Deployment unless built with
/// [`Fake::kind`]), its history (ReplicaSets or ControllerRevisions), pods;
/// real JSON Patch.
#[derive(Debug, Default)]
struct Fake {
    /// The workload's path and its history's collection path.
    path: &'static str,
    history_path: &'static str,
    deployment: Option<Value>,
    replica_sets: Vec<Value>,
    pods: Vec<Value>,
    /// Status codes answered to the next PATCHes instead of applying them.
    patch_failures: VecDeque<u16>,
    /// Someone else writes the Deployment right after each of our GETs.
    concurrent_writer_until: u32,
    gets: u32,
    get_failure: Option<u16>,
    event_failure: Option<u16>,
}

impl Fake {
    fn new(deployment: Value, replica_sets: Vec<Value>) -> Self {
        Fake {
            path: DEPLOY_PATH,
            history_path: RS_PATH,
            deployment: Some(deployment),
            replica_sets,
            ..Fake::default()
        }
    }

    fn bump(obj: &mut Value, generation: bool) {
        let rv: u64 = obj["metadata"]["resourceVersion"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        obj["metadata"]["resourceVersion"] = json!((rv + 1).to_string());
        if generation {
            let g = obj["metadata"]["generation"].as_i64().unwrap();
            obj["metadata"]["generation"] = json!(g + 1);
        }
    }

    fn handle(&mut self, seen: &Seen) -> (u16, Value) {
        let method = seen.method.as_str();
        let path = seen.path.as_str();
        if method == "GET" && path == self.path {
            if let Some(code) = self.get_failure {
                return status(code, "Failure", "injected");
            }
            self.gets += 1;
            let Some(d) = self.deployment.clone() else {
                return status(404, "NotFound", "deployments.apps \"checkout\" not found");
            };
            if self.gets <= self.concurrent_writer_until
                && let Some(stored) = self.deployment.as_mut()
            {
                // Another writer lands between our GET and our PATCH.
                stored["metadata"]["annotations"]["other"] = json!(self.gets.to_string());
                Self::bump(stored, true);
            }
            return (200, d);
        }
        if method == "GET" && path == self.history_path {
            return (
                200,
                json!({"kind": "ReplicaSetList", "apiVersion": "apps/v1",
                       "metadata": {"resourceVersion": "700"}, "items": self.replica_sets}),
            );
        }
        if method == "GET" && path.starts_with(&format!("{RS_PATH}/")) {
            let name = &path[RS_PATH.len() + 1..];
            return match self
                .replica_sets
                .iter()
                .find(|r| r["metadata"]["name"] == name)
            {
                Some(rs) => (200, rs.clone()),
                None => status(404, "NotFound", "replicasets.apps not found"),
            };
        }
        if method == "GET" && path == PODS_PATH {
            return (
                200,
                json!({"kind": "PodList", "apiVersion": "v1",
                       "metadata": {"resourceVersion": "700"}, "items": self.pods}),
            );
        }
        if method == "GET" && path.starts_with("/api/v1/namespaces/shop/pods/") {
            let name = path.rsplit('/').next().unwrap();
            return match self.pods.iter().find(|p| p["metadata"]["name"] == name) {
                Some(p) => (200, p.clone()),
                None => status(404, "NotFound", "pods not found"),
            };
        }
        if method == "PATCH" && path == self.path {
            if let Some(code) = self.patch_failures.pop_front() {
                return status(code, "Conflict", "the object has been modified");
            }
            let Some(stored) = self.deployment.as_mut() else {
                return status(404, "NotFound", "deployments.apps \"checkout\" not found");
            };
            let patch: json_patch::Patch =
                serde_json::from_value(seen.body.clone().unwrap()).unwrap();
            let mut next = stored.clone();
            if json_patch::patch(&mut next, &patch).is_err() {
                return status(
                    422,
                    "Invalid",
                    "the server rejected our request due to an error in our request",
                );
            }
            if seen.query.contains("dryRun=All") {
                // Recorded dry run: generation bumped, resourceVersion kept.
                let g = next["metadata"]["generation"].as_i64().unwrap();
                next["metadata"]["generation"] = json!(g + 1);
                return (200, next);
            }
            Self::bump(&mut next, true);
            *stored = next.clone();
            return (200, next);
        }
        if method == "POST" && path == EVENTS_PATH {
            if let Some(code) = self.event_failure {
                return status(code, "Forbidden", "events is forbidden");
            }
            let mut ev = seen.body.clone().unwrap();
            ev["metadata"]["name"] = json!("checkout.1a2b3c");
            return (201, ev);
        }
        status(404, "NotFound", &format!("unexpected {method} {path}"))
    }
}

struct Harness {
    fake: Arc<Mutex<Fake>>,
    server: tokio::task::JoinHandle<Vec<Seen>>,
    remediator: Remediator,
}

fn harness(fake: Fake, policy: Policy) -> Harness {
    let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let client = kube::Client::new(service, "default");
    let fake = Arc::new(Mutex::new(fake));
    let shared = fake.clone();
    let server = tokio::spawn(async move {
        let mut seen = Vec::new();
        while let Some((req, send)) = handle.next_request().await {
            let (parts, body) = req.into_parts();
            let bytes = body.collect().await.unwrap().to_bytes();
            let s = Seen {
                method: parts.method.to_string(),
                path: parts.uri.path().to_owned(),
                query: parts.uri.query().unwrap_or_default().to_owned(),
                content_type: parts
                    .headers
                    .get(http::header::CONTENT_TYPE)
                    .map(|v| v.to_str().unwrap().to_owned()),
                body: (!bytes.is_empty()).then(|| serde_json::from_slice(&bytes).unwrap()),
            };
            let (code, json) = shared.lock().unwrap().handle(&s);
            seen.push(s);
            let response = Response::builder()
                .status(code)
                .header("content-type", "application/json")
                .body(Body::from(serde_json::to_vec(&json).unwrap()))
                .unwrap();
            send.send_response(response);
        }
        seen
    });
    let now: jiff::Timestamp = NOW.parse().unwrap();
    let remediator = Remediator::new(client, policy)
        .with_reporting_instance("selfheal-test-1")
        .with_clock(Arc::new(move || now));
    Harness {
        fake,
        server,
        remediator,
    }
}

impl Harness {
    /// Drop the client and collect every request the fake saw.
    async fn finish(self) -> (Vec<Seen>, Fake) {
        drop(self.remediator);
        let seen = tokio::time::timeout(std::time::Duration::from_secs(5), self.server)
            .await
            .expect("client dropped")
            .unwrap();
        let fake = Arc::try_unwrap(self.fake).unwrap().into_inner().unwrap();
        (seen, fake)
    }
}

fn lines(seen: &[Seen]) -> Vec<String> {
    seen.iter().map(Seen::line).collect()
}

/// The plan the core makes for this state: what the PATCH body must be.
fn expected_patch(req: &RemediationRequest, deploy: &Value, rs: &[Value]) -> Value {
    let deployment: Deployment = serde_json::from_value(deploy.clone()).unwrap();
    let replica_sets: Vec<ReplicaSet> = rs
        .iter()
        .map(|r| serde_json::from_value(r.clone()).unwrap())
        .collect();
    let req = selfheal_core::ValidRequest::new(req.clone()).unwrap();
    let decision = decide(PlanInput {
        request: &req,
        workload: (&deployment).into(),
        controller_revisions: &[],
        replica_sets: &replica_sets,
        pods: &[],
        policy: &Policy::default(),
        now: NOW.parse().unwrap(),
    })
    .unwrap();
    match decision {
        Decision::Apply(plan) => serde_json::to_value(&plan.patch).unwrap(),
        Decision::Done(outcome) => panic!("expected a patch, got {outcome:?}"),
    }
}

/// The checkout Deployment live at revision 4, with its four-revision history.
fn checkout() -> Fake {
    Fake::new(deployment("1.2.0", "1.28", 4), history())
}

/// `checkout()` answering its next PATCHes with `codes` instead of applying them.
fn checkout_failing_patches(codes: &[u16]) -> Fake {
    let mut fake = checkout();
    fake.patch_failures = codes.iter().copied().collect();
    fake
}

/// `request(action)` naming the live pod instead of the Deployment.
fn pod_request(action: &str) -> RemediationRequest {
    let mut req = request(action);
    req.target.deployment = None;
    req.target.pod = Some("checkout-8c9d7b6f4-x2x7q".into());
    req
}

/// A restart aimed at the live pod, whose owner reference is `owner_pod`'s:
/// the error it ends in and the requests made before it.
async fn restart_pod_fails(owner_pod: Value) -> (Error, Vec<Seen>) {
    let mut fake = checkout();
    fake.pods = vec![owner_pod];
    let (result, seen, _) = remediate(fake, &pod_request("restart")).await;
    (result.unwrap_err(), seen)
}

/// One remediation under the default policy: its result, every request the
/// fake saw, and the fake's state afterwards.
async fn remediate(
    fake: Fake,
    req: &RemediationRequest,
) -> (
    selfheal_kube::Result<selfheal_core::RemediationOutcome>,
    Vec<Seen>,
    Fake,
) {
    let h = harness(fake, Policy::default());
    let result = h.remediator.remediate(req).await;
    let (seen, fake) = h.finish().await;
    (result, seen, fake)
}

/// The requests of one rollback attempt: read, list the history, list the
/// current revision's pods, patch.
fn rollback_attempt() -> Vec<String> {
    vec![
        format!("GET {DEPLOY_PATH}"),
        format!("GET {RS_PATH}"),
        format!("GET {PODS_PATH}"),
        format!("PATCH {DEPLOY_PATH}"),
    ]
}

/// The request that records the remediation as an Event.
fn event_post() -> Vec<String> {
    vec![format!("POST {EVENTS_PATH}")]
}

fn image(d: &Value, i: usize) -> &str {
    d["spec"]["template"]["spec"]["containers"][i]["image"]
        .as_str()
        .unwrap()
}

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

#[tokio::test]
async fn rollback_is_get_list_patch_then_event() {
    let live = deployment("1.2.0", "1.28", 4);
    let req = request("rollback");
    let want_patch = expected_patch(&req, &live, &history());
    let (outcome, seen, fake) = remediate(Fake::new(live.clone(), history()), &req).await;
    let outcome = outcome.unwrap();

    assert_eq!(lines(&seen), [rollback_attempt(), event_post()].concat());
    assert_eq!(seen[1].params(), ["labelSelector=app%3Dcheckout"]);
    // The current revision's pods: the Deployment's selector and the newest
    // ReplicaSet's pod-template-hash.
    assert_eq!(
        seen[2].params(),
        ["labelSelector=app%3Dcheckout%2Cpod-template-hash%3D8c9d7b6f4"]
    );
    let patch = &seen[3];
    assert_eq!(
        patch.content_type.as_deref(),
        Some("application/json-patch+json")
    );
    assert_eq!(patch.params(), ["fieldManager=selfheal"]);
    assert_eq!(patch.body.as_ref(), Some(&want_patch));
    let ops = patch.body.as_ref().unwrap().as_array().unwrap();
    assert_eq!(ops[0]["op"], "test");
    assert_eq!(ops[0]["path"], "/metadata/generation");
    assert_eq!(ops[0]["value"], live["metadata"]["generation"]);

    // Resulting object: only api's image changed; envoy, env, ports untouched.
    let stored = fake.deployment.unwrap();
    assert_eq!(image(&stored, 0), "registry.example/shop/api:1.1.0");
    assert_eq!(image(&stored, 1), "registry.example/envoy:1.28");
    assert_eq!(
        stored["spec"]["template"]["spec"]["containers"][0]["env"],
        live["spec"]["template"]["spec"]["containers"][0]["env"]
    );
    assert_eq!(
        stored["spec"]["template"]["spec"]["containers"][1],
        live["spec"]["template"]["spec"]["containers"][1]
    );
    assert_eq!(stored["metadata"]["annotations"]["team"], "payments");
    assert!(
        stored["metadata"]["annotations"]["selfheal.dev/last-remediation"].is_string(),
        "audit annotation written: {stored}"
    );

    assert_eq!(outcome.status, OutcomeStatus::Applied);
    assert_eq!(outcome.action, Action::Rollback);
    assert_eq!(outcome.changes.len(), 1);
    assert_eq!(outcome.changes[0].container, "api");
    assert_eq!(outcome.changes[0].from, "registry.example/shop/api:1.2.0");
    assert_eq!(outcome.changes[0].to, "registry.example/shop/api:1.1.0");
    assert_eq!(outcome.target.deployment.as_deref(), Some("checkout"));
    assert_eq!(outcome.revision.and_then(|r| r.before), Some(4));
    // The PATCH response still carries the old revision: after is unknown.
    assert_eq!(outcome.revision.and_then(|r| r.after), None);

    let event = seen[4].body.as_ref().unwrap();
    assert_eq!(event["metadata"]["generateName"], "checkout.");
    assert_eq!(event["reason"], "SelfhealRollback");
    assert_eq!(event["type"], "Normal");
    assert_eq!(event["reportingComponent"], "selfheal");
    assert_eq!(event["reportingInstance"], "selfheal-test-1");
    assert_eq!(event["source"]["component"], "selfheal");
    assert_eq!(event["count"], 1);
    assert_eq!(event["firstTimestamp"], NOW);
    assert_eq!(event["involvedObject"]["kind"], "Deployment");
    assert_eq!(event["involvedObject"]["apiVersion"], "apps/v1");
    assert_eq!(
        event["involvedObject"]["uid"],
        "3a4925c1-786f-4b23-adb6-0d3b57e345db"
    );
    assert_eq!(event["involvedObject"]["resourceVersion"], "638");
    assert!(!event["message"].as_str().unwrap().is_empty());
}

#[tokio::test]
async fn dry_run_sends_dry_run_all_and_no_event() {
    let live = deployment("1.2.0", "1.28", 4);
    let mut req = request("rollback");
    req.dry_run = true;
    let (outcome, seen, fake) = remediate(Fake::new(live.clone(), history()), &req).await;
    let outcome = outcome.unwrap();

    assert_eq!(lines(&seen), rollback_attempt());
    assert_eq!(seen[3].params(), ["dryRun=All", "fieldManager=selfheal"]);
    assert_eq!(outcome.status, OutcomeStatus::DryRun);
    assert!(
        outcome
            .message
            .starts_with("dry run, nothing written: would have rolled back"),
        "{}",
        outcome.message
    );
    assert_eq!(outcome.changes[0].to, "registry.example/shop/api:1.1.0");
    assert_eq!(fake.deployment.unwrap(), live, "dry run stores nothing");
}

#[tokio::test]
async fn policy_dry_run_wins_over_request() {
    let live = deployment("1.2.0", "1.28", 4);
    let policy = Policy {
        dry_run: true,
        ..Policy::default()
    };
    let h = harness(Fake::new(live.clone(), history()), policy);
    let outcome = h.remediator.remediate(&request("pause")).await.unwrap();
    let (seen, fake) = h.finish().await;
    assert_eq!(outcome.status, OutcomeStatus::DryRun);
    assert_eq!(seen.len(), 2);
    assert!(seen[1].params().contains(&"dryRun=All"));
    assert_eq!(fake.deployment.unwrap(), live);
}

#[tokio::test]
async fn replans_after_422_when_the_object_moved() {
    let live = deployment("1.2.0", "1.28", 4);
    let mut fake = Fake::new(live, history());
    fake.concurrent_writer_until = 1; // the first read goes stale at once
    let (outcome, seen, fake) = remediate(fake, &request("rollback")).await;
    let outcome = outcome.unwrap();

    assert_eq!(
        lines(&seen),
        [rollback_attempt(), rollback_attempt(), event_post()].concat()
    );
    let first = seen[3].body.as_ref().unwrap();
    let second = seen[7].body.as_ref().unwrap();
    assert_eq!(first[0]["path"], "/metadata/generation");
    assert_eq!(first[0]["value"], 4);
    assert_eq!(
        second[0]["value"], 5,
        "re-planned against the new generation"
    );
    assert_eq!(outcome.status, OutcomeStatus::Applied);
    let stored = fake.deployment.unwrap();
    assert_eq!(image(&stored, 0), "registry.example/shop/api:1.1.0");
    assert_eq!(
        stored["metadata"]["annotations"]["other"], "1",
        "other writer's change kept"
    );
}

#[tokio::test]
async fn replans_after_409_then_succeeds() {
    let fake = checkout_failing_patches(&[409]);
    let (outcome, seen, fake) = remediate(fake, &request("restart")).await;
    let outcome = outcome.unwrap();
    assert_eq!(
        lines(&seen),
        [
            format!("GET {DEPLOY_PATH}"),
            format!("PATCH {DEPLOY_PATH}"),
            format!("GET {DEPLOY_PATH}"),
            format!("PATCH {DEPLOY_PATH}"),
            format!("POST {EVENTS_PATH}"),
        ]
    );
    assert_eq!(outcome.status, OutcomeStatus::Applied);
    let stored = fake.deployment.unwrap();
    assert_eq!(
        stored["spec"]["template"]["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"],
        NOW
    );
}

#[tokio::test]
async fn persistent_conflict_exhausts_the_budget() {
    let fake = checkout_failing_patches(&[409, 422, 409, 422, 409]);
    let h = harness(fake, Policy::default());
    let remediator = h.remediator.clone().with_replan_budget(2);
    let err = remediator
        .remediate(&request("rollback"))
        .await
        .unwrap_err();
    drop(remediator);
    let (seen, fake) = h.finish().await;

    match &err {
        Error::ConflictBudgetExhausted {
            attempts,
            last_code,
            ..
        } => assert_eq!((*attempts, *last_code), (3, 409)),
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(err.error_type(), "RetryableConflict");
    assert!(err.is_retryable());
    assert_eq!(
        seen.iter().filter(|s| s.method == "PATCH").count(),
        3,
        "one try plus two re-plans"
    );
    assert!(seen.iter().all(|s| s.method != "POST"), "no Event");
    assert_eq!(
        image(&fake.deployment.unwrap(), 0),
        "registry.example/shop/api:1.2.0"
    );
}

#[tokio::test]
async fn pause_is_get_and_patch_without_list() {
    let (outcome, seen, fake) = remediate(checkout(), &request("pause")).await;
    let outcome = outcome.unwrap();
    assert_eq!(
        lines(&seen),
        [
            format!("GET {DEPLOY_PATH}"),
            format!("PATCH {DEPLOY_PATH}"),
            format!("POST {EVENTS_PATH}"),
        ]
    );
    let stored = fake.deployment.unwrap();
    assert_eq!(stored["spec"]["paused"], true);
    assert_eq!(
        stored["metadata"]["annotations"]["selfheal.dev/paused-by"],
        "selfheal"
    );
    assert_eq!(seen[2].body.as_ref().unwrap()["reason"], "SelfhealPause");
    assert_eq!(outcome.status, OutcomeStatus::Applied);
    // A pause never changes the template: the revision stays the same.
    assert_eq!(outcome.revision.and_then(|r| r.after), Some(4));
}

#[tokio::test]
async fn pod_target_resolves_through_owner_references() {
    let mut fake = checkout();
    fake.pods = vec![pod("ReplicaSet", "checkout-8c9d7b6f4", "rs-uid-8c9d7b6f4")];
    let (outcome, seen, fake) = remediate(fake, &pod_request("rollback")).await;
    let outcome = outcome.unwrap();
    assert_eq!(
        lines(&seen),
        [
            vec![
                "GET /api/v1/namespaces/shop/pods/checkout-8c9d7b6f4-x2x7q".to_owned(),
                format!("GET {RS_PATH}/checkout-8c9d7b6f4"),
            ],
            rollback_attempt(),
            event_post(),
        ]
        .concat()
    );
    assert_eq!(outcome.target.deployment.as_deref(), Some("checkout"));
    assert_eq!(
        outcome.target.pod.as_deref(),
        Some("checkout-8c9d7b6f4-x2x7q")
    );
    assert_eq!(
        image(&fake.deployment.unwrap(), 0),
        "registry.example/shop/api:1.1.0"
    );
}

#[tokio::test]
async fn pod_not_owned_by_a_workload_is_a_typed_error() {
    let (err, seen) = restart_pod_fails(pod("Job", "checkout-migrate", "job-uid")).await;
    assert!(
        matches!(&err, Error::PodNotOwnedByDeployment { found, .. } if found.contains("Job/checkout-migrate")),
        "{err:?}"
    );
    assert_eq!(err.error_type(), "NonRetryableInvalidObject");
    assert_eq!(seen.len(), 1);
}

#[tokio::test]
async fn replica_set_uid_mismatch_is_not_followed() {
    let (err, seen) =
        restart_pod_fails(pod("ReplicaSet", "checkout-8c9d7b6f4", "some-older-uid")).await;
    assert!(
        matches!(err, Error::PodNotOwnedByDeployment { .. }),
        "{err:?}"
    );
    assert_eq!(seen.len(), 2, "pod and ReplicaSet GETs only");
}

#[tokio::test]
async fn api_errors_on_read_are_classified_and_nothing_is_written() {
    for (code, error_type, retryable) in [
        (404, "NonRetryableNotFound", false),
        (403, "NonRetryableForbidden", false),
        (401, "NonRetryableForbidden", false),
        (500, "RetryableApiError", true),
        (503, "RetryableApiError", true),
        (429, "RetryableApiError", true),
    ] {
        let mut fake = checkout();
        fake.get_failure = Some(code);
        let (result, seen, _) = remediate(fake, &request("rollback")).await;
        let err = result.unwrap_err();
        assert_eq!(err.error_type(), error_type, "{code}: {err}");
        assert_eq!(err.is_retryable(), retryable, "{code}");
        assert_eq!(err.http_status(), Some(code));
        assert_eq!(lines(&seen), [format!("GET {DEPLOY_PATH}")], "{code}");
    }
}

#[tokio::test]
async fn missing_deployment_is_not_found() {
    let mut fake = checkout();
    fake.deployment = None;
    let (result, seen, _) = remediate(fake, &request("pause")).await;
    let err = result.unwrap_err();
    assert!(
        matches!(&err, Error::NotFound { kind: "Deployment", name, .. } if name == "checkout"),
        "{err:?}"
    );
    assert_eq!(seen.len(), 1);
}

#[tokio::test]
async fn patch_server_error_is_retryable_without_replan() {
    let fake = checkout_failing_patches(&[500]);
    let (result, seen, _) = remediate(fake, &request("pause")).await;
    let err = result.unwrap_err();
    assert_eq!(err.error_type(), "RetryableApiError");
    assert_eq!(seen.len(), 2, "GET + PATCH, no re-plan on 5xx");
}

#[tokio::test]
async fn event_failure_does_not_fail_the_remediation() {
    let mut fake = checkout();
    fake.event_failure = Some(403);
    let (outcome, seen, fake) = remediate(fake, &request("pause")).await;
    let outcome = outcome.unwrap();
    assert_eq!(outcome.status, OutcomeStatus::Applied);
    assert_eq!(seen.len(), 3);
    assert_eq!(fake.deployment.unwrap()["spec"]["paused"], true);
}

#[tokio::test]
async fn refused_by_opt_in_guard_reads_once_and_writes_nothing() {
    let mut live = deployment("1.2.0", "1.28", 4);
    live["metadata"]["labels"]
        .as_object_mut()
        .unwrap()
        .remove("selfheal.dev/enabled");
    let (outcome, seen, fake) =
        remediate(Fake::new(live.clone(), history()), &request("rollback")).await;
    let outcome = outcome.unwrap();
    assert_eq!(outcome.status, OutcomeStatus::Refused);
    assert_eq!(outcome.guard, Some(selfheal_core::Guard::OptIn));
    assert!(seen.iter().all(|s| s.method == "GET"), "{:?}", lines(&seen));
    assert_eq!(fake.deployment.unwrap(), live);
}

#[tokio::test]
async fn invalid_request_makes_no_call() {
    let mut req = request("pause");
    req.target.pod = Some("also-a-pod".into());
    let (result, seen, _) = remediate(checkout(), &req).await;
    let err = result.unwrap_err();
    assert_eq!(err.error_type(), "NonRetryableInvalidRequest");
    assert!(seen.is_empty());
}

#[tokio::test]
async fn status_is_one_get() {
    let h = harness(checkout(), Policy::default());
    let status = h.remediator.status("shop", "checkout").await.unwrap();
    let (seen, _) = h.finish().await;
    assert_eq!(status.state, selfheal_core::RolloutState::Done);
    assert_eq!(lines(&seen), [format!("GET {DEPLOY_PATH}")]);
}

// ---------------------------------------------------------------------------
// StatefulSets and DaemonSets: the same remediator, history in ControllerRevisions
// ---------------------------------------------------------------------------

const STS_PATH: &str = "/apis/apps/v1/namespaces/shop/statefulsets/ledger";
const DS_PATH: &str = "/apis/apps/v1/namespaces/shop/daemonsets/ledger";
const CR_PATH: &str = "/apis/apps/v1/namespaces/shop/controllerrevisions";

fn ledger_template(db: &str) -> Value {
    json!({
        "metadata": {"labels": {"app": "ledger"}},
        "spec": {"containers": [
            {"name": "db", "image": format!("registry.example/bank/db:{db}")},
            {"name": "metrics", "image": "registry.example/metrics:2.0"}
        ]}
    })
}

/// `ledger` of `kind` (StatefulSet or DaemonSet) running db `db`, converged
/// on its newest ControllerRevision `ledger-h3`.
fn ledger(kind: &str, db: &str) -> Value {
    let (strategy, status) = match kind {
        "StatefulSet" => (
            json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}),
            json!({"observedGeneration": 3, "replicas": 3, "readyReplicas": 3,
                   "currentReplicas": 3, "updatedReplicas": 3, "availableReplicas": 3,
                   "currentRevision": "ledger-h3", "updateRevision": "ledger-h3"}),
        ),
        _ => (
            json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}}),
            json!({"observedGeneration": 3, "desiredNumberScheduled": 2,
                   "currentNumberScheduled": 2, "updatedNumberScheduled": 2,
                   "numberAvailable": 2, "numberReady": 2, "numberMisscheduled": 0}),
        ),
    };
    let mut spec = json!({
        "selector": {"matchLabels": {"app": "ledger"}},
        "template": ledger_template(db),
        "updateStrategy": strategy,
    });
    if kind == "StatefulSet" {
        spec["replicas"] = json!(3);
        spec["serviceName"] = json!("ledger");
    }
    json!({
        "apiVersion": "apps/v1", "kind": kind,
        "metadata": {"name": "ledger", "namespace": "shop", "uid": "ledger-uid",
            "resourceVersion": "500", "generation": 3,
            "labels": {"app": "ledger", "selfheal.dev/enabled": "true"},
            "annotations": {"team": "payments"}},
        "spec": spec,
        "status": status
    })
}

/// ControllerRevision `ledger-h<n>` of `kind`'s ledger, holding db `db`.
fn controller_revision(kind: &str, n: u32, db: &str) -> Value {
    let mut template = ledger_template(db);
    template["$patch"] = json!("replace");
    json!({
        "apiVersion": "apps/v1", "kind": "ControllerRevision",
        "metadata": {"name": format!("ledger-h{n}"), "namespace": "shop",
            "resourceVersion": "400",
            "labels": {"app": "ledger", "controller-revision-hash": format!("h{n}")},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": kind, "name": "ledger",
                "uid": "ledger-uid", "controller": true, "blockOwnerDeletion": true}]},
        "revision": n,
        "data": {"spec": {"template": template}}
    })
}

/// A server holding `kind`'s ledger at db 1.2.0, history 1.0.0, 1.1.0, 1.2.0.
fn ledger_fake(kind: &str) -> Fake {
    let history = [(1, "1.0.0"), (2, "1.1.0"), (3, "1.2.0")]
        .map(|(n, db)| controller_revision(kind, n, db))
        .to_vec();
    Fake {
        path: if kind == "StatefulSet" {
            STS_PATH
        } else {
            DS_PATH
        },
        history_path: CR_PATH,
        ..Fake::new(ledger(kind, "1.2.0"), history)
    }
}

fn ledger_request(kind: &str, action: &str) -> RemediationRequest {
    let field = if kind == "StatefulSet" {
        "statefulSet"
    } else {
        "daemonSet"
    };
    serde_json::from_value(json!({
        "action": action,
        "target": {"namespace": "shop", field: "ledger"},
        "reason": "db crash-looping", "execution": "exec-1"
    }))
    .unwrap()
}

#[tokio::test]
async fn statefulset_and_daemonset_rollback_is_get_list_revisions_patch_then_event() {
    for (kind, path, pod_hash) in [
        ("StatefulSet", STS_PATH, "ledger-h3"),
        ("DaemonSet", DS_PATH, "h3"),
    ] {
        let (outcome, seen, fake) =
            remediate(ledger_fake(kind), &ledger_request(kind, "rollback")).await;
        let outcome = outcome.unwrap();
        assert_eq!(
            lines(&seen),
            [
                format!("GET {path}"),
                format!("GET {CR_PATH}"),
                format!("GET {PODS_PATH}"),
                format!("PATCH {path}"),
                format!("POST {EVENTS_PATH}"),
            ],
            "{kind}"
        );
        assert_eq!(seen[1].params(), ["labelSelector=app%3Dledger"], "{kind}");
        // The current revision's pods, by the revision label its pods carry.
        assert_eq!(
            seen[2].params(),
            [format!(
                "labelSelector=app%3Dledger%2Ccontroller-revision-hash%3D{pod_hash}"
            )],
            "{kind}"
        );
        let patch = &seen[3];
        assert_eq!(
            patch.content_type.as_deref(),
            Some("application/json-patch+json")
        );
        assert_eq!(patch.params(), ["fieldManager=selfheal"]);
        let ops = patch.body.as_ref().unwrap().as_array().unwrap();
        assert_eq!(
            (&ops[0]["op"], &ops[0]["path"], &ops[0]["value"]),
            (&json!("test"), &json!("/metadata/generation"), &json!(3)),
            "{kind}"
        );
        // Their generation ignores annotations: the prefix tests them too.
        assert!(
            ops.iter()
                .any(|op| op["op"] == "test" && op["path"] == "/metadata/annotations"),
            "{kind}: {ops:?}"
        );

        let stored = fake.deployment.unwrap();
        assert_eq!(
            image(&stored, 0),
            "registry.example/bank/db:1.1.0",
            "{kind}"
        );
        assert_eq!(image(&stored, 1), "registry.example/metrics:2.0", "{kind}");
        assert_eq!(outcome.status, OutcomeStatus::Applied, "{kind}");
        assert_eq!(outcome.target.workload_name(kind_of(kind)), Some("ledger"));
        assert_eq!(outcome.target.deployment, None);
        assert_eq!(outcome.revision.and_then(|r| r.before), Some(3), "{kind}");
        let event = seen[4].body.as_ref().unwrap();
        assert_eq!(event["involvedObject"]["kind"], kind);
        assert_eq!(event["involvedObject"]["uid"], "ledger-uid");
        assert_eq!(event["reason"], "SelfhealRollback");
    }
}

fn kind_of(kind: &str) -> selfheal_core::WorkloadKind {
    selfheal_core::WorkloadKind::from_kind(kind).unwrap()
}

#[tokio::test]
async fn statefulset_and_daemonset_hold_is_get_and_patch_with_dry_run() {
    for (kind, path) in [("StatefulSet", STS_PATH), ("DaemonSet", DS_PATH)] {
        let mut req = ledger_request(kind, "pause");
        req.dry_run = true;
        let live = ledger(kind, "1.2.0");
        let (outcome, seen, fake) = remediate(ledger_fake(kind), &req).await;
        assert_eq!(outcome.unwrap().status, OutcomeStatus::DryRun, "{kind}");
        assert_eq!(
            lines(&seen),
            [format!("GET {path}"), format!("PATCH {path}")],
            "{kind}: no history LIST, no Event"
        );
        assert_eq!(seen[1].params(), ["dryRun=All", "fieldManager=selfheal"]);
        assert_eq!(
            fake.deployment.unwrap(),
            live,
            "{kind}: dry run stores nothing"
        );

        let (outcome, _, fake) = remediate(ledger_fake(kind), &ledger_request(kind, "pause")).await;
        assert_eq!(outcome.unwrap().status, OutcomeStatus::Applied, "{kind}");
        let stored = fake.deployment.unwrap();
        let held = match kind {
            "StatefulSet" => &stored["spec"]["updateStrategy"]["rollingUpdate"]["partition"],
            _ => &stored["spec"]["updateStrategy"]["type"],
        };
        let want = if kind == "StatefulSet" {
            json!(3)
        } else {
            json!("OnDelete")
        };
        assert_eq!(held, &want, "{kind}");
        assert_eq!(
            stored["metadata"]["annotations"]["selfheal.dev/paused-by"],
            "selfheal"
        );
    }
}

/// A restart aimed at the StatefulSet ledger's pod `ledger_pod`: the result,
/// the requests and the fake afterwards.
async fn restart_ledger_pod(
    ledger_pod: Value,
) -> (
    selfheal_kube::Result<selfheal_core::RemediationOutcome>,
    Vec<Seen>,
    Fake,
) {
    let mut fake = ledger_fake("StatefulSet");
    let mut req = ledger_request("StatefulSet", "restart");
    req.target.stateful_set = None;
    req.target.pod = ledger_pod["metadata"]["name"].as_str().map(str::to_owned);
    fake.pods = vec![ledger_pod];
    remediate(fake, &req).await
}

#[tokio::test]
async fn statefulset_pod_resolves_directly_to_its_owner() {
    let mut ledger_pod = pod("StatefulSet", "ledger", "ledger-uid");
    ledger_pod["metadata"]["name"] = json!("ledger-0");
    ledger_pod["metadata"]["labels"] =
        json!({"app": "ledger", "controller-revision-hash": "ledger-h3"});
    let (outcome, seen, fake) = restart_ledger_pod(ledger_pod).await;
    let outcome = outcome.unwrap();
    assert_eq!(
        lines(&seen),
        [
            "GET /api/v1/namespaces/shop/pods/ledger-0".to_owned(),
            format!("GET {STS_PATH}"),
            format!("GET {CR_PATH}"),
            format!("PATCH {STS_PATH}"),
            format!("POST {EVENTS_PATH}"),
        ],
        "one pod GET, no ReplicaSet; the revisions for the stale-pod guard"
    );
    assert_eq!(outcome.target.stateful_set.as_deref(), Some("ledger"));
    assert_eq!(outcome.target.pod.as_deref(), Some("ledger-0"));
    let stored = fake.deployment.unwrap();
    assert_eq!(
        stored["spec"]["template"]["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"],
        NOW
    );
}

#[tokio::test]
async fn a_statefulset_recreated_under_the_same_name_is_not_the_pods_owner() {
    let (result, seen, fake) =
        restart_ledger_pod(pod("StatefulSet", "ledger", "an-older-uid")).await;
    let err = result.unwrap_err();
    assert!(
        matches!(&err, Error::PodNotOwnedByDeployment { found, .. } if found.contains("an-older-uid")),
        "{err:?}"
    );
    assert_eq!(err.error_type(), "NonRetryableInvalidObject");
    assert!(seen.iter().all(|s| s.method == "GET"), "nothing written");
    assert_eq!(fake.deployment.unwrap(), ledger("StatefulSet", "1.2.0"));
}

#[tokio::test]
async fn statefulset_status_is_one_get() {
    let h = harness(ledger_fake("StatefulSet"), Policy::default());
    let status = h
        .remediator
        .status_of("shop", selfheal_core::WorkloadKind::StatefulSet, "ledger")
        .await
        .unwrap();
    let (seen, _) = h.finish().await;
    assert_eq!(status.state, selfheal_core::RolloutState::Done);
    assert_eq!(lines(&seen), [format!("GET {STS_PATH}")]);
}

#[tokio::test]
async fn a_moved_statefulset_is_read_and_planned_again() {
    // Someone writes the StatefulSet right after our first GET: the guarded
    // patch fails its generation test (422) and the second plan lands.
    let mut fake = ledger_fake("StatefulSet");
    fake.concurrent_writer_until = 1;
    let (outcome, seen, fake) = remediate(fake, &ledger_request("StatefulSet", "rollback")).await;
    assert_eq!(outcome.unwrap().status, OutcomeStatus::Applied);
    let attempt = [
        format!("GET {STS_PATH}"),
        format!("GET {CR_PATH}"),
        format!("GET {PODS_PATH}"),
        format!("PATCH {STS_PATH}"),
    ];
    assert_eq!(
        lines(&seen),
        [attempt.to_vec(), attempt.to_vec(), event_post()].concat()
    );
    let (first, second) = (
        seen[3].body.as_ref().unwrap(),
        seen[7].body.as_ref().unwrap(),
    );
    assert_eq!(
        (&first[0]["value"], &second[0]["value"]),
        (&json!(3), &json!(4))
    );
    let stored = fake.deployment.unwrap();
    assert_eq!(image(&stored, 0), "registry.example/bank/db:1.1.0");
    assert_eq!(
        stored["metadata"]["annotations"]["other"], "1",
        "their write kept"
    );
}
