//! The webhook's bearer secret: fetched once per process, compared in
//! constant time. A failed fetch is remembered for [`FAILURE_TTL`], so a
//! flood of `Bearer x` requests during a store outage (or against a
//! misconfigured secret) costs one SSM / Secrets Manager call per few
//! seconds, not one per request.
//!
//! Only a SHA-256 digest of the secret is kept after the fetch, and the
//! presented token is hashed the same way before the comparison, so the
//! comparison time depends on neither the secret's length nor its content.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use aws_config::SdkConfig;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tokio::sync::OnceCell;

use selfheal_contract::env::Invalid;

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

/// How long a failed fetch answers for the store: short enough that a
/// recovered store is used within one Alertmanager retry, long enough that
/// unauthenticated `Bearer x` floods cannot turn into one store call each.
pub const FAILURE_TTL: Duration = Duration::from_secs(5);

/// A failed fetch, kept so it can be answered again without the store.
/// Holds what the [`Error`] said (not the error, which is not `Clone`), so a
/// replay keeps its variant and therefore its `errorType`.
#[derive(Debug, Clone)]
enum Failure {
    Unavailable {
        store: &'static str,
        id: String,
        message: String,
    },
    Unusable {
        store: &'static str,
        id: String,
        problem: &'static str,
    },
    Config(Invalid),
}

impl Failure {
    fn of(error: &Error) -> Option<Failure> {
        match error {
            Error::SecretUnavailable { store, id, source } => Some(Failure::Unavailable {
                store,
                id: id.clone(),
                message: source.to_string(),
            }),
            Error::SecretUnusable { store, id, problem } => Some(Failure::Unusable {
                store,
                id: id.clone(),
                problem,
            }),
            Error::Config(invalid) => Some(Failure::Config(invalid.clone())),
            _ => None,
        }
    }

    fn replay(&self) -> Error {
        match self.clone() {
            Failure::Unavailable { store, id, message } => Error::SecretUnavailable {
                store,
                id,
                source: format!(
                    "{message} (a failed fetch is reused for {}s before the store is asked again)",
                    FAILURE_TTL.as_secs()
                )
                .into(),
            },
            Failure::Unusable { store, id, problem } => {
                Error::SecretUnusable { store, id, problem }
            }
            Failure::Config(invalid) => Error::Config(invalid),
        }
    }
}

/// The last failed fetch and until when it answers instead of the store.
/// Pure (the caller passes the time), so its expiry is tested without sleeping.
#[derive(Debug)]
struct FailureCache {
    ttl: Duration,
    last: Option<(Instant, Failure)>,
}

impl FailureCache {
    fn new(ttl: Duration) -> Self {
        FailureCache { ttl, last: None }
    }

    /// The cached failure as an error, while it is younger than the TTL.
    fn fresh(&self, now: Instant) -> Option<Error> {
        let (until, failure) = self.last.as_ref()?;
        (now < *until).then(|| failure.replay())
    }

    /// Remember `error` (when it is a fetch failure) from `now` on.
    fn store(&mut self, now: Instant, error: &Error) {
        if let Some(failure) = Failure::of(error) {
            self.last = Some((now + self.ttl, failure));
        }
    }
}

/// The secret, lazily fetched on the first webhook request and then cached
/// for the life of the process. A failed fetch is cached for [`FAILURE_TTL`]
/// (requests in that window get the same error without a store call); the
/// first request after it tries again.
#[derive(Debug)]
pub struct WebhookSecret {
    source: SecretSource,
    ssm: Option<aws_sdk_ssm::Client>,
    secrets_manager: Option<aws_sdk_secretsmanager::Client>,
    fingerprint: OnceCell<Fingerprint>,
    failure: Mutex<FailureCache>,
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
            failure: Mutex::new(FailureCache::new(FAILURE_TTL)),
        }
    }

    /// Keep a failed fetch for `ttl` instead of [`FAILURE_TTL`] (tests;
    /// `Duration::ZERO` asks the store on every request).
    pub fn with_failure_ttl(self, ttl: Duration) -> Self {
        WebhookSecret {
            failure: Mutex::new(FailureCache::new(ttl)),
            ..self
        }
    }

    /// A fixed secret (tests, local runs): no AWS client involved.
    pub fn from_value(value: impl Into<String>) -> Self {
        WebhookSecret {
            source: SecretSource::Value(SecretString::from(value.into())),
            ssm: None,
            secrets_manager: None,
            fingerprint: OnceCell::new(),
            failure: Mutex::new(FailureCache::new(FAILURE_TTL)),
        }
    }

    /// Refuse everything (no secret configured).
    pub fn disabled() -> Self {
        WebhookSecret {
            source: SecretSource::Disabled,
            ssm: None,
            secrets_manager: None,
            fingerprint: OnceCell::new(),
            failure: Mutex::new(FailureCache::new(FAILURE_TTL)),
        }
    }

    /// Check an `Authorization` header value against the secret.
    ///
    /// The header is looked at first: without a well-formed `Bearer <token>`
    /// the answer is [`Verdict::Missing`] and the store is not called, so an
    /// SSM / Secrets Manager outage cannot turn a 401 into a 503. Only a
    /// bearer token triggers the (cached) fetch. Errors only when the secret
    /// cannot be read or used; the caller answers 503 so the sender retries
    /// instead of treating a store outage as bad credentials. A failed fetch
    /// answers again, without a store call, for [`FAILURE_TTL`].
    pub async fn verify(&self, authorization: Option<&[u8]>) -> Result<Verdict, Error> {
        if matches!(self.source, SecretSource::Disabled) {
            return Ok(Verdict::Disabled);
        }
        let Some(token) = authorization.and_then(bearer_token) else {
            return Ok(Verdict::Missing);
        };
        // Checked inside the initialiser too: requests queued behind a fetch
        // that failed get its failure instead of each fetching in turn.
        let expected = self
            .fingerprint
            .get_or_try_init(|| async {
                if let Some(error) = self.cached_failure(Instant::now()) {
                    return Err(error);
                }
                // Boxed: the SDK futures inside are deep enough that one more
                // layer of nesting overflows rustc's layout query depth in
                // the function binary's main future.
                let fetched = Box::pin(self.fetch()).await;
                if let Err(error) = &fetched {
                    self.remember_failure(Instant::now(), error);
                }
                fetched
            })
            .await?;
        let presented = fingerprint(token);
        if bool::from(presented.ct_eq(expected)) {
            Ok(Verdict::Accepted)
        } else {
            Ok(Verdict::Wrong)
        }
    }

    fn cached_failure(&self, now: Instant) -> Option<Error> {
        self.failure
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .fresh(now)
    }

    fn remember_failure(&self, now: Instant, error: &Error) {
        self.failure
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .store(now, error);
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
                let output = selfheal_aws::get_decrypted_parameter(client, name)
                    .await
                    .map_err(|e| unavailable(store, name, e))?;
                // The issue asks for a SecureString (encrypted at rest, and
                // readable only with kms:Decrypt): refuse a plain String or
                // StringList holding the webhook secret.
                let kind = output.parameter().and_then(|p| p.r#type());
                if kind != Some(&aws_sdk_ssm::types::ParameterType::SecureString) {
                    return Err(Error::Config(Invalid {
                        variable: crate::IngestConfig::SECRET_PARAM_VAR,
                        reason: format!(
                            "SSM parameter {name} is of type {}, not SecureString: \
                             store the webhook secret as a SecureString",
                            kind.map_or("(none)", |k| k.as_str())
                        ),
                    }));
                }
                let value = output
                    .parameter()
                    .and_then(|p| p.value())
                    .map(|v| SecretString::from(v.to_owned()))
                    .ok_or_else(|| unusable(store, name, "has no value"))?;
                (store, name.clone(), value)
            }
            (SecretSource::SecretsManager { id }, _, Some(client)) => {
                let store = "Secrets Manager secret";
                let output = selfheal_aws::get_secret_value(client, id)
                    .await
                    .map_err(|e| unavailable(store, id, e))?;
                let text = match (output.secret_string(), output.secret_binary()) {
                    (Some(text), _) => Some(text.to_owned()),
                    (None, Some(blob)) => String::from_utf8(blob.as_ref().to_vec()).ok(),
                    (None, None) => None,
                };
                let value = text
                    .map(SecretString::from)
                    .ok_or_else(|| unusable(store, id, "has no text value"))?;
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
            return Err(unusable(store, &id, "is empty"));
        }
        tracing::info!(store, id = %id, "webhook secret loaded");
        Ok(fingerprint(trimmed.as_bytes()))
    }
}

/// The store gave no answer (retryable): the SDK error with its context.
fn unavailable(store: &'static str, id: &str, error: impl std::error::Error) -> Error {
    let source = aws_sdk_ssm::error::DisplayErrorContext(error).to_string();
    let (id, source) = (id.to_owned(), source.into());
    Error::SecretUnavailable { store, id, source }
}

/// The store answered, but with nothing usable as the secret.
fn unusable(store: &'static str, id: &str, problem: &'static str) -> Error {
    let id = id.to_owned();
    Error::SecretUnusable { store, id, problem }
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
        let cases: [(Option<&[u8]>, Verdict); 5] = [
            (Some(b"Bearer s3cret"), Verdict::Accepted),
            (Some(b"Bearer s3cret2"), Verdict::Wrong),
            (Some(b"Bearer s3cre"), Verdict::Wrong),
            (Some(b"Basic s3cret"), Verdict::Missing),
            (None, Verdict::Missing),
        ];
        for (header, verdict) in cases {
            assert_eq!(secret.verify(header).await.unwrap(), verdict, "{header:?}");
        }
        assert_eq!(
            WebhookSecret::disabled()
                .verify(Some(b"Bearer s3cret"))
                .await
                .unwrap(),
            Verdict::Disabled
        );
    }

    /// A store source whose fetch always fails ("is not set": no client).
    fn store_without_client() -> WebhookSecret {
        WebhookSecret {
            source: SecretSource::SsmParameter {
                name: "/selfheal/webhook".into(),
            },
            ssm: None,
            secrets_manager: None,
            fingerprint: OnceCell::new(),
            failure: Mutex::new(FailureCache::new(FAILURE_TTL)),
        }
    }

    #[tokio::test]
    async fn header_is_checked_before_the_secret_is_fetched() {
        // A store source whose fetch always fails (no client): the header
        // decides first, and only a bearer token reaches the fetch.
        let secret = store_without_client();
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

    fn unavailable() -> Error {
        Error::SecretUnavailable {
            store: "SSM parameter",
            id: "/selfheal/webhook".into(),
            source: "dispatch failure: connection refused".into(),
        }
    }

    #[test]
    fn a_failed_fetch_answers_until_its_ttl_then_the_store_is_asked_again() {
        let t0 = Instant::now();
        let mut cache = FailureCache::new(Duration::from_secs(5));
        assert!(cache.fresh(t0).is_none(), "nothing failed yet");
        cache.store(t0, &unavailable());
        for later in [Duration::ZERO, Duration::from_millis(4_999)] {
            let error = cache.fresh(t0 + later).expect("cached failure");
            assert_eq!(error.error_type(), "RetryableSecretUnavailable");
            let text = error.to_string();
            assert!(
                text.starts_with(
                    "cannot read webhook secret from SSM parameter /selfheal/webhook: \
                     dispatch failure: connection refused"
                ),
                "{text}"
            );
        }
        assert!(cache.fresh(t0 + Duration::from_secs(5)).is_none());
        // A new failure starts a new window.
        let t1 = t0 + Duration::from_secs(6);
        cache.store(t1, &unavailable());
        assert!(cache.fresh(t1 + Duration::from_secs(4)).is_some());
        assert!(cache.fresh(t1 + Duration::from_secs(5)).is_none());
    }

    #[test]
    fn a_replayed_failure_keeps_its_variant_and_error_type() {
        let t0 = Instant::now();
        for error in [
            Error::SecretUnusable {
                store: "Secrets Manager secret",
                id: "webhook".into(),
                problem: "is empty",
            },
            Error::Config(Invalid {
                variable: crate::IngestConfig::SECRET_PARAM_VAR,
                reason: "SSM parameter /x is of type String, not SecureString".into(),
            }),
        ] {
            let mut cache = FailureCache::new(FAILURE_TTL);
            cache.store(t0, &error);
            let replayed = cache.fresh(t0).expect("cached");
            assert_eq!(replayed.error_type(), error.error_type());
            assert_eq!(replayed.to_string(), error.to_string());
        }
        // Only fetch failures are kept.
        let mut cache = FailureCache::new(FAILURE_TTL);
        cache.store(
            t0,
            &Error::FunctionUrl {
                source: serde_json::from_str::<u8>("x").unwrap_err(),
            },
        );
        assert!(cache.fresh(t0).is_none());
        // A zero TTL keeps nothing.
        let mut cache = FailureCache::new(Duration::ZERO);
        cache.store(t0, &unavailable());
        assert!(cache.fresh(t0).is_none());
    }

    /// What an `Error::SecretUnusable` says is wrong with the secret.
    fn unusable_problem(err: &Error) -> Option<&'static str> {
        match err {
            Error::SecretUnusable { problem, .. } => Some(problem),
            _ => None,
        }
    }

    #[tokio::test]
    async fn verify_answers_a_recent_failure_without_fetching() {
        // No client: every fetch fails with "is not set". A failure planted
        // in the cache answers instead, proving no fetch ran.
        let secret = store_without_client();
        secret.remember_failure(Instant::now(), &unavailable());
        let err = secret.verify(Some(b"Bearer x")).await.unwrap_err();
        assert_eq!(err.error_type(), "RetryableSecretUnavailable", "{err}");
        assert!(err.to_string().contains("connection refused"), "{err}");
        // Expired: the store is asked again (here: fails for the missing client).
        let secret = secret.with_failure_ttl(Duration::ZERO);
        let err = secret.verify(Some(b"Bearer x")).await.unwrap_err();
        assert_eq!(unusable_problem(&err), Some("is not set"), "{err}");
    }

    #[tokio::test]
    async fn empty_secret_is_refused_not_matched() {
        let secret = WebhookSecret::from_value("  ");
        let err = secret.verify(Some(b"Bearer x")).await.unwrap_err();
        assert_eq!(unusable_problem(&err), Some("is empty"), "{err}");
    }
}
