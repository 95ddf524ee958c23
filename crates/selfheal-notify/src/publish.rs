//! Configuration and the side effects: SNS publish, Slack webhook POST,
//! approval link minting. Built once per process.

use std::time::Duration;

use aws_sdk_sns::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_sns::types::MessageAttributeValue;
use bytes::Bytes;
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use jiff::Timestamp;
use secrecy::{ExposeSecret, SecretString};
use selfheal_approval::{ApprovalStore, SsmStore};
use selfheal_contract::env::{self, Invalid};

use crate::{
    Error, EventKind, Message, NotifyEvent, NotifyOutput, SlackMessage, approval_plan,
    approval_summary, fleet_summary, health, pending_cap, render,
};

/// SNS topic every message goes to.
pub const TOPIC_ARN: &str = "SELFHEAL_TOPIC_ARN";
/// Secrets Manager secret (ARN or name) holding a Slack incoming-webhook URL.
pub const SLACK_SECRET_ARN: &str = "SELFHEAL_SLACK_WEBHOOK_SECRET_ARN";
/// SSM parameter (SecureString) holding a Slack incoming-webhook URL.
pub const SLACK_PARAM: &str = "SELFHEAL_SLACK_WEBHOOK_PARAM";
/// The `approve` function's URL (links are `<url>/approve?id=…`).
pub const APPROVAL_URL: &str = "SELFHEAL_APPROVAL_URL";
/// Default link lifetime when the event carries no `timeoutSeconds`.
pub const DEFAULT_APPROVAL_TTL: u64 = 3600;
/// How many approvals one Deployment may have pending at once.
pub const MAX_PENDING_APPROVALS: &str = "SELFHEAL_MAX_PENDING_APPROVALS";
/// Its default.
pub const DEFAULT_MAX_PENDING_APPROVALS: usize = 3;

/// Where the Slack URL comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SlackSource {
    None,
    Secret(String),
    Parameter(String),
}

/// Everything notify reads from its environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotifyConfig {
    pub topic_arn: Option<String>,
    pub slack: SlackSource,
    pub approval_url: Option<String>,
    pub approval_prefix: String,
    /// Approvals one Deployment may have pending (minted, not answered, not
    /// expired); another approval event for it is refused.
    pub max_pending_approvals: usize,
}

impl NotifyConfig {
    pub fn from_env() -> Result<Self, Error> {
        Self::from_lookup(env::process)
    }

    /// Empty values count as unset (CloudFormation can only blank a variable).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, Error> {
        let get = |k: &str| env::get(&lookup, k);
        let slack = match (get(SLACK_SECRET_ARN), get(SLACK_PARAM)) {
            (Some(_), Some(_)) => {
                return Err(Error::Config(Invalid {
                    variable: SLACK_PARAM,
                    reason: format!("set together with {SLACK_SECRET_ARN}; choose one"),
                }));
            }
            (Some(s), None) => SlackSource::Secret(s),
            (None, Some(p)) => SlackSource::Parameter(p),
            (None, None) => SlackSource::None,
        };
        let topic_arn = get(TOPIC_ARN);
        if topic_arn.is_none() && slack == SlackSource::None {
            return Err(Error::Config(Invalid {
                variable: TOPIC_ARN,
                reason: format!(
                    "unset, and no Slack webhook ({SLACK_SECRET_ARN} / {SLACK_PARAM}): nobody would be told"
                ),
            }));
        }
        if let Some(arn) = &topic_arn
            && !arn.starts_with("arn:")
        {
            return Err(Error::Config(Invalid {
                variable: TOPIC_ARN,
                reason: format!("{arn:?} is not an ARN"),
            }));
        }
        let approval_url = get(APPROVAL_URL);
        if let Some(url) = &approval_url
            && !(url.starts_with("https://") || url.starts_with("http://"))
        {
            return Err(Error::Config(Invalid {
                variable: APPROVAL_URL,
                reason: format!("{url:?} is not an http(s) URL"),
            }));
        }
        let max_pending_approvals = match get(MAX_PENDING_APPROVALS) {
            None => DEFAULT_MAX_PENDING_APPROVALS,
            Some(text) => match text.parse::<usize>() {
                Ok(n) if n >= 1 => n,
                _ => {
                    return Err(Error::Config(Invalid {
                        variable: MAX_PENDING_APPROVALS,
                        reason: format!("{text:?} is not a whole number of at least 1"),
                    }));
                }
            },
        };
        Ok(NotifyConfig {
            topic_arn,
            slack,
            approval_url,
            max_pending_approvals,
            approval_prefix: get(selfheal_approval::PARAM_PREFIX_VAR)
                .unwrap_or_else(|| selfheal_approval::DEFAULT_PARAM_PREFIX.to_owned()),
        })
    }
}

/// An SDK error as [`Error::Aws`], classified by `selfheal_aws::retry`.
fn aws_error<E>(operation: &'static str, err: SdkError<E>) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    Error::Aws(selfheal_aws::retry::AwsCallError::new(operation, err))
}

/// A tiny HTTPS (or, for tests, HTTP) JSON poster for Slack incoming webhooks.
#[derive(Debug, Clone)]
pub struct SlackClient {
    url: SecretString,
    client: Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>,
}

impl SlackClient {
    pub fn new(url: SecretString) -> Result<Self, Error> {
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_native_roots()
            .map_err(|e| {
                Error::Config(Invalid {
                    variable: SLACK_SECRET_ARN,
                    reason: format!("no TLS root certificates: {e}"),
                })
            })?
            .https_or_http()
            .enable_http1()
            .build();
        Ok(SlackClient {
            url,
            client: Client::builder(TokioExecutor::new()).build(connector),
        })
    }

    /// POST the message (`{text, blocks}`); `false` when it could not be
    /// encoded, or Slack answered non-2xx or did not answer.
    pub async fn post(&self, message: &SlackMessage) -> bool {
        let body = match serde_json::to_string(message) {
            Ok(body) => body,
            Err(e) => {
                tracing::warn!(error = %e, "Slack message could not be encoded");
                return false;
            }
        };
        let request = match http::Request::post(self.url.expose_secret())
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body)))
        {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, "Slack webhook URL is not usable");
                return false;
            }
        };
        match tokio::time::timeout(Duration::from_secs(5), self.client.request(request)).await {
            Ok(Ok(response)) if response.status().is_success() => true,
            Ok(Ok(response)) => {
                tracing::warn!(status = %response.status(), "Slack webhook refused the message");
                false
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "Slack webhook request failed");
                false
            }
            Err(_) => {
                tracing::warn!("Slack webhook timed out after 5 s");
                false
            }
        }
    }
}

/// The shared state of the notify function.
#[derive(Debug, Clone)]
pub struct Notifier {
    config: NotifyConfig,
    sns: aws_sdk_sns::Client,
    slack: Option<SlackClient>,
    store: SsmStore,
}

impl Notifier {
    /// The function's start-up: configuration from the environment, the
    /// SDK configuration, then [`Notifier::new`].
    pub async fn from_env() -> Result<Self, Error> {
        let config = NotifyConfig::from_env()?;
        let sdk = selfheal_aws::load().await;
        Notifier::new(config, &sdk).await
    }

    /// Answer one invocation's payload now; a failure is logged with its `errorType`.
    pub async fn handle(&self, payload: serde_json::Value) -> Result<NotifyOutput, Error> {
        let result = match crate::parse_event(payload) {
            Ok(event) => self.notify(&event, Timestamp::now()).await,
            Err(e) => Err(e),
        };
        if let Err(e) = &result {
            tracing::error!(error_type = e.error_type(), error = %e, "notification failed");
        }
        result
    }

    /// Build from an SDK config: reads the Slack URL once (from Secrets
    /// Manager or SSM), so a wrong secret fails the cold start.
    pub async fn new(config: NotifyConfig, sdk: &aws_config::SdkConfig) -> Result<Self, Error> {
        let ssm = aws_sdk_ssm::Client::new(sdk);
        let url = match &config.slack {
            SlackSource::None => None,
            SlackSource::Secret(id) => {
                let secrets = aws_sdk_secretsmanager::Client::new(sdk);
                let out = selfheal_aws::get_secret_value(&secrets, id)
                    .await
                    .map_err(|e| aws_error("secretsmanager:GetSecretValue", e))?;
                Some(out.secret_string().unwrap_or_default().trim().to_owned())
            }
            SlackSource::Parameter(name) => {
                let out = selfheal_aws::get_decrypted_parameter(&ssm, name)
                    .await
                    .map_err(|e| aws_error("ssm:GetParameter", e))?;
                Some(
                    out.parameter()
                        .and_then(|p| p.value())
                        .unwrap_or_default()
                        .trim()
                        .to_owned(),
                )
            }
        };
        let slack = match url {
            None => None,
            Some(u) if u.starts_with("https://") || u.starts_with("http://") => {
                Some(SlackClient::new(SecretString::from(u))?)
            }
            Some(_) => {
                return Err(Error::Config(Invalid {
                    variable: SLACK_SECRET_ARN,
                    reason: "the stored Slack webhook is not an http(s) URL".into(),
                }));
            }
        };
        let store = SsmStore::new(ssm, &config.approval_prefix)
            .map_err(|source| Error::Approval { source })?;
        Ok(Notifier {
            sns: aws_sdk_sns::Client::new(sdk),
            config,
            slack,
            store,
        })
    }

    /// Same, with explicit parts (tests point them at local servers).
    pub fn from_parts(
        config: NotifyConfig,
        sns: aws_sdk_sns::Client,
        slack: Option<SlackClient>,
        store: SsmStore,
    ) -> Self {
        Notifier {
            config,
            sns,
            slack,
            store,
        }
    }

    /// Handle one event at `now`.
    pub async fn notify(&self, event: &NotifyEvent, now: Timestamp) -> Result<NotifyOutput, Error> {
        let links = match event.event {
            EventKind::ApprovalRequested | EventKind::RolloutFrozen => {
                Some(self.mint(event, now).await?)
            }
            _ => None,
        };
        let message = render(event, links.as_ref());
        let message_id = self.publish(event, &message).await?;
        let slack = match (&self.slack, &message.slack) {
            (Some(client), Some(post)) => client.post(post).await,
            _ => false,
        };
        tracing::info!(
            event = ?event.event,
            subject = %message.subject,
            execution = %event.execution.id,
            message_id = message_id.as_deref(),
            slack,
            "notification sent"
        );
        if let Some(record) = crate::metrics::report_record(event, now) {
            let line = record.to_line().map(|line| vec![line]);
            selfheal_runtime::write_metrics(&mut std::io::stdout(), line);
        }
        let (deployment_health, summary) = match event.event {
            EventKind::FleetCompleted => (None, Some(fleet_summary(event))),
            EventKind::Completed | EventKind::Failed => (Some(health(event)), None),
            _ => (None, None),
        };
        Ok(NotifyOutput {
            subject: message.subject,
            message_id,
            slack,
            deployment_health,
            summary,
            approval_expires_at: links.map(|l| l.expires_at),
        })
    }

    async fn mint(
        &self,
        event: &NotifyEvent,
        now: Timestamp,
    ) -> Result<selfheal_approval::ApprovalLinks, Error> {
        let token = event
            .task_token
            .as_deref()
            .filter(|t| !t.trim().is_empty())
            .ok_or_else(|| Error::Incomplete("an approval event needs `taskToken`".into()))?;
        let base = self
            .config
            .approval_url
            .as_deref()
            .ok_or(Error::Config(Invalid {
                variable: APPROVAL_URL,
                reason: "unset, but an approval was requested".into(),
            }))?;
        let deployment = event
            .request
            .as_ref()
            .and_then(|r| pending_cap(r, self.config.max_pending_approvals));
        let summary = approval_summary(event);
        let plan = approval_plan(event);
        let request = selfheal_approval::MintRequest {
            base_url: base,
            now,
            ttl_seconds: event.timeout_seconds.unwrap_or(DEFAULT_APPROVAL_TTL),
            task_token: token,
            execution: &event.execution.id,
            summary: &summary,
            plan,
            deployment,
        };
        selfheal_approval::mint_for(&self.store, &request)
            .await
            .map_err(|source| Error::Approval { source })
    }

    async fn publish(
        &self,
        event: &NotifyEvent,
        message: &Message,
    ) -> Result<Option<String>, Error> {
        let Some(topic) = &self.config.topic_arn else {
            return Ok(None);
        };
        let attr = |v: &str| {
            MessageAttributeValue::builder()
                .data_type("String")
                .string_value(v)
                .build()
        };
        let event_name = serde_json::to_value(event.event)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        let mut request = self
            .sns
            .publish()
            .topic_arn(topic)
            .subject(&message.subject)
            .message(&message.text);
        for (key, value) in [
            ("event", event_name.as_str()),
            ("status", message.status.as_str()),
        ] {
            let value = attr(value).map_err(|e| Error::Incomplete(e.to_string()))?;
            request = request.message_attributes(key, value);
        }
        let out = request
            .send()
            .await
            .map_err(|e| aws_error("sns:Publish", e))?;
        Ok(out.message_id().map(str::to_owned))
    }

    /// The approval store (tests read it back).
    pub fn store(&self) -> &impl ApprovalStore {
        &self.store
    }
}
