//! The DaemonSet controller (pkg/controller/daemon), one function per step
//! of its `syncDaemonSet`: construct the history (the revision of the live
//! template, reused and renumbered when an older one matches), manage one
//! pod per eligible Node (created with node affinity: there is no
//! scheduler), replace old pods within `maxUnavailable` (none under
//! `OnDelete`), clean up the history and write the status
//! (daemonset-*.json in tests/fixtures/k8s).

use std::collections::{BTreeMap, HashSet};

use serde_json::{Map, Value, json};

use super::history::{self, NewRevision, POD_REVISION_LABEL};
use super::{
    ControllerState, Event, create_pod, created_at, int_at, ns_of, owned_by, pod_ready,
    record_event, uid_of, write_status,
};
use crate::store::{Kind, Store, name_of, template_generation};

/// The label carrying the DaemonSet's template generation on its pods.
const TEMPLATE_GENERATION_LABEL: &str = "pod-template-generation";

/// The tolerations the controller adds to every daemon pod
/// (AddOrUpdateDaemonPodTolerations, no host network).
const DAEMON_TOLERATIONS: [(&str, &str); 6] = [
    ("node.kubernetes.io/not-ready", "NoExecute"),
    ("node.kubernetes.io/unreachable", "NoExecute"),
    ("node.kubernetes.io/disk-pressure", "NoSchedule"),
    ("node.kubernetes.io/memory-pressure", "NoSchedule"),
    ("node.kubernetes.io/pid-pressure", "NoSchedule"),
    ("node.kubernetes.io/unschedulable", "NoSchedule"),
];

/// One pass over one DaemonSet; true if anything changed.
pub(super) fn sync_daemon_set(store: &mut Store, state: &ControllerState, ds: Value) -> bool {
    let (Some(sync), wrote) = DaemonSync::construct_history(store, ds) else {
        return false;
    };
    let mut changed = wrote;
    if !changed {
        changed = sync.manage(store, state);
    }
    // The rolling update waits until the pods the manage step created or
    // deleted are seen (upstream's expectations).
    if !changed && sync.strategy() == "RollingUpdate" {
        changed = sync.rolling_update(store, state);
    }
    changed |= sync.cleanup_history(store);
    changed |= sync.update_status(store);
    changed
}

struct DaemonSync {
    ds: Value,
    ns: String,
    /// The revision of the live template.
    cur: Value,
    /// Its hash, as the pods' `controller-revision-hash` carries it.
    hash: String,
}

impl DaemonSync {
    /// constructHistory: the revision equal to the template, renumbered
    /// past the others when it is older; a new snapshot (carrying the
    /// DaemonSet's annotations) otherwise.
    fn construct_history(store: &mut Store, ds: Value) -> (Option<DaemonSync>, bool) {
        let revisions = history::list(store, &ds);
        let template = ds.pointer("/spec/template").cloned().unwrap_or(json!({}));
        let new = NewRevision::of(&ds, Kind::DaemonSet, POD_REVISION_LABEL);
        let (cur, wrote) = history::find_or_create(store, &revisions, &template, &new);
        let sync = cur.map(|cur| DaemonSync {
            ns: ns_of(&ds).to_string(),
            hash: cur
                .pointer("/metadata/labels")
                .and_then(|l| l.get(POD_REVISION_LABEL))
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            cur,
            ds,
        });
        (sync, wrote)
    }

    fn name(&self) -> &str {
        name_of(&self.ds)
    }

    fn strategy(&self) -> &str {
        self.ds
            .pointer("/spec/updateStrategy/type")
            .and_then(Value::as_str)
            .unwrap_or("RollingUpdate")
    }

    /// Every Node with whether a daemon pod should run there, and the pods
    /// placed on it (by `nodeName`, or the node affinity the controller
    /// sets), oldest first.
    fn nodes(&self, store: &Store) -> Vec<(String, bool, Vec<Value>)> {
        let mut pods: BTreeMap<String, Vec<Value>> = BTreeMap::new();
        for p in owned_by(store, Kind::Pod, &self.ns, uid_of(&self.ds)) {
            pods.entry(target_node(p).to_string())
                .or_default()
                .push(p.clone());
        }
        store
            .list(Kind::Node, None)
            .into_iter()
            .map(|node| {
                let name = name_of(node).to_string();
                let mut on = pods.remove(&name).unwrap_or_default();
                on.sort_by(|a, b| created_at(a).cmp(created_at(b)));
                (name, self.should_run(node), on)
            })
            .collect()
    }

    /// NodeShouldRunDaemonPod: the template's nodeSelector matches and the
    /// pod tolerates every NoSchedule/NoExecute taint.
    fn should_run(&self, node: &Value) -> bool {
        let labels = node.pointer("/metadata/labels").and_then(Value::as_object);
        let selector_ok = self
            .ds
            .pointer("/spec/template/spec/nodeSelector")
            .and_then(Value::as_object)
            .is_none_or(|sel| {
                sel.iter()
                    .all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v))
            });
        let tolerations = self.tolerations();
        let taints = node
            .pointer("/spec/taints")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        selector_ok
            && taints.iter().all(|t| {
                t["effect"] == "PreferNoSchedule" || tolerations.iter().any(|tol| tolerates(tol, t))
            })
    }

    /// The template's tolerations plus the daemon ones.
    fn tolerations(&self) -> Vec<Value> {
        let mut out = self
            .ds
            .pointer("/spec/template/spec/tolerations")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for (key, effect) in DAEMON_TOLERATIONS {
            if !out.iter().any(|t| t["key"] == key && t["effect"] == effect) {
                out.push(json!({"key": key, "operator": "Exists", "effect": effect}));
            }
        }
        out
    }

    /// manage: a pod on every node that should run one and has none; no
    /// pod on a node that should not run one.
    fn manage(&self, store: &mut Store, state: &ControllerState) -> bool {
        let mut changed = false;
        for (node, should_run, pods) in self.nodes(store) {
            if should_run && pods.is_empty() {
                changed |= self.create_pod(store, state, &node);
            } else if !should_run {
                for p in &pods {
                    self.delete_pod(store, state, name_of(p));
                    changed = true;
                }
            }
        }
        changed
    }

    /// CreatePodTemplate on one node: the template with the revision hash
    /// and template generation labels, the daemon tolerations, and a node
    /// affinity naming `node`.
    fn create_pod(&self, store: &mut Store, state: &ControllerState, node: &str) -> bool {
        let template = self
            .ds
            .pointer("/spec/template")
            .cloned()
            .unwrap_or(json!({}));
        let mut labels = template
            .pointer("/metadata/labels")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        labels.insert(POD_REVISION_LABEL.into(), json!(self.hash));
        labels.insert(
            TEMPLATE_GENERATION_LABEL.into(),
            json!(template_generation(&self.ds).to_string()),
        );
        let mut name = format!("{}-{}", self.name(), crate::random_suffix(5));
        while store.exists(Kind::Pod, &self.ns, &name) {
            name = format!("{}-{}", self.name(), crate::random_suffix(5));
        }
        let mut metadata = json!({"name": name, "generateName": format!("{}-", self.name()),
            "namespace": self.ns, "labels": labels,
            "ownerReferences": [history::owner_reference(&self.ds, Kind::DaemonSet)]});
        if let Some(a) = template.pointer("/metadata/annotations") {
            metadata["annotations"] = a.clone();
        }
        let mut spec = template.get("spec").cloned().unwrap_or(json!({}));
        spec["tolerations"] = json!(self.tolerations());
        let required = json!({"nodeSelectorTerms": [{"matchFields": [
            {"key": "metadata.name", "operator": "In", "values": [node]}]}]});
        spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"] =
            required;
        let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec});
        let created = create_pod(store, state, pod).is_some();
        if created {
            self.event(
                store,
                state,
                "SuccessfulCreate",
                format!("Created pod: {name}"),
            );
        }
        created
    }

    /// Deletes a pod and records it like the controller's event recorder.
    fn delete_pod(&self, store: &mut Store, state: &ControllerState, pod: &str) {
        store.delete(Kind::Pod, &self.ns, pod);
        self.event(
            store,
            state,
            "SuccessfulDelete",
            format!("Deleted pod: {pod}"),
        );
    }

    /// An event about the DaemonSet (controller_utils.go's pod control).
    fn event(
        &self,
        store: &mut Store,
        state: &ControllerState,
        reason: &'static str,
        message: String,
    ) {
        let event = Event {
            reason,
            message,
            component: "daemonset-controller",
        };
        record_event(store, state, &self.ds, Kind::DaemonSet, event);
    }

    /// IsPodUpdated: the pod carries the live revision's hash or the live
    /// template generation.
    fn is_updated(&self, pod: &Value) -> bool {
        let label = |k: &str| {
            pod.pointer("/metadata/labels")
                .and_then(|l| l.get(k))
                .and_then(Value::as_str)
        };
        label(POD_REVISION_LABEL) == Some(self.hash.as_str())
            || label(TEMPLATE_GENERATION_LABEL)
                == Some(template_generation(&self.ds).to_string().as_str())
    }

    /// rollingUpdate without surge: old pods that are not available go at
    /// once; available old pods only while fewer than maxUnavailable
    /// nodes are unavailable. The manage step recreates them updated.
    fn rolling_update(&self, store: &mut Store, state: &ControllerState) -> bool {
        let nodes = self.nodes(store);
        let desired = nodes.iter().filter(|(_, run, _)| *run).count() as i64;
        let max_unavailable = self.max_unavailable(desired);
        let mut unavailable = 0;
        let mut replace: Vec<String> = Vec::new();
        let mut candidates: Vec<String> = Vec::new();
        for (_, _, pods) in &nodes {
            let new = pods.iter().find(|p| self.is_updated(p));
            let old = pods.iter().find(|p| !self.is_updated(p));
            match (new, old) {
                (Some(new), None) => unavailable += i64::from(!pod_ready(new)),
                (None, Some(old)) if !pod_ready(old) => replace.push(name_of(old).to_string()),
                (None, Some(_)) if unavailable >= max_unavailable => {}
                (None, Some(old)) => candidates.push(name_of(old).to_string()),
                _ => unavailable += 1,
            }
        }
        let room = (max_unavailable - unavailable).clamp(0, candidates.len() as i64) as usize;
        replace.extend(candidates.into_iter().take(room));
        for name in &replace {
            self.delete_pod(store, state, name);
        }
        !replace.is_empty()
    }

    /// maxUnavailable of the desired node count (a percentage rounds up);
    /// at least 1.
    fn max_unavailable(&self, desired: i64) -> i64 {
        let value = self
            .ds
            .pointer("/spec/updateStrategy/rollingUpdate/maxUnavailable");
        let n = match value {
            Some(Value::Number(n)) => n.as_i64().unwrap_or(1),
            Some(Value::String(s)) => s
                .strip_suffix('%')
                .and_then(|p| p.parse::<i64>().ok())
                .map_or(1, |p| (p * desired + 99) / 100),
            _ => 1,
        };
        n.max(1)
    }

    /// cleanupHistory: old revisions no pod runs beyond the history limit.
    fn cleanup_history(&self, store: &mut Store) -> bool {
        let live: HashSet<String> = owned_by(store, Kind::Pod, &self.ns, uid_of(&self.ds))
            .into_iter()
            .filter_map(|p| {
                p.pointer("/metadata/labels")?
                    .get(POD_REVISION_LABEL)?
                    .as_str()
            })
            .map(str::to_string)
            .collect();
        let revisions = history::list(store, &self.ds);
        let hash = |r: &Value| {
            r.pointer("/metadata/labels")
                .and_then(|l| l.get(POD_REVISION_LABEL))
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        history::truncate(store, &self.ds, &revisions, |r| {
            name_of(r) == name_of(&self.cur) || live.contains(&hash(r))
        })
    }

    /// updateDaemonSetStatus: counts per node (the oldest pod of each);
    /// the four node counts always shown, the others omitted when zero.
    fn update_status(&self, store: &mut Store) -> bool {
        let (mut desired, mut current, mut misscheduled) = (0, 0, 0);
        let (mut ready, mut updated) = (0, 0);
        for (_, should_run, pods) in self.nodes(store) {
            match (should_run, pods.first()) {
                (true, None) => desired += 1,
                (true, Some(pod)) => {
                    desired += 1;
                    current += 1;
                    ready += i64::from(pod_ready(pod));
                    updated += i64::from(self.is_updated(pod));
                }
                (false, Some(_)) => misscheduled += 1,
                (false, None) => {}
            }
        }
        let mut status = Map::new();
        for (k, v) in [
            ("currentNumberScheduled", current),
            ("numberMisscheduled", misscheduled),
            ("desiredNumberScheduled", desired),
            ("numberReady", ready),
        ] {
            status.insert(k.into(), json!(v));
        }
        for (k, v) in [
            (
                "observedGeneration",
                int_at(&self.ds, "/metadata/generation"),
            ),
            ("updatedNumberScheduled", updated),
            ("numberAvailable", ready),
            ("numberUnavailable", desired - ready),
        ] {
            if v != 0 {
                status.insert(k.into(), json!(v));
            }
        }
        if let Some(cc) = self.ds.pointer("/status/collisionCount") {
            status.insert("collisionCount".into(), cc.clone());
        }
        write_status(store, Kind::DaemonSet, &self.ds, status)
    }
}

/// GetTargetNodeName: `spec.nodeName`, or the node the affinity pins.
fn target_node(pod: &Value) -> &str {
    pod.pointer("/spec/nodeName")
        .and_then(Value::as_str)
        .or_else(|| {
            pod.pointer("/spec/affinity/nodeAffinity/requiredDuringSchedulingIgnoredDuringExecution/nodeSelectorTerms/0/matchFields/0/values/0")
                .and_then(Value::as_str)
        })
        .unwrap_or_default()
}

/// ToleratesTaint: same key (or any with an empty key and Exists), same
/// effect (or any), and for Equal the same value.
fn tolerates(toleration: &Value, taint: &Value) -> bool {
    let key_ok = toleration["key"] == taint["key"]
        || (toleration["key"].as_str().unwrap_or_default().is_empty()
            && toleration["operator"] == "Exists");
    let effect_ok = toleration["effect"].as_str().is_none_or(str::is_empty)
        || toleration["effect"] == taint["effect"];
    let value_ok = toleration["operator"] == "Exists"
        || toleration["value"].as_str().unwrap_or_default()
            == taint["value"].as_str().unwrap_or_default();
    key_ok && effect_ok && value_ok
}
