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
