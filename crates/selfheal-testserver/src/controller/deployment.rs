//! The Deployment controller (pkg/controller/deployment), one function per
//! step of its `syncDeployment`: find or create the new ReplicaSet and
//! renumber revisions (sync.go), roll pods over by scaling ReplicaSets
//! (rolling.go, recreate.go), prune old ReplicaSets past the history limit,
//! and write the status and conditions (sync.go, progress.go).

use selfheal_core::keys::{
    DESIRED_REPLICAS, LAST_APPLIED, MAX_REPLICAS, POD_TEMPLATE_HASH, REVISION, REVISION_HISTORY,
    ROLLBACK_TO,
};
use serde_json::{Map, Value, json};

use super::{
    ControllerState, annotation, annotations_mut, created_at, int_at, ns_of, owned_by, revision,
    uid_of,
};
use crate::defaults;
use crate::store::{Kind, Store, Writer, name_of};

/// Annotations the controller never copies from a Deployment to its ReplicaSets.
const SKIP_COPY: &[&str] = &[
    LAST_APPLIED,
    REVISION,
    REVISION_HISTORY,
    DESIRED_REPLICAS,
    MAX_REPLICAS,
    ROLLBACK_TO,
];

/// syncDeployment: one pass over one Deployment; true if anything changed.
pub(super) fn sync_deployment(store: &mut Store, state: &ControllerState, d: Value) -> bool {
    let mut sync = DeploymentSync::read(store, d);
    let (new_rs, mut changed) = sync.get_new_replica_set(store, state);
    let new_rs = new_rs.as_deref();
    // One kind of step per pass, like upstream's rolloutRolling.
    if !sync.paused && !changed {
        changed = if sync.recreate {
            sync.rollout_recreate(store, state, new_rs)
        } else {
            sync.rollout_rolling(store, state, new_rs)
        };
    }
    if !sync.paused {
        changed |= sync.cleanup_deployment(store, new_rs);
    }
    changed |= sync.sync_status(store, new_rs);
    changed
}

/// What one sync reads from the Deployment once, and the conditions it
/// rewrites along the way.
struct DeploymentSync {
    d: Value,
    ns: String,
    uid: String,
    replicas: i64,
    paused: bool,
    recreate: bool,
    surge: i64,
    max_unavailable: i64,
    template: Value,
    conditions: Vec<Value>,
    /// The server's clock when the sync started: every condition it sets carries it.
    now: String,
}

impl DeploymentSync {
    fn read(store: &Store, d: Value) -> DeploymentSync {
        let replicas = int_at(&d, "/spec/replicas");
        let (surge, max_unavailable) = surge_and_unavailable(&d, replicas);
        DeploymentSync {
            ns: ns_of(&d).to_string(),
            uid: uid_of(&d).to_string(),
            replicas,
            paused: d.pointer("/spec/paused").and_then(Value::as_bool) == Some(true),
            recreate: d.pointer("/spec/strategy/type").and_then(Value::as_str) == Some("Recreate"),
            surge,
            max_unavailable,
            template: d.pointer("/spec/template").cloned().unwrap_or(json!({})),
            conditions: d
                .pointer("/status/conditions")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default(),
            now: store.now_string(),
            d,
        }
    }

    fn name(&self) -> &str {
        name_of(&self.d)
    }

    /// The ReplicaSets this Deployment controls, as the store has them now.
    fn replica_sets(&self, store: &Store) -> Vec<Value> {
        owned_by(store, Kind::ReplicaSet, &self.ns, &self.uid)
            .into_iter()
            .cloned()
            .collect()
    }

    /// getNewReplicaSet: the ReplicaSet whose template is the Deployment's
    /// (annotations and revision brought up to date), or a new one. Returns
    /// its name and whether anything was written.
    fn get_new_replica_set(
        &mut self,
        store: &mut Store,
        state: &ControllerState,
    ) -> (Option<String>, bool) {
        let rss = self.replica_sets(store);
        let existing = rss.iter().find(|rs| {
            template_without_hash(rs.pointer("/spec/template").unwrap_or(&Value::Null))
                == self.template
        });
        let new_name = existing.map(name_of);
        let old_max_rev = rss
            .iter()
            .filter(|rs| Some(name_of(rs)) != new_name)
            .map(revision)
            .max()
            .unwrap_or(0);
        match existing {
            Some(rs) => self.update_new_replica_set(store, rs, old_max_rev + 1),
            None if !self.paused => {
                self.create_new_replica_set(store, state, &rss, old_max_rev + 1)
            }
            None => (None, false),
        }
    }

    /// The found ReplicaSet takes the Deployment's annotations and, when it
    /// is not already the newest, the next revision (a rollback renumbers
    /// an old ReplicaSet this way).
    fn update_new_replica_set(
        &mut self,
        store: &mut Store,
        existing: &Value,
        new_revision: i64,
    ) -> (Option<String>, bool) {
        let mut rs = existing.clone();
        let mut changed = false;
        set_new_replica_set_annotations(&self.d, &mut rs, new_revision);
        if &rs != existing {
            rs = store.update(Kind::ReplicaSet, &self.ns, rs, Writer::Controller, false);
            changed = true;
        }
        if condition(&self.conditions, "Progressing").is_none() && !self.paused {
            self.set_condition(Cond {
                kind: "Progressing",
                status: "True",
                reason: "FoundNewReplicaSet",
                message: format!("Found new replica set \"{}\"", name_of(&rs)),
            });
        }
        (Some(name_of(&rs).to_string()), changed)
    }

    /// A ReplicaSet for the Deployment's template, named by its hash and
    /// started at as many replicas as the surge allows (all of them for
    /// Recreate, once every old pod is gone).
    fn create_new_replica_set(
        &mut self,
        store: &mut Store,
        state: &ControllerState,
        old: &[Value],
        new_revision: i64,
    ) -> (Option<String>, bool) {
        let old_spec: i64 = old.iter().map(|rs| int_at(rs, "/spec/replicas")).sum();
        let old_pods: i64 = old.iter().map(|rs| int_at(rs, "/status/replicas")).sum();
        if self.recreate && (old_spec != 0 || old_pods != 0) {
            return (None, false);
        }
        let replicas = self.replicas;
        let hash = template_hash(&self.template);
        let rs_name = format!("{}-{hash}", self.name());
        let initial = if self.recreate {
            replicas
        } else {
            let max_total = replicas + self.surge;
            if old_spec >= max_total {
                0
            } else {
                (max_total - old_spec).min(replicas)
            }
        };
        let mut t = self.template.clone();
        if let Some(labels) = t
            .pointer_mut("/metadata/labels")
            .and_then(Value::as_object_mut)
        {
            labels.insert(POD_TEMPLATE_HASH.into(), json!(hash));
        }
        let mut selector = self
            .d
            .pointer("/spec/selector")
            .cloned()
            .unwrap_or(json!({}));
        selector["matchLabels"][POD_TEMPLATE_HASH] = json!(hash);
        let mut annotations = Map::new();
        copy_deployment_annotations(&self.d, &mut annotations);
        annotations.insert(DESIRED_REPLICAS.into(), json!(replicas.to_string()));
        annotations.insert(
            MAX_REPLICAS.into(),
            json!((replicas + self.surge).to_string()),
        );
        annotations.insert(REVISION.into(), json!(new_revision.to_string()));
        let rs = json!({"apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": rs_name, "namespace": self.ns,
                "labels": t.pointer("/metadata/labels").cloned().unwrap_or(json!({})),
                "annotations": annotations,
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": self.name(), "uid": self.uid,
                    "controller": true, "blockOwnerDeletion": true}]},
            "spec": {"replicas": initial, "selector": selector, "template": t}});
        if store.exists(Kind::ReplicaSet, &self.ns, &rs_name) {
            return (None, false);
        }
        let Ok(rs) = defaults::apply(Kind::ReplicaSet, rs) else {
            return (None, false);
        };
        let created = store.create(Kind::ReplicaSet, &self.ns, rs, false);
        if initial > 0 {
            make_event(
                store,
                state,
                &self.d,
                format!("Scaled up replica set {rs_name} to {initial}"),
            );
        }
        self.set_condition(Cond {
            kind: "Progressing",
            status: "True",
            reason: "NewReplicaSetCreated",
            message: format!("Created new replica set \"{rs_name}\""),
        });
        (Some(name_of(&created).to_string()), true)
    }

    /// The ReplicaSets as the store has them now: all of them, the old ones
    /// oldest first, and the new one.
    fn current_replica_sets(
        &self,
        store: &Store,
        new_rs: Option<&str>,
    ) -> (Vec<Value>, Vec<Value>, Option<Value>) {
        let all = self.replica_sets(store);
        let mut old: Vec<Value> = all
            .iter()
            .filter(|rs| Some(name_of(rs)) != new_rs)
            .cloned()
            .collect();
        old.sort_by(|a, b| {
            created_at(a)
                .cmp(created_at(b))
                .then_with(|| revision(a).cmp(&revision(b)))
        });
        let new = new_rs.and_then(|n| all.iter().find(|rs| name_of(rs) == n).cloned());
        (all, old, new)
    }

    /// rolloutRecreate: every old ReplicaSet to zero, then the new one to
    /// full size once their pods are gone.
    fn rollout_recreate(
        &self,
        store: &mut Store,
        state: &ControllerState,
        new_rs: Option<&str>,
    ) -> bool {
        let (_, old, new) = self.current_replica_sets(store, new_rs);
        let active: Vec<&Value> = old
            .iter()
            .filter(|rs| int_at(rs, "/spec/replicas") > 0)
            .collect();
        if !active.is_empty() {
            for rs in active {
                self.scale(store, state, rs, 0);
            }
            return true;
        }
        let Some(new) = new else {
            return false;
        };
        let old_pods: i64 = old.iter().map(|rs| int_at(rs, "/status/replicas")).sum();
        if old_pods == 0 && int_at(&new, "/spec/replicas") != self.replicas {
            self.scale(store, state, &new, self.replicas);
            return true;
        }
        false
    }

    /// rolloutRolling: the new ReplicaSet up within maxSurge, or else the
    /// old ones down within maxUnavailable.
    fn rollout_rolling(
        &self,
        store: &mut Store,
        state: &ControllerState,
        new_rs: Option<&str>,
    ) -> bool {
        let (all, mut old, new) = self.current_replica_sets(store, new_rs);
        let Some(new) = new else {
            return false;
        };
        self.reconcile_new_replica_set(store, state, &all, &new)
            || self.reconcile_old_replica_sets(store, state, &all, &mut old, &new)
    }

    /// reconcileNewReplicaSet: scales the new ReplicaSet down to the
    /// Deployment's size, or up as far as maxSurge allows.
    fn reconcile_new_replica_set(
        &self,
        store: &mut Store,
        state: &ControllerState,
        all: &[Value],
        new: &Value,
    ) -> bool {
        let replicas = self.replicas;
        let all_spec: i64 = all.iter().map(|rs| int_at(rs, "/spec/replicas")).sum();
        let new_spec = int_at(new, "/spec/replicas");
        if new_spec > replicas {
            self.scale(store, state, new, replicas);
            true
        } else if new_spec < replicas && all_spec < replicas + self.surge {
            let up = (replicas + self.surge - all_spec).min(replicas - new_spec);
            self.scale(store, state, new, new_spec + up);
            true
        } else {
            false
        }
    }

    /// reconcileOldReplicaSets: scales old ReplicaSets down as far as
    /// maxUnavailable allows, their unhealthy replicas first.
    fn reconcile_old_replica_sets(
        &self,
        store: &mut Store,
        state: &ControllerState,
        all: &[Value],
        old: &mut [Value],
        new: &Value,
    ) -> bool {
        let old_spec: i64 = old.iter().map(|rs| int_at(rs, "/spec/replicas")).sum();
        if old_spec <= 0 {
            return false;
        }
        let all_spec: i64 = all.iter().map(|rs| int_at(rs, "/spec/replicas")).sum();
        let min_available = self.replicas - self.max_unavailable;
        let new_unavailable =
            int_at(new, "/spec/replicas") - int_at(new, "/status/availableReplicas");
        let max_scaled_down = all_spec - min_available - new_unavailable;
        if max_scaled_down <= 0 {
            return false;
        }
        // cleanupUnhealthyReplicas: unavailable replicas go first.
        let (cleaned, mut changed) =
            self.scale_down_oldest(store, state, old, max_scaled_down, |rs| {
                int_at(rs, "/spec/replicas") - int_at(rs, "/status/availableReplicas")
            });
        // Availability as the pass found it: the cleanup above only removed
        // replicas that were not available.
        let available: i64 = all
            .iter()
            .map(|rs| int_at(rs, "/status/availableReplicas"))
            .sum();
        if available > min_available {
            // scaleDownOldReplicaSetsForRollingUpdate: then any replica.
            let total = (available - min_available).min(max_scaled_down - cleaned);
            let (_, scaled) =
                self.scale_down_oldest(store, state, old, total, |rs| int_at(rs, "/spec/replicas"));
            changed |= scaled;
        }
        changed
    }

    /// Takes up to `total` replicas off the old ReplicaSets, oldest first,
    /// at most `removable(rs)` from each. Returns how many were taken and
    /// whether anything was written.
    fn scale_down_oldest(
        &self,
        store: &mut Store,
        state: &ControllerState,
        old: &mut [Value],
        total: i64,
        removable: impl Fn(&Value) -> i64,
    ) -> (i64, bool) {
        let mut done = 0;
        let mut changed = false;
        for rs in old.iter_mut() {
            if done >= total {
                break;
            }
            let spec = int_at(rs, "/spec/replicas");
            let can = removable(rs);
            if spec == 0 || can <= 0 {
                continue;
            }
            let down = (total - done).min(can);
            *rs = self.scale(store, state, rs, spec - down);
            done += down;
            changed = true;
        }
        (done, changed)
    }

    /// Scales a ReplicaSet, stamping the replica annotations and emitting
    /// the event; returns the stored ReplicaSet.
    fn scale(&self, store: &mut Store, state: &ControllerState, rs: &Value, to: i64) -> Value {
        let from = int_at(rs, "/spec/replicas");
        let replicas = self.replicas;
        let mut rs = rs.clone();
        rs["spec"]["replicas"] = json!(to);
        if let Some(ann) = annotations_mut(&mut rs) {
            ann.insert(DESIRED_REPLICAS.into(), json!(replicas.to_string()));
            ann.insert(
                MAX_REPLICAS.into(),
                json!((replicas + self.surge).to_string()),
            );
        }
        let ns = ns_of(&rs).to_string();
        let stored = store.update(Kind::ReplicaSet, &ns, rs, Writer::Controller, false);
        if from != to {
            let dir = if to > from { "up" } else { "down" };
            make_event(
                store,
                state,
                &self.d,
                format!("Scaled {dir} replica set {} to {to}", name_of(&stored)),
            );
        }
        stored
    }

    /// cleanupDeployment: deletes the oldest drained ReplicaSets beyond
    /// revisionHistoryLimit.
    fn cleanup_deployment(&self, store: &mut Store, new_rs: Option<&str>) -> bool {
        let limit = self
            .d
            .pointer("/spec/revisionHistoryLimit")
            .and_then(Value::as_i64)
            .unwrap_or(10)
            .max(0) as usize;
        let mut cleanable: Vec<Value> = owned_by(store, Kind::ReplicaSet, &self.ns, &self.uid)
            .into_iter()
            .filter(|rs| Some(name_of(rs)) != new_rs)
            .filter(|rs| int_at(rs, "/spec/replicas") == 0 && int_at(rs, "/status/replicas") == 0)
            .cloned()
            .collect();
        if cleanable.len() <= limit {
            return false;
        }
        cleanable.sort_by_key(revision);
        let n = cleanable.len() - limit;
        for rs in cleanable.iter().take(n) {
            store.delete(Kind::ReplicaSet, &self.ns, name_of(rs));
        }
        true
    }

    /// syncRolloutStatus and calculateStatus: the Deployment's status and
    /// conditions from its ReplicaSets, and the new ReplicaSet's revision on
    /// the Deployment.
    fn sync_status(&mut self, store: &mut Store, new_rs: Option<&str>) -> bool {
        let Some(cur) = store.get(Kind::Deployment, &self.ns, self.name()).cloned() else {
            return false;
        };
        let (all, _, new) = self.current_replica_sets(store, new_rs);
        let counts = ReplicaCounts::of(&all, new.as_ref());
        let has_deadline = cur
            .pointer("/spec/progressDeadlineSeconds")
            .and_then(Value::as_i64)
            .is_some();
        if has_deadline {
            self.check_paused_conditions();
        }
        self.set_available_condition(&counts);
        if !self.paused
            && has_deadline
            && let Some(new) = &new
        {
            self.set_progressing_condition(store, &cur, &counts, name_of(new));
        }
        let mut next = cur.clone();
        next["status"] = self.status(&cur, &counts);
        if let Some(rs) = &new {
            let rev = annotation(rs, REVISION).unwrap_or("0").to_string();
            if annotation(&next, REVISION) != Some(rev.as_str())
                && let Some(ann) = annotations_mut(&mut next)
            {
                ann.insert(REVISION.into(), json!(rev));
            }
        }
        if next == cur {
            return false;
        }
        store.update(Kind::Deployment, &self.ns, next, Writer::Status, false);
        true
    }

    /// checkPausedConditions: Progressing says when the Deployment is paused
    /// and resumed, unless its progress deadline already passed.
    fn check_paused_conditions(&mut self) {
        let reason = condition(&self.conditions, "Progressing").map(|c| c["reason"].clone());
        let is_paused_cond = reason.as_ref().is_some_and(|r| r == "DeploymentPaused");
        let timed_out = reason
            .as_ref()
            .is_some_and(|r| r == "ProgressDeadlineExceeded");
        if timed_out {
            return;
        }
        if self.paused && !is_paused_cond {
            self.set_condition(Cond {
                kind: "Progressing",
                status: "Unknown",
                reason: "DeploymentPaused",
                message: "Deployment is paused".into(),
            });
        } else if !self.paused && is_paused_cond {
            self.set_condition(Cond {
                kind: "Progressing",
                status: "Unknown",
                reason: "DeploymentResumed",
                message: "Deployment is resumed".into(),
            });
        }
    }

    /// calculateStatus's Available condition: at least replicas −
    /// maxUnavailable available.
    fn set_available_condition(&mut self, counts: &ReplicaCounts) {
        let cond = if counts.available >= self.replicas - self.max_unavailable {
            Cond {
                kind: "Available",
                status: "True",
                reason: "MinimumReplicasAvailable",
                message: "Deployment has minimum availability.".into(),
            }
        } else {
            Cond {
                kind: "Available",
                status: "False",
                reason: "MinimumReplicasUnavailable",
                message: "Deployment does not have minimum availability.".into(),
            }
        };
        self.set_condition(cond);
    }

    /// syncRolloutStatus's Progressing condition: complete, progressing
    /// (counts moved since the stored status), or past the progress deadline.
    fn set_progressing_condition(
        &mut self,
        store: &Store,
        cur: &Value,
        counts: &ReplicaCounts,
        rs_name: &str,
    ) {
        let current = condition(&self.conditions, "Progressing").cloned();
        let complete_already = counts.actual == counts.updated
            && current
                .as_ref()
                .is_some_and(|c| c["reason"] == "NewReplicaSetAvailable");
        if complete_already {
            return;
        }
        let old_status = cur.get("status").cloned().unwrap_or(json!({}));
        let o = |f: &str| int_at(&old_status, &format!("/{f}"));
        // DeploymentComplete also wants observedGeneration >= generation,
        // which holds: this status observes the generation it reads.
        let complete = counts.updated == self.replicas
            && counts.actual == self.replicas
            && counts.available == self.replicas;
        let progressing = counts.updated > o("updatedReplicas")
            || (counts.actual - counts.updated) < (o("replicas") - o("updatedReplicas"))
            || counts.ready > o("readyReplicas")
            || counts.available > o("availableReplicas");
        if complete {
            self.set_condition(Cond {
                kind: "Progressing",
                status: "True",
                reason: "NewReplicaSetAvailable",
                message: format!("ReplicaSet \"{rs_name}\" has successfully progressed."),
            });
        } else if progressing {
            // Unlike SetDeploymentCondition, progress refreshes
            // lastUpdateTime even when status and reason stay the same.
            let transition = match &current {
                Some(c) if c["status"] == "True" => c["lastTransitionTime"].clone(),
                _ => json!(self.now),
            };
            self.conditions.retain(|c| c["type"] != "Progressing");
            self.conditions.push(
                json!({"type": "Progressing", "status": "True", "lastUpdateTime": self.now,
                    "lastTransitionTime": transition, "reason": "ReplicaSetUpdated",
                    "message": format!("ReplicaSet \"{rs_name}\" is progressing.")}),
            );
        } else if let Some(c) = &current
            && past_progress_deadline(store, cur, c)
        {
            self.set_condition(Cond {
                kind: "Progressing",
                status: "False",
                reason: "ProgressDeadlineExceeded",
                message: format!("ReplicaSet \"{rs_name}\" has timed out progressing."),
            });
        }
    }

    /// The status object: counts that are zero are left out, as the API
    /// server's JSON omits them.
    fn status(&mut self, cur: &Value, counts: &ReplicaCounts) -> Value {
        let mut status = Map::new();
        status.insert(
            "observedGeneration".into(),
            json!(int_at(cur, "/metadata/generation")),
        );
        for (k, v) in [
            ("replicas", counts.actual),
            ("updatedReplicas", counts.updated),
            ("readyReplicas", counts.ready),
            ("availableReplicas", counts.available),
            ("unavailableReplicas", counts.unavailable),
        ] {
            if v != 0 {
                status.insert(k.into(), json!(v));
            }
        }
        if !self.conditions.is_empty() {
            status.insert(
                "conditions".into(),
                Value::Array(std::mem::take(&mut self.conditions)),
            );
        }
        if let Some(cc) = cur.pointer("/status/collisionCount") {
            status.insert("collisionCount".into(), cc.clone());
        }
        Value::Object(status)
    }

    fn set_condition(&mut self, c: Cond<'_>) {
        set_condition(&mut self.conditions, c, &self.now);
    }
}

/// Replica counts over a Deployment's ReplicaSets (calculateStatus).
struct ReplicaCounts {
    actual: i64,
    updated: i64,
    ready: i64,
    available: i64,
    unavailable: i64,
}

impl ReplicaCounts {
    fn of(all: &[Value], new: Option<&Value>) -> ReplicaCounts {
        let sum = |ptr: &str| -> i64 { all.iter().map(|rs| int_at(rs, ptr)).sum() };
        let available = sum("/status/availableReplicas");
        ReplicaCounts {
            actual: sum("/status/replicas"),
            updated: new.map_or(0, |rs| int_at(rs, "/status/replicas")),
            ready: sum("/status/readyReplicas"),
            available,
            unavailable: (sum("/spec/replicas") - available).max(0),
        }
    }
}

/// Whether the Progressing condition `c` says the deadline passed, or was
/// last updated more than progressDeadlineSeconds ago without completing.
fn past_progress_deadline(store: &Store, d: &Value, c: &Value) -> bool {
    c["reason"] == "ProgressDeadlineExceeded"
        || (c["reason"] != "NewReplicaSetAvailable" && {
            let deadline = d
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
        })
}

/// copyDeploymentAnnotationsToReplicaSet: every annotation but the
/// controller's own and kubectl's last-applied configuration.
fn copy_deployment_annotations(d: &Value, to: &mut Map<String, Value>) {
    let Some(d_ann) = d
        .pointer("/metadata/annotations")
        .and_then(Value::as_object)
    else {
        return;
    };
    for (k, v) in d_ann {
        if !SKIP_COPY.contains(&k.as_str()) {
            to.insert(k.clone(), v.clone());
        }
    }
}

/// SetNewReplicaSetAnnotations: the Deployment's annotations, and
/// `new_revision` when the ReplicaSet's own is lower, the replaced one
/// appended to the revision history.
fn set_new_replica_set_annotations(d: &Value, rs: &mut Value, new_revision: i64) {
    let cur_rev = revision(rs);
    let had_rev = annotation(rs, REVISION).is_some();
    let Some(ann) = annotations_mut(rs) else {
        return;
    };
    copy_deployment_annotations(d, ann);
    if cur_rev >= new_revision {
        return;
    }
    ann.insert(REVISION.into(), json!(new_revision.to_string()));
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

/// A stable 10-character hash of a pod template (pod-template-hash).
pub(super) fn template_hash(template: &Value) -> String {
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
        labels.remove(POD_TEMPLATE_HASH);
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

/// A ScalingReplicaSet event on the Deployment, as the controller records it.
fn make_event(store: &mut Store, state: &ControllerState, d: &Value, message: String) {
    let event = super::Event {
        reason: "ScalingReplicaSet",
        message,
        component: "deployment-controller",
    };
    super::record_event(store, state, d, Kind::Deployment, event);
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
