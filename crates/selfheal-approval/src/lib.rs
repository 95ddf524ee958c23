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
    ApprovalDecision, ApprovalPlan, CALLER_FIELD_MAX_CHARS, Caller, PlanEvidence, PlannedChange,
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

/// approve | deny.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Decision {
    Approve,
    Deny,
}

impl Decision {
    /// Whether a link minted for `self` may make `wanted`: the approve link
    /// may also deny (the page offers both, and denying changes nothing), the
    /// deny link may only deny, so whoever holds it cannot approve.
    pub fn permits(self, wanted: Decision) -> bool {
        self == Decision::Approve || wanted == Decision::Deny
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "approve" => Some(Decision::Approve),
            "deny" => Some(Decision::Deny),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Approve => "approve",
            Decision::Deny => "deny",
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
                decision: "approve".into(),
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
pub(crate) mod tests {
    use std::collections::HashMap;
    use std::sync::Mutex;

    use super::*;

    /// In-memory store with the same single-use semantics as SSM (delete wins once).
    #[derive(Debug, Default)]
    pub struct MemoryStore(pub Mutex<HashMap<String, String>>);

    impl ApprovalStore for MemoryStore {
        async fn put(&self, id: &ApprovalId, record: &ApprovalRecord) -> Result<(), Error> {
            let text = serde_json::to_string(record).unwrap();
            self.0.lock().unwrap().insert(id.to_string(), text);
            Ok(())
        }
        async fn get(&self, id: &ApprovalId) -> Result<Option<ApprovalRecord>, Error> {
            let text = self.0.lock().unwrap().get(id.as_str()).cloned();
            text.map(|t| store::decode(id, &t)).transpose()
        }
        async fn take(&self, id: &ApprovalId) -> Result<Option<ApprovalRecord>, Error> {
            let text = self.0.lock().unwrap().remove(id.as_str());
            text.map(|t| store::decode(id, &t)).transpose()
        }
        async fn pending(
            &self,
            scope: &DeploymentScope,
            now: Timestamp,
            _limit: usize,
        ) -> Result<usize, Error> {
            let map = self.0.lock().unwrap();
            Ok(map
                .iter()
                .filter(|(id, _)| id.starts_with(&format!("{scope}.")))
                .filter_map(|(_, text)| serde_json::from_str::<ApprovalRecord>(text).ok())
                .filter(|r| r.expires_at > now)
                .count())
        }
    }

    /// Records the calls; `waiting` false simulates TaskTimedOut.
    #[derive(Debug)]
    pub struct FakeCallback {
        pub waiting: bool,
        pub calls: Mutex<Vec<(String, String, String)>>,
    }

    impl FakeCallback {
        pub fn new(waiting: bool) -> Self {
            FakeCallback {
                waiting,
                calls: Mutex::new(vec![]),
            }
        }
    }

    impl TaskCallback for FakeCallback {
        async fn succeed(&self, token: &str, output: &str) -> Result<bool, Error> {
            self.calls
                .lock()
                .unwrap()
                .push(("success".into(), token.into(), output.into()));
            Ok(self.waiting)
        }
        async fn fail(&self, token: &str, error: &str, cause: &str) -> Result<bool, Error> {
            self.calls.lock().unwrap().push((
                "failure".into(),
                token.into(),
                format!("{error}: {cause}"),
            ));
            Ok(self.waiting)
        }
    }

    /// The value of `name=` in a link's query.
    pub fn param_of(url: &str, name: &str) -> ApprovalId {
        let query = url.split('?').nth(1).unwrap();
        let value = query
            .split('&')
            .find_map(|pair| pair.strip_prefix(&format!("{name}=")))
            .unwrap();
        ApprovalId::parse(value).unwrap()
    }

    pub fn id_of(url: &str) -> ApprovalId {
        param_of(url, "id")
    }

    pub fn t(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    /// An empty store, a callback whose task is still waiting (`waiting`)
    /// or no longer is, and the time the tests mint at.
    pub fn setup(waiting: bool) -> (MemoryStore, FakeCallback, Timestamp) {
        let now = t("2026-11-27T10:00:00Z");
        (MemoryStore::default(), FakeCallback::new(waiting), now)
    }

    /// The links of one approval minted at `now` for a minute.
    pub async fn minted(store: &MemoryStore, now: Timestamp) -> ApprovalLinks {
        mint(store, "https://u", now, 60, "TOK", "arn:e", "s")
            .await
            .unwrap()
    }

    #[test]
    fn ids_are_random_url_safe_and_strictly_parsed() {
        let a = ApprovalId::random();
        let b = ApprovalId::random();
        assert_ne!(a, b);
        assert_eq!(a.as_str().len(), APPROVAL_ID_LEN);
        assert_eq!(ApprovalId::parse(a.as_str()), Some(a.clone()));
        for bad in [
            "",
            "short",
            &format!("{}=", &a.as_str()[..42]),
            &format!("../{}", &a.as_str()[3..]),
            &format!("{}x", a.as_str()),
        ] {
            assert_eq!(ApprovalId::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn links_carry_the_id_the_decision_and_only_their_own_key() {
        let id = ApprovalId::parse(&"A".repeat(43)).unwrap();
        let record = ApprovalRecord {
            task_token: "TOKEN".into(),
            expires_at: t("2026-11-27T11:00:00Z"),
            execution: "arn:e".into(),
            summary: "s".into(),
            approve_key: "K".repeat(43),
            deny_key: "D".repeat(43),
            plan: None,
        };
        let links = links_for("https://abc.lambda-url.eu-west-1.on.aws/", &id, &record);
        assert_eq!(
            links.approve_url,
            format!(
                "https://abc.lambda-url.eu-west-1.on.aws/approve?id={}&decision=approve&key={}",
                "A".repeat(43),
                "K".repeat(43)
            )
        );
        assert!(
            links
                .deny_url
                .ends_with(&format!("&decision=deny&key={}", "D".repeat(43)))
        );
        assert!(!links.deny_url.contains(&record.approve_key));
        assert!(!links.approve_url.contains("TOKEN"));
        assert_eq!(links.expires_at, record.expires_at);
    }

    #[tokio::test]
    async fn each_key_stands_for_its_own_decision_only() {
        let store = MemoryStore::default();
        let now = t("2026-11-27T10:00:00Z");
        let links = minted(&store, now).await;
        let record = store
            .get(&id_of(&links.approve_url))
            .await
            .unwrap()
            .unwrap();
        let approve = param_of(&links.approve_url, "key");
        let deny = param_of(&links.deny_url, "key");
        assert_ne!(approve, deny);
        assert_eq!(record.decision_for(&approve), Some(Decision::Approve));
        assert_eq!(record.decision_for(&deny), Some(Decision::Deny));
        assert_eq!(record.decision_for(&id_of(&links.approve_url)), None);
        // A record without keys (minted before they existed) decides nothing.
        let legacy = ApprovalRecord {
            approve_key: String::new(),
            deny_key: String::new(),
            ..record
        };
        assert_eq!(legacy.decision_for(&approve), None);
    }

    #[test]
    fn callers_are_cleaned_and_capped() {
        let caller = Caller::new(
            Some(" 203.0.113.7 "),
            Some("curl/8.5\n\u{1b}[31m<!channel>"),
        );
        assert_eq!(caller.source_ip.as_deref(), Some("203.0.113.7"));
        assert_eq!(caller.user_agent.as_deref(), Some("curl/8.5[31m<!channel>"));
        let long = Caller::new(None, Some(&"x".repeat(1000)));
        assert_eq!(long.user_agent.unwrap().len(), CALLER_FIELD_MAX_CHARS);
        assert_eq!(Caller::new(Some(""), None), Caller::default());
        assert_eq!(
            Caller::default().describe(),
            "from an unknown address (no user agent)"
        );
    }

    #[tokio::test]
    async fn mint_then_approve_once_then_gone() {
        let (store, cb, now) = setup(true);
        let links = mint(
            &store,
            "https://u/",
            now,
            600,
            "TOKEN-1",
            "arn:exec",
            "rollback shop/checkout",
        )
        .await
        .unwrap();
        assert_eq!(links.expires_at, t("2026-11-27T10:10:00Z"));
        let id = id_of(&links.approve_url);
        // The stored value holds the token, the link does not.
        assert!(!links.approve_url.contains("TOKEN-1"));
        assert_eq!(
            peek(&store, now, &id).await.unwrap().unwrap().task_token,
            "TOKEN-1"
        );

        let first = redeem(&store, &cb, now, &id, Decision::Approve)
            .await
            .unwrap();
        match first {
            Redeemed::Decided { decision, record } => {
                assert_eq!(decision, Decision::Approve);
                assert_eq!(record.execution, "arn:exec");
            }
            other => panic!("{other:?}"),
        }
        let calls = cb.calls.lock().unwrap().clone();
        assert_eq!(calls.len(), 1);
        assert_eq!(calls[0].0, "success");
        assert_eq!(calls[0].1, "TOKEN-1");
        let output: serde_json::Value = serde_json::from_str(&calls[0].2).unwrap();
        assert_eq!(output["decision"], "approve");

        // Reuse: gone, and no second callback.
        let second = redeem(&store, &cb, now, &id, Decision::Deny).await.unwrap();
        assert_eq!(second, Redeemed::Gone(GoneReason::UnknownOrUsed));
        assert_eq!(cb.calls.lock().unwrap().len(), 1);
        assert_eq!(
            peek(&store, now, &id).await.unwrap(),
            Err(GoneReason::UnknownOrUsed)
        );
    }

    #[tokio::test]
    async fn deny_sends_the_denied_error() {
        let (store, cb, now) = setup(true);
        let links = minted(&store, now).await;
        let id = id_of(&links.deny_url);
        let r = redeem(&store, &cb, now, &id, Decision::Deny).await.unwrap();
        assert!(matches!(
            r,
            Redeemed::Decided {
                decision: Decision::Deny,
                ..
            }
        ));
        let calls = cb.calls.lock().unwrap().clone();
        assert_eq!(calls[0].0, "failure");
        assert!(
            calls[0].2.starts_with("SelfhealApprovalDenied: Denied"),
            "{}",
            calls[0].2
        );
        assert!(store.0.lock().unwrap().is_empty(), "denied record deleted");
    }

    fn capped<'a>(token: &'a str, now: Timestamp, deployment: &str) -> MintRequest<'a> {
        MintRequest {
            base_url: "https://u",
            now,
            ttl_seconds: 60,
            task_token: token,
            execution: "arn:e",
            summary: "s",
            plan: None,
            deployment: Some(PendingCap {
                name: format!("prod/shop/{deployment}"),
                scope: DeploymentScope::of(Some("prod"), "shop", deployment),
                max: 2,
            }),
        }
    }

    #[tokio::test]
    async fn a_deployment_with_max_pending_approvals_gets_no_more() {
        let store = MemoryStore::default();
        let now = t("2026-11-27T10:00:00Z");
        for token in ["T1", "T2"] {
            let links = mint_for(&store, &capped(token, now, "checkout"))
                .await
                .unwrap();
            // The id names the Deployment's folder, and parses back.
            let id = id_of(&links.approve_url);
            assert_eq!(
                id.split().0,
                Some(DeploymentScope::of(Some("prod"), "shop", "checkout").as_str())
            );
        }
        let err = mint_for(&store, &capped("T3", now, "checkout"))
            .await
            .unwrap_err();
        assert_eq!(err.error_type(), "NonRetryableTooManyPendingApprovals");
        assert!(err.to_string().contains("prod/shop/checkout"), "{err}");
        assert_eq!(store.0.lock().unwrap().len(), 2, "no third record");
        // Another Deployment has its own cap.
        mint_for(&store, &capped("T4", now, "cart")).await.unwrap();
        // Expired records do not count, even before SSM deletes them.
        let later = t("2026-11-27T10:01:00Z");
        mint_for(&store, &capped("T5", later, "checkout"))
            .await
            .unwrap();
        assert_eq!(store.0.lock().unwrap().len(), 4);
    }

    #[tokio::test]
    async fn a_decision_frees_a_place_under_the_cap() {
        let (store, cb, now) = setup(true);
        let first = mint_for(&store, &capped("T1", now, "checkout"))
            .await
            .unwrap();
        mint_for(&store, &capped("T2", now, "checkout"))
            .await
            .unwrap();
        let id = id_of(&first.deny_url);
        redeem(&store, &cb, now, &id, Decision::Deny).await.unwrap();
        mint_for(&store, &capped("T3", now, "checkout"))
            .await
            .unwrap();
    }

    #[test]
    fn scopes_are_fixed_shape_and_ids_in_them_parse_strictly() {
        let scope = DeploymentScope::of(Some("prod"), "shop", "checkout");
        assert_eq!(scope.as_str().len(), SCOPE_LEN);
        assert_eq!(DeploymentScope::parse(scope.as_str()), Some(scope.clone()));
        assert_ne!(scope, DeploymentScope::of(None, "shop", "checkout"));
        assert_ne!(scope, DeploymentScope::of(Some("prod"), "shopc", "heckout"));
        // A Deployment's scope is the one records were minted in before other
        // kinds existed; a StatefulSet or DaemonSet of the same name has its own.
        let of_kind = |kind| DeploymentScope::of_workload(Some("prod"), "shop", kind, "checkout");
        assert_eq!(of_kind(WorkloadKind::Deployment), scope);
        let [sts, ds] = [WorkloadKind::StatefulSet, WorkloadKind::DaemonSet].map(of_kind);
        assert!(
            sts != scope && ds != scope && sts != ds,
            "{scope} {sts} {ds}"
        );
        assert_eq!(DeploymentScope::parse(sts.as_str()), Some(sts.clone()));
        let id = ApprovalId::random_in(&scope);
        assert_eq!(ApprovalId::parse(id.as_str()), Some(id.clone()));
        let random = id.split().1.to_owned();
        for bad in [
            format!("{}.{random}", scope.as_str().to_uppercase()),
            format!("../{random}"),
            format!("{scope}/{random}"),
            format!("{scope}.{random}.x"),
            format!("{scope}."),
        ] {
            assert_eq!(ApprovalId::parse(&bad), None, "{bad:?}");
        }
    }

    #[tokio::test]
    async fn expired_links_are_gone_and_consumed() {
        let (store, cb, now) = setup(true);
        let links = minted(&store, now).await;
        let id = id_of(&links.approve_url);
        let later = t("2026-11-27T10:01:00Z");
        assert_eq!(
            peek(&store, later, &id).await.unwrap(),
            Err(GoneReason::Expired)
        );
        let r = redeem(&store, &cb, later, &id, Decision::Approve)
            .await
            .unwrap();
        assert_eq!(r, Redeemed::Gone(GoneReason::Expired));
        assert!(cb.calls.lock().unwrap().is_empty());
        assert!(store.0.lock().unwrap().is_empty(), "expired record removed");
    }

    #[tokio::test]
    async fn a_task_that_stopped_waiting_is_gone() {
        let (store, cb, now) = setup(false);
        let links = minted(&store, now).await;
        let id = id_of(&links.approve_url);
        let r = redeem(&store, &cb, now, &id, Decision::Approve)
            .await
            .unwrap();
        assert_eq!(r, Redeemed::Gone(GoneReason::NoLongerWaiting));
    }

    /// A plan too big for one SSM value is cut (texts, then list lengths)
    /// until the record fits; its image changes are never cut.
    #[test]
    fn an_oversized_plan_is_cut_to_fit_keeping_every_change() {
        let mut plan = crate::http::tests::sample_plan();
        plan.reason = Some("r".repeat(5000));
        plan.evidence = (0..40)
            .map(|i| PlanEvidence {
                container: format!("c{i}"),
                failing: i == 0,
                text: format!("c{i}: {}", "m".repeat(300)),
            })
            .collect();
        let record = ApprovalRecord {
            task_token: "T".repeat(1024),
            expires_at: t("2026-11-27T11:00:00Z"),
            execution: "arn:e".into(),
            summary: "s".into(),
            approve_key: "K".repeat(43),
            deny_key: "D".repeat(43),
            plan: Some(plan.clone()),
        };
        let fitted = record.clone().fitted();
        assert!(serde_json::to_string(&fitted).unwrap().len() <= MAX_RECORD_BYTES);
        let cut = fitted.plan.expect("a plan that can fit is kept");
        assert_eq!(cut.changes, plan.changes);
        assert!(cut.evidence[0].failing);
        assert!(
            cut.evidence
                .last()
                .unwrap()
                .text
                .contains("more containers")
        );
        assert!(cut.reason.unwrap().ends_with('…'));
        // A small plan is stored as it is.
        let small = ApprovalRecord {
            plan: Some(crate::http::tests::sample_plan()),
            ..record
        };
        assert_eq!(small.clone().fitted(), small);
    }

    #[tokio::test]
    async fn mint_rejects_empty_token_and_zero_ttl() {
        let store = MemoryStore::default();
        let now = t("2026-11-27T10:00:00Z");
        let e = mint(&store, "u", now, 60, " ", "e", "s").await.unwrap_err();
        assert_eq!(e.error_type(), "NonRetryableInvalidRequest");
        let e = mint(&store, "u", now, 0, "tok", "e", "s")
            .await
            .unwrap_err();
        assert!(e.to_string().contains("at least one second"), "{e}");
        assert!(store.0.lock().unwrap().is_empty());
    }
}
