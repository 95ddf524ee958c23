//! notify and approve against moto_server (SNS, SSM, Step Functions): the
//! real SDK calls, the real approval record, single use and the "not
//! waiting any more" answer. Skipped when `.venv/bin/moto_server` is absent,
//! unless SELFHEAL_REQUIRE_TOOLS=1 (scripts/test) makes that a failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use aws_credential_types::Credentials;
use selfheal_approval::{
    ApprovalId, ApprovalStore, Decision, GoneReason, Redeemed, SfnCallback, SsmStore,
};
use selfheal_notify::{Notifier, NotifyConfig};
use selfheal_tests::tools::{Moto, tool_or_skip};
use serde_json::json;

/// moto through the tests' one launcher; `None` (skipped) without it.
/// moto for `test` (`None`: skipped without it) and an SDK config for it.
async fn moto(test: &str) -> Option<(Moto, aws_config::SdkConfig)> {
    let bin = tool_or_skip(test, Moto::binary())?;
    let log = std::env::temp_dir().join(format!("notify-{test}-{}.log", std::process::id()));
    let moto = Moto::start(&bin, &log).await;
    let sdk = sdk(&moto.url);
    Some((moto, sdk))
}

fn sdk(url: &str) -> aws_config::SdkConfig {
    aws_config::SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("eu-west-1"))
        .endpoint_url(url)
        .credentials_provider(
            aws_credential_types::provider::SharedCredentialsProvider::new(Credentials::new(
                "test", "test", None, None, "static",
            )),
        )
        .build()
}

/// A notifier publishing to a fresh moto topic, its records under
/// `/selfheal/test/approvals`; `max_pending` sets `SELFHEAL_MAX_PENDING_APPROVALS`.
async fn notifier_on(
    sdk: &aws_config::SdkConfig,
    max_pending: Option<&str>,
) -> (Notifier, SsmStore) {
    let sns = aws_sdk_sns::Client::new(sdk);
    let topic = sns.create_topic().name("selfheal").send().await.unwrap();
    let topic_arn = topic.topic_arn().unwrap().to_owned();
    let config = NotifyConfig::from_lookup(|k| match k {
        "SELFHEAL_TOPIC_ARN" => Some(topic_arn.clone()),
        "SELFHEAL_APPROVAL_URL" => Some("https://approve.example.invalid/".into()),
        "SELFHEAL_MAX_PENDING_APPROVALS" => max_pending.map(str::to_owned),
        _ => None,
    })
    .unwrap();
    if let Some(max) = max_pending {
        assert_eq!(config.max_pending_approvals.to_string(), max);
    }
    let store = SsmStore::new(aws_sdk_ssm::Client::new(sdk), "/selfheal/test/approvals").unwrap();
    (
        Notifier::from_parts(config, sns, None, store.clone()),
        store,
    )
}

const EXEC: &str = "arn:aws:states:eu-west-1:123456789012:execution:remediate-deployment:x";

#[tokio::test]
async fn publish_mint_and_redeem_against_moto() {
    let Some((_moto, sdk)) = moto("publish_mint_and_redeem_against_moto").await else {
        return;
    };
    let (notifier, store) = notifier_on(&sdk, None).await;
    let now: jiff::Timestamp = "2026-11-27T10:00:00Z".parse().unwrap();

    // A completed rollback: published, with the health summary.
    let completed = selfheal_notify::parse_event(json!({"event": "completed",
        "execution": {"id": EXEC, "startedAt": "2026-11-27T09:59:50Z"},
        "request": {"action": "rollback", "target": {"namespace": "shop", "deployment": "checkout"}},
        "outcome": {"status": "applied", "action": "rollback", "message": "rolled back",
                    "target": {"namespace": "shop", "deployment": "checkout"},
                    "changes": [{"container": "api", "from": "a:2", "to": "a:1"}]},
        "verify": {"state": "done", "message": "successfully rolled out"},
        "timings": {"action": {"startedAt": "2026-11-27T09:59:51Z", "finishedAt": "2026-11-27T09:59:52Z"}},
        "reportedAt": "2026-11-27T10:00:00Z"})).unwrap();
    let out = notifier.notify(&completed, now).await.unwrap();
    assert!(
        out.message_id.as_deref().is_some_and(|id| !id.is_empty()),
        "{out:?}"
    );
    assert_eq!(out.subject, "selfheal: rollback applied for shop/checkout");
    let health = out.deployment_health.unwrap();
    assert_eq!(health.total_duration_ms, Some(10_000));
    assert_eq!(health.steps[0].duration_ms, 1000);
    assert_eq!(health.changes[0].to, "a:1");

    // An approval request: the token goes to SSM under a random id, not into the message.
    let ask = selfheal_notify::parse_event(json!({"event": "approvalRequested", "execution": {"id": EXEC},
        "request": {"action": "rollback", "target": {"namespace": "shop", "deployment": "checkout"}},
        "taskToken": "TASK-TOKEN-123", "timeoutSeconds": 600})).unwrap();
    let out = notifier.notify(&ask, now).await.unwrap();
    assert_eq!(
        out.approval_expires_at,
        Some("2026-11-27T10:10:00Z".parse().unwrap())
    );
    let params = aws_sdk_ssm::Client::new(&sdk)
        .get_parameters_by_path()
        .path("/selfheal/test/approvals")
        .recursive(true)
        .with_decryption(true)
        .send()
        .await
        .unwrap();
    let params = params.parameters();
    assert_eq!(params.len(), 1);
    let name = params[0].name().unwrap();
    let id = id_of_parameter(name);
    let record = store.get(&id).await.unwrap().unwrap();
    // SSM itself deletes the record when the link expires: none piles up.
    let described = aws_sdk_ssm::Client::new(&sdk)
        .describe_parameters()
        .parameter_filters(
            aws_sdk_ssm::types::ParameterStringFilter::builder()
                .key("Name")
                .values(name)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let meta = &described.parameters()[0];
    assert_eq!(
        meta.tier(),
        Some(&aws_sdk_ssm::types::ParameterTier::Advanced)
    );
    let policy = meta.policies()[0].policy_text().unwrap();
    assert!(
        policy.contains("Expiration") && policy.contains("2026-11-27T10:10:00.000Z"),
        "{policy}"
    );
    assert_eq!(record.task_token, "TASK-TOKEN-123");
    assert_eq!(record.execution, EXEC);

    // Redeem: moto accepts SendTaskSuccess for any token (it does not track
    // callbacks in server mode), so this checks the real request succeeds;
    // the record is consumed (single use).
    let callback = SfnCallback::new(aws_sdk_sfn::Client::new(&sdk));
    let r = selfheal_approval::redeem(&store, &callback, now, &id, Decision::Approve)
        .await
        .unwrap();
    match r {
        Redeemed::Decided { decision, record } => {
            assert_eq!(decision, Decision::Approve);
            assert_eq!(record.task_token, "TASK-TOKEN-123");
        }
        other => panic!("{other:?}"),
    }
    let again = selfheal_approval::redeem(&store, &callback, now, &id, Decision::Approve)
        .await
        .unwrap();
    assert_eq!(again, Redeemed::Gone(GoneReason::UnknownOrUsed));
    assert!(store.get(&id).await.unwrap().is_none());
}

/// The approval id a record's parameter name stands for
/// (`<prefix>/<scope>/<random>` is id `<scope>.<random>`).
fn id_of_parameter(name: &str) -> ApprovalId {
    let rest = name.strip_prefix("/selfheal/test/approvals/").unwrap();
    ApprovalId::parse(&rest.replace('/', ".")).unwrap()
}

/// The record parameters in `folder` (one Deployment's), as moto holds them.
async fn records_in(sdk: &aws_config::SdkConfig, folder: &str) -> Vec<String> {
    let out = aws_sdk_ssm::Client::new(sdk)
        .get_parameters_by_path()
        .path(folder)
        .send()
        .await
        .unwrap();
    out.parameters()
        .iter()
        .map(|p| p.name().unwrap().to_owned())
        .collect()
}

/// Records count toward the account's parameter quota: a Deployment with
/// `SELFHEAL_MAX_PENDING_APPROVALS` approvals pending gets no further record;
/// a denied record is deleted, which frees a place; other Deployments, and a
/// StatefulSet of the same name, are not affected.
#[tokio::test]
async fn pending_approvals_are_capped_per_deployment_and_deny_deletes() {
    let Some((_moto, sdk)) =
        moto("pending_approvals_are_capped_per_deployment_and_deny_deletes").await
    else {
        return;
    };
    let (notifier, store) = notifier_on(&sdk, Some("2")).await;
    let now: jiff::Timestamp = "2026-11-27T10:00:00Z".parse().unwrap();
    let ask = |deployment: &str, token: &str| {
        selfheal_notify::parse_event(json!({"event": "approvalRequested", "execution": {"id": EXEC},
            "request": {"action": "rollback",
                        "target": {"cluster": "prod", "namespace": "shop", "deployment": deployment}},
            "taskToken": token, "timeoutSeconds": 600}))
        .unwrap()
    };
    let checkout = format!(
        "/selfheal/test/approvals/{}",
        selfheal_approval::DeploymentScope::of(Some("prod"), "shop", "checkout")
    );

    notifier.notify(&ask("checkout", "T1"), now).await.unwrap();
    notifier.notify(&ask("checkout", "T2"), now).await.unwrap();
    let two = records_in(&sdk, &checkout).await;
    assert_eq!(two.len(), 2, "{two:?}");

    let err = notifier
        .notify(&ask("checkout", "T3"), now)
        .await
        .unwrap_err();
    assert_eq!(err.error_type(), "NonRetryableTooManyPendingApprovals");
    assert!(err.to_string().contains("prod/shop/checkout"), "{err}");
    assert_eq!(records_in(&sdk, &checkout).await, two, "no third record");

    // Another Deployment has its own cap.
    notifier.notify(&ask("cart", "T4"), now).await.unwrap();

    // So has a StatefulSet named like it: its records go to its own folder.
    let statefulset = |token: &str| {
        let mut event = ask("checkout", token);
        let target = &mut event.request.as_mut().unwrap().target;
        target.set_workload(selfheal_contract::WorkloadKind::StatefulSet, "checkout");
        event
    };
    let sts_folder = format!(
        "/selfheal/test/approvals/{}",
        selfheal_approval::DeploymentScope::of_workload(
            Some("prod"),
            "shop",
            selfheal_contract::WorkloadKind::StatefulSet,
            "checkout"
        )
    );
    for token in ["T7", "T8"] {
        notifier.notify(&statefulset(token), now).await.unwrap();
    }
    assert_eq!(records_in(&sdk, &sts_folder).await.len(), 2);
    let err = notifier.notify(&statefulset("T9"), now).await.unwrap_err();
    assert!(
        err.to_string().contains("statefulset prod/shop/checkout"),
        "{err}"
    );
    assert_eq!(
        records_in(&sdk, &checkout).await,
        two,
        "the Deployment's untouched"
    );

    // Deny one: its record is deleted, and checkout may ask again.
    let callback = SfnCallback::new(aws_sdk_sfn::Client::new(&sdk));
    let denied = id_of_parameter(&two[0]);
    let r = selfheal_approval::redeem(&store, &callback, now, &denied, Decision::Deny)
        .await
        .unwrap();
    assert!(
        matches!(
            r,
            Redeemed::Decided {
                decision: Decision::Deny,
                ..
            }
        ),
        "{r:?}"
    );
    let left = records_in(&sdk, &checkout).await;
    assert_eq!(left, vec![two[1].clone()], "denied record deleted");
    notifier.notify(&ask("checkout", "T5"), now).await.unwrap();
    assert_eq!(records_in(&sdk, &checkout).await.len(), 2);

    // Expired records do not count, even while SSM has not deleted them yet.
    let later: jiff::Timestamp = "2026-11-27T10:10:00Z".parse().unwrap();
    notifier
        .notify(&ask("checkout", "T6"), later)
        .await
        .unwrap();
    assert_eq!(records_in(&sdk, &checkout).await.len(), 3);
}

/// A PutParameter the SDK re-sends after a lost answer finds its own record
/// already stored: that is success. A different record under the same id
/// (a collision, which fresh random ids make practically impossible) is not.
#[tokio::test]
async fn approval_record_put_is_idempotent_for_the_same_record_only() {
    let Some((_moto, config)) =
        moto("approval_record_put_is_idempotent_for_the_same_record_only").await
    else {
        return;
    };
    let store = SsmStore::new(aws_sdk_ssm::Client::new(&config), "/selfheal/approvals").unwrap();
    let id = ApprovalId::random();
    let record = selfheal_approval::ApprovalRecord {
        task_token: "task-token-1".into(),
        expires_at: "2026-11-27T01:00:00Z".parse().unwrap(),
        execution: EXEC.into(),
        summary: "rollback shop/checkout on prod-eks".into(),
        approve_key: ApprovalId::random().to_string(),
        deny_key: ApprovalId::random().to_string(),
        // The approval page's plan travels in the SecureString value.
        plan: Some(selfheal_approval::ApprovalPlan {
            action: selfheal_contract::Action::Rollback,
            cluster: None,
            namespace: "shop".into(),
            workload: "Deployment checkout".into(),
            changes: vec![selfheal_approval::PlannedChange {
                container: "api".into(),
                from: "shop/api:1.2.0".into(),
                to: "shop/api:1.1.0".into(),
            }],
            validated: true,
            preview: None,
            evidence: Vec::new(),
            alarm: None,
            reason: None,
        }),
    };
    store.put(&id, &record).await.unwrap();
    store.put(&id, &record).await.unwrap();
    assert_eq!(store.get(&id).await.unwrap(), Some(record.clone()));

    let other = selfheal_approval::ApprovalRecord {
        task_token: "task-token-2".into(),
        ..record.clone()
    };
    let err = store.put(&id, &other).await.unwrap_err();
    assert!(err.to_string().contains("PutParameter"), "{err}");
    assert_eq!(
        store.get(&id).await.unwrap(),
        Some(record),
        "the first record must stay"
    );
}
