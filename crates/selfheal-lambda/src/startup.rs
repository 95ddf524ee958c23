//! The five Kubernetes functions on selfheal-runtime's start-up handling
//! ([`selfheal_runtime::Startup`]): the state is an [`AppState`] built from
//! the environment once per process; a failed start-up still runs the loop
//! and every invocation answers its error. Each invocation is admitted by
//! [`selfheal_runtime::Startup::admit`] (the start-up error first, then a
//! body that was not JSON), served by the handler, and counted in one metric
//! record, refusals included.

use std::io::Write;
use std::time::Instant;

use jiff::Timestamp;
use lambda_runtime::LambdaEvent;
use selfheal_core::{Action, RemediationOutcome};
use selfheal_runtime::write_metrics;
use serde_json::Value;

use crate::error::HandlerError;
use crate::handler::{VerifyOutput, handle_action, handle_verify};
use crate::metrics;
use crate::state::AppState;

/// A Kubernetes function's per-process state, or its start-up error.
pub type Startup = selfheal_runtime::Startup<AppState>;

/// Build the per-process state from the environment. Success is logged
/// with the configuration (`selfheal function initialised`); a failure is
/// logged and kept by [`Startup::new`].
pub async fn init_state(function: &str) -> Startup {
    let result = AppState::from_env().await;
    if let Ok(state) = &result {
        tracing::info!(
            function,
            pid = std::process::id(),
            config = ?state.config(),
            "selfheal function initialised"
        );
    }
    Startup::new(function, result)
}

/// One invocation of an action function: [`handle_action`] over the state
/// `startup` admits, else its refusal; the metric record goes to `out`.
pub async fn invoke_action<W: Write>(
    startup: &Startup,
    expected: Action,
    event: LambdaEvent<Value>,
    out: &mut W,
) -> Result<RemediationOutcome, HandlerError> {
    let started = Instant::now();
    let result = match startup.admit(&event.payload) {
        Ok(state) => handle_action(state, expected, event).await,
        Err(refusal) => Err(HandlerError::from(refusal)),
    };
    let record = metrics::action_record(expected, &result, started.elapsed(), Timestamp::now());
    write_metrics(out, record.to_line().map(|line| vec![line]));
    result
}

/// One invocation of `verify`: [`handle_verify`] over the state `startup`
/// admits, else its refusal; the metric record goes to `out`.
pub async fn invoke_verify<W: Write>(
    startup: &Startup,
    event: LambdaEvent<Value>,
    out: &mut W,
) -> Result<VerifyOutput, HandlerError> {
    let started = Instant::now();
    let result = match startup.admit(&event.payload) {
        Ok(state) => handle_verify(state, event).await,
        Err(refusal) => Err(HandlerError::from(refusal)),
    };
    let record = metrics::verify_record(&result, started.elapsed(), Timestamp::now());
    write_metrics(out, record.to_line().map(|line| vec![line]));
    result
}
