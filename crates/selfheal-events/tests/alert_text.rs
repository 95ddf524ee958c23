//! Alert text reaches notifications and approval requests: whatever control
//! characters an alert rule's author puts in a name, a reason, a label or an
//! annotation, the request that leaves ingest carries none of them, so no
//! field can start a line of its own (a forged "Approve:" line) or reorder
//! text (bidirectional overrides).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use selfheal_events::{Action, Defaults, NamedRequest, parse_event};
use serde_json::{Value, json};

fn fixture(path: &str) -> Value {
    let full = format!("{}/tests/fixtures/{path}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_slice(&std::fs::read(&full).unwrap()).unwrap()
}

fn rollback_default() -> Defaults {
    Defaults {
        action: Some(Action::Rollback),
        ..Defaults::default()
    }
}

/// Every character that must not leave ingest in alert text.
fn forbidden(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061C}'
                | '\u{200E}'
                | '\u{200F}'
                | '\u{202A}'..='\u{202E}'
                | '\u{2028}'
                | '\u{2029}'
                | '\u{2066}'..='\u{2069}'
        )
}

/// The alert text of a request: reason, alarm name and id.
fn alert_text(request: &NamedRequest) -> Vec<String> {
    let r = &request.request;
    let alarm = r.alarm.as_ref().unwrap();
    [r.reason.clone(), alarm.name.clone(), alarm.id.clone()]
        .into_iter()
        .flatten()
        .collect()
}

const HOSTILE_NAME: &str = "Checkout5xx\n<!channel>\u{202E}\u{0007}";
const HOSTILE_TEXT: &str = "5xx high\r\nApprove: <https://evil.example|Approve>\u{001b}[31m\u{2028}\u{0085}end\ttab\u{2066}x\u{2069}";

#[test]
fn alertmanager_names_and_annotations_lose_their_control_characters() {
    let mut v = fixture("alertmanager/firing-single.json");
    v["alerts"][0]["labels"]["alertname"] = json!(HOSTILE_NAME);
    v["alerts"][0]["annotations"]["summary"] = json!(HOSTILE_TEXT);
    let ingested = parse_event(&serde_json::to_vec(&v).unwrap(), &rollback_default()).unwrap();
    assert_eq!(ingested.requests.len(), 1, "{ingested:#?}");
    let request = &ingested.requests[0];
    for text in alert_text(request) {
        assert!(!text.chars().any(forbidden), "{text:?}");
    }
    let r = &request.request;
    assert_eq!(
        r.alarm.as_ref().unwrap().name.as_deref(),
        Some("Checkout5xx <!channel>")
    );
    assert_eq!(
        r.reason.as_deref(),
        Some(
            "Alertmanager Checkout5xx <!channel> firing: 5xx high  Approve: <https://evil.example|Approve>[31m  end tabx"
        )
    );
    // The target still comes from the labels, untouched.
    assert_eq!(r.target.namespace, "default");
    assert_eq!(r.target.deployment.as_deref(), Some("x"));

    // A resolved alert starts nothing, and its name in the log is clean too.
    v["alerts"][0]["status"] = json!("resolved");
    let ingested = parse_event(&serde_json::to_vec(&v).unwrap(), &rollback_default()).unwrap();
    assert!(ingested.requests.is_empty());
    assert_eq!(
        ingested.ignored[0].name.as_deref(),
        Some("Checkout5xx <!channel>")
    );
}

#[test]
fn cloudwatch_alarm_name_and_reason_lose_their_control_characters() {
    let mut v = fixture("cloudwatch/eventbridge-single-metric-alarm.json");
    v["detail"]["configuration"]["metrics"][0]["metricStat"]["metric"]["dimensions"] =
        json!({"ClusterName": "prod-eks", "Namespace": "shop", "PodName": "checkout"});
    v["detail"]["alarmName"] = json!(HOSTILE_NAME);
    v["resources"][0] = json!(format!(
        "arn:aws:cloudwatch:us-east-1:123456789012:alarm:{HOSTILE_NAME}"
    ));
    v["detail"]["state"]["reason"] = json!(HOSTILE_TEXT);
    let ingested = parse_event(&serde_json::to_vec(&v).unwrap(), &rollback_default()).unwrap();
    assert_eq!(ingested.requests.len(), 1, "{ingested:#?}");
    let request = &ingested.requests[0];
    let texts = alert_text(request);
    assert_eq!(texts.len(), 3, "reason, name and id: {texts:?}");
    for text in texts {
        assert!(!text.chars().any(forbidden), "{text:?}");
    }
    let r = &request.request;
    assert!(
        r.reason
            .as_deref()
            .unwrap()
            .starts_with("CloudWatch alarm Checkout5xx <!channel> in ALARM: 5xx high  Approve:"),
        "{:?}",
        r.reason
    );
    assert_eq!(
        r.alarm.as_ref().unwrap().id.as_deref(),
        Some("arn:aws:cloudwatch:us-east-1:123456789012:alarm:Checkout5xx <!channel>")
    );
}
