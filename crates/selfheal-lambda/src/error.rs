//! The handlers' one error type and its stable `errorType` names.
//!
//! Lambda reports a handler error as `{"errorType", "errorMessage"}`; a state
//! machine's `Retry`/`Catch` match `errorType` by exact string, so every error
//! maps to a documented, never-changing name (functions/README.md) instead of
//! a Rust type name.

use selfheal_core::{Action, ErrorType};
use selfheal_runtime::Refusal;

/// Why an invocation (or the function's start-up) failed.
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    /// The payload is not a valid request for this function.
    #[error("invalid request: {reason}")]
    InvalidRequest { reason: String },

    /// The payload did not decode into the expected shape (the message names the field).
    #[error("malformed request: {source}")]
    MalformedRequest {
        #[source]
        source: selfheal_core::Malformed,
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

    /// The request names a cluster other than the one whose API server
    /// `SELFHEAL_CLUSTER_ENDPOINT` is (a fleet request, a typo). Found before
    /// any call: a token signed for `requested` would only earn a 401 there.
    #[error(
        "cluster {requested} is not served by this function: SELFHEAL_CLUSTER_ENDPOINT is the API server of cluster {configured} (SELFHEAL_DEFAULT_CLUSTER), the only cluster it serves; unset SELFHEAL_CLUSTER_ENDPOINT to reach other clusters through eks:DescribeCluster"
    )]
    ClusterNotServed {
        requested: String,
        configured: String,
    },

    /// The off switch could not be read and was never read before: nothing
    /// is done, the state machine retries (`RetryableAwsError`).
    #[error("{source}")]
    Switch {
        #[source]
        source: selfheal_aws::Error,
    },

    /// The function's start-up failed (configuration, kubeconfig): every
    /// invocation answers with that error's `errorType` and message
    /// ([`selfheal_runtime::Startup`]).
    #[error("{message}")]
    Init {
        error_type: ErrorType,
        message: String,
    },
}

impl HandlerError {
    /// Stable name for Lambda's `errorType` and Step Functions `ErrorEquals`.
    pub fn error_type(&self) -> &'static str {
        match self {
            HandlerError::InvalidRequest { .. }
            | HandlerError::MalformedRequest { .. }
            | HandlerError::Request { .. }
            | HandlerError::ActionMismatch { .. } => ErrorType::NonRetryableInvalidRequest,
            HandlerError::Config { .. } | HandlerError::Policy { .. } => {
                ErrorType::NonRetryableConfig
            }
            HandlerError::Kube { source } => return source.error_type(),
            HandlerError::Eks { source } => return source.error_type(),
            HandlerError::Switch { source } => return source.error_type(),
            HandlerError::ClusterNotServed { .. } => ErrorType::NonRetryableClusterNotFound,
            HandlerError::Init { error_type, .. } => *error_type,
        }
        .as_str()
    }

    /// Whether the same request can succeed later (what a `Retry` should cover).
    pub fn is_retryable(&self) -> bool {
        ErrorType::name_is_retryable(self.error_type())
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

impl From<selfheal_aws::Error> for HandlerError {
    fn from(source: selfheal_aws::Error) -> Self {
        HandlerError::Switch { source }
    }
}

/// An invocation [`selfheal_runtime::Startup::admit`] refused: the start-up
/// error as [`HandlerError::Init`], a body that was not JSON as
/// [`HandlerError::InvalidRequest`].
impl From<Refusal> for HandlerError {
    fn from(refusal: Refusal) -> Self {
        match refusal {
            Refusal::Startup(failure) => HandlerError::Init {
                // Every name a selfheal error carries is an ErrorType's;
                // NonRetryableConfig, the class of start-up errors, stands
                // in for one that is not.
                error_type: ErrorType::from_name(&failure.error_type)
                    .unwrap_or(ErrorType::NonRetryableConfig),
                message: failure.error_message,
            },
            Refusal::NotJson(not_json) => HandlerError::InvalidRequest {
                reason: not_json.to_string(),
            },
        }
    }
}

selfheal_runtime::diagnostic_from!(HandlerError);

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests;
