//! kubectl parity: the real `kubectl` (Debian's kubernetes-client 1.20, installed
//! privately by scripts/deps/10-kubectl.sh) runs against the project's test API
//! server, and every step must end exactly as the recordings of a real control
//! plane in tests/fixtures/k8s/ say (pause-resume-restart.*, rollout-history.*,
//! status-progression.json, statefulset-kubectl.*, daemonset-kubectl.*): exit
//! code, message, the patch kubectl sent, and the resulting workload and its
//! ReplicaSets or ControllerRevisions.
//!
//! Why: docs/kubectl-semantics.md defines our `scope: "template"` rollback, pause, resume
//! and restart as "what kubectl does"; if the test server answers kubectl the way
//! the real server did, the server is a faithful stand-in for our own tests.
//!
//! The recordings were made with kubectl 1.32.4; this runs 1.20.2. Where the two
//! versions print or send something different, the assertion says so.
//!
//! The kubectl binary comes from `SELFHEAL_KUBECTL` or `.tools/kubectl/`. When it
//! is missing the tests are skipped with a message, unless
//! `SELFHEAL_REQUIRE_TOOLS` is set (scripts/test sets it), in which case they fail.

// A test harness: failing loudly at the first broken expectation is the point.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, ApiResource, DynamicObject, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use selfheal_tests::recordings::{assert_logged_body, last_line, load};
use selfheal_tests::tools::{kubectl_binary, tool_or_skip};
use selfheal_testserver::{ControllerConfig, RecordedRequest, TestServer, fixtures};
use serde_json::{Value, json};

const REVISION: &str = "deployment.kubernetes.io/revision";
const REVISION_HISTORY: &str = "deployment.kubernetes.io/revision-history";
const RESTARTED_AT: &str = "kubectl.kubernetes.io/restartedAt";
const TOUCH: &str = "fixtures.example/touch";
const CHECKOUT_PATH: &str = "/apis/apps/v1/namespaces/shop/deployments/checkout";

const API_100: &str = "registry.example/shop/api:1.0.0";
const API_110: &str = "registry.example/shop/api:1.1.0";
const API_120: &str = "registry.example/shop/api:1.2.0";
const ENVOY_127: &str = "registry.example/envoy:1.27";
const ENVOY_128: &str = "registry.example/envoy:1.28";
/// Pods running this image never turn ready (the test server's controller is told so).
const NEVER_READY_IMAGE: &str = "registry.example/shop/stuck:never-ready";

// ------------------------------------------------------------------ kubectl --

/// `Some(kubectl)` to run the test, `None` to skip it (loudly). Panics when the
/// tool is required (CI) but absent, so a broken install cannot pass.
fn kubectl_or_skip(test: &str) -> Option<PathBuf> {
    tool_or_skip(test, kubectl_binary())
}

#[derive(Debug)]
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

/// A kubectl bound to one test server through a private kubeconfig and cache dir.
#[derive(Debug)]
struct Kubectl {
    bin: PathBuf,
    kubeconfig: PathBuf,
    cache_dir: PathBuf,
}

impl Kubectl {
    /// Starts kubectl on a blocking thread: the test server lives on this
    /// runtime and must keep answering while kubectl waits for it.
    fn spawn(&self, args: &[&str]) -> tokio::task::JoinHandle<Run> {
        let mut cmd = Command::new(&self.bin);
        cmd.arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .arg("--cache-dir")
            .arg(&self.cache_dir)
            .arg("--request-timeout=30s")
            .args(args)
            .env_remove("KUBECONFIG");
        // Debugging aid: SELFHEAL_KUBECTL_V=8 shows kubectl's requests in the test output.
        if let Ok(level) = std::env::var("SELFHEAL_KUBECTL_V") {
            cmd.arg(format!("-v={level}"));
        }
        let shown = format!("kubectl {}", args.join(" "));
        tokio::task::spawn_blocking(move || {
            let out = cmd.output().expect("spawn kubectl");
            let run = Run {
                code: out.status.code().unwrap_or(-1),
                stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
                stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            };
            eprintln!(
                "$ {shown}\n  exit {}\n  stdout: {:?}\n  stderr: {:?}",
                run.code, run.stdout, run.stderr
            );
            run
        })
    }

    async fn run(&self, args: &[&str]) -> Run {
        self.spawn(args).await.expect("join kubectl thread")
    }

    /// Runs and requires exit 0 with exactly `stdout` (one line).
    async fn ok(&self, args: &[&str], stdout: &str) -> Run {
        let run = self.run(args).await;
        assert_eq!(run.code, 0, "kubectl {args:?} failed: {run:?}");
        assert_eq!(run.stdout.trim_end(), stdout, "kubectl {args:?} output");
        run
    }
}

// ------------------------------------------------------------------ cluster --

/// The test server, a kubectl pointed at it, and a kube client for the setup
/// writes (the recordings made those with curl, not kubectl).
struct Cluster {
    server: TestServer,
    kubectl: Kubectl,
    client: kube::Client,
    _dir: tempfile::TempDir,
}

impl Cluster {
    async fn start(bin: PathBuf) -> Self {
        Self::start_with(bin, ControllerConfig::default()).await
    }

    async fn start_with(bin: PathBuf, controller: ControllerConfig) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let kubeconfig = dir.path().join("kubeconfig");
        // TLS because kubectl only sends the kubeconfig's token over HTTPS.
        let server = TestServer::builder()
            .tls(true)
            .controller(controller)
            .start()
            .await
            .expect("start test server");
        server
            .write_kubeconfig(&kubeconfig)
            .expect("write kubeconfig");
        let config = kube::Config::from_custom_kubeconfig(
            Kubeconfig::read_from(&kubeconfig).expect("read kubeconfig"),
            &KubeConfigOptions::default(),
        )
        .await
        .expect("kube config from kubeconfig");
        let client = kube::Client::try_from(config).expect("kube client");
        let kubectl = Kubectl {
            bin,
            kubeconfig,
            cache_dir: dir.path().join("kube-cache"),
        };
        Cluster {
            server,
            kubectl,
            client,
            _dir: dir,
        }
    }

    fn deployments(&self, ns: &str) -> Api<Deployment> {
        Api::namespaced(self.client.clone(), ns)
    }

    /// Lets the controller emulation finish the rollout (pods turn ready).
    async fn settle(&self) {
        assert!(
            self.server.controller().settle().await,
            "controller did not reach a steady state"
        );
    }

    fn deployment(&self, ns: &str, name: &str) -> Deployment {
        self.server
            .deployment(ns, name)
            .unwrap_or_else(|| panic!("deployment {ns}/{name} missing"))
    }

    /// The Deployment's ReplicaSets keyed by revision number.
    fn revisions(&self, ns: &str, app: &str) -> BTreeMap<u32, ReplicaSet> {
        let mut by_revision = BTreeMap::new();
        for rs in self.server.replica_sets(ns) {
            if rs
                .metadata
                .labels
                .as_ref()
                .and_then(|l| l.get("app"))
                .map(String::as_str)
                != Some(app)
            {
                continue;
            }
            let revision: u32 = annotation(&rs.metadata.annotations, REVISION)
                .expect("ReplicaSet without revision annotation")
                .parse()
                .expect("numeric revision");
            let previous = by_revision.insert(revision, rs);
            assert!(
                previous.is_none(),
                "two ReplicaSets with revision {revision}"
            );
        }
        by_revision
    }

    /// Mutating requests (anything but GET) the server saw since the last clear.
    fn writes(&self) -> Vec<RecordedRequest> {
        self.server
            .requests()
            .into_iter()
            .filter(|r| r.method != "GET")
            .collect()
    }
}

fn query<'a>(request: &'a RecordedRequest, key: &str) -> Option<&'a str> {
    request.query.get(key).map(String::as_str)
}

fn annotation(map: &Option<BTreeMap<String, String>>, key: &str) -> Option<String> {
    map.as_ref()?.get(key).cloned()
}

fn images(template_spec: Option<&k8s_openapi::api::core::v1::PodSpec>) -> Vec<String> {
    template_spec
        .map(|spec| {
            spec.containers
                .iter()
                .map(|c| format!("{}={}", c.name, c.image.clone().unwrap_or_default()))
                .collect()
        })
        .unwrap_or_default()
}

fn rs_images(rs: &ReplicaSet) -> Vec<String> {
    images(
        rs.spec
            .as_ref()
            .and_then(|s| s.template.as_ref())
            .and_then(|t| t.spec.as_ref()),
    )
}

fn rs_replicas(rs: &ReplicaSet) -> i32 {
    rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
}

fn deploy_images(d: &Deployment) -> Vec<String> {
    images(d.spec.as_ref().and_then(|s| s.template.spec.as_ref()))
}

fn pair(api: &str, envoy: &str) -> Vec<String> {
    vec![format!("api={api}"), format!("envoy={envoy}")]
}

fn generation(d: &Deployment) -> i64 {
    d.metadata.generation.expect("generation")
}

fn paused(d: &Deployment) -> bool {
    d.spec.as_ref().and_then(|s| s.paused).unwrap_or(false)
}

fn progressing(d: &Deployment) -> (String, String) {
    let c = d
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.type_ == "Progressing"))
        .expect("Progressing condition");
    (c.status.clone(), c.reason.clone().unwrap_or_default())
}

fn template_annotations(d: &Deployment) -> BTreeMap<String, String> {
    d.spec
        .as_ref()
        .and_then(|s| s.template.metadata.as_ref())
        .and_then(|m| m.annotations.clone())
        .unwrap_or_default()
}

fn annotations(d: &Deployment) -> BTreeMap<String, String> {
    d.metadata.annotations.clone().unwrap_or_default()
}

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// The one PATCH kubectl sent to Deployment checkout since the last clear.
fn single_patch(cluster: &Cluster) -> RecordedRequest {
    let writes = cluster.writes();
    assert_eq!(
        writes.len(),
        1,
        "expected exactly one write, got {writes:#?}"
    );
    let patch = writes.into_iter().next().expect("one write");
    assert_eq!(patch.method, "PATCH");
    assert_eq!(patch.path, CHECKOUT_PATH);
    patch
}

/// The one PATCH kubectl sent since the last clear, sent as `content_type`.
fn single_patch_as(cluster: &Cluster, content_type: &str) -> RecordedRequest {
    let patch = single_patch(cluster);
    assert_eq!(patch.content_type.as_deref(), Some(content_type));
    patch
}

/// The one strategic merge patch `kubectl rollout` sent since the last clear,
/// under its field manager.
fn single_rollout_smp(cluster: &Cluster) -> RecordedRequest {
    let patch = single_patch_as(cluster, "application/strategic-merge-patch+json");
    assert_eq!(query(&patch, "fieldManager"), Some("kubectl-rollout"));
    patch
}

/// Runs `kubectl rollout VERB` on shop/checkout, which must print `stdout`,
/// and returns the one strategic merge patch it sent.
async fn rollout_smp(cluster: &Cluster, verb: &str, stdout: &str) -> RecordedRequest {
    fresh_ok(cluster, &checkout_rollout(verb), stdout).await;
    single_rollout_smp(cluster)
}

/// shop/checkout once the controller has settled.
async fn settled_checkout(cluster: &Cluster) -> Deployment {
    cluster.settle().await;
    cluster.deployment("shop", "checkout")
}

/// Clears the request log, then runs kubectl, which must print `stdout`.
async fn fresh_ok(cluster: &Cluster, args: &[&str], stdout: &str) -> Run {
    cluster.server.clear_requests();
    cluster.kubectl.ok(args, stdout).await
}

/// Revision `revision` is the ReplicaSet `name`, renumbered: its earlier
/// numbers are `history`.
fn assert_reused(revs: &BTreeMap<u32, ReplicaSet>, revision: u32, name: &str, history: &str) {
    assert_eq!(revs[&revision].metadata.name.as_deref(), Some(name));
    assert_eq!(
        rs_annotation(&revs[&revision], REVISION_HISTORY).as_deref(),
        Some(history)
    );
}

/// The rollout moved both replicas from revision `from` to revision `to`.
fn assert_rolled_over(revs: &BTreeMap<u32, ReplicaSet>, to: u32, from: u32) {
    assert_eq!(rs_replicas(&revs[&to]), 2);
    assert_eq!(rs_replicas(&revs[&from]), 0);
}

/// The JSON Patch `kubectl rollout undo` sends: the target revision's pod
/// template and the annotations it carries.
fn undo_patch(api: &str, envoy: &str, annotations: Value) -> Value {
    json!([
        {"op": "replace", "path": "/spec/template", "value": recorded_undo_template(api, envoy)},
        {"op": "replace", "path": "/metadata/annotations", "value": annotations}
    ])
}

/// The revision numbers present, ascending.
fn revision_numbers(revs: &BTreeMap<u32, ReplicaSet>) -> Vec<u32> {
    revs.keys().copied().collect()
}

fn rs_annotation(rs: &ReplicaSet, key: &str) -> Option<String> {
    annotation(&rs.metadata.annotations, key)
}

/// `kubectl rollout VERB` of Deployment shop/checkout.
fn checkout_rollout(verb: &str) -> [&str; 5] {
    ["rollout", verb, "deployment/checkout", "-n", "shop"]
}

// ------------------------------------------------------------------ setup ----

/// The Deployment as POSTed in create-and-history.json (server fills defaults).
fn checkout_deployment() -> Deployment {
    fixtures::checkout(API_100, ENVOY_127)
        .recorded_ports()
        .deployment()
}

async fn create_namespace(cluster: &Cluster, name: &str) {
    let ns: Namespace = serde_json::from_value(
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}),
    )
    .expect("valid Namespace");
    Api::<Namespace>::all(cluster.client.clone())
        .create(&PostParams::default(), &ns)
        .await
        .expect("create namespace");
}

/// Replays the writes of create-and-history.json, json-patch-single-container.json
/// and conflict.json on `checkout`, so the starting state of
/// pause-resume-restart.json is reached the same way: revision 5 = api 1.1.0 +
/// envoy 1.28 (the old revision-3 ReplicaSet, `revision-history: "3"`), and the
/// annotation `fixtures.example/touch` copied onto that ReplicaSet while the
/// Deployment carried it.
async fn build_checkout_history(cluster: &Cluster) {
    create_namespace(cluster, "shop").await;
    let api = cluster.deployments("shop");

    // Revision 1.
    api.create(&PostParams::default(), &checkout_deployment())
        .await
        .expect("create checkout");
    cluster.settle().await;

    // Revision 2: full PUT of the live object (status dropped), api -> 1.1.0.
    let mut live = api.get("checkout").await.expect("get checkout");
    live.status = None;
    live.spec
        .as_mut()
        .expect("spec")
        .template
        .spec
        .as_mut()
        .expect("pod spec")
        .containers[0]
        .image = Some(API_110.to_owned());
    api.replace("checkout", &PostParams::default(), &live)
        .await
        .expect("PUT checkout");
    cluster.settle().await;

    // Revision 3: strategic merge patch, envoy -> 1.28 (merged by name).
    patch_checkout(
        cluster,
        &container_image("envoy", ENVOY_128),
        "SMP envoy 1.28",
    )
    .await;

    // Revision 4: strategic merge patch, api -> 1.2.0.
    patch_checkout(cluster, &container_image("api", API_120), "SMP api 1.2.0").await;

    // Revision 5: the single-container JSON Patch back to api 1.1.0; the
    // controller reuses the revision-3 ReplicaSet.
    let patch: json_patch::Patch = serde_json::from_value(json!([
        {"op": "test", "path": "/spec/template/spec/containers/0/name", "value": "api"},
        {"op": "test", "path": "/spec/template/spec/containers/0/image", "value": API_120},
        {"op": "replace", "path": "/spec/template/spec/containers/0/image", "value": API_110}
    ]))
    .expect("valid JSON Patch");
    patch_checkout(cluster, &Patch::<()>::Json(patch), "JSON patch api 1.1.0").await;

    // conflict.json: an annotation added by merge patch, then removed with null.
    patch_checkout(
        cluster,
        &Patch::Merge(json!({"metadata": {"annotations": {TOUCH: "1"}}})),
        "merge patch annotation",
    )
    .await;
    patch_checkout(
        cluster,
        &Patch::Merge(json!({"metadata": {"annotations": {TOUCH: null}}})),
        "merge patch annotation removal",
    )
    .await;
}

/// `Some(cluster)` holding the `checkout` history of
/// [`build_checkout_history`], or `None` to skip `test` (see [`kubectl_or_skip`]).
async fn checkout_history_or_skip(test: &str) -> Option<Cluster> {
    let cluster = Cluster::start(kubectl_or_skip(test)?).await;
    build_checkout_history(&cluster).await;
    Some(cluster)
}

/// A Deployment `app` in `namespace`, selecting and labelled `app=APP`,
/// running `containers`.
fn app_deployment(namespace: &str, app: &str, replicas: i32, containers: Value) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": app, "namespace": namespace, "labels": {"app": app}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": app}},
            "template": {
                "metadata": {"labels": {"app": app}},
                "spec": {"containers": containers}
            }
        }
    })
}

/// Creates `deployment` (JSON) and lets the controller settle.
async fn create_settled(cluster: &Cluster, deployment: Value) {
    let deployment: Deployment = serde_json::from_value(deployment).expect("valid Deployment");
    let namespace = deployment.metadata.namespace.clone().expect("namespace");
    cluster
        .deployments(&namespace)
        .create(&PostParams::default(), &deployment)
        .await
        .expect("create Deployment");
    cluster.settle().await;
}

/// The pod template kubectl sends back on `undo` (the ReplicaSet's template,
/// server defaults included, `pod-template-hash` removed), as recorded.
fn recorded_undo_template(api: &str, envoy: &str) -> Value {
    let container = |name: &str, image: &str, port: u16| {
        json!({
            "name": name, "image": image,
            "ports": [{"containerPort": port, "protocol": "TCP"}],
            "resources": {},
            "terminationMessagePath": "/dev/termination-log",
            "terminationMessagePolicy": "File",
            "imagePullPolicy": "IfNotPresent"
        })
    };
    json!({
        "metadata": {"creationTimestamp": null, "labels": {"app": "checkout"}},
        "spec": {
            "containers": [container("api", api, 8080), container("envoy", envoy, 9901)],
            "restartPolicy": "Always",
            "terminationGracePeriodSeconds": 30,
            "dnsPolicy": "ClusterFirst",
            "securityContext": {},
            "schedulerName": "default-scheduler"
        }
    })
}

/// A strategic merge patch setting the image of container `name` (merged by
/// name, the other containers untouched).
fn container_image(name: &str, image: &str) -> Patch<Value> {
    Patch::Strategic(json!({"spec": {"template": {"spec": {"containers": [
        {"name": name, "image": image}]}}}}))
}

/// Applies `patch` to shop/checkout and lets the controller settle.
async fn patch_checkout<P: serde::Serialize + std::fmt::Debug>(
    cluster: &Cluster,
    patch: &Patch<P>,
    what: &str,
) {
    cluster
        .deployments("shop")
        .patch("checkout", &PatchParams::default(), patch)
        .await
        .expect(what);
    cluster.settle().await;
}

// ------------------------------------------------------------------ tests ----

/// pause-resume-restart.json, step by step: pause, restart refused while
/// paused, resume, restart, undo, undo --to-revision=1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_restart_resume_undo_match_recording() {
    let Some(cluster) = checkout_history_or_skip("pause_restart_resume_undo_match_recording").await
    else {
        return;
    };
    let k = &cluster.kubectl;

    // Starting state of the recording.
    let start = cluster.deployment("shop", "checkout");
    assert_eq!(annotations(&start), map(&[(REVISION, "5")]));
    assert_eq!(deploy_images(&start), pair(API_110, ENVOY_128));
    let revs = cluster.revisions("shop", "checkout");
    assert_eq!(revision_numbers(&revs), vec![1, 2, 4, 5]);
    assert_eq!(rs_images(&revs[&1]), pair(API_100, ENVOY_127));
    assert_eq!(rs_images(&revs[&2]), pair(API_110, ENVOY_127));
    assert_eq!(rs_images(&revs[&4]), pair(API_120, ENVOY_128));
    assert_eq!(rs_images(&revs[&5]), pair(API_110, ENVOY_128));
    assert_eq!(
        rs_annotation(&revs[&5], REVISION_HISTORY).as_deref(),
        Some("3")
    );
    assert_eq!(
        rs_annotation(&revs[&5], TOUCH).as_deref(),
        Some("1"),
        "the controller copies Deployment annotations onto the current ReplicaSet (and never removes them)"
    );
    let rev5_name = revs[&5].metadata.name.clone().expect("name");
    let rev1_name = revs[&1].metadata.name.clone().expect("name");

    // 1. pause: SMP {"spec":{"paused":true}} with fieldManager=kubectl-rollout.
    let patch = rollout_smp(&cluster, "pause", "deployment.apps/checkout paused").await;
    assert_eq!(patch.body, Some(json!({"spec": {"paused": true}})));
    let after_pause = settled_checkout(&cluster).await;
    assert!(paused(&after_pause));
    assert_eq!(generation(&after_pause), generation(&start) + 1);
    assert_eq!(
        progressing(&after_pause),
        ("Unknown".to_owned(), "DeploymentPaused".to_owned())
    );
    assert_eq!(annotations(&after_pause), map(&[(REVISION, "5")]));
    assert_eq!(
        revision_numbers(&cluster.revisions("shop", "checkout")),
        vec![1, 2, 4, 5]
    );

    // 2. restart while paused: refused on the client after one GET, no PATCH.
    cluster.server.clear_requests();
    let run = k.run(&checkout_rollout("restart")).await;
    assert_eq!(run.code, 1, "{run:?}");
    assert_eq!(run.stdout, "");
    assert_eq!(
        run.stderr.trim_end(),
        r#"error: deployments.apps "checkout" can't restart paused deployment (run rollout resume first)"#
    );
    assert_eq!(
        cluster.writes().len(),
        0,
        "restart of a paused Deployment must not write"
    );
    let after_refusal = cluster.deployment("shop", "checkout");
    assert_eq!(
        after_refusal.metadata.resource_version,
        after_pause.metadata.resource_version
    );

    // 3. resume: SMP {"spec":{"paused":null}}.
    let patch = rollout_smp(&cluster, "resume", "deployment.apps/checkout resumed").await;
    assert_eq!(patch.body, Some(json!({"spec": {"paused": null}})));
    let after_resume = settled_checkout(&cluster).await;
    assert!(!paused(&after_resume));
    assert_eq!(generation(&after_resume), generation(&after_pause) + 1);
    assert_eq!(
        progressing(&after_resume),
        ("True".to_owned(), "NewReplicaSetAvailable".to_owned())
    );
    assert_eq!(
        revision_numbers(&cluster.revisions("shop", "checkout")),
        vec![1, 2, 4, 5],
        "resume alone creates no revision"
    );

    // 4. restart: SMP adding the template annotation restartedAt -> revision 6.
    let patch = rollout_smp(&cluster, "restart", "deployment.apps/checkout restarted").await;
    let body = patch.body.clone().expect("restart body");
    let restarted_at = body
        .pointer("/spec/template/metadata/annotations")
        .and_then(|a| a.get(RESTARTED_AT))
        .and_then(Value::as_str)
        .expect("restartedAt in patch")
        .to_owned();
    assert_eq!(
        body,
        json!({"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: restarted_at}}}}}),
        "restart sends only the annotation"
    );
    restarted_at
        .parse::<jiff::Timestamp>()
        .expect("restartedAt is RFC 3339");
    let after_restart = settled_checkout(&cluster).await;
    assert_eq!(annotations(&after_restart), map(&[(REVISION, "6")]));
    assert_eq!(
        template_annotations(&after_restart),
        map(&[(RESTARTED_AT, &restarted_at)])
    );
    let revs = cluster.revisions("shop", "checkout");
    assert_eq!(revision_numbers(&revs), vec![1, 2, 4, 5, 6]);
    assert_eq!(rs_images(&revs[&6]), pair(API_110, ENVOY_128));
    assert_rolled_over(&revs, 6, 5);

    // 5. undo: GET, LIST replicasets, one JSON Patch replacing the template and
    // the annotations; reuses the revision-5 ReplicaSet as revision 7.
    fresh_ok(
        &cluster,
        &checkout_rollout("undo"),
        "deployment.apps/checkout rolled back",
    )
    .await;
    let requests = cluster.server.requests();
    assert!(
        requests.iter().any(|r| r.method == "GET"
            && r.path == "/apis/apps/v1/namespaces/shop/replicasets"
            && query(r, "labelSelector") == Some("app=checkout")),
        "undo lists ReplicaSets by the Deployment's selector: {requests:#?}"
    );
    let patch = single_patch_as(&cluster, "application/json-patch+json");
    assert_eq!(
        query(&patch, "fieldManager"),
        None,
        "undo sends no fieldManager"
    );
    assert_eq!(
        patch.body,
        Some(undo_patch(
            API_110,
            ENVOY_128,
            json!({REVISION: "6", TOUCH: "1"})
        )),
        "pause-resume-restart.5-undo.log request body"
    );
    let after_undo = settled_checkout(&cluster).await;
    assert_eq!(
        annotations(&after_undo),
        map(&[(REVISION, "7"), (TOUCH, "1")]),
        "the ReplicaSet's copied annotation came back onto the Deployment"
    );
    assert_eq!(deploy_images(&after_undo), pair(API_110, ENVOY_128));
    assert_eq!(template_annotations(&after_undo), BTreeMap::new());
    let revs = cluster.revisions("shop", "checkout");
    assert_eq!(revision_numbers(&revs), vec![1, 2, 4, 6, 7]);
    assert_reused(&revs, 7, &rev5_name, "3,5");
    assert_rolled_over(&revs, 7, 6);

    // 6. undo --to-revision=1: the revision-1 ReplicaSet becomes revision 8.
    fresh_ok(
        &cluster,
        &[&checkout_rollout("undo")[..], &["--to-revision=1"]].concat(),
        "deployment.apps/checkout rolled back",
    )
    .await;
    let patch = single_patch_as(&cluster, "application/json-patch+json");
    assert_eq!(
        patch.body,
        Some(undo_patch(API_100, ENVOY_127, json!({REVISION: "7"}))),
        "pause-resume-restart.6-undo-to-revision-1.log request body"
    );
    let after_undo1 = settled_checkout(&cluster).await;
    assert_eq!(annotations(&after_undo1), map(&[(REVISION, "8")]));
    assert_eq!(deploy_images(&after_undo1), pair(API_100, ENVOY_127));
    let revs = cluster.revisions("shop", "checkout");
    assert_eq!(revision_numbers(&revs), vec![2, 4, 6, 7, 8]);
    assert_reused(&revs, 8, &rev1_name, "1");
    assert_rolled_over(&revs, 8, 7);
    let status = after_undo1.status.clone().expect("status");
    assert_eq!(status.observed_generation, after_undo1.metadata.generation);
    assert_eq!(
        (
            status.replicas,
            status.updated_replicas,
            status.available_replicas
        ),
        (Some(2), Some(2), Some(2))
    );

    // History after all of it: revisions 2, 4, 6, 7, 8 (1 and 5 were renumbered).
    fresh_ok(
        &cluster,
        &checkout_rollout("history"),
        "deployment.apps/checkout \nREVISION  CHANGE-CAUSE\n2         <none>\n4         <none>\n6         <none>\n7         <none>\n8         <none>",
    )
    .await;
    assert_eq!(cluster.writes().len(), 0, "history is read-only");

    // And the rollout is done.
    k.ok(
        &[&checkout_rollout("status")[..], &["--timeout=30s"]].concat(),
        r#"deployment "checkout" successfully rolled out"#,
    )
    .await;
}

/// rollout-history.json: Deployment web (revision 1 = app 1.0.0, revision 2 =
/// app 1.1.0, both with sidecar 1.0.0); `history` and `history --revision=2`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollout_history_matches_recording() {
    let Some(bin) = kubectl_or_skip("rollout_history_matches_recording") else {
        return;
    };
    let cluster = Cluster::start(bin).await;
    create_namespace(&cluster, "watchdemo").await;
    let web = app_deployment(
        "watchdemo",
        "web",
        2,
        json!([
            {"name": "app", "image": "registry.example/watchdemo/app:1.0.0",
             "ports": [{"containerPort": 8080}]},
            {"name": "sidecar", "image": "registry.example/watchdemo/sidecar:1.0.0",
             "ports": [{"containerPort": 9000}]}
        ]),
    );
    create_settled(&cluster, web).await;
    let api = cluster.deployments("watchdemo");
    let patch: json_patch::Patch = serde_json::from_value(json!([
        {"op": "replace", "path": "/spec/template/spec/containers/0/image",
         "value": "registry.example/watchdemo/app:1.1.0"}
    ]))
    .expect("valid JSON Patch");
    api.patch("web", &PatchParams::default(), &Patch::<()>::Json(patch))
        .await
        .expect("patch app 1.1.0");
    cluster.settle().await;
    let k = &cluster.kubectl;

    fresh_ok(
        &cluster,
        &["rollout", "history", "deployment/web", "-n", "watchdemo"],
        "deployment.apps/web \nREVISION  CHANGE-CAUSE\n1         <none>\n2         <none>",
    )
    .await;
    let requests = cluster.server.requests();
    assert_eq!(
        cluster.writes().len(),
        0,
        "history is read-only: {requests:#?}"
    );
    assert!(
        requests.iter().any(
            |r| r.path == "/apis/apps/v1/namespaces/watchdemo/replicasets"
                && query(r, "labelSelector") == Some("app=web")
        ),
        "history lists ReplicaSets by selector: {requests:#?}"
    );

    let revs = cluster.revisions("watchdemo", "web");
    let hash = revs[&2]
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get("pod-template-hash"))
        .cloned()
        .expect("pod-template-hash on revision 2");
    cluster.server.clear_requests();
    let run = k
        .run(&[
            "rollout",
            "history",
            "deployment/web",
            "-n",
            "watchdemo",
            "--revision=2",
        ])
        .await;
    assert_eq!(run.code, 0, "{run:?}");
    // Recorded with kubectl 1.32.4, which also prints "Node-Selectors: <none>" and
    // "Tolerations: <none>" after Volumes; 1.20 stops at Volumes.
    // kubectl's description of one container (no environment, no mounts).
    let container = |name: &str, image: &str, port: u16| {
        format!(
            "\x20  {name}:\n\
             \x20   Image:\t{image}\n\
             \x20   Port:\t{port}/TCP\n\
             \x20   Host Port:\t0/TCP\n\
             \x20   Environment:\t<none>\n\
             \x20   Mounts:\t<none>\n"
        )
    };
    let expected = format!(
        "deployment.apps/web with revision #2\n\
         Pod Template:\n\
         \x20 Labels:\tapp=web\n\
         \tpod-template-hash={hash}\n\
         \x20 Containers:\n\
         {}{}\
         \x20 Volumes:\t<none>",
        container("app", "registry.example/watchdemo/app:1.1.0", 8080),
        container("sidecar", "registry.example/watchdemo/sidecar:1.0.0", 9000),
    );
    assert_eq!(run.stdout.trim_end(), expected);
    assert_eq!(cluster.writes().len(), 0, "history --revision is read-only");
}

/// status-progression.json part 2: a Deployment whose pod never becomes ready
/// and `progressDeadlineSeconds: 10` fails its rollout once the deadline passes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollout_status_reports_progress_deadline_exceeded() {
    let Some(bin) = kubectl_or_skip("rollout_status_reports_progress_deadline_exceeded") else {
        return;
    };
    let config = ControllerConfig::never_ready_image(NEVER_READY_IMAGE);
    let cluster = Cluster::start_with(bin, config).await;
    create_namespace(&cluster, "shop").await;
    let mut stuck = app_deployment(
        "shop",
        "stuck",
        1,
        json!([{"name": "app", "image": NEVER_READY_IMAGE}]),
    );
    stuck["spec"]["progressDeadlineSeconds"] = json!(10);
    create_settled(&cluster, stuck).await;

    // Before the deadline: waiting (docs/kubectl-semantics.md §6), one status check without watch.
    cluster
        .kubectl
        .ok(
            &["rollout", "status", "deployment/stuck", "-n", "shop", "--watch=false"],
            r#"Waiting for deployment "stuck" rollout to finish: 0 of 1 updated replicas are available..."#,
        )
        .await;

    // `rollout status` LISTs, then WATCHes (field selector on the name). Start it
    // while the rollout is still progressing, wait until its watch is open, then
    // move the clock past the deadline: kubectl must see the change on the watch.
    cluster.server.clear_requests();
    let watching = cluster.kubectl.spawn(&[
        "rollout",
        "status",
        "deployment/stuck",
        "-n",
        "shop",
        "--timeout=60s",
    ]);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let watch_open = cluster.server.requests().iter().any(|r| {
            r.path == "/apis/apps/v1/namespaces/shop/deployments"
                && query(r, "watch") == Some("true")
                && query(r, "fieldSelector") == Some("metadata.name=stuck")
        });
        if watch_open {
            break;
        }
        assert!(
            !watching.is_finished(),
            "kubectl rollout status ended before watching"
        );
        assert!(
            tokio::time::Instant::now() < deadline,
            "kubectl never opened a watch: {:#?}",
            cluster.server.requests()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // status-progression.json saw ProgressDeadlineExceeded at about 15 s.
    cluster.server.controller().advance(Duration::from_secs(15));
    let run = watching.await.expect("join kubectl thread");
    assert_eq!(run.code, 1, "{run:?}");
    // First the state from the LIST, then the failure that arrived on the watch.
    assert_eq!(
        run.stdout.trim_end(),
        r#"Waiting for deployment "stuck" rollout to finish: 0 of 1 updated replicas are available..."#
    );
    assert_eq!(
        run.stderr.trim_end(),
        r#"error: deployment "stuck" exceeded its progress deadline"#
    );

    let d = cluster.deployment("shop", "stuck");
    let condition = d
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.type_ == "Progressing"))
        .expect("Progressing condition")
        .clone();
    assert_eq!(
        (condition.status.as_str(), condition.reason.as_deref()),
        ("False", Some("ProgressDeadlineExceeded"))
    );
    let rs_name = cluster.revisions("shop", "stuck")[&1]
        .metadata
        .name
        .clone()
        .expect("name");
    assert_eq!(
        condition.message.as_deref(),
        Some(format!(r#"ReplicaSet "{rs_name}" has timed out progressing."#).as_str())
    );

    // Asked again afterwards, kubectl fails straight from the LIST.
    let run = cluster
        .kubectl
        .run(&[
            "rollout",
            "status",
            "deployment/stuck",
            "-n",
            "shop",
            "--timeout=30s",
        ])
        .await;
    assert_eq!(run.code, 1, "{run:?}");
    assert_eq!(
        run.stderr.trim_end(),
        r#"error: deployment "stuck" exceeded its progress deadline"#
    );
}

/// A selfheal rollback sets `kubernetes.io/change-cause` in its patch, the
/// controller copies it onto the ReplicaSet it rolls out, and `kubectl
/// rollout history` (which reads the ReplicaSets) shows the sentence against
/// that revision only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollout_history_shows_what_selfheal_did() {
    let Some(cluster) = checkout_history_or_skip("rollout_history_shows_what_selfheal_did").await
    else {
        return;
    };
    // Revision 6: a bad api 1.3.0.
    let bad = "registry.example/shop/api:1.3.0";
    patch_checkout(&cluster, &container_image("api", bad), "SMP api 1.3.0").await;

    let policy = selfheal_core::Policy {
        require_opt_in: false,
        ..selfheal_core::Policy::default()
    };
    let request: selfheal_core::RemediationRequest = serde_json::from_value(json!({
        "action": "rollback",
        "target": {"namespace": "shop", "deployment": "checkout", "container": "api"},
        "reason": "5xx above 5%"
    }))
    .expect("request");
    let outcome = selfheal_kube::Remediator::new(cluster.client.clone(), policy)
        .remediate(&request)
        .await
        .expect("rollback");
    assert_eq!(
        outcome.status,
        selfheal_core::OutcomeStatus::Applied,
        "{outcome:?}"
    );
    cluster.settle().await;
    let cause = format!("selfheal rollback: api {bad} -> {API_110} (reason: 5xx above 5%)");
    let revs = cluster.revisions("shop", "checkout");
    assert_eq!(
        revision_numbers(&revs),
        vec![1, 2, 4, 6, 7],
        "the rollback reuses revision 5's ReplicaSet as revision 7"
    );
    assert_eq!(
        rs_annotation(&revs[&7], "kubernetes.io/change-cause"),
        Some(cause.clone())
    );

    cluster.server.clear_requests();
    let run = cluster.kubectl.run(&checkout_rollout("history")).await;
    assert_eq!(run.code, 0, "{run:?}");
    let rows: Vec<(String, String)> = run
        .stdout
        .lines()
        .skip(2)
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let (revision, cause) = l.split_once(' ').expect("two columns");
            (revision.to_owned(), cause.trim().to_owned())
        })
        .collect();
    let none = "<none>".to_owned();
    assert_eq!(
        rows,
        vec![
            ("1".to_owned(), none.clone()),
            ("2".to_owned(), none.clone()),
            ("4".to_owned(), none.clone()),
            ("6".to_owned(), none),
            ("7".to_owned(), cause),
        ],
        "{}",
        run.stdout
    );
    assert_eq!(cluster.writes().len(), 0, "history is read-only");
}

// ------------------------------------------- StatefulSets and DaemonSets --

/// The writes of statefulset-history.json / daemonset-history.json,
/// -json-patch-single-container.json (and for the StatefulSet
/// -partition-pause.json) on `data/<name>`: `(container, image)` per
/// strategic merge patch, then the half-brick JSON Patch of the first
/// container back to `rollback_to`.
struct History {
    kind: &'static str,
    name: &'static str,
    changes: [(&'static str, &'static str); 3],
    rollback_to: &'static str,
}

const LEDGER: History = History {
    kind: "statefulset",
    name: "ledger",
    changes: [
        ("db", "registry.example/data/db:15.2"),
        ("metrics", "registry.example/data/metrics:0.10"),
        ("db", "registry.example/data/db:15.3"),
    ],
    rollback_to: "registry.example/data/db:15.2",
};

const NODE_AGENT: History = History {
    kind: "daemonset",
    name: "node-agent",
    changes: [
        ("agent", "registry.example/obs/agent:2.1"),
        ("shipper", "registry.example/obs/shipper:1.5"),
        ("agent", "registry.example/obs/agent:2.2"),
    ],
    rollback_to: "registry.example/obs/agent:2.1",
};

impl History {
    fn api(&self, cluster: &Cluster) -> Api<DynamicObject> {
        let resource = match self.kind {
            "statefulset" => ApiResource::erase::<StatefulSet>(&()),
            _ => ApiResource::erase::<DaemonSet>(&()),
        };
        Api::namespaced_with(cluster.client.clone(), "data", &resource)
    }

    async fn patch(&self, cluster: &Cluster, patch: &Patch<Value>) {
        self.api(cluster)
            .patch(self.name, &PatchParams::default(), patch)
            .await
            .unwrap_or_else(|e| panic!("{} {patch:?}: {e}", self.name));
        cluster.settle().await;
    }

    fn object(&self, cluster: &Cluster) -> Value {
        let kind = if self.kind == "statefulset" {
            "StatefulSet"
        } else {
            "DaemonSet"
        };
        cluster
            .server
            .object(kind, "data", self.name)
            .expect("workload")
    }

    /// `kubectl rollout VERB <kind>/<name> -n data`, plus `extra`.
    fn rollout<'a>(&'a self, verb: &'a str, extra: &[&'a str]) -> Vec<String> {
        let mut args = vec![
            "rollout".to_owned(),
            verb.to_owned(),
            format!("{}/{}", self.kind, self.name),
            "-n".to_owned(),
            "data".to_owned(),
        ];
        args.extend(extra.iter().map(|a| (*a).to_owned()));
        args
    }

    /// Creates the workload and replays the recorded writes up to the
    /// kubectl session; the StatefulSet also goes through the partition
    /// hold, during which `rollout status` calls it complete.
    async fn build(&self, cluster: &Cluster) {
        create_namespace(cluster, "data").await;
        let workload = if self.kind == "statefulset" {
            let ledger = fixtures::ledger(
                "registry.example/data/db:15.1",
                "registry.example/data/metrics:0.9",
            );
            cluster.server.apply_objects(ledger.service());
            ledger
        } else {
            cluster.server.apply_objects(fixtures::node("node-a"));
            cluster.server.apply_objects(fixtures::node("node-b"));
            fixtures::node_agent(
                "registry.example/obs/agent:2.0",
                "registry.example/obs/shipper:1.4",
            )
        };
        let object: DynamicObject = serde_json::from_value(workload.json()).expect("workload");
        self.api(cluster)
            .create(&PostParams::default(), &object)
            .await
            .expect("create workload");
        cluster.settle().await;
        for (container, image) in self.changes {
            let smp = json!({"spec": {"template": {"spec": {"containers": [
                {"name": container, "image": image}]}}}});
            self.patch(cluster, &Patch::Strategic(smp)).await;
        }
        let live = self.object(cluster);
        let half_brick: json_patch::Patch = serde_json::from_value(json!([
            {"op": "test", "path": "/metadata/generation", "value": live["metadata"]["generation"]},
            {"op": "test", "path": "/spec/template/spec/containers/0/name", "value": self.changes[0].0},
            {"op": "test", "path": "/spec/template/spec/containers/0/image", "value": self.changes[2].1},
            {"op": "replace", "path": "/spec/template/spec/containers/0/image", "value": self.rollback_to}
        ]))
        .expect("JSON Patch");
        self.patch(cluster, &Patch::Json(half_brick)).await;
        if self.kind == "statefulset" {
            self.partition_hold(cluster).await;
        }
    }

    /// statefulset-partition-pause.json: partition = replicas holds db
    /// 15.4 back; kubectl's status rule calls the hold complete.
    async fn partition_hold(&self, cluster: &Cluster) {
        let hold = json!({"spec": {"updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 2}}}});
        self.patch(cluster, &Patch::Merge(hold)).await;
        let smp = json!({"spec": {"template": {"spec": {"containers": [
            {"name": "db", "image": "registry.example/data/db:15.4"}]}}}});
        self.patch(cluster, &Patch::Strategic(smp)).await;
        let held: Vec<String> = cluster
            .server
            .pods("data")
            .iter()
            .map(|p| images(p.spec.as_ref())[0].clone())
            .collect();
        assert_eq!(held, ["db=registry.example/data/db:15.2"; 2], "held");
        let status = self.rollout("status", &["--watch=false"]);
        let status: Vec<&str> = status.iter().map(String::as_str).collect();
        fresh_ok(
            cluster,
            &status,
            "partitioned roll out complete: 0 new pods have been updated...",
        )
        .await;
        let release = json!({"spec": {"updateStrategy": {"rollingUpdate": {"partition": null}}}});
        self.patch(cluster, &Patch::Merge(release)).await;
    }

    /// `revision → (name, images, restartedAt present)` of the server's
    /// ControllerRevisions, or of a recorded LIST.
    fn revisions(list: &[Value]) -> BTreeMap<i64, (String, Vec<String>, bool)> {
        list.iter()
            .map(|r| {
                let template = &r["data"]["spec"]["template"];
                let images = template_images(template);
                let restarted = template["metadata"]["annotations"]
                    .get(RESTARTED_AT)
                    .is_some();
                let name = r["metadata"]["name"].as_str().expect("name").to_owned();
                (
                    r["revision"].as_i64().expect("revision"),
                    (name, images, restarted),
                )
            })
            .collect()
    }

    fn server_revisions(&self, cluster: &Cluster) -> BTreeMap<i64, (String, Vec<String>, bool)> {
        let list: Vec<Value> = cluster
            .server
            .controller_revisions("data")
            .into_iter()
            .map(|r| serde_json::to_value(r).expect("revision"))
            .filter(|r| r["metadata"]["labels"]["app"] == self.name)
            .collect();
        Self::revisions(&list)
    }

    /// The one strategic merge patch of this workload since the last clear.
    fn single_smp(&self, cluster: &Cluster) -> RecordedRequest {
        let writes = cluster.writes();
        assert_eq!(writes.len(), 1, "one write: {writes:#?}");
        let patch = writes.into_iter().next().expect("one write");
        assert_eq!(patch.method, "PATCH");
        assert_eq!(
            patch.path,
            format!("/apis/apps/v1/namespaces/data/{}s/{}", self.kind, self.name)
        );
        assert_eq!(
            patch.content_type.as_deref(),
            Some("application/strategic-merge-patch+json")
        );
        patch
    }

    /// Runs the recorded kubectl session (`steps[]` of
    /// `<kind>-kubectl.json`) and compares each command's exit code,
    /// output and writes, then the resulting workload and revisions.
    async fn kubectl_session_matches_recording(&self, cluster: &Cluster) {
        let recording = load(&format!("{}-kubectl.json", self.kind));
        for step in recording["steps"].as_array().expect("steps") {
            let command = step["command"].as_str().expect("command");
            let args: Vec<&str> = command.split_whitespace().skip(1).collect();
            let log = step["log"].as_str().expect("log");
            // What `undo` must send: the data of the second-newest revision.
            let mut revisions = cluster.server.controller_revisions("data");
            revisions.sort_by_key(|r| r.revision);
            let previous = revisions
                .iter()
                .rev()
                .nth(1)
                .and_then(|r| r.data.clone())
                .map(|d| d.0);
            cluster.server.clear_requests();
            let run = cluster.kubectl.run(&args).await;
            assert_eq!(
                i64::from(run.code),
                step["exit"].as_i64().unwrap(),
                "{command}: {run:?}"
            );
            assert_eq!(
                run.stdout.trim_end(),
                step["stdout"].as_str().unwrap().trim_end(),
                "{command}"
            );
            if run.code != 0 {
                assert_eq!(run.stderr.trim_end(), last_line(log), "{command}");
            }
            let verb = args.iter().skip_while(|a| **a != "rollout").nth(1);
            match verb.copied().unwrap_or_default() {
                "restart" => {
                    let patch = self.single_smp(cluster);
                    assert_eq!(query(&patch, "fieldManager"), Some("kubectl-rollout"));
                    let body = patch.body.expect("body");
                    let at = &body["spec"]["template"]["metadata"]["annotations"][RESTARTED_AT];
                    assert!(at.is_string(), "{body}");
                    assert_eq!(
                        body,
                        json!({"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: at}}}}})
                    );
                }
                "undo" => {
                    let patch = self.single_smp(cluster);
                    assert_eq!(query(&patch, "fieldManager"), None);
                    let body = patch.body.expect("body");
                    assert_eq!(
                        Some(&body),
                        previous.as_ref(),
                        "undo sends the previous revision's data"
                    );
                    assert_logged_body(&body, log);
                }
                _ => assert_eq!(cluster.writes().len(), 0, "{command} is read-only"),
            }
            cluster.settle().await;
        }
        // The state the recording ends in.
        let recorded = &recording["exchanges"];
        let live = self.object(cluster);
        let want = &recorded[0]["response"]["body"];
        assert_eq!(
            live["metadata"]["generation"],
            want["metadata"]["generation"]
        );
        assert_eq!(live["spec"]["template"], want["spec"]["template"]);
        assert_eq!(
            live["status"]["observedGeneration"],
            want["status"]["observedGeneration"]
        );
        let recorded_list = recorded[1]["response"]["body"]["items"]
            .as_array()
            .expect("items");
        let strip =
            |m: BTreeMap<i64, (String, Vec<String>, bool)>| -> BTreeMap<i64, (Vec<String>, bool)> {
                m.into_iter().map(|(k, (_, i, r))| (k, (i, r))).collect()
            };
        assert_eq!(
            strip(self.server_revisions(cluster)),
            strip(Self::revisions(recorded_list)),
            "revisions after the session"
        );
    }

    /// Not recorded: `undo --to-revision=1` sends revision 1's data and the
    /// controller renumbers that revision (same name) to the next number;
    /// `rollout status` (LIST, then WATCH) follows that rollout to the
    /// recorded "done" line.
    async fn undo_to_revision_1(&self, cluster: &Cluster) {
        let before = self.server_revisions(cluster);
        let (first_name, first_images, _) = before[&1].clone();
        let next = before.keys().max().expect("revisions") + 1;
        let args = self.rollout("undo", &["--to-revision=1"]);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let done = format!("{}.apps/{} rolled back", self.kind, self.name);
        fresh_ok(cluster, &args, &done).await;
        self.single_smp(cluster);
        let status = self.rollout("status", &["--timeout=30s"]);
        let status: Vec<&str> = status.iter().map(String::as_str).collect();
        let run = cluster.kubectl.run(&status).await;
        assert_eq!(run.code, 0, "{run:?}");
        let recording = load(&format!("{}-kubectl.json", self.kind));
        let recorded_done = recording["steps"][4]["stdout"].as_str().expect("status");
        assert_eq!(run.stdout.lines().last(), recorded_done.lines().last());
        cluster.settle().await;
        let after = self.server_revisions(cluster);
        assert!(!after.contains_key(&1), "{after:?}");
        assert_eq!(after[&next], (first_name, first_images.clone(), false));
        let live = self.object(cluster);
        assert_eq!(template_images(&live["spec"]["template"]), first_images);
    }
}

/// `name=image` of a pod template's containers (JSON).
fn template_images(template: &Value) -> Vec<String> {
    template["spec"]["containers"]
        .as_array()
        .expect("containers")
        .iter()
        .map(|c| {
            format!(
                "{}={}",
                c["name"].as_str().unwrap(),
                c["image"].as_str().unwrap()
            )
        })
        .collect()
}

impl History {
    /// The whole check for one kind: history built as recorded, the
    /// recorded kubectl session, then `undo --to-revision=1`.
    async fn rollout_commands_match_recording(&self, test: &str) {
        let Some(bin) = kubectl_or_skip(test) else {
            return;
        };
        let cluster = Cluster::start(bin).await;
        self.build(&cluster).await;
        self.kubectl_session_matches_recording(&cluster).await;
        self.undo_to_revision_1(&cluster).await;
        self.get_by_short_names(&cluster).await;
    }

    /// `kubectl get sts,ds,controllerrevisions` (what a snapshot dump asks
    /// for) finds the workload and its revisions through discovery's short
    /// names.
    async fn get_by_short_names(&self, cluster: &Cluster) {
        let args = [
            "get",
            "sts,ds,controllerrevisions",
            "-n",
            "data",
            "-o",
            "name",
        ];
        let run = cluster.kubectl.run(&args).await;
        assert_eq!(run.code, 0, "{run:?}");
        let mut want = vec![format!("{}.apps/{}", self.kind, self.name)];
        want.extend(
            self.server_revisions(cluster)
                .into_values()
                .map(|(name, _, _)| format!("controllerrevision.apps/{name}")),
        );
        let mut got: Vec<&str> = run.stdout.lines().collect();
        got.sort_unstable();
        want.sort();
        assert_eq!(got, want);
    }
}

/// statefulset-kubectl.*: history, the pause refusal, restart, undo and the
/// partitioned status on StatefulSet `data/ledger`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statefulset_rollout_commands_match_recording() {
    LEDGER
        .rollout_commands_match_recording("statefulset_rollout_commands_match_recording")
        .await;
}

/// daemonset-kubectl.*: the same on DaemonSet `data/node-agent`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daemonset_rollout_commands_match_recording() {
    NODE_AGENT
        .rollout_commands_match_recording("daemonset_rollout_commands_match_recording")
        .await;
}
