//! From a pod to its workload (docs/contract.md §2) and from a workload's
//! selector to a LIST query. Alerts often name only a pod
//! (`KubePodCrashLooping`), so the chain pod → ReplicaSet → Deployment, or
//! pod → StatefulSet / DaemonSet, is followed through controller
//! ownerReferences.

use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference};
use kube::Api;
use kube::core::{Expression, Selector};
use selfheal_core::WorkloadKind;

use crate::error::{Call, Error, Result};

/// The controller owner of an object (`controller: true`), if any.
pub fn controller_of(meta: &ObjectMeta) -> Option<&OwnerReference> {
    meta.owner_references
        .as_deref()?
        .iter()
        .find(|o| o.controller == Some(true))
}

fn is_apps_v1(owner: &OwnerReference, kind: &str) -> bool {
    owner.kind == kind && owner.api_version == "apps/v1"
}

fn describe(owner: Option<&OwnerReference>) -> String {
    match owner {
        Some(o) => format!("controller is {}/{}", o.kind, o.name),
        None => "no controller ownerReference".to_owned(),
    }
}

/// A pod target resolved: the pod as read (the stale-pod guard compares it
/// with the workload, [`selfheal_core::pod`]) and its workload's kind and name.
#[derive(Debug, Clone, PartialEq)]
pub struct PodOwner {
    pub pod: Pod,
    pub kind: WorkloadKind,
    pub name: String,
    /// The uid the pod's ownerReference names when the workload owns the pod
    /// directly (StatefulSet, DaemonSet): the remediator's GET of the
    /// workload checks it. `None` for a Deployment, checked here through its
    /// ReplicaSet.
    pub uid: Option<String>,
}

/// GET the pod; a StatefulSet or DaemonSet owns it directly, a Deployment
/// through a ReplicaSet (a second GET). A uid mismatch (owner deleted and
/// recreated under the same name) counts as not found rather than silently
/// acting on a different object.
pub async fn pod_owner(client: &kube::Client, namespace: &str, pod: &str) -> Result<PodOwner> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let pod_obj = pods.get(pod).await.map_err(|e| {
        Call {
            verb: "get",
            kind: "Pod",
            namespace,
            name: pod,
        }
        .error(e)
    })?;
    let not_owned = |found: String| Error::PodNotOwnedByDeployment {
        namespace: namespace.to_owned(),
        pod: pod.to_owned(),
        found,
    };

    let controller = controller_of(&pod_obj.metadata);
    if let Some(owner) = controller.filter(|o| o.api_version == "apps/v1")
        && let Some(kind @ (WorkloadKind::StatefulSet | WorkloadKind::DaemonSet)) =
            WorkloadKind::from_kind(&owner.kind)
    {
        return Ok(PodOwner {
            kind,
            name: owner.name.clone(),
            uid: Some(owner.uid.clone()),
            pod: pod_obj,
        });
    }
    let owner = controller
        .filter(|o| is_apps_v1(o, "ReplicaSet"))
        .ok_or_else(|| not_owned(describe(controller)))?;

    let rs_call = Call {
        verb: "get",
        kind: "ReplicaSet",
        namespace,
        name: &owner.name,
    };
    let replica_sets: Api<ReplicaSet> = Api::namespaced(client.clone(), namespace);
    let rs = replica_sets
        .get(&owner.name)
        .await
        .map_err(|e| rs_call.error(e))?;
    if rs.metadata.uid.as_deref() != Some(owner.uid.as_str()) {
        return Err(not_owned(format!(
            "owner ReplicaSet/{} was replaced (uid {} is gone)",
            owner.name, owner.uid
        )));
    }

    let deployment = controller_of(&rs.metadata)
        .filter(|o| is_apps_v1(o, "Deployment"))
        .ok_or_else(|| {
            not_owned(format!(
                "ReplicaSet/{} has {}",
                owner.name,
                describe(controller_of(&rs.metadata))
            ))
        })?;
    Ok(PodOwner {
        kind: WorkloadKind::Deployment,
        name: deployment.name.clone(),
        uid: None,
        pod: pod_obj,
    })
}

/// A Deployment's `spec.selector` as the typed [`Selector`] a LIST takes
/// (`ListParams::labels_from`). An empty selector would match every
/// ReplicaSet in the namespace, so it is rejected: apps/v1 requires one, as
/// it requires values for `In` and `NotIn`.
pub fn label_selector(selector: &LabelSelector, deployment: &str) -> Result<Selector> {
    let invalid = |reason: String| Error::InvalidObject {
        kind: "Deployment",
        name: deployment.to_owned(),
        reason,
        source: None,
    };
    let mut parsed: Selector = selector
        .match_labels
        .clone()
        .into_iter()
        .flatten()
        .collect();
    for expr in selector.match_expressions.iter().flatten() {
        let no_values = expr.values.as_deref().unwrap_or_default().is_empty();
        if matches!(expr.operator.as_str(), "In" | "NotIn") && no_values {
            return Err(invalid(format!(
                "selector expression on {} uses {} with no values",
                expr.key, expr.operator
            )));
        }
        // With values checked above, an unknown operator is all kube refuses.
        let parsed_expr = Expression::try_from(expr.clone()).map_err(|_| {
            invalid(format!(
                "selector expression on {} has unknown operator {:?}",
                expr.key, expr.operator
            ))
        })?;
        parsed.extend(parsed_expr);
    }
    if parsed.selects_all() {
        return Err(invalid("spec.selector is empty".into()));
    }
    Ok(parsed)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use std::collections::BTreeMap;

    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;

    use super::*;

    fn req(key: &str, op: &str, values: &[&str]) -> LabelSelectorRequirement {
        LabelSelectorRequirement {
            key: key.into(),
            operator: op.into(),
            values: (!values.is_empty()).then(|| values.iter().map(|v| v.to_string()).collect()),
        }
    }

    #[test]
    fn match_labels_only() {
        let sel = LabelSelector {
            match_labels: Some(BTreeMap::from([("app".into(), "checkout".into())])),
            match_expressions: None,
        };
        assert_eq!(
            label_selector(&sel, "checkout").unwrap().to_string(),
            "app=checkout"
        );
    }

    #[test]
    fn labels_and_every_operator() {
        let sel = LabelSelector {
            match_labels: Some(BTreeMap::from([
                ("tier".into(), "web".into()),
                ("app".into(), "checkout".into()),
            ])),
            match_expressions: Some(vec![
                req("env", "In", &["prod", "canary"]),
                req("track", "NotIn", &["legacy"]),
                req("owner", "Exists", &[]),
                req("deprecated", "DoesNotExist", &[]),
            ]),
        };
        assert_eq!(
            label_selector(&sel, "checkout").unwrap().to_string(),
            "app=checkout,tier=web,env in (canary,prod),track notin (legacy),owner,!deprecated"
        );
    }

    #[test]
    fn empty_or_malformed_selectors_are_typed_errors() {
        let empty = LabelSelector::default();
        let e = label_selector(&empty, "checkout").unwrap_err();
        assert_eq!(e.error_type(), "NonRetryableInvalidObject");

        let bad = LabelSelector {
            match_labels: None,
            match_expressions: Some(vec![req("env", "Near", &["x"])]),
        };
        assert!(
            label_selector(&bad, "checkout")
                .unwrap_err()
                .to_string()
                .contains("Near")
        );

        let no_values = LabelSelector {
            match_labels: None,
            match_expressions: Some(vec![req("env", "In", &[])]),
        };
        assert!(label_selector(&no_values, "checkout").is_err());
    }

    #[test]
    fn controller_owner_from_recorded_pod() {
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "web-7c5d8f-abcde", "namespace": "watchdemo",
                "ownerReferences": [
                    {"apiVersion": "v1", "kind": "Other", "name": "x", "uid": "1"},
                    {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-7c5d8f",
                     "uid": "u-rs", "controller": true, "blockOwnerDeletion": true}
                ]}
        }))
        .unwrap();
        let owner = controller_of(&pod.metadata).unwrap();
        assert_eq!(
            (owner.kind.as_str(), owner.name.as_str()),
            ("ReplicaSet", "web-7c5d8f")
        );
        assert!(controller_of(&ObjectMeta::default()).is_none());
    }
}
