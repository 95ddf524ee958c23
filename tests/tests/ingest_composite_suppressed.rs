//! A CloudWatch composite alarm whose actions CloudWatch suppresses starts
//! nothing, through the ingest handler against a real Step Functions API
//! (moto): AWS's published EventBridge sample (suppressed by `WaitPeriod`,
//! given a `selfheal:` directive) leaves the state machine without
//! executions, and the same alarm delivered once the suppression is over
//! (AWS's alarm-action sample: the suppression on `previousState`) starts one.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod ingest_support;

use ingest_support::{Moto, create_state_machine, executions, moto_binary};
use selfheal_events::{Action, Defaults, RemediationRequest};
use selfheal_ingest::{Ingest, SfnStarter, WebhookSecret};
use serde_json::{Value, json};

const TEST: &str = "suppressed_composite_alarm_starts_nothing_until_the_suppression_ends";
const DIRECTIVE: &str = "Aggregated monitor\nselfheal: namespace=shop deployment=checkout";

fn fixture(name: &str) -> Value {
    let path = ingest_support::workspace_root()
        .join("crates/selfheal-events/tests/fixtures/cloudwatch")
        .join(name);
    serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap()
}

#[tokio::test]
async fn suppressed_composite_alarm_starts_nothing_until_the_suppression_ends() {
    let Some(bin) = moto_binary(TEST) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let moto = Moto::start(&bin, dir.path()).await;
    let sfn = aws_sdk_sfn::Client::new(&moto.sdk_config().await);
    let arn = create_state_machine(&sfn, "remediate-deployment").await;
    let defaults = Defaults {
        action: Some(Action::Rollback),
        ..Defaults::default()
    };
    let ingest = Ingest::new(
        SfnStarter::new(sfn.clone(), &arn),
        WebhookSecret::from_value("unused"),
        defaults,
        8,
    );

    // EventBridge: WaitPeriod, then the suppressor alarm itself in ALARM.
    let mut event = fixture("eventbridge-composite-suppressed.json");
    event["detail"]["configuration"]["description"] = json!(DIRECTIVE);
    for by in ["WaitPeriod", "Alarm"] {
        event["detail"]["state"]["actionsSuppressedBy"] = json!(by);
        let received = event.to_string().len();
        let summary = ingest.handle(event.clone(), received).await.unwrap();
        assert_eq!(summary["started"], json!([]), "{summary}");
        assert_eq!(
            summary["ignored"][0]["reason"]["suppressed"]["by"],
            json!(by),
            "{summary}"
        );
        assert_eq!(
            summary["ignored"][0]["name"],
            json!("ServiceAggregatedAlarm")
        );
    }
    assert_eq!(executions(&sfn, &arn).await, Vec::new());

    // The alarm action CloudWatch invokes when the wait period is over.
    let mut action = fixture("lambda-alarm-action-composite.json");
    action["alarmData"]["configuration"]["description"] = json!(DIRECTIVE);
    let received = action.to_string().len();
    let summary = ingest.handle(action, received).await.unwrap();
    assert_eq!(summary["started"].as_array().unwrap().len(), 1, "{summary}");
    let started = executions(&sfn, &arn).await;
    assert_eq!(started.len(), 1, "{started:?}");
    assert_eq!(json!(started[0].0), summary["started"][0]);
    let request: RemediationRequest = serde_json::from_str(&started[0].1).unwrap();
    assert_eq!(request.action, Action::Rollback);
    assert_eq!(request.target.namespace, "shop");
    assert_eq!(request.target.deployment.as_deref(), Some("checkout"));
    assert_eq!(
        request.alarm.unwrap().id.as_deref(),
        Some("arn:aws:cloudwatch:us-east-1:111122223333:alarm:SuppressionDemo.Main")
    );
}
