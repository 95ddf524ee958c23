//! The off switch through the real handlers and ingest: the action functions'
//! `handle_action` and `handle_verify` (state built as at cold start, local
//! mode against the test API server) and ingest's `Ingest::handle`, reading
//! the switch from a real SSM API (moto, `.venv/bin/moto_server`), ingest
//! starting executions in moto's Step Functions.
//!
//! Switched off, an action function answers `disabled` and sends the API
//! server nothing (its request log stays empty, the Deployment keeps its
//! resourceVersion); ingest starts no execution and lists every alert as
//! ignored (`disabled`) with a 200. A flip reaches a warm process after the
//! cache period (shortened here), and an unreadable switch falls back to the
//! value read last, or is `RetryableAwsError` when nothing was read yet.
//! Skipped with a message without moto unless `SELFHEAL_REQUIRE_TOOLS` is set.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "reliability_common/mod.rs"]
mod common;
mod ingest_support;

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_ssm::types::ParameterType;
use common::{API_1, API_2, Cluster, ENVOY, NS};
use ingest_support::{
    Moto, create_state_machine, executions, moto_binary, post_url, stuck_alert, webhook,
};
use lambda_runtime::{Context, LambdaEvent};
use selfheal_aws::{OffSwitch, SdkConfig, SwitchConfig};
use selfheal_core::{OutcomeStatus, RemediationOutcome, RolloutState};
use selfheal_events::Defaults;
use selfheal_ingest::{Ingest, SfnStarter, WebhookSecret};
use selfheal_lambda::{
    Action, AppState, FunctionConfig, HandlerError, handle_action, handle_verify,
};
use serde_json::{Value, json};

const PARAMETER: &str = "/selfheal/off-switch-test/switch";
const SECRET: &str = "off-switch-webhook-secret";
/// Short, so a flip is seen without long sleeps.
const TTL: Duration = Duration::from_millis(300);

struct Aws {
    _dir: tempfile::TempDir,
    _moto: Moto,
    sdk: SdkConfig,
    ssm: aws_sdk_ssm::Client,
}

async fn aws(test: &str) -> Option<Aws> {
    let bin = moto_binary(test)?;
    let dir = tempfile::tempdir().unwrap();
    let moto = Moto::start(&bin, dir.path()).await;
    let sdk = moto.sdk_config().await;
    let ssm = aws_sdk_ssm::Client::new(&sdk);
    Some(Aws {
        _dir: dir,
        _moto: moto,
        sdk,
        ssm,
    })
}

impl Aws {
    /// What the runbook does: `aws ssm put-parameter --name … --type String
    /// --value <value> --overwrite`.
    async fn set(&self, value: &str) {
        self.ssm
            .put_parameter()
            .name(PARAMETER)
            .r#type(ParameterType::String)
            .value(value)
            .overwrite(true)
            .send()
            .await
            .unwrap();
    }

    async fn delete(&self) {
        self.ssm
            .delete_parameter()
            .name(PARAMETER)
            .send()
            .await
            .unwrap();
    }

    fn switch(&self) -> OffSwitch {
        OffSwitch::with_client(
            &SwitchConfig {
                parameter: PARAMETER.into(),
                cache: TTL,
            },
            self.ssm.clone(),
        )
    }
}

/// The handlers' state as at cold start, with the switch variables set and
/// the SSM client pointed at moto; the cache period shortened to [`TTL`].
/// The switch set to `value`, `checkout` mid bad rollout, and the action
/// functions' state reading both (`None`: no moto, the test is skipped).
async fn switched(test: &str, value: &str) -> Option<(Aws, Cluster, AppState)> {
    let aws = aws(test).await?;
    aws.set(value).await;
    let cluster = Cluster::with_bad_rollout(&["checkout"]).await;
    let state = handler_state(&cluster, &aws).await;
    Some((aws, cluster, state))
}

async fn handler_state(cluster: &Cluster, aws: &Aws) -> AppState {
    let vars: HashMap<&str, String> = HashMap::from([
        (
            "SELFHEAL_KUBECONFIG",
            cluster.kubeconfig.display().to_string(),
        ),
        ("SELFHEAL_COOLDOWN_SECONDS", "0".into()),
        ("SELFHEAL_SWITCH_PARAMETER", PARAMETER.into()),
    ]);
    let mut config = FunctionConfig::from_lookup(|k| vars.get(k).cloned()).unwrap();
    let switch = config.switch.as_mut().expect("switch configured");
    assert_eq!(switch.cache, Duration::from_secs(10), "the default period");
    switch.cache = TTL;
    AppState::with_sdk_config(config, aws.sdk.clone())
        .await
        .unwrap()
}

async fn invoke(state: &AppState, action: Action) -> Result<RemediationOutcome, HandlerError> {
    let payload = json!({
        "action": action.to_string(),
        "target": {"namespace": NS, "deployment": "checkout"},
        "reason": "off switch test",
        "execution": "off-switch-test",
    });
    handle_action(state, action, LambdaEvent::new(payload, Context::default())).await
}

const ACTIONS: [Action; 4] = [
    Action::Rollback,
    Action::Pause,
    Action::Resume,
    Action::Restart,
];

fn assert_disabled(outcome: &RemediationOutcome, action: Action, value: &str) {
    assert_eq!(outcome.status, OutcomeStatus::Disabled, "{outcome:?}");
    assert_eq!(outcome.action, action);
    assert_eq!(outcome.target.namespace, NS);
    assert_eq!(outcome.target.deployment.as_deref(), Some("checkout"));
    assert_eq!(outcome.execution.as_deref(), Some("off-switch-test"));
    assert!(outcome.changes.is_empty() && outcome.guard.is_none());
    if value == "off" {
        assert_eq!(
            outcome.message,
            format!("selfheal is switched off (SSM parameter {PARAMETER} = off); nothing was done")
        );
    } else {
        assert!(
            outcome.message.contains(PARAMETER)
                && outcome.message.contains(value)
                && outcome.message.contains("counts as off"),
            "{}",
            outcome.message
        );
    }
    let wire = serde_json::to_value(outcome).unwrap();
    assert_eq!(wire["status"], "disabled", "{wire}");
}

/// No request reached the API server and the Deployment is the one before.
fn assert_untouched(cluster: &Cluster, before: &Value) {
    assert_eq!(cluster.log(), Vec::<String>::new(), "requests were sent");
    let after = cluster.deployment("checkout");
    assert_eq!(
        after["metadata"]["resourceVersion"], before["metadata"]["resourceVersion"],
        "the Deployment was written"
    );
    assert_eq!(after, *before);
    assert_eq!(cluster.image("checkout", "api"), API_2);
}

#[tokio::test]
async fn switched_on_the_action_functions_act() {
    let Some((_aws, cluster, state)) = switched("switched_on_the_action_functions_act", "on").await
    else {
        return;
    };
    let outcome = invoke(&state, Action::Rollback).await.unwrap();
    assert_eq!(outcome.status, OutcomeStatus::Applied, "{outcome:?}");
    assert_eq!(cluster.image("checkout", "api"), API_1);
    assert_eq!(cluster.image("checkout", "envoy"), ENVOY);
}

#[tokio::test]
async fn switched_off_no_action_function_sends_a_request() {
    let Some((_aws, cluster, state)) =
        switched("switched_off_no_action_function_sends_a_request", "off").await
    else {
        return;
    };
    let before = cluster.deployment("checkout");
    for action in ACTIONS {
        let outcome = invoke(&state, action).await.unwrap();
        assert_disabled(&outcome, action, "off");
    }
    assert_untouched(&cluster, &before);

    // verify keeps working (an execution in flight may finish its check):
    // it reads, and writes nothing.
    let out = handle_verify(
        &state,
        LambdaEvent::new(
            json!({"target": {"namespace": NS, "deployment": "checkout"}}),
            Context::default(),
        ),
    )
    .await
    .unwrap();
    assert_eq!(out.status.state, RolloutState::Done, "{out:?}");
    let requests = cluster.server.requests();
    assert!(!requests.is_empty(), "verify read nothing");
    assert!(
        requests.iter().all(|r| r.method == "GET"),
        "verify wrote: {:?}",
        cluster.log()
    );
    assert_eq!(
        cluster.deployment("checkout")["metadata"]["resourceVersion"],
        before["metadata"]["resourceVersion"]
    );
}

#[tokio::test]
async fn an_unrecognised_value_counts_as_off() {
    let Some((_aws, cluster, state)) = switched("an_unrecognised_value_counts_as_off", "ON").await
    else {
        return;
    };
    let before = cluster.deployment("checkout");
    let outcome = invoke(&state, Action::Rollback).await.unwrap();
    assert_disabled(&outcome, Action::Rollback, "\"ON\"");
    assert_untouched(&cluster, &before);
}

#[tokio::test]
async fn a_flip_reaches_a_warm_function_after_the_cache_period() {
    let Some((aws, cluster, state)) = switched(
        "a_flip_reaches_a_warm_function_after_the_cache_period",
        "off",
    )
    .await
    else {
        return;
    };
    let before = cluster.deployment("checkout");
    assert_disabled(
        &invoke(&state, Action::Rollback).await.unwrap(),
        Action::Rollback,
        "off",
    );

    // off → on: the cached `off` holds until the period ends.
    aws.set("on").await;
    assert_disabled(
        &invoke(&state, Action::Rollback).await.unwrap(),
        Action::Rollback,
        "off",
    );
    assert_untouched(&cluster, &before);
    tokio::time::sleep(TTL + Duration::from_millis(50)).await;
    let outcome = invoke(&state, Action::Rollback).await.unwrap();
    assert_eq!(outcome.status, OutcomeStatus::Applied, "{outcome:?}");
    assert_eq!(cluster.image("checkout", "api"), API_1);

    // on → off: the same, the other way.
    let outcome = invoke(&state, Action::Restart).await.unwrap();
    assert_eq!(outcome.status, OutcomeStatus::Applied, "{outcome:?}");
    aws.set("off").await;
    tokio::time::sleep(TTL + Duration::from_millis(50)).await;
    cluster.server.clear_requests();
    let before = cluster.deployment("checkout");
    let outcome = invoke(&state, Action::Restart).await.unwrap();
    assert_disabled(&outcome, Action::Restart, "off");
    assert_eq!(cluster.log(), Vec::<String>::new());
    assert_eq!(
        cluster.deployment("checkout")["metadata"]["resourceVersion"],
        before["metadata"]["resourceVersion"]
    );
}

#[tokio::test]
async fn an_unreadable_switch_falls_back_or_is_retryable() {
    let Some(aws) = aws("an_unreadable_switch_falls_back_or_is_retryable").await else {
        return;
    };
    let cluster = Cluster::with_bad_rollout(&["checkout"]).await;
    let before = cluster.deployment("checkout");

    // Never read (the parameter does not exist): a retryable error, no request.
    let cold = handler_state(&cluster, &aws).await;
    let err = invoke(&cold, Action::Rollback).await.unwrap_err();
    assert_eq!(err.error_type(), "RetryableAwsError", "{err}");
    assert!(err.is_retryable());
    assert!(err.to_string().contains(PARAMETER), "{err}");
    assert_untouched(&cluster, &before);

    // Read once, then unreadable: the value read last still holds.
    aws.set("off").await;
    let warm = handler_state(&cluster, &aws).await;
    assert_disabled(
        &invoke(&warm, Action::Rollback).await.unwrap(),
        Action::Rollback,
        "off",
    );
    aws.delete().await;
    tokio::time::sleep(TTL + Duration::from_millis(50)).await;
    assert_disabled(
        &invoke(&warm, Action::Rollback).await.unwrap(),
        Action::Rollback,
        "off",
    );
    assert_untouched(&cluster, &before);
    // The process that never read it still refuses to guess.
    let err = invoke(&cold, Action::Pause).await.unwrap_err();
    assert_eq!(err.error_type(), "RetryableAwsError", "{err}");
    assert_untouched(&cluster, &before);
}

// ------------------------------------------------------------------ ingest --

fn alert(deployment: &str, fingerprint: &str, status: &str) -> Value {
    stuck_alert(
        deployment,
        fingerprint,
        status,
        json!({"selfheal": "action=rollback"}),
    )
}

/// (status, body) of the webhook's answer.
async fn post(ingest: &Ingest<SfnStarter>, body: &Value) -> (i64, Value) {
    post_url(ingest, body, SECRET).await
}

/// Three firing alerts and one resolved one.
fn batch() -> Value {
    webhook(vec![
        alert("app-0", "00000000000000a0", "firing"),
        alert("app-1", "00000000000000a1", "firing"),
        alert("app-2", "00000000000000a2", "firing"),
        alert("cart", "00000000000000ff", "resolved"),
    ])
}

#[tokio::test]
async fn ingest_switched_off_starts_nothing_and_answers_200() {
    let Some(aws) = aws("ingest_switched_off_starts_nothing_and_answers_200").await else {
        return;
    };
    let sfn = aws_sdk_sfn::Client::new(&aws.sdk);
    let arn = create_state_machine(&sfn, "remediate-deployment").await;
    let ingest = Ingest::new(
        SfnStarter::new(sfn.clone(), &arn),
        WebhookSecret::from_value(SECRET),
        Defaults::default(),
        8,
    )
    .with_switch(aws.switch());

    // Never read and unreadable: 503 (Alertmanager retries), nothing started.
    let (status, body) = post(&ingest, &batch()).await;
    assert_eq!(status, 503, "{body}");
    let event = batch();
    let received = event.to_string().len();
    let err = ingest.handle(event, received).await.unwrap_err();
    assert_eq!(err.error_type(), "RetryableAwsError", "{err}");
    assert!(executions(&sfn, &arn).await.is_empty());

    aws.set("off").await;
    let (status, summary) = post(&ingest, &batch()).await;
    assert_eq!(status, 200, "{summary}");
    assert_eq!(summary["started"], json!([]), "{summary}");
    assert_eq!(summary["failed"], json!([]), "{summary}");
    let ignored = summary["ignored"].as_array().unwrap();
    assert_eq!(ignored.len(), 4, "{summary}");
    assert_eq!(ignored[0]["reason"]["notFiring"]["state"], "resolved");
    for (entry, fingerprint) in ignored[1..].iter().zip(["a0", "a1", "a2"]) {
        assert_eq!(
            entry["reason"],
            json!({"disabled": {"parameter": PARAMETER, "value": "off"}}),
            "{entry}"
        );
        assert_eq!(entry["name"], "KubeDeploymentRolloutStuck");
        assert!(
            entry["id"].as_str().unwrap().ends_with(fingerprint),
            "{entry}"
        );
        assert_eq!(
            entry["message"],
            format!(
                "selfheal is switched off (SSM parameter {PARAMETER} = off); nothing was started"
            )
        );
    }
    // The same as an event (EventBridge/SNS/direct invoke): a summary, no error.
    let event = batch();
    let received = event.to_string().len();
    let summary = ingest.handle(event, received).await.unwrap();
    assert_eq!(summary["started"], json!([]), "{summary}");
    assert_eq!(summary["ignored"].as_array().unwrap().len(), 4);
    assert!(
        executions(&sfn, &arn).await.is_empty(),
        "an execution started"
    );

    // Back on: the same alerts start once the cached `off` expires.
    aws.set("on").await;
    tokio::time::sleep(TTL + Duration::from_millis(50)).await;
    let (status, summary) = post(&ingest, &batch()).await;
    assert_eq!(status, 200, "{summary}");
    assert_eq!(summary["started"].as_array().unwrap().len(), 3, "{summary}");
    assert_eq!(executions(&sfn, &arn).await.len(), 3);
}
