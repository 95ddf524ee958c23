//! The handlers called directly (`LambdaEvent::new(payload, Context::default())`)
//! against the project's in-process test API server, in local (kubeconfig)
//! mode: the resulting Deployment is asserted, not just the outcome.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::path::Path;

use k8s_openapi::api::apps::v1::Deployment;
use lambda_runtime::{Context, LambdaEvent};
use selfheal_core::{Action, OutcomeStatus, RolloutState};
use selfheal_lambda::{
    AppState, FunctionConfig, HandlerError, RejectNonJson, Startup, handle_action, handle_verify,
    invoke_action, invoke_verify,
};
use selfheal_testserver::{Identity, TestServer, fixtures};
use serde_json::{Value, json};

const API_1: &str = "registry.example/shop/api:1.0.0";
const API_2: &str = "registry.example/shop/api:1.1.0";
const ENVOY: &str = "registry.example/envoy:1.27";

struct Setup {
    server: TestServer,
    state: AppState,
    dir: tempfile::TempDir,
}

fn checkout() -> Value {
    fixtures::checkout(API_1, ENVOY).opt_in(true).json()
}

async fn state_for(kubeconfig: &Path, extra: &[(&str, &str)]) -> Result<AppState, HandlerError> {
    let mut vars: HashMap<String, String> = HashMap::new();
    vars.insert(
        "SELFHEAL_KUBECONFIG".into(),
        kubeconfig.display().to_string(),
    );
    vars.insert("SELFHEAL_COOLDOWN_SECONDS".into(), "0".into());
    for (k, v) in extra {
        vars.insert((*k).into(), (*v).into());
    }
    let config = FunctionConfig::from_lookup(|k| vars.get(k).cloned())?;
    AppState::new(config).await
}

/// checkout at revision 2 (api 1.1.0 is the bad image), rollout finished.
/// `action` on `shop/checkout` through the real handler; it must answer.
async fn act(s: &Setup, action: Action) -> selfheal_core::RemediationOutcome {
    let payload = event(request(action.as_str()));
    handle_action(&s.state, action, payload).await.unwrap()
}

/// `action` applied to `shop/checkout`: the Deployment after it.
async fn applied(s: &Setup, action: Action) -> Deployment {
    let outcome = act(s, action).await;
    assert_eq!(outcome.status, OutcomeStatus::Applied, "{outcome:?}");
    s.server.deployment("shop", "checkout").unwrap()
}

/// `verify` with the request of `action`; it must answer.
async fn verify(s: &Setup, action: &str) -> selfheal_lambda::VerifyOutput {
    handle_verify(&s.state, event(request(action)))
        .await
        .unwrap()
}

async fn setup() -> Setup {
    let server = TestServer::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    server.write_kubeconfig(&kubeconfig).unwrap();
    assert!(server.seed_two_revisions(checkout(), "api", API_2).await);
    let state = state_for(&kubeconfig, &[]).await.unwrap();
    Setup { server, state, dir }
}

fn event(payload: Value) -> LambdaEvent<Value> {
    LambdaEvent::new(payload, Context::default())
}

fn event_with_request_id(payload: Value, id: &str) -> LambdaEvent<Value> {
    let mut context = Context::default();
    context.request_id = id.to_owned();
    LambdaEvent::new(payload, context)
}

fn images(d: &Deployment) -> Vec<(String, String)> {
    d.spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .map(|s| {
            s.containers
                .iter()
                .map(|c| (c.name.clone(), c.image.clone().unwrap_or_default()))
                .collect()
        })
        .unwrap_or_default()
}

fn request(action: &str) -> Value {
    json!({
        "action": action,
        "target": { "namespace": "shop", "deployment": "checkout" },
        "reason": "test"
    })
}

#[tokio::test]
async fn rollback_reverts_only_the_offending_container() {
    let s = setup().await;
    let outcome = handle_action(
        &s.state,
        Action::Rollback,
        event_with_request_id(request("rollback"), "req-123"),
    )
    .await
    .unwrap();
    assert_eq!(outcome.status, OutcomeStatus::Applied, "{outcome:?}");
    assert_eq!(outcome.changes.len(), 1);
    assert_eq!(outcome.changes[0].container, "api");
    assert_eq!(outcome.changes[0].from, API_2);
    assert_eq!(outcome.changes[0].to, API_1);
    // No Step Functions execution in the request: the Lambda request id is recorded.
    assert_eq!(outcome.execution.as_deref(), Some("req-123"));

    let d = s.server.deployment("shop", "checkout").unwrap();
    assert_eq!(
        images(&d),
        vec![("api".into(), API_1.into()), ("envoy".into(), ENVOY.into())]
    );
    let audit = d.metadata.annotations.unwrap()["selfheal.dev/last-remediation"].clone();
    assert!(audit.contains("req-123"), "{audit}");
    let _ = &s.dir;
}

#[tokio::test]
async fn pause_resume_restart_change_the_deployment() {
    let s = setup().await;
    let d = applied(&s, Action::Pause).await;
    assert_eq!(d.spec.as_ref().unwrap().paused, Some(true));

    let again = act(&s, Action::Pause).await;
    assert_eq!(again.status, OutcomeStatus::Skipped, "{again:?}");

    let d = applied(&s, Action::Resume).await;
    assert_ne!(d.spec.as_ref().unwrap().paused, Some(true));

    let d = applied(&s, Action::Restart).await;
    let template_annotations = d
        .spec
        .unwrap()
        .template
        .metadata
        .unwrap()
        .annotations
        .unwrap();
    assert!(template_annotations.contains_key("kubectl.kubernetes.io/restartedAt"));
    // Images untouched by pause/resume/restart.
    assert_eq!(
        images(&s.server.deployment("shop", "checkout").unwrap())[0].1,
        API_2
    );
    // One Remediator for the whole process, whatever the number of invocations.
    assert_eq!(s.state.remediators_built(), 1);
}

#[tokio::test]
async fn action_mismatch_is_refused_before_any_api_call() {
    let s = setup().await;
    s.server.clear_requests();
    let err = handle_action(&s.state, Action::Pause, event(request("rollback")))
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        HandlerError::ActionMismatch {
            expected: Action::Pause,
            got: Action::Rollback
        }
    ));
    assert_eq!(err.error_type(), "NonRetryableInvalidRequest");
    assert!(s.server.requests().is_empty(), "{:?}", s.server.requests());
    assert_eq!(
        images(&s.server.deployment("shop", "checkout").unwrap())[0].1,
        API_2
    );
}

/// The Deployment as the server stores it, for "nothing was written" checks
/// (a write would change at least its resourceVersion).
fn stored(server: &TestServer) -> Value {
    serde_json::to_value(server.deployment("shop", "checkout").unwrap()).unwrap()
}

/// The Deployment is still `before`.
fn assert_untouched(server: &TestServer, before: &Value) {
    assert_eq!(&stored(server), before, "the Deployment must be untouched");
}

/// No request reached the server, and the Deployment is still `before`.
fn assert_no_request(server: &TestServer, before: &Value) {
    assert!(server.requests().is_empty(), "{:?}", server.requests());
    assert_untouched(server, before);
}

/// The server answered `status` (the error came from it) and the request
/// log holds no write; `what` names the case.
fn assert_answered_without_writing(server: &TestServer, status: u16, what: &dyn std::fmt::Display) {
    let log = server.requests();
    assert!(log.iter().any(|r| r.status == status), "{what}: {log:?}");
    assert_no_write(server);
}

/// The request log holds no write: only GETs (reads, lists, discovery).
fn assert_no_write(server: &TestServer) {
    let writes: Vec<_> = server
        .requests()
        .into_iter()
        .filter(|r| r.method != "GET")
        .collect();
    assert!(writes.is_empty(), "writes: {writes:?}");
}

/// A raw Lambda body through what every function's runtime puts in front of
/// the handler: the [`RejectNonJson`] layer, then the body decoded as JSON (the
/// runtime's own step), then [`invoke_action`] (the main's handler).
async fn invoke_raw(
    startup: &Startup,
    expected: Action,
    body: &'static [u8],
) -> Result<selfheal_core::RemediationOutcome, HandlerError> {
    use lambda_runtime::tower::{Layer, Service};
    let inner =
        lambda_runtime::service_fn(|invocation: lambda_runtime::LambdaInvocation| async move {
            let payload: Value = serde_json::from_slice(&invocation.body)
                .expect("RejectNonJson hands the runtime JSON");
            let event = LambdaEvent::new(payload, invocation.context);
            invoke_action(startup, expected, event, &mut Vec::new()).await
        });
    let mut service = RejectNonJson.layer(inner);
    let (parts, ()) = http::Response::new(()).into_parts();
    service
        .call(lambda_runtime::LambdaInvocation {
            parts,
            body: bytes::Bytes::from_static(body),
            context: Context::default(),
        })
        .await
}

/// Bad input never reaches the API server: a typed `NonRetryableInvalidRequest`
/// naming the problem, an empty request log, and the Deployment as it was.
#[tokio::test]
async fn bad_payloads_are_invalid_requests() {
    let s = setup().await;
    let kubeconfig = s.dir.path().join("kubeconfig");
    let startup = Startup::new("rollback", state_for(&kubeconfig, &[]).await);
    let before = stored(&s.server);
    s.server.clear_requests();

    // Not JSON at all (what the runtime hands a malformed body).
    for body in [
        &b"{\"action\": \"rollback\", \"target\": "[..],
        b"nope",
        b"",
    ] {
        let err = invoke_raw(&startup, Action::Rollback, body)
            .await
            .unwrap_err();
        let text = String::from_utf8_lossy(body);
        assert_eq!(
            err.error_type(),
            "NonRetryableInvalidRequest",
            "{text}: {err}"
        );
        assert!(
            err.to_string().contains("payload is not JSON"),
            "{text}: {err}"
        );
        assert!(
            s.server.requests().is_empty(),
            "{text}: {:?}",
            s.server.requests()
        );
    }
    // The same layer lets a JSON body through untouched.
    let err = invoke_raw(
        &startup,
        Action::Rollback,
        br#"{"action":"pause","target":{"namespace":"shop","deployment":"checkout"}}"#,
    )
    .await
    .unwrap_err();
    assert!(matches!(err, HandlerError::ActionMismatch { .. }), "{err}");

    // JSON, but not a valid request: (payload, what the error must name).
    let payloads = [
        (json!(null), "null"),
        (json!("rollback"), "a string"),
        (json!([1, 2]), "an array"),
        (json!({}), "action"),
        (
            json!({"action": "explode", "target": {"namespace": "shop", "deployment": "checkout"}}),
            "explode",
        ),
        (json!({"action": "rollback"}), "target"),
        (json!({"action": "rollback", "reason": "5xx"}), "target"),
        (
            json!({"action": "rollback", "target": {"namespace": "shop"}}),
            "deployment",
        ),
        (
            json!({"action": "rollback", "target": {"namespace": "", "deployment": "checkout"}}),
            "namespace",
        ),
        (
            json!({"action": "rollback", "target": {"namespace": "shop", "deployment": "checkout", "pod": "p"}}),
            "pod",
        ),
        (
            json!({"action": "rollback", "target": {"namespace": "shop", "deployment": "checkout"}, "dryRun": "yes"}),
            // serde's invalid-type error names the type, not the field.
            "expected a boolean",
        ),
        (
            json!({"action": "rollback", "target": {"namespace": "shop", "deployment": "checkout"}, "bogus": 1}),
            "bogus",
        ),
    ];
    for (payload, named) in payloads {
        let err = handle_action(&s.state, Action::Rollback, event(payload.clone()))
            .await
            .unwrap_err();
        assert_eq!(
            err.error_type(),
            "NonRetryableInvalidRequest",
            "{payload}: {err}"
        );
        assert!(
            err.to_string().contains(named),
            "{payload}: {err} should name {named}"
        );
        assert!(
            s.server.requests().is_empty(),
            "{payload}: {:?}",
            s.server.requests()
        );
    }
    let err = handle_verify(&s.state, event(json!({"status": "applied"})))
        .await
        .unwrap_err();
    assert_eq!(err.error_type(), "NonRetryableInvalidRequest");
    assert!(err.to_string().contains("target"), "{err}");
    assert_no_request(&s.server, &before);
}

/// A Deployment or pod the server does not have: `NonRetryableNotFound` after
/// reads only (the 404 is in the log), nothing written.
#[tokio::test]
async fn missing_target_is_not_found_without_a_write() {
    let s = setup().await;
    let before = stored(&s.server);
    let cases = [
        (
            Action::Rollback,
            json!({"action": "rollback", "target": {"namespace": "shop", "deployment": "nope"}}),
        ),
        (
            Action::Pause,
            json!({"action": "pause", "target": {"namespace": "shop", "deployment": "nope"}}),
        ),
        (
            Action::Rollback,
            json!({"action": "rollback", "target": {"namespace": "shop", "pod": "nope-5d8f7c9b4-x2x2x"}}),
        ),
    ];
    for (action, payload) in cases {
        s.server.clear_requests();
        let err = handle_action(&s.state, action, event(payload.clone()))
            .await
            .unwrap_err();
        assert_eq!(err.error_type(), "NonRetryableNotFound", "{payload}: {err}");
        assert!(err.to_string().contains("nope"), "{payload}: {err}");
        assert_answered_without_writing(&s.server, 404, &payload);
    }
    assert_untouched(&s.server, &before);
}

#[tokio::test]
async fn api_errors_map_to_stable_types() {
    let s = setup().await;
    let missing = json!({"action": "pause", "target": {"namespace": "shop", "deployment": "nope"}});
    let err = handle_action(&s.state, Action::Pause, event(missing))
        .await
        .unwrap_err();
    assert_eq!(err.error_type(), "NonRetryableNotFound", "{err}");

    s.server.faults().fail_next(1, 503);
    let err = handle_action(&s.state, Action::Pause, event(request("pause")))
        .await
        .unwrap_err();
    assert_eq!(err.error_type(), "RetryableApiError", "{err}");
    s.server.faults().clear();

    // Every PATCH conflicts (the object "moves" after each read): the handler
    // re-reads and re-plans up to its budget, then answers RetryableConflict.
    let conflicts = s
        .server
        .conflict_on_every_patch("checkout", std::time::Duration::from_millis(100));
    let err = handle_action(&s.state, Action::Pause, event(request("pause")))
        .await
        .unwrap_err();
    conflicts.abort();
    s.server.faults().clear();
    let patches = s
        .server
        .count_requests(|r| r.method == "PATCH" && r.status == 409);
    assert_eq!(patches as u32, selfheal_kube::DEFAULT_REPLAN_BUDGET + 1);
    assert_eq!(err.error_type(), "RetryableConflict", "{err}");
    assert_ne!(
        s.server
            .deployment("shop", "checkout")
            .unwrap()
            .spec
            .unwrap()
            .paused,
        Some(true)
    );
}

#[tokio::test]
async fn forbidden_token_maps_to_non_retryable_forbidden() {
    let s = setup().await;
    s.server.add_token(
        "viewer-token",
        Identity::Forbidden("system:serviceaccount:shop:viewer".into()),
    );
    let yaml = s
        .server
        .kubeconfig_yaml()
        .replace(&s.server.token(), "viewer-token");
    let path = s.dir.path().join("viewer");
    std::fs::write(&path, yaml).unwrap();
    let state = state_for(&path, &[]).await.unwrap();
    let before = stored(&s.server);
    for action in [Action::Pause, Action::Rollback] {
        s.server.clear_requests();
        let err = handle_action(&state, action, event(request(action.as_str())))
            .await
            .unwrap_err();
        assert_eq!(err.error_type(), "NonRetryableForbidden", "{action}: {err}");
        // The 403 came from the server, and nothing was written (no PATCH, no Event POST).
        assert_answered_without_writing(&s.server, 403, &action);
    }
    assert_untouched(&s.server, &before);
}

#[tokio::test]
async fn verify_reports_rollout_state_for_request_or_outcome() {
    let s = setup().await;
    let out = verify(&s, "rollback").await;
    assert_eq!(out.status.state, RolloutState::Done, "{out:?}");
    assert_eq!(out.target.deployment.as_deref(), Some("checkout"));

    let outcome = act(&s, Action::Rollback).await;
    let out = handle_verify(&s.state, event(serde_json::to_value(&outcome).unwrap()))
        .await
        .unwrap();
    assert!(
        matches!(out.status.state, RolloutState::Waiting | RolloutState::Done),
        "{out:?}"
    );
    assert!(s.server.controller().settle().await);
    let out = handle_verify(&s.state, event(serde_json::to_value(&outcome).unwrap()))
        .await
        .unwrap();
    assert_eq!(out.status.state, RolloutState::Done, "{out:?}");
    assert!(
        out.status.message.contains("successfully rolled out"),
        "{out:?}"
    );
    let json = serde_json::to_value(&out).unwrap();
    assert_eq!(json["state"], "done");
    assert_eq!(json["target"]["namespace"], "shop");
}

#[tokio::test]
async fn broken_kubeconfig_fails_state_construction() {
    let dir = tempfile::tempdir().unwrap();
    let err = state_for(&dir.path().join("missing"), &[])
        .await
        .unwrap_err();
    assert_eq!(err.error_type(), "NonRetryableConfig", "{err}");
    assert!(err.to_string().contains("missing"), "{err}");
}

/// EKS mode with `SELFHEAL_CLUSTER_ENDPOINT`: the endpoint is cluster `demo`'s
/// API server. A request (or verify) naming another cluster, as a fleet
/// execution may, is `NonRetryableClusterNotFound` naming both clusters and
/// the variables, and no request reaches the server (a token signed for the
/// other name would only have earned a 401 there).
#[tokio::test]
async fn configured_endpoint_refuses_other_clusters_before_any_call() {
    let s = setup().await;
    let vars: HashMap<&str, String> = HashMap::from([
        ("SELFHEAL_CLUSTER_ENDPOINT", s.server.url()),
        ("SELFHEAL_DEFAULT_CLUSTER", "demo".to_owned()),
        ("SELFHEAL_COOLDOWN_SECONDS", "0".to_owned()),
    ]);
    let config = FunctionConfig::from_lookup(|k| vars.get(k).cloned()).unwrap();
    let state = AppState::new(config).await.unwrap();
    let before = stored(&s.server);
    s.server.clear_requests();

    let mut rollback = request("rollback");
    rollback["target"]["cluster"] = json!("staging-eks");
    let errors = [
        handle_action(&state, Action::Rollback, event(rollback.clone()))
            .await
            .unwrap_err(),
        handle_verify(&state, event(rollback)).await.unwrap_err(),
    ];
    for err in errors {
        assert!(
            matches!(
                &err,
                HandlerError::ClusterNotServed { requested, configured }
                    if requested == "staging-eks" && configured == "demo"
            ),
            "{err:?}"
        );
        let d = lambda_runtime::Diagnostic::from(err);
        assert_eq!(d.error_type, "NonRetryableClusterNotFound");
        assert!(selfheal_core::ErrorType::name_is_from_kube_functions(
            &d.error_type
        ));
        for needle in [
            "staging-eks",
            "demo",
            "SELFHEAL_CLUSTER_ENDPOINT",
            "SELFHEAL_DEFAULT_CLUSTER",
        ] {
            assert!(d.error_message.contains(needle), "{d:?} lacks {needle}");
        }
    }
    assert_eq!(
        state.remediators_built(),
        0,
        "no client for another cluster"
    );
    assert_no_request(&s.server, &before);
}

/// Start-up failed: every invocation, whatever its payload (a valid request,
/// another function's, not even JSON), answers the start-up error's
/// `errorType` and message; nothing reaches the cluster.
#[tokio::test]
async fn failed_startup_answers_every_invocation_with_its_error() {
    let s = setup().await;
    let before = stored(&s.server);
    s.server.clear_requests();

    // A bad policy variable (FunctionConfig) and a missing kubeconfig (AppState).
    let kubeconfig = s.dir.path().join("kubeconfig");
    let bad_cooldown = state_for(&kubeconfig, &[("SELFHEAL_COOLDOWN_SECONDS", "abc")]).await;
    let missing = s.dir.path().join("no-such-kubeconfig");
    let no_kubeconfig = state_for(&missing, &[]).await;
    let cases = [
        (bad_cooldown, "SELFHEAL_COOLDOWN_SECONDS"),
        (no_kubeconfig, "no-such-kubeconfig"),
    ];
    for (result, named) in cases {
        let init_message = result.as_ref().unwrap_err().to_string();
        let startup = Startup::new("rollback", result);
        let failure = startup.failure().expect("start-up failed").clone();
        assert_eq!(failure.error_type, "NonRetryableConfig", "{init_message}");
        assert_eq!(failure.error_message, init_message);
        assert!(init_message.contains(named), "{init_message} lacks {named}");

        let mut errors = Vec::new();
        for action in [
            Action::Rollback,
            Action::Pause,
            Action::Resume,
            Action::Restart,
        ] {
            for payload in [request(action.as_str()), request("rollback"), json!(null)] {
                errors.push(
                    invoke_action(&startup, action, event(payload), &mut Vec::new())
                        .await
                        .unwrap_err(),
                );
            }
        }
        errors.push(
            invoke_verify(&startup, event(request("rollback")), &mut Vec::new())
                .await
                .unwrap_err(),
        );
        let not_json = json!({ selfheal_runtime::NOT_JSON_MARKER: "EOF" });
        errors.push(
            invoke_verify(&startup, event(not_json), &mut Vec::new())
                .await
                .unwrap_err(),
        );
        for err in errors {
            assert!(matches!(err, HandlerError::Init { .. }), "{err:?}");
            let d = lambda_runtime::Diagnostic::from(err);
            assert_eq!(d.error_type, "NonRetryableConfig");
            assert_eq!(d.error_message, init_message);
        }
    }
    assert_no_request(&s.server, &before);
}

/// A rollback of `shop/checkout` through `startup`, and the one EMF line it
/// printed.
async fn rollback_through(startup: &Startup) -> (selfheal_core::RemediationOutcome, Value) {
    let mut printed = Vec::new();
    let outcome = invoke_action(
        startup,
        Action::Rollback,
        event(request("rollback")),
        &mut printed,
    )
    .await
    .unwrap();
    (outcome, one_emf_line(&printed))
}

/// A successful start-up serves through the same [`Startup`] the mains use.
#[tokio::test]
async fn successful_startup_delegates_to_the_handlers() {
    let s = setup().await;
    let kubeconfig = s.dir.path().join("kubeconfig");
    let startup = Startup::new("rollback", state_for(&kubeconfig, &[]).await);
    assert!(startup.failure().is_none());
    let (outcome, line) = rollback_through(&startup).await;
    assert_eq!(outcome.status, OutcomeStatus::Applied, "{outcome:?}");
    assert_eq!(
        images(&s.server.deployment("shop", "checkout").unwrap()),
        vec![("api".into(), API_1.into()), ("envoy".into(), ENVOY.into())]
    );
    // One invocation, one EMF line (README "Metrics").
    assert_eq!(
        (&line["Action"], &line["Status"], &line["Remediations"]),
        (&json!("rollback"), &json!("applied"), &json!(1))
    );
    assert!(line["HandlerDuration"].as_f64().unwrap() > 0.0, "{line}");
    assert!(line.get("Guard").is_none(), "{line}");

    let mut printed = Vec::new();
    let out = invoke_verify(&startup, event(request("rollback")), &mut printed)
        .await
        .unwrap();
    assert_eq!(out.target.deployment.as_deref(), Some("checkout"));
    let line = one_emf_line(&printed);
    assert_eq!(
        (&line["Action"], &line["RolloutChecks"]),
        (&json!("verify"), &json!(1))
    );
    let state = serde_json::to_value(out.status.state).unwrap();
    assert_eq!(line["Status"], state, "{line}");

    // A refusal names its guard; an error its errorType.
    // The rollback above is within this start-up's 600 s cooldown.
    let cooling = Startup::new(
        "rollback",
        state_for(&kubeconfig, &[("SELFHEAL_COOLDOWN_SECONDS", "600")]).await,
    );
    let (outcome, line) = rollback_through(&cooling).await;
    assert_eq!(outcome.status, OutcomeStatus::Refused, "{outcome:?}");
    assert_eq!(
        (&line["Status"], &line["Guard"]),
        (&json!("refused"), &json!("cooldown"))
    );
    let mut printed = Vec::new();
    invoke_action(
        &startup,
        Action::Pause,
        event(request("rollback")),
        &mut printed,
    )
    .await
    .unwrap_err();
    let line = one_emf_line(&printed);
    assert_eq!(
        (&line["Action"], &line["Status"], &line["errorType"]),
        (
            &json!("pause"),
            &json!("error"),
            &json!("NonRetryableInvalidRequest")
        )
    );
}

/// The single line in `printed`, checked against the EMF specification.
fn one_emf_line(printed: &[u8]) -> Value {
    let text = std::str::from_utf8(printed).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 1, "exactly one line per invocation: {text}");
    let extracted = selfheal_metrics::emf::validate(lines[0])
        .unwrap_or_else(|problems| panic!("{}: {problems:?}", lines[0]));
    assert!(
        extracted
            .iter()
            .all(|e| e.namespace == selfheal_metrics::NAMESPACE),
        "{extracted:?}"
    );
    serde_json::from_str(lines[0]).unwrap()
}

/// Through the handlers with the documented 600 s cooldown: rollback, pause,
/// resume, then a second rollback without `force`. The rollback's own record
/// in `selfheal.dev/history` still runs its cooldown: refused, and the
/// Deployment stays exactly as the resume left it (going by
/// `last-remediation`, which names only the resume, the rollback would walk
/// one revision further back, 1.1.0 → 1.0.0).
#[tokio::test]
async fn rollback_after_pause_and_resume_is_still_in_its_cooldown() {
    const API_3: &str = "registry.example/shop/api:1.2.0";
    let s = setup().await;
    let kubeconfig = s.dir.path().join("kubeconfig");
    let state = state_for(&kubeconfig, &[("SELFHEAL_COOLDOWN_SECONDS", "600")])
        .await
        .unwrap();
    assert!(
        s.server
            .roll_out_image("shop", "checkout", "api", API_3)
            .await
    );

    for (action, status) in [
        (Action::Rollback, OutcomeStatus::Applied),
        (Action::Pause, OutcomeStatus::Applied),
        (Action::Resume, OutcomeStatus::Applied),
    ] {
        let outcome = handle_action(&state, action, event(request(action.as_str())))
            .await
            .unwrap();
        assert_eq!(outcome.status, status, "{outcome:?}");
    }
    assert!(s.server.controller().settle().await);
    let before = stored(&s.server);
    assert_eq!(
        images(&s.server.deployment("shop", "checkout").unwrap())[0].1,
        API_2
    );
    let history: Value = serde_json::from_str(
        before["metadata"]["annotations"]["selfheal.dev/history"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    let actions: Vec<&str> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["rollback", "pause", "resume"]);

    s.server.clear_requests();
    let outcome = handle_action(&state, Action::Rollback, event(request("rollback")))
        .await
        .unwrap();
    assert_eq!(outcome.status, OutcomeStatus::Refused, "{outcome:?}");
    assert_eq!(outcome.guard, Some(selfheal_core::Guard::Cooldown));
    assert_no_write(&s.server);
    assert_untouched(&s.server, &before);
}

/// `verify` says the Deployment is paused and by whom.
#[tokio::test]
async fn verify_reports_a_pause_and_who_made_it() {
    let s = setup().await;
    let out = verify(&s, "pause").await;
    let json = serde_json::to_value(&out).unwrap();
    assert!(
        json.get("paused").is_none() && json.get("pausedBy").is_none(),
        "{json}"
    );
    act(&s, Action::Pause).await;
    let out = verify(&s, "pause").await;
    assert!(out.status.paused);
    assert_eq!(out.status.paused_by.as_deref(), Some("selfheal"));
    let json = serde_json::to_value(&out).unwrap();
    assert_eq!(
        (&json["paused"], &json["pausedBy"]),
        (&json!(true), &json!("selfheal"))
    );
    let stored = s.server.deployment("shop", "checkout").unwrap();
    assert_eq!(stored.spec.unwrap().paused, Some(true));
}
