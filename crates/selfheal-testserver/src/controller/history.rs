//! ControllerRevisions, the history of StatefulSets and DaemonSets
//! (pkg/controller/history, and the two controllers' `newRevision` /
//! `snapshot`, `truncateHistory` / `cleanupHistory`): one revision per
//! distinct pod template, its `data` the template as a strategic merge patch
//! (`{"spec":{"template":{"$patch":"replace", …}}}`), an integer `revision`,
//! owned by the workload. A template seen before reuses its revision under
//! the same name and takes the next number (statefulset- and
//! daemonset-json-patch-single-container.json: revision 3 becomes 5).

use serde_json::{Map, Value, json};

use super::{int_at, ns_of, owned_by, uid_of};
use crate::defaults;
use crate::store::{Kind, Store, Writer, name_of};

/// The label a StatefulSet's revisions carry their hash in
/// (`history.ControllerRevisionHashLabel`).
pub(super) const HASH_LABEL: &str = "controller.kubernetes.io/hash";
/// The label naming a pod's revision (`apps.ControllerRevisionHashLabelKey`;
/// also the DaemonSet revisions' hash label).
pub(super) const POD_REVISION_LABEL: &str = "controller-revision-hash";

/// The `data` of a revision of `template`: the patch that restores it.
pub(super) fn data_of(template: &Value) -> Value {
    let mut template = template.clone();
    if let Some(t) = template.as_object_mut() {
        t.insert("$patch".into(), json!("replace"));
    }
    json!({"spec": {"template": template}})
}

/// The pod template a revision restores.
pub(super) fn template_of(revision: &Value) -> Value {
    let mut template = revision
        .pointer("/data/spec/template")
        .cloned()
        .unwrap_or(json!({}));
    if let Some(t) = template.as_object_mut() {
        t.remove("$patch");
    }
    template
}

pub(super) fn number(revision: &Value) -> i64 {
    int_at(revision, "/revision")
}

/// The workload's revisions, oldest number first (SortControllerRevisions).
pub(super) fn list(store: &Store, owner: &Value) -> Vec<Value> {
    let mut revisions: Vec<Value> =
        owned_by(store, Kind::ControllerRevision, ns_of(owner), uid_of(owner))
            .into_iter()
            .cloned()
            .collect();
    revisions.sort_by(|a, b| {
        number(a)
            .cmp(&number(b))
            .then_with(|| name_of(a).cmp(name_of(b)))
    });
    revisions
}

/// One past the highest revision number (nextRevision).
pub(super) fn next_number(revisions: &[Value]) -> i64 {
    revisions.iter().map(number).max().unwrap_or(0) + 1
}

/// What a new revision of `owner` looks like apart from its number.
pub(super) struct NewRevision<'a> {
    owner: &'a Value,
    owner_kind: Kind,
    /// The label the hash goes into (both controllers name the revision
    /// `<owner>-<hash>`).
    hash_label: &'static str,
    /// Copied onto the revision (the workload's annotations when it is cut).
    annotations: Map<String, Value>,
}

impl<'a> NewRevision<'a> {
    /// A revision of `owner` carrying its annotations as they are now.
    pub(super) fn of(owner: &'a Value, owner_kind: Kind, hash_label: &'static str) -> Self {
        NewRevision {
            owner,
            owner_kind,
            hash_label,
            annotations: owner
                .pointer("/metadata/annotations")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default(),
        }
    }

    /// Creates revision `revision` of `template`; returns the stored object.
    pub(super) fn create(
        &self,
        store: &mut Store,
        template: &Value,
        revision: i64,
    ) -> Option<Value> {
        let hash = super::deployment::template_hash(template);
        let ns = ns_of(self.owner).to_string();
        let name = format!("{}-{hash}", name_of(self.owner));
        let mut labels = template
            .pointer("/metadata/labels")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        labels.insert(self.hash_label.into(), json!(hash));
        let mut metadata = json!({"name": name, "namespace": ns, "labels": labels,
            "ownerReferences": [owner_reference(self.owner, self.owner_kind)]});
        if !self.annotations.is_empty() {
            metadata["annotations"] = Value::Object(self.annotations.clone());
        }
        if store.exists(Kind::ControllerRevision, &ns, &name) {
            return None;
        }
        let cr = json!({"apiVersion": "apps/v1", "kind": "ControllerRevision", "metadata": metadata,
            "data": data_of(template), "revision": revision});
        let cr = defaults::apply(Kind::ControllerRevision, cr).ok()?;
        Some(store.create(Kind::ControllerRevision, &ns, cr, false))
    }
}

/// The revision for `template`: the newest one already equal to it
/// (renumbered to `next` unless it is the newest of all), else a new one.
/// Returns the revision and whether anything was written.
pub(super) fn find_or_create(
    store: &mut Store,
    revisions: &[Value],
    template: &Value,
    new: &NewRevision<'_>,
) -> (Option<Value>, bool) {
    let data = data_of(template);
    let next = next_number(revisions);
    let equal = revisions
        .iter()
        .rev()
        .find(|r| r.get("data") == Some(&data));
    match equal {
        Some(r) if revisions.last().map(name_of) == Some(name_of(r)) => (Some(r.clone()), false),
        Some(r) => (Some(renumber(store, r, next)), true),
        None => {
            let created = new.create(store, template, next);
            let changed = created.is_some();
            (created, changed)
        }
    }
}

/// UpdateControllerRevision: the same revision under a new number.
pub(super) fn renumber(store: &mut Store, revision: &Value, number: i64) -> Value {
    let mut r = revision.clone();
    r["revision"] = json!(number);
    let ns = ns_of(revision).to_string();
    store.update(Kind::ControllerRevision, &ns, r, Writer::Controller, false)
}

/// truncateHistory / cleanupHistory: deletes the oldest revisions that no
/// pod and no status names (`live`) beyond the workload's
/// `revisionHistoryLimit`. True if any went.
pub(super) fn truncate(
    store: &mut Store,
    owner: &Value,
    revisions: &[Value],
    live: impl Fn(&Value) -> bool,
) -> bool {
    let limit = owner
        .pointer("/spec/revisionHistoryLimit")
        .and_then(Value::as_i64)
        .unwrap_or(10)
        .max(0) as usize;
    let dead: Vec<&Value> = revisions.iter().filter(|r| !live(r)).collect();
    let excess = dead.len().saturating_sub(limit);
    for r in &dead[..excess] {
        store.delete(Kind::ControllerRevision, ns_of(r), name_of(r));
    }
    excess > 0
}

/// The `ownerReferences` entry a controller puts on what it creates.
pub(super) fn owner_reference(owner: &Value, kind: Kind) -> Value {
    json!({"apiVersion": "apps/v1", "kind": kind.kind(), "name": name_of(owner), "uid": uid_of(owner),
        "controller": true, "blockOwnerDeletion": true})
}
