//! Whether a pod named by a request still speaks for its Deployment.
//!
//! Pod-labelled alerts (`KubePodCrashLooping`) arrive late or fire again
//! after the rollout moved on: the pod then belongs to an old revision, and
//! acting on the Deployment because of it would roll back (or pause, or
//! restart) a healthy release. A pod target is accepted only while it is on
//! the Deployment's current revision and, for a rollback, runs the image the
//! Deployment runs now; otherwise the request is refused with guard
//! [`Guard::StalePod`] and nothing is written.

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use crate::guards::Refusal;
use crate::history::{History, image_of};
use crate::{Action, Guard, RemediationRequest, keys};

/// Refuse a pod target that is not on the Deployment's current revision, or
/// (rollback) whose image for the request's container (every container the
/// pod shares with the Deployment when none is named) differs from the
/// Deployment's current one.
///
/// The current revision is the Deployment's newest ReplicaSet by
/// `deployment.kubernetes.io/revision` among `replica_sets` (the adapter's
/// LIST by selector); the pod is on it when its controlling ReplicaSet is
/// that one or its `pod-template-hash` label matches that ReplicaSet's.
pub fn check_pod_target(
    pod: &Pod,
    request: &RemediationRequest,
    deployment: &Deployment,
    replica_sets: &[ReplicaSet],
) -> Result<(), Refusal> {
    let who = pod_name(pod, request);
    let history = History::of(deployment, replica_sets);
    let Some(current) = history.latest() else {
        return Err(stale(format!(
            "pod {who} cannot be shown to be on the Deployment's current revision: the Deployment has no ReplicaSet with a revision"
        )));
    };
    let owner = pod
        .metadata
        .owner_references
        .iter()
        .flatten()
        .find(|o| o.controller == Some(true) && o.kind == "ReplicaSet")
        .map(|o| o.name.as_str());
    let pod_hash = template_hash(&pod.metadata);
    let current_hash = template_hash(current.metadata());
    let on_current =
        owner == Some(current.name()) || (pod_hash.is_some() && pod_hash == current_hash);
    if !on_current {
        let owner_revision = owner
            .and_then(|name| history.revisions().iter().find(|r| r.name() == name))
            .map_or_else(
                || "an unknown revision".to_owned(),
                |r| format!("revision {}", r.number),
            );
        return Err(stale(format!(
            "pod {who} belongs to ReplicaSet {} ({owner_revision}), not to the Deployment's current revision {} (ReplicaSet {}): the alert is about an old rollout, nothing written",
            owner.unwrap_or("(none)"),
            current.number,
            current.name()
        )));
    }
    if request.action != Action::Rollback {
        return Ok(());
    }
    let Some(template) = deployment.spec.as_ref().map(|s| &s.template) else {
        return Ok(());
    };
    let pod_containers = pod.spec.iter().flat_map(|s| s.containers.iter());
    let pod_image = |name: &str| {
        pod.spec
            .iter()
            .flat_map(|s| s.containers.iter())
            .find(|c| c.name == name)
            .map(|c| c.image.as_deref().unwrap_or_default())
    };
    let names: Vec<&str> = match request.target.container.as_deref() {
        Some(name) => vec![name],
        None => pod_containers.map(|c| c.name.as_str()).collect(),
    };
    for name in names {
        // A container the Deployment lacks is the planner's `unknownContainer`.
        let Some(wanted) = image_of(template, name) else {
            continue;
        };
        match pod_image(name) {
            Some(image) if image == wanted => {}
            Some(image) => {
                return Err(stale(format!(
                    "pod {who} runs {image} in container {name}, but the Deployment now runs {wanted}: the alert is not about the current image, nothing rolled back"
                )));
            }
            None => {
                return Err(stale(format!(
                    "pod {who} has no container {name}, which the Deployment runs as {wanted}: the alert is not about the current pod template, nothing rolled back"
                )));
            }
        }
    }
    Ok(())
}

fn template_hash(meta: &ObjectMeta) -> Option<&str> {
    meta.labels
        .as_ref()?
        .get(keys::POD_TEMPLATE_HASH)
        .map(String::as_str)
}

fn stale(message: String) -> Refusal {
    Refusal::new(Guard::StalePod, message)
}

/// `namespace/name` of the pod, for messages.
fn pod_name(pod: &Pod, request: &RemediationRequest) -> String {
    let namespace = pod
        .metadata
        .namespace
        .as_deref()
        .unwrap_or(&request.target.namespace);
    let name = pod
        .metadata
        .name
        .as_deref()
        .or(request.target.pod.as_deref())
        .unwrap_or_default();
    format!("{namespace}/{name}")
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::testutil::{Scenario, request};

    /// The refusal's message says `what`.
    fn assert_mentions(refusal: &Refusal, what: &str) {
        assert!(refusal.message.contains(what), "{}", refusal.message);
    }

    const API: &str = "registry.example/shop/api";

    /// Revisions: api 1.1.0, then 1.5.0, then the current 1.3.0.
    fn scenario() -> Scenario {
        Scenario::new(&[
            &[("api", "registry.example/shop/api:1.1.0")],
            &[("api", "registry.example/shop/api:1.5.0")],
            &[("api", "registry.example/shop/api:1.3.0")],
        ])
    }

    /// A pod of the ReplicaSet of `revision` (testutil names it `checkout-hash<N>`).
    fn pod(revision: i64, image: &str) -> Pod {
        let hash = format!("hash{revision}");
        serde_json::from_value(json!({
            "metadata": {
                "name": format!("checkout-{hash}-x2x2x"), "namespace": "shop",
                "labels": {"app": "checkout", "pod-template-hash": hash},
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                    "name": format!("checkout-{hash}"), "uid": format!("rs-uid-{revision}"),
                    "controller": true}]
            },
            "spec": {"containers": [{"name": "api", "image": image}]}
        }))
        .unwrap()
    }

    fn pod_request(action: &str, container: Option<&str>) -> RemediationRequest {
        let mut target = json!({"namespace": "shop", "pod": "checkout-hash3-x2x2x"});
        if let Some(c) = container {
            target["container"] = json!(c);
        }
        request(json!({"action": action, "target": target}))
    }

    fn check(pod: &Pod, request: &RemediationRequest) -> Result<(), Refusal> {
        let s = scenario();
        check_pod_target(pod, request, &s.deployment(), &s.replica_sets())
    }

    #[test]
    fn pod_on_the_current_revision_with_the_current_image_passes() {
        let current = pod(3, &format!("{API}:1.3.0"));
        for action in ["rollback", "pause", "restart", "resume"] {
            assert_eq!(check(&current, &pod_request(action, Some("api"))), Ok(()));
        }
        assert_eq!(check(&current, &pod_request("rollback", None)), Ok(()));
    }

    #[test]
    fn pod_of_an_old_revision_is_stale_for_every_action() {
        let old = pod(2, &format!("{API}:1.5.0"));
        for action in ["rollback", "pause", "restart"] {
            let refusal = check(&old, &pod_request(action, Some("api"))).unwrap_err();
            assert_eq!(refusal.guard, Guard::StalePod);
            assert!(
                refusal.message.contains("revision 2")
                    && refusal.message.contains("current revision 3"),
                "{}",
                refusal.message
            );
        }
    }

    #[test]
    fn matching_hash_counts_as_current_whatever_the_owner_says() {
        let mut p = pod(3, &format!("{API}:1.3.0"));
        p.metadata.owner_references = None;
        assert_eq!(check(&p, &pod_request("pause", None)), Ok(()));
        let mut unlabelled = pod(3, &format!("{API}:1.3.0"));
        unlabelled.metadata.labels = None;
        assert_eq!(check(&unlabelled, &pod_request("pause", None)), Ok(()));
        let mut neither = unlabelled.clone();
        neither.metadata.owner_references = None;
        let refusal = check(&neither, &pod_request("pause", None)).unwrap_err();
        assert_mentions(&refusal, "an unknown revision");
    }

    #[test]
    fn rollback_needs_the_pod_to_run_the_current_image() {
        // On the current ReplicaSet but its image was changed in place.
        let patched = pod(3, &format!("{API}:1.5.0"));
        let refusal = check(&patched, &pod_request("rollback", Some("api"))).unwrap_err();
        assert_eq!(refusal.guard, Guard::StalePod);
        assert_mentions(&refusal, "1.5.0");
        // Same without a container: every shared container is compared.
        assert!(check(&patched, &pod_request("rollback", None)).is_err());
        // A pause does not look at images.
        assert_eq!(check(&patched, &pod_request("pause", Some("api"))), Ok(()));
    }

    #[test]
    fn unknown_or_missing_containers() {
        let current = pod(3, &format!("{API}:1.3.0"));
        // The Deployment has no such container: left to the planner.
        assert_eq!(
            check(&current, &pod_request("rollback", Some("db"))),
            Ok(())
        );
        let mut no_api = current.clone();
        if let Some(spec) = no_api.spec.as_mut() {
            spec.containers[0].name = "sidecar".into();
        }
        let refusal = check(&no_api, &pod_request("rollback", Some("api"))).unwrap_err();
        assert_mentions(&refusal, "has no container api");
    }

    #[test]
    fn no_history_is_stale() {
        let s = scenario();
        let refusal = check_pod_target(
            &pod(3, &format!("{API}:1.3.0")),
            &pod_request("pause", None),
            &s.deployment(),
            &[],
        )
        .unwrap_err();
        assert_eq!(refusal.guard, Guard::StalePod);
        assert_mentions(&refusal, "shop/checkout-hash3-x2x2x");
    }
}
