//! Whether a pod named by a request still speaks for its Deployment.
//!
//! Pod-labelled alerts (`KubePodCrashLooping`) arrive late or fire again
//! after the rollout moved on: the pod then belongs to an old revision, and
//! acting on the Deployment because of it would roll back (or pause, or
//! restart) a healthy release. A pod target is accepted only while it is on
//! the Deployment's current revision and, for a rollback, runs the image the
//! Deployment runs now; otherwise the request is refused with guard
//! [`Guard::StalePod`] and nothing is written.

use k8s_openapi::api::apps::v1::{ControllerRevision, Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{Pod, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use crate::guards::Refusal;
use crate::history::{self, History, Revision, image_of};
use crate::workload::WorkloadRef;
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
    check_pod_target_of(pod, request, deployment.into(), replica_sets, &[])
}

/// [`check_pod_target`] for any workload kind. A StatefulSet's or
/// DaemonSet's pod is on the current revision when its
/// `controller-revision-hash` label names the newest of `controller_revisions`
/// (the adapter's LIST by selector; a pod target needs it for every action).
pub fn check_pod_target_of(
    pod: &Pod,
    request: &RemediationRequest,
    workload: WorkloadRef<'_>,
    replica_sets: &[ReplicaSet],
    controller_revisions: &[ControllerRevision],
) -> Result<(), Refusal> {
    match workload {
        WorkloadRef::Deployment(d) => on_current_replica_set(pod, request, d, replica_sets)?,
        _ => on_current_controller_revision(pod, request, workload, controller_revisions)?,
    }
    if request.action != Action::Rollback {
        return Ok(());
    }
    let Some(template) = workload.template() else {
        return Ok(());
    };
    runs_current_images(pod, request, workload, template)
}

fn on_current_controller_revision(
    pod: &Pod,
    request: &RemediationRequest,
    workload: WorkloadRef<'_>,
    controller_revisions: &[ControllerRevision],
) -> Result<(), Refusal> {
    let who = pod_name(pod, request);
    let kind = workload.kind().as_str();
    let history = History::of_controller_revisions(workload, controller_revisions);
    let current = newest(&history, &who, kind, "ControllerRevision")?;
    let pod_revision = pod
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(keys::CONTROLLER_REVISION_HASH))
        .map(String::as_str);
    let on_current =
        pod_revision.is_some_and(|h| history::revision_label_value(workload, current) == h);
    if on_current {
        return Ok(());
    }
    let revision = described(pod_revision.and_then(|h| {
        history
            .revisions()
            .iter()
            .find(|r| history::revision_label_value(workload, r) == h)
    }));
    Err(stale(format!(
        "pod {who} is labelled {}={} ({revision}), not the {kind}'s current revision {} (ControllerRevision {}): the alert is about an old rollout, nothing written",
        keys::CONTROLLER_REVISION_HASH,
        pod_revision.unwrap_or("(none)"),
        current.number,
        current.name()
    )))
}

fn on_current_replica_set(
    pod: &Pod,
    request: &RemediationRequest,
    deployment: &Deployment,
    replica_sets: &[ReplicaSet],
) -> Result<(), Refusal> {
    let who = pod_name(pod, request);
    let history = History::of(deployment, replica_sets);
    let current = newest(&history, &who, "Deployment", "ReplicaSet with a revision")?;
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
        let owner_revision =
            described(owner.and_then(|name| history.revisions().iter().find(|r| r.name() == name)));
        return Err(stale(format!(
            "pod {who} belongs to ReplicaSet {} ({owner_revision}), not to the Deployment's current revision {} (ReplicaSet {}): the alert is about an old rollout, nothing written",
            owner.unwrap_or("(none)"),
            current.number,
            current.name()
        )));
    }
    Ok(())
}

fn runs_current_images(
    pod: &Pod,
    request: &RemediationRequest,
    workload: WorkloadRef<'_>,
    template: &PodTemplateSpec,
) -> Result<(), Refusal> {
    let who = pod_name(pod, request);
    let kind = workload.kind().as_str();
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
        // A container the workload lacks is the planner's `unknownContainer`.
        let Some(wanted) = image_of(template, name) else {
            continue;
        };
        match pod_image(name) {
            Some(image) if image == wanted => {}
            Some(image) => {
                return Err(stale(format!(
                    "pod {who} runs {image} in container {name}, but the {kind} now runs {wanted}: the alert is not about the current image, nothing rolled back"
                )));
            }
            None => {
                return Err(stale(format!(
                    "pod {who} has no container {name}, which the {kind} runs as {wanted}: the alert is not about the current pod template, nothing rolled back"
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

/// The newest revision, or the refusal saying there is none to be on.
fn newest<'h, 'a>(
    history: &'h History<'a>,
    who: &str,
    kind: &str,
    stored_as: &str,
) -> Result<&'h Revision<'a>, Refusal> {
    history.latest().ok_or_else(|| {
        stale(format!(
            "pod {who} cannot be shown to be on the {kind}'s current revision: the {kind} has no {stored_as}"
        ))
    })
}

/// `revision N`, or `an unknown revision`, for messages.
fn described(revision: Option<&Revision<'_>>) -> String {
    revision.map_or_else(
        || "an unknown revision".to_owned(),
        |r| format!("revision {}", r.number),
    )
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
