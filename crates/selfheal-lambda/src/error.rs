//! The handlers' one error type and its stable `errorType` names.
//!
//! Lambda reports a handler error as `{"errorType", "errorMessage"}`; a state
//! machine's `Retry`/`Catch` match `errorType` by exact string, so every error
//! maps to a documented, never-changing name (functions/README.md) instead of
//! a Rust type name.

use selfheal_core::{Action, ErrorType};

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
    /// ([`crate::Startup`]).
    #[error("{message}")]
    Init {
        error_type: &'static str,
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
            HandlerError::Init { error_type, .. } => return error_type,
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

selfheal_runtime::diagnostic_from!(HandlerError);

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use kube::core::Status;
    use lambda_runtime::Diagnostic;

    use super::*;

    fn api(code: u16, reason: &str) -> kube::Error {
        kube::Error::Api(Status::failure("m", reason).with_code(code).boxed())
    }

    fn kube_error(code: u16) -> selfheal_kube::Error {
        let (namespace, name) = ("shop".to_owned(), "checkout".to_owned());
        let source = Box::new(api(code, "Reason"));
        let request = |verb| selfheal_kube::error::Request {
            verb,
            kind: "Deployment",
            namespace: namespace.clone(),
            name: name.clone(),
        };
        match code {
            404 => selfheal_kube::Error::NotFound {
                kind: "Deployment",
                namespace,
                name,
                source,
            },
            403 => selfheal_kube::Error::Forbidden {
                request: request("get"),
                message: "forbidden".into(),
                source,
            },
            401 => selfheal_kube::Error::Unauthorized {
                message: "Unauthorized".into(),
                source,
            },
            409 => selfheal_kube::Error::ConflictBudgetExhausted {
                namespace,
                name,
                attempts: 4,
                last_code: 409,
            },
            400 => selfheal_kube::Error::Rejected {
                code,
                request: request("patch"),
                message: "bad".into(),
                source,
            },
            _ => selfheal_kube::Error::ServerError {
                code,
                request: request("get"),
                message: "boom".into(),
                source,
            },
        }
    }

    fn diagnostic(e: HandlerError) -> Diagnostic {
        Diagnostic::from(e)
    }

    #[test]
    fn kube_errors_keep_their_stable_names() {
        let cases = [
            (404, "NonRetryableNotFound", false),
            (403, "NonRetryableForbidden", false),
            (401, "NonRetryableForbidden", false),
            (409, "RetryableConflict", true),
            (400, "NonRetryableInvalidRequest", false),
            (500, "RetryableApiError", true),
            (503, "RetryableApiError", true),
            (429, "RetryableApiError", true),
        ];
        for (code, name, retryable) in cases {
            let e = HandlerError::from(kube_error(code));
            assert_eq!(e.is_retryable(), retryable, "{code}");
            let message = e.to_string();
            let d = diagnostic(e);
            assert_eq!(d.error_type, name, "{code}");
            assert_eq!(d.error_message, message);
            assert!(ErrorType::name_is_from_kube_functions(&d.error_type));
        }
        let d = diagnostic(kube_error(404).into());
        assert_eq!(d.error_message, "Deployment shop/checkout not found");
    }

    #[test]
    fn invalid_object_and_kube_config_errors() {
        let e = HandlerError::from(selfheal_kube::Error::PodNotOwnedByDeployment {
            namespace: "shop".into(),
            pod: "web-0".into(),
            found: "StatefulSet/web".into(),
        });
        assert_eq!(diagnostic(e).error_type, "NonRetryableInvalidObject");
        let e = HandlerError::from(selfheal_kube::Error::Config {
            reason: "bad kubeconfig".into(),
            source: None,
        });
        assert_eq!(diagnostic(e).error_type, "NonRetryableConfig");
    }

    #[test]
    fn eks_errors_keep_their_stable_names() {
        let cases = [
            selfheal_eks::Error::MissingRegion,
            selfheal_eks::Error::InvalidInput("empty cluster name".into()),
            selfheal_eks::Error::ClusterIncomplete {
                cluster: "prod".into(),
                missing: "endpoint",
            },
            selfheal_eks::Error::ClusterNotConfigured {
                requested: "a".into(),
                configured: "b".into(),
            },
        ];
        for e in cases {
            let name = e.error_type();
            let message = e.to_string();
            let e = HandlerError::from(e);
            assert_eq!(e.is_retryable(), name.starts_with("Retryable"));
            let d = diagnostic(e);
            assert_eq!(d.error_type, name);
            assert_eq!(d.error_message, message);
            assert!(
                ErrorType::name_is_from_kube_functions(name),
                "{name} undocumented"
            );
        }
        let d = diagnostic(selfheal_eks::Error::MissingRegion.into());
        assert_eq!(d.error_type, "NonRetryableAuthConfig");
        let d = diagnostic(
            selfheal_eks::Error::ClusterIncomplete {
                cluster: "prod".into(),
                missing: "endpoint",
            }
            .into(),
        );
        assert_eq!(d.error_type, "RetryableAwsError");
    }

    #[test]
    fn bad_input_is_non_retryable_invalid_request() {
        let malformed =
            selfheal_core::decode_str::<selfheal_core::RemediationRequest>("{}").unwrap_err();
        let cases = [
            HandlerError::InvalidRequest {
                reason: "expected an object".into(),
            },
            HandlerError::MalformedRequest { source: malformed },
            HandlerError::Request {
                source: selfheal_core::Error::InvalidRequest(
                    "target.namespace must not be empty".into(),
                ),
            },
            HandlerError::ActionMismatch {
                expected: Action::Pause,
                got: Action::Rollback,
            },
        ];
        for e in cases {
            assert!(!e.is_retryable());
            let d = diagnostic(e);
            assert_eq!(
                d.error_type, "NonRetryableInvalidRequest",
                "{}",
                d.error_message
            );
        }
        let d = diagnostic(HandlerError::ActionMismatch {
            expected: Action::Pause,
            got: Action::Rollback,
        });
        assert_eq!(
            d.error_message,
            "this function performs `pause`, but the request asks for `rollback`"
        );
    }

    #[test]
    fn an_unreadable_switch_is_retryable_aws_error() {
        let d = diagnostic(HandlerError::from(selfheal_aws::Error::SwitchUnavailable {
            parameter: "/selfheal/prod/switch".into(),
            message: "ThrottlingException".into(),
        }));
        assert_eq!(d.error_type, "RetryableAwsError");
        assert!(
            d.error_message.contains("/selfheal/prod/switch"),
            "{}",
            d.error_message
        );
    }

    #[test]
    fn config_errors_are_non_retryable_config() {
        let d = diagnostic(HandlerError::Config {
            variable: "SELFHEAL_REPLAN_BUDGET",
            reason: "expected a whole number".into(),
        });
        assert_eq!(d.error_type, "NonRetryableConfig");
        assert_eq!(
            d.error_message,
            "configuration SELFHEAL_REPLAN_BUDGET: expected a whole number"
        );
    }

    #[test]
    fn diagnostic_serializes_as_lambda_expects() {
        let d = diagnostic(kube_error(503).into());
        let v = serde_json::to_value(&d).unwrap();
        assert_eq!(v["errorType"], "RetryableApiError");
        assert!(v["errorMessage"].as_str().unwrap().contains("503"));
    }
}
