//! The checks behind each fuzz target, as plain functions.
//!
//! Each `fuzz_targets/<name>.rs` is one line calling the function of the same
//! name here, so the same checks also run as ordinary tests over the committed
//! corpora (`cargo test --manifest-path fuzz/Cargo.toml`, see `tests/`), and a
//! crash file can be replayed in a debugger without libFuzzer.
//!
//! A target fails (panics) only on a broken property: a panic inside the code
//! under test, or a result that contradicts the contract (a request that does
//! not validate, a planned patch that does not apply or touches paths it does
//! not name). Rejecting bad input with an `Err` is the expected outcome.

#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]

pub mod planners;

use selfheal_core::RemediationRequest;
use selfheal_events::{Defaults, Ingested, directive};
use serde_json::{Value, json};

/// Step Functions' execution-name rule the ingest path relies on.
fn assert_execution_name(name: &str) {
    assert!(
        !name.is_empty() && name.len() <= selfheal_events::naming::MAX_NAME_LEN,
        "execution name length {} out of 1..=80: {name:?}",
        name.len()
    );
    assert!(
        name.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
        "execution name has characters outside [A-Za-z0-9_-]: {name:?}"
    );
}

/// What `ingest` hands to Step Functions must come back identical through the
/// handlers' own parser (`RemediationRequest::from_json`, deny_unknown_fields).
fn assert_request_round_trips(request: &RemediationRequest) {
    request
        .validate()
        .unwrap_or_else(|e| panic!("parsed request does not validate: {e}\n{request:?}"));
    let text = serde_json::to_string(request).expect("request serializes");
    let back = RemediationRequest::from_json(&text)
        .unwrap_or_else(|e| panic!("request does not re-parse: {e}\n{text}"));
    assert_eq!(&back, request, "request changed through JSON: {text}");
}

fn check_ingested(ingested: &Ingested) {
    for named in &ingested.requests {
        assert_execution_name(&named.execution_name);
        assert_request_round_trips(&named.request);
    }
    // The summary ingest logs and returns must always serialize.
    serde_json::to_string(ingested).expect("Ingested serializes");
}

/// Defaults variants: none, cluster only, cluster and action (docs/alarms.md §4).
fn defaults_for(selector: u8) -> Defaults {
    match selector % 3 {
        0 => Defaults::default(),
        1 => Defaults {
            cluster: Some("prod-eks".into()),
            action: None,
            ..Defaults::default()
        },
        _ => Defaults {
            cluster: Some("prod-eks".into()),
            action: Some(selfheal_core::Action::Rollback),
            ..Defaults::default()
        },
    }
}

/// `events_parse`: any bytes through [`selfheal_events::parse_event`], which
/// detects EventBridge, SNS, alarm-action, Alertmanager and manual payloads.
pub fn events_parse(data: &[u8]) {
    // The last byte picks the defaults; the whole input is still the event,
    // so corpus files stay plain JSON documents.
    let defaults = defaults_for(data.last().copied().unwrap_or(0));
    if let Ok(ingested) = selfheal_events::parse_event(data, &defaults) {
        check_ingested(&ingested);
    }
}

/// An EventBridge alarm (the recorded fixture's shape) whose description is
/// `description`, so the directive is also fuzzed through target resolution.
fn eventbridge_with_description(description: &str) -> Value {
    json!({
        "version": "0",
        "id": "c4c1c1c9-6542-e61b-6ef0-8c4d36933a92",
        "detail-type": "CloudWatch Alarm State Change",
        "source": "aws.cloudwatch",
        "account": "123456789012",
        "time": "2026-11-26T20:00:00Z",
        "region": "eu-west-1",
        "resources": ["arn:aws:cloudwatch:eu-west-1:123456789012:alarm:checkout-5xx"],
        "detail": {
            "alarmName": "checkout-5xx",
            "state": {"value": "ALARM", "reason": "Threshold Crossed", "timestamp": "2026-11-26T20:00:00.000+0000"},
            "previousState": {"value": "OK", "reason": "Threshold Crossed", "timestamp": "2026-11-26T19:00:00.000+0000"},
            "configuration": {
                "description": description,
                "metrics": [{
                    "id": "m1",
                    "metricStat": {
                        "metric": {
                            "namespace": "ContainerInsights",
                            "name": "pod_number_of_container_restarts",
                            "dimensions": {"ClusterName": "prod-eks", "Namespace": "shop", "PodName": "checkout"}
                        },
                        "period": 60,
                        "stat": "Maximum"
                    },
                    "returnData": true
                }]
            }
        }
    })
}

/// An Alertmanager webhook whose `selfheal` annotation is `annotation`.
fn alertmanager_with_annotation(annotation: &str) -> Value {
    json!({
        "version": "4",
        "groupKey": "{}:{alertname=\"CheckoutErrors\"}",
        "truncatedAlerts": 0,
        "status": "firing",
        "receiver": "selfheal",
        "groupLabels": {"alertname": "CheckoutErrors"},
        "commonLabels": {"alertname": "CheckoutErrors"},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager:9093",
        "alerts": [{
            "status": "firing",
            "labels": {"alertname": "CheckoutErrors", "namespace": "shop", "deployment": "checkout"},
            "annotations": {"selfheal": annotation},
            "startsAt": "2026-11-26T20:00:00Z",
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus:9090/graph",
            "fingerprint": "0123456789abcdef"
        }]
    })
}

/// `directive`: the `selfheal:` directive parsers directly, then the same text
/// as a CloudWatch alarm description and as an Alertmanager annotation through
/// [`selfheal_events::parse_event`].
pub fn directive(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // Wrapped in an event, the text must stay under the 256 KiB event cap.
    if text.len() > selfheal_events::MAX_EVENT_BYTES / 8 {
        return;
    }
    let _ = directive::parse_action(text);
    let _ = directive::parse_pairs(text);
    let from_annotation = directive::from_annotation(text);
    let from_description = directive::from_description(text);

    // A malformed directive must stop the alarm, never be skipped over in
    // favour of the dimensions (docs/alarms.md §3).
    let alarm = eventbridge_with_description(text);
    ingest_whole(
        &alarm,
        from_description.is_err(),
        "alarm event",
        "description directive",
        text,
    );
    let webhook = alertmanager_with_annotation(text);
    ingest_whole(
        &webhook,
        from_annotation.is_err(),
        "Alertmanager webhook",
        "selfheal annotation",
        text,
    );
}

/// `event` (carrying `text` as its directive, `what`) parses as a whole;
/// when the directive alone is `malformed`, it produces no request.
fn ingest_whole(event: &serde_json::Value, malformed: bool, kind: &str, what: &str, text: &str) {
    let bytes = serde_json::to_vec(event).expect("serializes");
    match selfheal_events::parse_event(&bytes, &Defaults::default()) {
        Ok(ingested) => {
            check_ingested(&ingested);
            if malformed {
                assert!(
                    ingested.requests.is_empty(),
                    "malformed {what} still produced a request: {text:?}"
                );
            }
        }
        Err(e) => panic!("a well-formed {kind} was rejected as a whole: {e}"),
    }
}

/// `request_parse`: [`RemediationRequest::from_json`] on any UTF-8 text; what
/// it accepts must validate and survive a JSON round trip unchanged.
pub fn request_parse(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(request) = RemediationRequest::from_json(text) {
        assert_request_round_trips(&request);
    }
}

/// `snapshot_parse`: [`selfheal_snapshot::Snapshot::parse`] on any UTF-8
/// text. A parsed snapshot must render and re-parse to the same objects (the
/// CLI writes snapshots back), and planning against its first workload
/// (Deployment, StatefulSet or DaemonSet) must not panic (a patch that does not apply is an `Err` from `remediate`, by
/// design).
pub fn snapshot_parse(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(snapshot) = selfheal_snapshot::Snapshot::parse(text) else {
        return;
    };
    if let Ok(rendered) = snapshot.render() {
        let again = selfheal_snapshot::Snapshot::parse(&rendered)
            .unwrap_or_else(|e| panic!("rendered snapshot does not re-parse: {e}\n{rendered}"));
        assert_eq!(
            again.objects(),
            snapshot.objects(),
            "objects changed through render: {rendered}"
        );
    }

    let first = snapshot.objects().iter().find_map(|o| {
        let meta = o.get("metadata")?;
        let kind = selfheal_core::WorkloadKind::from_kind(o.get("kind")?.as_str()?)?;
        Some((
            kind,
            meta.get("namespace")
                .and_then(Value::as_str)
                .unwrap_or("default")
                .to_owned(),
            meta.get("name").and_then(Value::as_str).map(str::to_owned),
        ))
    });
    let Some((kind, namespace, Some(name))) = first else {
        return;
    };
    let _ = snapshot.status_of(kind, &namespace, &name);
    let policy = selfheal_core::Policy {
        require_opt_in: false,
        ..selfheal_core::Policy::default()
    };
    let now: jiff::Timestamp = "2026-11-26T20:00:00Z".parse().expect("valid timestamp");
    for (action, scope) in [
        ("rollback", "container"),
        ("rollback", "template"),
        ("pause", "container"),
        ("resume", "container"),
        ("restart", "container"),
    ] {
        let request = json!({
            "action": action,
            "scope": scope,
            "target": {"namespace": namespace, kind.field(): name},
        });
        let Ok(request) = serde_json::from_value::<RemediationRequest>(request) else {
            continue;
        };
        let mut copy = snapshot.clone();
        let _ = copy.remediate(&request, &policy, now);
    }
}

pub use planners::planners;
