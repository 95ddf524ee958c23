//! Composite alarms whose actions CloudWatch suppresses (`actionsSuppressedBy`
//! on the current state), read from AWS's published samples in
//! tests/fixtures/cloudwatch (README.md there names the pages).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use selfheal_events::{
    Action, Defaults, EventKind, IgnoreReason, Ingested, Rejection, parse_event,
};
use serde_json::{Value, json};

fn fixture(path: &str) -> Value {
    let full = format!("{}/tests/fixtures/{path}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read(&full).unwrap_or_else(|e| panic!("{full}: {e}"));
    serde_json::from_slice(&text).unwrap()
}

fn parse(value: &Value) -> Ingested {
    let defaults = Defaults {
        action: Some(Action::Rollback),
        ..Defaults::default()
    };
    parse_event(&serde_json::to_vec(value).unwrap(), &defaults).unwrap()
}

const DIRECTIVE: &str = "aggregated health\nselfheal: namespace=shop deployment=checkout";

fn suppressed(by: &str, reason: Option<&str>) -> IgnoreReason {
    IgnoreReason::Suppressed {
        by: by.into(),
        reason: reason.map(str::to_owned),
    }
}

#[test]
fn eventbridge_sample_with_suppressed_actions_starts_nothing_and_says_why() {
    let ingested = parse(&fixture("cloudwatch/eventbridge-composite-suppressed.json"));
    assert_eq!(ingested.kind, EventKind::EventBridgeAlarm);
    assert!(ingested.requests.is_empty(), "{ingested:#?}");
    assert_eq!(ingested.ignored.len(), 1, "{ingested:#?}");
    let ignored = &ingested.ignored[0];
    assert_eq!(ignored.name.as_deref(), Some("ServiceAggregatedAlarm"));
    assert_eq!(
        ignored.id.as_deref(),
        Some("arn:aws:cloudwatch:us-east-1:123456789012:alarm:ServiceAggregatedAlarm")
    );
    assert_eq!(
        ignored.reason,
        suppressed("WaitPeriod", Some("Actions suppressed by WaitPeriod"))
    );
    assert_eq!(
        ignored.message,
        "CloudWatch suppresses this alarm's actions (WaitPeriod: Actions suppressed by WaitPeriod); nothing was started"
    );
    // Not the operator's mistake: `selfheal event` exits 0 for it.
    assert_eq!(ingested.rejected().count(), 0);
    assert_eq!(
        serde_json::to_value(ignored).unwrap()["reason"],
        json!({"suppressed": {"by": "WaitPeriod", "reason": "Actions suppressed by WaitPeriod"}})
    );
}

#[test]
fn every_suppression_kind_wins_over_a_usable_directive() {
    let mut v = fixture("cloudwatch/eventbridge-composite-suppressed.json");
    v["detail"]["configuration"]["description"] = json!(DIRECTIVE);
    for by in ["Alarm", "WaitPeriod", "ExtensionPeriod"] {
        v["detail"]["state"]["actionsSuppressedBy"] = json!(by);
        v["detail"]["state"]["actionsSuppressedReason"] =
            json!(format!("Actions suppressed by {by}"));
        let ingested = parse(&v);
        assert!(ingested.requests.is_empty(), "{by}: {ingested:#?}");
        assert_eq!(
            ingested.ignored[0].reason,
            suppressed(by, Some(&format!("Actions suppressed by {by}")))
        );
    }
    // Without a reason text the value alone is reported.
    v["detail"]["state"]
        .as_object_mut()
        .unwrap()
        .remove("actionsSuppressedReason");
    let ingested = parse(&v);
    assert_eq!(
        ingested.ignored[0].reason,
        suppressed("ExtensionPeriod", None)
    );
    assert_eq!(
        ingested.ignored[0].message,
        "CloudWatch suppresses this alarm's actions (ExtensionPeriod); nothing was started"
    );
}

#[test]
fn the_same_event_without_suppression_starts_the_directive_target() {
    let mut v = fixture("cloudwatch/eventbridge-composite-suppressed.json");
    v["detail"]["configuration"]["description"] = json!(DIRECTIVE);
    let state = v["detail"]["state"].as_object_mut().unwrap();
    state.remove("actionsSuppressedBy");
    state.remove("actionsSuppressedReason");
    let ingested = parse(&v);
    assert_eq!(ingested.requests.len(), 1, "{ingested:#?}");
    let r = &ingested.requests[0].request;
    assert_eq!(r.action, Action::Rollback);
    assert_eq!(r.target.namespace, "shop");
    assert_eq!(r.target.deployment.as_deref(), Some("checkout"));

    // An empty value is no suppression either.
    v["detail"]["state"]["actionsSuppressedBy"] = json!("");
    assert_eq!(parse(&v).requests.len(), 1);
}

#[test]
fn a_suppressed_state_that_is_not_alarm_stays_not_firing() {
    let mut v = fixture("cloudwatch/eventbridge-composite-suppressed.json");
    v["detail"]["state"]["value"] = json!("OK");
    let ingested = parse(&v);
    assert_eq!(
        ingested.ignored[0].reason,
        IgnoreReason::NotFiring { state: "OK".into() }
    );
}

#[test]
fn alarm_action_sample_after_the_wait_period_is_not_suppressed() {
    // AWS's sample: previousState was suppressed (WaitPeriod), state is not;
    // CloudWatch invokes the action exactly because the suppression ended.
    let mut v = fixture("cloudwatch/lambda-alarm-action-composite.json");
    let ingested = parse(&v);
    assert_eq!(ingested.kind, EventKind::AlarmAction);
    assert!(ingested.requests.is_empty());
    assert_eq!(
        ingested.ignored[0].reason,
        IgnoreReason::Rejected(Rejection::CompositeWithoutDirective)
    );

    v["alarmData"]["configuration"]["description"] = json!(DIRECTIVE);
    let ingested = parse(&v);
    assert_eq!(ingested.requests.len(), 1, "{ingested:#?}");
    let named = &ingested.requests[0];
    assert_eq!(named.request.target.deployment.as_deref(), Some("checkout"));
    assert_eq!(
        named.request.alarm.as_ref().unwrap().id.as_deref(),
        Some("arn:aws:cloudwatch:us-east-1:111122223333:alarm:SuppressionDemo.Main")
    );
}

#[test]
fn alarm_action_with_a_suppressed_current_state_starts_nothing() {
    let mut v = fixture("cloudwatch/lambda-alarm-action-composite.json");
    v["alarmData"]["configuration"]["description"] = json!(DIRECTIVE);
    v["alarmData"]["state"]["actionsSuppressedBy"] = json!("Alarm");
    v["alarmData"]["state"]["actionsSuppressedReason"] =
        json!("Alarm CompositeDemo.ActionsSuppressor is in ALARM");
    let ingested = parse(&v);
    assert!(ingested.requests.is_empty(), "{ingested:#?}");
    assert_eq!(
        ingested.ignored[0].reason,
        suppressed(
            "Alarm",
            Some("Alarm CompositeDemo.ActionsSuppressor is in ALARM")
        )
    );
    assert_eq!(
        ingested.ignored[0].name.as_deref(),
        Some("CompositeDemo.Main")
    );
}
