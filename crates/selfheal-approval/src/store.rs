//! Where approval records live (SSM) and how a waiting task is answered
//! (Step Functions), behind two small traits so the decision logic is
//! tested without AWS.

use aws_sdk_ssm::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_ssm::types::{ParameterTier, ParameterType};

use selfheal_contract::env::Invalid;

use crate::{ApprovalId, ApprovalRecord, DeploymentScope, Error};

/// Single-use record storage.
pub trait ApprovalStore {
    /// Store a new record (never overwrites: ids are fresh).
    fn put(
        &self,
        id: &ApprovalId,
        record: &ApprovalRecord,
    ) -> impl Future<Output = Result<(), Error>> + Send;

    /// Read without consuming (`None`: unknown or used).
    fn get(
        &self,
        id: &ApprovalId,
    ) -> impl Future<Output = Result<Option<ApprovalRecord>, Error>> + Send;

    /// Read and delete; of concurrent callers only one gets `Some`.
    fn take(
        &self,
        id: &ApprovalId,
    ) -> impl Future<Output = Result<Option<ApprovalRecord>, Error>> + Send;

    /// How many records in `scope` have not expired at `now`, counting no
    /// further than `limit` (the caller only asks whether the cap is reached).
    fn pending(
        &self,
        scope: &DeploymentScope,
        now: jiff::Timestamp,
        limit: usize,
    ) -> impl Future<Output = Result<usize, Error>> + Send;
}

/// Answers a `.waitForTaskToken` step. `Ok(false)`: the task is no longer
/// waiting (timed out, stopped, already answered).
pub trait TaskCallback {
    fn succeed(
        &self,
        token: &str,
        output: &str,
    ) -> impl Future<Output = Result<bool, Error>> + Send;

    fn fail(
        &self,
        token: &str,
        error: &str,
        cause: &str,
    ) -> impl Future<Output = Result<bool, Error>> + Send;
}

/// Decode a stored value.
pub(crate) fn decode(id: &ApprovalId, text: &str) -> Result<ApprovalRecord, Error> {
    serde_json::from_str(text).map_err(|source| Error::CorruptRecord {
        id: id.to_string(),
        source,
    })
}

/// An SDK error as [`Error::Aws`], classified by `selfheal_aws::retry`.
pub(crate) fn aws_error<E>(operation: &'static str, err: SdkError<E>) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    Error::Aws(selfheal_aws::retry::AwsCallError::new(operation, err))
}

/// Records as SSM SecureString parameters (encrypted with the account's
/// `aws/ssm` key; the value holds the task token): `<prefix>/<scope>/<random>`
/// for an id minted for a Deployment, so one `GetParametersByPath` on
/// `<prefix>/<scope>` lists that Deployment's records, else `<prefix>/<id>`.
#[derive(Debug, Clone)]
pub struct SsmStore {
    client: aws_sdk_ssm::Client,
    prefix: String,
}

impl SsmStore {
    /// `prefix` must start with `/` and name a path (e.g. `/selfheal/approvals`).
    pub fn new(client: aws_sdk_ssm::Client, prefix: &str) -> Result<Self, Error> {
        let prefix = prefix.trim().trim_end_matches('/');
        let valid = prefix.starts_with('/')
            && prefix.len() > 1
            && prefix
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"/_.-".contains(&b));
        if !valid {
            return Err(Error::Config(Invalid {
                variable: crate::PARAM_PREFIX_VAR,
                reason: format!(
                    "{prefix:?} is not an SSM parameter path (start with `/`; letters, digits, `/_.-`)"
                ),
            }));
        }
        Ok(SsmStore {
            client,
            prefix: prefix.to_owned(),
        })
    }

    pub fn name(&self, id: &ApprovalId) -> String {
        match id.split() {
            (Some(scope), random) => format!("{}/{scope}/{random}", self.prefix),
            (None, random) => format!("{}/{random}", self.prefix),
        }
    }

    /// The folder of one Deployment's records.
    pub fn folder(&self, scope: &DeploymentScope) -> String {
        format!("{}/{scope}", self.prefix)
    }
}

impl ApprovalStore for SsmStore {
    async fn put(&self, id: &ApprovalId, record: &ApprovalRecord) -> Result<(), Error> {
        let value = serde_json::to_string(record).map_err(|source| Error::CorruptRecord {
            id: id.to_string(),
            source,
        })?;
        let put = self
            .client
            .put_parameter()
            .name(self.name(id))
            .description(format!(
                "selfheal approval link, expires {}",
                record.expires_at
            ))
            .value(value)
            .r#type(ParameterType::SecureString)
            // SSM deletes the parameter itself when the link expires, so a
            // link nobody opens does not stay behind toward the account's
            // parameter quota. Expiration policies need the Advanced tier
            // (billed per parameter-hour; a record lives at most the
            // approval timeout).
            .tier(ParameterTier::Advanced)
            .policies(expiration_policy(record.expires_at))
            .overwrite(false)
            .send()
            .await;
        match put {
            Ok(_) => Ok(()),
            // The SDK re-sends a PutParameter whose answer was lost; the first
            // send may have stored it. Ids are fresh random values, so an
            // existing parameter holding exactly this record is that first
            // send, not a collision: the put succeeded.
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_parameter_already_exists()) =>
            {
                match self.get(id).await? {
                    Some(stored) if &stored == record => Ok(()),
                    _ => Err(aws_error("ssm:PutParameter", e)),
                }
            }
            Err(e) => Err(aws_error("ssm:PutParameter", e)),
        }
    }

    async fn get(&self, id: &ApprovalId) -> Result<Option<ApprovalRecord>, Error> {
        let got = self
            .client
            .get_parameter()
            .name(self.name(id))
            .with_decryption(true)
            .send()
            .await;
        match got {
            Ok(out) => match out.parameter().and_then(|p| p.value()) {
                Some(text) => decode(id, text).map(Some),
                None => Ok(None),
            },
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_parameter_not_found()) =>
            {
                Ok(None)
            }
            Err(e) => Err(aws_error("ssm:GetParameter", e)),
        }
    }

    async fn take(&self, id: &ApprovalId) -> Result<Option<ApprovalRecord>, Error> {
        let Some(record) = self.get(id).await? else {
            return Ok(None);
        };
        // The delete is the lock: SSM lets exactly one caller delete it.
        match self
            .client
            .delete_parameter()
            .name(self.name(id))
            .send()
            .await
        {
            Ok(_) => Ok(Some(record)),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_parameter_not_found()) =>
            {
                Ok(None)
            }
            Err(e) => Err(aws_error("ssm:DeleteParameter", e)),
        }
    }

    async fn pending(
        &self,
        scope: &DeploymentScope,
        now: jiff::Timestamp,
        limit: usize,
    ) -> Result<usize, Error> {
        let mut count = 0;
        let mut next: Option<String> = None;
        loop {
            let page = self
                .client
                .get_parameters_by_path()
                .path(self.folder(scope))
                .recursive(false)
                // The expiry is in the encrypted value; SSM runs expiration
                // policies late, so an expired record can still be listed.
                .with_decryption(true)
                .set_next_token(next.take())
                .send()
                .await
                .map_err(|e| aws_error("ssm:GetParametersByPath", e))?;
            for parameter in page.parameters() {
                let name = parameter.name().unwrap_or_default();
                let unexpired = parameter
                    .value()
                    .and_then(|text| serde_json::from_str::<ApprovalRecord>(text).ok())
                    .is_some_and(|record| record.expires_at > now);
                if unexpired {
                    count += 1;
                } else {
                    tracing::debug!(
                        parameter = name,
                        "expired or unreadable approval record not counted"
                    );
                }
            }
            next = page.next_token().map(str::to_owned);
            if count >= limit || next.is_none() {
                return Ok(count);
            }
        }
    }
}

/// An SSM parameter policy deleting the parameter at `at` (SSM's
/// `Expiration` policy, timestamps in UTC with milliseconds).
pub fn expiration_policy(at: jiff::Timestamp) -> String {
    let at = at.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string();
    serde_json::json!([{
        "Type": "Expiration",
        "Version": "1.0",
        "Attributes": { "Timestamp": at },
    }])
    .to_string()
}

/// `SendTaskSuccess` / `SendTaskFailure`.
#[derive(Debug, Clone)]
pub struct SfnCallback {
    client: aws_sdk_sfn::Client,
}

impl SfnCallback {
    pub fn new(client: aws_sdk_sfn::Client) -> Self {
        SfnCallback { client }
    }
}

/// The error codes that mean "this task is not waiting any more".
fn not_waiting(code: Option<&str>) -> bool {
    matches!(
        code,
        Some("TaskTimedOut" | "TaskDoesNotExist" | "InvalidToken")
    )
}

/// Whether a callback reached a waiting task: `Ok(false)` when the task is
/// no longer waiting ([`not_waiting`]), the classified error otherwise.
fn delivered<T, E>(operation: &'static str, result: Result<T, SdkError<E>>) -> Result<bool, Error>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    match result {
        Ok(_) => Ok(true),
        Err(e) if not_waiting(e.code()) => Ok(false),
        Err(e) => Err(aws_error(operation, e)),
    }
}

impl TaskCallback for SfnCallback {
    async fn succeed(&self, token: &str, output: &str) -> Result<bool, Error> {
        let result = self
            .client
            .send_task_success()
            .task_token(token)
            .output(output)
            .send()
            .await;
        delivered("states:SendTaskSuccess", result)
    }

    async fn fail(&self, token: &str, error: &str, cause: &str) -> Result<bool, Error> {
        let result = self
            .client
            .send_task_failure()
            .task_token(token)
            .error(error)
            .cause(cause)
            .send()
            .await;
        delivered("states:SendTaskFailure", result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client() -> aws_sdk_ssm::Client {
        let conf = aws_sdk_ssm::Config::builder()
            .behavior_version(aws_sdk_ssm::config::BehaviorVersion::latest())
            .region(aws_sdk_ssm::config::Region::new("eu-west-1"))
            .build();
        aws_sdk_ssm::Client::from_conf(conf)
    }

    #[test]
    fn prefix_is_validated_and_names_are_under_it() {
        let store = SsmStore::new(client(), "/selfheal/approvals/").expect("valid prefix");
        let id = ApprovalId::parse(&"b".repeat(43)).expect("id");
        assert_eq!(
            store.name(&id),
            format!("/selfheal/approvals/{}", "b".repeat(43))
        );
        let scope = DeploymentScope::of(Some("prod"), "shop", "checkout");
        let scoped = ApprovalId::parse(&format!("{scope}.{}", "b".repeat(43))).expect("id");
        assert_eq!(
            store.name(&scoped),
            format!("/selfheal/approvals/{scope}/{}", "b".repeat(43))
        );
        assert_eq!(store.folder(&scope), format!("/selfheal/approvals/{scope}"));
        for bad in ["selfheal", "/", "/a b", "/x?y"] {
            let err = SsmStore::new(client(), bad).expect_err(bad);
            assert_eq!(err.error_type(), "NonRetryableConfig");
        }
    }

    #[test]
    fn records_expire_in_ssm_when_their_link_does() {
        let at: jiff::Timestamp = "2026-11-27T11:00:00Z".parse().expect("time");
        let policy: serde_json::Value = serde_json::from_str(&expiration_policy(at)).expect("JSON");
        assert_eq!(
            policy,
            serde_json::json!([{"Type": "Expiration", "Version": "1.0",
                "Attributes": {"Timestamp": "2026-11-27T11:00:00.000Z"}}])
        );
    }

    #[test]
    fn not_waiting_codes() {
        assert!(not_waiting(Some("TaskTimedOut")));
        assert!(not_waiting(Some("TaskDoesNotExist")));
        assert!(!not_waiting(Some("ThrottlingException")));
        assert!(!not_waiting(None));
    }
}
