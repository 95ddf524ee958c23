//! Emulation of kube-controller-manager's deployment, replicaset and
//! garbage-collector controllers plus a stand-in kubelet that marks pods
//! Running+Ready. The logic follows the upstream controllers
//! (pkg/controller/deployment: rolling.go, sync.go, progress.go,
//! util/deployment_util.go) closely enough to reproduce the recorded
//! revisions, revision-history annotations, scaling steps, status fields and
//! conditions (tests/fixtures/k8s/status-progression.json).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Map, Value, json};
use tokio::sync::Notify;

use crate::Shared;
use crate::defaults;
use crate::selector::LabelSelector;
use crate::store::{Kind, Store, Writer, format_ts, name_of};

const REVISION: &str = "deployment.kubernetes.io/revision";
const REVISION_HISTORY: &str = "deployment.kubernetes.io/revision-history";
const DESIRED: &str = "deployment.kubernetes.io/desired-replicas";
const MAX: &str = "deployment.kubernetes.io/max-replicas";
const HASH_LABEL: &str = "pod-template-hash";
/// Annotations the controller never copies from a Deployment to its ReplicaSets.
const SKIP_COPY: &[&str] = &[
    "kubectl.kubernetes.io/last-applied-configuration",
    REVISION,
    REVISION_HISTORY,
    DESIRED,
    MAX,
    "deprecated.deployment.rollback.to",
];

/// Predicate on a container image: `true` means pods running it never get ready.
pub type ImagePredicate = Arc<dyn Fn(&str) -> bool + Send + Sync>;

/// Settings for the controller emulation.
#[derive(Clone)]
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

impl std::fmt::Debug for ControllerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ControllerConfig")
            .field("ready_delay", &self.ready_delay)
            .field("never_ready_images", &self.never_ready_images)
            .field(
                "never_ready",
                &self.never_ready.as_ref().map(|_| "<predicate>"),
            )
            .finish()
    }
}

impl ControllerConfig {
    fn never_ready(&self, image: &str) -> bool {
        self.never_ready_images.iter().any(|i| i == image)
            || self.never_ready.as_ref().is_some_and(|p| p(image))
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
    for (ns, name) in keys(store, Kind::Deployment) {
        changed |= sync_deployment(store, state, &ns, &name);
    }
    for (ns, name) in keys(store, Kind::ReplicaSet) {
        changed |= sync_replica_set(store, state, &ns, &name);
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

/// Background-propagation garbage collection: ReplicaSets whose Deployment
/// is gone, pods whose ReplicaSet is gone.
fn collect_garbage(store: &mut Store) -> bool {
    let mut doomed: Vec<(Kind, String, String)> = Vec::new();
    for (kind, owner_kind) in [
        (Kind::ReplicaSet, Kind::Deployment),
        (Kind::Pod, Kind::ReplicaSet),
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

fn sync_replica_set(store: &mut Store, state: &ControllerState, ns: &str, name: &str) -> bool {
    let Some(rs) = store.get(Kind::ReplicaSet, ns, name).cloned() else {
        return false;
    };
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
            if let Ok(pod) = defaults::apply(Kind::Pod, pod) {
                let created = store.create(Kind::Pod, ns, pod, false);
                let delay =
                    jiff::SignedDuration::try_from(state.config.ready_delay).unwrap_or_default();
                let now = store.now();
                state
                    .ready_at
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(
                        uid_of(&created).to_string(),
                        now.checked_add(delay).unwrap_or(now),
                    );
                pods.push(created);
                changed = true;
            }
        }
    } else if pods.len() > desired {
        // Delete not-ready pods first, then the newest.
        pods.sort_by(|a, b| {
            pod_ready(a).cmp(&pod_ready(b)).then_with(|| {
                let ta = a
                    .pointer("/metadata/creationTimestamp")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                let tb = b
                    .pointer("/metadata/creationTimestamp")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                tb.cmp(ta)
            })
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

/// A stable 10-character hash of a pod template (pod-template-hash).
fn template_hash(template: &Value) -> String {
    use sha2::Digest as _;
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let digest = sha2::Sha256::digest(template.to_string().as_bytes());
    digest
        .iter()
        .take(10)
        .map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char)
        .collect()
}

/// Whole-template equality ignoring the pod-template-hash label (EqualIgnoreHash).
fn template_without_hash(t: &Value) -> Value {
    let mut t = t.clone();
    if let Some(labels) = t
        .pointer_mut("/metadata/labels")
        .and_then(Value::as_object_mut)
    {
        labels.remove(HASH_LABEL);
    }
    t
}

/// Resolves maxSurge (rounded up) and maxUnavailable (rounded down) like upstream.
fn surge_and_unavailable(d: &Value, replicas: i64) -> (i64, i64) {
    if d.pointer("/spec/strategy/type").and_then(Value::as_str) == Some("Recreate") {
        return (0, 0);
    }
    let resolve = |v: Option<&Value>, default: &str, round_up: bool| -> i64 {
        match v {
            Some(Value::Number(n)) => n.as_i64().unwrap_or(0),
            Some(Value::String(s)) => pct(s, replicas, round_up),
            _ => pct(default, replicas, round_up),
        }
    };
    let surge = resolve(
        d.pointer("/spec/strategy/rollingUpdate/maxSurge"),
        "25%",
        true,
    );
    let mut unavailable = resolve(
        d.pointer("/spec/strategy/rollingUpdate/maxUnavailable"),
        "25%",
        false,
    );
    if surge == 0 && unavailable == 0 {
        unavailable = 1;
    }
    (surge, unavailable.min(replicas))
}

fn pct(s: &str, total: i64, round_up: bool) -> i64 {
    match s.strip_suffix('%').and_then(|p| p.parse::<i64>().ok()) {
        Some(p) => {
            let num = p * total;
            if round_up {
                (num + 99) / 100
            } else {
                num / 100
            }
        }
        None => s.parse().unwrap_or(0),
    }
}

fn make_event(store: &mut Store, state: &ControllerState, d: &Value, message: String) {
    let n = state.event_counter.fetch_add(1, Ordering::SeqCst);
    let nanos = store.now().as_nanosecond();
    let ns = ns_of(d).to_string();
    let name = format!("{}.{:016x}", name_of(d), (nanos as u64).wrapping_add(n));
    let now = store.now_string();
    let ev = json!({"metadata": {"name": name, "namespace": ns},
        "involvedObject": {"kind": "Deployment", "namespace": ns, "name": name_of(d), "uid": uid_of(d),
            "apiVersion": "apps/v1", "resourceVersion": d.pointer("/metadata/resourceVersion").cloned().unwrap_or(Value::Null)},
        "reason": "ScalingReplicaSet", "message": message, "source": {"component": "deployment-controller"},
        "firstTimestamp": now, "lastTimestamp": now, "count": 1, "type": "Normal"});
    if let Ok(ev) = defaults::apply(Kind::Event, ev)
        && !store.exists(Kind::Event, &ns, &name)
    {
        store.create(Kind::Event, &ns, ev, false);
    }
}

/// Scales a ReplicaSet, stamping the replica annotations and emitting the event.
fn scale(
    store: &mut Store,
    state: &ControllerState,
    d: &Value,
    rs: &Value,
    to: i64,
    surge: i64,
) -> Value {
    let from = int_at(rs, "/spec/replicas");
    let replicas = int_at(d, "/spec/replicas");
    let mut rs = rs.clone();
    rs["spec"]["replicas"] = json!(to);
    if let Some(ann) = annotations_mut(&mut rs) {
        ann.insert(DESIRED.into(), json!(replicas.to_string()));
        ann.insert(MAX.into(), json!((replicas + surge).to_string()));
    }
    let ns = ns_of(&rs).to_string();
    let stored = store.update(Kind::ReplicaSet, &ns, rs, Writer::Controller, false);
    if from != to {
        let dir = if to > from { "up" } else { "down" };
        make_event(
            store,
            state,
            d,
            format!("Scaled {dir} replica set {} to {to}", name_of(&stored)),
        );
    }
    stored
}

struct Cond<'a> {
    kind: &'a str,
    status: &'a str,
    reason: &'a str,
    message: String,
}

/// SetDeploymentCondition: no-op when status and reason match; keeps
/// lastTransitionTime when only the reason changes; moves the condition last.
fn set_condition(conds: &mut Vec<Value>, c: Cond<'_>, now: &str) {
    let current = conds.iter().find(|x| x["type"] == c.kind).cloned();
    if let Some(cur) = &current
        && cur["status"] == c.status
        && cur["reason"] == c.reason
    {
        return;
    }
    let transition = match &current {
        Some(cur) if cur["status"] == c.status => cur["lastTransitionTime"].clone(),
        _ => json!(now),
    };
    conds.retain(|x| x["type"] != c.kind);
    conds.push(
        json!({"type": c.kind, "status": c.status, "lastUpdateTime": now,
        "lastTransitionTime": transition, "reason": c.reason, "message": c.message}),
    );
}

fn condition<'a>(conds: &'a [Value], kind: &str) -> Option<&'a Value> {
    conds.iter().find(|c| c["type"] == kind)
}

fn sync_deployment(store: &mut Store, state: &ControllerState, ns: &str, name: &str) -> bool {
    let Some(d) = store.get(Kind::Deployment, ns, name).cloned() else {
        return false;
    };
    let d_uid = uid_of(&d).to_string();
    let replicas = int_at(&d, "/spec/replicas");
    let paused = d.pointer("/spec/paused").and_then(Value::as_bool) == Some(true);
    let recreate = d.pointer("/spec/strategy/type").and_then(Value::as_str) == Some("Recreate");
    let (surge, max_unavailable) = surge_and_unavailable(&d, replicas);
    let template = d.pointer("/spec/template").cloned().unwrap_or(json!({}));
    let mut changed = false;
    let mut d_conditions: Vec<Value> = d
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let now = store.now_string();

    let rss: Vec<Value> = owned_by(store, Kind::ReplicaSet, ns, &d_uid)
        .into_iter()
        .cloned()
        .collect();
    let new_name = rss
        .iter()
        .find(|rs| {
            template_without_hash(rs.pointer("/spec/template").unwrap_or(&Value::Null)) == template
        })
        .map(|rs| name_of(rs).to_string());
    let old_max_rev = rss
        .iter()
        .filter(|rs| Some(name_of(rs)) != new_name.as_deref())
        .map(revision)
        .max()
        .unwrap_or(0);

    // getNewReplicaSet: sync the existing one's annotations, or create it.
    let mut new_rs: Option<Value> = None;
    if let Some(n) = &new_name {
        let Some(existing) = rss.iter().find(|rs| name_of(rs) == n) else {
            return changed;
        };
        let mut rs = existing.clone();
        let d_ann = d
            .pointer("/metadata/annotations")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        let cur_rev = revision(&rs);
        let had_rev = annotation(&rs, REVISION).is_some();
        if let Some(ann) = annotations_mut(&mut rs) {
            for (k, v) in &d_ann {
                if !SKIP_COPY.contains(&k.as_str()) {
                    ann.insert(k.clone(), v.clone());
                }
            }
            let new_rev = old_max_rev + 1;
            if cur_rev < new_rev {
                ann.insert(REVISION.into(), json!(new_rev.to_string()));
                if had_rev {
                    let history = ann
                        .get(REVISION_HISTORY)
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string();
                    let value = if history.is_empty() {
                        cur_rev.to_string()
                    } else {
                        format!("{history},{cur_rev}")
                    };
                    ann.insert(REVISION_HISTORY.into(), json!(value));
                }
            }
        }
        if &rs != existing {
            rs = store.update(Kind::ReplicaSet, ns, rs, Writer::Controller, false);
            changed = true;
        }
        if condition(&d_conditions, "Progressing").is_none() && !paused {
            set_condition(
                &mut d_conditions,
                Cond {
                    kind: "Progressing",
                    status: "True",
                    reason: "FoundNewReplicaSet",
                    message: format!("Found new replica set \"{}\"", name_of(&rs)),
                },
                &now,
            );
        }
        new_rs = Some(rs);
    } else if !paused {
        let old_spec: i64 = rss.iter().map(|rs| int_at(rs, "/spec/replicas")).sum();
        let old_pods: i64 = rss.iter().map(|rs| int_at(rs, "/status/replicas")).sum();
        let may_create = !recreate || (old_spec == 0 && old_pods == 0);
        if may_create {
            let hash = template_hash(&template);
            let rs_name = format!("{name}-{hash}");
            let initial = if recreate {
                replicas
            } else {
                let max_total = replicas + surge;
                if old_spec >= max_total {
                    0
                } else {
                    (max_total - old_spec).min(replicas)
                }
            };
            let mut t = template.clone();
            if let Some(labels) = t
                .pointer_mut("/metadata/labels")
                .and_then(Value::as_object_mut)
            {
                labels.insert(HASH_LABEL.into(), json!(hash));
            }
            let mut selector = d.pointer("/spec/selector").cloned().unwrap_or(json!({}));
            selector["matchLabels"][HASH_LABEL] = json!(hash);
            let mut annotations = Map::new();
            if let Some(d_ann) = d
                .pointer("/metadata/annotations")
                .and_then(Value::as_object)
            {
                for (k, v) in d_ann {
                    if !SKIP_COPY.contains(&k.as_str()) {
                        annotations.insert(k.clone(), v.clone());
                    }
                }
            }
            annotations.insert(DESIRED.into(), json!(replicas.to_string()));
            annotations.insert(MAX.into(), json!((replicas + surge).to_string()));
            annotations.insert(REVISION.into(), json!((old_max_rev + 1).to_string()));
            let rs = json!({"apiVersion": "apps/v1", "kind": "ReplicaSet",
                "metadata": {"name": rs_name, "namespace": ns,
                    "labels": t.pointer("/metadata/labels").cloned().unwrap_or(json!({})),
                    "annotations": annotations,
                    "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": name, "uid": d_uid,
                        "controller": true, "blockOwnerDeletion": true}]},
                "spec": {"replicas": initial, "selector": selector, "template": t}});
            if !store.exists(Kind::ReplicaSet, ns, &rs_name)
                && let Ok(rs) = defaults::apply(Kind::ReplicaSet, rs)
            {
                let created = store.create(Kind::ReplicaSet, ns, rs, false);
                if initial > 0 {
                    make_event(
                        store,
                        state,
                        &d,
                        format!("Scaled up replica set {rs_name} to {initial}"),
                    );
                }
                set_condition(
                    &mut d_conditions,
                    Cond {
                        kind: "Progressing",
                        status: "True",
                        reason: "NewReplicaSetCreated",
                        message: format!("Created new replica set \"{rs_name}\""),
                    },
                    &now,
                );
                new_rs = Some(created);
                changed = true;
            }
        }
    }

    // Scaling (one kind of step per pass, like upstream's rolloutRolling).
    if !paused && !changed {
        let all: Vec<Value> = owned_by(store, Kind::ReplicaSet, ns, &d_uid)
            .into_iter()
            .cloned()
            .collect();
        let new_n = new_rs.as_ref().map(|rs| name_of(rs).to_string());
        let mut old: Vec<Value> = all
            .iter()
            .filter(|rs| Some(name_of(rs)) != new_n.as_deref())
            .cloned()
            .collect();
        old.sort_by(|a, b| {
            let ta = a
                .pointer("/metadata/creationTimestamp")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let tb = b
                .pointer("/metadata/creationTimestamp")
                .and_then(Value::as_str)
                .unwrap_or_default();
            ta.cmp(tb).then_with(|| revision(a).cmp(&revision(b)))
        });
        let fresh_new = new_n
            .as_ref()
            .and_then(|n| all.iter().find(|rs| name_of(rs) == n).cloned());
        if recreate {
            let active: Vec<&Value> = old
                .iter()
                .filter(|rs| int_at(rs, "/spec/replicas") > 0)
                .collect();
            if !active.is_empty() {
                for rs in active {
                    scale(store, state, &d, rs, 0, surge);
                }
                changed = true;
            } else if let Some(n) = &fresh_new {
                let old_pods: i64 = old.iter().map(|rs| int_at(rs, "/status/replicas")).sum();
                if old_pods == 0 && int_at(n, "/spec/replicas") != replicas {
                    scale(store, state, &d, n, replicas, surge);
                    changed = true;
                }
            }
        } else if let Some(n) = &fresh_new {
            let all_spec: i64 = all.iter().map(|rs| int_at(rs, "/spec/replicas")).sum();
            let new_spec = int_at(n, "/spec/replicas");
            if new_spec > replicas {
                scale(store, state, &d, n, replicas, surge);
                changed = true;
            } else if new_spec < replicas && all_spec < replicas + surge {
                let up = (replicas + surge - all_spec).min(replicas - new_spec);
                scale(store, state, &d, n, new_spec + up, surge);
                changed = true;
            } else {
                let old_spec: i64 = old.iter().map(|rs| int_at(rs, "/spec/replicas")).sum();
                if old_spec > 0 {
                    let min_available = replicas - max_unavailable;
                    let new_unavailable = new_spec - int_at(n, "/status/availableReplicas");
                    let max_scaled_down = all_spec - min_available - new_unavailable;
                    if max_scaled_down > 0 {
                        // cleanupUnhealthyReplicas
                        let mut cleaned = 0;
                        for rs in old.iter_mut() {
                            if cleaned >= max_scaled_down {
                                break;
                            }
                            let spec = int_at(rs, "/spec/replicas");
                            let unhealthy = spec - int_at(rs, "/status/availableReplicas");
                            if spec == 0 || unhealthy <= 0 {
                                continue;
                            }
                            let down = (max_scaled_down - cleaned).min(unhealthy);
                            *rs = scale(store, state, &d, rs, spec - down, surge);
                            cleaned += down;
                            changed = true;
                        }
                        // scaleDownOldReplicaSetsForRollingUpdate
                        let available: i64 = all
                            .iter()
                            .map(|rs| int_at(rs, "/status/availableReplicas"))
                            .sum();
                        if available > min_available {
                            let total = (available - min_available).min(max_scaled_down - cleaned);
                            let mut done = 0;
                            for rs in old.iter_mut() {
                                if done >= total {
                                    break;
                                }
                                let spec = int_at(rs, "/spec/replicas");
                                if spec == 0 {
                                    continue;
                                }
                                let down = spec.min(total - done);
                                *rs = scale(store, state, &d, rs, spec - down, surge);
                                done += down;
                                changed = true;
                            }
                        }
                    }
                }
            }
        }
    }

    // cleanupDeployment: enforce revisionHistoryLimit once old ReplicaSets are drained.
    if !paused {
        let limit = d
            .pointer("/spec/revisionHistoryLimit")
            .and_then(Value::as_i64)
            .unwrap_or(10)
            .max(0) as usize;
        let new_n = new_rs.as_ref().map(|rs| name_of(rs).to_string());
        let mut cleanable: Vec<Value> = owned_by(store, Kind::ReplicaSet, ns, &d_uid)
            .into_iter()
            .filter(|rs| Some(name_of(rs)) != new_n.as_deref())
            .filter(|rs| int_at(rs, "/spec/replicas") == 0 && int_at(rs, "/status/replicas") == 0)
            .cloned()
            .collect();
        if cleanable.len() > limit {
            cleanable.sort_by_key(revision);
            let n = cleanable.len() - limit;
            for rs in cleanable.iter().take(n) {
                store.delete(Kind::ReplicaSet, ns, name_of(rs));
            }
            changed = true;
        }
    }

    // Status (calculateStatus + checkPausedConditions + syncRolloutStatus).
    let Some(cur) = store.get(Kind::Deployment, ns, name).cloned() else {
        return changed;
    };
    let all: Vec<Value> = owned_by(store, Kind::ReplicaSet, ns, &d_uid)
        .into_iter()
        .cloned()
        .collect();
    let new_n = new_rs.as_ref().map(|rs| name_of(rs).to_string());
    let fresh_new = new_n
        .as_ref()
        .and_then(|n| all.iter().find(|rs| name_of(rs) == n).cloned());
    let sum = |ptr: &str| -> i64 { all.iter().map(|rs| int_at(rs, ptr)).sum() };
    let actual = sum("/status/replicas");
    let updated = fresh_new
        .as_ref()
        .map_or(0, |rs| int_at(rs, "/status/replicas"));
    let ready = sum("/status/readyReplicas");
    let available = sum("/status/availableReplicas");
    let unavailable = (sum("/spec/replicas") - available).max(0);
    let generation = int_at(&cur, "/metadata/generation");
    let has_deadline = cur
        .pointer("/spec/progressDeadlineSeconds")
        .and_then(Value::as_i64)
        .is_some();

    // checkPausedConditions
    if has_deadline {
        let reason = condition(&d_conditions, "Progressing").map(|c| c["reason"].clone());
        let is_paused_cond = reason.as_ref().is_some_and(|r| r == "DeploymentPaused");
        let timed_out = reason
            .as_ref()
            .is_some_and(|r| r == "ProgressDeadlineExceeded");
        if !timed_out {
            if paused && !is_paused_cond {
                set_condition(
                    &mut d_conditions,
                    Cond {
                        kind: "Progressing",
                        status: "Unknown",
                        reason: "DeploymentPaused",
                        message: "Deployment is paused".into(),
                    },
                    &now,
                );
            } else if !paused && is_paused_cond {
                set_condition(
                    &mut d_conditions,
                    Cond {
                        kind: "Progressing",
                        status: "Unknown",
                        reason: "DeploymentResumed",
                        message: "Deployment is resumed".into(),
                    },
                    &now,
                );
            }
        }
    }
    // calculateStatus: the Available condition.
    if available >= replicas - max_unavailable {
        set_condition(
            &mut d_conditions,
            Cond {
                kind: "Available",
                status: "True",
                reason: "MinimumReplicasAvailable",
                message: "Deployment has minimum availability.".into(),
            },
            &now,
        );
    } else {
        set_condition(
            &mut d_conditions,
            Cond {
                kind: "Available",
                status: "False",
                reason: "MinimumReplicasUnavailable",
                message: "Deployment does not have minimum availability.".into(),
            },
            &now,
        );
    }
    // syncRolloutStatus (not for paused Deployments).
    if !paused
        && has_deadline
        && let Some(nrs) = &fresh_new
    {
        let rs_name = name_of(nrs).to_string();
        let current = condition(&d_conditions, "Progressing").cloned();
        let complete_already = actual == updated
            && current
                .as_ref()
                .is_some_and(|c| c["reason"] == "NewReplicaSetAvailable");
        if !complete_already {
            let old_status = cur.get("status").cloned().unwrap_or(json!({}));
            let o = |f: &str| int_at(&old_status, &format!("/{f}"));
            let complete = updated == replicas
                && actual == replicas
                && available == replicas
                && generation >= int_at(&cur, "/metadata/generation");
            let progressing = updated > o("updatedReplicas")
                || (actual - updated) < (o("replicas") - o("updatedReplicas"))
                || ready > o("readyReplicas")
                || available > o("availableReplicas");
            if complete {
                set_condition(
                    &mut d_conditions,
                    Cond {
                        kind: "Progressing",
                        status: "True",
                        reason: "NewReplicaSetAvailable",
                        message: format!("ReplicaSet \"{rs_name}\" has successfully progressed."),
                    },
                    &now,
                );
            } else if progressing {
                let transition = match &current {
                    Some(c) if c["status"] == "True" => c["lastTransitionTime"].clone(),
                    _ => json!(now),
                };
                d_conditions.retain(|c| c["type"] != "Progressing");
                d_conditions.push(
                    json!({"type": "Progressing", "status": "True", "lastUpdateTime": now,
                        "lastTransitionTime": transition, "reason": "ReplicaSetUpdated",
                        "message": format!("ReplicaSet \"{rs_name}\" is progressing.")}),
                );
            } else if let Some(c) = &current {
                let timed_out = c["reason"] == "ProgressDeadlineExceeded"
                    || (c["reason"] != "NewReplicaSetAvailable" && {
                        let deadline = cur
                            .pointer("/spec/progressDeadlineSeconds")
                            .and_then(Value::as_i64)
                            .unwrap_or(600);
                        c["lastUpdateTime"]
                            .as_str()
                            .and_then(|t| t.parse::<jiff::Timestamp>().ok())
                            .and_then(|t| {
                                t.checked_add(jiff::SignedDuration::from_secs(deadline))
                                    .ok()
                            })
                            .is_some_and(|until| until < store.now())
                    });
                if timed_out {
                    set_condition(
                        &mut d_conditions,
                        Cond {
                            kind: "Progressing",
                            status: "False",
                            reason: "ProgressDeadlineExceeded",
                            message: format!("ReplicaSet \"{rs_name}\" has timed out progressing."),
                        },
                        &now,
                    );
                }
            }
        }
    }
    let mut status = Map::new();
    status.insert("observedGeneration".into(), json!(generation));
    for (k, v) in [
        ("replicas", actual),
        ("updatedReplicas", updated),
        ("readyReplicas", ready),
        ("availableReplicas", available),
        ("unavailableReplicas", unavailable),
    ] {
        if v != 0 {
            status.insert(k.into(), json!(v));
        }
    }
    if !d_conditions.is_empty() {
        status.insert("conditions".into(), Value::Array(d_conditions));
    }
    if let Some(cc) = cur.pointer("/status/collisionCount") {
        status.insert("collisionCount".into(), cc.clone());
    }
    let mut next = cur.clone();
    next["status"] = Value::Object(status);
    if let Some(rs) = &fresh_new {
        let rev = annotation(rs, REVISION).unwrap_or("0").to_string();
        if annotation(&next, REVISION) != Some(rev.as_str())
            && let Some(ann) = annotations_mut(&mut next)
        {
            ann.insert(REVISION.into(), json!(rev));
        }
    }
    if next != cur {
        store.update(Kind::Deployment, ns, next, Writer::Status, false);
        changed = true;
    }
    changed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn surge_and_unavailable_round_like_upstream() {
        let d = json!({"spec": {"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}}}});
        assert_eq!(surge_and_unavailable(&d, 2), (1, 0));
        assert_eq!(surge_and_unavailable(&d, 1), (1, 0));
        assert_eq!(surge_and_unavailable(&d, 10), (3, 2));
        let d = json!({"spec": {"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 0}}}});
        assert_eq!(surge_and_unavailable(&d, 3), (0, 1));
    }

    #[test]
    fn template_hash_is_stable_and_short() {
        let t = json!({"spec": {"containers": [{"name": "a", "image": "x:1"}]}});
        assert_eq!(template_hash(&t), template_hash(&t.clone()));
        assert_eq!(template_hash(&t).len(), 10);
        assert_ne!(template_hash(&t), template_hash(&json!({"spec": {}})));
    }
}
