//! Messages, approval summaries, plans and caps name a StatefulSet's or a
//! DaemonSet's kind; Deployment messages are pinned in tests.rs.

use serde_json::json;

use super::*;

const EXEC: &str = "arn:aws:states:eu-west-1:123456789012:execution:remediate-deployment:ledger-1";

/// One workload of each new kind, as a request's `target`.
struct Kind {
    target: Value,
    /// `Kind data/name` as the target line says it.
    line: &'static str,
    /// `kind data/name` as a subject says it.
    short: &'static str,
    /// The API kind, as a headline says it.
    api: &'static str,
    /// The target field and the workload's name.
    field: &'static str,
    name: &'static str,
}

fn kinds() -> [Kind; 2] {
    [
        Kind {
            target: json!({"cluster": "prod-eks", "namespace": "data", "statefulSet": "ledger", "container": "db"}),
            line: "StatefulSet data/ledger (container db) on cluster prod-eks",
            short: "statefulset data/ledger",
            api: "StatefulSet",
            field: "statefulSet",
            name: "ledger",
        },
        Kind {
            target: json!({"cluster": "prod-eks", "namespace": "data", "daemonSet": "node-agent", "container": "agent"}),
            line: "DaemonSet data/node-agent (container agent) on cluster prod-eks",
            short: "daemonset data/node-agent",
            api: "DaemonSet",
            field: "daemonSet",
            name: "node-agent",
        },
    ]
}

fn request(action: &str, target: &Value) -> Value {
    json!({"action": action, "target": target, "reason": "crash-looping since the last release",
           "alarm": {"source": "alertmanager", "name": "KubePodCrashLooping"}, "execution": EXEC})
}

fn event(value: Value) -> NotifyEvent {
    crate::parse_event(value).unwrap()
}

/// The message's first line: its headline.
fn headline(m: &Message) -> &str {
    m.text.lines().next().unwrap()
}

#[test]
fn an_approval_names_the_kind_in_subject_headline_target_summary_and_plan() {
    for kind in kinds() {
        let e = event(
            json!({"event": "approvalRequested", "execution": {"id": EXEC},
            "request": request("rollback", &kind.target), "taskToken": "T"}),
        );
        let m = render(&e, None);
        assert_eq!(
            m.subject,
            format!("selfheal: approve rollback of {}?", kind.short)
        );
        assert_eq!(
            headline(&m),
            format!(
                "Approval needed: selfheal wants to rollback this {}.",
                kind.api
            )
        );
        let target = format!("Target: {}", kind.line);
        assert!(m.text.lines().any(|l| l == target), "{}", m.text);
        assert_eq!(approval_summary(&e), format!("rollback of {}", kind.line));
        assert_eq!(
            approval_plan(&e).unwrap().workload,
            format!("{} {}", kind.api, kind.name)
        );
    }
}

/// A pod target's approval names what the dry run resolved it to.
#[test]
fn a_pod_target_is_named_by_the_workload_its_dry_run_resolved() {
    let pod = json!({"namespace": "data", "pod": "ledger-0", "container": "db"});
    let preview = json!({"status": "dryRun", "action": "rollback", "message": "dry run",
        "target": {"namespace": "data", "pod": "ledger-0", "statefulSet": "ledger", "container": "db"}});
    let e = event(
        json!({"event": "approvalRequested", "execution": {"id": EXEC},
        "request": request("rollback", &pod), "preview": preview, "taskToken": "T"}),
    );
    assert_eq!(approval_plan(&e).unwrap().workload, "StatefulSet ledger");
    assert_eq!(
        headline(&render(&e, None)),
        "Approval needed: selfheal wants to rollback this StatefulSet."
    );
    // Without a dry run nothing says what the pod belongs to yet.
    let unresolved = event(
        json!({"event": "approvalRequested", "execution": {"id": EXEC},
        "request": request("rollback", &pod), "taskToken": "T"}),
    );
    assert_eq!(
        headline(&render(&unresolved, None)),
        "Approval needed: selfheal wants to rollback this workload."
    );
}

/// `kubectl rollout resume` refuses StatefulSets and DaemonSets, so the
/// still-paused message sends the human to selfheal's resume instead.
#[test]
fn a_held_statefulset_or_daemonset_is_resumed_through_selfheal_not_kubectl() {
    for kind in kinds() {
        let e = event(json!({"event": "completed", "execution": {"id": EXEC},
            "request": request("pause", &kind.target),
            "outcome": {"status": "applied", "action": "pause", "message": "held", "target": kind.target},
            "approval": {"Error": "States.Timeout", "Cause": ""}}));
        let m = render(&e, None);
        assert_eq!(
            m.subject,
            format!("selfheal: {} still paused, no rollback", kind.short)
        );
        let noun = kind.api.to_lowercase();
        assert_eq!(
            headline(&m),
            format!(
                "Still paused: selfheal froze this {api}'s rollout and nobody answered the approval in time, so nothing was rolled back and the {api} is still paused. A human needs to decide: fix the release and resume it (kubectl rollout resume refuses {noun}s: send selfheal a resume request for {field} {name} in namespace data, which restores the update strategy selfheal recorded), or roll it back.",
                api = kind.api,
                field = kind.field,
                name = kind.name,
            )
        );
        assert!(!m.text.contains("kubectl rollout resume deployment/"));
    }
}

#[test]
fn frozen_and_routine_messages_name_the_kind() {
    for kind in kinds() {
        let frozen = event(json!({"event": "rolloutFrozen", "execution": {"id": EXEC},
            "request": request("pause", &kind.target), "taskToken": "T"}));
        let m = render(&frozen, None);
        assert_eq!(
            m.subject,
            format!("selfheal: rollout of {} frozen", kind.short)
        );
        assert!(
            headline(&m).starts_with(&format!(
                "Rollout frozen: selfheal paused this {}'s rollout",
                kind.api
            )),
            "{}",
            m.text
        );
        assert_eq!(
            approval_summary(&frozen),
            format!("rollback of {}", kind.line)
        );

        let routine = event(json!({"event": "completed", "execution": {"id": EXEC},
            "request": request("pause", &kind.target),
            "outcome": {"status": "refused", "action": "pause", "guard": "noRolloutInProgress",
                        "message": "nothing rolling", "target": kind.target}}));
        let m = render(&routine, None);
        assert_eq!(
            headline(&m),
            format!(
                "Nothing to do: selfheal did not pause this {} (noRolloutInProgress); this is routine and nothing was changed.",
                kind.api
            )
        );
    }
}

/// A StatefulSet or DaemonSet named like a Deployment has its own
/// pending-approval folder; the Deployment's stays where its records are.
#[test]
fn pending_caps_keep_deployments_and_separate_the_other_kinds() {
    use selfheal_approval::DeploymentScope;
    let cap = |target: Value| {
        let r = RemediationRequest::from_json(&request("rollback", &target).to_string()).unwrap();
        pending_cap(&r, 3).unwrap()
    };
    let deployment = cap(json!({"cluster": "prod", "namespace": "shop", "deployment": "checkout"}));
    assert_eq!(deployment.name, "prod/shop/checkout");
    assert_eq!(
        deployment.scope,
        DeploymentScope::of(Some("prod"), "shop", "checkout")
    );
    assert_eq!(deployment.max, 3);
    let sts = cap(json!({"cluster": "prod", "namespace": "shop", "statefulSet": "checkout"}));
    assert_eq!(sts.name, "statefulset prod/shop/checkout");
    let ds = cap(json!({"namespace": "shop", "daemonSet": "checkout"}));
    assert_eq!(ds.name, "daemonset (default cluster)/shop/checkout");
    assert_ne!(sts.scope, deployment.scope);
    assert_ne!(
        ds.scope,
        DeploymentScope::of(None, "shop", "checkout"),
        "a daemonset shares no folder with a deployment of its name"
    );
    let pod = cap(json!({"cluster": "prod", "namespace": "shop", "pod": "checkout-0"}));
    assert_eq!(pod.name, "prod/shop/checkout-0");
    assert_eq!(
        pod.scope,
        DeploymentScope::of(Some("prod"), "shop", "checkout-0")
    );
}

#[test]
fn completed_and_failed_messages_name_the_kind() {
    for kind in kinds() {
        let applied = event(json!({"event": "completed", "execution": {"id": EXEC},
            "request": request("rollback", &kind.target),
            "outcome": {"status": "applied", "action": "rollback", "message": "rolled back", "target": kind.target}}));
        let m = render(&applied, None);
        assert_eq!(
            m.subject,
            format!("selfheal: rollback applied for {}", kind.short)
        );
        let target = format!("Target: {}", kind.line);
        assert!(m.text.lines().any(|l| l == target), "{}", m.text);

        let failed = event(json!({"event": "failed", "execution": {"id": EXEC},
            "request": request("rollback", &kind.target),
            "error": {"Error": "NonRetryableNotFound", "Cause": "not found"}}));
        let m = render(&failed, None);
        assert_eq!(
            m.subject,
            format!("selfheal: rollback FAILED for {}", kind.short)
        );
        assert!(m.text.lines().any(|l| l == target), "{}", m.text);
    }
}
