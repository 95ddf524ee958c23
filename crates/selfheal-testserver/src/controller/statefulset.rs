//! The StatefulSet controller (pkg/controller/statefulset), one function per
//! step of its `updateStatefulSet`: find the current and update revisions
//! (creating or renumbering a ControllerRevision), create missing pods in
//! ordinal order and wait for each to be ready (OrderedReady), replace pods
//! not on the update revision from the highest ordinal down to the
//! partition (none under `OnDelete`), write the status, and truncate the
//! history (statefulset-*.json in tests/fixtures/k8s).

use std::collections::HashSet;

use serde_json::{Map, Value, json};

use super::history::{self, HASH_LABEL, NewRevision, POD_REVISION_LABEL};
use super::{
    ControllerState, Event, create_pod, int_at, ns_of, owned_by, pod_ready, record_event, uid_of,
    write_status,
};
use crate::store::{Kind, Store, name_of};

/// The label naming a StatefulSet pod (`apps.StatefulSetPodNameLabel`).
const POD_NAME_LABEL: &str = "statefulset.kubernetes.io/pod-name";

/// One pass over one StatefulSet; true if anything changed.
pub(super) fn sync_stateful_set(store: &mut Store, state: &ControllerState, set: Value) -> bool {
    let revisions = history::list(store, &set);
    let Some(sync) = SetSync::read(store, set, &revisions) else {
        return false;
    };
    let mut changed = sync.wrote_revision;
    if !changed {
        changed = sync.update_pods(store, state);
    }
    changed |= sync.update_status(store);
    changed |= sync.truncate_history(store);
    changed
}

/// What one sync reads once: the set, its revisions and pods by ordinal.
struct SetSync {
    set: Value,
    ns: String,
    replicas: i64,
    /// The revision the pods came from (`status.currentRevision`).
    current: Value,
    /// The revision of the set's template (`status.updateRevision`).
    update: Value,
    wrote_revision: bool,
}

impl SetSync {
    /// getStatefulSetRevisions: the update revision for the live template
    /// (reused and renumbered when an older one matches), and the current
    /// one named by the status (the update revision when there is none).
    fn read(store: &mut Store, set: Value, revisions: &[Value]) -> Option<SetSync> {
        let template = set.pointer("/spec/template").cloned().unwrap_or(json!({}));
        let new = NewRevision::of(&set, Kind::StatefulSet, HASH_LABEL);
        let (update, wrote_revision) = history::find_or_create(store, revisions, &template, &new);
        let update = update?;
        let current_name = set
            .pointer("/status/currentRevision")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let current = history::list(store, &set)
            .into_iter()
            .find(|r| name_of(r) == current_name)
            .unwrap_or_else(|| update.clone());
        Some(SetSync {
            ns: ns_of(&set).to_string(),
            replicas: int_at(&set, "/spec/replicas").max(0),
            current,
            update,
            wrote_revision,
            set,
        })
    }

    fn name(&self) -> &str {
        name_of(&self.set)
    }

    /// The set's pods by ordinal (`<set>-<ordinal>`); pods whose name has no
    /// ordinal are ignored, like upstream's `isMemberOf`.
    fn pods(&self, store: &Store) -> Vec<(i64, Value)> {
        let prefix = format!("{}-", self.name());
        let mut pods: Vec<(i64, Value)> = owned_by(store, Kind::Pod, &self.ns, uid_of(&self.set))
            .into_iter()
            .filter_map(|p| {
                let ord = name_of(p).strip_prefix(&prefix)?.parse().ok()?;
                Some((ord, p.clone()))
            })
            .collect();
        pods.sort_by_key(|(ord, _)| *ord);
        pods
    }

    fn strategy(&self) -> &str {
        self.set
            .pointer("/spec/updateStrategy/type")
            .and_then(Value::as_str)
            .unwrap_or("RollingUpdate")
    }

    fn partition(&self) -> Option<i64> {
        self.set
            .pointer("/spec/updateStrategy/rollingUpdate/partition")
            .and_then(Value::as_i64)
    }

    /// OrderedReady pod management: one step per pass, as upstream returns
    /// after each create or delete; Parallel creates every missing pod.
    fn update_pods(&self, store: &mut Store, state: &ControllerState) -> bool {
        let monotonic = self
            .set
            .pointer("/spec/podManagementPolicy")
            .and_then(Value::as_str)
            != Some("Parallel");
        let pods = self.pods(store);
        let at = |ord: i64| pods.iter().find(|(o, _)| *o == ord).map(|(_, p)| p);
        let mut changed = false;
        for ord in 0..self.replicas {
            match at(ord) {
                None => {
                    changed |= self.create_pod(store, state, ord);
                    if monotonic {
                        return changed;
                    }
                }
                Some(p) if monotonic && !pod_ready(p) => return changed,
                Some(_) => {}
            }
        }
        // Condemned pods (scale down): the highest ordinal first.
        if let Some((_, p)) = pods.iter().rev().find(|(o, _)| *o >= self.replicas) {
            self.delete_pod(store, state, p);
            return true;
        }
        if changed || self.strategy() != "RollingUpdate" {
            return changed;
        }
        self.roll_one(store, state, &pods)
    }

    /// Deletes a pod and records it like the controller's event recorder.
    fn delete_pod(&self, store: &mut Store, state: &ControllerState, pod: &Value) {
        store.delete(Kind::Pod, &self.ns, name_of(pod));
        self.event(store, state, "SuccessfulDelete", "delete", name_of(pod));
    }

    /// `<verb> Pod <pod> in StatefulSet <set> successful` (stateful_pod_control.go).
    fn event(
        &self,
        store: &mut Store,
        state: &ControllerState,
        reason: &'static str,
        verb: &str,
        pod: &str,
    ) {
        let message = format!("{verb} Pod {pod} in StatefulSet {} successful", self.name());
        let event = Event {
            reason,
            message,
            component: "statefulset-controller",
        };
        record_event(store, state, &self.set, Kind::StatefulSet, event);
    }

    /// The rolling update: from the highest ordinal down to the partition,
    /// the first pod not on the update revision is deleted (and recreated
    /// on it by a later pass); an updated pod that is not ready yet stops
    /// the walk.
    fn roll_one(&self, store: &mut Store, state: &ControllerState, pods: &[(i64, Value)]) -> bool {
        let update_min = self.partition().unwrap_or(0);
        for (ord, pod) in pods.iter().rev() {
            if *ord >= self.replicas || *ord < update_min {
                continue;
            }
            if pod_revision(pod) != name_of(&self.update) {
                self.delete_pod(store, state, pod);
                return true;
            }
            if !pod_ready(pod) {
                return false;
            }
        }
        false
    }

    /// newVersionedStatefulSetPod: ordinals below the partition (or, without
    /// one, below the current replica count) come back on the current
    /// revision, the others on the update revision.
    fn create_pod(&self, store: &mut Store, state: &ControllerState, ord: i64) -> bool {
        let on_current = self.strategy() == "RollingUpdate"
            && match self.partition() {
                Some(p) => ord < p,
                None => ord < int_at(&self.set, "/status/currentReplicas"),
            };
        let revision = if on_current {
            &self.current
        } else {
            &self.update
        };
        let template = history::template_of(revision);
        let name = format!("{}-{ord}", self.name());
        let mut labels = template
            .pointer("/metadata/labels")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        labels.insert(POD_REVISION_LABEL.into(), json!(name_of(revision)));
        labels.insert(POD_NAME_LABEL.into(), json!(name));
        let mut metadata = json!({"name": name, "generateName": format!("{}-", self.name()),
            "namespace": self.ns, "labels": labels,
            "ownerReferences": [history::owner_reference(&self.set, Kind::StatefulSet)]});
        if let Some(a) = template.pointer("/metadata/annotations") {
            metadata["annotations"] = a.clone();
        }
        let mut spec = template.get("spec").cloned().unwrap_or(json!({}));
        spec["hostname"] = json!(name);
        if let Some(service) = self.set.pointer("/spec/serviceName") {
            spec["subdomain"] = service.clone();
        }
        let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec});
        let created = create_pod(store, state, pod).is_some();
        if created {
            self.event(store, state, "SuccessfulCreate", "create", &name);
        }
        created
    }

    /// updateStatefulSetStatus: counts over the pods, and once every pod is
    /// updated and ready the update revision becomes the current one
    /// (completeRollingUpdate). Zero counts are omitted like the API's JSON,
    /// except `replicas` and `availableReplicas`.
    fn update_status(&self, store: &mut Store) -> bool {
        let pods = self.pods(store);
        let count = |f: &dyn Fn(&Value) -> bool| pods.iter().filter(|(_, p)| f(p)).count() as i64;
        let replicas = pods.len() as i64;
        let ready = count(&pod_ready);
        let mut current = count(&|p| pod_revision(p) == name_of(&self.current));
        let updated = count(&|p| pod_revision(p) == name_of(&self.update));
        let mut current_revision = name_of(&self.current);
        if self.strategy() == "RollingUpdate" && updated == replicas && ready == replicas {
            current = updated;
            current_revision = name_of(&self.update);
        }
        let mut status = Map::new();
        status.insert(
            "observedGeneration".into(),
            json!(int_at(&self.set, "/metadata/generation")),
        );
        status.insert("replicas".into(), json!(replicas));
        for (k, v) in [
            ("readyReplicas", ready),
            ("currentReplicas", current),
            ("updatedReplicas", updated),
        ] {
            if v != 0 {
                status.insert(k.into(), json!(v));
            }
        }
        status.insert("currentRevision".into(), json!(current_revision));
        status.insert("updateRevision".into(), json!(name_of(&self.update)));
        let collisions = self
            .set
            .pointer("/status/collisionCount")
            .cloned()
            .unwrap_or(json!(0));
        status.insert("collisionCount".into(), collisions);
        status.insert("availableReplicas".into(), json!(ready));
        write_status(store, Kind::StatefulSet, &self.set, status)
    }

    /// truncateHistory: revisions no pod and neither status revision names.
    fn truncate_history(&self, store: &mut Store) -> bool {
        let mut live: HashSet<String> = self
            .pods(store)
            .iter()
            .map(|(_, p)| pod_revision(p).to_string())
            .collect();
        live.insert(name_of(&self.current).to_string());
        live.insert(name_of(&self.update).to_string());
        let revisions = history::list(store, &self.set);
        history::truncate(store, &self.set, &revisions, |r| live.contains(name_of(r)))
    }
}

fn pod_revision(pod: &Value) -> &str {
    pod.pointer("/metadata/labels")
        .and_then(|l| l.get(POD_REVISION_LABEL))
        .and_then(Value::as_str)
        .unwrap_or_default()
}
