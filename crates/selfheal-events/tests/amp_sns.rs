//! Alertmanager alert groups inside SNS messages (Amazon Managed Service for
//! Prometheus with AWS's JSON `sns.default.message` template), from the
//! notification a real Alertmanager published (tests/fixtures/alertmanager,
//! README.md there).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use selfheal_events::{
    Action, Defaults, Error, EventKind, IgnoreReason, Ingested, Rejection, parse_alertmanager,
    parse_event,
};
use serde_json::{Value, json};

fn fixture() -> Value {
    let full = format!(
        "{}/tests/fixtures/alertmanager/sns-amp-json-template.json",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_slice(&std::fs::read(&full).unwrap()).unwrap()
}

fn parse(value: &Value) -> Result<Ingested, Error> {
    parse_event(&serde_json::to_vec(value).unwrap(), &Defaults::default())
}

/// The SNS message of the fixture, as JSON (its raw line breaks escaped).
fn message(event: &Value) -> Value {
    let text = event["Records"][0]["Sns"]["Message"].as_str().unwrap();
    serde_json::from_str(&text.replace('\n', "\\n")).unwrap()
}

fn with_message(event: &Value, message: &str) -> Value {
    let mut event = event.clone();
    event["Records"][0]["Sns"]["Message"] = json!(message);
    event
}

/// The same alerts as the webhook carries them (RFC 3339 times, version 4).
fn as_webhook(group: &Value) -> Value {
    let alerts: Vec<Value> = group["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            let mut a = a.clone();
            a["startsAt"] = json!("2026-12-06T01:37:07Z");
            a["endsAt"] = json!("0001-01-01T00:00:00Z");
            a
        })
        .collect();
    json!({
        "version": "4", "groupKey": "{}:{alertname=\"SelfhealAmp\"}", "truncatedAlerts": 0,
        "status": "firing", "receiver": "selfheal", "externalURL": "http://am:9093",
        "groupLabels": group["groupLabels"], "commonLabels": group["commonLabels"],
        "commonAnnotations": group["commonAnnotations"], "alerts": alerts
    })
}

#[test]
fn captured_alert_group_starts_what_the_webhook_would() {
    let event = fixture();
    let ingested = parse(&event).unwrap();
    assert_eq!(ingested.kind, EventKind::SnsAlertmanager);
    assert!(ingested.ignored.is_empty(), "{ingested:#?}");
    assert_eq!(ingested.requests.len(), 2);

    let webhook = parse(&as_webhook(&message(&event))).unwrap();
    assert_eq!(webhook.kind, EventKind::Alertmanager);
    // Same names, same requests: one alert delivered both ways starts once.
    assert_eq!(ingested.requests, webhook.requests);

    let checkout = ingested
        .requests
        .iter()
        .find(|r| r.request.target.deployment.as_deref() == Some("checkout"))
        .unwrap();
    assert!(
        checkout.execution_name.starts_with("rollback-checkout-"),
        "{}",
        checkout.execution_name
    );
    let r = &checkout.request;
    assert_eq!(r.action, Action::Rollback);
    assert_eq!(r.target.namespace, "shop");
    assert_eq!(r.target.cluster.as_deref(), Some("prod-eks"));
    assert_eq!(r.target.container.as_deref(), Some("api"));
    assert_eq!(
        r.reason.as_deref(),
        Some("Alertmanager SelfhealAmp firing: checkout is failing")
    );
    let alarm = r.alarm.as_ref().unwrap();
    assert_eq!(alarm.source, "alertmanager");
    assert_eq!(alarm.id.as_deref(), Some("d059f79e0539e9b3"));
    assert_eq!(alarm.impact_score, Some(3.0));
}

#[test]
fn resolved_alerts_in_a_group_start_nothing() {
    let event = fixture();
    let mut group = message(&event);
    group["status"] = json!("resolved");
    for alert in group["alerts"].as_array_mut().unwrap() {
        alert["status"] = json!("resolved");
    }
    let ingested = parse(&with_message(&event, &group.to_string())).unwrap();
    assert_eq!(ingested.kind, EventKind::SnsAlertmanager);
    assert!(ingested.requests.is_empty());
    assert_eq!(ingested.ignored.len(), 2);
    assert!(ingested.ignored.iter().all(|i| i.reason
        == IgnoreReason::NotFiring {
            state: "resolved".into()
        }));
}

#[test]
fn a_quote_in_a_value_makes_the_message_unreadable() {
    // AWS's template does not escape values: `"` ends the JSON string early.
    let event = fixture();
    let text = event["Records"][0]["Sns"]["Message"].as_str().unwrap();
    let broken = text.replace("checkout is failing", "checkout is \"failing\"");
    let err = parse(&with_message(&event, &broken)).unwrap_err();
    assert!(matches!(err, Error::Unsupported(_)), "{err}");
    assert!(
        err.to_string().contains("nor an Alertmanager alert group"),
        "{err}"
    );

    // Beside a readable record, only that record is rejected.
    let mut mixed = event.clone();
    let mut bad = event["Records"][0].clone();
    bad["Sns"]["Message"] = json!(broken);
    mixed["Records"].as_array_mut().unwrap().push(bad);
    let ingested = parse(&mixed).unwrap();
    assert_eq!(ingested.requests.len(), 2);
    assert!(matches!(
        ingested.rejected().next().unwrap().rejection(),
        Some(Rejection::Unreadable { .. })
    ));
}

#[test]
fn a_group_with_a_malformed_field_is_named_as_such() {
    let event = fixture();
    let mut group = message(&event);
    group["alerts"][0]["labels"] = json!("not a map");
    let err = parse(&with_message(&event, &group.to_string())).unwrap_err();
    assert!(
        err.to_string()
            .contains("is an Alertmanager alert group with a malformed field"),
        "{err}"
    );
}

#[test]
fn the_webhook_url_does_not_take_sns_events() {
    // SNS delivery is authenticated by the subscription, not by the bearer
    // token; the Function URL path accepts Alertmanager webhooks only.
    let err = parse_alertmanager(
        &serde_json::to_vec(&fixture()).unwrap(),
        &Defaults::default(),
    )
    .unwrap_err();
    assert!(matches!(err, Error::Unsupported(_)), "{err}");
}
