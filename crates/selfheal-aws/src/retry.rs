//! Which AWS SDK errors a later retry can cure: the one classification every
//! selfheal crate uses for its SDK calls (`StartExecution`, SNS, SSM,
//! Secrets Manager, Step Functions callbacks, `DescribeCluster`).
//!
//! The error codes are the SDK's own: `aws-runtime`'s
//! [`THROTTLING_ERRORS`] and [`TRANSIENT_ERRORS`], the lists its standard
//! retry classifier uses, so selfheal retries what the SDK itself would have
//! retried. Two rules are added to them: a code naming throttling
//! (`KMSThrottlingException` from SNS, `KmsThrottlingException` from SSM:
//! services spell KMS throttling their own way and the published list has
//! neither), and the HTTP status, as the SDK's status classifier does: 429 is
//! throttling, a 5xx is the service's fault.

use aws_runtime::retries::classifiers::{THROTTLING_ERRORS, TRANSIENT_ERRORS};
use aws_sdk_ssm::error::{ProvideErrorMetadata, SdkError};
use aws_smithy_runtime_api::http::Response;

/// What kind of failure an SDK error is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// The service throttled the call.
    Throttling,
    /// No usable answer (timeout, connection failure, unparseable response)
    /// or a code the SDK lists as transient.
    Transient,
    /// The service failed (HTTP 5xx).
    ServerError,
    /// The service refused the request itself: the same call fails again.
    Client,
    /// The request could not be built, so it was never sent.
    Construction,
}

impl ErrorClass {
    /// Whether the same call, made later, can succeed.
    pub fn is_retryable(self) -> bool {
        matches!(
            self,
            ErrorClass::Throttling | ErrorClass::Transient | ErrorClass::ServerError
        )
    }
}

/// Classify a service's answer by its error code and HTTP status.
pub fn classify_code(code: Option<&str>, status: Option<u16>) -> ErrorClass {
    let code = code.unwrap_or_default();
    if THROTTLING_ERRORS.contains(&code) || code.contains("Throttl") || status == Some(429) {
        ErrorClass::Throttling
    } else if TRANSIENT_ERRORS.contains(&code) {
        ErrorClass::Transient
    } else if status.is_some_and(|s| s >= 500) {
        ErrorClass::ServerError
    } else {
        ErrorClass::Client
    }
}

/// Classify an SDK error.
pub fn classify<E: ProvideErrorMetadata>(error: &SdkError<E, Response>) -> ErrorClass {
    match error {
        SdkError::ServiceError(context) => {
            classify_code(context.err().code(), Some(context.raw().status().as_u16()))
        }
        SdkError::ConstructionFailure(_) => ErrorClass::Construction,
        // Timeouts, connection failures and unparseable responses: the call
        // may not have reached the service, or its answer was lost.
        _ => ErrorClass::Transient,
    }
}

/// Whether the same call, made later, can succeed.
pub fn is_retryable<E: ProvideErrorMetadata>(error: &SdkError<E, Response>) -> bool {
    classify(error).is_retryable()
}

/// A failed SDK call, named by its operation (`ssm:PutParameter`), with the
/// service's code and message and whether a retry can help.
#[derive(Debug, thiserror::Error)]
#[error("{operation} failed{}: {message}", code.as_deref().map(|c| format!(" ({c})")).unwrap_or_default())]
pub struct AwsCallError {
    pub operation: &'static str,
    pub code: Option<String>,
    pub message: String,
    pub retryable: bool,
    #[source]
    pub source: Box<dyn std::error::Error + Send + Sync>,
}

impl AwsCallError {
    /// `error` from `operation`, classified by [`classify`].
    pub fn new<E>(operation: &'static str, error: SdkError<E, Response>) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        AwsCallError {
            operation,
            code: error.code().map(str::to_owned),
            message: error
                .message()
                .map(str::to_owned)
                .unwrap_or_else(|| error.to_string()),
            retryable: is_retryable(&error),
            source: Box::new(error),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use aws_sdk_ssm::error::ErrorMetadata;
    use aws_smithy_runtime_api::http::StatusCode;
    use aws_smithy_types::body::SdkBody;

    use super::*;

    fn service_error(code: &str, status: u16) -> SdkError<ErrorMetadata, Response> {
        let error = ErrorMetadata::builder().code(code).message("m").build();
        let raw = Response::new(StatusCode::try_from(status).unwrap(), SdkBody::empty());
        SdkError::service_error(error, raw)
    }

    /// Every code in `codes`, answered with HTTP 400, is of `class`.
    fn assert_codes(codes: &[&str], class: ErrorClass) {
        for &code in codes {
            assert_eq!(classify_code(Some(code), Some(400)), class, "{code}");
        }
    }

    /// A service error `code` answered with `status` is of `class`, and retryable.
    fn assert_retryable(code: &str, status: u16, class: ErrorClass) {
        let error = service_error(code, status);
        assert_eq!(classify(&error), class, "{code}");
        assert!(is_retryable(&error), "{code}");
    }

    #[test]
    fn the_sdks_throttling_codes_are_throttling() {
        assert_codes(THROTTLING_ERRORS, ErrorClass::Throttling);
        for code in [
            "TooManyRequestsException",
            "ThrottlingException",
            "KMSThrottlingException",
            "KmsThrottlingException",
            "KMSThrottling",
        ] {
            assert_retryable(code, 400, ErrorClass::Throttling);
        }
        assert_eq!(
            classify_code(Some("Other"), Some(429)),
            ErrorClass::Throttling
        );
    }

    #[test]
    fn transient_codes_and_server_errors_are_retryable() {
        assert_codes(TRANSIENT_ERRORS, ErrorClass::Transient);
        for (code, status) in [
            ("InternalServerError", 500),
            ("InternalError", 500),
            ("ServiceUnavailable", 503),
            ("ServiceUnavailableException", 503),
            ("", 502),
        ] {
            assert_retryable(code, status, ErrorClass::ServerError);
        }
    }

    #[test]
    fn client_errors_are_not_retryable() {
        for code in [
            "AccessDeniedException",
            "ValidationException",
            "ParameterNotFound",
            "InvalidToken",
            "StateMachineDoesNotExist",
        ] {
            let error = service_error(code, 400);
            assert_eq!(classify(&error), ErrorClass::Client, "{code}");
            assert!(!is_retryable(&error), "{code}");
        }
        assert_eq!(classify_code(None, None), ErrorClass::Client);
    }

    #[test]
    fn a_call_error_names_the_operation_code_and_message() {
        let error = AwsCallError::new(
            "ssm:PutParameter",
            service_error("ThrottlingException", 400),
        );
        assert!(error.retryable);
        assert_eq!(error.code.as_deref(), Some("ThrottlingException"));
        assert_eq!(
            error.to_string(),
            "ssm:PutParameter failed (ThrottlingException): m"
        );
        let denied = AwsCallError::new("sns:Publish", service_error("AuthorizationError", 403));
        assert!(!denied.retryable);
    }

    #[test]
    fn unanswered_calls_are_transient_and_unbuilt_ones_are_not_retried() {
        let timeout: SdkError<ErrorMetadata, Response> = SdkError::timeout_error("slow");
        assert_eq!(classify(&timeout), ErrorClass::Transient);
        assert!(is_retryable(&timeout));
        let unbuilt: SdkError<ErrorMetadata, Response> =
            SdkError::construction_failure("no region");
        assert_eq!(classify(&unbuilt), ErrorClass::Construction);
        assert!(!is_retryable(&unbuilt));
    }
}
