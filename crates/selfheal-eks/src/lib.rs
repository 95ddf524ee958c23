//! EKS authentication for selfheal (docs/eks-token.md).
//!
//! EKS has no "get token" API: a bearer token is a presigned STS
//! `GetCallerIdentity` URL with the cluster name among the signed headers
//! ([`token::presign_token`]). [`cluster::EksClients`] turns a cluster name
//! into a ready `kube::Client`, caching it until its token is due for refresh.
//! The API server's side of a token (aws-iam-authenticator's checks) is test
//! support, in `selfheal-token-verifier`.

pub mod cluster;
pub mod token;

use aws_sdk_eks::error::SdkError;
use aws_sdk_eks::operation::describe_cluster::DescribeClusterError;
use aws_sdk_sts::operation::assume_role::AssumeRoleError;
use selfheal_contract::ErrorType;

pub use cluster::{Clock, ClusterEndpoint, ClusterSource, EksClients, ManualClock, SystemClock};
pub use selfheal_contract::ClusterRoles;
pub use token::{EksToken, ExecCredential, exec_credential, presign_token};

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong while authenticating to EKS.
///
/// [`Error::error_type`] gives the stable names a state machine's
/// `Retry`/`Catch` match on, consistent with the kube adapter's.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Caller passed something unusable (empty cluster name, malformed region).
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// No region in the arguments, environment or profile.
    #[error("no AWS region configured (pass --region or set AWS_REGION)")]
    MissingRegion,
    /// The SDK configuration has no credentials provider at all.
    #[error("no AWS credentials provider configured")]
    MissingCredentialsProvider,
    /// The credentials provider failed (no credentials, IMDS timeout, ...).
    #[error("loading AWS credentials failed: {source}")]
    Credentials {
        #[source]
        source: aws_credential_types::provider::error::CredentialsError,
    },
    /// SigV4 signing parameters were rejected.
    #[error("building SigV4 signing parameters failed: {source}")]
    SigningParams {
        #[source]
        source: aws_sigv4::sign::v4::signing_params::BuildError,
    },
    /// SigV4 presigning itself failed.
    #[error("presigning the STS request failed: {source}")]
    Signing {
        #[source]
        source: aws_sigv4::http_request::SigningError,
    },
    /// DescribeCluster failed (not found, access denied, throttled, network).
    #[error("DescribeCluster {cluster} failed: {source}")]
    DescribeCluster {
        cluster: String,
        #[source]
        source: Box<SdkError<DescribeClusterError>>,
    },
    /// `target.cluster` is neither a plain name nor an EKS cluster ARN.
    #[error("{source}")]
    InvalidCluster {
        #[source]
        source: selfheal_contract::Error,
    },
    /// STS refused or failed `AssumeRole` for the cluster's role.
    #[error("AssumeRole {role} failed: {source}")]
    AssumeRole {
        role: String,
        #[source]
        source: Box<SdkError<AssumeRoleError>>,
    },
    /// STS answered `AssumeRole` without credentials.
    #[error("AssumeRole {role} returned no credentials")]
    AssumedCredentialsMissing { role: String },
    /// DescribeCluster answered without an endpoint or CA (cluster still creating).
    #[error("cluster {cluster} has no {missing} yet (is it still being created?)")]
    ClusterIncomplete {
        cluster: String,
        missing: &'static str,
    },
    /// The configured source serves a single cluster and another was asked for.
    #[error("cluster {requested} is not configured (only {configured})")]
    ClusterNotConfigured {
        requested: String,
        configured: String,
    },
    /// The cluster CA is not base64 or not a PEM certificate.
    #[error("cluster CA data is not a PEM certificate: {reason}")]
    InvalidClusterCa { reason: String },
    /// The cluster endpoint is not a valid URL.
    #[error("cluster endpoint {endpoint:?} is not a valid URL: {source}")]
    InvalidEndpoint {
        endpoint: String,
        #[source]
        source: http::uri::InvalidUri,
    },
    /// The kube adapter could not build a client (kubeconfig, TLS setup).
    #[error("building the Kubernetes client failed: {source}")]
    KubeClient {
        #[source]
        source: selfheal_kube::Error,
    },
    /// The ExecCredential could not be serialized.
    #[error("serializing ExecCredential failed: {source}")]
    Json {
        #[source]
        source: serde_json::Error,
    },
}

impl Error {
    /// Stable error name for Lambda `errorType` and Step Functions `ErrorEquals`.
    pub fn error_type(&self) -> &'static str {
        use aws_credential_types::provider::error::CredentialsError as C;
        match self {
            Error::InvalidInput(_) | Error::InvalidCluster { .. } => {
                ErrorType::NonRetryableInvalidRequest
            }
            Error::AssumeRole { source, .. } => assume_role_error_type(source),
            Error::AssumedCredentialsMissing { .. } => ErrorType::RetryableAwsError,
            Error::MissingRegion
            | Error::MissingCredentialsProvider
            | Error::SigningParams { .. }
            | Error::Signing { .. }
            | Error::InvalidClusterCa { .. }
            | Error::InvalidEndpoint { .. }
            | Error::Json { .. } => ErrorType::NonRetryableAuthConfig,
            Error::KubeClient { source } => return source.error_type(),
            Error::Credentials { source } => match source {
                C::ProviderTimedOut(_) | C::ProviderError(_) => ErrorType::RetryableAwsError,
                _ => ErrorType::NonRetryableAuthConfig,
            },
            Error::DescribeCluster { source, .. } => describe_error_type(source),
            Error::ClusterIncomplete { .. } => ErrorType::RetryableAwsError,
            Error::ClusterNotConfigured { .. } => ErrorType::NonRetryableClusterNotFound,
        }
        .as_str()
    }

    /// Whether retrying the same call later can succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::KubeClient { source } => source.is_retryable(),
            _ => ErrorType::name_is_retryable(self.error_type()),
        }
    }
}

fn describe_error_type(err: &SdkError<DescribeClusterError>) -> ErrorType {
    use aws_sdk_eks::error::ProvideErrorMetadata;
    match err {
        SdkError::ServiceError(service) => match service.err() {
            DescribeClusterError::ResourceNotFoundException(_) => {
                ErrorType::NonRetryableClusterNotFound
            }
            DescribeClusterError::ServerException(_)
            | DescribeClusterError::ServiceUnavailableException(_) => ErrorType::RetryableAwsError,
            other => match other.code() {
                Some("AccessDeniedException" | "UnrecognizedClientException" | "AccessDenied") => {
                    ErrorType::NonRetryableAccessDenied
                }
                _ if selfheal_aws::retry::is_retryable(err) => ErrorType::RetryableAwsError,
                _ => ErrorType::NonRetryableAuthConfig,
            },
        },
        // Timeouts, connection failures and unparseable responses are
        // transient; a request that could not be built is not.
        _ if selfheal_aws::retry::is_retryable(err) => ErrorType::RetryableAwsError,
        _ => ErrorType::NonRetryableAuthConfig,
    }
}

/// A refused `AssumeRole` (the trust policy or the function's
/// `sts:AssumeRole` permission) is access denied; throttling and transient
/// failures are retryable, by selfheal_aws's one classifier.
fn assume_role_error_type(err: &SdkError<AssumeRoleError>) -> ErrorType {
    use aws_sdk_sts::error::ProvideErrorMetadata;
    if selfheal_aws::retry::is_retryable(err) {
        return ErrorType::RetryableAwsError;
    }
    match err {
        SdkError::ServiceError(service)
            if matches!(
                service.err().code(),
                Some("AccessDenied" | "AccessDeniedException" | "RegionDisabledException")
            ) || service.raw().status().as_u16() == 403 =>
        {
            ErrorType::NonRetryableAccessDenied
        }
        _ => ErrorType::NonRetryableAuthConfig,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use aws_sdk_sts::error::ErrorMetadata;
    use aws_smithy_runtime_api::http::{Response, StatusCode};
    use aws_smithy_types::body::SdkBody;

    fn assume_role_failure(code: &str, status: u16) -> Error {
        let raw = Response::new(StatusCode::try_from(status).unwrap(), SdkBody::empty());
        let err = AssumeRoleError::generic(ErrorMetadata::builder().code(code).build());
        Error::AssumeRole {
            role: "arn:aws:iam::111111111111:role/selfheal".into(),
            source: Box::new(SdkError::service_error(err, raw)),
        }
    }

    #[test]
    fn refused_assume_role_is_access_denied_and_throttling_is_retryable() {
        let denied = assume_role_failure("AccessDenied", 403);
        assert_eq!(denied.error_type(), "NonRetryableAccessDenied");
        assert!(!denied.is_retryable());
        let throttled = assume_role_failure("Throttling", 400);
        assert_eq!(throttled.error_type(), "RetryableAwsError");
        assert!(throttled.is_retryable());
        let unavailable = assume_role_failure("InternalFailure", 500);
        assert_eq!(unavailable.error_type(), "RetryableAwsError");
        let policy = assume_role_failure("MalformedPolicyDocument", 400);
        assert_eq!(policy.error_type(), "NonRetryableAuthConfig");
    }
}
