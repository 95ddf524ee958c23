//! The webhook's bearer secret: fetched once per process, compared in
//! constant time.
//!
//! Only a SHA-256 digest of the secret is kept after the fetch, and the
//! presented token is hashed the same way before the comparison, so the
//! comparison time depends on neither the secret's length nor its content.

use aws_config::SdkConfig;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tokio::sync::OnceCell;

use crate::Error;

/// Where the secret lives (one of `SELFHEAL_WEBHOOK_SECRET_*`).
#[derive(Debug, Clone)]
pub enum SecretSource {
    /// No secret configured: the webhook refuses every request.
    Disabled,
    /// SSM Parameter Store SecureString, read with decryption.
    SsmParameter { name: String },
    /// Secrets Manager secret (ARN or name), its `SecretString`.
    SecretsManager { id: String },
    /// The value itself (local tests; never in a deployed function).
    Value(SecretString),
}

/// The result of checking an `Authorization` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Accepted,
    /// No `Authorization: Bearer …` header.
    Missing,
    /// A bearer token that is not the secret.
    Wrong,
    /// No secret is configured; nothing is accepted.
    Disabled,
}

type Fingerprint = [u8; 32];

/// The secret, lazily fetched on the first webhook request and then cached
/// for the life of the process (a failed fetch is not cached: the next
/// request tries again).
#[derive(Debug)]
pub struct WebhookSecret {
    source: SecretSource,
    ssm: Option<aws_sdk_ssm::Client>,
    secrets_manager: Option<aws_sdk_secretsmanager::Client>,
    fingerprint: OnceCell<Fingerprint>,
}

impl WebhookSecret {
    /// Build the client the source needs (and only that one) from `sdk`.
    pub fn new(source: SecretSource, sdk: &SdkConfig) -> Self {
        let ssm = matches!(source, SecretSource::SsmParameter { .. })
            .then(|| aws_sdk_ssm::Client::new(sdk));
        let secrets_manager = matches!(source, SecretSource::SecretsManager { .. })
            .then(|| aws_sdk_secretsmanager::Client::new(sdk));
        WebhookSecret {
            source,
            ssm,
            secrets_manager,
            fingerprint: OnceCell::new(),
        }
    }

    /// A fixed secret (tests, local runs): no AWS client involved.
    pub fn from_value(value: impl Into<String>) -> Self {
        WebhookSecret {
            source: SecretSource::Value(SecretString::from(value.into())),
            ssm: None,
            secrets_manager: None,
            fingerprint: OnceCell::new(),
        }
    }

    /// Refuse everything (no secret configured).
    pub fn disabled() -> Self {
        WebhookSecret {
            source: SecretSource::Disabled,
            ssm: None,
            secrets_manager: None,
            fingerprint: OnceCell::new(),
        }
    }

    /// Check an `Authorization` header value against the secret.
    ///
    /// Errors only when the secret cannot be read; the caller answers 503 so
    /// the sender retries instead of treating a store outage as bad credentials.
    pub async fn verify(&self, authorization: Option<&[u8]>) -> Result<Verdict, Error> {
        if matches!(self.source, SecretSource::Disabled) {
            return Ok(Verdict::Disabled);
        }
        let expected = self.fingerprint.get_or_try_init(|| self.fetch()).await?;
        let Some(token) = authorization.and_then(bearer_token) else {
            return Ok(Verdict::Missing);
        };
        let presented = fingerprint(token);
        if bool::from(presented.ct_eq(expected)) {
            Ok(Verdict::Accepted)
        } else {
            Ok(Verdict::Wrong)
        }
    }

    async fn fetch(&self) -> Result<Fingerprint, Error> {
        let (store, id, value) = match (&self.source, &self.ssm, &self.secrets_manager) {
            (SecretSource::Value(value), _, _) => (
                "environment variable",
                crate::IngestConfig::SECRET_VAR.to_owned(),
                value.clone(),
            ),
            (SecretSource::SsmParameter { name }, Some(client), _) => {
                let store = "SSM parameter";
                let output = client
                    .get_parameter()
                    .name(name)
                    .with_decryption(true)
                    .send()
                    .await
                    .map_err(|e| Error::SecretUnavailable {
                        store,
                        id: name.clone(),
                        source: aws_sdk_ssm::error::DisplayErrorContext(e)
                            .to_string()
                            .into(),
                    })?;
                let value = output
                    .parameter()
                    .and_then(|p| p.value())
                    .map(|v| SecretString::from(v.to_owned()))
                    .ok_or_else(|| Error::SecretUnusable {
                        store,
                        id: name.clone(),
                        problem: "has no value",
                    })?;
                (store, name.clone(), value)
            }
            (SecretSource::SecretsManager { id }, _, Some(client)) => {
                let store = "Secrets Manager secret";
                let output = client
                    .get_secret_value()
                    .secret_id(id)
                    .send()
                    .await
                    .map_err(|e| Error::SecretUnavailable {
                        store,
                        id: id.clone(),
                        source: aws_sdk_secretsmanager::error::DisplayErrorContext(e)
                            .to_string()
                            .into(),
                    })?;
                let text = match (output.secret_string(), output.secret_binary()) {
                    (Some(text), _) => Some(text.to_owned()),
                    (None, Some(blob)) => String::from_utf8(blob.as_ref().to_vec()).ok(),
                    (None, None) => None,
                };
                let value = text
                    .map(SecretString::from)
                    .ok_or_else(|| Error::SecretUnusable {
                        store,
                        id: id.clone(),
                        problem: "has no text value",
                    })?;
                (store, id.clone(), value)
            }
            // `new` builds the client each source needs; reaching this means
            // a source without its client, i.e. `Disabled` (handled above).
            _ => {
                return Err(Error::SecretUnusable {
                    store: "configuration",
                    id: "SELFHEAL_WEBHOOK_SECRET_*".into(),
                    problem: "is not set",
                });
            }
        };
        // Secrets pasted from files often end in a newline; a bearer token never does.
        let trimmed = value.expose_secret().trim();
        if trimmed.is_empty() {
            return Err(Error::SecretUnusable {
                store,
                id,
                problem: "is empty",
            });
        }
        tracing::info!(store, id = %id, "webhook secret loaded");
        Ok(fingerprint(trimmed.as_bytes()))
    }
}

fn fingerprint(bytes: &[u8]) -> Fingerprint {
    Sha256::digest(bytes).into()
}

/// The token of `Bearer <token>` (scheme case-insensitive, RFC 7235).
fn bearer_token(header: &[u8]) -> Option<&[u8]> {
    let header = std::str::from_utf8(header).ok()?.trim();
    let (scheme, token) = header.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token.as_bytes())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn bearer_token_parsing() {
        assert_eq!(bearer_token(b"Bearer abc"), Some(&b"abc"[..]));
        assert_eq!(bearer_token(b"bearer  abc "), Some(&b"abc"[..]));
        assert_eq!(bearer_token(b"Basic abc"), None);
        assert_eq!(bearer_token(b"Bearer "), None);
        assert_eq!(bearer_token(b"Bearer"), None);
        assert_eq!(bearer_token(b"abc"), None);
        assert_eq!(bearer_token(&[0xff, 0xfe]), None);
    }

    #[tokio::test]
    async fn verify_accepts_only_the_secret() {
        let secret = WebhookSecret::from_value("s3cret\n");
        assert_eq!(
            secret.verify(Some(b"Bearer s3cret")).await.unwrap(),
            Verdict::Accepted
        );
        assert_eq!(
            secret.verify(Some(b"Bearer s3cret2")).await.unwrap(),
            Verdict::Wrong
        );
        assert_eq!(
            secret.verify(Some(b"Bearer s3cre")).await.unwrap(),
            Verdict::Wrong
        );
        assert_eq!(
            secret.verify(Some(b"Basic s3cret")).await.unwrap(),
            Verdict::Missing
        );
        assert_eq!(secret.verify(None).await.unwrap(), Verdict::Missing);
        assert_eq!(
            WebhookSecret::disabled()
                .verify(Some(b"Bearer s3cret"))
                .await
                .unwrap(),
            Verdict::Disabled
        );
    }

    #[tokio::test]
    async fn empty_secret_is_refused_not_matched() {
        let secret = WebhookSecret::from_value("  ");
        let err = secret.verify(Some(b"Bearer x")).await.unwrap_err();
        assert!(
            matches!(
                err,
                Error::SecretUnusable {
                    problem: "is empty",
                    ..
                }
            ),
            "{err}"
        );
    }
}
