//! Named planner scenarios: every rule of docs/kubectl-semantics.md and
//! docs/guards.md and the project
//! conventions, with patches asserted op by op and applied to the object.

use std::time::Duration;

use serde_json::{Value, json};

use crate::testutil::{
    Scenario, applied, done, fixture, guard_ops, now, ops, pod, request, running, waiting,
};
use crate::{
    Change, Error, GitopsManager, Guard, OutcomeStatus, PlanInput, Policy, RevisionInfo, decide,
    keys,
};

const API1: &str = "registry.example/shop/api:1.0.0";
const API2: &str = "registry.example/shop/api:1.1.0";
const API3: &str = "registry.example/shop/api:1.2.0";
const API4: &str = "registry.example/shop/api:1.3.0";
const ENVOY1: &str = "registry.example/envoy:1.27";
const ENVOY2: &str = "registry.example/envoy:1.28";

fn rollback() -> crate::RemediationRequest {
    request(json!({"action": "rollback"}))
}

fn change(container: &str, from: &str, to: &str) -> Change {
    Change {
        container: container.into(),
        from: from.into(),
        to: to.into(),
    }
}

/// One JSON Patch op on `field` of container `index` in `list`
/// (`containers` or `initContainers`) of the pod template.
fn container_op(op: &str, list: &str, index: usize, field: &str, value: &str) -> Value {
    json!({"op": op, "path": format!("/spec/template/spec/{list}/{index}/{field}"), "value": value})
}

/// `ops` test that container `index` of `list` is `name` running `from`,
/// then replace its image by `to`.
fn assert_image_swap(ops: &[Value], list: &str, index: usize, name: &str, from: &str, to: &str) {
    assert_eq!(
        ops,
        [
            container_op("test", list, index, "name", name),
            container_op("test", list, index, "image", from),
            container_op("replace", list, index, "image", to),
        ]
    );
}

/// The ops that lift selfheal's own pause: unpause, drop the paused-by mark.
fn unpause_ops() -> [Value; 2] {
    [
        json!({"op": "replace", "path": "/spec/paused", "value": false}),
        json!({"op": "remove", "path": "/metadata/annotations/selfheal.dev~1paused-by"}),
    ]
}

/// The plan's outcome message ends with `tail`.
fn assert_message_ends(plan: &crate::Plan, tail: &str) {
    assert!(
        plan.outcome.message.ends_with(tail),
        "{}",
        plan.outcome.message
    );
}

/// `doc` is running again, with no paused-by mark left.
fn assert_unpaused(doc: &Value) {
    assert_eq!(doc["spec"]["paused"], false);
    assert!(
        doc["metadata"]["annotations"]
            .get(keys::PAUSED_BY)
            .is_none()
    );
}

/// The image of container `index` in `doc`'s pod template.
fn image(doc: &Value, index: usize) -> &Value {
    &doc["spec"]["template"]["spec"]["containers"][index]["image"]
}

/// The plan of a default rollback of `scenario` under the default policy.
fn rollback_plan(scenario: &Scenario) -> crate::Plan {
    applied(scenario.decide(&rollback(), &policy()))
}

/// [`rollback_plan`], which must change exactly `changes`.
fn rollback_changing(scenario: &Scenario, changes: &[Change]) -> crate::Plan {
    let plan = rollback_plan(scenario);
    assert_eq!(plan.outcome.changes, changes);
    plan
}

fn policy() -> Policy {
    Policy::default()
}

fn annotation(doc: &Value, key: &str) -> Value {
    doc["metadata"]["annotations"][key].clone()
}

/// The JSON the audit annotation must hold.
fn last_remediation(action: &str, execution: Value, changes: Value) -> Value {
    json!({"action": action, "at": "2026-11-26T20:00:00Z", "execution": execution, "changes": changes})
}

/// One record of `selfheal.dev/history` as the planner writes it at [`now`].
fn history_record(action: &str, execution: Value, reason: Value, changes: Value) -> Value {
    json!({"action": action, "at": "2026-11-26T20:00:00Z", "execution": execution, "reason": reason, "changes": changes})
}

/// Every audit annotation a plan sets, copied into `expected`.
fn expect_annotations(expected: &mut Value, plan: &crate::Plan) {
    for (k, v) in &plan.annotations {
        expected["metadata"]["annotations"][k] = json!(v);
    }
}

fn parsed(value: &Value) -> Value {
    serde_json::from_str(value.as_str().unwrap()).unwrap()
}

/// `outcome` is a refusal by `guard` whose message mentions `mentions`.
fn assert_refused(outcome: &crate::RemediationOutcome, guard: Guard, mentions: &str) {
    assert_eq!(outcome.status, OutcomeStatus::Refused, "{outcome:#?}");
    assert_eq!(outcome.guard, Some(guard), "{outcome:#?}");
    assert!(outcome.message.contains(mentions), "{}", outcome.message);
}

fn refused(
    scenario: &Scenario,
    request: &crate::RemediationRequest,
    policy: &Policy,
) -> (Guard, String) {
    let outcome = done(scenario.decide(request, policy));
    assert_eq!(outcome.status, OutcomeStatus::Refused, "{outcome:#?}");
    (outcome.guard.unwrap(), outcome.message)
}

/// The message of `request`'s refusal by `guard`.
fn refused_by(
    scenario: &Scenario,
    request: &crate::RemediationRequest,
    policy: &Policy,
    guard: Guard,
) -> String {
    let (by, message) = refused(scenario, request, policy);
    assert_eq!(by, guard, "{message}");
    message
}

/// A rollback of shop/checkout's container `name` only.
fn rollback_container(name: &str) -> crate::RemediationRequest {
    request(json!({"action": "rollback",
        "target": {"namespace": "shop", "deployment": "checkout", "container": name}}))
}

// ------------------------------------------------------------------- guard

/// What the guard prefix means on a real object: the controller's status
/// writes (new resourceVersion, same generation) must not fail the patch;
/// spec/annotation changes (which bump generation) and label changes must.
#[test]
fn guard_ignores_status_churn_but_catches_spec_annotation_and_label_changes() {
    let scenario =
        Scenario::from_fixture(&fixture("checkout-rev4.json")).label(keys::ENABLED_LABEL, "true");
    let plan = rollback_plan(&scenario);
    let apply = |d: &Value| {
        let mut d = d.clone();
        json_patch::patch(&mut d, &plan.patch).map(|()| d)
    };
    let base = scenario.deployment.clone();

    let mut churned = base.clone();
    churned["metadata"]["resourceVersion"] = json!("999");
    churned["status"]["unavailableReplicas"] = json!(2);
    churned["status"]["readyReplicas"] = json!(0);
    let patched = apply(&churned).expect("status churn does not conflict");
    assert_eq!(image(&patched, 0), API2);

    let mut respecced = base.clone();
    respecced["metadata"]["generation"] = json!(5);
    respecced["spec"]["replicas"] = json!(5);
    assert!(apply(&respecced).is_err(), "a spec change conflicts");

    let mut opted_out = base;
    opted_out["metadata"]["labels"]
        .as_object_mut()
        .unwrap()
        .remove(keys::ENABLED_LABEL);
    assert!(apply(&opted_out).is_err(), "a label change conflicts");
}

// ---------------------------------------------------------------- half-brick

#[test]
fn half_brick_on_recorded_checkout_sends_the_recorded_ops_plus_guards_and_audit() {
    let scenario =
        Scenario::from_fixture(&fixture("checkout-rev4.json")).label(keys::ENABLED_LABEL, "true");
    let plan = rollback_plan(&scenario);
    // The three ops in the middle are exactly what tests/fixtures/k8s/json-patch-single-container.json sent.
    let recorded = json!([
        {"op": "test", "path": "/spec/template/spec/containers/0/name", "value": "api"},
        {"op": "test", "path": "/spec/template/spec/containers/0/image", "value": API3},
        {"op": "replace", "path": "/spec/template/spec/containers/0/image", "value": API2}
    ]);
    let ops = ops(&plan);
    // Guarded by generation and labels, not resourceVersion (status churn
    // must not conflict).
    let meta = &scenario.deployment["metadata"];
    assert_eq!(meta["generation"], 4);
    assert_eq!(
        guard_ops(&plan),
        [
            json!({"op": "test", "path": "/metadata/generation", "value": 4}),
            json!({"op": "test", "path": "/metadata/labels", "value": meta["labels"]}),
        ]
    );
    assert_eq!(
        Value::from(ops.as_array().unwrap()[0..3].to_vec()),
        recorded
    );
    assert_eq!(
        ops[3],
        json!({"op": "add", "path": "/metadata/annotations/kubernetes.io~1change-cause",
               "value": format!("selfheal rollback: api {API3} -> {API2}")})
    );
    assert_eq!(ops[4]["op"], "add");
    assert_eq!(
        ops[4]["path"],
        "/metadata/annotations/selfheal.dev~1bad-images"
    );
    assert_eq!(parsed(&ops[4]["value"]), json!({"api": [API3]}));
    let changes = json!([{"container": "api", "from": API3, "to": API2}]);
    assert_eq!(
        ops[5]["path"],
        "/metadata/annotations/selfheal.dev~1history"
    );
    assert_eq!(
        parsed(&ops[5]["value"]),
        json!([history_record(
            "rollback",
            Value::Null,
            Value::Null,
            changes.clone()
        )])
    );
    assert_eq!(
        ops[6]["path"],
        "/metadata/annotations/selfheal.dev~1last-remediation"
    );
    assert_eq!(
        parsed(&ops[6]["value"]),
        last_remediation("rollback", Value::Null, changes)
    );
    assert_eq!(ops.as_array().unwrap().len(), 7);

    let o = &plan.outcome;
    assert_eq!(o.status, OutcomeStatus::Applied);
    assert_eq!(o.changes, vec![change("api", API3, API2)]);
    assert_eq!(
        o.revision,
        Some(RevisionInfo {
            before: Some(4),
            to: None,
            after: None
        })
    );
    assert_eq!(o.target.namespace, "shop");
    assert_eq!(o.target.deployment.as_deref(), Some("checkout"));
    assert!(
        o.message.contains("shop/checkout") && o.message.contains(API2),
        "{}",
        o.message
    );
    assert!(!plan.dry_run);
    assert_eq!(plan.annotations.len(), 4);

    // Applying it changes only api's image and adds the four annotations.
    let after = scenario.apply(&plan);
    let mut expected = scenario.deployment.clone();
    expected["spec"]["template"]["spec"]["containers"][0]["image"] = json!(API2);
    for (k, v) in &plan.annotations {
        expected["metadata"]["annotations"][k] = json!(v);
    }
    assert_eq!(after, expected);
}

#[test]
fn multi_container_history_reverts_every_container_that_changed() {
    let scenario = app_and_sidecar();
    let plan = rollback_changing(
        &scenario,
        &[change("api", API2, API1), change("envoy", ENVOY2, ENVOY1)],
    );
    let ops = ops(&plan);
    assert_image_swap(
        &ops.as_array().unwrap()[3..6],
        "containers",
        1,
        "envoy",
        ENVOY2,
        ENVOY1,
    );
    assert_eq!(
        parsed(&plan.annotations[keys::BAD_IMAGES].clone().into()),
        json!({"api": [API2], "envoy": [ENVOY2]})
    );
    let after = scenario.apply(&plan);
    assert_eq!(image(&after, 0), API1);
    assert_eq!(image(&after, 1), ENVOY1);
}

#[test]
fn sidecar_only_change_reverts_only_the_sidecar() {
    let scenario = Scenario::new(&[
        &[("api", API1), ("envoy", ENVOY1)],
        &[("api", API1), ("envoy", ENVOY2)],
    ]);
    let plan = rollback_changing(&scenario, &[change("envoy", ENVOY2, ENVOY1)]);
    let after = scenario.apply(&plan);
    let mut expected = scenario.deployment.clone();
    expected["spec"]["template"]["spec"]["containers"][1]["image"] = json!(ENVOY1);
    expect_annotations(&mut expected, &plan);
    assert_eq!(
        plan.annotations
            .keys()
            .map(String::as_str)
            .collect::<Vec<_>>(),
        [
            keys::CHANGE_CAUSE,
            keys::BAD_IMAGES,
            keys::HISTORY,
            keys::LAST_REMEDIATION
        ]
    );
    assert_eq!(
        after, expected,
        "api container and everything else untouched"
    );
}

const MIGRATE1: &str = "registry.example/shop/migrate:1.0.0";
const MIGRATE2: &str = "registry.example/shop/migrate:1.1.0";

/// Give revision `i` (1-based, 0 = the Deployment) an init container `migrate`.
fn with_init(scenario: &mut Scenario, revision: usize, image: &str) {
    let init = json!([{"name": "migrate", "image": image, "command": ["/migrate", "up"]}]);
    if revision == 0 {
        scenario.deployment["spec"]["template"]["spec"]["initContainers"] = init;
    } else {
        scenario.replica_sets[revision - 1]["spec"]["template"]["spec"]["initContainers"] = init;
    }
}

/// Two revisions: api 1 → 2, envoy unchanged, migrate init container 1 → 2.
fn app_and_migration() -> Scenario {
    let mut scenario = Scenario::new(&[
        &[("api", API1), ("envoy", ENVOY1)],
        &[("api", API2), ("envoy", ENVOY1)],
    ]);
    with_init(&mut scenario, 1, MIGRATE1);
    with_init(&mut scenario, 2, MIGRATE2);
    with_init(&mut scenario, 0, MIGRATE2);
    scenario
}

#[test]
fn init_container_images_are_reverted_like_containers() {
    let scenario = app_and_migration();
    let plan = rollback_changing(
        &scenario,
        &[
            change("migrate", MIGRATE2, MIGRATE1),
            change("api", API2, API1),
        ],
    );
    let ops = ops(&plan);
    assert_image_swap(
        &ops.as_array().unwrap()[..3],
        "initContainers",
        0,
        "migrate",
        MIGRATE2,
        MIGRATE1,
    );
    let after = scenario.apply(&plan);
    let mut expected = scenario.deployment.clone();
    expected["spec"]["template"]["spec"]["initContainers"][0]["image"] = json!(MIGRATE1);
    expected["spec"]["template"]["spec"]["containers"][0]["image"] = json!(API1);
    expect_annotations(&mut expected, &plan);
    assert_eq!(after, expected);

    let only_migrate = rollback_container("migrate");
    let plan = applied(scenario.decide(&only_migrate, &policy()));
    let after = scenario.apply(&plan);
    assert_eq!(
        after["spec"]["template"]["spec"]["initContainers"][0]["image"],
        MIGRATE1
    );
    assert_eq!(image(&after, 0), API2);
}

/// api and envoy both changed in revision 2.
fn app_and_sidecar() -> Scenario {
    Scenario::new(&[
        &[("api", API1), ("envoy", ENVOY1)],
        &[("api", API2), ("envoy", ENVOY2)],
    ])
}

/// Two pods of revision 2: api crash-looping (3 and 4 restarts), envoy ready.
fn api_crash_looping() -> Vec<Value> {
    vec![
        pod(
            2,
            0,
            vec![
                waiting("api", "CrashLoopBackOff", 3),
                running("envoy", true),
            ],
            vec![],
        ),
        pod(
            2,
            1,
            vec![
                waiting("api", "CrashLoopBackOff", 4),
                running("envoy", true),
            ],
            vec![],
        ),
    ]
}

fn evidence_json(outcome: &crate::RemediationOutcome) -> Value {
    serde_json::to_value(outcome).unwrap()["evidence"].clone()
}

#[test]
fn pods_evidence_chooses_the_failing_one_of_two_changed_containers() {
    let mut scenario = app_and_sidecar();
    scenario.pods = api_crash_looping();
    let plan = rollback_changing(&scenario, &[change("api", API2, API1)]);
    let note = "(pod evidence: api: CrashLoopBackOff on 2/2 new pods, 7 restarts; envoy: healthy)";
    assert_message_ends(&plan, note);
    assert!(plan.event_message.contains(note), "{}", plan.event_message);
    assert_eq!(
        evidence_json(&plan.outcome),
        json!([
            {"container": "api", "verdict": "failing", "reason": "CrashLoopBackOff",
             "podsAffected": 2, "podsSeen": 2, "restarts": 7, "message": "CrashLoopBackOff for api"},
            {"container": "envoy", "verdict": "healthy", "podsAffected": 0, "podsSeen": 2, "restarts": 0}
        ])
    );
    let after = scenario.apply(&plan);
    let mut expected = scenario.deployment.clone();
    expected["spec"]["template"]["spec"]["containers"][0]["image"] = json!(API1);
    expect_annotations(&mut expected, &plan);
    assert_eq!(after, expected, "envoy keeps its new image");
}

#[test]
fn a_failing_init_container_is_chosen_over_the_changed_app() {
    let mut scenario = app_and_migration();
    let mut migrate = waiting("migrate", "CrashLoopBackOff", 5);
    migrate["lastState"] = json!({"terminated": {"exitCode": 1, "reason": "Error"}});
    scenario.pods = vec![pod(
        2,
        0,
        vec![
            waiting("api", "PodInitializing", 0),
            waiting("envoy", "PodInitializing", 0),
        ],
        vec![migrate],
    )];
    let plan = rollback_changing(&scenario, &[change("migrate", MIGRATE2, MIGRATE1)]);
    let after = scenario.apply(&plan);
    assert_eq!(
        after["spec"]["template"]["spec"]["initContainers"][0]["image"],
        MIGRATE1
    );
    assert_eq!(image(&after, 0), API2);
}

#[test]
fn no_failing_changed_container_keeps_every_changed_one_and_says_so() {
    // Only an old revision's pod fails: nothing of revision 2 reports yet.
    let mut scenario = app_and_sidecar();
    scenario.pods = vec![pod(
        1,
        0,
        vec![
            waiting("api", "CrashLoopBackOff", 9),
            running("envoy", true),
        ],
        vec![],
    )];
    let plan = rollback_plan(&scenario);
    assert_eq!(
        plan.outcome
            .changes
            .iter()
            .map(|c| c.container.as_str())
            .collect::<Vec<_>>(),
        ["api", "envoy"]
    );
    assert_message_ends(
        &plan,
        "(no changed container is failing on the current revision's pods, so every changed container; pod evidence: api: unknown; envoy: unknown)",
    );
    let after = scenario.apply(&plan);
    assert_eq!(image(&after, 1), ENVOY1);

    // No pods at all: the same rule, and the message says there was no evidence.
    let plan = applied(app_and_sidecar().decide(&rollback(), &policy()));
    assert_eq!(plan.outcome.changes.len(), 2);
    assert!(plan.outcome.evidence.is_empty());
    assert_message_ends(
        &plan,
        "(no pod evidence names a failing container, so every changed container)",
    );
    assert!(
        serde_json::to_value(&plan.outcome)
            .unwrap()
            .get("evidence")
            .is_none(),
        "empty evidence is left out"
    );
}

#[test]
fn an_unchanged_failing_container_is_refused_not_an_innocent_image_reverted() {
    let mut scenario = Scenario::new(&[
        &[("api", API1), ("envoy", ENVOY1)],
        &[("api", API2), ("envoy", ENVOY1)],
    ]);
    scenario.pods = vec![pod(
        2,
        0,
        vec![
            running("api", true),
            waiting("envoy", "CreateContainerConfigError", 0),
        ],
        vec![],
    )];
    let outcome = done(scenario.decide(&rollback(), &policy()));
    let mentions = "show envoy failing, whose image did not change";
    assert_refused(&outcome, Guard::UnchangedContainerFailing, mentions);
    assert!(outcome.changes.is_empty());
    assert_eq!(
        evidence_json(&outcome)[1],
        json!({"container": "envoy", "verdict": "failing", "reason": "CreateContainerConfigError",
               "podsAffected": 1, "podsSeen": 1, "restarts": 0,
               "message": "CreateContainerConfigError for envoy"})
    );
    assert_eq!(
        Guard::UnchangedContainerFailing.as_str(),
        "unchangedContainerFailing"
    );
}

#[test]
fn a_named_container_wins_over_the_evidence_which_is_still_reported() {
    let mut scenario = app_and_sidecar();
    scenario.pods = api_crash_looping();
    let envoy = rollback_container("envoy");
    let plan = applied(scenario.decide(&envoy, &policy()));
    assert_eq!(plan.outcome.changes, vec![change("envoy", ENVOY2, ENVOY1)]);
    assert_eq!(plan.outcome.evidence.len(), 2);
    assert_message_ends(
        &plan,
        "(pod evidence: api: CrashLoopBackOff on 2/2 new pods, 7 restarts; envoy: healthy)",
    );
    let after = scenario.apply(&plan);
    assert_eq!(image(&after, 0), API2);
    assert_eq!(image(&after, 1), ENVOY1);
    assert!(crate::needs_pods(&rollback()));
    assert!(!crate::needs_pods(&envoy));
    assert!(!crate::needs_pods(&request(
        json!({"action": "rollback", "scope": "template"})
    )));
    assert!(!crate::needs_pods(&request(json!({"action": "pause"}))));
}

#[test]
fn config_only_change_is_refused_no_image_change() {
    let mut scenario = Scenario::new(&[&[("api", API1)], &[("api", API1)]]);
    let env = json!([{"name": "MODE", "value": "fast"}]);
    scenario.deployment["spec"]["template"]["spec"]["containers"][0]["env"] = env.clone();
    scenario.replica_sets[1]["spec"]["template"]["spec"]["containers"][0]["env"] = env;
    let message = refused_by(&scenario, &rollback(), &policy(), Guard::NoImageChange);
    assert!(
        message.contains("revision 1") && message.contains("template"),
        "{message}"
    );
}

#[test]
fn no_replica_sets_at_all_is_refused_no_history() {
    let mut scenario = Scenario::new(&[&[("api", API1)]]);
    scenario.replica_sets.clear();
    assert_eq!(
        refused(&scenario, &rollback(), &policy()).0,
        Guard::NoHistory
    );
}

#[test]
fn revision_history_limit_zero_leaves_only_the_current_replica_set() {
    let mut scenario = Scenario::new(&[&[("api", API1)], &[("api", API2)]]);
    scenario.deployment["spec"]["revisionHistoryLimit"] = json!(0);
    scenario.replica_sets.remove(0);
    let message = refused_by(&scenario, &rollback(), &policy(), Guard::NoHistory);
    assert!(message.contains("shop/checkout"), "{message}");
}

#[test]
fn unknown_target_container_is_refused() {
    let scenario = Scenario::new(&[&[("api", API1)], &[("api", API2)]]);
    let req = rollback_container("worker");
    let message = refused_by(&scenario, &req, &policy(), Guard::UnknownContainer);
    assert!(
        message.contains("\"worker\"") && message.contains("api"),
        "{message}"
    );
}

#[test]
fn target_container_reverts_it_even_when_the_newest_change_was_elsewhere() {
    let scenario = Scenario::new(&[
        &[("api", API1), ("envoy", ENVOY1)],
        &[("api", API2), ("envoy", ENVOY1)],
        &[("api", API2), ("envoy", ENVOY2)],
    ]);
    let req = rollback_container("api");
    let plan = applied(scenario.decide(&req, &policy()));
    assert_eq!(plan.outcome.changes, vec![change("api", API2, API1)]);
    assert_eq!(
        ops(&plan)[0],
        container_op("test", "containers", 0, "name", "api")
    );
}

#[test]
fn known_bad_images_two_levels_deep_reach_the_third_newest() {
    let scenario = Scenario::new(&[
        &[("api", API1)],
        &[("api", API2)],
        &[("api", API3)],
        &[("api", API4)],
    ])
    .annotate(keys::BAD_IMAGES, &json!({"api": [API2, API3]}).to_string());
    let plan = rollback_changing(&scenario, &[change("api", API4, API1)]);
    assert_eq!(
        parsed(&plan.annotations[keys::BAD_IMAGES].clone().into()),
        json!({"api": [API2, API3, API4]}),
        "the image rolled away from is appended, most recent last"
    );
}

#[test]
fn every_older_image_known_bad_is_refused_no_previous_image() {
    let scenario = Scenario::new(&[&[("api", API1)], &[("api", API2)]])
        .annotate(keys::BAD_IMAGES, &json!({"api": [API1]}).to_string());
    let message = refused_by(&scenario, &rollback(), &policy(), Guard::NoPreviousImage);
    assert!(message.contains("\"api\""), "{message}");
}

#[test]
fn redeployed_bad_image_is_refused_as_oscillation_unless_forced() {
    // selfheal rolled api back from API2 to API1; CI then deployed API2 again.
    let scenario = Scenario::new(&[&[("api", API1)], &[("api", API2)]])
        .annotate(keys::BAD_IMAGES, &json!({"api": [API2]}).to_string());
    let message = refused_by(&scenario, &rollback(), &policy(), Guard::Oscillation);
    assert!(
        message.contains(API2) && message.contains("force"),
        "{message}"
    );
    let explicit = rollback_container("api");
    assert_eq!(
        refused(&scenario, &explicit, &policy()).0,
        Guard::Oscillation
    );
    let forced = request(json!({"action": "rollback", "force": true}));
    let plan = applied(scenario.decide(&forced, &policy()));
    assert_eq!(plan.outcome.changes, vec![change("api", API2, API1)]);
}

#[test]
fn malformed_bad_images_annotation_is_ignored() {
    let scenario = Scenario::new(&[&[("api", API1)], &[("api", API2)]])
        .annotate(keys::BAD_IMAGES, "{not json");
    let plan = rollback_plan(&scenario);
    assert_eq!(plan.outcome.changes[0].to, API1);
    assert_eq!(
        parsed(&plan.annotations[keys::BAD_IMAGES].clone().into()),
        json!({"api": [API2]})
    );
}

#[test]
fn rollback_after_a_restart_looks_past_the_restart_revision() {
    // bad deploy (rev 2), then restart (rev 3): same images plus restartedAt.
    let mut scenario = Scenario::new(&[&[("api", API1)], &[("api", API2)], &[("api", API2)]]);
    let restarted = json!({keys::RESTARTED_AT: "2026-11-26T19:00:00Z"});
    scenario.deployment["spec"]["template"]["metadata"]["annotations"] = restarted.clone();
    scenario.replica_sets[2]["spec"]["template"]["metadata"]["annotations"] = restarted;
    let plan = rollback_changing(&scenario, &[change("api", API2, API1)]);
    let after = scenario.apply(&plan);
    assert_eq!(
        after["spec"]["template"]["metadata"]["annotations"][keys::RESTARTED_AT],
        "2026-11-26T19:00:00Z",
        "the restart annotation stays: only the image changes"
    );
}

#[test]
fn template_ahead_of_its_replica_sets_compares_against_the_live_template() {
    // The Deployment already runs api 1.2.0 but the controller has not created
    // its ReplicaSet yet: revision 2 (1.1.0) is the one to return to.
    let mut scenario = Scenario::new(&[&[("api", API1)], &[("api", API2)]]);
    scenario.deployment["spec"]["template"]["spec"]["containers"][0]["image"] = json!(API3);
    scenario.deployment["metadata"]["generation"] = json!(3);
    rollback_changing(&scenario, &[change("api", API3, API2)]);
}

#[test]
fn replica_sets_of_another_deployment_are_not_history() {
    let mut scenario = Scenario::new(&[&[("api", API1)], &[("api", API2)]]);
    scenario.replica_sets[0]["metadata"]["ownerReferences"][0]["uid"] = json!("someone-else");
    assert_eq!(
        refused(&scenario, &rollback(), &policy()).0,
        Guard::NoHistory
    );
}

#[test]
fn rollback_of_deployment_paused_by_someone_else_is_refused_like_kubectl() {
    let scenario = Scenario::new(&[&[("api", API1)], &[("api", API2)]]).paused(false);
    let message = refused_by(&scenario, &rollback(), &policy(), Guard::Paused);
    assert!(
        message.starts_with("you cannot rollback a paused deployment"),
        "{message}"
    );
    assert!(message.contains("deployment/checkout"), "{message}");
}

#[test]
fn rollback_of_deployment_paused_by_selfheal_also_resumes_it() {
    let scenario = Scenario::new(&[&[("api", API1)], &[("api", API2)]]).paused(true);
    let plan = rollback_plan(&scenario);
    let ops = ops(&plan);
    assert_eq!(ops.as_array().unwrap()[3..5], unpause_ops());
    let after = scenario.apply(&plan);
    assert_unpaused(&after);
    assert_eq!(image(&after, 0), API1);
    assert!(
        plan.outcome.message.contains("resumed"),
        "{}",
        plan.outcome.message
    );
}

#[test]
fn deployment_without_annotations_gets_the_audit_map_added_whole() {
    let mut scenario = Scenario::new(&[&[("api", API1)], &[("api", API2)]]);
    scenario.deployment["metadata"]
        .as_object_mut()
        .unwrap()
        .remove("annotations");
    let plan = rollback_plan(&scenario);
    let ops = ops(&plan);
    let last = ops.as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["op"], "add");
    assert_eq!(last["path"], "/metadata/annotations");
    assert_eq!(
        last["value"]
            .as_object()
            .unwrap()
            .keys()
            .collect::<Vec<_>>(),
        vec![
            keys::CHANGE_CAUSE,
            keys::BAD_IMAGES,
            keys::HISTORY,
            keys::LAST_REMEDIATION
        ]
    );
    let after = scenario.apply(&plan);
    assert_eq!(after["metadata"]["annotations"], last["value"]);
}

// ---------------------------------------------------------------- common guards

/// [`now`] plus `seconds`.
fn seconds_after_now(seconds: i64) -> jiff::Timestamp {
    now()
        .checked_add(jiff::SignedDuration::from_secs(seconds))
        .unwrap()
}

/// Two revisions whose Deployment selfheal rolled back at [`now`].
fn rolled_back_just_now() -> Scenario {
    let record = last_remediation("rollback", json!("exec-1"), json!([])).to_string();
    Scenario::new(&[&[("api", API1)], &[("api", API2)]]).annotate(keys::LAST_REMEDIATION, &record)
}

#[test]
fn cooldown_refuses_the_same_action_inside_the_window() {
    let scenario = rolled_back_just_now();
    let five_minutes_later = seconds_after_now(300);
    let outcome = done(scenario.decide_at(&rollback(), &policy(), five_minutes_later));
    assert_eq!(outcome.guard, Some(Guard::Cooldown));
    assert!(
        outcome.message.contains("300s ago") && outcome.message.contains("600s"),
        "{}",
        outcome.message
    );
}

#[test]
fn cooldown_lets_the_action_through_outside_the_window() {
    let scenario = rolled_back_just_now();
    let later = seconds_after_now(600);
    applied(scenario.decide_at(&rollback(), &policy(), later));
}

#[test]
fn cooldown_is_overridden_by_force_and_ignores_other_actions() {
    let record = last_remediation("rollback", Value::Null, json!([])).to_string();
    let scenario = Scenario::new(&[&[("api", API1)], &[("api", API2)]])
        .annotate(keys::LAST_REMEDIATION, &record);
    applied(scenario.decide(
        &request(json!({"action": "rollback", "force": true})),
        &policy(),
    ));
    applied(scenario.decide(&request(json!({"action": "restart"})), &policy()));
}

/// Rollback, pause, resume, then a rollback two minutes later.
/// `last-remediation` then names the resume, but the rollback's own clock
/// (its record in `selfheal.dev/history`) still runs: refused, and the
/// rollback would otherwise walk one revision further back (API2 → API1).
#[test]
fn cooldown_is_per_action_across_a_pause_and_resume() {
    let at = seconds_after_now;
    let step = |scenario: &Scenario, action: &str, seconds: i64| -> Scenario {
        let req = request(
            json!({"action": action, "execution": format!("exec-{action}"),
                                 "reason": format!("{action} because")}),
        );
        let plan = applied(scenario.decide_at(&req, &policy(), at(seconds)));
        Scenario {
            deployment: scenario.apply(&plan),
            replica_sets: scenario.replica_sets.clone(),
            pods: scenario.pods.clone(),
        }
    };
    let start = Scenario::new(&[&[("api", API1)], &[("api", API2)], &[("api", API3)]]);
    let rolled = step(&start, "rollback", 0);
    let paused = step(&rolled, "pause", 30);
    let resumed = step(&paused, "resume", 60);
    assert_eq!(
        parsed(&annotation(&resumed.deployment, keys::LAST_REMEDIATION))["action"],
        "resume"
    );
    let history = parsed(&annotation(&resumed.deployment, keys::HISTORY));
    assert_eq!(
        history,
        json!([
            {"action": "rollback", "at": "2026-11-26T20:00:00Z", "execution": "exec-rollback",
             "reason": "rollback because", "changes": [{"container": "api", "from": API3, "to": API2}]},
            {"action": "pause", "at": "2026-11-26T20:00:30Z", "execution": "exec-pause",
             "reason": "pause because", "changes": []},
            {"action": "resume", "at": "2026-11-26T20:01:00Z", "execution": "exec-resume",
             "reason": "resume because", "changes": []}
        ])
    );

    let outcome = done(resumed.decide_at(&rollback(), &policy(), at(120)));
    assert_refused(&outcome, Guard::Cooldown, "had a rollback 120s ago");
    assert!(outcome.changes.is_empty());
    // The other actions keep their own clocks; past the window it acts again.
    let pause = done(resumed.decide_at(&request(json!({"action": "pause"})), &policy(), at(120)));
    assert_eq!(pause.guard, Some(Guard::Cooldown));
    assert!(
        pause.message.contains("had a pause 90s ago"),
        "{}",
        pause.message
    );
    applied(resumed.decide_at(&request(json!({"action": "restart"})), &policy(), at(120)));
    let plan = applied(resumed.decide_at(&rollback(), &policy(), at(600)));
    assert_eq!(plan.outcome.changes[0].to, API1);
}

#[test]
fn history_keeps_the_ten_most_recent_records_and_survives_a_bad_one() {
    let old = |i: usize| json!({"action": "restart", "at": format!("2026-11-25T10:{i:02}:00Z"), "execution": null, "changes": []});
    let mut records: Vec<Value> = (0..10).map(old).collect();
    records[9] = json!({"action": "teleport"});
    let scenario = Scenario::new(&[&[("api", API1)]])
        .annotate(keys::HISTORY, &Value::from(records).to_string());
    let plan = applied(scenario.decide(&request(json!({"action": "pause"})), &policy()));
    let history = parsed(&plan.annotations[keys::HISTORY].clone().into());
    let history = history.as_array().unwrap();
    assert_eq!(history.len(), keys::HISTORY_KEEP);
    assert_eq!(
        history[0]["at"], "2026-11-25T10:00:00Z",
        "the unreadable record is dropped, the nine others kept"
    );
    assert_eq!(history[8]["at"], "2026-11-25T10:08:00Z");
    assert_eq!(history[9]["action"], "pause");

    let full: Vec<Value> = (0..10).map(old).collect();
    let scenario =
        Scenario::new(&[&[("api", API1)]]).annotate(keys::HISTORY, &Value::from(full).to_string());
    let plan = applied(scenario.decide(&request(json!({"action": "pause"})), &policy()));
    let history = parsed(&plan.annotations[keys::HISTORY].clone().into());
    assert_eq!(history.as_array().unwrap().len(), keys::HISTORY_KEEP);
    assert_eq!(history[0]["at"], "2026-11-25T10:01:00Z", "the oldest goes");

    let garbage = Scenario::new(&[&[("api", API1)]]).annotate(keys::HISTORY, "[[[");
    let plan = applied(garbage.decide(&request(json!({"action": "pause"})), &policy()));
    assert_eq!(
        parsed(&plan.annotations[keys::HISTORY].clone().into())
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

/// "Already in the wanted state" is answered before the cooldown, and a dry
/// run inside the cooldown still previews.
#[test]
fn wanted_state_and_dry_run_come_before_the_cooldown() {
    let record = |action: &str| {
        json!([history_record(action, Value::Null, Value::Null, json!([]))]).to_string()
    };
    let paused = Scenario::new(&[&[("api", API1)]])
        .paused(true)
        .annotate(keys::HISTORY, &record("pause"));
    let outcome = done(paused.decide(&request(json!({"action": "pause"})), &policy()));
    assert_eq!(
        (outcome.status, outcome.guard),
        (OutcomeStatus::Skipped, None)
    );
    let running = Scenario::new(&[&[("api", API1)]]).annotate(keys::HISTORY, &record("resume"));
    let outcome = done(running.decide(&request(json!({"action": "resume"})), &policy()));
    assert_eq!(
        (outcome.status, outcome.guard),
        (OutcomeStatus::Skipped, None)
    );
    let undone = Scenario::new(&[&[("api", API1)], &[("api", API2)], &[("api", API2)]])
        .annotate(keys::HISTORY, &record("rollback"));
    assert_eq!(
        done(undone.decide(&undo_request(None), &policy())).status,
        OutcomeStatus::Skipped
    );

    let rolled = Scenario::new(&[&[("api", API1)], &[("api", API2)]])
        .annotate(keys::HISTORY, &record("rollback"));
    assert_eq!(refused(&rolled, &rollback(), &policy()).0, Guard::Cooldown);
    let dry = request(json!({"action": "rollback", "dryRun": true}));
    let plan = applied(rolled.decide(&dry, &policy()));
    assert!(plan.dry_run);
    assert_eq!(
        plan.outcome.changes[0].to, API1,
        "the preview shows the change"
    );
    assert_eq!(
        plan.outcome.message,
        format!(
            "rolled back deployment shop/checkout: container api from {API2} to {API1}; a real run would be refused by the cooldown (deployment shop/checkout had a rollback 0s ago, inside the 600s cooldown; set force to act anyway)"
        )
    );
    assert!(
        !plan.event_message.contains("cooldown"),
        "{}",
        plan.event_message
    );
    let policy_dry = Policy {
        dry_run: true,
        ..policy()
    };
    assert!(applied(rolled.decide(&rollback(), &policy_dry)).dry_run);
}

#[test]
fn change_cause_is_one_line_with_the_reason_clipped() {
    let scenario = Scenario::new(&[&[("api", API1)], &[("api", API2)]]);
    let long = format!("5xx above 5%\nsee runbook {}", "x".repeat(400));
    let plan = applied(scenario.decide(
        &request(json!({"action": "rollback", "reason": long})),
        &policy(),
    ));
    let cause = &plan.annotations[keys::CHANGE_CAUSE];
    assert!(
        cause.starts_with(&format!(
            "selfheal rollback: api {API2} -> {API1} (reason: 5xx above 5% see runbook xxx"
        )),
        "{cause}"
    );
    assert!(cause.ends_with("…)"), "{cause}");
    assert!(!cause.contains('\n'));
    let reason = parsed(&plan.annotations[keys::HISTORY].clone().into())[0]["reason"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(reason.chars().count(), crate::guards::HISTORY_REASON_CHARS);
    // Pause and resume roll out no revision: the running one keeps its cause.
    let paused = applied(scenario.decide(&request(json!({"action": "pause"})), &policy()));
    assert!(!paused.annotations.contains_key(keys::CHANGE_CAUSE));
}

#[test]
fn malformed_last_remediation_is_ignored_and_overwritten() {
    let scenario = Scenario::new(&[&[("api", API1)], &[("api", API2)]])
        .annotate(keys::LAST_REMEDIATION, "yesterday");
    let plan = rollback_plan(&scenario);
    assert_eq!(
        parsed(&plan.annotations[keys::LAST_REMEDIATION].clone().into())["at"],
        "2026-11-26T20:00:00Z"
    );
}

#[test]
fn missing_opt_in_label_is_refused_unless_policy_waives_it() {
    let scenario =
        Scenario::new(&[&[("api", API1)], &[("api", API2)]]).unlabel(keys::ENABLED_LABEL);
    let message = refused_by(&scenario, &rollback(), &policy(), Guard::OptIn);
    assert!(message.contains("selfheal.dev/enabled=true"), "{message}");
    let waived = Policy {
        require_opt_in: false,
        ..policy()
    };
    applied(scenario.decide(&rollback(), &waived));
    let wrong_value = scenario.label(keys::ENABLED_LABEL, "yes");
    assert_eq!(
        refused(&wrong_value, &rollback(), &policy()).0,
        Guard::OptIn
    );
}

#[test]
fn denied_and_unlisted_namespaces_are_refused_before_anything_else() {
    let mut scenario =
        Scenario::new(&[&[("api", API1)], &[("api", API2)]]).unlabel(keys::ENABLED_LABEL);
    scenario.deployment["metadata"]["namespace"] = json!("kube-system");
    let req = request(
        json!({"action": "rollback", "target": {"namespace": "kube-system", "deployment": "checkout"}}),
    );
    let (guard, message) = refused(&scenario, &req, &policy());
    assert_eq!(
        guard,
        Guard::Namespace,
        "namespace is checked before opt-in"
    );
    assert!(message.contains("kube-system/checkout"), "{message}");

    let scenario = Scenario::new(&[&[("api", API1)], &[("api", API2)]]);
    let only_payments = Policy {
        allowed_namespaces: Some(vec!["payments".into()]),
        ..policy()
    };
    assert_eq!(
        refused(&scenario, &rollback(), &only_payments).0,
        Guard::Namespace
    );
    let shop_allowed = Policy {
        allowed_namespaces: Some(vec!["shop".into()]),
        ..policy()
    };
    applied(scenario.decide(&rollback(), &shop_allowed));
}

#[test]
fn argo_cd_managed_deployment_is_refused_and_flagged() {
    let scenario = Scenario::new(&[&[("api", API1)], &[("api", API2)]]).annotate(
        "argocd.argoproj.io/tracking-id",
        "shop:apps/Deployment:shop/checkout",
    );
    let outcome = done(scenario.decide(&rollback(), &policy()));
    assert_eq!(outcome.guard, Some(Guard::Gitops));
    assert_eq!(outcome.gitops, Some(GitopsManager::ArgoCd));
    assert!(outcome.message.contains("Argo CD"), "{}", outcome.message);
}

#[test]
fn flux_managed_deployment_proceeds_when_allowed_and_still_says_so() {
    let scenario = Scenario::new(&[&[("api", API1)], &[("api", API2)]])
        .label("kustomize.toolkit.fluxcd.io/name", "apps");
    let allow = Policy {
        allow_gitops: true,
        ..policy()
    };
    let plan = applied(scenario.decide(&rollback(), &allow));
    assert_eq!(plan.outcome.gitops, Some(GitopsManager::Flux));
    // Flagged on other outcomes too, e.g. a refusal by a later guard.
    let outcome = done(
        scenario
            .clone()
            .unlabel(keys::ENABLED_LABEL)
            .decide(&rollback(), &allow),
    );
    assert_eq!(
        (outcome.guard, outcome.gitops),
        (Some(Guard::OptIn), Some(GitopsManager::Flux))
    );
}

#[test]
fn dry_run_comes_from_the_request_or_the_policy() {
    let scenario = Scenario::new(&[&[("api", API1)], &[("api", API2)]]);
    assert!(!rollback_plan(&scenario).dry_run);
    assert!(
        applied(scenario.decide(
            &request(json!({"action": "rollback", "dryRun": true})),
            &policy()
        ))
        .dry_run
    );
    let dry = Policy {
        dry_run: true,
        ..policy()
    };
    let plan = applied(scenario.decide(&rollback(), &dry));
    assert!(plan.dry_run);
    assert_eq!(
        plan.outcome.status,
        OutcomeStatus::Applied,
        "the adapter switches it after the server dry run"
    );
}

#[test]
fn outcome_carries_execution_resolved_target_and_event_reason() {
    let scenario = Scenario::new(&[&[("api", API1)], &[("api", API2)]]);
    let req = request(json!({
        "action": "rollback", "execution": "exec-42", "reason": "5xx above 5%",
        "target": {"cluster": "prod", "namespace": "shop", "pod": "checkout-hash2-abcde"}
    }));
    let plan = applied(scenario.decide(&req, &policy()));
    let o = &plan.outcome;
    assert_eq!(o.execution.as_deref(), Some("exec-42"));
    assert_eq!(o.target.deployment.as_deref(), Some("checkout"));
    assert_eq!(o.target.pod.as_deref(), Some("checkout-hash2-abcde"));
    assert_eq!(o.target.cluster.as_deref(), Some("prod"));
    assert!(
        plan.event_message.ends_with("(reason: 5xx above 5%)"),
        "{}",
        plan.event_message
    );
    assert_eq!(
        parsed(&plan.annotations[keys::LAST_REMEDIATION].clone().into())["execution"],
        "exec-42"
    );
}

/// An approved action names its approver in the audit Event and the
/// history record, cleaned of control characters and capped.
#[test]
fn an_approved_action_names_the_approver_in_event_and_history() {
    let scenario = Scenario::new(&[&[("api", API1)], &[("api", API2)]]);
    let agent = format!("curl/8.5.0\n{}", "x".repeat(400));
    let req = request(json!({
        "action": "rollback", "execution": "exec-42", "reason": "5xx above 5%",
        "target": {"cluster": "prod", "namespace": "shop", "deployment": "checkout"},
        "approvedBy": {"sourceIp": "203.0.113.7", "userAgent": agent}
    }));
    let plan = applied(scenario.decide(&req, &policy()));
    let cleaned = format!("curl/8.5.0{}", "x".repeat(246));
    assert!(
        plan.event_message.ends_with(&format!(
            "(reason: 5xx above 5%) (approved by 203.0.113.7 ({cleaned}))"
        )),
        "{}",
        plan.event_message
    );
    let history = parsed(&plan.annotations[keys::HISTORY].clone().into());
    assert_eq!(
        history[0]["approvedBy"],
        json!({"sourceIp": "203.0.113.7", "userAgent": cleaned})
    );

    // Without an approval: no approver in either.
    let req = request(json!({
        "action": "rollback", "execution": "exec-43",
        "target": {"cluster": "prod", "namespace": "shop", "deployment": "checkout"}
    }));
    let plan = applied(scenario.decide(&req, &policy()));
    assert!(
        !plan.event_message.contains("approved by"),
        "{}",
        plan.event_message
    );
    let history = parsed(&plan.annotations[keys::HISTORY].clone().into());
    assert!(history[0].get("approvedBy").is_none(), "{history}");
}

// ---------------------------------------------------------------- template scope

fn undo_request(to_revision: Option<i64>) -> crate::RemediationRequest {
    let mut r = json!({"action": "rollback", "scope": "template"});
    if let Some(n) = to_revision {
        r["toRevision"] = json!(n);
    }
    request(r)
}

#[test]
fn template_scope_matches_kubectl_undo_on_the_recorded_cluster() {
    let data = fixture("checkout-undo.json");
    let scenario = Scenario::from_fixture(&data["afterRestart"]).label(keys::ENABLED_LABEL, "true");
    let plan = applied(scenario.decide(&undo_request(None), &policy()));
    let ops = ops(&plan);
    let kubectl = &data["kubectlPatchUndo"];
    assert_eq!(guard_ops(&plan)[0]["path"], "/metadata/generation");
    assert_eq!(ops[0]["op"], "replace");
    assert_eq!(ops[0]["path"], "/spec/template");
    let ours: k8s_openapi::api::core::v1::PodTemplateSpec =
        serde_json::from_value(ops[0]["value"].clone()).unwrap();
    let theirs: k8s_openapi::api::core::v1::PodTemplateSpec =
        serde_json::from_value(kubectl[0]["value"].clone()).unwrap();
    assert_eq!(ours, theirs, "same template as kubectl sent");
    assert_eq!(ops[1]["op"], "replace");
    assert_eq!(ops[1]["path"], "/metadata/annotations");
    let mut annotations = ops[1]["value"].as_object().unwrap().clone();
    assert!(annotations.remove(keys::LAST_REMEDIATION).is_some());
    assert!(annotations.remove(keys::HISTORY).is_some());
    assert_eq!(
        annotations.remove(keys::CHANGE_CAUSE),
        Some(json!("selfheal rollback to revision 5"))
    );
    assert!(
        annotations.remove(keys::BAD_IMAGES).is_none(),
        "no image changed: restart → revision 5 is the same images"
    );
    assert_eq!(
        Value::Object(annotations),
        kubectl[1]["value"],
        "kubectl's annotation rule"
    );
    assert_eq!(ops.as_array().unwrap().len(), 2);
    assert_eq!(
        plan.outcome.revision,
        Some(RevisionInfo {
            before: Some(6),
            to: Some(5),
            after: None
        })
    );
    assert!(plan.outcome.changes.is_empty());

    // And the object afterwards has the template kubectl's undo produced.
    let after = scenario.apply(&plan);
    let expected: k8s_openapi::api::core::v1::PodTemplateSpec =
        serde_json::from_value(data["afterUndo"]["deployment"]["spec"]["template"].clone())
            .unwrap();
    let got: k8s_openapi::api::core::v1::PodTemplateSpec =
        serde_json::from_value(after["spec"]["template"].clone()).unwrap();
    assert_eq!(got, expected);
}

#[test]
fn template_scope_to_revision_matches_kubectl_and_drops_annotations_the_old_rs_lacks() {
    let data = fixture("checkout-undo.json");
    let scenario = Scenario::from_fixture(&data["afterUndo"]).label(keys::ENABLED_LABEL, "true");
    let plan = applied(scenario.decide(&undo_request(Some(1)), &policy()));
    let ops = ops(&plan);
    let kubectl = &data["kubectlPatchUndoToRevision1"];
    let ours: k8s_openapi::api::core::v1::PodTemplateSpec =
        serde_json::from_value(ops[0]["value"].clone()).unwrap();
    let theirs: k8s_openapi::api::core::v1::PodTemplateSpec =
        serde_json::from_value(kubectl[0]["value"].clone()).unwrap();
    assert_eq!(ours, theirs);
    let mut annotations = ops[1]["value"].as_object().unwrap().clone();
    annotations.remove(keys::LAST_REMEDIATION);
    annotations.remove(keys::HISTORY);
    annotations.remove(keys::BAD_IMAGES);
    assert_eq!(
        annotations.remove(keys::CHANGE_CAUSE),
        Some(json!(format!(
            "selfheal rollback to revision 1: api {API2} -> {API1}, envoy {ENVOY2} -> {ENVOY1}"
        )))
    );
    assert_eq!(
        Value::Object(annotations),
        kubectl[1]["value"],
        "fixtures.example/touch is gone, as with kubectl"
    );
    assert_eq!(
        plan.outcome.changes,
        vec![change("api", API2, API1), change("envoy", ENVOY2, ENVOY1)]
    );
    assert_eq!(plan.outcome.revision.unwrap().to, Some(1));
    assert_eq!(
        parsed(&plan.annotations[keys::BAD_IMAGES].clone().into()),
        json!({"api": [API2], "envoy": [ENVOY2]})
    );
    let after = scenario.apply(&plan);
    assert_eq!(
        after["spec"]["template"],
        serde_json::to_value(&theirs).unwrap(),
        "pod-template-hash label removed, template restored"
    );
}

#[test]
fn template_scope_picks_the_second_highest_revision_and_copies_annotations_by_kubectl_rules() {
    let mut scenario = Scenario::new(&[&[("api", API1)], &[("api", API2)], &[("api", API3)]])
        .annotate(keys::LAST_APPLIED, "{\"deployment\":\"now\"}")
        .annotate("team", "checkout-now")
        .annotate(keys::BAD_IMAGES, &json!({"api": ["old:bad"]}).to_string());
    let rs2 = &mut scenario.replica_sets[1]["metadata"]["annotations"];
    rs2[keys::LAST_APPLIED] = json!("{\"deployment\":\"then\"}");
    rs2["team"] = json!("checkout-then");
    rs2["kubernetes.io/change-cause"] = json!("deploy 1.1.0");
    rs2[keys::BAD_IMAGES] = json!("{}");
    rs2[keys::PAUSED_BY] = json!("selfheal");
    let plan = applied(scenario.decide(&undo_request(None), &policy()));
    let annotations = ops(&plan)[1]["value"].clone();
    assert_eq!(plan.outcome.revision.unwrap().to, Some(2));
    assert_eq!(
        annotations[keys::LAST_APPLIED],
        "{\"deployment\":\"now\"}",
        "skip-list: Deployment's value"
    );
    assert_eq!(
        annotations[keys::REVISION],
        "3",
        "skip-list: Deployment's value"
    );
    assert!(
        annotations.get(keys::DESIRED_REPLICAS).is_none(),
        "skip-list: not copied from the RS"
    );
    assert_eq!(
        annotations["team"], "checkout-then",
        "others: the ReplicaSet's value"
    );
    assert_eq!(
        annotations[keys::CHANGE_CAUSE],
        format!("selfheal rollback to revision 2: api {API3} -> {API2}"),
        "selfheal's own sentence, not the ReplicaSet's (`kubectl rollout history` shows what selfheal did)"
    );
    assert!(
        annotations.get(keys::PAUSED_BY).is_none(),
        "a stale paused-by is not copied"
    );
    assert_eq!(
        parsed(&annotations[keys::BAD_IMAGES]),
        json!({"api": ["old:bad", API3]})
    );
}

#[test]
fn template_scope_skips_when_the_revision_already_matches() {
    let scenario = Scenario::new(&[&[("api", API1)], &[("api", API2)], &[("api", API2)]]);
    let outcome = done(scenario.decide(&undo_request(None), &policy()));
    assert_eq!(outcome.status, OutcomeStatus::Skipped);
    assert_eq!(
        outcome.message,
        "deployment shop/checkout skipped rollback (current template already matches revision 2)"
    );
}

#[test]
fn template_scope_missing_revision_and_missing_history_are_refused() {
    let scenario = Scenario::new(&[&[("api", API1)], &[("api", API2)]]);
    let message = refused_by(
        &scenario,
        &undo_request(Some(7)),
        &policy(),
        Guard::RevisionNotFound,
    );
    assert!(
        message.starts_with("unable to find specified revision 7 in history"),
        "{message}"
    );
    assert_eq!(
        refused(&scenario, &undo_request(Some(-1)), &policy()).0,
        Guard::RevisionNotFound
    );

    let single = Scenario::new(&[&[("api", API1)]]);
    let message = refused_by(&single, &undo_request(None), &policy(), Guard::NoHistory);
    assert_eq!(
        message,
        "no rollout history found for deployment \"checkout\""
    );
}

#[test]
fn template_scope_on_paused_deployment_follows_the_pause_owner() {
    let scenario = Scenario::new(&[&[("api", API1)], &[("api", API2)]]);
    refused_by(
        &scenario.clone().paused(false),
        &undo_request(None),
        &policy(),
        Guard::Paused,
    );
    let by_us = scenario.paused(true);
    let plan = applied(by_us.decide(&undo_request(None), &policy()));
    let after = by_us.apply(&plan);
    assert_unpaused(&after);
    assert_eq!(image(&after, 0), API1);
}

// ---------------------------------------------------------------- pause / resume / restart

#[test]
fn manual_pause_sets_paused_and_marks_it_ours() {
    let scenario = Scenario::new(&[&[("api", API1)]]);
    let plan = applied(scenario.decide(&request(json!({"action": "pause"})), &policy()));
    let ops = ops(&plan);
    assert_eq!(
        ops[0],
        json!({"op": "add", "path": "/spec/paused", "value": true})
    );
    assert_eq!(
        ops[1],
        json!({"op": "add", "path": "/metadata/annotations/selfheal.dev~1history", "value": plan.annotations[keys::HISTORY]})
    );
    assert_eq!(
        ops[2],
        json!({"op": "add", "path": "/metadata/annotations/selfheal.dev~1last-remediation", "value": plan.annotations[keys::LAST_REMEDIATION]})
    );
    assert_eq!(
        ops[3],
        json!({"op": "add", "path": "/metadata/annotations/selfheal.dev~1paused-by", "value": "selfheal"})
    );
    assert_eq!(
        ops.as_array().unwrap().len(),
        4,
        "no change-cause: no new revision"
    );
    let after = scenario.apply(&plan);
    let mut expected = scenario.deployment.clone();
    expected["spec"]["paused"] = json!(true);
    expect_annotations(&mut expected, &plan);
    assert_eq!(after, expected);
    assert_eq!(
        parsed(&annotation(&after, keys::LAST_REMEDIATION)),
        last_remediation("pause", Value::Null, json!([]))
    );
    assert_eq!(
        parsed(&annotation(&after, keys::HISTORY)),
        json!([history_record("pause", Value::Null, Value::Null, json!([]))])
    );
}

#[test]
fn pause_of_a_paused_deployment_is_skipped() {
    let scenario = Scenario::new(&[&[("api", API1)]]).paused(false);
    let outcome = done(scenario.decide(&request(json!({"action": "pause"})), &policy()));
    assert_eq!(outcome.status, OutcomeStatus::Skipped);
    assert_eq!(
        outcome.message,
        "deployment shop/checkout is already paused"
    );
}

fn alarm_pause(score: f64) -> crate::RemediationRequest {
    request(
        json!({"action": "pause", "alarm": {"source": "cloudwatch", "name": "checkout-5xx", "impactScore": score}}),
    )
}

#[test]
fn alarm_pause_needs_a_rollout_in_progress() {
    let scenario = Scenario::new(&[&[("api", API1)]]);
    let message = refused_by(
        &scenario,
        &alarm_pause(3.0),
        &policy(),
        Guard::NoRolloutInProgress,
    );
    assert!(message.contains("successfully rolled out"), "{message}");
}

#[test]
fn alarm_pause_during_a_rollout_applies_at_or_above_the_threshold_only() {
    let mut scenario = Scenario::new(&[&[("api", API1)]]);
    scenario.deployment["status"]["updatedReplicas"] = json!(1);
    assert_eq!(
        refused(&scenario, &alarm_pause(0.5), &policy()).0,
        Guard::ImpactBelowThreshold
    );
    // NaN cannot come through JSON (it would read as null = manual); set it directly.
    let mut nan = alarm_pause(2.0);
    nan.alarm.as_mut().unwrap().impact_score = Some(f64::NAN);
    assert_eq!(
        refused(&scenario, &nan, &policy()).0,
        Guard::ImpactBelowThreshold
    );
    let plan = applied(scenario.decide(&alarm_pause(1.0), &policy()));
    assert!(
        plan.outcome.message.contains("impact score 1"),
        "{}",
        plan.outcome.message
    );
    assert_eq!(scenario.apply(&plan)["spec"]["paused"], true);
}

#[test]
fn resume_lifts_our_own_pause() {
    let scenario = Scenario::new(&[&[("api", API1)]]).paused(true);
    let plan = applied(scenario.decide(&request(json!({"action": "resume"})), &policy()));
    let ops = ops(&plan);
    assert_eq!(ops.as_array().unwrap()[0..2], unpause_ops());
    let after = scenario.apply(&plan);
    let mut expected = scenario.deployment.clone();
    expected["spec"]["paused"] = json!(false);
    expected["metadata"]["annotations"]
        .as_object_mut()
        .unwrap()
        .remove(keys::PAUSED_BY);
    expect_annotations(&mut expected, &plan);
    assert_eq!(after, expected);
}

#[test]
fn resume_of_someone_elses_pause_needs_force() {
    let scenario = Scenario::new(&[&[("api", API1)]]).paused(false);
    let message = refused_by(
        &scenario,
        &request(json!({"action": "resume"})),
        &policy(),
        Guard::Paused,
    );
    assert!(message.contains("force"), "{message}");
    let plan = applied(scenario.decide(
        &request(json!({"action": "resume", "force": true})),
        &policy(),
    ));
    let ops = ops(&plan);
    assert!(
        !ops.as_array()
            .unwrap()
            .iter()
            .any(|op| op["op"] == "remove"),
        "no paused-by to remove (a remove of a missing key would fail the patch)"
    );
    assert_eq!(scenario.apply(&plan)["spec"]["paused"], false);
}

#[test]
fn resume_of_a_running_deployment_is_skipped() {
    let scenario = Scenario::new(&[&[("api", API1)]]);
    let outcome = done(scenario.decide(&request(json!({"action": "resume"})), &policy()));
    assert_eq!(
        (outcome.status, outcome.message.as_str()),
        (
            OutcomeStatus::Skipped,
            "deployment shop/checkout is not paused"
        )
    );
}

#[test]
fn restart_stamps_restarted_at_creating_the_template_annotations() {
    let scenario = Scenario::new(&[&[("api", API1)]]);
    let plan = applied(scenario.decide(&request(json!({"action": "restart"})), &policy()));
    assert_eq!(
        ops(&plan)[0],
        json!({"op": "add", "path": "/spec/template/metadata/annotations", "value": {keys::RESTARTED_AT: "2026-11-26T20:00:00Z"}})
    );
    let after = scenario.apply(&plan);
    let mut expected = scenario.deployment.clone();
    expected["spec"]["template"]["metadata"]["annotations"] =
        json!({keys::RESTARTED_AT: "2026-11-26T20:00:00Z"});
    expect_annotations(&mut expected, &plan);
    assert_eq!(after, expected);
    assert_eq!(annotation(&after, keys::CHANGE_CAUSE), "selfheal restart");
    assert_eq!(
        plan.outcome.revision,
        Some(RevisionInfo {
            before: Some(1),
            to: None,
            after: None
        })
    );
}

#[test]
fn restart_overwrites_an_earlier_restarted_at_key_only() {
    let mut scenario = Scenario::new(&[&[("api", API1)]]);
    scenario.deployment["spec"]["template"]["metadata"]["annotations"] =
        json!({keys::RESTARTED_AT: "2026-01-01T00:00:00Z", "prometheus.io/scrape": "true"});
    let later = "2026-11-26T20:00:00.75Z".parse().unwrap();
    let plan =
        applied(scenario.decide_at(&request(json!({"action": "restart"})), &policy(), later));
    assert_eq!(
        ops(&plan)[0],
        json!({"op": "add", "path": "/spec/template/metadata/annotations/kubectl.kubernetes.io~1restartedAt", "value": "2026-11-26T20:00:00Z"})
    );
    let after = scenario.apply(&plan);
    assert_eq!(
        after["spec"]["template"]["metadata"]["annotations"],
        json!({keys::RESTARTED_AT: "2026-11-26T20:00:00Z", "prometheus.io/scrape": "true"})
    );
}

#[test]
fn restart_of_a_paused_deployment_is_refused_whoever_paused_it() {
    for by_selfheal in [false, true] {
        let scenario = Scenario::new(&[&[("api", API1)]]).paused(by_selfheal);
        let (guard, message) =
            refused(&scenario, &request(json!({"action": "restart"})), &policy());
        assert_eq!(guard, Guard::Paused);
        assert_eq!(
            message,
            "deployments.apps \"checkout\" can't restart paused deployment (run rollout resume first)"
        );
    }
}

#[test]
fn recorded_paused_checkout_is_refused_restart_and_resume() {
    let scenario =
        Scenario::from_fixture(&fixture("checkout-paused.json")).label(keys::ENABLED_LABEL, "true");
    assert_eq!(
        refused(&scenario, &request(json!({"action": "restart"})), &policy()).0,
        Guard::Paused
    );
    assert_eq!(
        refused(&scenario, &request(json!({"action": "resume"})), &policy()).0,
        Guard::Paused
    );
    assert_eq!(refused(&scenario, &rollback(), &policy()).0, Guard::Paused);
}

// ---------------------------------------------------------------- bad input

fn decide_raw(
    deployment: Value,
    request: &crate::RemediationRequest,
) -> Result<crate::Decision, Error> {
    let deployment: k8s_openapi::api::apps::v1::Deployment =
        serde_json::from_value(deployment).unwrap();
    let request = crate::ValidRequest::new(request.clone()).unwrap();
    decide(PlanInput {
        request: &request,
        workload: (&deployment).into(),
        controller_revisions: &[],
        replica_sets: &[],
        pods: &[],
        policy: &policy(),
        now: now(),
    })
}

#[test]
fn objects_missing_name_spec_or_pod_spec_are_invalid_not_panics() {
    let base = Scenario::new(&[&[("api", API1)]]).deployment;
    let pause = request(json!({"action": "pause"}));

    let mut no_name = base.clone();
    no_name["metadata"].as_object_mut().unwrap().remove("name");
    assert!(matches!(
        decide_raw(no_name, &pause),
        Err(Error::InvalidObject {
            kind: "Deployment",
            ..
        })
    ));

    let mut no_spec = base.clone();
    no_spec.as_object_mut().unwrap().remove("spec");
    let err = decide_raw(no_spec, &pause).unwrap_err();
    assert!(err.to_string().contains("spec is missing"), "{err}");

    let mut no_pod_spec = base.clone();
    no_pod_spec["spec"]["template"]
        .as_object_mut()
        .unwrap()
        .remove("spec");
    let err = decide_raw(no_pod_spec, &pause).unwrap_err();
    assert!(err.to_string().contains("spec.template.spec"), "{err}");

    let mut no_generation = base.clone();
    no_generation["metadata"]
        .as_object_mut()
        .unwrap()
        .remove("generation");
    let err = decide_raw(no_generation, &pause).unwrap_err();
    assert!(err.to_string().contains("metadata.generation"), "{err}");

    let mut no_image = base;
    no_image["spec"]["template"]["spec"]["containers"][0]
        .as_object_mut()
        .unwrap()
        .remove("image");
    let err = decide_raw(no_image, &rollback()).unwrap_err();
    assert!(err.to_string().contains("has no image"), "{err}");
}

#[test]
fn request_for_another_deployment_is_an_error() {
    let base = Scenario::new(&[&[("api", API1)]]).deployment;
    let other =
        request(json!({"action": "pause", "target": {"namespace": "shop", "deployment": "cart"}}));
    assert!(matches!(
        decide_raw(base, &other),
        Err(Error::InvalidRequest(_))
    ));
}

#[test]
fn cooldown_window_of_zero_disables_the_guard() {
    let record = last_remediation("pause", Value::Null, json!([])).to_string();
    let scenario = Scenario::new(&[&[("api", API1)]]).annotate(keys::LAST_REMEDIATION, &record);
    let none = Policy {
        cooldown: Duration::ZERO,
        ..policy()
    };
    applied(scenario.decide(&request(json!({"action": "pause"})), &none));
    assert_eq!(
        refused(&scenario, &request(json!({"action": "pause"})), &policy()).0,
        Guard::Cooldown
    );
}
