//! The REAL state machine definitions, executed end to end.
//!
//! What runs (all real except the two documented shims):
//! - `statemachines/remediate-deployment.asl.json` and `remediate-fleet.asl.json`,
//!   only their `${...}` placeholders substituted (as SAM's
//!   `DefinitionSubstitutions` does), interpreted by the third-party npm
//!   package aws-local-stepfunctions (tests/asl/runner.mjs, installed by
//!   scripts/deps/56-asl-runner.sh);
//! - its Task states invoke the real handler binaries (`functions/*`) through
//!   cargo-lambda's emulator (`cargo lambda watch`), which act on the project's
//!   test Kubernetes API server (selfheal-testserver, through a kubeconfig);
//! - notify publishes to SNS and stores approval records in SSM, both in moto
//!   (`moto_server`); the test reads the notifications from an SQS queue
//!   subscribed to the topic;
//! - approval: notify mints the approve/deny link, the test "clicks" it by
//!   calling the approve function's Function URL (GET shows the page, POST
//!   decides), approve calls SendTaskSuccess/SendTaskFailure.
//!
//! Shims (test code): (1) the runner turns a Lambda invoke into the emulator's
//! HTTP call and an HTTP 500 `{errorType}` into the error name Step Functions
//! matches; (2) the runner is the Step Functions endpoint the functions see
//! (`AWS_ENDPOINT_URL_SFN`): it answers SendTaskSuccess/SendTaskFailure by
//! resolving the waiting `.waitForTaskToken` task of the interpreter, and
//! proxies every other Step Functions call (ingest's StartExecution) to moto.
//! The runner also patches two interpreter bugs at load (see runner.mjs).
//!
//! Alertmanager path: a real Alertmanager posts its webhook to ingest's
//! Function URL, ingest starts an execution in moto (moto does not run it:
//! its engine cannot call our functions in server mode); the test picks that
//! execution's input from moto (DescribeExecution) and runs it, under the
//! same name, through the interpreter above. That hand-off is the only step
//! that is not the product's own.
//!
//! One test function on purpose: the tools (emulator, moto, runner, test
//! server) are started once and the scenarios run concurrently, each on its
//! own namespace, to keep the wall time to a couple of minutes on two cores.
//! Skipped with a message when a tool is missing, unless
//! `SELFHEAL_REQUIRE_TOOLS` is set.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams, Patch, PatchParams};
use selfheal_tests::asl::{Runner, find_node};
use selfheal_tests::emulator::Emulator;
use selfheal_tests::tools::{
    Moto, build_workspace_bins, cargo_lambda_binary, free_port, http_request, kill_group,
    tool_or_skip, workspace_root, xml_text,
};
use selfheal_testserver::{ControllerConfig, TestServer, fixtures};
use serde_json::{Value, json};

const TEST: &str = "statemachine_e2e";
const REGION: &str = "us-east-1";
const ACCOUNT: &str = "123456789012";
const CLUSTER: &str = "e2e";
const WEBHOOK_SECRET: &str = "e2e-alertmanager-secret";
/// The off switch every function reads (SSM in moto); `on` until the
/// switched-off scenario, which runs after the others.
const SWITCH: &str = "/selfheal/e2e/switch";

const API_1: &str = "registry.example/shop/api:1.0.0";
const API_2: &str = "registry.example/shop/api:1.1.0";
/// Pods with this image never become ready (ControllerConfig.never_ready_images).
const API_BROKEN: &str = "registry.example/shop/api:1.2.0-broken";
const ENVOY: &str = "registry.example/envoy:1.27";
/// envoy's image in the two-container release of the evidence scenario.
const ENVOY_2: &str = "registry.example/envoy:1.28";

/// The function binaries the state machines' Task states reach.
const FUNCTIONS: [&str; 8] = [
    "rollback", "pause", "resume", "restart", "verify", "notify", "approve", "ingest",
];

// ------------------------------------------------------------------ tools --

struct Tools {
    cargo_lambda: PathBuf,
    moto: PathBuf,
    node: PathBuf,
    alertmanager: PathBuf,
}

fn find_tools() -> Result<Tools, String> {
    let root = workspace_root();
    let node = find_node()?;
    let alertmanager = [
        root.join(".tools/bin/alertmanager"),
        PathBuf::from("/usr/bin/prometheus-alertmanager"),
        PathBuf::from("/usr/bin/alertmanager"),
    ]
    .into_iter()
    .find(|p| p.is_file())
    .ok_or("alertmanager not found (run scripts/deps/40-alertmanager.sh)")?;
    Ok(Tools {
        cargo_lambda: cargo_lambda_binary()?,
        moto: Moto::binary()?,
        node,
        alertmanager,
    })
}

// ---------------------------------------------------------------- cluster --

fn deployment(ns: &str, name: &str, image: &str, progress_deadline: Option<i32>) -> Value {
    let mut d = fixtures::checkout(image, ENVOY)
        .named(ns, name)
        .opt_in(true);
    if let Some(s) = progress_deadline {
        d = d.progress_deadline(s);
    }
    d.json()
}

struct Cluster {
    server: TestServer,
    admin: kube::Client,
}

impl Cluster {
    /// `ns/name` at revision 1 with API_1 (rolled out), then revision 2 with
    /// `bad` (rolled out unless `bad` never gets ready).
    async fn two_revisions(&self, ns: &str, name: &str, bad: &str, progress_deadline: Option<i32>) {
        self.server
            .apply_objects(deployment(ns, name, API_1, progress_deadline));
        self.wait_done(ns, name).await;
        self.set_image(ns, name, bad).await;
        if bad != API_BROKEN {
            self.wait_done(ns, name).await;
        }
    }

    async fn set_image(&self, ns: &str, name: &str, image: &str) {
        self.release(ns, name, &[("api", image)]).await;
    }

    /// A release: new images for the named containers, one template change.
    async fn release(&self, ns: &str, name: &str, images: &[(&str, &str)]) {
        let api: Api<Deployment> = Api::namespaced(self.admin.clone(), ns);
        let containers: Vec<Value> = images
            .iter()
            .map(|(c, image)| json!({"name": c, "image": image}))
            .collect();
        let bump = json!({"spec": {"template": {"spec": {"containers": containers}}}});
        api.patch(name, &PatchParams::default(), &Patch::Strategic(bump))
            .await
            .unwrap();
    }

    /// Writes, through `pods/status` as the kubelet does, that `container`
    /// crash-loops (exit code 1, 3 restarts each) in every pod running
    /// `image`, the other containers ready; returns how many pods.
    async fn crash_loop(&self, ns: &str, container: &str, image: &str) -> usize {
        let pods: Api<Pod> = Api::namespaced(self.admin.clone(), ns);
        let now = "2026-12-06T04:00:00Z";
        let mut n = 0;
        for pod in pods.list(&ListParams::default()).await.unwrap().items {
            let spec = pod.spec.clone().unwrap_or_default();
            let runs = |c: &k8s_openapi::api::core::v1::Container| {
                c.name == container && c.image.as_deref() == Some(image)
            };
            if !spec.containers.iter().any(runs) {
                continue;
            }
            let name = pod.metadata.name.clone().unwrap();
            let statuses: Vec<Value> = spec
                .containers
                .iter()
                .map(|c| {
                    let failing = c.name == container;
                    let (state, last) = if failing {
                        (
                            json!({"waiting": {"reason": "CrashLoopBackOff",
                                "message": format!("back-off 40s restarting failed container={container} pod={name}")}}),
                            json!({"terminated": {"exitCode": 1, "reason": "Error",
                                "startedAt": now, "finishedAt": now}}),
                        )
                    } else {
                        (json!({"running": {"startedAt": now}}), json!({}))
                    };
                    json!({"name": c.name, "image": c.image, "imageID": "", "ready": !failing,
                        "restartCount": if failing { 3 } else { 0 }, "started": !failing,
                        "state": state, "lastState": last})
                })
                .collect();
            let status = json!({"status": {"phase": "Running",
                "conditions": [{"type": "Ready", "status": "False", "lastTransitionTime": now}],
                "containerStatuses": statuses}});
            pods.patch_status(&name, &PatchParams::default(), &Patch::Merge(&status))
                .await
                .unwrap();
            n += 1;
        }
        n
    }

    async fn annotate(&self, ns: &str, name: &str, key: &str, value: &str) {
        let api: Api<Deployment> = Api::namespaced(self.admin.clone(), ns);
        let patch = json!({"metadata": {"annotations": {key: value}}});
        api.patch(name, &PatchParams::default(), &Patch::Merge(patch))
            .await
            .unwrap();
    }

    /// Waits (real time, the controller runs in the background) until the
    /// rollout is done in kubectl's sense.
    async fn wait_done(&self, ns: &str, name: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !rollout_done(&self.deployment(ns, name)) {
            assert!(
                Instant::now() < deadline,
                "{ns}/{name} never finished rolling out: {:?}",
                self.deployment(ns, name).status
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn deployment(&self, ns: &str, name: &str) -> Deployment {
        self.server
            .deployment(ns, name)
            .unwrap_or_else(|| panic!("{ns}/{name} exists"))
    }
}

fn container_image(d: &Deployment, container: &str) -> String {
    d.spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .and_then(|s| s.containers.iter().find(|c| c.name == container))
        .and_then(|c| c.image.clone())
        .unwrap_or_default()
}

fn paused(d: &Deployment) -> bool {
    d.spec.as_ref().and_then(|s| s.paused).unwrap_or(false)
}

fn annotation(d: &Deployment, key: &str) -> Option<String> {
    d.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(key).cloned())
}

/// kubectl rollout status's "successfully rolled out".
fn rollout_done(d: &Deployment) -> bool {
    let (Some(spec), Some(status)) = (&d.spec, &d.status) else {
        return false;
    };
    let want = spec.replicas.unwrap_or(1);
    d.metadata.generation.unwrap_or(0) <= status.observed_generation.unwrap_or(-1)
        && status.updated_replicas.unwrap_or(0) >= want
        && status.replicas.unwrap_or(0) <= status.updated_replicas.unwrap_or(0)
        && status.available_replicas.unwrap_or(0) >= status.updated_replicas.unwrap_or(0)
}

fn request(action: &str, ns: &str, name: &str) -> Value {
    json!({
        "action": action,
        "target": { "cluster": CLUSTER, "namespace": ns, "deployment": name, "container": "api" },
        "reason": format!("{TEST}: {action} {ns}/{name}"),
    })
}

// ---------------------------------------------------------- notifications --

/// SNS topic (moto) with an SQS queue subscribed: what notify published.
struct Inbox {
    moto: Arc<Moto>,
    topic_arn: String,
    queue_url: String,
    seen: tokio::sync::Mutex<Vec<Value>>,
}

impl Inbox {
    async fn create(moto: Arc<Moto>) -> Inbox {
        let created = moto
            .query_call(
                "sns",
                &[("Action", "CreateTopic"), ("Name", "selfheal-e2e")],
            )
            .await;
        let topic_arn = xml_text(&created, "TopicArn").expect("TopicArn").to_owned();
        let queue_url = moto.create_queue("selfheal-e2e").await;
        let queue_arn = format!("arn:aws:sqs:{REGION}:{ACCOUNT}:selfheal-e2e");
        moto.query_call(
            "sns",
            &[
                ("Action", "Subscribe"),
                ("TopicArn", &topic_arn),
                ("Protocol", "sqs"),
                ("Endpoint", &queue_arn),
                ("Attributes.entry.1.key", "RawMessageDelivery"),
                ("Attributes.entry.1.value", "false"),
            ],
        )
        .await;
        Inbox {
            moto,
            topic_arn,
            queue_url,
            seen: Default::default(),
        }
    }

    /// Drains the queue into `seen`; returns everything seen so far as
    /// `{subject, message}` (message parsed as JSON when it is JSON).
    async fn all(&self) -> Vec<Value> {
        let mut seen = self.seen.lock().await;
        loop {
            let bodies = self.moto.sqs_take(&self.queue_url).await;
            if bodies.is_empty() {
                break;
            }
            for body in bodies {
                let envelope: Value = serde_json::from_str(&body).unwrap_or_default();
                let text = envelope["Message"].as_str().unwrap_or_default().to_owned();
                seen.push(json!({
                    "subject": envelope["Subject"],
                    "text": text,
                    "message": serde_json::from_str::<Value>(&text).unwrap_or(Value::Null),
                }));
            }
        }
        seen.clone()
    }

    /// Notifications whose text mentions `needle` (a namespace, an execution name).
    async fn about(&self, needle: &str) -> Vec<Value> {
        self.all()
            .await
            .into_iter()
            .filter(|n| n.to_string().contains(needle))
            .collect()
    }

    /// Waits for a notification about `needle` carrying an approval link with
    /// `decision=<decision>`; returns that link.
    async fn approval_link(&self, needle: &str, decision: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            for n in self.about(needle).await {
                if let Some(link) = find_link(&n["text"].to_string(), decision) {
                    return link;
                }
            }
            assert!(
                Instant::now() < deadline,
                "no approval link ({decision}) about {needle} in {:#?}",
                self.all().await
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// The first `http…/approve?id=…&decision=<decision>` URL in `text`.
fn find_link(text: &str, decision: &str) -> Option<String> {
    let want = format!("decision={decision}");
    text.match_indices("http")
        .map(|(i, _)| {
            text[i..]
                .split(|c: char| {
                    c.is_whitespace() || matches!(c, '"' | '\\' | '<' | '>' | ')' | '|')
                })
                .next()
                .unwrap_or_default()
        })
        .find(|u| u.contains("/approve?") && u.contains(&want))
        .map(str::to_owned)
}

/// "Clicks" an approval link the way a person does: GET shows the page, POST
/// (its form) decides. Goes through the approve function's Function URL.
/// Returns the page, then the answer to the POST.
async fn click(emulator: &Emulator, link: &str) -> (String, String) {
    let (_, rest) = link
        .split_once("/lambda-url/approve")
        .unwrap_or_else(|| panic!("link {link} is not the approve Function URL"));
    let (status, page) = emulator
        .url_request("approve", "GET", rest, &[], Vec::new())
        .await;
    assert_eq!(status, 200, "GET {link}: {page}");
    assert!(page.contains("method=\"post\""), "{page}");
    let query = rest.split_once('?').map(|(_, q)| q).unwrap_or_default();
    let (status, answer) = emulator
        .url_request(
            "approve",
            "POST",
            "/approve",
            &[("content-type", "application/x-www-form-urlencoded")],
            query.as_bytes().to_vec(),
        )
        .await;
    assert_eq!(status, 200, "POST {link}: {answer}");
    (page, answer)
}

// -------------------------------------------------------------- scenarios --

struct World {
    cluster: Cluster,
    runner: Runner,
    emulator: Emulator,
    inbox: Inbox,
    moto: Arc<Moto>,
}

/// One `remediate-deployment` execution named `exec`: `action` on `ns/name`.
async fn remediate(w: &World, exec: &str, action: &str, ns: &str, name: &str) -> Value {
    let input = request(action, ns, name);
    w.runner.run("remediate-deployment", exec, &input).await
}

/// The states the execution went through, after asserting that the
/// `expected` ones (names separated by spaces) are among them.
fn assert_visited(result: &Value, expected: &str) -> Vec<String> {
    let s = states(result);
    for st in expected.split_whitespace() {
        assert!(s.iter().any(|v| v == st), "{st} not in {s:?}");
    }
    s
}

fn states(result: &Value) -> Vec<String> {
    result["states"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn assert_succeeded(result: &Value) {
    assert_eq!(result["status"], "SUCCEEDED", "{result:#}");
}

fn assert_change(outcome: &Value, from: &str, to: &str) {
    let changes = outcome["changes"].as_array().expect("changes");
    assert_eq!(changes.len(), 1, "{outcome:#}");
    assert_eq!(changes[0]["container"], "api", "{outcome:#}");
    assert_eq!(changes[0]["from"], from, "{outcome:#}");
    assert_eq!(changes[0]["to"], to, "{outcome:#}");
}

fn assert_health(output: &Value) {
    let health = &output["deploymentHealth"];
    assert!(health.is_object(), "no deploymentHealth: {output:#}");
}

/// Rollback that succeeds: only the api container returns to API_1, the
/// rollout is verified done, the output is the outcome + deploymentHealth.
async fn rollback_succeeds(w: &World) {
    let (ns, name) = ("sm-rollback", "checkout");
    w.cluster.two_revisions(ns, name, API_2, None).await;
    let r = remediate(w, "rollback-ok", "rollback", ns, name).await;
    assert_succeeded(&r);
    let out = &r["output"];
    assert_eq!(out["status"], "applied", "{out:#}");
    assert_change(out, API_2, API_1);
    assert_health(out);
    let s = states(&r);
    assert!(
        s.contains(&"Verify".into()) && s.contains(&"ReportResult".into()),
        "{s:?}"
    );
    assert!(!s.contains(&"Escalate".into()), "{s:?}");
    let d = w.cluster.deployment(ns, name);
    assert_eq!(container_image(&d, "api"), API_1);
    assert_eq!(container_image(&d, "envoy"), ENVOY);
    assert!(rollout_done(&d), "{:?}", d.status);
    assert!(annotation(&d, "selfheal.dev/bad-images").is_some_and(|b| b.contains(API_2)));
    let notes = w.inbox.about(ns).await;
    assert!(!notes.is_empty(), "no notification about {ns}");
}

/// Restart whose pods never become ready: the Deployment's own progress
/// deadline (3 s) fails the rollout, the definition escalates to a rollback.
async fn restart_escalates(w: &World) {
    let (ns, name) = ("sm-restart", "checkout");
    w.cluster.two_revisions(ns, name, API_BROKEN, Some(3)).await;
    let r = remediate(w, "restart-escalated", "restart", ns, name).await;
    assert_succeeded(&r);
    let path = "Restart RolloutFailed Escalate FollowUpRollback ReportResult";
    assert_visited(&r, path);
    let out = &r["output"];
    assert_eq!(out["status"], "applied", "{out:#}");
    assert_eq!(
        out["action"].as_str().unwrap_or("rollback"),
        "rollback",
        "{out:#}"
    );
    assert_change(out, API_BROKEN, API_1);
    assert_health(out);
    let d = w.cluster.deployment(ns, name);
    assert_eq!(container_image(&d, "api"), API_1);
    assert!(rollout_done(&d), "{:?}", d.status);
    // The restart happened first: its annotation is on the template.
    let restarted = d
        .spec
        .as_ref()
        .and_then(|s| s.template.metadata.as_ref())
        .and_then(|m| m.annotations.as_ref())
        .is_some_and(|a| a.contains_key("kubectl.kubernetes.io/restartedAt"));
    assert!(restarted, "no restartedAt on {:?}", d.spec);
}

/// Rollback with no safe image (the only older image is known bad): refused,
/// humans notified, the execution fails with the refusal.
async fn no_safe_image(w: &World) {
    let (ns, name) = ("sm-nosafe", "checkout");
    w.cluster.two_revisions(ns, name, API_2, None).await;
    w.cluster
        .annotate(
            ns,
            name,
            "selfheal.dev/bad-images",
            &json!({"api": [API_1]}).to_string(),
        )
        .await;
    let generation = w.cluster.deployment(ns, name).metadata.generation;
    let r = remediate(w, "rollback-no-safe-image", "rollback", ns, name).await;
    assert_eq!(r["status"], "FAILED", "{r:#}");
    assert_eq!(r["error"], "SelfhealRefused", "{r:#}");
    assert!(
        r["cause"]
            .as_str()
            .unwrap_or_default()
            .contains("guard refused"),
        "{r:#}"
    );
    assert_visited(&r, "Refused ReportFailure RemediationRefused");
    let d = w.cluster.deployment(ns, name);
    assert_eq!(container_image(&d, "api"), API_2);
    assert_eq!(
        d.metadata.generation, generation,
        "the refused rollback wrote"
    );
    let notes = w.inbox.about("rollback-no-safe-image").await;
    assert!(
        notes
            .iter()
            .any(|n| n.to_string().contains("noPreviousImage")),
        "no notification naming the guard: {notes:#?}"
    );
}

/// Alarm-driven pause during a bad rollout, "rollout frozen" with approve/deny
/// links; a person approves; the offending container is rolled back and the
/// Deployment unpaused.
async fn pause_approve_rollback(w: &World) {
    let (ns, name) = ("sm-pause", "checkout");
    w.cluster.two_revisions(ns, name, API_BROKEN, None).await;
    let mut input = request("pause", ns, name);
    input["alarm"] = json!({"source": "cloudwatch", "name": "checkout-5xx", "impactScore": 3.0});
    let exec = "pause-approved";
    let run = w.runner.run("remediate-deployment", exec, &input);
    let approve = async {
        let link = w.inbox.approval_link(exec, "approve").await;
        // Frozen while waiting.
        assert!(
            paused(&w.cluster.deployment(ns, name)),
            "not paused while waiting"
        );
        click(&w.emulator, &link).await.1
    };
    let (r, answer) = tokio::join!(run, approve);
    assert!(!answer.is_empty());
    assert_succeeded(&r);
    let path = "Pause RolloutFrozen RollbackApproved FollowUpRollback ReportResult";
    assert_visited(&r, path);
    let out = &r["output"];
    assert_eq!(out["status"], "applied", "{out:#}");
    assert_change(out, API_BROKEN, API_1);
    assert_health(out);
    let d = w.cluster.deployment(ns, name);
    assert_eq!(container_image(&d, "api"), API_1);
    assert!(!paused(&d), "still paused after the approved rollback");
    assert!(rollout_done(&d), "{:?}", d.status);
}

/// A rollback that needs approval; the approver denies: nothing changes, the
/// execution fails with SelfhealApprovalDenied, humans are told.
async fn approval_denied(w: &World) {
    let (ns, name) = ("sm-deny", "checkout");
    w.cluster.two_revisions(ns, name, API_2, None).await;
    let generation = w.cluster.deployment(ns, name).metadata.generation;
    let mut input = request("rollback", ns, name);
    input["approval"] = json!(true);
    let exec = "rollback-denied";
    let run = w.runner.run("remediate-deployment", exec, &input);
    let deny = async {
        let link = w.inbox.approval_link(exec, "deny").await;
        click(&w.emulator, &link).await
    };
    let (r, _) = tokio::join!(run, deny);
    assert_eq!(r["status"], "FAILED", "{r:#}");
    assert_eq!(r["error"], "SelfhealApprovalDenied", "{r:#}");
    let path = "RequestApproval ApprovalDenied ReportFailure ApprovalDeniedFail";
    let s = assert_visited(&r, path);
    assert!(!s.contains(&"Rollback".into()), "{s:?}");
    let d = w.cluster.deployment(ns, name);
    assert_eq!(container_image(&d, "api"), API_2);
    assert_eq!(d.metadata.generation, generation);
    // The approval request and the failure report.
    let notes = w.inbox.about(exec).await;
    assert!(notes.len() >= 2, "{notes:#?}");
}

/// A release bumps api and envoy; the new pods show api crash-looping
/// (written through `pods/status`) and envoy healthy. A rollback naming no
/// container, with approval: the page shows the dry run's plan (api only)
/// and the pods' evidence before anyone decides; approved, only api goes
/// back, envoy keeps its new image, and the notifications name the failing
/// container and why.
async fn evidence_picks_the_failing_container(w: &World) {
    let (ns, name) = ("sm-evidence", "checkout");
    w.cluster
        .server
        .apply_objects(deployment(ns, name, API_1, None));
    w.cluster.wait_done(ns, name).await;
    // API_BROKEN: the kubelet stand-in leaves these pods to the status
    // written below (it would mark any other pod ready again).
    w.cluster
        .release(ns, name, &[("api", API_BROKEN), ("envoy", ENVOY_2)])
        .await;
    let deadline = Instant::now() + Duration::from_secs(30);
    let n = loop {
        let n = w.cluster.crash_loop(ns, "api", API_BROKEN).await;
        if n > 0 {
            break n;
        }
        assert!(Instant::now() < deadline, "no pod runs {API_BROKEN}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let mut input = request("rollback", ns, name);
    input["target"].as_object_mut().unwrap().remove("container");
    input["approval"] = json!(true);
    let exec = "rollback-evidence";
    let run = w.runner.run("remediate-deployment", exec, &input);
    let approve = async {
        let link = w.inbox.approval_link(exec, "approve").await;
        click(&w.emulator, &link).await.0
    };
    let (r, page) = tokio::join!(run, approve);
    let failing = format!(
        "api: CrashLoopBackOff on {n}/{n} new pods, {} restarts, exit code 1",
        3 * n
    );
    for want in [
        format!("<b>api</b><br><code>{API_BROKEN}</code><br>→ <code>{API_1}</code>"),
        format!("<li class=\"failing\">{failing}</li>"),
        "<li>envoy: healthy</li>".to_owned(),
        "accepted this change in a dry run".to_owned(),
    ] {
        assert!(page.contains(&want), "{want} not on the page: {page}");
    }
    assert!(!page.contains("<b>envoy</b>"), "envoy planned: {page}");
    assert_succeeded(&r);
    assert_visited(&r, "PreviewRollback RequestApproval Rollback Verify");
    let out = &r["output"];
    assert_eq!(out["status"], "applied", "{out:#}");
    assert_change(out, API_BROKEN, API_1);
    let d = w.cluster.deployment(ns, name);
    assert_eq!(container_image(&d, "api"), API_1);
    assert_eq!(container_image(&d, "envoy"), ENVOY_2);
    let texts: Vec<String> = w
        .inbox
        .about(exec)
        .await
        .iter()
        .map(|n| n["text"].as_str().unwrap_or_default().to_owned())
        .collect();
    let evidence = format!("Evidence: {failing}; envoy: healthy");
    let asked = texts
        .iter()
        .find(|t| t.starts_with("Approval needed"))
        .unwrap_or_else(|| panic!("no approval request in {texts:#?}"));
    assert!(
        asked.contains(&format!(
            "Will change: container api {API_BROKEN} -> {API_1}"
        )) && asked.contains(&evidence),
        "{asked}"
    );
    let done = texts
        .iter()
        .find(|t| t.contains("Changed: container api"))
        .unwrap_or_else(|| panic!("no final report in {texts:#?}"));
    assert!(done.contains(&evidence), "{done}");
    assert!(!done.contains("Changed: container envoy"), "{done}");
}

/// Dry run: the outcome says what would change; the API server only saw
/// dryRun=All writes; the Deployment is untouched.
async fn dry_run(w: &World) {
    let (ns, name) = ("sm-dryrun", "checkout");
    w.cluster.two_revisions(ns, name, API_2, None).await;
    let before = w.cluster.deployment(ns, name);
    // Only the execution's requests: the setup above PATCHed for real.
    let seen = w.cluster.server.requests().len();
    let mut input = request("rollback", ns, name);
    input["dryRun"] = json!(true);
    let r = w
        .runner
        .run("remediate-deployment", "rollback-dry-run", &input)
        .await;
    assert_succeeded(&r);
    let out = &r["output"];
    assert_eq!(out["status"], "dryRun", "{out:#}");
    assert_change(out, API_2, API_1);
    assert!(!states(&r).contains(&"Verify".into()));
    let after = w.cluster.deployment(ns, name);
    assert_eq!(container_image(&after, "api"), API_2);
    assert_eq!(after.metadata.generation, before.metadata.generation);
    assert_eq!(after.metadata.annotations, before.metadata.annotations);
    let writes: Vec<_> = w
        .cluster
        .server
        .requests()
        .into_iter()
        .skip(seen)
        .filter(|q| q.path.contains(&format!("/namespaces/{ns}/")) && q.method == "PATCH")
        .collect();
    assert!(!writes.is_empty(), "the dry run sent no PATCH");
    for q in &writes {
        assert_eq!(
            q.query.get("dryRun").map(String::as_str),
            Some("All"),
            "{:?}",
            q.path
        );
    }
}

/// A malformed cluster ARN (an account id of 4 digits): its child fails.
const BROKEN_CLUSTER: &str = "arn:aws:eks:us-west-2:2222:cluster/e2e-west";

/// remediate-fleet: 20 Deployments in 3 namespaces, one child execution
/// each, plus a target with a malformed cluster ARN that fails alone. Local
/// mode has one cluster; clusters in other accounts and regions, reached
/// in EKS mode through assumed roles: tests/tests/fleet_across_clusters.rs.
async fn fleet(w: &World) -> Duration {
    let mut targets = Vec::new();
    for i in 0..20 {
        let ns = ["fleet-a", "fleet-b", "fleet-c"][i % 3];
        let name = format!("svc-{i:02}");
        targets.push((ns, name));
    }
    let setup: Vec<_> = targets
        .iter()
        .map(|(ns, name)| w.cluster.two_revisions(ns, name, API_2, None))
        .collect();
    futures::future::join_all(setup).await;
    let input = json!({
        "request": { "action": "rollback", "reason": format!("{TEST}: fleet"), "force": false },
        "targets": targets.iter().map(|(ns, name)| json!({
            "cluster": CLUSTER, "namespace": ns, "deployment": name, "container": "api"
        })).chain(std::iter::once(json!({
            "cluster": BROKEN_CLUSTER, "namespace": "fleet-a", "deployment": "svc-00", "container": "api"
        }))).collect::<Vec<_>>(),
        "maxConcurrency": 10
    });
    let started = Instant::now();
    let r = w.runner.run("remediate-fleet", "fleet-20", &input).await;
    let wall = started.elapsed();
    assert_succeeded(&r);
    let results = r["output"]["results"].as_array().expect("results");
    assert_eq!(results.len(), 21, "{r:#}");
    let broken = &results[20];
    assert_eq!(broken["status"], "failed", "{broken:#}");
    assert_eq!(broken["target"]["cluster"], BROKEN_CLUSTER);
    assert_eq!(broken["error"], "NonRetryableInvalidRequest", "{broken:#}");
    for (res, (ns, name)) in results.iter().zip(&targets) {
        assert_eq!(res["status"], "succeeded", "{res:#}");
        assert_eq!(res["target"]["cluster"], CLUSTER);
        assert_eq!(res["target"]["namespace"], *ns);
        assert_eq!(res["target"]["deployment"], name.as_str());
        assert_eq!(res["outcome"]["status"], "applied", "{res:#}");
        assert_change(&res["outcome"], API_2, API_1);
    }
    for (ns, name) in &targets {
        let d = w.cluster.deployment(ns, name);
        assert_eq!(container_image(&d, "api"), API_1, "{ns}/{name}");
        assert!(rollout_done(&d), "{ns}/{name}: {:?}", d.status);
    }
    assert_eq!(r["children"].as_array().map(Vec::len), Some(21));
    assert_eq!(
        r["output"]["summary"]["failed"], 1,
        "{:#}",
        r["output"]["summary"]
    );
    assert!(
        r["output"]["summary"].is_object(),
        "no fleet summary: {:#}",
        r["output"]
    );
    eprintln!(
        "{TEST}: fleet of 20 Deployments in 3 namespaces rolled back and verified, 1 malformed cluster ARN failed alone, in {wall:?}"
    );
    wall
}

/// Alertmanager → ingest → StartExecution (moto) → interpreter → rollback.
async fn alertmanager_to_rollback(w: &World, alertmanager: &Path, dir: &Path, sm_arn: &str) {
    let (ns, name) = ("sm-alert", "checkout");
    w.cluster.two_revisions(ns, name, API_2, None).await;

    let am_port = free_port();
    let config = dir.join("alertmanager.yml");
    std::fs::write(
        &config,
        format!(
            "route:\n  receiver: selfheal\n  group_by: ['alertname', 'namespace', 'deployment']\n  group_wait: 1s\n  group_interval: 1m\n  repeat_interval: 1h\n\
             receivers:\n  - name: selfheal\n    webhook_configs:\n      - url: '{}/'\n        send_resolved: false\n        http_config:\n          authorization:\n            type: Bearer\n            credentials: '{WEBHOOK_SECRET}'\n",
            w.emulator.function_url("ingest")
        ),
    )
    .unwrap();
    let log = std::fs::File::create(dir.join("alertmanager.log")).unwrap();
    let mut cmd = Command::new(alertmanager);
    cmd.arg(format!("--config.file={}", config.display()))
        .arg(format!("--storage.path={}", dir.join("am-data").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{am_port}"))
        .arg("--cluster.listen-address=")
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log);
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    let mut am = KillOnDrop(cmd.spawn().expect("spawn alertmanager"));
    let am_log = dir.join("alertmanager.log");
    selfheal_tests::tools::wait_listening(am_port, Duration::from_secs(30), "alertmanager", || {
        match am.0.try_wait() {
            Ok(Some(s)) => Err(format!(
                "{s}: {}",
                std::fs::read_to_string(&am_log).unwrap_or_default()
            )),
            _ => Ok(()),
        }
    })
    .await;

    let alert = json!([{
        "labels": {
            "alertname": "CheckoutErrorRate", "severity": "critical",
            "cluster": CLUSTER, "namespace": ns, "deployment": name, "container": "api"
        },
        "annotations": {
            "summary": "checkout 5xx above 5%",
            "selfheal": "action=rollback"
        },
        "generatorURL": "http://prometheus.example/graph"
    }]);
    let (status, _, body) = http_request(
        "POST",
        &format!("http://127.0.0.1:{am_port}/api/v2/alerts"),
        &[("content-type", "application/json")],
        serde_json::to_vec(&alert).unwrap(),
        Duration::from_secs(30),
    )
    .await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));

    // ingest started an execution in moto (through the runner's proxy).
    let deadline = Instant::now() + Duration::from_secs(90);
    let execution = loop {
        let listed = w
            .moto
            .json_call(
                "AWSStepFunctions",
                "ListExecutions",
                &json!({"stateMachineArn": sm_arn}),
            )
            .await;
        if let Some(e) = listed["executions"]
            .as_array()
            .and_then(|a| a.first())
            .cloned()
        {
            break e;
        }
        assert!(
            Instant::now() < deadline,
            "ingest started no execution; emulator log:\n{}",
            w.emulator.log_text()
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    let described = w
        .moto
        .json_call(
            "AWSStepFunctions",
            "DescribeExecution",
            &json!({"executionArn": execution["executionArn"]}),
        )
        .await;
    let input: Value = serde_json::from_str(described["input"].as_str().expect("input")).unwrap();
    assert_eq!(input["action"], "rollback", "{input:#}");
    assert_eq!(input["target"]["namespace"], ns, "{input:#}");
    assert_eq!(input["target"]["deployment"], name, "{input:#}");
    assert_eq!(input["alarm"]["source"], "alertmanager", "{input:#}");

    // Hand-off: the same execution (name, input) through the interpreter.
    let exec_name = described["name"].as_str().expect("name").to_owned();
    let r = w
        .runner
        .run("remediate-deployment", &exec_name, &input)
        .await;
    assert_succeeded(&r);
    assert_eq!(r["output"]["status"], "applied", "{r:#}");
    assert_change(&r["output"], API_2, API_1);
    let d = w.cluster.deployment(ns, name);
    assert_eq!(container_image(&d, "api"), API_1);
    assert!(rollout_done(&d), "{:?}", d.status);
}

/// The off switch, flipped the way the runbook does it (SSM PutParameter,
/// `--overwrite`): once the functions' one-second cache has passed, a
/// rollback execution ends in `SwitchedOff` with the `disabled` outcome,
/// the API server sees no request for its namespace, nothing is notified;
/// a fleet over two targets sends its one summary and nothing per target.
/// Runs alone, after the other scenarios: the switch is process-wide.
async fn switched_off(w: &World) {
    let (ns, name) = ("sm-off", "checkout");
    w.cluster.two_revisions(ns, name, API_2, None).await;
    w.cluster.two_revisions(ns, "cart", API_2, None).await;
    set_switch(&w.moto, "off").await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let before = w.cluster.deployment(ns, name);
    let seen = w.cluster.server.requests().len();
    let notified = w.inbox.all().await.len();

    let r = remediate(w, "rollback-switched-off", "rollback", ns, name).await;
    assert_succeeded(&r);
    let out = &r["output"];
    assert_eq!(out["status"], "disabled", "{out:#}");
    assert_eq!(
        out["message"],
        format!("selfheal is switched off (SSM parameter {SWITCH} = off); nothing was done")
    );
    assert_eq!(out["target"]["deployment"], name, "{out:#}");
    let visited = states(&r);
    assert_eq!(
        visited.last().map(String::as_str),
        Some("SwitchedOff"),
        "{visited:?}"
    );
    for quiet in ["ReportResult", "ReportFailure", "Verify"] {
        assert!(
            !visited.contains(&quiet.to_owned()),
            "{quiet} ran: {visited:?}"
        );
    }

    let fleet = json!({
        "request": { "action": "rollback", "reason": format!("{TEST}: fleet switched off") },
        "targets": [
            {"cluster": CLUSTER, "namespace": ns, "deployment": name, "container": "api"},
            {"cluster": CLUSTER, "namespace": ns, "deployment": "cart", "container": "api"}
        ]
    });
    let f = w
        .runner
        .run("remediate-fleet", "fleet-switched-off", &fleet)
        .await;
    assert_succeeded(&f);
    let results = f["output"]["results"].as_array().expect("results");
    assert_eq!(results.len(), 2, "{f:#}");
    for res in results {
        assert_eq!(res["status"], "succeeded", "{res:#}");
        assert_eq!(res["outcome"]["status"], "disabled", "{res:#}");
    }

    let touched: Vec<String> = w
        .cluster
        .server
        .requests()
        .into_iter()
        .skip(seen)
        .filter(|q| q.path.contains(&format!("/namespaces/{ns}/")))
        .map(|q| format!("{} {}", q.method, q.path))
        .collect();
    assert!(
        touched.is_empty(),
        "switched off, yet the API server saw {touched:?}"
    );
    let after = w.cluster.deployment(ns, name);
    assert_eq!(container_image(&after, "api"), API_2);
    assert_eq!(
        after.metadata.resource_version,
        before.metadata.resource_version
    );
    let messages = w.inbox.all().await;
    assert_eq!(
        messages.len(),
        notified + 1,
        "switched off: only the fleet's summary, got {:#?}",
        &messages[notified..]
    );
}

async fn set_switch(moto: &Moto, value: &str) {
    moto.json_call(
        "AmazonSSM",
        "PutParameter",
        &json!({"Name": SWITCH, "Type": "String", "Value": value, "Overwrite": true}),
    )
    .await;
}

struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        kill_group(&mut self.0);
    }
}

// ------------------------------------------------------------------- test --

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn state_machines_run_end_to_end_with_the_real_handlers() {
    let Some(tools) = tool_or_skip(TEST, find_tools()) else {
        return;
    };
    let total = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let bins = tokio::task::spawn_blocking(build_workspace_bins)
        .await
        .unwrap();
    for f in FUNCTIONS {
        assert!(bins.contains_key(f), "no function binary {f}: {bins:?}");
    }

    // Kubernetes: one test server, one namespace per scenario.
    let server = TestServer::builder()
        .controller(ControllerConfig::never_ready_image(API_BROKEN))
        .start()
        .await
        .expect("start test server");
    let kubeconfig = dir.path().join("kubeconfig");
    server.write_kubeconfig(&kubeconfig).unwrap();
    let admin = selfheal_kube::client_from_kubeconfig(Some(&kubeconfig), None)
        .await
        .unwrap();

    // AWS: moto for SNS (+SQS to read it), SSM (approval records), Step Functions (ingest).
    let moto = Arc::new(Moto::start(&tools.moto, &dir.path().join("moto.log")).await);
    let inbox = Inbox::create(moto.clone()).await;
    let sm_arn = {
        let created = moto
            .json_call(
                "AWSStepFunctions",
                "CreateStateMachine",
                &json!({
                    "name": "remediate-deployment",
                    "definition": std::fs::read_to_string(workspace_root().join("statemachines/remediate-deployment.asl.json")).unwrap(),
                    "roleArn": format!("arn:aws:iam::{ACCOUNT}:role/selfheal-states"),
                }),
            )
            .await;
        created["stateMachineArn"].as_str().expect("arn").to_owned()
    };

    set_switch(&moto, "on").await;

    let emulator_port = free_port();
    let runner = Runner::start_with(
        &tools.node,
        &format!("http://127.0.0.1:{emulator_port}"),
        "statemachine_e2e",
        &[
            ("SELFHEAL_MOTO_URL", moto.url.as_str()),
            ("SELFHEAL_ASL_REGION", REGION),
            ("SELFHEAL_ASL_ACCOUNT", ACCOUNT),
            ("SELFHEAL_ASL_LOG", "1"),
        ],
    );
    let env: Vec<(&str, String)> = vec![
        ("SELFHEAL_KUBECONFIG", kubeconfig.display().to_string()),
        ("SELFHEAL_COOLDOWN_SECONDS", "0".into()),
        ("AWS_LAMBDA_LOG_FORMAT", "JSON".into()),
        ("AWS_LAMBDA_LOG_LEVEL", "info".into()),
        ("AWS_REGION", REGION.into()),
        ("AWS_DEFAULT_REGION", REGION.into()),
        ("AWS_ACCESS_KEY_ID", "testing".into()),
        ("AWS_SECRET_ACCESS_KEY", "testing".into()),
        ("AWS_ENDPOINT_URL", moto.url.clone()),
        // Callbacks reach the interpreter; other Step Functions calls are proxied to moto.
        ("AWS_ENDPOINT_URL_SFN", runner.url().to_owned()),
        ("SELFHEAL_TOPIC_ARN", inbox.topic_arn.clone()),
        (
            "SELFHEAL_APPROVAL_URL",
            format!("http://127.0.0.1:{emulator_port}/lambda-url/approve"),
        ),
        ("SELFHEAL_STATE_MACHINE_ARN", sm_arn.clone()),
        ("SELFHEAL_WEBHOOK_SECRET", WEBHOOK_SECRET.into()),
        ("SELFHEAL_DEFAULT_CLUSTER", CLUSTER.into()),
        ("SELFHEAL_SWITCH_PARAMETER", SWITCH.into()),
        ("SELFHEAL_SWITCH_CACHE_SECONDS", "1".into()),
    ];
    let emulator = Emulator::start(
        &tools.cargo_lambda,
        emulator_port,
        &env,
        dir.path().join("watch.log"),
    )
    .await;

    // Warm every function once (cold start + the emulator's `cargo run`
    // freshness check), so no Task state's TimeoutSeconds covers it.
    for f in [
        "rollback", "pause", "resume", "restart", "verify", "notify", "approve", "ingest",
    ] {
        let (status, body) = emulator.invoke(f, &json!({"warmUp": true})).await;
        assert!(
            status == 200 || body["errorType"].is_string(),
            "{f} did not start: {status} {body}\n{}",
            emulator.log_text()
        );
    }

    let world = Arc::new(World {
        cluster: Cluster { server, admin },
        runner,
        emulator,
        inbox,
        moto,
    });

    // All scenarios at once, each on its own namespace; failures collected.
    macro_rules! scenario {
        ($name:literal, $body:expr) => {{
            let w = world.clone();
            let handle = tokio::spawn(async move {
                let started = Instant::now();
                #[allow(clippy::redundant_closure_call)]
                ($body)(w).await;
                started.elapsed()
            });
            ($name, handle)
        }};
    }
    let alert_dir = dir.path().to_path_buf();
    let am = tools.alertmanager.clone();
    let sm = sm_arn.clone();
    let handles = vec![
        scenario!("rollback succeeds", |w: Arc<World>| async move {
            rollback_succeeds(&w).await
        }),
        scenario!("restart never ready -> escalated rollback", |w: Arc<
            World,
        >| async move {
            restart_escalates(&w).await
        }),
        scenario!("rollback with no safe image -> notify + Fail", |w: Arc<
            World,
        >| async move {
            no_safe_image(&w).await
        }),
        scenario!("pause -> approve -> rollback", |w: Arc<World>| async move {
            pause_approve_rollback(&w).await
        }),
        scenario!("approval denied", |w: Arc<World>| async move {
            approval_denied(&w).await
        }),
        scenario!("dry run", |w: Arc<World>| async move { dry_run(&w).await }),
        scenario!(
            "two-image release, api crash-loops -> approved rollback of api only",
            |w: Arc<World>| async move { evidence_picks_the_failing_container(&w).await }
        ),
        scenario!(
            "fleet of 20 in 3 namespaces, 1 malformed cluster ARN",
            |w: Arc<World>| async move {
                fleet(&w).await;
            }
        ),
        scenario!("alertmanager -> ingest -> rollback", move |w: Arc<
            World,
        >| async move {
            alertmanager_to_rollback(&w, &am, &alert_dir, &sm).await
        }),
    ];
    let mut failures = Vec::new();
    for (name, handle) in handles {
        match handle.await {
            Ok(took) => eprintln!("{TEST}: ok   {name} ({took:?})"),
            Err(e) => {
                let why = e
                    .try_into_panic()
                    .ok()
                    .and_then(|p| {
                        p.downcast_ref::<String>()
                            .cloned()
                            .or_else(|| p.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                    })
                    .unwrap_or_else(|| "cancelled".into());
                eprintln!("{TEST}: FAIL {name}: {why}");
                failures.push(name);
            }
        }
    }
    if !failures.is_empty() {
        eprintln!(
            "--- runner log ---\n{}\n--- emulator log (tail) ---\n{}",
            std::fs::read_to_string(world.runner.log()).unwrap_or_default(),
            tail(&world.emulator.log_text(), 150)
        );
    }
    eprintln!("{TEST}: {} scenarios in {:?}", 9, total.elapsed());
    assert!(failures.is_empty(), "failed scenarios: {failures:?}");

    let started = Instant::now();
    switched_off(&world).await;
    eprintln!("{TEST}: ok   switched off ({:?})", started.elapsed());

    // No credential in any function's log: not the webhook secret, not the
    // cluster's bearer token, not an approval link's id (whoever has it can
    // decide), nor anything token-shaped.
    let cluster_token = world.cluster.server.token();
    let approval_ids: Vec<String> = world
        .inbox
        .all()
        .await
        .iter()
        .flat_map(|n| {
            let text = n.to_string();
            ["approve", "deny"]
                .into_iter()
                .filter_map(|d| find_link(&text, d))
                .collect::<Vec<_>>()
        })
        .filter_map(|link| {
            link.split(['?', '&'])
                .find_map(|kv| kv.strip_prefix("id=").map(str::to_owned))
        })
        .collect();
    assert!(
        !approval_ids.is_empty(),
        "the approval scenarios sent no link"
    );
    let mut secrets: Vec<&str> = vec![WEBHOOK_SECRET, &cluster_token];
    secrets.extend(approval_ids.iter().map(String::as_str));
    selfheal_tests::secrets::assert_no_leaks(
        "every function of the state machines",
        &world.emulator.log_text(),
        &secrets,
    );
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
