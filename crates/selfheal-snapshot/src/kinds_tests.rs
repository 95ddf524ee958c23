//! StatefulSets and DaemonSets in snapshots: the example dumps in
//! examples/ (recorded objects, `kubectl get sts|ds,controllerrevisions,pods`).

use serde_json::{Value, json};

use super::*;
use selfheal_core::Guard;

const LEDGER: &str = include_str!("../../../examples/ledger-snapshot.yaml");
const NODE_AGENT: &str = include_str!("../../../examples/node-agent-snapshot.yaml");
const STS_ROLLBACK: &str = include_str!("../../../examples/requests/statefulset-rollback.json");
const DS_ROLLBACK: &str = include_str!("../../../examples/requests/daemonset-rollback.json");

fn now() -> jiff::Timestamp {
    "2026-12-06T00:00:00Z".parse().unwrap()
}

/// `request` (JSON) run on `snapshot` (text): (before, after, outcome).
fn run(snapshot: &str, request: &str) -> (Snapshot, Snapshot, RemediationOutcome) {
    let mut snap = Snapshot::parse(snapshot).unwrap();
    let before = snap.clone();
    let request = RemediationRequest::from_json(request).unwrap();
    let outcome = snap.remediate(&request, &Policy::default(), now()).unwrap();
    (before, snap, outcome)
}

/// The raw workload object `kind` `data/name`.
fn object<'s>(snap: &'s Snapshot, kind: WorkloadKind, name: &str) -> &'s Value {
    &snap.objects()[snap.workload_index(kind, "data", name).unwrap()]
}

/// `(container, image)` of the workload's template, in order.
fn images(snap: &Snapshot, kind: WorkloadKind, name: &str) -> Vec<(String, String)> {
    let object = snap.workload(kind, "data", name).unwrap();
    selfheal_core::history::container_images(object.as_ref().template().unwrap())
        .map(|(c, i)| (c.to_owned(), i.to_owned()))
        .collect()
}

/// Kinds of the objects that differ between two snapshots of the same file.
fn changed_kinds(before: &Snapshot, after: &Snapshot) -> Vec<String> {
    before
        .objects()
        .iter()
        .zip(after.objects())
        .filter(|(a, b)| a != b)
        .map(|(a, _)| a["kind"].as_str().unwrap().to_owned())
        .collect()
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(c, i)| ((*c).to_owned(), (*i).to_owned()))
        .collect()
}

/// Runs `request` on `snapshot` and asserts the half-brick rollback of
/// `kind` `data/name`: applied, its template now runs `expected`, nothing
/// else in the snapshot changed, generation 4 → 5. Returns the result.
fn assert_rolled_back(
    snapshot: &str,
    request: &str,
    kind: WorkloadKind,
    name: &str,
    expected: &[(&str, &str)],
) -> (Snapshot, RemediationOutcome) {
    let (before, after, outcome) = run(snapshot, request);
    assert_eq!(outcome.status, OutcomeStatus::Applied, "{outcome:?}");
    assert_eq!(outcome.target.workload_kind(), Some(kind));
    assert_eq!(outcome.target.workload_name(kind), Some(name));
    assert_eq!(images(&after, kind, name), pairs(expected));
    assert_eq!(changed_kinds(&before, &after), [kind.as_str()]);
    assert_eq!(object(&after, kind, name)["metadata"]["generation"], 5);
    assert_eq!(Snapshot::parse(&after.render().unwrap()).unwrap(), after);
    (after, outcome)
}

#[test]
fn statefulset_rollback_reverts_only_db_to_the_newest_older_revision() {
    // Revision 3 (db 15.2 + metrics 0.10) is the newest older one whose db
    // differs; metrics keeps the image it runs.
    assert_rolled_back(
        LEDGER,
        STS_ROLLBACK,
        WorkloadKind::StatefulSet,
        "ledger",
        &[
            ("db", "registry.example/data/db:15.2"),
            ("metrics", "registry.example/data/metrics:0.10"),
        ],
    );
}

#[test]
fn daemonset_rollback_chooses_agent_from_the_pods_and_reverts_only_it() {
    let (after, outcome) = assert_rolled_back(
        NODE_AGENT,
        DS_ROLLBACK,
        WorkloadKind::DaemonSet,
        "node-agent",
        &[
            ("agent", "registry.example/obs/agent:2.1"),
            ("shipper", "registry.example/obs/shipper:1.5"),
        ],
    );
    // The request names no container: the pods' evidence chose agent.
    assert_eq!(outcome.changes.len(), 1);
    assert_eq!(outcome.changes[0].container, "agent");
    // The template changed, so the server moves the template generation too.
    let ds = object(&after, WorkloadKind::DaemonSet, "node-agent");
    assert_eq!(
        ds["metadata"]["annotations"]["deprecated.daemonset.template.generation"],
        "5"
    );
}

#[test]
fn pod_targets_resolve_to_their_statefulset_and_daemonset() {
    for (snapshot, pod, kind, name, container, to) in [
        (
            LEDGER,
            "ledger-0",
            WorkloadKind::StatefulSet,
            "ledger",
            "db",
            "registry.example/data/db:15.2",
        ),
        (
            NODE_AGENT,
            "node-agent-7wh8k",
            WorkloadKind::DaemonSet,
            "node-agent",
            "agent",
            "registry.example/obs/agent:2.1",
        ),
    ] {
        let snap = Snapshot::parse(snapshot).unwrap();
        assert_eq!(
            snap.resolve_pod("data", pod).unwrap(),
            (kind, name.to_owned())
        );
        let request = json!({
            "action": "rollback",
            "target": { "namespace": "data", "pod": pod, "container": container }
        });
        let (_, after, outcome) = run(snapshot, &request.to_string());
        assert_eq!(outcome.status, OutcomeStatus::Applied, "{outcome:?}");
        assert_eq!(outcome.target.pod.as_deref(), Some(pod));
        assert_eq!(outcome.target.workload_kind(), Some(kind));
        assert_eq!(outcome.target.workload_name(kind), Some(name));
        assert_eq!(outcome.target.deployment, None);
        let image = images(&after, kind, name)
            .into_iter()
            .find(|(c, _)| c == container)
            .unwrap()
            .1;
        assert_eq!(image, to);
    }
}

#[test]
fn a_statefulset_pod_of_an_old_revision_is_refused_and_nothing_changes() {
    let mut list: Value = serde_saphyr::from_str(LEDGER).unwrap();
    for item in list["items"].as_array_mut().unwrap() {
        if item["metadata"]["name"] == "ledger-1" {
            // Revision 3's hash: the alert is about the rollout before.
            item["metadata"]["labels"]["controller-revision-hash"] = json!("ledger-59588b4d6");
        }
    }
    let request =
        r#"{"action":"rollback","target":{"namespace":"data","pod":"ledger-1","container":"db"}}"#;
    let (before, after, outcome) = run(&list.to_string(), request);
    assert_eq!(outcome.status, OutcomeStatus::Refused);
    assert_eq!(outcome.guard, Some(Guard::StalePod));
    assert_eq!(outcome.target.stateful_set.as_deref(), Some("ledger"));
    assert_eq!(after, before);
}

#[test]
fn pause_holds_a_statefulset_and_resume_restores_its_strategy() {
    let pause = r#"{"action":"pause","target":{"namespace":"data","statefulSet":"ledger"}}"#;
    let (before, paused, outcome) = run(LEDGER, pause);
    assert_eq!(outcome.status, OutcomeStatus::Applied, "{outcome:?}");
    let held = object(&paused, WorkloadKind::StatefulSet, "ledger");
    assert_eq!(
        held["spec"]["updateStrategy"]["rollingUpdate"]["partition"],
        2
    );
    assert_eq!(held["metadata"]["generation"], 5);
    assert_eq!(
        held["metadata"]["annotations"]["selfheal.dev/paused-by"],
        "selfheal"
    );

    let mut snap = paused;
    let resume = RemediationRequest::from_json(
        r#"{"action":"resume","target":{"namespace":"data","statefulSet":"ledger"}}"#,
    )
    .unwrap();
    let outcome = snap.remediate(&resume, &Policy::default(), now()).unwrap();
    assert_eq!(outcome.status, OutcomeStatus::Applied, "{outcome:?}");
    let resumed = object(&snap, WorkloadKind::StatefulSet, "ledger");
    let original = object(&before, WorkloadKind::StatefulSet, "ledger");
    assert_eq!(resumed["spec"], original["spec"]);
    // The hold's two annotations go; selfheal's history stays.
    let annotations = resumed["metadata"]["annotations"].as_object().unwrap();
    assert!(!annotations.contains_key("selfheal.dev/paused-by"));
    assert!(!annotations.contains_key("selfheal.dev/held-strategy"));
    assert!(annotations.contains_key("selfheal.dev/history"));
    assert_eq!(resumed["metadata"]["generation"], 6);
}

#[test]
fn status_of_reads_statefulsets_and_daemonsets() {
    let ledger = Snapshot::parse(LEDGER).unwrap();
    // kubectl's StatefulSetStatusViewer: one of two replicas is not ready.
    let status = ledger
        .status_of(WorkloadKind::StatefulSet, "data", "ledger")
        .unwrap();
    assert_eq!(status.message, "Waiting for 1 pods to be ready...");
    let agent = Snapshot::parse(NODE_AGENT).unwrap();
    let status = agent
        .status_of(WorkloadKind::DaemonSet, "data", "node-agent")
        .unwrap();
    assert_eq!(
        status.message,
        "Waiting for daemon set \"node-agent\" rollout to finish: 0 of 2 updated pods are available..."
    );
    assert_eq!(
        ledger
            .status_of(WorkloadKind::DaemonSet, "data", "ledger")
            .unwrap_err()
            .to_string(),
        "daemonset data/ledger not found in snapshot"
    );
}

#[test]
fn pod_owners_that_are_not_the_snapshot_workload_are_typed_errors() {
    let mut list: Value = serde_saphyr::from_str(LEDGER).unwrap();
    let items = list["items"].as_array_mut().unwrap();
    let mut job_pod = items.last().unwrap().clone();
    job_pod["metadata"]["name"] = json!("batch-0");
    job_pod["metadata"]["ownerReferences"][0]["kind"] = json!("Job");
    let mut other_uid = items.last().unwrap().clone();
    other_uid["metadata"]["name"] = json!("ledger-9");
    other_uid["metadata"]["ownerReferences"][0]["uid"] = json!("a-recreated-ledger");
    items.extend([job_pod, other_uid]);
    let snap = Snapshot::parse(&list.to_string()).unwrap();
    let reason = |pod| match snap.resolve_pod("data", pod) {
        Err(Error::PodOwner { reason, .. }) => reason,
        other => panic!("{other:?}"),
    };
    assert!(
        reason("batch-0").contains("Job ledger"),
        "{}",
        reason("batch-0")
    );
    assert!(
        reason("ledger-9").contains("a-recreated-ledger"),
        "{}",
        reason("ledger-9")
    );
}

/// Every action plans and applies on both examples as on a Deployment: a
/// template rollback restores the previous revision's whole template
/// (`kubectl rollout undo`), restart writes kubectl's template annotation,
/// and resume of a workload nobody holds is skipped.
#[test]
fn every_action_applies_to_both_kinds() {
    for (snapshot, field, kind, name) in [
        (LEDGER, "statefulSet", WorkloadKind::StatefulSet, "ledger"),
        (
            NODE_AGENT,
            "daemonSet",
            WorkloadKind::DaemonSet,
            "node-agent",
        ),
    ] {
        let request = |action: &str, scope: &str| {
            json!({"action": action, "scope": scope, "target": {"namespace": "data", field: name}})
                .to_string()
        };
        let (before, after, outcome) = run(snapshot, &request("rollback", "template"));
        assert_eq!(outcome.status, OutcomeStatus::Applied, "{outcome:?}");
        // Revision 3 is the previous one: both containers as it ran them.
        let previous = before
            .controller_revisions_of(before.workload(kind, "data", name).unwrap().as_ref())
            .unwrap()
            .into_iter()
            .find(|cr| cr.revision == 3)
            .unwrap();
        let template = selfheal_core::history::controller_revision_template(&previous).unwrap();
        assert_eq!(
            images(&after, kind, name),
            selfheal_core::history::container_images(&template)
                .map(|(c, i)| (c.to_owned(), i.to_owned()))
                .collect::<Vec<_>>()
        );

        let (_, after, outcome) = run(snapshot, &request("restart", "container"));
        assert_eq!(outcome.status, OutcomeStatus::Applied, "{outcome:?}");
        let annotations =
            &object(&after, kind, name)["spec"]["template"]["metadata"]["annotations"];
        assert!(
            annotations
                .get("kubectl.kubernetes.io/restartedAt")
                .is_some(),
            "{annotations}"
        );

        let (before, after, outcome) = run(snapshot, &request("resume", "container"));
        assert_eq!(outcome.status, OutcomeStatus::Skipped, "{outcome:?}");
        assert_eq!(after, before);
    }
}
