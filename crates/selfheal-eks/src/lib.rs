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
use selfheal_contract::ErrorType;

pub use cluster::{Clock, ClusterEndpoint, ClusterSource, EksClients, ManualClock, SystemClock};
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
            Error::InvalidInput(_) => ErrorType::NonRetryableInvalidRequest,
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
