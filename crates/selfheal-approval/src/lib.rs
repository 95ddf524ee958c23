//! Human approval for the state machines' `.waitForTaskToken` steps.
//!
//! `notify` receives a Step Functions task token, stores it under a fresh,
//! unguessable id ([`ApprovalId`], 256 random bits) with an expiry and one
//! fresh key per decision in an SSM SecureString parameter ([`SsmStore`]),
//! and mails/posts two links, each carrying the id and its own decision's
//! key. This function (a Lambda Function URL) redeems a link exactly once:
//! the key says which decision the link may make; it deletes the parameter
//! first (only one caller can delete it), then answers the waiting task with
//! `SendTaskSuccess` (approve) or `SendTaskFailure` with error
//! `SelfhealApprovalDenied` (deny), naming the caller ([`Caller`]). Unknown,
//! used, expired or no-longer-waiting links answer 410 Gone. A record minted
//! for a workload lives in that workload's SSM folder ([`DeploymentScope`]),
//! and [`mint_for`] refuses a new one while the folder holds the cap's worth
//! of unexpired records ([`Error::TooManyPending`]).
//!
//! Why GET only shows a confirmation page and POST decides: mail security
//! scanners and chat unfurlers fetch every link in a message; a GET that
//! decided would let a robot approve (or deny) a rollback.

pub mod http;
pub mod store;

use jiff::Timestamp;
use selfheal_contract::{ErrorType, WorkloadKind};
use serde::{Deserialize, Serialize};

pub use http::Approver;
pub use selfheal_contract::approval::{
    ApprovalDecision, ApprovalPlan, CALLER_FIELD_MAX_CHARS, Caller, Decision, PlanEvidence,
    PlannedChange,
};
pub use store::{ApprovalStore, SfnCallback, SsmStore, TaskCallback};

/// Error name the state machine's `Catch` matches for a denial.
pub const DENIED_ERROR: &str = "SelfhealApprovalDenied";

/// Default SSM parameter path under which approval records live.
pub const DEFAULT_PARAM_PREFIX: &str = "/selfheal/approvals";

/// Environment variable naming that path.
pub const PARAM_PREFIX_VAR: &str = "SELFHEAL_APPROVAL_PARAM_PREFIX";

/// The crate's one error type.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An AWS call failed; `retryable` says whether the same call can succeed later.
    #[error(transparent)]
    Aws(selfheal_aws::retry::AwsCallError),

    /// A stored approval record is not ours (hand-edited or another format).
    #[error("approval record {id} is unreadable: {source}")]
    CorruptRecord {
        id: String,
        #[source]
        source: serde_json::Error,
    },

    /// The environment is wrong (prefix, URL).
    #[error(transparent)]
    Config(#[from] selfheal_contract::env::Invalid),

    /// Minting input is unusable (empty task token, zero timeout).
    #[error("invalid approval request: {0}")]
    InvalidRequest(String),

    /// The workload already has `max` approvals nobody has answered yet;
    /// no record was written.
    #[error(
        "{deployment} already has {pending} pending approvals (at most {max}); answer or let them expire before asking again"
    )]
    TooManyPending {
        deployment: String,
        pending: usize,
        max: usize,
    },
}

impl Error {
    /// Stable name for Lambda's `errorType` (for the notify step's `Retry`;
    /// approve itself answers HTTP and only fails on infrastructure errors).
    pub fn error_type(&self) -> &'static str {
        match self {
            Error::Aws(call) if call.retryable => ErrorType::RetryableAwsError,
            Error::Aws(_) | Error::CorruptRecord { .. } => ErrorType::NonRetryableAwsError,
            Error::Config(_) => ErrorType::NonRetryableConfig,
            Error::InvalidRequest(_) => ErrorType::NonRetryableInvalidRequest,
            Error::TooManyPending { .. } => ErrorType::NonRetryableTooManyPendingApprovals,
        }
        .as_str()
    }
}

selfheal_runtime::diagnostic_from!(Error);

/// An unguessable, URL-safe approval id: 32 bytes from the thread CSPRNG,
/// base64url without padding (43 characters), optionally preceded by the
/// [`DeploymentScope`] it was minted for and a `.` (`<scope>.<random>`).
/// The scope names the SSM folder of the record, so the records of one
/// Deployment can be counted with one call.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ApprovalId(String);

/// Length of an encoded [`ApprovalId`] without a scope.
pub const APPROVAL_ID_LEN: usize = 43;

impl ApprovalId {
    /// A fresh random id.
    pub fn random() -> Self {
        use base64::Engine as _;
        use rand::RngCore as _;
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        ApprovalId(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
    }

    /// A fresh random id in `scope`.
    pub fn random_in(scope: &DeploymentScope) -> Self {
        ApprovalId(format!("{scope}.{}", Self::random()))
    }

    /// Accept only the exact shapes [`ApprovalId::random`] and
    /// [`ApprovalId::random_in`] produce, so a crafted id can never name
    /// another SSM parameter.
    pub fn parse(text: &str) -> Option<Self> {
        let random_ok = |r: &str| {
            r.len() == APPROVAL_ID_LEN
                && r.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        };
        let ok = match text.split_once('.') {
            None => random_ok(text),
            Some((scope, random)) => DeploymentScope::parse(scope).is_some() && random_ok(random),
        };
        ok.then(|| ApprovalId(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The scope segment and the random part (`None` for an unscoped id).
    pub fn split(&self) -> (Option<&str>, &str) {
        match self.0.split_once('.') {
            Some((scope, random)) => (Some(scope), random),
            None => (None, &self.0),
        }
    }
}

/// Which workload an approval is for, as a fixed-shape SSM path segment:
/// 16 lowercase hex digits of a 64-bit FNV-1a hash of cluster, namespace and
/// Deployment (and, for a StatefulSet or DaemonSet, its kind:
/// [`DeploymentScope::of_workload`]). A hash rather than the names keeps the
/// segment's shape fixed, so [`ApprovalId::parse`] stays an exact check; two
/// workloads sharing a hash would only share their cap.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DeploymentScope(String);

/// Length of a [`DeploymentScope`].
pub const SCOPE_LEN: usize = 16;

impl DeploymentScope {
    pub fn of(cluster: Option<&str>, namespace: &str, deployment: &str) -> Self {
        // NUL separates the names (no Kubernetes or EKS name contains it).
        Self::hashed(&format!(
            "{}\0{namespace}\0{deployment}",
            cluster.unwrap_or("")
        ))
    }

    /// The scope of a workload of any kind. A Deployment's is
    /// [`DeploymentScope::of`], unchanged, so the records minted before
    /// other kinds existed stay in their folder; a StatefulSet's or
    /// DaemonSet's hash also covers its kind, so one named like a Deployment
    /// in the same namespace has its own folder and cap.
    pub fn of_workload(
        cluster: Option<&str>,
        namespace: &str,
        kind: WorkloadKind,
        name: &str,
    ) -> Self {
        match kind {
            WorkloadKind::Deployment => Self::of(cluster, namespace, name),
            _ => Self::hashed(&format!(
                "{}\0{namespace}\0{name}\0{kind}",
                cluster.unwrap_or("")
            )),
        }
    }

    fn hashed(text: &str) -> Self {
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for b in text.bytes() {
            hash ^= u64::from(b);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
        DeploymentScope(format!("{hash:016x}"))
    }

    pub fn parse(text: &str) -> Option<Self> {
        let ok = text.len() == SCOPE_LEN
            && text
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        ok.then(|| DeploymentScope(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for DeploymentScope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::fmt::Display for ApprovalId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// What `notify` stores per approval (the SecureString value, JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApprovalRecord {
    /// The Step Functions task token (never leaves SSM and this function).
    pub task_token: String,
    pub expires_at: Timestamp,
    /// Execution ARN, for the page and the logs.
    pub execution: String,
    /// What is being decided, one line (e.g. `rollback shop/checkout on prod-eks`).
    pub summary: String,
    /// The secret only the approve link carries (`key=`), and the one only
    /// the deny link carries: the decision is bound to the link when it is
    /// minted, so whoever holds the deny link (a wider audience, say) cannot
    /// approve. Records minted before keys existed have none and can no
    /// longer be decided; they expire with their approval step.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub approve_key: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub deny_key: String,
    /// What the page shows before a decision; records minted before plans
    /// existed (and approvals without one) show `summary` alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<ApprovalPlan>,
}

/// Largest stored record, in bytes: SSM's Advanced tier holds 8 KiB per
/// value, and the record also carries the task token.
pub const MAX_RECORD_BYTES: usize = 8 * 1024 - 256;

impl ApprovalRecord {
    /// The record with its plan cut down until the stored value fits
    /// [`MAX_RECORD_BYTES`]; if even the smallest cut does not fit (changes
    /// are never cut), the plan goes and the page shows `summary` alone.
    pub fn fitted(mut self) -> ApprovalRecord {
        let Some(plan) = self.plan.take() else {
            return self;
        };
        for (chars, items) in [(usize::MAX, usize::MAX), (400, 12), (160, 6), (60, 3)] {
            let candidate = ApprovalRecord {
                plan: Some(plan.clipped(chars, items)),
                ..self.clone()
            };
            if serde_json::to_string(&candidate).map_or(usize::MAX, |s| s.len()) <= MAX_RECORD_BYTES
            {
                return candidate;
            }
        }
        self
    }
}

impl ApprovalRecord {
    /// The decision `key` stands for, if it is one of this record's keys.
    /// Constant-time: the comparison must not tell how much of a guess matched.
    pub fn decision_for(&self, key: &ApprovalId) -> Option<Decision> {
        use subtle::ConstantTimeEq as _;
        let matches = |stored: &str| {
            !stored.is_empty() && bool::from(stored.as_bytes().ct_eq(key.as_str().as_bytes()))
        };
        if matches(&self.approve_key) {
            Some(Decision::Approve)
        } else if matches(&self.deny_key) {
            Some(Decision::Deny)
        } else {
            None
        }
    }
}

/// The pair of links a notification carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApprovalLinks {
    pub approve_url: String,
    pub deny_url: String,
    pub expires_at: Timestamp,
}

/// Build the links for `id` under the Function URL `base`
/// (`https://<id>.lambda-url.<region>.on.aws/`). Each carries its own
/// decision's key; `decision=` is there for people reading the link (and
/// must agree with the key).
pub fn links_for(base: &str, id: &ApprovalId, record: &ApprovalRecord) -> ApprovalLinks {
    let base = base.trim_end_matches('/');
    let link = |d: Decision, key: &str| {
        format!("{base}/approve?id={id}&decision={}&key={key}", d.as_str())
    };
    ApprovalLinks {
        approve_url: link(Decision::Approve, &record.approve_key),
        deny_url: link(Decision::Deny, &record.deny_key),
        expires_at: record.expires_at,
    }
}

/// Store a new record for `task_token`, valid for `ttl_seconds` from `now`,
/// and return the links; no Deployment, so no cap ([`mint_for`] has both).
pub async fn mint<S: ApprovalStore>(
    store: &S,
    base_url: &str,
    now: Timestamp,
    ttl_seconds: u64,
    task_token: &str,
    execution: &str,
    summary: &str,
) -> Result<ApprovalLinks, Error> {
    let request = MintRequest {
        base_url,
        now,
        ttl_seconds,
        task_token,
        execution,
        summary,
        plan: None,
        deployment: None,
    };
    mint_for(store, &request).await
}

/// The workload an approval is for and how many of its approvals may be
/// pending at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingCap {
    /// `cluster/namespace/deployment` (`statefulset cluster/namespace/name`
    /// for the other kinds), for the error and the record's description.
    pub name: String,
    pub scope: DeploymentScope,
    pub max: usize,
}

/// What [`mint_for`] needs.
#[derive(Debug, Clone)]
pub struct MintRequest<'a> {
    /// The approve function's URL.
    pub base_url: &'a str,
    pub now: Timestamp,
    pub ttl_seconds: u64,
    pub task_token: &'a str,
    pub execution: &'a str,
    pub summary: &'a str,
    /// What the approval page shows ([`ApprovalPlan`]).
    pub plan: Option<ApprovalPlan>,
    /// `Some`: the record goes into the workload's folder, and minting is
    /// refused ([`Error::TooManyPending`]) while `max` of its records are
    /// pending (stored and not expired).
    pub deployment: Option<PendingCap>,
}

/// Store a new record and return the links. Called by `notify` for approval
/// steps. The count and the put are not atomic: two approvals minted for one
/// Deployment at the same instant can both pass a cap with one place left,
/// which is fine for what the cap is for (keeping records from piling up).
pub async fn mint_for<S: ApprovalStore>(
    store: &S,
    request: &MintRequest<'_>,
) -> Result<ApprovalLinks, Error> {
    let (now, ttl_seconds, task_token) = (request.now, request.ttl_seconds, request.task_token);
    if task_token.trim().is_empty() {
        return Err(Error::InvalidRequest("taskToken is empty".into()));
    }
    if ttl_seconds == 0 {
        return Err(Error::InvalidRequest(
            "approval timeout must be at least one second".into(),
        ));
    }
    let ttl = jiff::SignedDuration::from_secs(i64::try_from(ttl_seconds).unwrap_or(i64::MAX));
    let expires_at = now
        .checked_add(ttl)
        .map_err(|e| Error::InvalidRequest(format!("approval timeout {ttl_seconds}s: {e}")))?;
    let id = match &request.deployment {
        None => ApprovalId::random(),
        Some(cap) => {
            let pending = store.pending(&cap.scope, now, cap.max).await?;
            if pending >= cap.max {
                return Err(Error::TooManyPending {
                    deployment: cap.name.clone(),
                    pending,
                    max: cap.max,
                });
            }
            ApprovalId::random_in(&cap.scope)
        }
    };
    let record = ApprovalRecord {
        task_token: task_token.to_owned(),
        expires_at,
        execution: request.execution.to_owned(),
        summary: request.summary.to_owned(),
        approve_key: ApprovalId::random().to_string(),
        deny_key: ApprovalId::random().to_string(),
        plan: request.plan.clone(),
    }
    .fitted();
    store.put(&id, &record).await?;
    Ok(links_for(request.base_url, &id, &record))
}

/// Why a link cannot be used (all answer 410 Gone).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GoneReason {
    /// Never minted, or already used.
    UnknownOrUsed,
    /// Past its expiry.
    Expired,
    /// The execution stopped waiting (timed out, stopped, already answered).
    NoLongerWaiting,
}

impl GoneReason {
    pub fn message(self) -> &'static str {
        match self {
            GoneReason::UnknownOrUsed => {
                "This link was already used or does not exist; this request changed nothing."
            }
            GoneReason::Expired => "This link has expired; nothing was changed by it.",
            GoneReason::NoLongerWaiting => {
                "The remediation is no longer waiting for a decision (it timed out or was stopped)."
            }
        }
    }
}

/// What redeeming a link did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Redeemed {
    Decided {
        decision: Decision,
        /// Boxed: with its plan, a record is far larger than a `Gone`.
        record: Box<ApprovalRecord>,
    },
    Gone(GoneReason),
}

/// Look without using: the confirmation page for a GET.
pub async fn peek<S: ApprovalStore>(
    store: &S,
    now: Timestamp,
    id: &ApprovalId,
) -> Result<Result<ApprovalRecord, GoneReason>, Error> {
    Ok(match store.get(id).await? {
        None => Err(GoneReason::UnknownOrUsed),
        Some(record) if record.expires_at <= now => Err(GoneReason::Expired),
        Some(record) => Ok(record),
    })
}

/// Redeem `id` once with an unknown caller; see [`redeem_as`].
pub async fn redeem<S: ApprovalStore, C: TaskCallback>(
    store: &S,
    callback: &C,
    now: Timestamp,
    id: &ApprovalId,
    decision: Decision,
) -> Result<Redeemed, Error> {
    redeem_as(store, callback, now, id, decision, &Caller::default()).await
}

/// Redeem `id` once: take the record (single use: whoever deletes it wins),
/// check expiry, answer the waiting task, naming `caller`. Which decision a
/// link may make is the caller's check ([`ApprovalRecord::decision_for`],
/// done by [`http::handle`] before it gets here).
pub async fn redeem_as<S: ApprovalStore, C: TaskCallback>(
    store: &S,
    callback: &C,
    now: Timestamp,
    id: &ApprovalId,
    decision: Decision,
    caller: &Caller,
) -> Result<Redeemed, Error> {
    let Some(record) = store.take(id).await? else {
        return Ok(Redeemed::Gone(GoneReason::UnknownOrUsed));
    };
    if record.expires_at <= now {
        return Ok(Redeemed::Gone(GoneReason::Expired));
    }
    let answered = match decision {
        Decision::Approve => {
            let output = ApprovalDecision {
                decision: Decision::Approve,
                decided_at: Some(now.to_string()),
                decided_by: Some(caller.clone()),
            };
            callback
                .succeed(&record.task_token, &serde_json::json!(output).to_string())
                .await?
        }
        Decision::Deny => {
            let cause = format!(
                "Denied through an approval link at {now} {}.",
                caller.describe()
            );
            callback
                .fail(&record.task_token, DENIED_ERROR, &cause)
                .await?
        }
    };
    if !answered {
        return Ok(Redeemed::Gone(GoneReason::NoLongerWaiting));
    }
    Ok(Redeemed::Decided {
        decision,
        record: Box::new(record),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
pub(crate) mod tests;
