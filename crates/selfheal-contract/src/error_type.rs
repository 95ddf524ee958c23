//! Every `errorType` a selfheal function can return.
//!
//! Lambda reports a handler error as `{"errorType", "errorMessage"}`, and a
//! state machine's `Retry`/`Catch` match `errorType` by exact string, so the
//! names never change. They live in one enum so a crate cannot invent a name
//! the state machines and docs do not know: each crate's `error_type()` maps
//! its errors onto these variants.

use serde::{Deserialize, Serialize};

/// Declares [`ErrorType`]: the variant's name is its `errorType` string, so
/// `as_str`, serde and [`ErrorType::ALL`] cannot drift apart.
macro_rules! error_types {
    ($( $(#[doc = $doc:literal])* $name:ident { kube: $kube:literal } )*) => {
        /// A stable `errorType` name. `Retryable…` names are worth a state
        /// machine `Retry`; the others fail the same way again.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub enum ErrorType {
            $( $(#[doc = $doc])* $name, )*
        }

        impl ErrorType {
            /// Every name, in declaration order.
            pub const ALL: &'static [ErrorType] = &[$(ErrorType::$name),*];

            /// The name as Lambda's `errorType` and `ErrorEquals` carry it.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(ErrorType::$name => stringify!($name),)*
                }
            }

            /// Returned by the five Kubernetes functions (rollback, pause,
            /// resume, restart, verify): the names functions/README.md
            /// documents in its `errorType` table.
            pub const fn from_kube_functions(self) -> bool {
                match self {
                    $(ErrorType::$name => $kube,)*
                }
            }
        }
    };
}

error_types! {
    /// Bad input: not a request, the action of another function, no
    /// cluster, or a request the API server rejected as invalid.
    NonRetryableInvalidRequest { kube: true }
    /// The function's own environment is wrong; fix the deployment, not the request.
    NonRetryableConfig { kube: true }
    /// The Deployment (or the pod named) does not exist.
    NonRetryableNotFound { kube: true }
    /// The API server rejected the function's identity (401) or RBAC denies the call (403).
    NonRetryableForbidden { kube: true }
    /// A Kubernetes object lacks what every real one has, or a pod's owner is not a Deployment.
    NonRetryableInvalidObject { kube: true }
    /// The Kubernetes API failed or throttled, or did not answer.
    RetryableApiError { kube: true }
    /// The Deployment kept changing between read and patch beyond the re-plan budget.
    RetryableConflict { kube: true }
    /// EKS authentication cannot be set up (region, credentials, CA, endpoint, signing).
    NonRetryableAuthConfig { kube: true }
    /// The role may not call `eks:DescribeCluster` on that cluster.
    NonRetryableAccessDenied { kube: true }
    /// No such EKS cluster, or one the function does not serve.
    NonRetryableClusterNotFound { kube: true }
    /// An AWS call failed in a way the same call can get past later.
    RetryableAwsError { kube: true }
    /// An AWS call failed in a way retrying cannot fix (notify, approve).
    NonRetryableAwsError { kube: false }
    /// An approval would exceed the pending approvals allowed per Deployment.
    NonRetryableTooManyPendingApprovals { kube: false }
    /// ingest: a StartExecution failed in a way that may succeed later.
    RetryableStartExecution { kube: false }
    /// ingest: every failed StartExecution failed for a reason retrying cannot fix.
    NonRetryableStartExecution { kube: false }
    /// ingest: the webhook secret could not be read.
    RetryableSecretUnavailable { kube: false }
    /// ingest: more alerts in one event than `SELFHEAL_MAX_ALERTS_PER_WEBHOOK`.
    EventTooManyAlerts { kube: false }
    /// ingest: an event larger than the size limit, refused before parsing.
    EventTooLarge { kube: false }
    /// ingest: an event that is not JSON.
    EventMalformed { kube: false }
    /// ingest: JSON of none of the accepted shapes.
    EventUnsupported { kube: false }
    /// ingest: a recognised event with a field of the wrong shape.
    EventInvalid { kube: false }
    /// ingest: a manual request that fails the contract's own checks.
    RequestInvalid { kube: false }
    /// ingest: a `SELFHEAL_DEFAULT_*` value that cannot be used.
    ConfigInvalid { kube: false }
}

impl ErrorType {
    /// Whether a state machine's `Retry` may get past it (`Retryable…`).
    pub fn is_retryable(self) -> bool {
        self.as_str().starts_with("Retryable")
    }

    /// The variant named `name`, if any.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|e| e.as_str() == name)
    }

    /// Whether `name` is a `Retryable…` errorType (an error that passes on
    /// another crate's name has only the name at hand).
    pub fn name_is_retryable(name: &str) -> bool {
        Self::from_name(name).is_some_and(Self::is_retryable)
    }

    /// Whether `name` is an errorType the five Kubernetes functions return
    /// ([`ErrorType::from_kube_functions`]).
    pub fn name_is_from_kube_functions(name: &str) -> bool {
        Self::from_name(name).is_some_and(Self::from_kube_functions)
    }
}

impl std::fmt::Display for ErrorType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn serde_names_are_the_as_str_names_and_round_trip() {
        for &e in ErrorType::ALL {
            let json = serde_json::to_value(e).unwrap();
            assert_eq!(json, serde_json::Value::from(e.as_str()));
            assert_eq!(serde_json::from_value::<ErrorType>(json).unwrap(), e);
            assert_eq!(ErrorType::from_name(e.as_str()), Some(e));
            assert_eq!(e.to_string(), e.as_str());
        }
        assert_eq!(ErrorType::from_name("NonRetryable"), None);
    }

    #[test]
    fn names_follow_the_retryable_convention() {
        for &e in ErrorType::ALL {
            let name = e.as_str();
            assert!(
                name.starts_with("Retryable")
                    || name.starts_with("NonRetryable")
                    || name.starts_with("Event")
                    || ["RequestInvalid", "ConfigInvalid"].contains(&name),
                "{name}"
            );
        }
        assert!(ErrorType::RetryableConflict.is_retryable());
        assert!(!ErrorType::NonRetryableConfig.is_retryable());
        assert!(ErrorType::name_is_retryable("RetryableApiError"));
        assert!(!ErrorType::name_is_retryable("RetryableSomethingElse"));
        assert!(ErrorType::name_is_from_kube_functions(
            "NonRetryableNotFound"
        ));
        assert!(!ErrorType::name_is_from_kube_functions("EventTooLarge"));
    }
}
