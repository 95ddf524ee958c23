//! The Lambda plumbing every selfheal function (`functions/*`) shares, with
//! no kube or AWS SDK crate behind it, so `ingest`, `notify` and `approve`
//! use it without linking the Kubernetes stack.
//!
//! A function's `main` does three things, in this order (the shape of
//! aws-lambda-rust-runtime's `basic-shared-resource`): [`init_logging`],
//! build its per-process state once, then the runtime loop ([`run`], or
//! [`serve`] over a [`Startup`]). The loop is `lambda_runtime::run`'s own
//! composition (`Runtime::new(handler).layer(TracingLayer::new())`) plus
//! [`RejectNonJson`], so even a body that is not JSON gets a typed
//! `errorType` instead of a Rust type name.
//!
//! A failed start-up does not end the process: if `main` returned the error,
//! the process would exit before the loop starts, Lambda would report a
//! runtime exit error (`Runtime.ExitError`) and no state machine
//! `Retry`/`Catch` on `NonRetryableConfig` would see it. [`Startup`] keeps
//! either the state or the start-up error; the loop starts in both cases,
//! and with a failed start-up every invocation answers that error.
//!
//! [`Startup::admit`] is the one check every invocation of every function
//! passes before its handler: the start-up error first, then a body that was
//! not JSON. [`serve`] applies it; the five Kubernetes functions
//! (`selfheal-lambda`) call it from their own handler, which also counts a
//! refused invocation in its metric record.

use std::fmt::Debug;
use std::future::Future;

use lambda_runtime::layers::TracingLayer;
use lambda_runtime::{LambdaEvent, Runtime, service_fn};
use serde::Serialize;
use serde_json::Value;

pub mod payload;

pub use lambda_runtime::{Diagnostic, Error};
pub use payload::{NOT_JSON_MARKER, NotJson, RejectNonJson, not_json, received_bytes};

/// `impl From<$error> for Diagnostic`: the error's stable `error_type()` as
/// Lambda's `errorType` and its message as `errorMessage`, the answer every
/// selfheal error enum gives. A macro because the orphan rule forbids one
/// blanket impl of a foreign trait for a foreign type.
#[macro_export]
macro_rules! diagnostic_from {
    ($error:ty) => {
        impl ::core::convert::From<$error> for $crate::Diagnostic {
            fn from(error: $error) -> Self {
                $crate::Diagnostic {
                    error_type: error.error_type().to_owned(),
                    error_message: error.to_string(),
                }
            }
        }
    };
}

/// Logging as Lambda's advanced logging controls ask: `AWS_LAMBDA_LOG_FORMAT`
/// (`JSON` or text) and `AWS_LAMBDA_LOG_LEVEL`, else `RUST_LOG`, else INFO.
///
/// Call once, first thing in `main` (it installs the global subscriber).
pub fn init_logging() {
    lambda_runtime::tracing::init_default_subscriber();
}

/// The runtime loop over `handler`: `lambda_runtime::run` plus
/// [`RejectNonJson`]. A handler that reads the payload as JSON sees the
/// marker object for a non-JSON body ([`not_json`] names it).
pub async fn run<F, Fut, R, E>(handler: F) -> Result<(), Error>
where
    F: Fn(LambdaEvent<Value>) -> Fut,
    Fut: Future<Output = Result<R, E>>,
    R: Serialize,
    E: Into<Diagnostic> + Debug,
{
    // Each invocation's future is boxed: the runtime's nested futures over a
    // handler as deep as ingest's or verify's would otherwise take the
    // layout computation of `main` past rustc's query depth limit.
    Runtime::new(service_fn(move |event| Box::pin(handler(event))))
        .layer(RejectNonJson)
        .layer(TracingLayer::new())
        .run()
        .await
}

/// Write the invocation's metric records (selfheal-metrics' EMF lines) to
/// `out`, one line each: on Lambda, stdout, where CloudWatch Logs extracts
/// the metrics. A record that cannot be written is logged, never an
/// invocation error.
pub fn write_metrics<W: std::io::Write>(
    out: &mut W,
    lines: Result<Vec<String>, serde_json::Error>,
) {
    let result = lines.map_err(std::io::Error::other).and_then(|lines| {
        lines
            .iter()
            .try_for_each(|line| writeln!(out, "{line}"))
            .and_then(|()| out.flush())
    });
    if let Err(error) = result {
        tracing::warn!(error = %error, "metrics record not written");
    }
}

/// The per-process state, or the start-up error every invocation answers.
#[derive(Debug)]
pub struct Startup<S> {
    state: Result<S, Diagnostic>,
}

impl<S> Startup<S> {
    /// Keep `result`; a failure is logged once, as `<function>
    /// initialisation failed` with its `errorType` and message.
    pub fn new<E: Into<Diagnostic>>(function: &str, result: Result<S, E>) -> Self {
        let state = result.map_err(|error| {
            let failure: Diagnostic = error.into();
            tracing::error!(
                function,
                error_type = %failure.error_type,
                error = %failure.error_message,
                "{function} initialisation failed"
            );
            failure
        });
        Startup { state }
    }

    /// The state, or the start-up error as this invocation's error.
    pub fn state(&self) -> Result<&S, Diagnostic> {
        self.state.as_ref().map_err(Clone::clone)
    }

    /// The start-up error, if start-up failed.
    pub fn failure(&self) -> Option<&Diagnostic> {
        self.state.as_ref().err()
    }

    /// The state to serve `payload` with, or why this invocation is answered
    /// without its handler: the start-up error first, whatever the payload,
    /// then a body that was not JSON ([`RejectNonJson`]'s marker).
    pub fn admit(&self, payload: &Value) -> Result<&S, Refusal> {
        let state = self.state().map_err(Refusal::Startup)?;
        match not_json(payload) {
            Some(not_json) => Err(Refusal::NotJson(not_json)),
            None => Ok(state),
        }
    }
}

/// Why [`Startup::admit`] answers an invocation without its handler.
#[derive(Debug, Clone)]
pub enum Refusal {
    /// Start-up failed: the invocation answers the start-up error.
    Startup(Diagnostic),
    /// The body was not JSON: `NonRetryableInvalidRequest`.
    NotJson(NotJson),
}

impl From<Refusal> for Diagnostic {
    fn from(refusal: Refusal) -> Self {
        match refusal {
            Refusal::Startup(failure) => failure,
            Refusal::NotJson(not_json) => not_json.into(),
        }
    }
}

/// [`run`] over `startup`'s state: each invocation answers what
/// [`Startup::admit`] refuses (the start-up error, else
/// `NonRetryableInvalidRequest` for a body that is not JSON), else what
/// `handler` answers.
pub async fn serve<'a, S, F, Fut, R, E>(startup: &'a Startup<S>, handler: F) -> Result<(), Error>
where
    F: Fn(&'a S, LambdaEvent<Value>) -> Fut,
    Fut: Future<Output = Result<R, E>>,
    R: Serialize,
    E: Into<Diagnostic>,
{
    let handler = &handler;
    run(move |event: LambdaEvent<Value>| async move {
        let state = startup.admit(&event.payload).map_err(Diagnostic::from)?;
        handler(state, event).await.map_err(Into::into)
    })
    .await
}

/// [`serve`] for a handler that also takes the size in bytes of the body
/// Lambda delivered ([`received_bytes`]), for a limit on what was received
/// rather than on what it parsed into.
pub async fn serve_measured<'a, S, F, Fut, R, E>(
    startup: &'a Startup<S>,
    handler: F,
) -> Result<(), Error>
where
    F: Fn(&'a S, LambdaEvent<Value>, usize) -> Fut,
    Fut: Future<Output = Result<R, E>>,
    R: Serialize,
    E: Into<Diagnostic>,
{
    let handler = &handler;
    serve(startup, move |state, event| async move {
        let received = received_bytes().ok_or_else(unmeasured)?;
        handler(state, event, received).await.map_err(Into::into)
    })
    .await
}

/// The answer for an invocation without a measured body. [`run`] puts
/// [`RejectNonJson`] in front of every handler, so only a function built
/// without it gets here: a fault of the deployment, not of the request.
fn unmeasured() -> Diagnostic {
    Diagnostic {
        error_type: selfheal_contract::ErrorType::NonRetryableConfig
            .as_str()
            .to_owned(),
        error_message:
            "the invocation's body was not measured: RejectNonJson is not in front of the handler"
                .to_owned(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Broken;

    impl From<Broken> for Diagnostic {
        fn from(_: Broken) -> Self {
            Diagnostic {
                error_type: selfheal_contract::ErrorType::NonRetryableConfig
                    .as_str()
                    .to_owned(),
                error_message: "configuration SELFHEAL_X: missing".to_owned(),
            }
        }
    }

    #[test]
    fn a_failed_startup_is_kept_as_every_invocations_error() {
        let startup: Startup<u8> = Startup::new("test", Err(Broken));
        let error = startup.state().unwrap_err();
        assert_eq!(error.error_type, "NonRetryableConfig");
        assert!(error.error_message.contains("SELFHEAL_X"));
        assert_eq!(startup.failure(), Some(&error));

        let started: Startup<u8> = Startup::new("test", Ok::<_, Broken>(7));
        assert_eq!(started.state().unwrap(), &7);
        assert!(started.failure().is_none());
    }

    /// The start-up error wins over a body that was not JSON; a started
    /// function refuses only the latter.
    #[test]
    fn admit_answers_the_startup_error_before_a_non_json_body() {
        let not_json = serde_json::json!({ NOT_JSON_MARKER: "EOF" });
        let request = serde_json::json!({ "action": "pause" });
        let failed: Startup<u8> = Startup::new("test", Err(Broken));
        for payload in [&request, &not_json] {
            let refusal = failed.admit(payload).unwrap_err();
            assert!(matches!(refusal, Refusal::Startup(_)), "{refusal:?}");
            assert_eq!(Diagnostic::from(refusal).error_type, "NonRetryableConfig");
        }

        let started: Startup<u8> = Startup::new("test", Ok::<_, Broken>(7));
        assert_eq!(started.admit(&request).unwrap(), &7);
        let refusal = started.admit(&not_json).unwrap_err();
        assert!(matches!(refusal, Refusal::NotJson(_)), "{refusal:?}");
        let answer = Diagnostic::from(refusal);
        assert_eq!(answer.error_type, "NonRetryableInvalidRequest");
        assert_eq!(
            answer.error_message,
            "invalid request: payload is not JSON: EOF"
        );
    }
}
