//! Start-up that cannot take the function down.
//!
//! If `main` returned the start-up error, the process would exit before the
//! runtime loop starts: Lambda then reports a runtime exit error
//! (`Runtime.ExitError`), not our `errorType`, and a state machine's
//! `Retry`/`Catch` on `NonRetryableConfig` never sees it. [`Startup`] keeps
//! either the state or the start-up error; the runtime starts in both cases,
//! and with a failed start-up every invocation answers that error's
//! `errorType` and message ([`HandlerError::Init`]).

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

/// The per-process state, or why it could not be built.
#[derive(Debug)]
pub struct Startup {
    state: Result<AppState, InitFailure>,
}

/// A failed start-up, kept as what every invocation will answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitFailure {
    /// The start-up error's `errorType` (e.g. `NonRetryableConfig`).
    pub error_type: &'static str,
    /// The start-up error's message (names the variable at fault).
    pub message: String,
}

impl From<&HandlerError> for InitFailure {
    fn from(error: &HandlerError) -> Self {
        InitFailure {
            error_type: error.error_type(),
            message: error.to_string(),
        }
    }
}

impl From<Result<AppState, HandlerError>> for Startup {
    fn from(result: Result<AppState, HandlerError>) -> Self {
        Startup {
            state: result.map_err(|error| InitFailure::from(&error)),
        }
    }
}

impl Startup {
    /// The state, or the start-up error as this invocation's error.
    pub fn state(&self) -> Result<&AppState, HandlerError> {
        self.state.as_ref().map_err(|failure| HandlerError::Init {
            error_type: failure.error_type,
            message: failure.message.clone(),
        })
    }

    /// Why start-up failed, if it did.
    pub fn failure(&self) -> Option<&InitFailure> {
        self.state.as_ref().err()
    }

    /// [`handle_action`] over the state; the start-up error without one.
    /// Writes the invocation's metric record to stdout.
    pub async fn handle_action(
        &self,
        expected: Action,
        event: LambdaEvent<Value>,
    ) -> Result<RemediationOutcome, HandlerError> {
        self.handle_action_to(expected, event, &mut std::io::stdout())
            .await
    }

    /// [`Startup::handle_action`], writing the metric record to `out`.
    pub async fn handle_action_to<W: Write>(
        &self,
        expected: Action,
        event: LambdaEvent<Value>,
        out: &mut W,
    ) -> Result<RemediationOutcome, HandlerError> {
        let started = Instant::now();
        let result = match self.state() {
            Ok(state) => handle_action(state, expected, event).await,
            Err(error) => Err(error),
        };
        let record = metrics::action_record(expected, &result, started.elapsed(), Timestamp::now());
        write_metrics(out, record.to_line().map(|line| vec![line]));
        result
    }

    /// [`handle_verify`] over the state; the start-up error without one.
    /// Writes the invocation's metric record to stdout.
    pub async fn handle_verify(
        &self,
        event: LambdaEvent<Value>,
    ) -> Result<VerifyOutput, HandlerError> {
        self.handle_verify_to(event, &mut std::io::stdout()).await
    }

    /// [`Startup::handle_verify`], writing the metric record to `out`.
    pub async fn handle_verify_to<W: Write>(
        &self,
        event: LambdaEvent<Value>,
        out: &mut W,
    ) -> Result<VerifyOutput, HandlerError> {
        let started = Instant::now();
        let result = match self.state() {
            Ok(state) => handle_verify(state, event).await,
            Err(error) => Err(error),
        };
        let record = metrics::verify_record(&result, started.elapsed(), Timestamp::now());
        write_metrics(out, record.to_line().map(|line| vec![line]));
        result
    }
}
