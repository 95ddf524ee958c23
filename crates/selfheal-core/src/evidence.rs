//! Which container is failing, from the pods' own statuses.
//!
//! A release often bumps two images at once (the app and its sidecar, the
//! app and a migration init container) and the alarm rarely knows which one
//! broke. The kubelet does: the current revision's pods report a container
//! in `CrashLoopBackOff`, unable to pull its image, unable to start for want
//! of a ConfigMap or Secret, exiting non-zero over and over, or not ready
//! while its neighbours are. This module turns those statuses into one
//! verdict per container of the Deployment's template; the half-brick
//! planner uses it to choose what to roll back.
//!
//! Only pods of the current revision speak: a container that failed on an
//! older revision's pods says nothing about its new image.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{ControllerRevision, Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{ContainerStatus, Pod, PodTemplateSpec};

use crate::history::{self, History};
use crate::keys;
use crate::workload::WorkloadRef;

/// The record type lives with the contract (it is part of every rollback
/// outcome); this module computes it.
pub use selfheal_contract::evidence::{ContainerEvidence, Verdict, summary};

/// Waiting reasons that mean the container cannot run as deployed.
pub const FAILING_WAITING_REASONS: [&str; 7] = [
    "CrashLoopBackOff",
    "ImagePullBackOff",
    "ErrImagePull",
    "CreateContainerConfigError",
    "CreateContainerError",
    "InvalidImageName",
    "RunContainerError",
];

/// Reason reported for a running container that is not ready while another
/// container of the same pod is.
pub const NOT_READY: &str = "NotReady";

/// The `pod-template-hash` of the Deployment's current revision: its newest
/// ReplicaSet, provided that ReplicaSet runs the Deployment's images (when
/// the template is ahead of every ReplicaSet, no pod runs them yet and `None`
/// is returned). Images, not the whole template, because they are what the
/// evidence speaks about, and server-side defaulting may word the two
/// templates differently. The adapter adds the hash to its pod LIST's label
/// selector.
pub fn current_revision_hash<'a>(
    deployment: &Deployment,
    replica_sets: &'a [ReplicaSet],
) -> Option<&'a str> {
    let template = &deployment.spec.as_ref()?.template;
    let history = History::of(deployment, replica_sets);
    let latest = history.latest()?;
    let runs_template = latest
        .template()
        .is_some_and(|t| history::images_by_container(t) == history::images_by_container(template));
    if !runs_template {
        return None;
    }
    latest
        .metadata()
        .labels
        .as_ref()?
        .get(keys::POD_TEMPLATE_HASH)
        .map(String::as_str)
        .filter(|h| !h.is_empty())
}

/// The evidence for every container (init containers first, as the pod runs
/// them) of the Deployment's template, from the pods of its current revision.
///
/// Empty when `pods` is empty: the adapter did not list them (a request that
/// names its container, or an offline snapshot without pods). When pods were
/// listed but none is on the current revision, every container is `unknown`.
pub fn of(
    deployment: &Deployment,
    replica_sets: &[ReplicaSet],
    pods: &[Pod],
) -> Vec<ContainerEvidence> {
    of_workload(deployment.into(), replica_sets, &[], pods)
}

/// [`of`] for any workload kind: the pods of its current revision are those
/// carrying [`history::current_revision_label`] (a Deployment's
/// `pod-template-hash`, a StatefulSet's or DaemonSet's
/// `controller-revision-hash`).
pub fn of_workload(
    workload: WorkloadRef<'_>,
    replica_sets: &[ReplicaSet],
    controller_revisions: &[ControllerRevision],
    pods: &[Pod],
) -> Vec<ContainerEvidence> {
    if pods.is_empty() {
        return Vec::new();
    }
    let Some(template) = workload.template() else {
        return Vec::new();
    };
    let label = history::current_revision_label(workload, replica_sets, controller_revisions);
    let namespace = workload.metadata().namespace.as_deref();
    let current: Vec<&Pod> = pods
        .iter()
        .filter(|p| match (namespace, p.metadata.namespace.as_deref()) {
            (Some(a), Some(b)) => a == b,
            _ => true,
        })
        .filter(|p| {
            label.as_ref().is_some_and(|(key, value)| {
                p.metadata.labels.as_ref().and_then(|l| l.get(*key)) == Some(value)
            })
        })
        .collect();
    from_pods(template, &current)
}

/// The evidence for `template`'s containers from pods already known to run it.
pub fn from_pods(template: &PodTemplateSpec, pods: &[&Pod]) -> Vec<ContainerEvidence> {
    let Some(spec) = template.spec.as_ref() else {
        return Vec::new();
    };
    let init = spec.init_containers.iter().flatten().map(|c| (c, true));
    let regular = spec.containers.iter().map(|c| (c, false));
    init.chain(regular)
        .map(|(c, is_init)| container_evidence(&c.name, is_init, pods))
        .collect()
}

/// One pod's reading of one container.
struct Reading<'a> {
    failing: Option<&'a str>,
    restarts: i64,
    exit_code: Option<i32>,
    message: Option<&'a str>,
}

fn container_evidence(name: &str, init: bool, pods: &[&Pod]) -> ContainerEvidence {
    let mut evidence = ContainerEvidence {
        container: name.to_owned(),
        init,
        verdict: Verdict::Unknown,
        reason: None,
        pods_affected: 0,
        pods_seen: 0,
        restarts: 0,
        exit_code: None,
        message: None,
    };
    // Reason counts in a BTreeMap so that ties resolve by name, never by the
    // LIST order.
    let mut reasons: BTreeMap<&str, u32> = BTreeMap::new();
    for pod in pods {
        let Some(status) = pod.status.as_ref() else {
            continue;
        };
        let (own, siblings) = if init {
            (status.init_container_statuses.as_deref(), None)
        } else {
            (
                status.container_statuses.as_deref(),
                status.container_statuses.as_deref(),
            )
        };
        let Some(found) = own.unwrap_or_default().iter().find(|s| s.name == name) else {
            continue;
        };
        let reading = read(found, init, siblings.unwrap_or_default());
        evidence.pods_seen += 1;
        evidence.restarts = evidence.restarts.saturating_add(reading.restarts.max(0));
        if reading.exit_code.is_some() {
            evidence.exit_code = reading.exit_code;
        }
        if let Some(reason) = reading.failing {
            evidence.pods_affected += 1;
            *reasons.entry(reason).or_default() += 1;
            if evidence.message.is_none() {
                evidence.message = reading.message.map(str::to_owned);
            }
        }
    }
    evidence.verdict = if evidence.pods_affected > 0 {
        Verdict::Failing
    } else if evidence.pods_seen > 0 {
        Verdict::Healthy
    } else {
        Verdict::Unknown
    };
    let mut most: Option<(&str, u32)> = None;
    for (reason, count) in reasons {
        if most.is_none_or(|(_, best)| count > best) {
            most = Some((reason, count));
        }
    }
    evidence.reason = most.map(|(r, _)| r.to_owned());
    if !evidence.is_failing() {
        evidence.exit_code = None;
    }
    evidence
}

/// The rules, in order: a failing waiting reason; a non-zero exit with
/// restarts (the container keeps dying even between back-offs); for a
/// regular container, running but not ready while a sibling is ready.
fn read<'a>(status: &'a ContainerStatus, init: bool, siblings: &[ContainerStatus]) -> Reading<'a> {
    let state = status.state.as_ref();
    let waiting = state.and_then(|s| s.waiting.as_ref());
    let terminated = state.and_then(|s| s.terminated.as_ref());
    let last = status
        .last_state
        .as_ref()
        .and_then(|s| s.terminated.as_ref());
    let nonzero = terminated
        .filter(|t| t.exit_code != 0)
        .or(last.filter(|t| t.exit_code != 0));
    let mut reading = Reading {
        failing: None,
        restarts: i64::from(status.restart_count),
        exit_code: nonzero.map(|t| t.exit_code),
        message: waiting.and_then(|w| w.message.as_deref()),
    };
    if let Some(reason) = waiting
        .and_then(|w| w.reason.as_deref())
        .filter(|r| FAILING_WAITING_REASONS.contains(r))
    {
        reading.failing = Some(reason);
    } else if let Some(t) = nonzero.filter(|_| status.restart_count > 0) {
        reading.failing = Some(t.reason.as_deref().unwrap_or("Error"));
    } else if !init
        && state.is_some_and(|s| s.running.is_some())
        && !status.ready
        && siblings.iter().any(|s| s.name != status.name && s.ready)
    {
        reading.failing = Some(NOT_READY);
    }
    reading
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::testutil::{Scenario, pod, running, waiting};

    const API1: &str = "registry.example/shop/api:1.0.0";
    const API2: &str = "registry.example/shop/api:1.1.0";
    const ENVOY1: &str = "registry.example/envoy:1.27";
    const ENVOY2: &str = "registry.example/envoy:1.28";

    fn scenario() -> Scenario {
        Scenario::new(&[
            &[("api", API1), ("envoy", ENVOY1)],
            &[("api", API2), ("envoy", ENVOY2)],
        ])
    }

    fn evidence_of(s: &Scenario, pods: &[Value]) -> Vec<ContainerEvidence> {
        let pods: Vec<Pod> = pods
            .iter()
            .map(|p| serde_json::from_value(p.clone()).unwrap())
            .collect();
        of(&s.deployment(), &s.replica_sets(), &pods)
    }

    fn get<'a>(e: &'a [ContainerEvidence], name: &str) -> &'a ContainerEvidence {
        e.iter().find(|c| c.container == name).unwrap()
    }

    #[test]
    fn each_failing_waiting_reason_marks_the_container_failing() {
        for reason in [
            "CrashLoopBackOff",
            "ImagePullBackOff",
            "ErrImagePull",
            "CreateContainerConfigError",
        ] {
            let pods = [
                pod(
                    2,
                    0,
                    vec![waiting("api", reason, 3), running("envoy", true)],
                    vec![],
                ),
                pod(
                    2,
                    1,
                    vec![waiting("api", reason, 4), running("envoy", true)],
                    vec![],
                ),
            ];
            let e = evidence_of(&scenario(), &pods);
            let api = get(&e, "api");
            assert_eq!(api.verdict, Verdict::Failing, "{reason}");
            assert_eq!(api.reason.as_deref(), Some(reason));
            assert_eq!((api.pods_affected, api.pods_seen, api.restarts), (2, 2, 7));
            assert_eq!(
                api.message.as_deref(),
                Some(format!("{reason} for api").as_str())
            );
            assert_eq!(get(&e, "envoy").verdict, Verdict::Healthy);
            assert_eq!(
                summary(&e),
                format!("api: {reason} on 2/2 new pods, 7 restarts; envoy: healthy")
            );
        }
    }

    #[test]
    fn a_waiting_reason_of_a_normal_start_is_not_failing() {
        let pods = [pod(
            2,
            0,
            vec![
                waiting("api", "ContainerCreating", 0),
                running("envoy", true),
            ],
            vec![],
        )];
        let e = evidence_of(&scenario(), &pods);
        assert_eq!(get(&e, "api").verdict, Verdict::Healthy);
    }

    #[test]
    fn non_zero_exits_with_restarts_are_failing_and_report_the_exit_code() {
        let mut api = running("api", false);
        api["restartCount"] = json!(5);
        api["lastState"] = json!({"terminated": {"exitCode": 137, "reason": "OOMKilled"}});
        let pods = [pod(2, 0, vec![api, running("envoy", false)], vec![])];
        let e = evidence_of(&scenario(), &pods);
        let api = get(&e, "api");
        assert_eq!(api.verdict, Verdict::Failing);
        assert_eq!(api.reason.as_deref(), Some("OOMKilled"));
        assert_eq!((api.restarts, api.exit_code), (5, Some(137)));
        assert_eq!(
            api.describe(),
            "api: OOMKilled on 1/1 new pods, 5 restarts, exit code 137"
        );

        // A clean exit, or a crash without any restart yet, is not evidence.
        let mut clean = running("api", true);
        clean["restartCount"] = json!(2);
        clean["lastState"] = json!({"terminated": {"exitCode": 0, "reason": "Completed"}});
        let mut once = running("api", true);
        once["lastState"] = json!({"terminated": {"exitCode": 1, "reason": "Error"}});
        for status in [clean, once] {
            let e = evidence_of(
                &scenario(),
                &[pod(2, 0, vec![status, running("envoy", true)], vec![])],
            );
            assert_eq!(get(&e, "api").verdict, Verdict::Healthy);
        }
    }

    #[test]
    fn not_ready_among_ready_siblings_is_failing_but_all_not_ready_is_not() {
        let pods = [
            pod(
                2,
                0,
                vec![running("api", true), running("envoy", false)],
                vec![],
            ),
            pod(
                2,
                1,
                vec![running("api", true), running("envoy", true)],
                vec![],
            ),
        ];
        let e = evidence_of(&scenario(), &pods);
        let envoy = get(&e, "envoy");
        assert_eq!(envoy.verdict, Verdict::Failing);
        assert_eq!(envoy.reason.as_deref(), Some(NOT_READY));
        assert_eq!((envoy.pods_affected, envoy.pods_seen), (1, 2));
        assert_eq!(get(&e, "api").verdict, Verdict::Healthy);

        let starting = [pod(
            2,
            0,
            vec![running("api", false), running("envoy", false)],
            vec![],
        )];
        let e = evidence_of(&scenario(), &starting);
        assert!(e.iter().all(|c| c.verdict == Verdict::Healthy), "{e:?}");
    }

    #[test]
    fn init_containers_count_from_init_container_statuses() {
        let mut s = scenario();
        let migrate = json!([{"name": "migrate", "image": "registry.example/shop/migrate:2"}]);
        s.deployment["spec"]["template"]["spec"]["initContainers"] = migrate.clone();
        s.replica_sets[1]["spec"]["template"]["spec"]["initContainers"] = migrate;
        let mut failed = waiting("migrate", "CrashLoopBackOff", 6);
        failed["lastState"] = json!({"terminated": {"exitCode": 2, "reason": "Error"}});
        let pods = [pod(
            2,
            0,
            vec![
                waiting("api", "PodInitializing", 0),
                waiting("envoy", "PodInitializing", 0),
            ],
            vec![failed],
        )];
        let e = evidence_of(&s, &pods);
        assert_eq!(e[0].container, "migrate", "init containers come first");
        assert!(e[0].init);
        assert_eq!(e[0].verdict, Verdict::Failing);
        assert_eq!(e[0].reason.as_deref(), Some("CrashLoopBackOff"));
        assert_eq!((e[0].restarts, e[0].exit_code), (6, Some(2)));
        assert_eq!(get(&e, "api").verdict, Verdict::Healthy);
        let json = serde_json::to_value(&e[0]).unwrap();
        assert_eq!(json["init"], true);
        assert_eq!(json["podsAffected"], 1);
    }

    #[test]
    fn pods_of_an_older_revision_are_ignored() {
        let pods = [
            pod(
                1,
                0,
                vec![
                    waiting("api", "CrashLoopBackOff", 9),
                    running("envoy", true),
                ],
                vec![],
            ),
            pod(
                2,
                0,
                vec![
                    running("api", true),
                    waiting("envoy", "ImagePullBackOff", 0),
                ],
                vec![],
            ),
        ];
        let e = evidence_of(&scenario(), &pods);
        assert_eq!(get(&e, "api").verdict, Verdict::Healthy);
        assert_eq!(get(&e, "api").restarts, 0);
        assert_eq!(get(&e, "envoy").verdict, Verdict::Failing);

        let only_old = [pods[0].clone()];
        let e = evidence_of(&scenario(), &only_old);
        assert_eq!(e.len(), 2);
        assert!(e.iter().all(|c| c.verdict == Verdict::Unknown), "{e:?}");
        assert_eq!(summary(&e), "api: unknown; envoy: unknown");
    }

    #[test]
    fn a_template_ahead_of_its_replica_sets_has_no_current_pods() {
        let mut s = scenario();
        s.deployment["spec"]["template"]["spec"]["containers"][0]["image"] = json!("api:9");
        let pods = [pod(
            2,
            0,
            vec![waiting("api", "CrashLoopBackOff", 9)],
            vec![],
        )];
        let e = evidence_of(&s, &pods);
        assert!(e.iter().all(|c| c.verdict == Verdict::Unknown), "{e:?}");
    }

    #[test]
    fn no_pods_is_empty_evidence_and_a_pod_without_status_is_unknown() {
        assert!(evidence_of(&scenario(), &[]).is_empty());
        let mut bare = pod(2, 0, vec![], vec![]);
        bare.as_object_mut().unwrap().remove("status");
        let e = evidence_of(&scenario(), &[bare]);
        assert_eq!(get(&e, "api").verdict, Verdict::Unknown);
        assert_eq!(get(&e, "api").pods_seen, 0);
    }
}
