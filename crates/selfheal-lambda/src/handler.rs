//! The handlers: plain async functions over the shared state, so unit tests
//! call them with `LambdaEvent::new(payload, Context::default())`.
//!
//! Payloads arrive as `serde_json::Value` and are parsed here, not by the
//! runtime: a malformed request then fails with our `NonRetryableInvalidRequest`
//! and a message naming the field, instead of the runtime's type-named error.

use std::future::Future;

use lambda_runtime::LambdaEvent;
use selfheal_aws::{SwitchState, SwitchedOff};
use selfheal_core::{
    Action, OutcomeStatus, RemediationOutcome, RemediationRequest, Target, ValidRequest,
};
use selfheal_kube::Remediator;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::HandlerError;
use crate::state::AppState;
pub use selfheal_core::VerifyOutput;

use crate::verify::{self, PreviousAnswer, WatchBudget};

/// Decode a request from the raw payload and check the contract's rules:
/// the one validation on the request path (the adapter and the planner take
/// the [`ValidRequest`]).
pub fn parse_request(payload: Value) -> Result<ValidRequest, HandlerError> {
    let request: RemediationRequest = decode_payload(payload, "a RemediationRequest JSON object")?;
    ValidRequest::new(request).map_err(|source| HandlerError::Request { source })
}

/// Decode a JSON object payload as `T`; `expected` names it for a payload
/// that is not an object.
fn decode_payload<T: DeserializeOwned>(payload: Value, expected: &str) -> Result<T, HandlerError> {
    if !payload.is_object() {
        return Err(HandlerError::InvalidRequest {
            reason: format!(
                "expected {expected}, got {}",
                selfheal_core::error::json_kind(&payload)
            ),
        });
    }
    selfheal_core::decode(payload).map_err(|source| HandlerError::MalformedRequest { source })
}

/// The Step Functions execution (from the request) or else this invocation's
/// request id, so the audit annotation and the log line point somewhere.
fn execution_id(request: &ValidRequest, context: &lambda_runtime::Context) -> Option<String> {
    request
        .execution
        .clone()
        .filter(|e| !e.is_empty())
        .or_else(|| Some(context.request_id.clone()).filter(|id| !id.is_empty()))
}

/// The `rollback` / `pause` / `resume` / `restart` handler: `expected` is the
/// function's own action; a request for another is refused as bad input.
pub async fn handle_action(
    state: &AppState,
    expected: Action,
    event: LambdaEvent<Value>,
) -> Result<RemediationOutcome, HandlerError> {
    let (payload, context) = event.into_parts();
    let mut request = parse_request(payload)?;
    if request.action != expected {
        return Err(HandlerError::ActionMismatch {
            expected,
            got: request.action,
        });
    }
    request.set_execution(execution_id(&request, &context));
    let cluster = state
        .config()
        .cluster_for(request.target.cluster.as_deref())?;
    request.set_cluster(cluster.clone());

    // The off switch comes before any cluster access: switched off, the
    // function makes no Kubernetes request and no EKS call.
    if let Some(switch) = state.switch() {
        match switch.state().await {
            Ok(SwitchState::On) => {}
            Ok(SwitchState::Off(off)) => {
                let outcome = disabled(&request, &off);
                log_outcome(&request, &outcome);
                return Ok(outcome);
            }
            Err(source) => {
                let error = HandlerError::from(source);
                tracing::warn!(
                    action = %request.action,
                    namespace = %request.target.namespace,
                    execution = request.execution.as_deref(),
                    error_type = error.error_type(),
                    retryable = error.is_retryable(),
                    error = %error,
                    "remediation failed"
                );
                return Err(error);
            }
        }
    }

    let valid = &request;
    let execution = request.execution.clone();
    let result = on_cluster(
        state,
        cluster.as_deref(),
        execution.as_deref(),
        |remediator| async move { Ok(remediator.remediate_valid(valid).await?) },
    )
    .await;
    match result {
        Ok(outcome) => {
            log_outcome(&request, &outcome);
            Ok(outcome)
        }
        Err(error) => {
            tracing::warn!(
                action = %request.action,
                cluster = cluster.as_deref(),
                namespace = %request.target.namespace,
                deployment = request.target.deployment.as_deref(),
                stateful_set = request.target.stateful_set.as_deref(),
                daemon_set = request.target.daemon_set.as_deref(),
                pod = request.target.pod.as_deref(),
                execution = request.execution.as_deref(),
                error_type = error.error_type(),
                retryable = error.is_retryable(),
                error = %error,
                "remediation failed"
            );
            Err(error)
        }
    }
}

/// The outcome of a request that arrived while the switch is off: nothing
/// was read or written.
fn disabled(request: &RemediationRequest, off: &SwitchedOff) -> RemediationOutcome {
    RemediationOutcome {
        status: OutcomeStatus::Disabled,
        action: request.action,
        message: format!("{off}; nothing was done"),
        target: request.target.clone(),
        changes: Vec::new(),
        evidence: Vec::new(),
        revision: None,
        guard: None,
        gitops: None,
        execution: request.execution.clone(),
    }
}

/// The one structured line per outcome (docs/guards.md §4): what was done, to
/// what, for which execution.
fn log_outcome(request: &RemediationRequest, outcome: &RemediationOutcome) {
    let changes = serde_json::to_string(&outcome.changes).unwrap_or_default();
    let status = serde_json::to_value(outcome.status)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    tracing::info!(
        action = %outcome.action,
        status = %status,
        cluster = outcome.target.cluster.as_deref(),
        namespace = %outcome.target.namespace,
        deployment = outcome.target.deployment.as_deref(),
        stateful_set = outcome.target.stateful_set.as_deref(),
        daemon_set = outcome.target.daemon_set.as_deref(),
        pod = outcome.target.pod.as_deref(),
        container = outcome.target.container.as_deref(),
        changes = %changes,
        guard = outcome.guard.map(|g| g.as_str()),
        execution = outcome.execution.as_deref().or(request.execution.as_deref()),
        summary = %outcome.message,
        "remediation outcome"
    );
}

/// `work` with `cluster`'s Remediator. A 401 (the cluster no longer accepts
/// the cached client's token) drops that client and token here, for every
/// handler, so the next invocation signs a fresh one.
async fn on_cluster<T, F, Fut>(
    state: &AppState,
    cluster: Option<&str>,
    execution: Option<&str>,
    work: F,
) -> Result<T, HandlerError>
where
    F: FnOnce(Remediator) -> Fut,
    Fut: Future<Output = Result<T, HandlerError>>,
{
    // Boxed: inline, the EKS and kube client futures nested here take the
    // layout of a function's `main` past rustc's query depth limit.
    let result = Box::pin(async {
        match state.remediator_for(cluster, execution).await {
            Ok(remediator) => work(remediator).await,
            Err(error) => Err(error),
        }
    })
    .await;
    if let Err(HandlerError::Kube {
        source: selfheal_kube::Error::Unauthorized { .. },
    }) = &result
    {
        state.invalidate(cluster).await;
    }
    result
}

/// What `verify` accepts: a request or an outcome (both carry `target`), or a
/// bare `{"target": …}`. Other fields are ignored so the state machine can
/// pass whatever state it holds.
#[derive(Debug, Deserialize)]
struct VerifyInput {
    target: Target,
    /// The state machine's rollout budget; without it, one full window.
    #[serde(default)]
    watch: Option<WatchBudget>,
    /// The previous answer of this loop (`$.verify`, null before the first).
    #[serde(default)]
    previous: Option<PreviousAnswer>,
    /// The Step Functions execution, named in the session of a role assumed
    /// for the cluster (`selfheal-<execution>`), as the actions' are.
    #[serde(default)]
    execution: Option<String>,
}

/// The `verify` handler: `kubectl rollout status` for the target's
/// workload (Deployment, StatefulSet or DaemonSet; a pod's owner), watched
/// until it is done or failed or the window ([`verify::window`]: the budget
/// left, up to 11 minutes) ends.
pub async fn handle_verify(
    state: &AppState,
    event: LambdaEvent<Value>,
) -> Result<VerifyOutput, HandlerError> {
    let VerifyInput {
        mut target,
        watch,
        previous,
        execution,
    } = decode_payload(
        event.payload,
        "an object with `target` (a request or an outcome)",
    )?;
    if target.namespace.trim().is_empty() {
        return Err(HandlerError::InvalidRequest {
            reason: "target.namespace must not be empty".into(),
        });
    }
    let cluster = state.config().cluster_for(target.cluster.as_deref())?;
    target.cluster.clone_from(&cluster);
    let (namespace, workload) = (target.namespace.as_str(), target.workload());
    let window = verify::window(watch.as_ref(), jiff::Timestamp::now());
    let execution = execution.filter(|e| !e.trim().is_empty());
    let (resolved, status) = on_cluster(
        state,
        cluster.as_deref(),
        execution.as_deref(),
        |remediator| async move {
            let workload = workload.ok_or_else(|| HandlerError::InvalidRequest {
                reason: "target needs one of `deployment`, `statefulSet`, `daemonSet` or `pod`"
                    .into(),
            })?;
            let resolved = remediator.resolve(namespace, workload).await?;
            let valid_until = *remediator.client().valid_until();
            let window = verify::within_credentials(window, valid_until, jiff::Timestamp::now());
            let status = remediator
                .watch_status_of(namespace, resolved.kind, &resolved.name, window)
                .await?;
            Ok((resolved, status))
        },
    )
    .await?;
    target.set_workload(resolved.kind, &resolved.name);
    tracing::info!(
        cluster = target.cluster.as_deref(),
        namespace = %target.namespace,
        kind = resolved.kind.as_str(),
        name = %resolved.name,
        state = ?status.state,
        summary = %status.message,
        "rollout status"
    );
    let now = jiff::Timestamp::now();
    let previous = previous.and_then(|p| p.watch);
    Ok(VerifyOutput {
        status,
        target,
        remaining_seconds: watch.map(|b| verify::remaining_seconds(&b, now)),
        watch: watch.map(|b| b.span(previous.as_ref(), now)),
    })
}
