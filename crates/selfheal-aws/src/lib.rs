//! The AWS SDK configuration every selfheal binary loads: the SDK's default
//! chain (region, credentials, `AWS_ENDPOINT_URL*`) plus explicit timeouts,
//! so that no AWS call (EKS DescribeCluster, Step Functions, SNS, SSM,
//! Secrets Manager, and the STS/SSO calls of the credential chain) can hang
//! until the Lambda timeout. A call that gets no answer ends as the SDK's
//! `TimeoutError`, which every caller classifies as retryable.
//!
//! The values fit the smallest Lambda timeout in `template.yaml` (approve,
//! 10 s): one call, retries included, gives up after [`OPERATION_TIMEOUT`]
//! (8 s) and still leaves the function time to answer with a typed error.
//! The SDK's standard retry mode (3 attempts, exponential backoff with
//! jitter) is kept for answers that say "try again" (throttling, 5xx) and
//! for connections that fail; an attempt that got no answer is not retried
//! ([`OPERATION_ATTEMPT_TIMEOUT`] equals [`OPERATION_TIMEOUT`]), because
//! several of our calls are not idempotent. docs/limits.md lists these with
//! every other limit.
//!
//! The off switch ([`switch`]) lives here too: one implementation, read by
//! the action functions (`selfheal-lambda`) and by `ingest`.

use std::time::Duration;

use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, ConfigLoader};

/// Re-exported so crates that only pass the config along need no aws-config
/// dependency of their own.
pub use aws_config::SdkConfig;

pub mod retry;
pub mod switch;

use selfheal_contract::ErrorType;
pub use switch::{OffSwitch, SwitchConfig, SwitchState, SwitchedOff};

/// GetParameter of `name` with decryption: how the webhook secret (ingest)
/// and the Slack webhook URL (notify) are read from a SecureString.
pub async fn get_decrypted_parameter(
    ssm: &aws_sdk_ssm::Client,
    name: &str,
) -> Result<
    aws_sdk_ssm::operation::get_parameter::GetParameterOutput,
    aws_sdk_ssm::error::SdkError<aws_sdk_ssm::operation::get_parameter::GetParameterError>,
> {
    ssm.get_parameter()
        .name(name)
        .with_decryption(true)
        .send()
        .await
}

/// GetSecretValue of `id`: how the webhook secret (ingest) and the Slack
/// webhook URL (notify) are read from Secrets Manager. Behind the
/// `secrets-manager` feature, so the action functions do not link that SDK.
#[cfg(feature = "secrets-manager")]
pub async fn get_secret_value(
    secrets: &aws_sdk_secretsmanager::Client,
    id: &str,
) -> Result<
    aws_sdk_secretsmanager::operation::get_secret_value::GetSecretValueOutput,
    aws_sdk_secretsmanager::error::SdkError<
        aws_sdk_secretsmanager::operation::get_secret_value::GetSecretValueError,
    >,
> {
    secrets.get_secret_value().secret_id(id).send().await
}

/// Why this crate's shared AWS pieces failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An environment variable holds an unusable value.
    #[error(transparent)]
    Config(#[from] selfheal_contract::env::Invalid),

    /// The off switch could not be read and no earlier read exists to fall
    /// back on: acting without knowing the switch could ignore an operator's
    /// stop, so nothing is done and the caller retries.
    #[error("cannot read the off switch (SSM parameter {parameter}): {message}")]
    SwitchUnavailable { parameter: String, message: String },
}

impl Error {
    /// Stable name for Lambda's `errorType`.
    pub fn error_type(&self) -> &'static str {
        match self {
            Error::Config(_) => ErrorType::NonRetryableConfig,
            Error::SwitchUnavailable { .. } => ErrorType::RetryableAwsError,
        }
        .as_str()
    }
}

/// Establishing a connection (TCP and TLS) to an AWS endpoint. The SDK's own
/// default is 3.1 s; AWS endpoints in the function's region connect in
/// milliseconds.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// One HTTP attempt, from sending the request to the end of the response:
/// as long as the whole operation, so an attempt that was sent but not
/// answered ends the call instead of being sent again. The request may have
/// been applied: a second `PutParameter` (no overwrite: single-use approval
/// ids) fails with `ParameterAlreadyExists`, a second `SendTaskSuccess` with
/// `TaskTimedOut`, a second `Publish` notifies twice. A slow answer is not a
/// lost request: an endpoint under load can apply a request and answer after
/// a short attempt timeout has fired. The caller's own retry (Step
/// Functions, Alertmanager) starts over safely instead.
pub const OPERATION_ATTEMPT_TIMEOUT: Duration = OPERATION_TIMEOUT;

/// One operation, all attempts and backoff included: below the smallest
/// function timeout (approve, 10 s).
pub const OPERATION_TIMEOUT: Duration = Duration::from_secs(8);

/// [`CONNECT_TIMEOUT`], [`OPERATION_ATTEMPT_TIMEOUT`] and [`OPERATION_TIMEOUT`].
pub fn timeout_config() -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .operation_attempt_timeout(OPERATION_ATTEMPT_TIMEOUT)
        .operation_timeout(OPERATION_TIMEOUT)
        .build()
}

/// The default-chain loader with selfheal's timeouts. The credential chain's
/// own STS/SSO clients get the same timeouts (aws-config hands the loader's
/// `TimeoutConfig` to them). Callers may still set region, endpoint or
/// credentials before `load()` (the CLI's `--region`, tests' endpoints).
pub fn loader() -> ConfigLoader {
    aws_config::defaults(BehaviorVersion::latest()).timeout_config(timeout_config())
}

/// `loader().load()`: what the Lambda functions build once per process.
pub async fn load() -> SdkConfig {
    loader().load().await
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn every_timeout_is_set_and_they_nest() {
        let t = timeout_config();
        assert_eq!(t.connect_timeout(), Some(CONNECT_TIMEOUT));
        assert_eq!(
            t.operation_attempt_timeout(),
            Some(OPERATION_ATTEMPT_TIMEOUT)
        );
        assert_eq!(t.operation_timeout(), Some(OPERATION_TIMEOUT));
        assert!(CONNECT_TIMEOUT < OPERATION_ATTEMPT_TIMEOUT);
        assert!(OPERATION_ATTEMPT_TIMEOUT <= OPERATION_TIMEOUT);
        // approve's Timeout in template.yaml is the smallest: 10 s.
        assert!(OPERATION_TIMEOUT < Duration::from_secs(10));
    }

    #[tokio::test]
    async fn loaded_config_carries_the_timeouts() {
        let sdk = loader()
            .region(aws_config::Region::new("eu-west-1"))
            .load()
            .await;
        let t = sdk.timeout_config().expect("timeout config");
        assert_eq!(t.connect_timeout(), Some(CONNECT_TIMEOUT));
        assert_eq!(
            t.operation_attempt_timeout(),
            Some(OPERATION_ATTEMPT_TIMEOUT)
        );
        assert_eq!(t.operation_timeout(), Some(OPERATION_TIMEOUT));
    }
}
