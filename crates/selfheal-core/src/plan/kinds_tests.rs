//! The planners on StatefulSets and DaemonSets, from the recordings of a
//! real API server (tests/fixtures/k8s/statefulset-*, daemonset-*).

use serde_json::{Value, json};

use crate::testutil::{
    Recorded, applied, done, guard_ops, ops, recorded, recorded_body, recorded_request,
};
use crate::{
    Guard, OutcomeStatus, Policy, RolloutState, WorkloadKind, history::History, keys,
    rollout_status,
};

const DB: &str = "registry.example/data/db";
const AGENT: &str = "registry.example/obs/agent";

fn policy() -> Policy {
    Policy::default()
}

fn rollback(container: Option<&str>) -> Value {
    match container {
        Some(c) => json!({"action": "rollback", "target": {"namespace": "data", "container": c}}),
        None => json!({"action": "rollback"}),
    }
}

/// The ops that follow the recorded patch's `test /metadata/generation`.
fn recorded_half_brick(file: &str, note: &str) -> Vec<Value> {
    let body = recorded_request(&recorded(file), note);
    let body = body.as_array().unwrap();
    assert_eq!(body[0]["path"], "/metadata/generation");
    body[1..].to_vec()
}

#[test]
fn history_comes_from_controller_revisions_and_follows_renumbering() {
    let ledger = Recorded::ledger();
    let revisions = ledger.controller_revisions();
    ledger.with(|sts| {
        let history = History::of_controller_revisions(sts, &revisions);
        let numbers: Vec<i64> = history.revisions().iter().map(|r| r.number).collect();
        assert_eq!(numbers, [1, 2, 3, 4]);
        let images = |n: i64| {
            let r = history.revision(n).unwrap();
            (r.image("db").unwrap(), r.image("metrics").unwrap())
        };
        assert_eq!(
            images(1),
            (&*format!("{DB}:15.1"), "registry.example/data/metrics:0.9")
        );
        assert_eq!(
            images(3),
            (&*format!("{DB}:15.2"), "registry.example/data/metrics:0.10")
        );
        // `$patch: replace` is gone and the template is the StatefulSet's own.
        let latest = history.latest().unwrap().template().unwrap();
        assert!(crate::history::equal_ignoring_hash(
            latest,
            sts.template().unwrap()
        ));
    });
    // After the half-brick rollback converged the controller reused revision
    // 3's ControllerRevision as revision 5: 3 is gone.
    let after = Recorded::at(
        WorkloadKind::StatefulSet,
        "statefulset-json-patch-single-container.json",
        "after the rollback converged",
    );
    let revisions = after.controller_revisions();
    after.with(|sts| {
        let history = History::of_controller_revisions(sts, &revisions);
        let numbers: Vec<i64> = history.revisions().iter().map(|r| r.number).collect();
        assert_eq!(numbers, [1, 2, 4, 5]);
        assert_eq!(history.latest().unwrap().name(), "ledger-59588b4d6");
        assert!(history.revision(3).is_none());
    });
}

#[test]
fn history_keeps_only_revisions_the_workload_controls() {
    let mut ledger = Recorded::ledger();
    ledger.revisions[0]["metadata"]["ownerReferences"][0]["controller"] = json!(false);
    ledger.revisions[1]["metadata"]["ownerReferences"][0]["uid"] = json!("someone-else");
    ledger.revisions[2]["metadata"]["labels"]["app"] = json!("other");
    let revisions = ledger.controller_revisions();
    let numbers: Vec<i64> = ledger.with(|sts| {
        History::of_controller_revisions(sts, &revisions)
            .revisions()
            .iter()
            .map(|r| r.number)
            .collect()
    });
    assert_eq!(numbers.len(), 1, "{numbers:?}");
}

#[test]
fn half_brick_rollback_sends_the_recorded_patch_on_both_kinds() {
    for (recorded, container, file, note, from, to) in [
        (
            Recorded::ledger(),
            "db",
            "statefulset-json-patch-single-container.json",
            "JSON patch: half-brick rollback of db to 15.2",
            format!("{DB}:15.3"),
            format!("{DB}:15.2"),
        ),
        (
            Recorded::node_agent(),
            "agent",
            "daemonset-json-patch-single-container.json",
            "JSON patch: half-brick rollback of agent to 2.1",
            format!("{AGENT}:2.2"),
            format!("{AGENT}:2.1"),
        ),
    ] {
        let kind = recorded.kind;
        // A request naming its container lists no pods.
        let recorded = Recorded {
            pods: Vec::new(),
            ..recorded
        };
        let plan =
            applied(recorded.decide(&recorded.request(rollback(Some(container))), &policy()));
        let guards = guard_ops(&plan);
        assert_eq!(
            guards[0]["value"],
            recorded.object["metadata"]["generation"]
        );
        assert_eq!(guards[1]["value"], recorded.object["metadata"]["labels"]);
        let ops = ops(&plan);
        let ops = ops.as_array().unwrap();
        // A DaemonSet's generation ignores annotations, so they are tested too.
        let annotations = recorded.object["metadata"].get("annotations");
        let rest = match annotations {
            Some(a) => {
                assert_eq!(
                    ops[0],
                    json!({"op": "test", "path": "/metadata/annotations", "value": a})
                );
                &ops[1..]
            }
            None => ops,
        };
        let expected = recorded_half_brick(file, note);
        assert_eq!(rest[..expected.len()], expected[..], "{kind}");
        let outcome = &plan.outcome;
        assert_eq!(
            outcome.message,
            format!(
                "rolled back {} data/{}: container {container} from {from} to {to}",
                kind.noun(),
                recorded.object["metadata"]["name"].as_str().unwrap()
            )
        );
        assert_eq!(
            serde_json::to_value(&outcome.target).unwrap(),
            json!({"namespace": "data", kind.field(): recorded.object["metadata"]["name"], "container": container})
        );
        assert_eq!(outcome.revision.unwrap().before, Some(4));
        let after = recorded.applied(&plan);
        let containers = &after.object["spec"]["template"]["spec"]["containers"];
        assert_eq!(containers[0]["image"], json!(to), "{kind}");
        assert_eq!(
            containers[1],
            recorded.object["spec"]["template"]["spec"]["containers"][1]
        );
        let bad: Value = serde_json::from_str(
            after.object["metadata"]["annotations"][keys::BAD_IMAGES]
                .as_str()
                .unwrap(),
        )
        .unwrap();
        assert_eq!(bad, json!({container: [from]}));
    }
}

#[test]
fn without_a_container_the_current_revisions_pods_choose() {
    let mut ledger = Recorded::ledger();
    // Every pod is healthy: the one changed container (db) goes back.
    let plan = applied(ledger.decide(&ledger.request(rollback(None)), &policy()));
    assert_eq!(plan.outcome.changes.len(), 1);
    assert_eq!(plan.outcome.changes[0].container, "db");
    let evidence = &plan.outcome.evidence;
    assert_eq!(evidence.len(), 2);
    assert!(
        evidence.iter().all(|e| e.pods_seen == 2 && !e.is_failing()),
        "{evidence:?}"
    );
    // metrics crash-loops instead, though its image did not change.
    ledger.pods[0]["status"]["containerStatuses"][1]["state"] =
        json!({"waiting": {"reason": "CrashLoopBackOff", "message": "back-off"}});
    ledger.pods[0]["status"]["containerStatuses"][1]["ready"] = json!(false);
    let outcome = done(ledger.decide(&ledger.request(rollback(None)), &policy()));
    assert_eq!(
        outcome.guard,
        Some(Guard::UnchangedContainerFailing),
        "{outcome:?}"
    );
    assert!(
        outcome
            .message
            .contains("the pods of statefulset data/ledger show metrics failing")
    );
    // Pods of another revision say nothing.
    for pod in &mut ledger.pods {
        pod["metadata"]["labels"][keys::CONTROLLER_REVISION_HASH] = json!("ledger-59588b4d6");
    }
    let plan = applied(ledger.decide(&ledger.request(rollback(None)), &policy()));
    assert!(plan.outcome.evidence.iter().all(|e| e.pods_seen == 0));
}

#[test]
fn known_bad_images_are_skipped_and_a_redeployed_one_is_oscillation() {
    let ledger = Recorded::ledger().annotate(
        keys::BAD_IMAGES,
        &json!({"db": [format!("{DB}:15.2")]}).to_string(),
    );
    let plan = applied(ledger.decide(&ledger.request(rollback(Some("db"))), &policy()));
    assert_eq!(plan.outcome.changes[0].to, format!("{DB}:15.1"));
    let ledger = Recorded::ledger().annotate(
        keys::BAD_IMAGES,
        &json!({"db": [format!("{DB}:15.3")]}).to_string(),
    );
    let outcome = done(ledger.decide(&ledger.request(rollback(Some("db"))), &policy()));
    assert_eq!(outcome.guard, Some(Guard::Oscillation));
    assert!(
        outcome.message.contains("of statefulset data/ledger runs"),
        "{}",
        outcome.message
    );
}

#[test]
fn every_guard_speaks_for_the_kind_it_refuses() {
    let agent = Recorded::node_agent();
    let request = agent.request(rollback(Some("agent")));
    let mut unlabelled = agent.clone();
    unlabelled.object["metadata"]["labels"]
        .as_object_mut()
        .unwrap()
        .remove(keys::ENABLED_LABEL);
    let outcome = done(unlabelled.decide(&request, &policy()));
    assert_eq!(outcome.guard, Some(Guard::OptIn));
    assert!(
        outcome
            .message
            .starts_with("daemonset data/node-agent is not labelled")
    );
    let denied = Policy {
        denied_namespaces: vec!["data".into()],
        ..policy()
    };
    assert_eq!(
        done(agent.decide(&request, &denied)).guard,
        Some(Guard::Namespace)
    );
    let argo = agent.clone().annotate(
        "argocd.argoproj.io/tracking-id",
        "obs:apps/DaemonSet:data/node-agent",
    );
    let outcome = done(argo.decide(&request, &policy()));
    assert_eq!(outcome.guard, Some(Guard::Gitops));
    assert!(
        outcome
            .message
            .ends_with("acting on GitOps-managed daemonsets"),
        "{}",
        outcome.message
    );
    let recent = json!([{"action": "rollback", "at": "2026-11-26T19:59:00Z", "execution": null, "changes": []}]);
    let cooled = agent.clone().annotate(keys::HISTORY, &recent.to_string());
    let outcome = done(cooled.decide(&request, &policy()));
    assert_eq!(outcome.guard, Some(Guard::Cooldown));
    assert!(
        outcome
            .message
            .starts_with("daemonset data/node-agent had a rollback 60s ago")
    );
    let dry = agent.request(json!({"action": "rollback", "dryRun": true}));
    assert!(applied(agent.decide(&dry, &policy())).dry_run);
}

#[test]
fn template_rollback_restores_the_revision_template_like_kubectl_undo() {
    let ledger = Recorded::ledger();
    let revisions = ledger.controller_revisions();
    for (to_revision, expected) in [(None, 3), (Some(1), 1), (Some(2), 2)] {
        let mut request = json!({"action": "rollback", "scope": "template"});
        if let Some(n) = to_revision {
            request["toRevision"] = json!(n);
        }
        let plan = applied(ledger.decide(&ledger.request(request), &policy()));
        assert_eq!(plan.outcome.revision.unwrap().to, Some(expected));
        let after = ledger.applied(&plan);
        let restored = after.with(|sts| sts.template().unwrap().clone());
        let wanted = revisions.iter().find(|r| r.revision == expected).unwrap();
        assert_eq!(
            Some(restored),
            crate::history::controller_revision_template(wanted),
            "revision {expected}"
        );
        // kubectl's undo patch carries only the template: the object's own
        // annotations are selfheal's audit trail and nothing else.
        let annotations = after.object["metadata"]["annotations"].as_object().unwrap();
        assert!(
            annotations
                .keys()
                .all(|k| k.starts_with("selfheal.dev/") || k == keys::CHANGE_CAUSE)
        );
    }
    let request =
        ledger.request(json!({"action": "rollback", "scope": "template", "toRevision": 4}));
    let outcome = done(ledger.decide(&request, &policy()));
    assert_eq!(outcome.status, OutcomeStatus::Skipped);
    assert_eq!(
        outcome.message,
        "statefulset data/ledger skipped rollback (current template already matches revision 4)"
    );
    let request =
        ledger.request(json!({"action": "rollback", "scope": "template", "toRevision": 9}));
    assert_eq!(
        done(ledger.decide(&request, &policy())).guard,
        Some(Guard::RevisionNotFound)
    );
    let mut bare = ledger.clone();
    bare.revisions.clear();
    let outcome = done(bare.decide(
        &ledger.request(json!({"action": "rollback", "scope": "template"})),
        &policy(),
    ));
    assert_eq!(outcome.guard, Some(Guard::NoHistory));
    assert_eq!(
        outcome.message,
        r#"no rollout history found for statefulset "ledger""#
    );
}

#[test]
fn restart_stamps_kubectls_annotation_on_both_kinds() {
    for recorded in [Recorded::ledger(), Recorded::node_agent()] {
        let plan =
            applied(recorded.decide(&recorded.request(json!({"action": "restart"})), &policy()));
        let after = recorded.applied(&plan);
        assert_eq!(
            after.object["spec"]["template"]["metadata"]["annotations"][keys::RESTARTED_AT],
            "2026-11-26T20:00:00Z"
        );
        assert_eq!(
            after.object["spec"]["template"]["spec"],
            recorded.object["spec"]["template"]["spec"]
        );
        assert!(
            plan.outcome
                .message
                .starts_with(&format!("restarted {} data/", recorded.kind.noun()))
        );
    }
}

/// Pause (hold), then resume: the strategy comes back exactly.
#[test]
fn hold_and_resume_round_trip_the_update_strategy() {
    for (recorded, held) in [
        (
            Recorded::ledger(),
            json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 2}}),
        ),
        (Recorded::node_agent(), json!({"type": "OnDelete"})),
    ] {
        let kind = recorded.kind;
        let original = recorded.object["spec"]["updateStrategy"].clone();
        let plan =
            applied(recorded.decide(&recorded.request(json!({"action": "pause"})), &policy()));
        let paused = recorded.applied(&plan);
        assert_eq!(paused.object["spec"]["updateStrategy"], held, "{kind}");
        let annotations = &paused.object["metadata"]["annotations"];
        assert_eq!(annotations[keys::PAUSED_BY], "selfheal");
        let recorded_strategy: Value =
            serde_json::from_str(annotations[keys::HELD_STRATEGY].as_str().unwrap()).unwrap();
        assert_eq!(recorded_strategy, original);
        let status = paused.with(|w| rollout_status(w));
        assert_eq!(
            (status.paused, status.paused_by.as_deref()),
            (true, Some("selfheal"))
        );
        paused.with(|w| assert!(w.held_by_selfheal()));

        let again = done(paused.decide(&paused.request(json!({"action": "pause"})), &policy()));
        assert_eq!(again.status, OutcomeStatus::Skipped, "{kind}");
        let restart = done(paused.decide(&paused.request(json!({"action": "restart"})), &policy()));
        assert_eq!(restart.guard, Some(Guard::Paused));

        let plan = applied(paused.decide(&paused.request(json!({"action": "resume"})), &policy()));
        assert_eq!(
            plan.outcome.message,
            format!(
                "resumed {} data/{}",
                kind.noun(),
                recorded.object["metadata"]["name"].as_str().unwrap()
            )
        );
        let resumed = paused.applied(&plan);
        assert_eq!(resumed.object["spec"], recorded.object["spec"], "{kind}");
        let annotations = resumed.object["metadata"]["annotations"]
            .as_object()
            .unwrap();
        assert!(
            !annotations.contains_key(keys::PAUSED_BY)
                && !annotations.contains_key(keys::HELD_STRATEGY)
        );
        let not_held =
            done(resumed.decide(&resumed.request(json!({"action": "resume"})), &policy()));
        assert_eq!(not_held.status, OutcomeStatus::Skipped);
    }
}

#[test]
fn a_statefulset_without_replicas_has_nothing_to_hold() {
    let mut ledger = Recorded::ledger();
    ledger.object["spec"]["replicas"] = json!(0);
    let outcome = done(ledger.decide(&ledger.request(json!({"action": "pause"})), &policy()));
    assert_eq!(outcome.status, OutcomeStatus::Skipped);
    assert_eq!(
        outcome.message,
        "statefulset data/ledger has 0 replicas: there is no pod to hold"
    );
}

#[test]
fn a_hold_someone_else_made_is_theirs_unless_forced() {
    // The recorded manual hold: partition 2 on 2 replicas.
    let held = Recorded::at(
        WorkloadKind::StatefulSet,
        "statefulset-partition-pause.json",
        "partitioned: 3 s after the image change",
    );
    let outcome = done(held.decide(&held.request(json!({"action": "resume"})), &policy()));
    assert_eq!(outcome.guard, Some(Guard::Paused));
    assert!(
        outcome.message.contains("partition 2 of 2 replicas"),
        "{}",
        outcome.message
    );
    let status = held.with(|w| rollout_status(w));
    assert_eq!((status.paused, status.paused_by), (true, None));
    let forced = held.request(json!({"action": "resume", "force": true}));
    let resumed = held.applied(&applied(held.decide(&forced, &policy())));
    assert_eq!(
        resumed.object["spec"]["updateStrategy"],
        json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 0}})
    );
    // Their partition is their strategy: a rollback goes ahead under it.
    let plan = applied(held.decide(&held.request(rollback(Some("db"))), &policy()));
    assert!(!plan.outcome.message.contains("resumed"));
    let after = held.applied(&plan);
    assert_eq!(
        after.object["spec"]["updateStrategy"],
        held.object["spec"]["updateStrategy"]
    );
    // A forged mark without a recorded strategy is not selfheal's hold.
    let forged = held.annotate(keys::PAUSED_BY, keys::PAUSED_BY_SELFHEAL);
    assert_eq!(
        done(forged.decide(&forged.request(json!({"action": "resume"})), &policy())).guard,
        Some(Guard::Paused)
    );
}

#[test]
fn a_rollback_lifts_selfheals_own_hold_in_the_same_patch() {
    let agent = Recorded::node_agent();
    let held = agent.applied(&applied(
        agent.decide(&agent.request(json!({"action": "pause"})), &policy()),
    ));
    let plan = applied(held.decide(&held.request(rollback(Some("agent"))), &policy()));
    assert!(
        plan.outcome
            .message
            .contains(", and resumed it (selfheal had held it)"),
        "{}",
        plan.outcome.message
    );
    let after = held.applied(&plan);
    assert_eq!(
        after.object["spec"]["updateStrategy"],
        agent.object["spec"]["updateStrategy"]
    );
    assert_eq!(
        after.object["spec"]["template"]["spec"]["containers"][0]["image"],
        format!("{AGENT}:2.1")
    );
}

#[test]
fn an_alarm_pauses_only_a_rollout_in_progress_above_the_threshold() {
    let alarm = |score: f64| json!({"action": "pause", "alarm": {"source": "alertmanager", "impactScore": score}});
    for recorded in [Recorded::ledger(), Recorded::node_agent()] {
        let kind = recorded.kind;
        let outcome = done(recorded.decide(&recorded.request(alarm(3.0)), &policy()));
        assert_eq!(outcome.guard, Some(Guard::NoRolloutInProgress), "{kind}");
        let mut rolling = recorded.clone();
        match kind {
            WorkloadKind::StatefulSet => {
                rolling.object["status"]["updateRevision"] = json!("ledger-7bff86d86d");
            }
            _ => rolling.object["status"]["updatedNumberScheduled"] = json!(1),
        }
        let plan = applied(rolling.decide(&rolling.request(alarm(3.0)), &policy()));
        assert!(
            plan.outcome
                .message
                .ends_with("during its rollout (alarm impact score 3)"),
            "{}",
            plan.outcome.message
        );
        let outcome = done(rolling.decide(&rolling.request(alarm(0.5)), &policy()));
        assert_eq!(outcome.guard, Some(Guard::ImpactBelowThreshold), "{kind}");
    }
}

#[test]
fn a_pod_target_must_be_on_the_current_controller_revision() {
    let ledger = Recorded::ledger();
    let revisions = ledger.controller_revisions();
    let pod = |hash: &str| -> k8s_openapi::api::core::v1::Pod {
        let mut pod = ledger.pods[0].clone();
        pod["metadata"]["labels"][keys::CONTROLLER_REVISION_HASH] = json!(hash);
        serde_json::from_value(pod).unwrap()
    };
    let current = ledger.pods[0]["metadata"]["labels"][keys::CONTROLLER_REVISION_HASH]
        .as_str()
        .unwrap()
        .to_owned();
    let request = ledger
        .request(json!({"action": "restart", "target": {"namespace": "data", "pod": "ledger-0"}}));
    let check = |pod| {
        ledger.with(|sts| crate::pod::check_pod_target_of(&pod, &request, sts, &[], &revisions))
    };
    assert_eq!(check(pod(&current)), Ok(()));
    let refusal = check(pod("ledger-59588b4d6")).unwrap_err();
    assert_eq!(refusal.guard, Guard::StalePod);
    assert!(
        refusal
            .message
            .contains("(revision 3), not the StatefulSet's current revision 4"),
        "{}",
        refusal.message
    );
    // A DaemonSet's pods carry the hash without the name.
    let agent = Recorded::node_agent();
    let revisions = agent.controller_revisions();
    let pod: k8s_openapi::api::core::v1::Pod =
        serde_json::from_value(agent.pods[0].clone()).unwrap();
    let request =
        agent.request(json!({"action": "pause", "target": {"namespace": "data", "pod": "x"}}));
    assert_eq!(
        agent.with(|ds| crate::pod::check_pod_target_of(&pod, &request, ds, &[], &revisions)),
        Ok(())
    );
}

#[test]
fn the_object_must_be_of_the_kind_the_request_names() {
    let ledger = Recorded::ledger();
    let mut request = ledger.request(json!({"action": "restart"}));
    request.target.stateful_set = None;
    request.target.daemon_set = Some("ledger".into());
    let revisions = ledger.controller_revisions();
    let request = crate::ValidRequest::new(request).unwrap();
    let err = ledger
        .with(|sts| {
            crate::decide(crate::PlanInput {
                request: &request,
                workload: sts,
                replica_sets: &[],
                controller_revisions: &revisions,
                pods: &[],
                policy: &policy(),
                now: crate::testutil::now(),
            })
        })
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid remediation request: request targets a DaemonSet but the object given is a StatefulSet"
    );
}

#[test]
fn only_a_rollback_of_the_new_kinds_lists_controller_revisions() {
    use crate::plan::{needs_controller_revisions, needs_history, needs_replica_sets};
    let ledger = Recorded::ledger();
    for (action, rollback) in [
        ("rollback", true),
        ("pause", false),
        ("resume", false),
        ("restart", false),
    ] {
        let request = ledger.request(json!({"action": action}));
        assert_eq!(
            needs_controller_revisions(&request, WorkloadKind::StatefulSet),
            rollback
        );
        assert_eq!(
            needs_controller_revisions(&request, WorkloadKind::DaemonSet),
            rollback
        );
        assert!(!needs_controller_revisions(
            &request,
            WorkloadKind::Deployment
        ));
        assert_eq!(
            needs_history(&request, WorkloadKind::Deployment),
            needs_replica_sets(&request)
        );
        assert_eq!(needs_history(&request, WorkloadKind::DaemonSet), rollback);
    }
}

#[test]
fn kubectl_status_words_for_both_kinds() {
    let status = |recorded: &Recorded| recorded.with(|w| rollout_status(w));
    // `kubectl rollout status --watch=false` after the recorded sequence.
    let sts = Recorded::at(
        WorkloadKind::StatefulSet,
        "statefulset-kubectl.json",
        "after the kubectl sequence converged",
    );
    let recorded_stdout = |file: &str| {
        recorded(file)["steps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["command"].as_str().unwrap().contains("rollout status"))
            .unwrap()["stdout"]
            .as_str()
            .unwrap()
            .trim_end()
            .to_owned()
    };
    let s = status(&sts);
    assert_eq!(
        (s.state, s.message),
        (
            RolloutState::Done,
            recorded_stdout("statefulset-kubectl.json")
        )
    );
    let ds = Recorded::at(
        WorkloadKind::DaemonSet,
        "daemonset-kubectl.json",
        "after the kubectl sequence converged",
    );
    let s = status(&ds);
    assert_eq!(
        (s.state, s.message),
        (
            RolloutState::Done,
            recorded_stdout("daemonset-kubectl.json")
        )
    );

    // Right after a template change: not observed yet.
    let history = recorded("statefulset-history.json");
    let mut early = Recorded::ledger();
    early.object = recorded_body(&history, "GET statefulset right after the patch");
    assert_eq!(
        status(&early).message,
        "Waiting for statefulset spec update to be observed..."
    );
    let history = recorded("daemonset-history.json");
    let mut early = Recorded::node_agent();
    early.object = recorded_body(&history, "GET daemonset right after the patch");
    assert_eq!(
        status(&early).message,
        "Waiting for daemon set spec update to be observed..."
    );

    let expect = |r: &Recorded, state: RolloutState, message: &str| {
        let s = status(r);
        assert_eq!((s.state, s.message.as_str()), (state, message));
    };
    use RolloutState::{Done, Waiting};
    let mut sts = Recorded::ledger();
    sts.object["status"]["readyReplicas"] = json!(1);
    expect(&sts, Waiting, "Waiting for 1 pods to be ready...");
    sts.object["status"]["readyReplicas"] = json!(2);
    sts.object["status"]["updatedReplicas"] = json!(1);
    expect(
        &sts,
        Waiting,
        "Waiting for partitioned roll out to finish: 1 out of 2 new pods have been updated...",
    );
    sts.object["spec"]["updateStrategy"] = json!({"type": "RollingUpdate"});
    sts.object["status"]["updateRevision"] = json!("ledger-7bff86d86d");
    expect(
        &sts,
        Waiting,
        "waiting for statefulset rolling update to complete 1 pods at revision ledger-7bff86d86d...",
    );
    sts.object["status"]["updateRevision"] = sts.object["status"]["currentRevision"].clone();
    expect(
        &sts,
        Done,
        "statefulset rolling update complete 2 pods at revision ledger-6bf67cdfbc...",
    );
    sts.object["spec"]["updateStrategy"] = json!({"type": "OnDelete"});
    expect(&sts, Done, crate::status::ROLLING_UPDATE_ONLY);

    let mut ds = Recorded::node_agent();
    ds.object["status"]["updatedNumberScheduled"] = json!(1);
    expect(
        &ds,
        Waiting,
        r#"Waiting for daemon set "node-agent" rollout to finish: 1 out of 2 new pods have been updated..."#,
    );
    ds.object["status"]["updatedNumberScheduled"] = json!(2);
    ds.object["status"]["numberAvailable"] = json!(0);
    expect(
        &ds,
        Waiting,
        r#"Waiting for daemon set "node-agent" rollout to finish: 0 of 2 updated pods are available..."#,
    );
    ds.object["spec"]["updateStrategy"] = json!({"type": "OnDelete"});
    expect(&ds, Done, crate::status::ROLLING_UPDATE_ONLY);
    assert!(status(&ds).paused, "OnDelete holds a DaemonSet");
}
