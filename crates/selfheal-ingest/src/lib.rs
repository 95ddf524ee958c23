//! The `ingest` function (docs/alarms.md): CloudWatch alarms (EventBridge, SNS,
//! alarm action), Alertmanager webhooks through a Lambda Function URL with
//! bearer auth, and manual requests become remediate-deployment executions.
//!
//! Parsing and naming live in `selfheal-events`; this crate adds the I/O:
//! the webhook secret ([`WebhookSecret`], fetched once per process), one
//! StartExecution per request with bounded parallelism ([`Ingest`]), and the
//! answers (HTTP statuses for the webhook, [`Summary`] or a typed [`Error`]
//! for events).
//!
//! `functions/ingest` wires it up: [`init`] once, then
//! `selfheal_runtime::serve_measured` over [`Ingest::handle`], which takes
//! the size of the body Lambda delivered for the event size limit.

pub mod config;
pub mod error;
pub mod handler;
pub mod secret;
pub mod starter;
pub mod summary;

pub use config::IngestConfig;
pub use error::Error;
pub use handler::{Ingest, is_function_url_request};
pub use secret::{SecretSource, Verdict, WebhookSecret};
pub use starter::{SfnStarter, StartExecution, StartFailure, Started};
pub use summary::{FailedStart, Summary};

/// Configuration from the process environment, the AWS SDK config from its
/// default chain (region, credentials, `AWS_ENDPOINT_URL`), and the clients:
/// built once per process, borrowed by every invocation.
pub async fn init() -> Result<Ingest<SfnStarter>, Error> {
    let config = IngestConfig::from_lookup(selfheal_contract::env::process)?;
    let sdk = selfheal_aws::load().await;
    let starter = SfnStarter::new(
        aws_sdk_sfn::Client::new(&sdk),
        config.state_machine_arn.clone(),
    );
    if matches!(config.secret, SecretSource::Value(_)) {
        tracing::warn!(
            variable = IngestConfig::SECRET_VAR,
            "webhook secret taken from the environment: use an SSM parameter or Secrets Manager secret outside local tests"
        );
    }
    let secret = WebhookSecret::new(config.secret.clone(), &sdk);
    let switch = config
        .switch
        .as_ref()
        .map(|switch| selfheal_aws::OffSwitch::new(switch, &sdk));
    tracing::info!(
        state_machine_arn = %config.state_machine_arn,
        concurrency = config.concurrency,
        default_cluster = config.defaults.cluster.as_deref().unwrap_or("-"),
        default_action = config.defaults.action.map(|a| a.to_string()).unwrap_or_else(|| "-".into()),
        switch = config.switch.as_ref().map_or("-", |s| s.parameter.as_str()),
        webhook = match &config.secret {
            SecretSource::Disabled => "disabled",
            SecretSource::SsmParameter { .. } => "ssm",
            SecretSource::SecretsManager { .. } => "secretsmanager",
            SecretSource::Value(_) => "env",
        },
        "ingest initialised"
    );
    let ingest = Ingest::from_config(starter, secret, &config);
    Ok(match switch {
        Some(switch) => ingest.with_switch(switch),
        None => ingest,
    })
}
