//! The handlers' one error type and its stable `errorType` names.
//!
//! Lambda reports a handler error as `{"errorType", "errorMessage"}`; a state
//! machine's `Retry`/`Catch` match `errorType` by exact string, so every error
//! maps to a documented, never-changing name (functions/README.md) instead of
//! a Rust type name.

use lambda_runtime::Diagnostic;
use selfheal_core::Action;

/// Names this crate adds to the kube and EKS adapters' own.
pub mod error_types {
    /// Bad input: payload that is not a request, action sent to the wrong function, no cluster.
    pub const NON_RETRYABLE_INVALID_REQUEST: &str = "NonRetryableInvalidRequest";
    /// The function's own environment is wrong; fix the deployment, not the request.
    pub const NON_RETRYABLE_CONFIG: &str = "NonRetryableConfig";
}

/// Every `errorType` a selfheal function can return, for documentation and
/// tests (the union of this crate's, the kube adapter's and the EKS adapter's).
pub const DOCUMENTED_ERROR_TYPES: &[&str] = &[
    "NonRetryableInvalidRequest",
    "NonRetryableConfig",
    "NonRetryableNotFound",
    "NonRetryableForbidden",
    "NonRetryableInvalidObject",
    "RetryableApiError",
    "RetryableConflict",
    "NonRetryableInvalidInput",
    "NonRetryableAuthConfig",
    "NonRetryableAccessDenied",
    "NonRetryableClusterNotFound",
    "RetryableAwsError",
];

/// Why an invocation (or the function's start-up) failed.
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    /// The payload is not a valid request for this function.
    #[error("invalid request: {reason}")]
    InvalidRequest { reason: String },

    /// The payload did not decode into the expected shape.
    #[error("malformed request: {source}")]
    MalformedRequest {
        #[source]
        source: serde_json::Error,
    },

    /// The request parsed but failed the contract's own checks.
    #[error("{source}")]
    Request {
        #[source]
        source: selfheal_core::Error,
    },

    /// A request for another action reached this function (a state machine
    /// wiring mistake: retrying cannot help).
    #[error("this function performs `{expected}`, but the request asks for `{got}`")]
    ActionMismatch { expected: Action, got: Action },

    /// An environment variable holds an unusable value.
    #[error("configuration {variable}: {reason}")]
    Config {
        variable: &'static str,
        reason: String,
    },

    /// A SELFHEAL_* policy variable holds an unusable value.
    #[error("policy configuration: {source}")]
    Policy {
        #[source]
        source: selfheal_core::Error,
    },

    /// The Kubernetes API call failed (classified by the kube adapter).
    #[error("{source}")]
    Kube {
        #[source]
        source: selfheal_kube::Error,
    },

    /// Getting EKS credentials or the cluster endpoint failed.
    #[error("{source}")]
    Eks {
        #[source]
        source: selfheal_eks::Error,
    },
}

impl HandlerError {
    /// Stable name for Lambda's `errorType` and Step Functions `ErrorEquals`.
    pub fn error_type(&self) -> &'static str {
        match self {
            HandlerError::InvalidRequest { .. }
            | HandlerError::MalformedRequest { .. }
            | HandlerError::Request { .. }
            | HandlerError::ActionMismatch { .. } => error_types::NON_RETRYABLE_INVALID_REQUEST,
            HandlerError::Config { .. } | HandlerError::Policy { .. } => {
                error_types::NON_RETRYABLE_CONFIG
            }
            HandlerError::Kube { source } => source.error_type(),
            HandlerError::Eks { source } => source.error_type(),
        }
    }

    /// Whether the same request can succeed later (what a `Retry` should cover).
    pub fn is_retryable(&self) -> bool {
        self.error_type().starts_with("Retryable")
    }
}

impl From<selfheal_kube::Error> for HandlerError {
    fn from(source: selfheal_kube::Error) -> Self {
        HandlerError::Kube { source }
    }
}

impl From<selfheal_eks::Error> for HandlerError {
    fn from(source: selfheal_eks::Error) -> Self {
        HandlerError::Eks { source }
    }
}

impl From<HandlerError> for Diagnostic {
    fn from(error: HandlerError) -> Diagnostic {
        Diagnostic {
            error_type: error.error_type().to_owned(),
            error_message: error.to_string(),
        }
    }
}
