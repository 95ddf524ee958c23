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
    /// SSM Parameter Store SecureString, read with decryption (a parameter
    /// of another type is refused as a configuration error).
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
    /// The header is looked at first: without a well-formed `Bearer <token>`
    /// the answer is [`Verdict::Missing`] and the store is not called, so an
    /// SSM / Secrets Manager outage cannot turn a 401 into a 503. Only a
    /// bearer token triggers the (cached) fetch. Errors only when the secret
    /// cannot be read or used; the caller answers 503 so the sender retries
    /// instead of treating a store outage as bad credentials.
    pub async fn verify(&self, authorization: Option<&[u8]>) -> Result<Verdict, Error> {
        if matches!(self.source, SecretSource::Disabled) {
            return Ok(Verdict::Disabled);
        }
        let Some(token) = authorization.and_then(bearer_token) else {
            return Ok(Verdict::Missing);
        };
        let expected = self.fingerprint.get_or_try_init(|| self.fetch()).await?;
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
                // The issue asks for a SecureString (encrypted at rest, and
                // readable only with kms:Decrypt): refuse a plain String or
                // StringList holding the webhook secret.
                let kind = output.parameter().and_then(|p| p.r#type());
                if kind != Some(&aws_sdk_ssm::types::ParameterType::SecureString) {
                    return Err(Error::Config {
                        variable: crate::IngestConfig::SECRET_PARAM_VAR,
                        reason: format!(
                            "SSM parameter {name} is of type {}, not SecureString: \
                             store the webhook secret as a SecureString",
                            kind.map_or("(none)", |k| k.as_str())
                        ),
                    });
                }
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
    async fn header_is_checked_before_the_secret_is_fetched() {
        // A store source whose fetch always fails (no client): the header
        // decides first, and only a bearer token reaches the fetch.
        let secret = WebhookSecret {
            source: SecretSource::SsmParameter {
                name: "/selfheal/webhook".into(),
            },
            ssm: None,
            secrets_manager: None,
            fingerprint: OnceCell::new(),
        };
        for header in [
            None,
            Some(&b"Basic abc"[..]),
            Some(b"Bearer "),
            Some(b"abc"),
        ] {
            assert_eq!(secret.verify(header).await.unwrap(), Verdict::Missing);
        }
        assert!(secret.verify(Some(b"Bearer abc")).await.is_err());
        assert!(secret.fingerprint.get().is_none());
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
