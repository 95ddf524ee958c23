//! Revision history from ReplicaSets (docs/kubectl-semantics.md §1).
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
