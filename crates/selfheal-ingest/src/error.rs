//! The crate's one error type and its stable `errorType` names.
//!
//! EventBridge and SNS invocations surface these as Lambda errors (so the
//! event is retried or lands in a DLQ, named for what went wrong); the
//! Function URL path turns them into HTTP statuses instead.

use lambda_runtime::Diagnostic;

use crate::summary::Summary;

/// Stable `errorType` names this crate adds to `selfheal_events::Error::error_type`'s.
pub mod error_types {
    /// At least one StartExecution failed in a way that may succeed later
    /// (throttling, execution limit, network, 5xx); re-delivery is safe.
    pub const RETRYABLE_START_EXECUTION: &str = "RetryableStartExecution";
    /// Every failed StartExecution failed for a reason retrying cannot fix
    /// (state machine missing, invalid ARN, access denied).
    pub const NON_RETRYABLE_START_EXECUTION: &str = "NonRetryableStartExecution";
    /// The webhook secret could not be read (SSM / Secrets Manager call failed).
    pub const RETRYABLE_SECRET_UNAVAILABLE: &str = "RetryableSecretUnavailable";
    /// The function's environment is wrong; same name as the other selfheal functions.
    pub const NON_RETRYABLE_CONFIG: &str = "NonRetryableConfig";
    /// A Function URL payload that is not a Function URL request.
    pub const NON_RETRYABLE_INVALID_REQUEST: &str = "NonRetryableInvalidRequest";
    /// The event carries more alerts than `SELFHEAL_MAX_ALERTS_PER_WEBHOOK`;
    /// nothing was started (webhook: 400). Named like `EventTooLarge`.
    pub const EVENT_TOO_MANY_ALERTS: &str = "EventTooManyAlerts";
}

/// Why an invocation (or the function's start-up) failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An environment variable is missing or unusable.
    #[error("configuration {variable}: {reason}")]
    Config {
        variable: &'static str,
        reason: String,
    },

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
            Error::Config { .. } | Error::Defaults { .. } | Error::SecretUnusable { .. } => {
                error_types::NON_RETRYABLE_CONFIG
            }
            Error::Event { source } => source.error_type(),
            Error::TooManyAlerts { .. } => error_types::EVENT_TOO_MANY_ALERTS,
            Error::FunctionUrl { .. } | Error::Encode { .. } => {
                error_types::NON_RETRYABLE_INVALID_REQUEST
            }
            Error::StartFailed { summary } => {
                if summary.failed.iter().any(|f| f.retryable) {
                    error_types::RETRYABLE_START_EXECUTION
                } else {
                    error_types::NON_RETRYABLE_START_EXECUTION
                }
            }
            Error::SecretUnavailable { .. } => error_types::RETRYABLE_SECRET_UNAVAILABLE,
            Error::Switch { source } => source.error_type(),
        }
    }
}

impl From<Error> for Diagnostic {
    fn from(error: Error) -> Diagnostic {
        Diagnostic {
            error_type: error.error_type().to_owned(),
            error_message: error.to_string(),
        }
    }
}
