//! Revision history from ReplicaSets (design.md §3.1).
//!
//! A Deployment keeps no history of its own: every pod template it ever ran
//! survives as a ReplicaSet it controls, numbered by the annotation
//! `deployment.kubernetes.io/revision`. This module rebuilds that list the way
//! kubectl's `deploymentutil.GetAllReplicaSets` does (selector, then
//! controller ownerReference) and answers the questions the planners ask.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};

use crate::keys;

/// One revision: a ReplicaSet and its parsed revision number.
#[derive(Debug, Clone, Copy)]
pub struct Revision<'a> {
    pub number: i64,
    pub replica_set: &'a ReplicaSet,
}

impl<'a> Revision<'a> {
    /// The ReplicaSet's name (`<deployment>-<pod-template-hash>`).
    pub fn name(&self) -> &'a str {
        self.replica_set
            .metadata
            .name
            .as_deref()
            .unwrap_or_default()
    }

    /// The pod template this revision ran, as stored (with `pod-template-hash`).
    pub fn template(&self) -> Option<&'a PodTemplateSpec> {
        self.replica_set
            .spec
            .as_ref()
            .and_then(|s| s.template.as_ref())
    }

    /// Image of container `name` in this revision, if the container existed.
    pub fn image(&self, name: &str) -> Option<&'a str> {
        self.template().and_then(|t| image_of(t, name))
    }
}

/// A Deployment's revisions, oldest first.
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
        let Some(selector) = deployment.spec.as_ref().map(|s| &s.selector) else {
            return History::default();
        };
        let uid = deployment.metadata.uid.as_deref();
        if uid.is_none() && selector_is_empty(selector) {
            return History::default();
        }
        let namespace = deployment.metadata.namespace.as_deref();
        let mut revisions: Vec<Revision<'a>> = replica_sets
            .iter()
            .filter(|rs| match (namespace, rs.metadata.namespace.as_deref()) {
                (Some(a), Some(b)) => a == b,
                _ => true,
            })
            .filter(|rs| uid.is_none_or(|uid| controlled_by(rs, uid)))
            .filter(|rs| selector_matches(selector, rs.metadata.labels.as_ref()))
            .filter_map(|rs| {
                revision_of(&rs.metadata).map(|number| Revision {
                    number,
                    replica_set: rs,
                })
            })
            .collect();
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

/// `(name, image)` of every regular container, in template order. Init
/// containers are not included: selfheal never rolls them back.
pub fn container_images(template: &PodTemplateSpec) -> impl Iterator<Item = (&str, &str)> {
    template
        .spec
        .iter()
        .flat_map(|s| s.containers.iter())
        .map(|c| (c.name.as_str(), c.image.as_deref().unwrap_or_default()))
}

/// Image of the regular container `name`.
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
    rs.metadata
        .owner_references
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
