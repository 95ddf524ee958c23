//! remediate-fleet's target cap (`${FleetMaxTargets}`), executed: the REAL
//! `statemachines/remediate-fleet.asl.json` (and its child
//! remediate-deployment) run by the ASL interpreter of statemachine_e2e.rs
//! (tests/asl/runner.mjs, npm aws-local-stepfunctions), only the
//! placeholders substituted.
//!
//! The Lambda functions are an in-test stand-in at the runner's emulator URL
//! that records every invocation and answers with outputs shaped like the
//! real handlers' (outcome, rollout status, deploymentHealth, fleet summary).
//! That is enough here: the property under test is which states run and
//! whether anything is invoked at all, not what the handlers do (that is
//! statemachine_e2e.rs). Above the cap the execution must fail with
//! `TooManyTargets` before the Map, invoking nothing; at the cap every
//! target gets its child execution, and the fleet output (the largest state
//! payload) is measured against Step Functions' 256 KiB limit.
//!
//! The same runner checks the audit id: whatever `execution` an input
//! carries, remediate-deployment hands the handlers its own execution id,
//! the one recorded in the Deployment's audit annotation. And who approved:
//! after an approval, the handlers' requests carry the approver as
//! `approvedBy`.
//!
//! And the routes of remediate-deployment that end an execution, with
//! stand-ins scripted per test: an unknown action fails before any approval
//! is asked for; a failed execution, and a failed fleet target, is named by
//! the handler's `errorType` and message; a routine refusal succeeds.
//!
//! Needs node and tests/asl/node_modules (scripts/deps/56-asl-runner.sh);
//! skipped with a message without them unless `SELFHEAL_REQUIRE_TOOLS` is set.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use selfheal_tests::asl::{Reply, Runner, find_node, serve_functions};
use selfheal_tests::tools::{http_request, tool_or_skip};
use serde_json::{Value, json};

const TEST: &str = "statemachine_limits";
/// Step Functions' limit on a state's input or output.
const STATE_PAYLOAD_LIMIT: usize = 256 * 1024;

// ------------------------------------------------------------ the functions --

/// Every Lambda invocation the runner made: (function name, payload).
type Calls = Arc<Mutex<Vec<(String, Value)>>>;

/// Answers each invocation from (function name, payload).
type Answer = Arc<dyn Fn(&str, &Value) -> Reply + Send + Sync>;

/// Serves the runner's `POST /2015-03-31/functions/<name>/invocations`
/// with [`answer`]: every handler succeeds.
async fn fake_functions() -> (String, Calls) {
    fake_functions_answering(Arc::new(|function: &str, payload: &Value| {
        Ok(answer(function, payload))
    }))
    .await
}

/// The same with scripted answers, every invocation recorded.
async fn fake_functions_answering(answer: Answer) -> (String, Calls) {
    let calls: Calls = Arc::default();
    let recorded = calls.clone();
    let url = serve_functions(Arc::new(move |name: String, payload: Value| {
        let reply = answer(&name, &payload);
        recorded.lock().unwrap().push((name, payload));
        Box::pin(async move { reply })
    }))
    .await;
    (url, calls)
}

/// What each function returns, shaped like the real one's output for a
/// rollback that worked and a rollout that finished.
fn answer(function: &str, payload: &Value) -> Value {
    let changes = json!([{
        "container": "api",
        "from": "registry.example/shop/api:1.2.0",
        "to": "registry.example/shop/api:1.1.0"
    }]);
    let done = json!({
        "state": "done",
        "message": format!("deployment \"{}\" successfully rolled out", payload["target"]["deployment"].as_str().unwrap_or("-"))
    });
    let step = |name: &str, attempts: Option<u32>| {
        let mut step = json!({"name": name, "startedAt": "2026-11-26T19:12:00.000Z", "finishedAt": "2026-11-26T19:12:01.250Z", "durationMs": 1250});
        if let Some(n) = attempts {
            step["attempts"] = json!(n);
        }
        step
    };
    match function {
        "rollback" => {
            let target = &payload["target"];
            // A dry run (the approval's preview) answers as the handler does.
            let dry_run = payload["dryRun"] == true;
            json!({
                "status": if dry_run { "dryRun" } else { "applied" },
                "action": "rollback",
                "message": format!(
                    "rolled back deployment {}/{}: container api from registry.example/shop/api:1.2.0 to registry.example/shop/api:1.1.0",
                    target["namespace"].as_str().unwrap_or("-"),
                    target["deployment"].as_str().unwrap_or("-")
                ),
                "target": target,
                "changes": changes,
                "revision": {"before": 4, "to": 3},
                "execution": payload["execution"],
            })
        }
        "verify" => done,
        "notify" if payload["event"] == "completed" => json!({
            "deploymentHealth": {
                "lastRolloutStatus": done,
                "changes": changes,
                "steps": [step("rollback", None), step("verify", Some(1))],
                "totalDurationMs": 3120,
                "notified": true
            }
        }),
        "notify" if payload["event"] == "fleetCompleted" => {
            let total = payload["results"].as_array().map_or(0, Vec::len);
            json!({"summary": {"total": total, "succeeded": total, "failed": 0, "byStatus": {"applied": total}, "failures": {}, "wallTimeMs": 4200}})
        }
        _ => json!({}),
    }
}

// ----------------------------------------------------------------- runner --

/// The shared runner, its log named after this test file.
fn start_runner(node: &Path, functions_url: &str) -> Runner {
    Runner::start(node, functions_url, TEST)
}

/// One remediate-fleet execution to its end, with extra substitutions.
async fn run_fleet(runner: &Runner, name: &str, input: &Value, substitutions: &Value) -> Value {
    runner
        .run_with("remediate-fleet", name, input, substitutions)
        .await
}

const NAMESPACES: [&str; 3] = ["fleet-a", "fleet-b", "fleet-c"];

/// `{request, targets}` with `n` distinct Deployments over three namespaces.
fn fleet_input(n: usize) -> Value {
    let targets: Vec<Value> = (0..n)
        .map(|i| json!({"cluster": "limits", "namespace": NAMESPACES[i % 3], "deployment": format!("app-{i:03}"), "container": "api"}))
        .collect();
    json!({"request": {"action": "rollback", "reason": format!("{TEST}: {n} targets")}, "targets": targets})
}

// ------------------------------------------------------------------ tests --

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fleet_target_cap_refuses_before_the_map_and_admits_the_cap() {
    let Some(node) = tool_or_skip(TEST, find_node()) else {
        return;
    };
    let (functions_url, calls) = fake_functions().await;
    let runner = start_runner(&node, &functions_url);
    let cap_default: usize = 100; // template.yaml FleetMaxTargets Default

    // Above the cap (template default and a lowered value): the execution
    // fails with TooManyTargets at CheckInput, no Map, no child, no invoke.
    for (name, n, substitutions, cap) in [
        ("over-default-cap", cap_default + 1, json!({}), cap_default),
        ("over-lowered-cap", 4, json!({"FleetMaxTargets": "3"}), 3),
    ] {
        let result = run_fleet(&runner, name, &fleet_input(n), &substitutions).await;
        assert_eq!(result["status"], "FAILED", "{name}: {result}");
        assert_eq!(result["error"], "TooManyTargets", "{name}: {result}");
        assert_eq!(
            result["cause"],
            format!(
                "A fleet request may list at most {cap} targets (template parameter FleetMaxTargets); \
                 nothing was started. Split the targets over several executions."
            ),
            "{name}"
        );
        assert_eq!(
            result["states"],
            json!(["Initialize", "Normalize", "CheckInput", "TooManyTargets"]),
            "{name}"
        );
        assert_eq!(result["children"], json!([]), "{name}");
        assert_eq!(
            calls.lock().unwrap().len(),
            0,
            "{name}: a function was invoked"
        );
    }

    // At the lowered cap: every target runs (one child each), the rest of the
    // fleet is as usual.
    let result = run_fleet(
        &runner,
        "at-lowered-cap",
        &fleet_input(3),
        &json!({"FleetMaxTargets": "3"}),
    )
    .await;
    assert_eq!(result["status"], "SUCCEEDED", "{result}");
    assert_eq!(result["children"].as_array().unwrap().len(), 3);
    assert_eq!(result["output"]["summary"]["total"], 3);
    let rollbacks = |calls: &Calls| {
        let mut targets: Vec<String> = calls
            .lock()
            .unwrap()
            .iter()
            .filter(|(f, _)| f == "rollback")
            .map(|(_, p)| p["target"]["deployment"].as_str().unwrap().to_owned())
            .collect();
        targets.sort();
        targets
    };
    assert_eq!(rollbacks(&calls), ["app-000", "app-001", "app-002"]);

    // At the template's default cap: all 100 run, and the fleet's output (the
    // Map results, the largest payload of the execution) fits 256 KiB.
    calls.lock().unwrap().clear();
    let result = run_fleet(
        &runner,
        "at-default-cap",
        &fleet_input(cap_default),
        &json!({"FleetMaxConcurrency": "40", "VerifyIntervalSeconds": "0"}),
    )
    .await;
    assert_eq!(result["status"], "SUCCEEDED", "{}", result["error"]);
    let results = result["output"]["results"].as_array().unwrap();
    assert_eq!(results.len(), cap_default);
    assert!(results.iter().all(|r| r["status"] == "succeeded"));
    assert_eq!(rollbacks(&calls).len(), cap_default);
    let size = serde_json::to_vec(&result["output"]).unwrap().len();
    eprintln!(
        "{TEST}: fleet output with {cap_default} succeeded targets: {size} bytes ({} per target; limit {STATE_PAYLOAD_LIMIT})",
        size / cap_default
    );
    assert!(size < STATE_PAYLOAD_LIMIT, "{size} bytes");
}

/// An input's `execution` must not override `$$.Execution.Id`: it would forge
/// the audit annotation the handlers write. The audit overlay is merged after
/// the input: a forged `execution`, given directly or through a fleet
/// request, reaches no handler; a console execution's `force`, `scope` and
/// `toRevision` (IAM-authenticated) still do.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_input_cannot_forge_the_recorded_execution_id() {
    let Some(node) = tool_or_skip(TEST, find_node()) else {
        return;
    };
    let (functions_url, calls) = fake_functions().await;
    let runner = start_runner(&node, &functions_url);
    let quick = json!({"VerifyIntervalSeconds": "0"});
    let rollback_payloads = |calls: &Calls| -> Vec<Value> {
        calls
            .lock()
            .unwrap()
            .iter()
            .filter(|(f, _)| f == "rollback")
            .map(|(_, p)| p.clone())
            .collect()
    };

    let input = json!({
        "action": "rollback",
        "target": {"cluster": "limits", "namespace": "audit", "deployment": "api"},
        "reason": "console: back to revision 3",
        "force": true,
        "scope": "template",
        "toRevision": 3,
        "execution": "forged"
    });
    let result = runner
        .run_with("remediate-deployment", "forged-execution", &input, &quick)
        .await;
    assert_eq!(result["status"], "SUCCEEDED", "{result}");
    let real = result["executionArn"].as_str().unwrap().to_owned();
    assert!(
        real.ends_with(":execution:remediate-deployment:forged-execution"),
        "{real}"
    );
    let payloads = rollback_payloads(&calls);
    assert_eq!(payloads.len(), 1, "{payloads:?}");
    let request = &payloads[0];
    assert_eq!(request["execution"], real.as_str(), "{request}");
    assert_eq!(request["force"], true, "{request}");
    assert_eq!(request["scope"], "template", "{request}");
    assert_eq!(request["toRevision"], 3, "{request}");
    // What the handler recorded (the fake echoes it) is the real id too.
    assert_eq!(
        result["output"]["execution"],
        real.as_str(),
        "{}",
        result["output"]
    );

    // Through a fleet: each child records its own id, not the request's.
    calls.lock().unwrap().clear();
    let mut fleet = fleet_input(2);
    fleet["request"]["execution"] = json!("forged");
    let result = run_fleet(&runner, "forged-fleet", &fleet, &quick).await;
    assert_eq!(result["status"], "SUCCEEDED", "{result}");
    let mut children: Vec<String> = result["children"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["executionArn"].as_str().unwrap().to_owned())
        .collect();
    let mut recorded: Vec<String> = rollback_payloads(&calls)
        .iter()
        .map(|p| p["execution"].as_str().unwrap().to_owned())
        .collect();
    children.sort();
    recorded.sort();
    assert_eq!(children.len(), 2, "{result}");
    assert_eq!(recorded, children);
}

// ------------------------------------------------------ how executions end --

/// A remediate-deployment request for Deployment `outcomes/<deployment>`.
fn deployment_request(action: &str, deployment: &str) -> Value {
    json!({
        "action": action,
        "target": {"cluster": "limits", "namespace": "outcomes", "deployment": deployment},
        "reason": format!("{TEST}: {action} {deployment}")
    })
}

/// The functions invoked, in order; notify as `notify:<event>`.
fn invoked(calls: &Calls) -> Vec<String> {
    calls
        .lock()
        .unwrap()
        .iter()
        .map(|(function, payload)| match payload["event"].as_str() {
            Some(event) if function == "notify" => format!("notify:{event}"),
            _ => function.clone(),
        })
        .collect()
}

/// No human is asked to approve an action that cannot run: an action other
/// than rollback, pause, resume or restart (`{"action": "explode",
/// "approval": true}`) fails at CheckRequest, before its approval rules: no
/// approval request, no handler, one `failed` message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_action_fails_before_any_approval() {
    let Some(node) = tool_or_skip(TEST, find_node()) else {
        return;
    };
    let (functions_url, calls) = fake_functions().await;
    let runner = start_runner(&node, &functions_url);
    for (name, input, substitutions) in [
        (
            "explode-with-approval",
            json!({"action": "explode", "approval": true, "target": {"namespace": "outcomes", "deployment": "api"}}),
            json!({}),
        ),
        (
            "explode-approval-required",
            deployment_request("explode", "api"),
            json!({"RequireApproval": "true"}),
        ),
        (
            "action-not-a-string",
            json!({"action": 3, "approval": true, "target": {"namespace": "outcomes", "deployment": "api"}}),
            json!({}),
        ),
    ] {
        calls.lock().unwrap().clear();
        let result = runner
            .run_with("remediate-deployment", name, &input, &substitutions)
            .await;
        assert_eq!(result["status"], "FAILED", "{name}: {result}");
        assert_eq!(
            result["states"],
            json!([
                "Initialize",
                "Normalize",
                "CheckRequest",
                "InvalidAction",
                "ReportFailure",
                "ChooseFailure",
                "RemediationFailed"
            ]),
            "{name}"
        );
        assert_eq!(result["error"], "NonRetryableInvalidRequest", "{name}");
        assert_eq!(
            result["cause"], "action must be one of rollback, pause, resume, restart",
            "{name}"
        );
        assert_eq!(invoked(&calls), ["notify:failed"], "{name}");
        let calls = calls.lock().unwrap();
        assert_eq!(
            calls[0].1["error"],
            json!({"Error": "NonRetryableInvalidRequest", "Cause": "action must be one of rollback, pause, resume, restart"}),
            "{name}"
        );
    }
}

const FORBIDDEN: &str = "deployments.apps \"forbidden\" is forbidden: User \"selfheal\" cannot patch resource \"deployments\" in API group \"apps\" in the namespace \"outcomes\"";

/// Rollback answers by Deployment name: `forbidden` and `invalid` are
/// handler errors, `cooldown` a refusal, anything else is rolled back.
fn scripted_rollback() -> Answer {
    Arc::new(|function: &str, payload: &Value| {
        let deployment = payload["target"]["deployment"].as_str().unwrap_or_default();
        match (function, deployment) {
            ("rollback", "forbidden") => Err(("NonRetryableForbidden", FORBIDDEN.to_owned())),
            ("rollback", "invalid") => Err((
                "NonRetryableInvalidRequest",
                "unknown field `colour` in the request".to_owned(),
            )),
            ("rollback", "cooldown") => Ok(json!({
                "status": "refused", "action": "rollback", "guard": "cooldown",
                "message": "deployment outcomes/cooldown was rolled back 120 s ago (cooldown 600 s)",
                "target": payload["target"]
            })),
            _ => Ok(answer(function, payload)),
        }
    })
}

/// A failure says what failed: other than a refusal, a denial, an expired
/// approval or an unhealthy rollout, the execution fails with the handler's
/// `errorType` and message, not a fixed cause; in a fleet each failed
/// target's result carries its child execution's error, not
/// `States.TaskFailed`. The four named Fail states keep their names.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_execution_is_named_by_the_handlers_error() {
    let Some(node) = tool_or_skip(TEST, find_node()) else {
        return;
    };
    let (functions_url, calls) = fake_functions_answering(scripted_rollback()).await;
    let runner = start_runner(&node, &functions_url);
    let quick = json!({"VerifyIntervalSeconds": "0"});

    for (deployment, error, cause) in [
        ("forbidden", "NonRetryableForbidden", FORBIDDEN),
        (
            "invalid",
            "NonRetryableInvalidRequest",
            "unknown field `colour` in the request",
        ),
    ] {
        calls.lock().unwrap().clear();
        let result = runner
            .run_with(
                "remediate-deployment",
                deployment,
                &deployment_request("rollback", deployment),
                &quick,
            )
            .await;
        assert_eq!(result["status"], "FAILED", "{result}");
        assert_eq!(result["error"], error, "{result}");
        assert_eq!(result["cause"], cause, "{result}");
        let states = result["states"].as_array().unwrap();
        assert_eq!(
            states[states.len() - 4..],
            [
                json!("ActionError"),
                json!("ReportFailure"),
                json!("ChooseFailure"),
                json!("RemediationFailed")
            ],
            "{result}"
        );
        assert_eq!(invoked(&calls), ["rollback", "notify:failed"]);
    }

    // A refusal keeps its own Fail state and name.
    let result = runner
        .run_with(
            "remediate-deployment",
            "cooldown",
            &deployment_request("rollback", "cooldown"),
            &quick,
        )
        .await;
    assert_eq!(result["status"], "FAILED", "{result}");
    assert_eq!(result["error"], "SelfhealRefused", "{result}");
    assert_eq!(
        result["states"].as_array().unwrap().last(),
        Some(&json!("RemediationRefused"))
    );

    // A fleet: the failed targets are named by their children's errors.
    calls.lock().unwrap().clear();
    let input = json!({
        "request": {"action": "rollback", "reason": format!("{TEST}: named failures")},
        "targets": (["rolled", "forbidden", "cooldown"].map(|d| json!({"cluster": "limits", "namespace": "outcomes", "deployment": d})))
    });
    let result = run_fleet(&runner, "named-failures", &input, &quick).await;
    assert_eq!(result["status"], "SUCCEEDED", "{result}");
    let children: Vec<&Value> = result["children"].as_array().unwrap().iter().collect();
    let child_of = |deployment: &str| {
        children
            .iter()
            .find(|c| c["input"]["target"]["deployment"] == deployment)
            .unwrap_or_else(|| panic!("no child for {deployment}: {result}"))
    };
    let results = result["output"]["results"].as_array().unwrap();
    assert_eq!(results.len(), 3);
    assert_eq!(results[0]["status"], "succeeded", "{}", results[0]);
    for (result, deployment, error, cause) in [
        (&results[1], "forbidden", "NonRetryableForbidden", FORBIDDEN),
        (
            &results[2],
            "cooldown",
            "SelfhealRefused",
            "A guard refused the remediation (the Refused step's output names it in outcome.guard); nothing was changed and humans were notified.",
        ),
    ] {
        let child = child_of(deployment);
        assert_eq!(
            result,
            &json!({
                "target": {"cluster": "limits", "namespace": "outcomes", "deployment": deployment},
                "status": "failed",
                "executionArn": child["executionArn"],
                "error": error,
                "cause": cause
            })
        );
        assert_eq!(child["error"], error);
    }
    // What the fleet summary was computed from.
    let summarized = calls
        .lock()
        .unwrap()
        .iter()
        .find(|(f, p)| f == "notify" && p["event"] == "fleetCompleted")
        .map(|(_, p)| p["results"].clone())
        .unwrap();
    assert_eq!(&summarized, &result["output"]["results"]);
}

/// An alarm-driven pause refused as `noRolloutInProgress` or
/// `impactBelowThreshold` means nothing needed doing; failing it would send
/// a failure message on every routine alarm. Those two refusals end
/// SUCCEEDED with the refused outcome as output, reported as `completed`
/// (notify's low-priority message); any other refusal fails as
/// `SelfhealRefused` after a `failed` message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_routine_refusal_succeeds_and_others_still_fail() {
    let Some(node) = tool_or_skip(TEST, find_node()) else {
        return;
    };
    let pause = |function: &str, payload: &Value| -> Reply {
        let guard = match payload["target"]["deployment"].as_str() {
            Some("idle") => "noRolloutInProgress",
            Some("minor") => "impactBelowThreshold",
            Some("opted-out") => "optIn",
            _ => return Ok(answer(function, payload)),
        };
        Ok(json!({
            "status": "refused", "action": "pause", "guard": guard,
            "message": format!("refused by {guard}"),
            "target": payload["target"]
        }))
    };
    let (functions_url, calls) = fake_functions_answering(Arc::new(pause)).await;
    let runner = start_runner(&node, &functions_url);
    let alarm_pause = |deployment: &str| {
        let mut input = deployment_request("pause", deployment);
        input["alarm"] =
            json!({"source": "cloudwatch", "name": "checkout-latency", "impactScore": 0.4});
        input
    };

    for (deployment, guard) in [
        ("idle", "noRolloutInProgress"),
        ("minor", "impactBelowThreshold"),
    ] {
        calls.lock().unwrap().clear();
        let result = runner
            .run_with(
                "remediate-deployment",
                deployment,
                &alarm_pause(deployment),
                &json!({}),
            )
            .await;
        assert_eq!(result["status"], "SUCCEEDED", "{result}");
        let output = &result["output"];
        assert_eq!(output["status"], "refused", "{output}");
        assert_eq!(output["guard"], guard, "{output}");
        assert_eq!(output["message"], format!("refused by {guard}"));
        assert!(output["deploymentHealth"].is_object(), "{output}");
        let states = result["states"].as_array().unwrap();
        assert_eq!(
            states[states.len() - 5..],
            [
                "RouteOutcome",
                "ClassifyRefusal",
                "RoutineRefusal",
                "ReportResult",
                "Output"
            ]
            .map(|s| json!(s)),
            "{result}"
        );
        assert_eq!(invoked(&calls), ["pause", "notify:completed"]);
        let calls = calls.lock().unwrap();
        assert_eq!(calls[1].1["outcome"]["guard"], guard);
        assert_eq!(calls[1].1["error"], Value::Null);
    }

    calls.lock().unwrap().clear();
    let result = runner
        .run_with(
            "remediate-deployment",
            "opted-out",
            &alarm_pause("opted-out"),
            &json!({}),
        )
        .await;
    assert_eq!(result["status"], "FAILED", "{result}");
    assert_eq!(result["error"], "SelfhealRefused", "{result}");
    assert_eq!(invoked(&calls), ["pause", "notify:failed"]);
}

/// After an approval, the request the action's handler gets names the
/// approver (approve's `decidedBy`) as `approvedBy`, which the planner writes
/// into the audit Event and the history record; so does the rollback an
/// approved freeze runs. The stand-in notify answers each approval request
/// the way the approve function does: a `SendTaskSuccess` for the task token,
/// sent to the runner.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approved_rollback_names_the_approver_in_its_request() {
    let Some(node) = tool_or_skip(TEST, find_node()) else {
        return;
    };
    let runner_url: Arc<std::sync::OnceLock<String>> = Arc::default();
    let callback_url = runner_url.clone();
    let approve = move |function: &str, payload: &Value| -> Reply {
        let asks = ["approvalRequested", "rolloutFrozen"];
        if function == "notify" && asks.iter().any(|e| payload["event"] == *e) {
            let url = callback_url.get().unwrap().clone();
            let output = json!({"decision": "approve", "decidedAt": "2026-11-27T10:00:10Z",
                "decidedBy": {"sourceIp": "203.0.113.7", "userAgent": "curl/8.5.0"}});
            let body = json!({"taskToken": payload["taskToken"], "output": output.to_string()});
            tokio::spawn(async move {
                let (status, _, bytes) = http_request(
                    "POST",
                    &url,
                    &[
                        ("x-amz-target", "AWSStepFunctions.SendTaskSuccess"),
                        ("content-type", "application/x-amz-json-1.0"),
                    ],
                    serde_json::to_vec(&body).unwrap(),
                    Duration::from_secs(30),
                )
                .await;
                assert_eq!(status, 200, "{}", String::from_utf8_lossy(&bytes));
            });
            return Ok(json!({}));
        }
        if function == "pause" || function == "restart" {
            return Ok(json!({"status": "applied", "action": function,
                "message": format!("{function} applied"), "target": payload["target"]}));
        }
        if function == "verify" && payload["target"]["deployment"] == "restarted" {
            return Ok(json!({"state": "failed", "message": "progress deadline exceeded"}));
        }
        Ok(answer(function, payload))
    };
    let (functions_url, calls) = fake_functions_answering(Arc::new(approve)).await;
    let runner = start_runner(&node, &functions_url);
    runner_url.set(runner.url().to_owned()).unwrap();

    let mut input = deployment_request("rollback", "approved");
    input["approval"] = json!(true);
    let result = runner
        .run_with(
            "remediate-deployment",
            "approved-rollback",
            &input,
            &json!({"VerifyIntervalSeconds": "0"}),
        )
        .await;
    assert_eq!(result["status"], "SUCCEEDED", "{result}");
    assert_eq!(
        invoked(&calls),
        [
            "rollback",
            "notify:approvalRequested",
            "rollback",
            "verify",
            "notify:completed"
        ]
    );
    let recorded = calls.lock().unwrap().clone();
    // The approval request carries the dry run the state machine ran first
    // (the approval page's plan), which named no approver.
    assert_eq!(recorded[0].1["dryRun"], true, "{}", recorded[0].1);
    assert!(recorded[0].1.get("approvedBy").is_none());
    assert_eq!(
        recorded[1].1["preview"]["status"], "dryRun",
        "{}",
        recorded[1].1
    );
    assert_eq!(
        recorded[1].1["preview"]["changes"][0]["container"], "api",
        "{}",
        recorded[1].1
    );
    let rollback = &recorded[2].1;
    assert_eq!(rollback["dryRun"], false, "{rollback}");
    assert_eq!(
        rollback["approvedBy"],
        json!({"sourceIp": "203.0.113.7", "userAgent": "curl/8.5.0"}),
        "{rollback}"
    );
    // The final notification has the decision too (notify renders it).
    assert_eq!(
        recorded[4].1["approval"]["decidedBy"]["sourceIp"], "203.0.113.7",
        "{}",
        recorded[4].1
    );

    // A pause freezes the rollout; the approved rollback names its approver.
    calls.lock().unwrap().clear();
    let result = runner
        .run_with(
            "remediate-deployment",
            "approved-freeze",
            &deployment_request("pause", "frozen"),
            &json!({"VerifyIntervalSeconds": "0"}),
        )
        .await;
    assert_eq!(result["status"], "SUCCEEDED", "{result}");
    let frozen = calls.lock().unwrap().clone();
    let (previews, rollbacks): (Vec<&Value>, Vec<&Value>) = frozen
        .iter()
        .filter(|(f, _)| f == "rollback")
        .map(|(_, p)| p)
        .partition(|p| p["dryRun"] == true);
    assert_eq!(rollbacks.len(), 1, "{:?}", invoked_names(&frozen));
    // The freeze's approval was asked with the rollback's dry run.
    assert_eq!(previews.len(), 1, "{:?}", invoked_names(&frozen));
    let asked = frozen
        .iter()
        .find(|(f, p)| f == "notify" && p["event"] == "rolloutFrozen")
        .map(|(_, p)| p)
        .expect("rolloutFrozen");
    assert_eq!(asked["preview"]["status"], "dryRun", "{asked}");
    assert_eq!(
        rollbacks[0]["approvedBy"],
        json!({"sourceIp": "203.0.113.7", "userAgent": "curl/8.5.0"}),
        "{}",
        rollbacks[0]
    );
    assert!(
        frozen
            .iter()
            .all(|(f, p)| f != "pause" || p.get("approvedBy").is_none()),
        "the pause needed no approval"
    );

    // An approved restart whose rollout fails escalates to a rollback: the
    // approval covered it, so it names the approver too.
    calls.lock().unwrap().clear();
    let mut input = deployment_request("restart", "restarted");
    input["approval"] = json!(true);
    runner
        .run_with(
            "remediate-deployment",
            "approved-restart",
            &input,
            &json!({"VerifyIntervalSeconds": "0"}),
        )
        .await;
    let calls = calls.lock().unwrap();
    for action in ["restart", "rollback"] {
        let requests: Vec<&Value> = calls
            .iter()
            .filter(|(f, _)| f == action)
            .map(|(_, p)| p)
            .collect();
        assert_eq!(requests.len(), 1, "{action}: {:?}", invoked_names(&calls));
        assert_eq!(
            requests[0]["approvedBy"]["sourceIp"], "203.0.113.7",
            "{action}: {}",
            requests[0]
        );
    }
}

/// A rollback whose dry run (the approval's preview) a guard already refuses
/// is not put to a person: the refusal is the outcome (humans + Fail), and
/// no approval request goes out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_preview_asks_nobody() {
    let Some(node) = tool_or_skip(TEST, find_node()) else {
        return;
    };
    let (functions_url, calls) = fake_functions_answering(scripted_rollback()).await;
    let runner = start_runner(&node, &functions_url);
    let mut input = deployment_request("rollback", "cooldown");
    input["approval"] = json!(true);
    let result = runner
        .run_with(
            "remediate-deployment",
            "refused-preview",
            &input,
            &json!({}),
        )
        .await;
    assert_eq!(result["status"], "FAILED", "{result}");
    assert_eq!(result["error"], "SelfhealRefused", "{result}");
    assert_eq!(invoked(&calls), ["rollback", "notify:failed"]);
    let calls = calls.lock().unwrap();
    assert_eq!(calls[0].1["dryRun"], true, "{}", calls[0].1);
    assert_eq!(calls[1].1["outcome"]["guard"], "cooldown", "{}", calls[1].1);
}

fn invoked_names(calls: &[(String, Value)]) -> Vec<&str> {
    calls.iter().map(|(f, _)| f.as_str()).collect()
}

// ------------------------------------------------------- the rollout watch --

/// A stand-in `verify` for Deployment `outcomes/<deployment>`: `slow…`
/// answers `waiting` with budget left twice, then `done`; `stuck` answers
/// `waiting` with the budget spent. Like the handler, each answer counts
/// its window in `watch`, continuing the `previous` answer's count.
fn scripted_watch() -> Answer {
    let slow_calls: Arc<Mutex<std::collections::HashMap<String, usize>>> = Arc::default();
    Arc::new(move |function: &str, payload: &Value| {
        let deployment = payload["target"]["deployment"].as_str().unwrap_or_default();
        let attempts = payload["previous"]["watch"]["attempts"]
            .as_u64()
            .unwrap_or(0)
            + 1;
        let watch = json!({"startedAt": payload["watch"]["startedAt"], "attempts": attempts,
                           "finishedAt": "2026-11-26T19:14:00Z"});
        let waiting = |remaining: u64| {
            Ok(json!({
                "state": "waiting",
                "message": format!("Waiting for deployment \"{deployment}\" rollout to finish: 1 of 2 updated replicas are available..."),
                "target": payload["target"],
                "remainingSeconds": remaining,
                "watch": watch
            }))
        };
        let slow = function == "verify" && deployment.starts_with("slow") && {
            let mut calls = slow_calls.lock().unwrap();
            let n = calls.entry(deployment.to_owned()).or_default();
            *n += 1;
            *n <= 2
        };
        match (function, deployment) {
            _ if slow => waiting(100),
            ("verify", "stuck") => waiting(0),
            _ => Ok(answer(function, payload)),
        }
    })
}

/// Verify watches (its window ends at `done`, `failed` or the budget), so the
/// definition goes to `Verify` at once, passes the budget (`watch`:
/// StartVerify's time and `${VerifyTimeoutSeconds}`) and the previous answer
/// (`previous`, whose `watch` counts the windows, so a window costs two
/// states: Verify, CheckRollout), watches again at once while
/// `remainingSeconds` is above 0, and pauses `${VerifyIntervalSeconds}`
/// between windows only when that is above 0; a spent budget is
/// `SelfhealRolloutTimedOut`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rollout_watch_loops_only_while_the_budget_lasts() {
    let Some(node) = tool_or_skip(TEST, find_node()) else {
        return;
    };
    let (functions_url, calls) = fake_functions_answering(scripted_watch()).await;
    let runner = start_runner(&node, &functions_url);
    let knobs = json!({"VerifyIntervalSeconds": "0", "VerifyTimeoutSeconds": "120"});

    let r = runner
        .run_with(
            "remediate-deployment",
            "watch-slow",
            &deployment_request("rollback", "slow"),
            &knobs,
        )
        .await;
    assert_eq!(r["status"], "SUCCEEDED", "{r:#}");
    let states: Vec<&str> = r["states"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let start = states.iter().position(|s| *s == "StartVerify").unwrap();
    let window = ["Verify", "CheckRollout"];
    let expected = [
        &["StartVerify"][..],
        &window,
        &window,
        &window,
        &["ReportResult"],
    ]
    .concat();
    assert_eq!(
        states[start..start + expected.len()],
        expected[..],
        "{states:?}"
    );
    let verifies: Vec<Value> = calls
        .lock()
        .unwrap()
        .iter()
        .filter(|(function, _)| function == "verify")
        .map(|(_, payload)| payload.clone())
        .collect();
    // Each window gets the previous answer back: that is the count.
    let previous: Vec<&Value> = verifies
        .iter()
        .map(|p| &p["previous"]["watch"]["attempts"])
        .collect();
    assert_eq!(previous, [&Value::Null, &json!(1), &json!(2)]);
    let watches: Vec<Value> = verifies.iter().map(|p| p["watch"].clone()).collect();
    assert_eq!(watches.len(), 3);
    assert_eq!(watches[0]["budgetSeconds"], 120);
    assert!(
        watches[0]["startedAt"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z'))
    );
    assert!(
        watches.iter().all(|w| *w == watches[0]),
        "every window counts from StartVerify: {watches:?}"
    );
    let health = &r["output"]["deploymentHealth"];
    assert!(health.is_object(), "{r:#}");

    calls.lock().unwrap().clear();
    let r = runner
        .run_with(
            "remediate-deployment",
            "watch-stuck",
            &deployment_request("rollback", "stuck"),
            &knobs,
        )
        .await;
    assert_eq!(r["status"], "FAILED", "{r:#}");
    assert_eq!(r["error"], "SelfhealRolloutFailed", "{r:#}");
    let states = r["states"].as_array().unwrap();
    assert!(!states.iter().any(|s| s == "WaitForRollout"), "{states:?}");
    assert!(states.iter().any(|s| s == "RolloutStuck"), "{states:?}");
    let failure = calls
        .lock()
        .unwrap()
        .iter()
        .find(|(function, payload)| function == "notify" && payload["event"] == "failed")
        .map(|(_, payload)| payload.clone())
        .unwrap();
    assert_eq!(
        failure["error"]["Error"], "SelfhealRolloutTimedOut",
        "{failure:#}"
    );
    assert!(
        failure["error"]["Cause"].as_str().unwrap().starts_with(
            "rollout not done after 120 s (1 watches): Waiting for deployment \"stuck\""
        ),
        "{failure:#}"
    );
    // With a pause asked for, WaitForRollout comes between the windows.
    let paused = json!({"VerifyIntervalSeconds": "1", "VerifyTimeoutSeconds": "120"});
    let r = runner
        .run_with(
            "remediate-deployment",
            "watch-slow-paused",
            &deployment_request("rollback", "slow-paused"),
            &paused,
        )
        .await;
    assert_eq!(r["status"], "SUCCEEDED", "{r:#}");
    let loop_states: Vec<&str> = r["states"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .skip_while(|s| *s != "StartVerify")
        .take_while(|s| *s != "ReportResult")
        .collect();
    let window = ["WaitForRollout", "Verify", "CheckRollout"];
    let expected = [
        &["StartVerify", "Verify", "CheckRollout"][..],
        &window,
        &window,
    ]
    .concat();
    assert_eq!(loop_states, expected);
}
