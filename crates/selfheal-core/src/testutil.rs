//! Builders for realistic Deployments and ReplicaSets in unit tests.

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::Pod;
use serde_json::{Value, json};

use crate::{Decision, Plan, PlanInput, Policy, RemediationOutcome, RemediationRequest, decide};

pub const UID: &str = "3a4925c1-786f-4b23-adb6-0d3b57e345db";
pub const RV: &str = "330";

pub fn now() -> jiff::Timestamp {
    "2026-11-26T20:00:00Z".parse().unwrap()
}

/// The recorded `checkout` Deployment as created (tests/fixtures/checkout-deployment.json,
/// which selfheal-testserver's fixtures start from too): what every
/// Deployment here is built on.
pub fn checkout() -> Value {
    serde_json::from_str(include_str!(
        "../../../tests/fixtures/checkout-deployment.json"
    ))
    .unwrap()
}

/// A container shaped like checkout's `api` as the server stores it
/// (defaults filled in), named `name` and running `image`.
pub fn container(name: &str, image: &str) -> Value {
    let mut container = checkout()["spec"]["template"]["spec"]["containers"][0].take();
    container["name"] = json!(name);
    container["image"] = json!(image);
    container["ports"][0]["protocol"] = json!("TCP");
    container["resources"] = json!({});
    container["terminationMessagePath"] = json!("/dev/termination-log");
    container["terminationMessagePolicy"] = json!("File");
    container["imagePullPolicy"] = json!("IfNotPresent");
    container
}

/// checkout's pod template running `images` (container name, image), as
/// the server stores it, labelled with `pod-template-hash` when given.
pub fn template(images: &[(&str, &str)], hash: Option<&str>) -> Value {
    let mut template = checkout()["spec"]["template"].take();
    if let Some(hash) = hash {
        template["metadata"]["labels"]["pod-template-hash"] = json!(hash);
    }
    let spec = &mut template["spec"];
    spec["containers"] = images.iter().map(|(n, i)| container(n, i)).collect();
    spec["restartPolicy"] = json!("Always");
    spec["terminationGracePeriodSeconds"] = json!(30);
    spec["dnsPolicy"] = json!("ClusterFirst");
    spec["securityContext"] = json!({});
    spec["schedulerName"] = json!("default-scheduler");
    template
}

/// A Deployment `shop/checkout`, opted in, rollout complete, at `revision`.
pub fn deployment_json(images: &[(&str, &str)], revision: i64) -> Value {
    let mut deployment = checkout();
    let metadata = &mut deployment["metadata"];
    metadata["uid"] = json!(UID);
    metadata["resourceVersion"] = json!(RV);
    metadata["generation"] = json!(revision);
    metadata["labels"][crate::keys::ENABLED_LABEL] = json!("true");
    metadata["annotations"] = json!({"deployment.kubernetes.io/revision": revision.to_string()});
    let spec = &mut deployment["spec"];
    spec["template"] = template(images, None);
    spec["strategy"] = json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}});
    spec["revisionHistoryLimit"] = json!(10);
    spec["progressDeadlineSeconds"] = json!(600);
    deployment["status"] = json!({
        "observedGeneration": revision,
        "replicas": 2, "updatedReplicas": 2, "readyReplicas": 2, "availableReplicas": 2,
        "conditions": [
            {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"},
            {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"}
        ]
    });
    deployment
}

pub fn replica_set_json(revision: i64, images: &[(&str, &str)]) -> Value {
    let hash = format!("hash{revision}");
    json!({
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {
            "name": format!("checkout-{hash}"),
            "namespace": "shop",
            "uid": format!("rs-uid-{revision}"),
            "labels": {"app": "checkout", "pod-template-hash": hash},
            "annotations": {
                "deployment.kubernetes.io/desired-replicas": "2",
                "deployment.kubernetes.io/max-replicas": "3",
                "deployment.kubernetes.io/revision": revision.to_string()
            },
            "ownerReferences": [{
                "apiVersion": "apps/v1", "kind": "Deployment", "name": "checkout",
                "uid": UID, "controller": true, "blockOwnerDeletion": true
            }]
        },
        "spec": {
            "replicas": 0,
            "selector": {"matchLabels": {"app": "checkout", "pod-template-hash": hash}},
            "template": template(images, Some(&hash))
        }
    })
}

/// A running container's status.
pub fn running(name: &str, ready: bool) -> Value {
    json!({"name": name, "image": "x", "imageID": "", "ready": ready, "restartCount": 0,
           "started": true, "state": {"running": {"startedAt": "2026-11-26T19:50:00Z"}}})
}

/// A waiting container's status, its message naming reason and container.
pub fn waiting(name: &str, reason: &str, restarts: i32) -> Value {
    json!({"name": name, "image": "x", "imageID": "", "ready": false, "restartCount": restarts,
           "started": false,
           "state": {"waiting": {"reason": reason, "message": format!("{reason} for {name}")}}})
}

/// A pod of `revision` (ReplicaSet `checkout-hash<revision>`) with these
/// container and init container statuses.
pub fn pod(revision: i64, n: usize, statuses: Vec<Value>, init: Vec<Value>) -> Value {
    let hash = format!("hash{revision}");
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": format!("checkout-{hash}-{n}"), "namespace": "shop",
            "labels": {"app": "checkout", "pod-template-hash": hash},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                "name": format!("checkout-{hash}"), "uid": format!("rs-uid-{revision}"), "controller": true}]},
        "spec": {"containers": [{"name": "api", "image": "x"}, {"name": "envoy", "image": "y"}]},
        "status": {"phase": "Running", "containerStatuses": statuses, "initContainerStatuses": init}
    })
}

/// A Deployment whose revisions ran `history[0]`, `history[1]`, …; it is at
/// the last one, and every revision still has its ReplicaSet.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub deployment: Value,
    pub replica_sets: Vec<Value>,
    /// Pods with statuses, for the half-brick choice (none by default).
    pub pods: Vec<Value>,
}

impl Scenario {
    pub fn new(history: &[&[(&str, &str)]]) -> Self {
        let current = history.last().copied().unwrap_or_default();
        Scenario {
            deployment: deployment_json(current, history.len() as i64),
            replica_sets: history
                .iter()
                .enumerate()
                .map(|(i, images)| replica_set_json(i as i64 + 1, images))
                .collect(),
            pods: Vec::new(),
        }
    }

    /// Load `{deployment, replicaSets}` from a testdata file (or a part of one).
    pub fn from_fixture(value: &Value) -> Self {
        Scenario {
            deployment: value["deployment"].clone(),
            replica_sets: value["replicaSets"].as_array().cloned().unwrap_or_default(),
            pods: value["pods"].as_array().cloned().unwrap_or_default(),
        }
    }

    pub fn annotate(mut self, key: &str, value: &str) -> Self {
        self.deployment["metadata"]["annotations"][key] = json!(value);
        self
    }

    pub fn label(mut self, key: &str, value: &str) -> Self {
        self.deployment["metadata"]["labels"][key] = json!(value);
        self
    }

    pub fn unlabel(mut self, key: &str) -> Self {
        if let Some(labels) = self.deployment["metadata"]["labels"].as_object_mut() {
            labels.remove(key);
        }
        self
    }

    pub fn paused(mut self, by_selfheal: bool) -> Self {
        self.deployment["spec"]["paused"] = json!(true);
        if by_selfheal {
            self = self.annotate("selfheal.dev/paused-by", "selfheal");
        }
        self
    }

    pub fn deployment(&self) -> Deployment {
        serde_json::from_value(self.deployment.clone()).unwrap()
    }

    pub fn replica_sets(&self) -> Vec<ReplicaSet> {
        self.replica_sets
            .iter()
            .map(|rs| serde_json::from_value(rs.clone()).unwrap())
            .collect()
    }

    pub fn decide(&self, request: &RemediationRequest, policy: &Policy) -> Decision {
        self.decide_at(request, policy, now())
    }

    pub fn decide_at(
        &self,
        request: &RemediationRequest,
        policy: &Policy,
        now: jiff::Timestamp,
    ) -> Decision {
        let request = crate::ValidRequest::new(request.clone()).unwrap();
        let deployment = self.deployment();
        let replica_sets = self.replica_sets();
        let pods = typed_pods(&self.pods);
        decide(PlanInput {
            request: &request,
            workload: (&deployment).into(),
            controller_revisions: &[],
            replica_sets: &replica_sets,
            pods: &pods,
            policy,
            now,
        })
        .unwrap()
    }

    /// The Deployment JSON after the plan's patch, as the server would store it.
    pub fn apply(&self, plan: &Plan) -> Value {
        let mut doc = self.deployment.clone();
        json_patch::patch(&mut doc, &plan.patch).unwrap();
        doc
    }
}

/// A request from JSON, with `target` defaulting to `shop/checkout`.
pub fn request(mut value: Value) -> RemediationRequest {
    if value.get("target").is_none() {
        value["target"] = json!({"namespace": "shop", "deployment": "checkout"});
    }
    RemediationRequest::from_json(&value.to_string()).unwrap()
}

pub fn applied(decision: Decision) -> Plan {
    match decision {
        Decision::Apply(plan) => *plan,
        Decision::Done(outcome) => panic!("expected a plan, got {outcome:#?}"),
    }
}

pub fn done(decision: Decision) -> RemediationOutcome {
    match decision {
        Decision::Done(outcome) => outcome,
        Decision::Apply(plan) => panic!("expected no write, got {:#?}", plan.patch),
    }
}

/// The patch as plain JSON, for exact comparisons.
/// The guard prefix every patch starts with: `test /metadata/generation`,
/// then `test /metadata/labels` when the Deployment has labels.
pub fn guard_ops(plan: &Plan) -> Vec<Value> {
    let all = serde_json::to_value(&plan.patch).unwrap();
    let all = all.as_array().unwrap();
    assert_eq!(all[0]["op"], "test", "{all:#?}");
    assert_eq!(all[0]["path"], "/metadata/generation", "{all:#?}");
    let labels = all
        .get(1)
        .is_some_and(|op| op["path"] == "/metadata/labels");
    if labels {
        assert_eq!(all[1]["op"], "test", "{all:#?}");
    }
    all[..1 + usize::from(labels)].to_vec()
}

/// The ops after [`guard_ops`]: what the plan actually changes or relies on.
pub fn ops(plan: &Plan) -> Value {
    let guards = guard_ops(plan).len();
    let all = serde_json::to_value(&plan.patch).unwrap();
    Value::from(all.as_array().unwrap()[guards..].to_vec())
}

pub fn fixture(name: &str) -> Value {
    let path = format!("{}/testdata/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Pods as the adapter would have listed them.
pub fn typed_pods(pods: &[Value]) -> Vec<Pod> {
    pods.iter()
        .map(|p| serde_json::from_value(p.clone()).unwrap())
        .collect()
}

/// A recording of a real API server (`tests/fixtures/k8s/<name>`).
pub fn recorded(name: &str) -> Value {
    let path = format!(
        "{}/../../tests/fixtures/k8s/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

/// The recorded exchange whose note is `note` (the last one when several
/// share it).
fn exchange<'r>(recording: &'r Value, note: &str) -> &'r Value {
    recording["exchanges"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .find(|e| e["note"] == note)
        .unwrap_or_else(|| panic!("no exchange {note:?}"))
}

/// The response body of the recorded exchange `note`.
pub fn recorded_body(recording: &Value, note: &str) -> Value {
    exchange(recording, note)["response"]["body"].clone()
}

/// The request body of the recorded exchange `note`.
pub fn recorded_request(recording: &Value, note: &str) -> Value {
    exchange(recording, note)["request"]["body"].clone()
}

/// A recorded StatefulSet or DaemonSet with its ControllerRevisions and
/// pods, as the adapter would read them.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub kind: crate::WorkloadKind,
    pub object: Value,
    pub revisions: Vec<Value>,
    pub pods: Vec<Value>,
}

impl Recorded {
    /// `file`'s GET, LIST controllerrevisions and LIST pods after `step`
    /// (`<kind> after <step>` …).
    pub fn at(kind: crate::WorkloadKind, file: &str, step: &str) -> Self {
        let recording = recorded(file);
        let items = |what: &str| {
            recorded_body(&recording, &format!("LIST {what} {step}"))["items"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        };
        Recorded {
            kind,
            object: recorded_body(&recording, &format!("GET {} {step}", kind.noun())),
            revisions: items("controllerrevisions"),
            pods: items("pods"),
        }
    }

    /// StatefulSet `data/ledger` at revision 4 (db 15.3, metrics 0.10).
    pub fn ledger() -> Self {
        Recorded::at(
            crate::WorkloadKind::StatefulSet,
            "statefulset-history.json",
            "after db -> registry.example/data/db:15.3 converged",
        )
    }

    /// DaemonSet `data/node-agent` at revision 4 (agent 2.2, shipper 1.5).
    pub fn node_agent() -> Self {
        Recorded::at(
            crate::WorkloadKind::DaemonSet,
            "daemonset-history.json",
            "after agent -> registry.example/obs/agent:2.2 converged",
        )
    }

    pub fn annotate(mut self, key: &str, value: &str) -> Self {
        self.object["metadata"]["annotations"][key] = json!(value);
        self
    }

    pub fn controller_revisions(&self) -> Vec<k8s_openapi::api::apps::v1::ControllerRevision> {
        self.revisions
            .iter()
            .map(|r| serde_json::from_value(r.clone()).unwrap())
            .collect()
    }

    /// Run `f` on the typed object.
    pub fn with<T>(&self, f: impl FnOnce(crate::WorkloadRef<'_>) -> T) -> T {
        use k8s_openapi::api::apps::v1::{DaemonSet, StatefulSet};
        match self.kind {
            crate::WorkloadKind::StatefulSet => {
                let s: StatefulSet = serde_json::from_value(self.object.clone()).unwrap();
                f((&s).into())
            }
            crate::WorkloadKind::DaemonSet => {
                let d: DaemonSet = serde_json::from_value(self.object.clone()).unwrap();
                f((&d).into())
            }
            crate::WorkloadKind::Deployment => {
                let d: Deployment = serde_json::from_value(self.object.clone()).unwrap();
                f((&d).into())
            }
        }
    }

    /// A request aimed at this workload unless it names a target.
    pub fn request(&self, mut value: Value) -> RemediationRequest {
        if value.get("target").is_none() {
            value["target"] = json!({"namespace": "data"});
        }
        if value["target"].get("pod").is_none() {
            value["target"][self.kind.field()] = self.object["metadata"]["name"].clone();
        }
        RemediationRequest::from_json(&value.to_string()).unwrap()
    }

    pub fn decide(&self, request: &RemediationRequest, policy: &Policy) -> Decision {
        let revisions = self.controller_revisions();
        let pods = typed_pods(&self.pods);
        let request = crate::ValidRequest::new(request.clone()).unwrap();
        self.with(|workload| {
            decide(PlanInput {
                request: &request,
                workload,
                replica_sets: &[],
                controller_revisions: &revisions,
                pods: &pods,
                policy,
                now: now(),
            })
            .unwrap()
        })
    }

    /// The object after `plan`'s patch, as the server would store it.
    pub fn applied(&self, plan: &Plan) -> Self {
        let mut next = self.clone();
        json_patch::patch(&mut next.object, &plan.patch).unwrap();
        next
    }
}

/// The fixture is the recorded create's body, to the letter.
#[test]
fn checkout_fixture_is_the_recorded_create() {
    let recording = recorded("create-and-history.json");
    assert_eq!(
        checkout(),
        recorded_request(&recording, "step 1: create deployment")
    );
}
