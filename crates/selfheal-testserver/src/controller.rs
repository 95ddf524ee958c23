//! Emulation of kube-controller-manager's deployment, replicaset and
//! garbage-collector controllers plus a stand-in kubelet that marks pods
//! Running+Ready. The logic follows the upstream controllers
//! (pkg/controller/deployment: rolling.go, sync.go, progress.go,
//! util/deployment_util.go) closely enough to reproduce the recorded
//! revisions, revision-history annotations, scaling steps, status fields and
//! conditions (tests/fixtures/k8s/status-progression.json). The Deployment
//! controller's steps are in `controller/deployment.rs`; the other
//! controllers, the kubelet stand-in and the reconcile loop are here.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use selfheal_core::keys::REVISION;
use serde_json::{Map, Value, json};
use tokio::sync::Notify;

use crate::Shared;
use crate::defaults;
use crate::selector::LabelSelector;
use crate::store::{Kind, Store, Writer, format_ts, name_of};

mod daemonset;
mod deployment;
mod history;
mod statefulset;
#[cfg(test)]
mod workload_tests;

use daemonset::sync_daemon_set;
use deployment::sync_deployment;
use statefulset::sync_stateful_set;

/// Predicate on a container image: `true` means pods running it never get ready.
#[derive(Clone)]
pub struct ImagePredicate(pub Arc<dyn Fn(&str) -> bool + Send + Sync>);

impl std::fmt::Debug for ImagePredicate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<predicate>")
    }
}

/// Settings for the controller emulation.
#[derive(Clone, Debug)]
pub struct ControllerConfig {
    /// How long a new pod stays Pending before it turns Running+Ready.
    pub ready_delay: Duration,
    /// Pods with any of these images stay Pending forever.
    pub never_ready_images: Vec<String>,
    /// Pods with an image matching this predicate stay Pending forever.
    pub never_ready: Option<ImagePredicate>,
}

impl Default for ControllerConfig {
    fn default() -> Self {
        ControllerConfig {
            ready_delay: Duration::from_millis(50),
            never_ready_images: Vec::new(),
            never_ready: None,
        }
    }
}

impl ControllerConfig {
    /// The default timings, with pods running `image` never turning ready:
    /// a bad release whose rollout does not finish by itself.
    pub fn never_ready_image(image: impl Into<String>) -> Self {
        ControllerConfig {
            never_ready_images: vec![image.into()],
            ..ControllerConfig::default()
        }
    }

    fn never_ready(&self, image: &str) -> bool {
        self.never_ready_images.iter().any(|i| i == image)
            || self.never_ready.as_ref().is_some_and(|p| (p.0)(image))
    }
}

pub(crate) struct ControllerState {
    config: ControllerConfig,
    notify: Notify,
    paused: AtomicBool,
    event_counter: AtomicU64,
    /// Pod uid → when it turns ready (on the server's clock).
    ready_at: Mutex<HashMap<String, jiff::Timestamp>>,
}

impl ControllerState {
    pub(crate) fn new(config: ControllerConfig) -> ControllerState {
        ControllerState {
            config,
            notify: Notify::new(),
            paused: AtomicBool::new(false),
            event_counter: AtomicU64::new(0),
            ready_at: Mutex::new(HashMap::new()),
        }
    }
    /// Wakes the background loop after a write.
    pub(crate) fn poke(&self) {
        self.notify.notify_one();
    }
}

pub(crate) fn spawn(shared: Arc<Shared>, mut shutdown: tokio::sync::watch::Receiver<bool>) {
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = shutdown.changed() => return,
                _ = shared.controller.notify.notified() => {}
                _ = tokio::time::sleep(Duration::from_millis(20)) => {}
            }
            if shared.controller.paused.load(Ordering::SeqCst) {
                continue;
            }
            // One pass per store lock, yielding in between: API requests are
            // served while the emulation converges, as a real API server
            // serves clients while controller-manager works. Holding the lock
            // for the whole convergence made a client's next request after a
            // write wait for every pass.
            for _ in 0..MAX_PASSES {
                if !reconcile_pass(&shared) {
                    break;
                }
                tokio::task::yield_now().await;
            }
        }
    });
}

/// Deterministic control over the controller emulation.
#[derive(Clone)]
pub struct ControllerHandle {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for ControllerHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ControllerHandle").finish_non_exhaustive()
    }
}

impl ControllerHandle {
    pub(crate) fn new(shared: Arc<Shared>) -> ControllerHandle {
        ControllerHandle { shared }
    }

    /// Runs the controllers until nothing changes and no pod is waiting to
    /// become ready (pods that never get ready do not count), or 10 s pass.
    /// Returns whether a steady state was reached.
    pub async fn settle(&self) -> bool {
        self.settle_within(Duration::from_secs(10)).await
    }

    /// [`ControllerHandle::settle`] with a custom timeout.
    pub async fn settle_within(&self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            reconcile(&self.shared);
            if steady(&self.shared) {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Stops (`true`) or restarts (`false`) the background loop; while stopped,
    /// only [`ControllerHandle::reconcile_now`] and `settle` make progress.
    pub fn pause_automatic(&self, paused: bool) {
        self.shared
            .controller
            .paused
            .store(paused, Ordering::SeqCst);
    }

    /// Restarts the background loop `delay` from now, in the background: a
    /// rollout held by `pause_automatic(true)` then finishes at a scripted
    /// moment (tests and benchmarks of watching a rollout).
    pub fn resume_automatic_after(&self, delay: Duration) {
        let handle = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            handle.pause_automatic(false);
        });
    }

    /// One full controller pass: everything that needs no time to pass
    /// (pods whose ready delay is not over stay Pending). Returns whether anything changed.
    pub fn reconcile_now(&self) -> bool {
        reconcile(&self.shared)
    }

    /// Moves the server clock forward (pod readiness, progress deadlines,
    /// condition timestamps), then reconciles.
    pub fn advance(&self, d: Duration) {
        self.shared.store().clock_offset += d;
        reconcile(&self.shared);
    }
}

fn pods_pending(store: &Store, cfg: &ControllerConfig) -> bool {
    store
        .list(Kind::Pod, None)
        .iter()
        .any(|p| !pod_ready(p) && !pod_never_ready(cfg, p))
}

/// A pass that changes nothing and no pod waiting to become ready, checked
/// under one store lock. Checked apart (a pass, then the pods under a second
/// lock), the background loop could make the last pending pod ready in
/// between, and `settle` declared a steady state mid-rollout (kubectl_parity
/// failed about 1 run in 3 under load).
fn steady(shared: &Shared) -> bool {
    let mut store = shared.store();
    !pass(&mut store, &shared.controller) && !pods_pending(&store, &shared.controller.config)
}

/// Bound on passes until nothing changes (a safety net against a rule that
/// keeps flipping; real convergence takes a handful).
const MAX_PASSES: usize = 200;

/// Runs passes until nothing changes; true if anything did.
pub(crate) fn reconcile(shared: &Shared) -> bool {
    let mut any = false;
    for _ in 0..MAX_PASSES {
        if !reconcile_pass(shared) {
            break;
        }
        any = true;
    }
    any
}

/// One pass over pods, garbage, Deployments and ReplicaSets under one store
/// lock; true if anything changed.
fn reconcile_pass(shared: &Shared) -> bool {
    pass(&mut shared.store(), &shared.controller)
}

/// [`reconcile_pass`] on a store the caller has locked.
fn pass(store: &mut Store, state: &ControllerState) -> bool {
    let mut changed = false;
    changed |= mark_pods_ready(store, state);
    changed |= collect_garbage(store);
    changed |= sync_each(store, Kind::Deployment, |store, d| {
        sync_deployment(store, state, d)
    });
    changed |= sync_each(store, Kind::ReplicaSet, |store, rs| {
        sync_replica_set(store, state, rs)
    });
    changed |= sync_each(store, Kind::StatefulSet, |store, set| {
        sync_stateful_set(store, state, set)
    });
    changed |= sync_each(store, Kind::DaemonSet, |store, ds| {
        sync_daemon_set(store, state, ds)
    });
    changed
}

/// `sync` over every object of `kind`, each read just before its sync (an
/// earlier sync of the pass may have changed it, or deleted it: then it is
/// skipped); true if any sync changed anything.
fn sync_each(
    store: &mut Store,
    kind: Kind,
    mut sync: impl FnMut(&mut Store, Value) -> bool,
) -> bool {
    let mut changed = false;
    for (ns, name) in keys(store, kind) {
        if let Some(object) = store.get(kind, &ns, &name).cloned() {
            changed |= sync(store, object);
        }
    }
    changed
}

/// `(namespace, name)` of every object of `kind`, owned, so the pass can
/// write to the store while walking them.
fn keys(store: &Store, kind: Kind) -> Vec<(String, String)> {
    store
        .list(kind, None)
        .iter()
        .map(|o| (ns_of(o).to_string(), name_of(o).to_string()))
        .collect()
}

fn ns_of(v: &Value) -> &str {
    v.pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

fn uid_of(v: &Value) -> &str {
    v.pointer("/metadata/uid")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

fn int_at(v: &Value, ptr: &str) -> i64 {
    v.pointer(ptr).and_then(Value::as_i64).unwrap_or(0)
}

fn created_at(v: &Value) -> &str {
    v.pointer("/metadata/creationTimestamp")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

fn controller_owner(v: &Value) -> Option<&Value> {
    v.pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)?
        .iter()
        .find(|o| o.get("controller").and_then(Value::as_bool) == Some(true))
}

fn owned_by<'a>(store: &'a Store, kind: Kind, ns: &str, owner_uid: &str) -> Vec<&'a Value> {
    store
        .list(kind, Some(ns))
        .into_iter()
        .filter(|o| {
            controller_owner(o)
                .and_then(|r| r.get("uid"))
                .and_then(Value::as_str)
                == Some(owner_uid)
        })
        .collect()
}

fn annotation<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.pointer("/metadata/annotations")
        .and_then(|a| a.get(key))
        .and_then(Value::as_str)
}

fn revision(v: &Value) -> i64 {
    annotation(v, REVISION)
        .and_then(|r| r.parse().ok())
        .unwrap_or(0)
}

fn annotations_mut(v: &mut Value) -> Option<&mut Map<String, Value>> {
    let meta = v
        .as_object_mut()?
        .entry("metadata")
        .or_insert_with(|| json!({}));
    let ann = meta
        .as_object_mut()?
        .entry("annotations")
        .or_insert_with(|| json!({}));
    ann.as_object_mut()
}

fn pod_ready(p: &Value) -> bool {
    p.pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|cs| {
            cs.iter()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
        })
}

fn pod_images(p: &Value) -> Vec<&str> {
    p.pointer("/spec/containers")
        .and_then(Value::as_array)
        .map(|cs| cs.iter().filter_map(|c| c["image"].as_str()).collect())
        .unwrap_or_default()
}

fn pod_never_ready(cfg: &ControllerConfig, p: &Value) -> bool {
    pod_images(p).iter().any(|i| cfg.never_ready(i))
}

/// The kubelet stand-in: Pending pods turn Running+Ready once their delay is over.
fn mark_pods_ready(store: &mut Store, state: &ControllerState) -> bool {
    let now = store.now();
    let mut ready_at = state.ready_at.lock().unwrap_or_else(|e| e.into_inner());
    let candidates: Vec<Value> = store
        .list(Kind::Pod, None)
        .into_iter()
        .filter(|p| {
            !pod_ready(p)
                && p.get("metadata")
                    .and_then(|m| m.get("deletionTimestamp"))
                    .is_none()
        })
        .cloned()
        .collect();
    let mut changed = false;
    for mut pod in candidates {
        if pod_never_ready(&state.config, &pod) {
            continue;
        }
        let uid = uid_of(&pod).to_string();
        let delay = jiff::SignedDuration::try_from(state.config.ready_delay).unwrap_or_default();
        let due = *ready_at
            .entry(uid)
            .or_insert_with(|| now.checked_add(delay).unwrap_or(now));
        if now < due {
            continue;
        }
        let ts = format_ts(now);
        let statuses: Vec<Value> = pod
            .pointer("/spec/containers")
            .and_then(Value::as_array)
            .map(|cs| {
                cs.iter()
                    .enumerate()
                    .map(|(i, c)| {
                        let image = c["image"].as_str().unwrap_or_default();
                        json!({"name": c["name"], "state": {"running": {"startedAt": ts}}, "lastState": {},
                            "ready": true, "restartCount": 0, "image": image,
                            "imageID": format!("docker-pullable://{image}"),
                            "containerID": format!("containerd://{:064x}", i + 1), "started": true})
                    })
                    .collect()
            })
            .unwrap_or_default();
        let cond = |t: &str| json!({"type": t, "status": "True", "lastProbeTime": null, "lastTransitionTime": ts});
        let qos = pod
            .pointer("/status/qosClass")
            .cloned()
            .unwrap_or(json!("BestEffort"));
        pod["status"] = json!({"phase": "Running",
            "conditions": [cond("Initialized"), cond("Ready"), cond("ContainersReady"), cond("PodScheduled")],
            "hostIP": "10.0.0.10", "podIP": "10.244.0.10", "podIPs": [{"ip": "10.244.0.10"}], "startTime": ts,
            "containerStatuses": statuses, "qosClass": qos});
        let ns = ns_of(&pod).to_string();
        store.update(Kind::Pod, &ns, pod, Writer::Status, false);
        changed = true;
    }
    changed
}

/// Background-propagation garbage collection: what a gone Deployment,
/// ReplicaSet, StatefulSet or DaemonSet controlled.
fn collect_garbage(store: &mut Store) -> bool {
    let mut doomed: Vec<(Kind, String, String)> = Vec::new();
    for (kind, owner_kind) in [
        (Kind::ReplicaSet, Kind::Deployment),
        (Kind::Pod, Kind::ReplicaSet),
        (Kind::Pod, Kind::StatefulSet),
        (Kind::Pod, Kind::DaemonSet),
        (Kind::ControllerRevision, Kind::StatefulSet),
        (Kind::ControllerRevision, Kind::DaemonSet),
    ] {
        // One set of the owners' uids per pass, not a lookup per object.
        let owners: std::collections::HashSet<&str> = store
            .list(owner_kind, None)
            .into_iter()
            .map(uid_of)
            .collect();
        for o in store.list(kind, None) {
            let Some(owner) = controller_owner(o) else {
                continue;
            };
            if owner.get("kind").and_then(Value::as_str) != Some(owner_kind.kind()) {
                continue;
            }
            let uid = owner.get("uid").and_then(Value::as_str).unwrap_or_default();
            if !owners.contains(uid) {
                doomed.push((kind, ns_of(o).to_string(), name_of(o).to_string()));
            }
        }
    }
    for (kind, ns, name) in &doomed {
        store.delete(*kind, ns, name);
    }
    !doomed.is_empty()
}

fn sync_replica_set(store: &mut Store, state: &ControllerState, rs: Value) -> bool {
    let ns = ns_of(&rs).to_string();
    let name = rs["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let (ns, name) = (ns.as_str(), name.as_str());
    let uid = uid_of(&rs).to_string();
    let desired = int_at(&rs, "/spec/replicas").max(0) as usize;
    let mut pods: Vec<Value> = owned_by(store, Kind::Pod, ns, &uid)
        .into_iter()
        .cloned()
        .collect();
    let mut changed = false;
    if pods.len() < desired {
        for _ in pods.len()..desired {
            let pod = new_pod(store, &rs);
            if let Some(created) = create_pod(store, state, pod) {
                pods.push(created);
                changed = true;
            }
        }
    } else if pods.len() > desired {
        // Delete not-ready pods first, then the newest.
        pods.sort_by(|a, b| {
            pod_ready(a)
                .cmp(&pod_ready(b))
                .then_with(|| created_at(b).cmp(created_at(a)))
        });
        let extra = pods.len() - desired;
        for p in pods.drain(..extra) {
            store.delete(Kind::Pod, ns, name_of(&p));
        }
        changed = true;
    }
    let selector =
        LabelSelector::from_label_selector(rs.pointer("/spec/selector").unwrap_or(&Value::Null));
    let count = pods.len() as i64;
    let labeled = pods.iter().filter(|p| selector.matches_object(p)).count() as i64;
    let ready = pods.iter().filter(|p| pod_ready(p)).count() as i64;
    let mut status = Map::new();
    status.insert("replicas".into(), json!(count));
    if labeled > 0 {
        status.insert("fullyLabeledReplicas".into(), json!(labeled));
    }
    if ready > 0 {
        status.insert("readyReplicas".into(), json!(ready));
        status.insert("availableReplicas".into(), json!(ready));
    }
    status.insert(
        "observedGeneration".into(),
        json!(int_at(&rs, "/metadata/generation")),
    );
    let status = Value::Object(status);
    // Re-read: creating pods does not touch the RS, but keep the freshest copy.
    if let Some(mut cur) = store.get(Kind::ReplicaSet, ns, name).cloned()
        && cur.get("status") != Some(&status)
    {
        cur["status"] = status;
        store.update(Kind::ReplicaSet, ns, cur, Writer::Status, false);
        changed = true;
    }
    changed
}

/// A Normal event a controller records about one of its objects.
struct Event {
    reason: &'static str,
    message: String,
    /// `source.component`: `deployment-controller`, `statefulset-controller`, …
    component: &'static str,
}

/// Records `event` about `obj` (a `kind`), as the controllers' event
/// recorders do (one Event per occurrence; the real correlator's
/// aggregation of repeats is not emulated).
fn record_event(store: &mut Store, state: &ControllerState, obj: &Value, kind: Kind, event: Event) {
    let n = state.event_counter.fetch_add(1, Ordering::SeqCst);
    let nanos = store.now().as_nanosecond();
    let ns = ns_of(obj).to_string();
    let name = format!("{}.{:016x}", name_of(obj), (nanos as u64).wrapping_add(n));
    let now = store.now_string();
    let rv = obj
        .pointer("/metadata/resourceVersion")
        .cloned()
        .unwrap_or(Value::Null);
    let ev = json!({"metadata": {"name": name, "namespace": ns},
        "involvedObject": {"kind": kind.kind(), "namespace": ns, "name": name_of(obj), "uid": uid_of(obj),
            "apiVersion": kind.api_version(), "resourceVersion": rv},
        "reason": event.reason, "message": event.message, "source": {"component": event.component},
        "firstTimestamp": now, "lastTimestamp": now, "count": 1, "type": "Normal"});
    if let Ok(ev) = defaults::apply(Kind::Event, ev)
        && !store.exists(Kind::Event, &ns, &name)
    {
        store.create(Kind::Event, &ns, ev, false);
    }
}

/// Writes `status` onto the stored `obj` through the status subresource,
/// unless it already has it; true if it wrote.
fn write_status(store: &mut Store, kind: Kind, obj: &Value, status: Map<String, Value>) -> bool {
    let Some(mut cur) = store.get(kind, ns_of(obj), name_of(obj)).cloned() else {
        return false;
    };
    let status = Value::Object(status);
    if cur.get("status") == Some(&status) {
        return false;
    }
    cur["status"] = status;
    let ns = ns_of(obj).to_string();
    store.update(kind, &ns, cur, Writer::Status, false);
    true
}

/// Creates a pod a controller built (server defaults applied) and starts
/// its ready delay; the stored pod, or `None` when it does not decode.
fn create_pod(store: &mut Store, state: &ControllerState, pod: Value) -> Option<Value> {
    let pod = defaults::apply(Kind::Pod, pod).ok()?;
    let ns = ns_of(&pod).to_string();
    let created = store.create(Kind::Pod, &ns, pod, false);
    let delay = jiff::SignedDuration::try_from(state.config.ready_delay).unwrap_or_default();
    let now = store.now();
    state
        .ready_at
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(
            uid_of(&created).to_string(),
            now.checked_add(delay).unwrap_or(now),
        );
    Some(created)
}

fn new_pod(store: &Store, rs: &Value) -> Value {
    let rs_name = name_of(rs);
    let ns = ns_of(rs);
    let mut name = format!("{rs_name}-{}", crate::random_suffix(5));
    while store.exists(Kind::Pod, ns, &name) {
        name = format!("{rs_name}-{}", crate::random_suffix(5));
    }
    let template = rs.pointer("/spec/template").cloned().unwrap_or(json!({}));
    let mut meta = json!({"name": name, "generateName": format!("{rs_name}-"), "namespace": ns,
        "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": rs_name, "uid": uid_of(rs),
            "controller": true, "blockOwnerDeletion": true}]});
    for key in ["labels", "annotations"] {
        if let Some(v) = template.pointer(&format!("/metadata/{key}")) {
            meta[key] = v.clone();
        }
    }
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": template.get("spec").cloned().unwrap_or(json!({}))})
}
