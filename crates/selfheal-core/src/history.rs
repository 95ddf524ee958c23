//! Revision history from ReplicaSets or ControllerRevisions
//! (docs/kubectl-semantics.md §1, §7).
//!
//! A workload keeps no history of its own. A Deployment's every pod template
//! survives as a ReplicaSet it controls, numbered by the annotation
//! `deployment.kubernetes.io/revision`; a StatefulSet's or DaemonSet's as a
//! ControllerRevision it controls, numbered by its integer `revision` field,
//! with the template in `data.spec.template` (a strategic-merge patch with
//! `$patch: replace`). This module rebuilds either list the way kubectl does
//! (selector, then controller ownerReference) into one [`History`] and
//! answers the questions the planners ask.

use std::cell::OnceCell;
use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{ControllerRevision, Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};

use crate::workload::WorkloadRef;
use crate::{WorkloadKind, keys};

/// The object a revision is stored as.
#[derive(Debug, Clone, Copy)]
pub enum RevisionSource<'a> {
    /// A Deployment's.
    ReplicaSet(&'a ReplicaSet),
    /// A StatefulSet's or DaemonSet's.
    ControllerRevision(&'a ControllerRevision),
}

/// One revision: its number and the object that stores it.
#[derive(Debug, Clone)]
pub struct Revision<'a> {
    pub number: i64,
    pub source: RevisionSource<'a>,
    /// A ControllerRevision's template, parsed from `data` the first time
    /// it is asked for: the planners look at the newest few revisions, and a
    /// parse costs far more than the LIST's sort (boxed to keep the sort's
    /// moves small).
    parsed: OnceCell<Option<Box<PodTemplateSpec>>>,
}

impl<'a> Revision<'a> {
    /// A ReplicaSet's revision.
    pub fn of_replica_set(number: i64, replica_set: &'a ReplicaSet) -> Self {
        Revision {
            number,
            source: RevisionSource::ReplicaSet(replica_set),
            parsed: OnceCell::new(),
        }
    }

    /// A ControllerRevision's revision; its template is parsed from `data`
    /// when first asked for.
    pub fn of_controller_revision(revision: &'a ControllerRevision) -> Self {
        Revision {
            number: revision.revision,
            source: RevisionSource::ControllerRevision(revision),
            parsed: OnceCell::new(),
        }
    }

    /// The storing object's metadata.
    pub fn metadata(&self) -> &'a ObjectMeta {
        match self.source {
            RevisionSource::ReplicaSet(rs) => &rs.metadata,
            RevisionSource::ControllerRevision(cr) => &cr.metadata,
        }
    }

    /// The storing object's name (`<deployment>-<pod-template-hash>`,
    /// `<statefulset>-<hash>`).
    pub fn name(&self) -> &'a str {
        self.metadata().name.as_deref().unwrap_or_default()
    }

    /// The ReplicaSet, for a Deployment's revision.
    pub fn replica_set(&self) -> Option<&'a ReplicaSet> {
        match self.source {
            RevisionSource::ReplicaSet(rs) => Some(rs),
            RevisionSource::ControllerRevision(_) => None,
        }
    }

    /// The pod template this revision ran, as stored (with
    /// `pod-template-hash` on a ReplicaSet's).
    pub fn template(&self) -> Option<&PodTemplateSpec> {
        match self.source {
            RevisionSource::ReplicaSet(rs) => rs.spec.as_ref()?.template.as_ref(),
            RevisionSource::ControllerRevision(cr) => self
                .parsed
                .get_or_init(|| controller_revision_template(cr).map(Box::new))
                .as_deref(),
        }
    }

    /// Image of container `name` in this revision, if the container existed.
    pub fn image(&self, name: &str) -> Option<&str> {
        self.template().and_then(|t| image_of(t, name))
    }
}

/// A ControllerRevision's pod template: `data.spec.template` without the
/// strategic-merge directive `$patch` (what `kubectl rollout undo` sends
/// back as a patch, and what the workload's template becomes).
pub fn controller_revision_template(revision: &ControllerRevision) -> Option<PodTemplateSpec> {
    let mut template = revision
        .data
        .as_ref()?
        .0
        .get("spec")?
        .get("template")?
        .clone();
    template.as_object_mut()?.remove("$patch");
    serde_json::from_value(template).ok()
}

/// A workload's revisions, oldest first.
#[derive(Debug, Clone, Default)]
pub struct History<'a> {
    revisions: Vec<Revision<'a>>,
}

impl<'a> History<'a> {
    /// Collect the ReplicaSets that belong to `deployment`: in its namespace,
    /// matching its selector, and controlled by it (ownerReference uid,
    /// `controller: true`). Without a uid (an offline snapshot) the selector
    /// alone decides, and an empty selector then matches nothing rather than
    /// everything. ReplicaSets without a parsable revision are ignored, as
    /// kubectl ignores them.
    pub fn of(deployment: &Deployment, replica_sets: &'a [ReplicaSet]) -> Self {
        let revisions = owned(WorkloadRef::Deployment(deployment), replica_sets, |rs| {
            &rs.metadata
        })
        .filter_map(|rs| revision_of(&rs.metadata).map(|n| Revision::of_replica_set(n, rs)))
        .collect();
        History::sorted(revisions)
    }

    /// Collect the ControllerRevisions that belong to a StatefulSet or
    /// DaemonSet by the same rule as [`History::of`]; each is numbered by its
    /// `revision` field.
    pub fn of_controller_revisions(
        workload: WorkloadRef<'_>,
        controller_revisions: &'a [ControllerRevision],
    ) -> Self {
        let revisions = owned(workload, controller_revisions, |cr| &cr.metadata)
            .map(Revision::of_controller_revision)
            .collect();
        History::sorted(revisions)
    }

    /// The history of any workload from the list its kind keeps it in
    /// (ReplicaSets for a Deployment, ControllerRevisions otherwise).
    pub fn of_workload(
        workload: WorkloadRef<'_>,
        replica_sets: &'a [ReplicaSet],
        controller_revisions: &'a [ControllerRevision],
    ) -> Self {
        match workload {
            WorkloadRef::Deployment(d) => History::of(d, replica_sets),
            _ => History::of_controller_revisions(workload, controller_revisions),
        }
    }

    fn sorted(mut revisions: Vec<Revision<'a>>) -> Self {
        // Name breaks ties so the order never depends on the LIST order.
        revisions.sort_by(|a, b| a.number.cmp(&b.number).then_with(|| a.name().cmp(b.name())));
        History { revisions }
    }

    /// Every revision, oldest first.
    pub fn revisions(&self) -> &[Revision<'a>] {
        &self.revisions
    }

    pub fn is_empty(&self) -> bool {
        self.revisions.is_empty()
    }

    pub fn len(&self) -> usize {
        self.revisions.len()
    }

    /// Newest first: the order every "newest older revision" search walks.
    pub fn newest_first(&self) -> impl Iterator<Item = &Revision<'a>> {
        self.revisions.iter().rev()
    }

    /// The highest revision: what the controller last rolled out.
    pub fn latest(&self) -> Option<&Revision<'a>> {
        self.revisions.last()
    }

    /// The second-highest revision: `kubectl rollout undo`'s default target.
    pub fn previous(&self) -> Option<&Revision<'a>> {
        self.revisions.iter().rev().nth(1)
    }

    /// Revision `number`, if it still exists (renumbering removes numbers).
    pub fn revision(&self, number: i64) -> Option<&Revision<'a>> {
        self.revisions.iter().rev().find(|r| r.number == number)
    }
}

/// The objects of `all` that belong to `workload`: same namespace, controlled
/// by it (when it has a uid), matching its selector (an empty selector
/// without a uid matches nothing).
fn owned<'w, 'a, T>(
    workload: WorkloadRef<'w>,
    all: &'a [T],
    meta: impl Fn(&T) -> &ObjectMeta + Copy + 'w,
) -> impl Iterator<Item = &'a T> + 'w
where
    'a: 'w,
{
    let selector = workload.selector();
    let uid = workload.metadata().uid.as_deref();
    let usable = selector.is_some_and(|s| uid.is_some() || !selector_is_empty(s));
    let namespace = workload.metadata().namespace.as_deref();
    all.iter()
        .filter(move |_| usable)
        .filter(move |o| match (namespace, meta(o).namespace.as_deref()) {
            (Some(a), Some(b)) => a == b,
            _ => true,
        })
        .filter(move |o| uid.is_none_or(|uid| controls(meta(o), uid)))
        .filter(move |o| selector.is_some_and(|s| selector_matches(s, meta(o).labels.as_ref())))
}

/// The revision a workload's pods of its current template carry in their
/// revision label, with that label's key: a Deployment's newest ReplicaSet's
/// `pod-template-hash` ([`crate::evidence::current_revision_hash`]); a
/// StatefulSet's `status.updateRevision` (or its newest ControllerRevision's
/// name) as `controller-revision-hash`; a DaemonSet's newest
/// ControllerRevision's hash (its name without the `<daemonset>-` prefix).
/// `None` when the newest revision does not run the workload's images (the
/// template is ahead of the controller). The adapter adds it to its pod
/// LIST's label selector.
pub fn current_revision_label<'a>(
    workload: WorkloadRef<'a>,
    replica_sets: &'a [ReplicaSet],
    controller_revisions: &'a [ControllerRevision],
) -> Option<(&'static str, String)> {
    if let WorkloadRef::Deployment(d) = workload {
        return crate::evidence::current_revision_hash(d, replica_sets)
            .map(|hash| (keys::POD_TEMPLATE_HASH, hash.to_owned()));
    }
    let template = workload.template()?;
    let history = History::of_controller_revisions(workload, controller_revisions);
    let latest = history.latest()?;
    let runs_template = latest
        .template()
        .is_some_and(|t| images_by_container(t) == images_by_container(template));
    if !runs_template {
        return None;
    }
    let value = revision_label_value(workload, latest);
    (!value.is_empty()).then(|| (keys::CONTROLLER_REVISION_HASH, value.to_owned()))
}

/// The `controller-revision-hash` a StatefulSet's or DaemonSet's pods of
/// `revision` carry: the ControllerRevision's name for a StatefulSet, the
/// name without its `<daemonset>-` prefix for a DaemonSet (recorded in
/// statefulset-kubectl.json and daemonset-kubectl.json).
pub fn revision_label_value<'r>(workload: WorkloadRef<'_>, revision: &Revision<'r>) -> &'r str {
    let name = revision.name();
    match workload.kind() {
        WorkloadKind::DaemonSet => name
            .strip_prefix(workload.name())
            .and_then(|rest| rest.strip_prefix('-'))
            .unwrap_or(name),
        _ => name,
    }
}

/// Parse `deployment.kubernetes.io/revision` from an object's metadata.
pub fn revision_of(meta: &ObjectMeta) -> Option<i64> {
    meta.annotations
        .as_ref()?
        .get(keys::REVISION)?
        .trim()
        .parse()
        .ok()
}

/// The Deployment's own revision annotation (the controller's latest).
pub fn deployment_revision(deployment: &Deployment) -> Option<i64> {
    revision_of(&deployment.metadata)
}

/// A ReplicaSet's template as it must go back into a Deployment: without the
/// `pod-template-hash` label the controller adds (kubectl deletes it too).
pub fn template_without_hash(template: &PodTemplateSpec) -> PodTemplateSpec {
    let mut template = template.clone();
    if let Some(meta) = template.metadata.as_mut() {
        strip_hash(meta);
    }
    template
}

/// kubectl's `equalIgnoreHash`: templates equal once `pod-template-hash` is
/// dropped. Structural equality of the typed objects stands in for Go's
/// `Semantic.DeepEqual`; both sides come from the same API server, so
/// defaulting and serialization agree.
pub fn equal_ignoring_hash(a: &PodTemplateSpec, b: &PodTemplateSpec) -> bool {
    if a.spec != b.spec {
        return false;
    }
    let strip = |m: &Option<ObjectMeta>| {
        let mut m = m.clone().unwrap_or_default();
        strip_hash(&mut m);
        m
    };
    strip(&a.metadata) == strip(&b.metadata)
}

fn strip_hash(meta: &mut ObjectMeta) {
    if let Some(labels) = meta.labels.as_mut() {
        labels.remove(keys::POD_TEMPLATE_HASH);
        if labels.is_empty() {
            meta.labels = None;
        }
    }
}

/// Which list of the pod spec a container is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ContainerList {
    /// `spec.initContainers`.
    Init,
    /// `spec.containers`.
    Regular,
}

impl ContainerList {
    /// The pod spec's field name, as it appears in a JSON Patch path.
    pub fn field(self) -> &'static str {
        match self {
            ContainerList::Init => "initContainers",
            ContainerList::Regular => "containers",
        }
    }
}

/// `(list, index in that list, name, image)` of every init container, then
/// every regular container, in template order. Container names are unique
/// across both lists (API validation), so a name alone finds one.
pub fn containers(
    template: &PodTemplateSpec,
) -> impl Iterator<Item = (ContainerList, usize, &str, Option<&str>)> {
    template.spec.iter().flat_map(|s| {
        let init = s
            .init_containers
            .iter()
            .flatten()
            .enumerate()
            .map(|(i, c)| (ContainerList::Init, i, c));
        let regular = s
            .containers
            .iter()
            .enumerate()
            .map(|(i, c)| (ContainerList::Regular, i, c));
        init.chain(regular)
            .map(|(list, i, c)| (list, i, c.name.as_str(), c.image.as_deref()))
    })
}

/// `(name, image)` of every init container, then every regular container, in
/// template order: the half-brick rollback reverts either kind.
pub fn container_images(template: &PodTemplateSpec) -> impl Iterator<Item = (&str, &str)> {
    containers(template).map(|(_, _, name, image)| (name, image.unwrap_or_default()))
}

/// Image of the container or init container `name`.
pub fn image_of<'t>(template: &'t PodTemplateSpec, name: &str) -> Option<&'t str> {
    container_images(template)
        .find(|(n, _)| *n == name)
        .map(|(_, image)| image)
}

/// Images per container name, for diffs and logs.
pub fn images_by_container(template: &PodTemplateSpec) -> BTreeMap<String, String> {
    container_images(template)
        .map(|(n, i)| (n.to_owned(), i.to_owned()))
        .collect()
}

/// Whether `rs` names `uid` as its controlling owner.
pub fn controlled_by(rs: &ReplicaSet, uid: &str) -> bool {
    controls(&rs.metadata, uid)
}

/// Whether `meta` names `uid` as its controlling owner.
pub fn controls(meta: &ObjectMeta, uid: &str) -> bool {
    meta.owner_references
        .iter()
        .flatten()
        .any(|o| o.controller == Some(true) && o.uid == uid)
}

fn selector_is_empty(selector: &LabelSelector) -> bool {
    selector
        .match_labels
        .as_ref()
        .is_none_or(BTreeMap::is_empty)
        && selector
            .match_expressions
            .as_ref()
            .is_none_or(Vec::is_empty)
}

/// Kubernetes label-selector semantics: every `matchLabels` pair and every
/// `matchExpressions` requirement (`In`, `NotIn`, `Exists`, `DoesNotExist`)
/// must hold. An unknown operator matches nothing, so a selector we do not
/// understand never widens the history.
pub fn selector_matches(
    selector: &LabelSelector,
    labels: Option<&BTreeMap<String, String>>,
) -> bool {
    let get = |k: &str| labels.and_then(|l| l.get(k));
    let labels_ok = selector
        .match_labels
        .iter()
        .flatten()
        .all(|(k, v)| get(k) == Some(v));
    labels_ok
        && selector.match_expressions.iter().flatten().all(|req| {
            let values = req.values.as_deref().unwrap_or_default();
            let value = get(&req.key);
            match req.operator.as_str() {
                "In" => value.is_some_and(|v| values.contains(v)),
                "NotIn" => value.is_none_or(|v| !values.contains(v)),
                "Exists" => value.is_some(),
                "DoesNotExist" => value.is_none(),
                _ => false,
            }
        })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::testutil::{Scenario, fixture};

    #[test]
    fn recorded_checkout_history_is_ordered_by_revision_with_images() {
        let s = Scenario::from_fixture(&fixture("checkout-rev4.json"));
        let (d, rss) = (s.deployment(), s.replica_sets());
        let h = History::of(&d, &rss);
        let numbers: Vec<i64> = h.revisions().iter().map(|r| r.number).collect();
        assert_eq!(numbers, [1, 2, 3, 4], "LIST order was 3, 4, 1, 2");
        assert_eq!(h.latest().unwrap().name(), "checkout-64db67cc5");
        assert_eq!(h.previous().unwrap().number, 3);
        let r2 = h.revision(2).unwrap();
        assert_eq!(r2.image("api"), Some("registry.example/shop/api:1.1.0"));
        assert_eq!(r2.image("envoy"), Some("registry.example/envoy:1.27"));
        assert_eq!(r2.image("worker"), None);
        assert!(h.revision(9).is_none());
        assert_eq!(deployment_revision(&d), Some(4));
        let current = h.latest().unwrap().template().unwrap();
        assert!(equal_ignoring_hash(
            current,
            &d.spec.as_ref().unwrap().template
        ));
        assert!(!equal_ignoring_hash(
            h.revision(3).unwrap().template().unwrap(),
            &d.spec.unwrap().template
        ));
    }

    #[test]
    fn template_without_hash_drops_only_the_hash_label() {
        let s = Scenario::from_fixture(&fixture("checkout-rev4.json"));
        let rss = s.replica_sets();
        let t = template_without_hash(rss[0].spec.as_ref().unwrap().template.as_ref().unwrap());
        let labels = t.metadata.unwrap().labels.unwrap();
        assert_eq!(
            labels,
            BTreeMap::from([("app".to_owned(), "checkout".to_owned())])
        );
        assert_eq!(
            images_by_container(rss[0].spec.as_ref().unwrap().template.as_ref().unwrap()),
            BTreeMap::from([
                (
                    "api".to_owned(),
                    "registry.example/shop/api:1.1.0".to_owned()
                ),
                ("envoy".to_owned(), "registry.example/envoy:1.28".to_owned()),
            ])
        );
    }

    #[test]
    fn ownership_selector_namespace_and_revision_filter_the_list() {
        let mut s = Scenario::new(&[
            &[("api", "a:1")],
            &[("api", "a:2")],
            &[("api", "a:3")],
            &[("api", "a:4")],
        ]);
        s.replica_sets[0]["metadata"]["ownerReferences"][0]["controller"] = json!(false);
        s.replica_sets[1]["metadata"]["labels"]["app"] = json!("cart");
        s.replica_sets[2]["metadata"]["namespace"] = json!("other");
        s.replica_sets.push(json!({"metadata": {"name": "no-revision", "namespace": "shop",
            "labels": {"app": "checkout"},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "checkout", "uid": crate::testutil::UID, "controller": true}]},
            "spec": {"selector": {}, "template": {}}}));
        let (d, rss) = (s.deployment(), s.replica_sets());
        let numbers: Vec<i64> = History::of(&d, &rss)
            .revisions()
            .iter()
            .map(|r| r.number)
            .collect();
        assert_eq!(numbers, [4]);
    }

    #[test]
    fn without_a_uid_the_selector_decides_and_an_empty_selector_matches_nothing() {
        let mut s = Scenario::new(&[&[("api", "a:1")], &[("api", "a:2")]]);
        s.deployment["metadata"]
            .as_object_mut()
            .unwrap()
            .remove("uid");
        s.replica_sets[0]["metadata"]["ownerReferences"][0]["uid"] = json!("whatever");
        let (d, rss) = (s.deployment(), s.replica_sets());
        assert_eq!(History::of(&d, &rss).len(), 2);
        s.deployment["spec"]["selector"] = json!({});
        let d = s.deployment();
        assert!(History::of(&d, &rss).is_empty());
    }

    #[test]
    fn match_expressions_follow_kubernetes_semantics() {
        let labels = BTreeMap::from([
            ("app".to_owned(), "checkout".to_owned()),
            ("tier".to_owned(), "web".to_owned()),
        ]);
        let sel = |v: serde_json::Value| -> LabelSelector { serde_json::from_value(v).unwrap() };
        let m = |s: serde_json::Value| selector_matches(&sel(s), Some(&labels));
        assert!(m(
            json!({"matchExpressions": [{"key": "tier", "operator": "In", "values": ["web", "api"]}]})
        ));
        assert!(!m(
            json!({"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["web"]}]})
        ));
        assert!(m(
            json!({"matchExpressions": [{"key": "zone", "operator": "NotIn", "values": ["a"]}]})
        ));
        assert!(m(
            json!({"matchExpressions": [{"key": "app", "operator": "Exists"}]})
        ));
        assert!(m(
            json!({"matchExpressions": [{"key": "zone", "operator": "DoesNotExist"}]})
        ));
        assert!(!m(
            json!({"matchExpressions": [{"key": "app", "operator": "Gt", "values": ["1"]}]})
        ));
        assert!(!m(
            json!({"matchLabels": {"app": "checkout", "tier": "db"}})
        ));
        assert!(!selector_matches(
            &sel(json!({"matchLabels": {"app": "checkout"}})),
            None
        ));
    }
}
