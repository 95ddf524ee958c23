//! The crate's one error type and its stable `errorType` names.
//!
//! EventBridge and SNS invocations surface these as Lambda errors (so the
//! event is retried or lands in a DLQ, named for what went wrong); the
//! Function URL path turns them into HTTP statuses instead.

use selfheal_contract::ErrorType;

use crate::summary::Summary;

/// Why an invocation (or the function's start-up) failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An environment variable is missing or unusable.
    #[error(transparent)]
    Config(#[from] selfheal_contract::env::Invalid),

    /// `SELFHEAL_DEFAULT_*` holds an unusable value.
    #[error("{source}")]
    Defaults {
        #[source]
        source: selfheal_events::Error,
    },

    /// The event as a whole could not be read (too large, not JSON, unknown shape).
    #[error("{source}")]
    Event {
        #[source]
        source: selfheal_events::Error,
    },

    /// The event carries more alerts than the configured cap; nothing started.
    #[error(
        "event carries {count} alerts; the limit is {limit} ({variable}); nothing was started: \
         set `max_alerts: {limit}` or less in Alertmanager's webhook_config"
    )]
    TooManyAlerts {
        count: usize,
        limit: usize,
        variable: &'static str,
    },

    /// The payload looked like a Function URL request but did not decode as one.
    #[error("invalid Function URL request: {source}")]
    FunctionUrl {
        #[source]
        source: serde_json::Error,
    },

    /// Some StartExecution calls failed; the others succeeded or already existed.
    #[error("{} of {} executions could not be started: {}", summary.failed.len(), summary.requested(), summary.failure_text())]
    StartFailed { summary: Box<Summary> },

    /// The webhook secret could not be fetched.
    #[error("cannot read webhook secret from {store} {id}: {source}")]
    SecretUnavailable {
        store: &'static str,
        id: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },

    /// The webhook secret exists but is empty (or binary that is not UTF-8):
    /// refusing beats accepting `Authorization: Bearer ` with nothing after it.
    #[error("webhook secret {store} {id} {problem}")]
    SecretUnusable {
        store: &'static str,
        id: String,
        problem: &'static str,
    },

    /// The off switch could not be read and was never read before: nothing
    /// was started; re-delivery is safe (`RetryableAwsError`).
    #[error("{source}; nothing was started")]
    Switch {
        #[source]
        source: selfheal_aws::Error,
    },

    /// The response could not be encoded (not expected to happen).
    #[error("cannot encode the response: {source}")]
    Encode {
        #[source]
        source: serde_json::Error,
    },
}

impl Error {
    /// Stable name for Lambda's `errorType`.
    pub fn error_type(&self) -> &'static str {
        match self {
            Error::Config(_) | Error::Defaults { .. } | Error::SecretUnusable { .. } => {
                ErrorType::NonRetryableConfig
            }
            Error::Event { source } => return source.error_type(),
            // Nothing was started (webhook: 400).
            Error::TooManyAlerts { .. } => ErrorType::EventTooManyAlerts,
            Error::FunctionUrl { .. } | Error::Encode { .. } => {
                ErrorType::NonRetryableInvalidRequest
            }
            // Retryable when one start may succeed later (throttling,
            // execution limit, network, 5xx): re-delivery is safe.
            Error::StartFailed { summary } => {
                if summary.failed.iter().any(|f| f.retryable) {
                    ErrorType::RetryableStartExecution
                } else {
                    ErrorType::NonRetryableStartExecution
                }
            }
            Error::SecretUnavailable { .. } => ErrorType::RetryableSecretUnavailable,
            Error::Switch { source } => return source.error_type(),
        }
        .as_str()
    }
}

selfheal_runtime::diagnostic_from!(Error);
