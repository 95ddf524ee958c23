//! Every recorded payload in tests/fixtures (public recordings, described in
//! each folder's README.md) plus variants derived from them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use selfheal_events::{
    Action, AlarmRef, Defaults, Error, EventKind, IgnoreReason, Ingested, MAX_EVENT_BYTES,
    NamedRequest, Rejection, RemediationRequest, Target, parse_event,
};
use serde_json::{Value, json};

fn fixture(path: &str) -> Value {
    let full = format!("{}/tests/fixtures/{path}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read(&full).unwrap_or_else(|e| panic!("{full}: {e}"));
    serde_json::from_slice(&text).unwrap()
}

fn parse(value: &Value, defaults: &Defaults) -> Ingested {
    parse_event(&serde_json::to_vec(value).unwrap(), defaults).unwrap()
}

/// The error `parse_event` answers for `value`.
fn parse_err(value: &Value, defaults: &Defaults) -> Error {
    parse_event(&serde_json::to_vec(value).unwrap(), defaults).unwrap_err()
}

fn no_defaults() -> Defaults {
    Defaults::default()
}

fn rollback_default() -> Defaults {
    Defaults {
        cluster: None,
        action: Some(Action::Rollback),
        ..Defaults::default()
    }
}

fn only_request(ingested: &Ingested) -> &NamedRequest {
    assert_eq!(
        ingested.requests.len(),
        1,
        "want one request, got {ingested:#?}"
    );
    assert!(ingested.ignored.is_empty(), "{ingested:#?}");
    &ingested.requests[0]
}

fn only_rejection(ingested: &Ingested) -> &Rejection {
    assert!(ingested.requests.is_empty(), "{ingested:#?}");
    assert_eq!(ingested.ignored.len(), 1, "{ingested:#?}");
    ingested.ignored[0].rejection().expect("a rejection")
}

/// The one alert in `ingested` is rejected for lacking `field`.
fn assert_missing_field(ingested: &Ingested, field: &str) {
    let r = only_rejection(ingested);
    assert!(
        matches!(r, Rejection::MissingField { field: f, .. } if *f == field),
        "{r:?}"
    );
}

/// Parse the recorded `path`, of `kind`, whose one alert is rejected for
/// lacking `field`.
fn parse_rejected(path: &str, defaults: &Defaults, kind: EventKind, field: &str) -> Ingested {
    let ingested = parse(&fixture(path), defaults);
    assert_eq!(ingested.kind, kind);
    assert_missing_field(&ingested, field);
    ingested
}

/// The first ignored alert is the alarm `name` with the id `id`.
fn assert_ignored_alarm(ingested: &Ingested, name: &str, id: &str) {
    assert_eq!(ingested.ignored[0].name.as_deref(), Some(name));
    assert_eq!(ingested.ignored[0].id.as_deref(), Some(id));
}

/// The one alert in `ingested` is ignored as not firing, in `state`.
fn assert_not_firing(ingested: &Ingested, state: &str) {
    assert!(ingested.requests.is_empty(), "{ingested:#?}");
    assert_eq!(ingested.ignored.len(), 1, "{ingested:#?}");
    assert_eq!(
        ingested.ignored[0].reason,
        IgnoreReason::NotFiring {
            state: state.into()
        }
    );
}

/// A target naming a Deployment (and no pod).
fn deployment_target(
    cluster: Option<&str>,
    namespace: &str,
    deployment: &str,
    container: Option<&str>,
) -> Target {
    Target {
        cluster: cluster.map(Into::into),
        namespace: namespace.into(),
        deployment: Some(deployment.into()),
        pod: None,
        container: container.map(Into::into),
        ..Target::default()
    }
}

/// The refusal of a directive naming the namespace `directive` on an alert
/// from the namespace `alert`.
fn cross_namespace(directive: &str, alert: &str) -> Rejection {
    Rejection::CrossNamespace {
        field: "target.namespace",
        directive: directive.into(),
        alert: alert.into(),
    }
}

/// The one alert in `ingested` is refused for a directive naming another
/// cluster.
fn assert_cross_cluster(ingested: &Ingested) {
    let r = only_rejection(ingested);
    assert!(
        matches!(
            r,
            Rejection::CrossNamespace {
                field: "target.cluster",
                ..
            }
        ),
        "{r:?}"
    );
}

/// `err` says the payload is a `kind` event that does not read as one.
fn assert_invalid_event(err: &Error, kind: EventKind) {
    assert!(
        matches!(err, Error::InvalidEvent { kind: k, .. } if *k == kind),
        "{err}"
    );
}

/// `r` asks for `action` on `target`.
fn assert_wants(r: &RemediationRequest, action: Action, target: Target) {
    assert_eq!(r.action, action, "{r:?}");
    assert_eq!(r.target, target);
}

/// `r` comes from the `source` alarm `name` with the id `id`.
fn assert_from_alarm<'a>(
    r: &'a RemediationRequest,
    source: &str,
    name: &str,
    id: &str,
) -> &'a AlarmRef {
    let alarm = r.alarm.as_ref().expect("an alarm reference");
    assert_eq!(alarm.source, source);
    assert_eq!(alarm.name.as_deref(), Some(name));
    assert_eq!(alarm.id.as_deref(), Some(id));
    alarm
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 80
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

fn eks_dimensions() -> Value {
    json!({ "ClusterName": "prod-eks", "Namespace": "shop", "PodName": "checkout" })
}

/// The EventBridge fixture with Container Insights dimensions.
fn eventbridge_eks() -> Value {
    let mut v = fixture("cloudwatch/eventbridge-single-metric-alarm.json");
    v["detail"]["configuration"]["metrics"][0]["metricStat"]["metric"]["dimensions"] =
        eks_dimensions();
    v
}

/// The SNS fixture with its Message edited by `edit`.
fn sns_with(edit: impl FnOnce(&mut Value)) -> Value {
    let mut v = fixture("cloudwatch/sns-alarm-single-metric.json");
    let mut message: Value =
        serde_json::from_str(v["Records"][0]["Sns"]["Message"].as_str().unwrap()).unwrap();
    edit(&mut message);
    v["Records"][0]["Sns"]["Message"] = Value::String(message.to_string());
    v
}

// ---- CloudWatch via EventBridge ----------------------------------------------

#[test]
fn eventbridge_fixture_without_k8s_dimensions_is_rejected_naming_the_field() {
    let ingested = parse_rejected(
        "cloudwatch/eventbridge-single-metric-alarm.json",
        &no_defaults(),
        EventKind::EventBridgeAlarm,
        "action",
    );
    assert_ignored_alarm(
        &ingested,
        "ServerCpuTooHigh",
        "arn:aws:cloudwatch:us-east-1:123456789012:alarm:ServerCpuTooHigh",
    );
    // With an action, the missing namespace is what is named (InstanceId maps to nothing).
    let v = fixture("cloudwatch/eventbridge-single-metric-alarm.json");
    let ingested = parse(&v, &rollback_default());
    assert_missing_field(&ingested, "target.namespace");
    assert!(ingested.ignored[0].message.contains("target.namespace"));
}

#[test]
fn eventbridge_alarm_with_container_insights_dimensions_becomes_a_request() {
    let v = eventbridge_eks();
    let ingested = parse(&v, &rollback_default());
    let named = only_request(&ingested);
    let r = &named.request;
    assert_wants(
        r,
        Action::Rollback,
        deployment_target(Some("prod-eks"), "shop", "checkout", None),
    );
    let alarm = assert_from_alarm(
        r,
        "cloudwatch",
        "ServerCpuTooHigh",
        "arn:aws:cloudwatch:us-east-1:123456789012:alarm:ServerCpuTooHigh",
    );
    let score = alarm.impact_score.unwrap();
    assert!((score - 99.50160229693434 / 50.0).abs() < 1e-12, "{score}");
    assert!(r.reason.as_deref().unwrap().contains("Threshold Crossed"));
    assert_eq!(r.execution, None, "the state machine sets execution");
    assert!(!r.dry_run && !r.approval && !r.force);
    assert!(named.execution_name.starts_with("rollback-checkout-"));
    assert!(valid_name(&named.execution_name));
}

#[test]
fn eventbridge_ok_transition_is_ignored_with_state() {
    let v = fixture("cloudwatch/eventbridge-ok-from-alarm.json");
    let ingested = parse(&v, &rollback_default());
    assert_not_firing(&ingested, "OK");
    assert_eq!(
        ingested.ignored[0].name.as_deref(),
        Some("test-service_aurora_serverless_cpu_utilization")
    );
    assert_eq!(ingested.rejected().count(), 0);
}

#[test]
fn insufficient_data_is_ignored() {
    let mut v = eventbridge_eks();
    v["detail"]["state"]["value"] = json!("INSUFFICIENT_DATA");
    let ingested = parse(&v, &rollback_default());
    assert_not_firing(&ingested, "INSUFFICIENT_DATA");
}

#[test]
fn redelivery_same_name_new_transition_new_name() {
    let v = eventbridge_eks();
    let a = parse(&v, &rollback_default());
    let b = parse(&v, &rollback_default());
    assert_eq!(a.requests[0].execution_name, b.requests[0].execution_name);
    let mut later = v.clone();
    later["detail"]["state"]["timestamp"] = json!("2019-10-02T17:09:40.989+0000");
    let c = parse(&later, &rollback_default());
    assert_ne!(a.requests[0].execution_name, c.requests[0].execution_name);
    let mut other = v.clone();
    other["resources"][0] = json!("arn:aws:cloudwatch:us-east-1:123456789012:alarm:Other");
    let d = parse(&other, &rollback_default());
    assert_ne!(a.requests[0].execution_name, d.requests[0].execution_name);
}

#[test]
fn directive_overrides_dimensions_and_defaults() {
    let mut v = eventbridge_eks();
    v["detail"]["configuration"]["description"] = json!(
        "Checkout is failing.\nselfheal: action=pause cluster=staging namespace=payments deployment=api container=web dryRun=true approval=true\nRunbook: wiki"
    );
    let defaults = Defaults {
        cluster: Some("default-cluster".into()),
        action: Some(Action::Rollback),
        allow_cross_namespace: true,
    };
    let ingested = parse(&v, &defaults);
    let r = &only_request(&ingested).request;
    assert_wants(
        r,
        Action::Pause,
        deployment_target(Some("staging"), "payments", "api", Some("web")),
    );
    assert!(r.dry_run && r.approval);
    assert!(
        ingested.requests[0]
            .execution_name
            .starts_with("pause-api-")
    );
}

#[test]
fn directive_with_unknown_key_rejects_naming_the_key() {
    let mut v = eventbridge_eks();
    v["detail"]["configuration"]["description"] = json!("selfheal: action=rollback colour=red");
    let ingested = parse(&v, &rollback_default());
    let r = only_rejection(&ingested);
    assert!(matches!(r, Rejection::Directive { .. }), "{r:?}");
    assert!(ingested.ignored[0].message.contains("unknown key `colour`"));
    let mut v = eventbridge_eks();
    v["detail"]["configuration"]["description"] = json!("selfheal: action rollback");
    let ingested = parse(&v, &rollback_default());
    assert!(
        ingested.ignored[0]
            .message
            .contains("malformed pair `action`")
    );
}

/// The EventBridge rule matches `*selfheal:*` case-sensitively, so a
/// `Selfheal:` line is a typed rejection, not a request from the dimensions
/// and defaults (nor silently dropped).
#[test]
fn directive_keyword_in_another_case_rejects_the_alarm() {
    for keyword in ["Selfheal:", "SELFHEAL:"] {
        let mut v = eventbridge_eks();
        v["detail"]["configuration"]["description"] = json!(format!(
            "Checkout is failing.\n{keyword} action=pause namespace=shop"
        ));
        let ingested = parse(&v, &rollback_default());
        let r = only_rejection(&ingested);
        assert!(matches!(r, Rejection::Directive { .. }), "{r:?}");
        assert_eq!(
            ingested.ignored[0].message,
            format!(
                "selfheal directive: keyword `{keyword}` must be lowercase `selfheal:` (the EventBridge rule matches only `selfheal:`)"
            )
        );
        let mut v = fixture("alertmanager/firing-single.json");
        v["alerts"][0]["annotations"]["selfheal"] = json!(format!("{keyword} action=restart"));
        let ingested = parse(&v, &rollback_default());
        assert!(
            matches!(only_rejection(&ingested), Rejection::Directive { .. }),
            "{ingested:#?}"
        );
    }
    // The lowercase keyword on the same alarm is a request.
    let mut v = eventbridge_eks();
    v["detail"]["configuration"]["description"] =
        json!("Checkout is failing.\nselfheal: action=pause namespace=shop");
    let ingested = parse(&v, &rollback_default());
    assert_eq!(only_request(&ingested).request.action, Action::Pause);
}

#[test]
fn defaults_fill_cluster_when_no_dimension_names_it() {
    let mut v = eventbridge_eks();
    v["detail"]["configuration"]["metrics"][0]["metricStat"]["metric"]["dimensions"] =
        json!({ "Namespace": "shop", "Deployment": "checkout", "ContainerName": "api" });
    let defaults = Defaults {
        cluster: Some("prod-eks".into()),
        action: Some(Action::Restart),
        ..Defaults::default()
    };
    let ingested = parse(&v, &defaults);
    let r = &only_request(&ingested).request;
    assert_eq!(r.action, Action::Restart);
    assert_eq!(r.target.cluster.as_deref(), Some("prod-eks"));
    assert_eq!(r.target.deployment.as_deref(), Some("checkout"));
    assert_eq!(r.target.container.as_deref(), Some("api"));
}

#[test]
fn composite_alarm_needs_a_directive() {
    let mut v = fixture("cloudwatch/eventbridge-single-metric-alarm.json");
    v["detail"]["configuration"] = json!({
        "alarmRule": "ALARM(CheckoutErrors) AND ALARM(CheckoutLatency)",
        "actionsSuppressor": "",
        "actionsSuppressorWaitPeriod": 0,
        "actionsSuppressorExtensionPeriod": 0,
        "description": "checkout is down"
    });
    v["detail"]["state"]["reasonData"] = json!(
        "{\"triggeringAlarms\":[{\"arn\":\"arn:aws:cloudwatch:us-east-1:123456789012:alarm:CheckoutErrors\",\"state\":{\"value\":\"ALARM\",\"timestamp\":\"2019-10-02T17:04:40.989+0000\"}}]}"
    );
    let ingested = parse(&v, &rollback_default());
    assert_eq!(
        only_rejection(&ingested),
        &Rejection::CompositeWithoutDirective
    );

    v["detail"]["configuration"]["description"] =
        json!("checkout is down\nselfheal: namespace=shop deployment=checkout");
    let ingested = parse(&v, &rollback_default());
    let r = &only_request(&ingested).request;
    assert_eq!(r.action, Action::Rollback);
    assert_eq!(r.target.namespace, "shop");
    assert_eq!(r.target.deployment.as_deref(), Some("checkout"));
    assert_eq!(r.alarm.as_ref().unwrap().impact_score, None);
}

// ---- Lambda alarm action (metric math) -------------------------------------------

#[test]
fn alarm_action_fixture_metric_math_without_dimensions_is_rejected() {
    let ingested = parse_rejected(
        "cloudwatch/lambda-alarm-action-metric-math.json",
        &rollback_default(),
        EventKind::AlarmAction,
        "target.namespace",
    );
    assert_ignored_alarm(
        &ingested,
        "Test alert",
        "arn:aws:cloudwatch:eu-west-1:912397435824:alarm:test_alarm",
    );
}

#[test]
fn metric_math_alarm_reads_dimensions_from_every_metric() {
    let mut v = fixture("cloudwatch/lambda-alarm-action-metric-math.json");
    let metrics = &mut v["alarmData"]["configuration"]["metrics"];
    metrics[1]["metricStat"]["metric"]["dimensions"] =
        json!({ "ClusterName": "prod-eks", "Namespace": "shop" });
    metrics[2]["metricStat"]["metric"]["dimensions"] =
        json!({ "Namespace": "shop", "PodName": "checkout", "Container": "api" });
    let ingested = parse(&v, &rollback_default());
    let named = only_request(&ingested);
    assert_eq!(
        named.request.target,
        deployment_target(Some("prod-eks"), "shop", "checkout", Some("api"))
    );
    let alarm = named.request.alarm.as_ref().unwrap();
    assert_eq!(alarm.impact_score, Some(0.1));
    assert_eq!(alarm.name.as_deref(), Some("Test alert"));

    // Two metrics naming different namespaces: ambiguous, rejected rather than picked.
    v["alarmData"]["configuration"]["metrics"][2]["metricStat"]["metric"]["dimensions"]["Namespace"] =
        json!("other");
    let ingested = parse(&v, &rollback_default());
    let r = only_rejection(&ingested);
    assert_eq!(
        r,
        &Rejection::Conflict {
            field: "target.namespace",
            first: "shop".into(),
            second: "other".into()
        }
    );
}

// ---- SNS ---------------------------------------------------------------------

#[test]
fn sns_fixture_is_read_and_rejected_for_missing_namespace() {
    let ingested = parse_rejected(
        "cloudwatch/sns-alarm-single-metric.json",
        &rollback_default(),
        EventKind::SnsAlarm,
        "target.namespace",
    );
    assert_ignored_alarm(
        &ingested,
        "EXAMPLE",
        "arn:aws:cloudwatch:REGION:ACCOUNT_NUMBER:alarm:EXAMPLE",
    );
}

#[test]
fn sns_alarm_with_eks_dimensions_and_null_description() {
    let v = sns_with(|m| {
        m["AlarmDescription"] = Value::Null;
        m["Trigger"]["Threshold"] = json!(500.0);
        m["Trigger"]["Dimensions"] = json!([
            { "value": "prod-eks", "name": "ClusterName" },
            { "value": "shop", "name": "Namespace" },
            { "value": "checkout", "name": "PodName" }
        ]);
    });
    let ingested = parse(&v, &rollback_default());
    let r = &only_request(&ingested).request;
    assert_eq!(r.target.cluster.as_deref(), Some("prod-eks"));
    assert_eq!(r.target.deployment.as_deref(), Some("checkout"));
    // 1234.0 from the reason text ÷ threshold 500.
    assert_eq!(r.alarm.as_ref().unwrap().impact_score, Some(1234.0 / 500.0));
}

#[test]
fn sns_fixture_zero_threshold_gives_no_impact_score() {
    let v = sns_with(|m| {
        m["AlarmDescription"] = json!("selfheal: namespace=shop pod=checkout-7d9f-abcde");
    });
    let ingested = parse(&v, &rollback_default());
    let r = &only_request(&ingested).request;
    assert_eq!(r.target.pod.as_deref(), Some("checkout-7d9f-abcde"));
    assert_eq!(r.target.deployment, None);
    assert_eq!(r.alarm.as_ref().unwrap().impact_score, None);
}

#[test]
fn sns_ok_transition_is_ignored() {
    let v = sns_with(|m| m["NewStateValue"] = json!("OK"));
    let ingested = parse(&v, &rollback_default());
    assert_not_firing(&ingested, "OK");
}

#[test]
fn sns_metric_math_alarm_reads_metrics_dimensions() {
    let v = sns_with(|m| {
        let trigger = m["Trigger"].as_object_mut().unwrap();
        trigger.remove("Dimensions");
        trigger.remove("MetricName");
        trigger.insert(
            "Metrics".into(),
            json!([
                { "Id": "e1", "Expression": "m1/m2", "ReturnData": true },
                { "Id": "m1", "ReturnData": false, "MetricStat": { "Metric": {
                    "Dimensions": [{ "value": "shop", "name": "Namespace" },
                                   { "value": "checkout", "name": "PodName" }],
                    "MetricName": "pod_cpu_utilization", "Namespace": "ContainerInsights" },
                    "Period": 60, "Stat": "Average" } }
            ]),
        );
    });
    let ingested = parse(&v, &rollback_default());
    let r = &only_request(&ingested).request;
    assert_eq!(r.target.namespace, "shop");
    assert_eq!(r.target.deployment.as_deref(), Some("checkout"));
}

#[test]
fn sns_composite_alarm_without_directive_is_rejected() {
    let v = sns_with(|m| {
        let o = m.as_object_mut().unwrap();
        o.remove("Trigger");
        o.insert("AlarmRule".into(), json!("ALARM(a) OR ALARM(b)"));
    });
    let ingested = parse(&v, &rollback_default());
    assert_eq!(
        only_rejection(&ingested),
        &Rejection::CompositeWithoutDirective
    );
}

#[test]
fn same_transition_via_sns_and_eventbridge_gets_one_name() {
    let arn = "arn:aws:cloudwatch:us-east-1:123456789012:alarm:ServerCpuTooHigh";
    let eb = eventbridge_eks();
    let sns = sns_with(|m| {
        m["AlarmArn"] = json!(arn);
        m["AlarmName"] = json!("ServerCpuTooHigh");
        // EventBridge's state.timestamp of the same transition.
        m["StateChangeTime"] = json!("2019-10-02T17:04:40.989+0000");
        m["Trigger"]["Dimensions"] = json!([
            { "value": "prod-eks", "name": "ClusterName" },
            { "value": "shop", "name": "Namespace" },
            { "value": "checkout", "name": "PodName" }
        ]);
    });
    let a = parse(&eb, &rollback_default());
    let b = parse(&sns, &rollback_default());
    assert_eq!(a.requests[0].execution_name, b.requests[0].execution_name);
}

#[test]
fn sns_message_that_is_not_an_alarm_is_unsupported() {
    let mut v = fixture("cloudwatch/sns-alarm-single-metric.json");
    v["Records"][0]["Sns"]["Message"] = json!("hello from a test topic");
    let err = parse_err(&v, &rollback_default());
    assert!(matches!(err, Error::Unsupported(_)), "{err}");
    assert!(err.to_string().contains("not a CloudWatch alarm"), "{err}");

    // One good record and one bad: the good one still starts.
    let good = sns_with(|m| {
        m["AlarmDescription"] = json!("selfheal: namespace=shop deployment=checkout");
    });
    let mut mixed = good.clone();
    let mut bad = good["Records"][0].clone();
    bad["Sns"]["Message"] = json!("{\"not\":\"an alarm\"}");
    mixed["Records"].as_array_mut().unwrap().push(bad);
    let ingested = parse(&mixed, &rollback_default());
    assert_eq!(ingested.requests.len(), 1);
    assert_eq!(ingested.rejected().count(), 1);
    assert!(matches!(
        ingested.ignored[0].rejection(),
        Some(Rejection::Unreadable { .. })
    ));
}

// ---- Alertmanager ------------------------------------------------------------

#[test]
fn alertmanager_firing_fixture_needs_an_action() {
    // `remediation: rollback` is not a documented directive: no guessing.
    let ingested = parse_rejected(
        "alertmanager/firing-single.json",
        &no_defaults(),
        EventKind::Alertmanager,
        "action",
    );
    assert_ignored_alarm(&ingested, "DeploymentHalfBricked", "928e0cea74916f65");
}

#[test]
fn alertmanager_firing_fixture_with_default_action() {
    let v = fixture("alertmanager/firing-single.json");
    let ingested = parse(&v, &rollback_default());
    let named = only_request(&ingested);
    let r = &named.request;
    assert_wants(
        r,
        Action::Rollback,
        deployment_target(None, "default", "x", Some("app")),
    );
    let alarm = assert_from_alarm(
        r,
        "alertmanager",
        "DeploymentHalfBricked",
        "928e0cea74916f65",
    );
    assert_eq!(alarm.impact_score, None);
    assert_eq!(
        r.reason.as_deref(),
        Some(
            "Alertmanager DeploymentHalfBricked firing: Deployment default/x container app is crashlooping"
        )
    );
    assert!(named.execution_name.starts_with("rollback-x-"));
    assert!(valid_name(&named.execution_name));

    // Re-sent notification: same name. New firing episode (startsAt): new name.
    let again = parse(&v, &rollback_default());
    assert_eq!(again.requests[0].execution_name, named.execution_name);
    let mut later = v.clone();
    later["alerts"][0]["startsAt"] = json!("2026-11-26T20:00:00Z");
    let later = parse(&later, &rollback_default());
    assert_ne!(later.requests[0].execution_name, named.execution_name);
}

#[test]
fn alertmanager_resolved_fixture_is_ignored() {
    let v = fixture("alertmanager/resolved-single.json");
    let ingested = parse(&v, &rollback_default());
    assert_not_firing(&ingested, "resolved");
    assert_eq!(ingested.ignored[0].id.as_deref(), Some("26408e0ac635ef00"));
}

fn alert(status: &str, labels: Value, annotations: Value, fingerprint: &str) -> Value {
    json!({
        "status": status,
        "labels": labels,
        "annotations": annotations,
        "startsAt": "2026-11-26T19:11:48.278Z",
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "",
        "fingerprint": fingerprint
    })
}

#[test]
fn grouped_notification_with_mixed_alerts() {
    let mut v = fixture("alertmanager/firing-single.json");
    v["truncatedAlerts"] = json!(2);
    v["alerts"] = json!([
        alert(
            "firing",
            json!({"alertname": "KubeDeploymentRolloutStuck", "namespace": "shop", "deployment": "checkout", "cluster": "prod-eks"}),
            json!({"selfheal": "action=pause", "value": "3", "threshold": "1.5"}),
            "aaaaaaaaaaaaaaaa"
        ),
        alert(
            "resolved",
            json!({"alertname": "KubeDeploymentRolloutStuck", "namespace": "shop", "deployment": "cart"}),
            json!({}),
            "bbbbbbbbbbbbbbbb"
        ),
        alert(
            "firing",
            json!({"alertname": "KubePodCrashLooping", "namespace": "shop", "pod": "web-5d8f7c-x2x9q", "container": "nginx", "reason": "CrashLoopBackOff", "job": "kube-state-metrics"}),
            json!({"summary": "crashlooping"}),
            "cccccccccccccccc"
        ),
        alert(
            "firing",
            json!({"alertname": "NoNamespace", "deployment": "lost"}),
            json!({}),
            "dddddddddddddddd"
        ),
        alert(
            "firing",
            json!({"alertname": "BadDirective", "namespace": "shop", "deployment": "x"}),
            json!({"selfheal": "action=rollback when=now"}),
            "eeeeeeeeeeeeeeee"
        ),
    ]);
    let ingested = parse(&v, &rollback_default());

    assert_eq!(ingested.requests.len(), 2, "{ingested:#?}");
    let pause = &ingested.requests[0].request;
    assert_eq!(pause.action, Action::Pause);
    assert_eq!(pause.target.cluster.as_deref(), Some("prod-eks"));
    assert_eq!(pause.target.deployment.as_deref(), Some("checkout"));
    assert_eq!(pause.alarm.as_ref().unwrap().impact_score, Some(2.0));
    let pod = &ingested.requests[1];
    assert_eq!(pod.request.action, Action::Rollback);
    assert_eq!(
        pod.request.target,
        Target {
            cluster: None,
            namespace: "shop".into(),
            deployment: None,
            pod: Some("web-5d8f7c-x2x9q".into()),
            container: Some("nginx".into()),
            ..Target::default()
        }
    );
    assert!(pod.execution_name.starts_with("rollback-web-5d8f7c-x2x9q-"));
    assert_ne!(ingested.requests[0].execution_name, pod.execution_name);

    let reasons: Vec<(&str, &IgnoreReason)> = ingested
        .ignored
        .iter()
        .map(|i| (i.id.as_deref().unwrap(), &i.reason))
        .collect();
    assert_eq!(reasons.len(), 4, "{reasons:#?}");
    assert_eq!(
        reasons[0],
        (
            "bbbbbbbbbbbbbbbb",
            &IgnoreReason::NotFiring {
                state: "resolved".into()
            }
        )
    );
    assert!(matches!(
        reasons[1],
        (
            "dddddddddddddddd",
            IgnoreReason::Rejected(Rejection::MissingField {
                field: "target.namespace",
                ..
            })
        )
    ));
    assert!(matches!(
        reasons[2],
        (
            "eeeeeeeeeeeeeeee",
            IgnoreReason::Rejected(Rejection::Directive { .. })
        )
    ));
    assert!(ingested.ignored[2].message.contains("unknown key `when`"));
    assert_eq!(reasons[3].1, &IgnoreReason::Truncated { count: 2 });
    assert_eq!(ingested.rejected().count(), 2);
}

#[test]
fn alertmanager_missing_fingerprint_is_computed_from_labels() {
    let mut v = fixture("alertmanager/firing-single.json");
    v["alerts"][0]["fingerprint"] = json!("");
    let ingested = parse(&v, &rollback_default());
    assert_eq!(
        ingested.requests[0]
            .request
            .alarm
            .as_ref()
            .unwrap()
            .id
            .as_deref(),
        Some("928e0cea74916f65")
    );
    let original = parse(
        &fixture("alertmanager/firing-single.json"),
        &rollback_default(),
    );
    assert_eq!(
        ingested.requests[0].execution_name,
        original.requests[0].execution_name
    );
}

#[test]
fn directive_may_not_steer_a_cloudwatch_alarm_to_another_namespace_or_cluster() {
    let mut v = eventbridge_eks();
    v["detail"]["configuration"]["description"] =
        json!("selfheal: action=rollback namespace=payments deployment=api");
    let ingested = parse(&v, &no_defaults());
    assert_eq!(
        only_rejection(&ingested),
        &cross_namespace("payments", "shop")
    );
    v["detail"]["configuration"]["description"] =
        json!("selfheal: action=rollback cluster=staging deployment=api");
    let ingested = parse(&v, &no_defaults());
    assert_cross_cluster(&ingested);
    // Naming the alarm's own namespace and cluster is fine.
    v["detail"]["configuration"]["description"] =
        json!("selfheal: action=rollback cluster=prod-eks namespace=shop deployment=api");
    let ingested = parse(&v, &no_defaults());
    assert_eq!(only_request(&ingested).request.target.namespace, "shop");
}

/// An alert rule's author (tenant `default` here) must not steer selfheal
/// into another namespace through the `selfheal` annotation, which
/// prometheus-operator's `enforcedNamespaceLabel` does not rewrite.
#[test]
fn alertmanager_directive_may_not_leave_the_alerts_namespace() {
    let mut v = fixture("alertmanager/firing-single.json");
    assert_eq!(v["alerts"][0]["labels"]["namespace"], "default");
    v["alerts"][0]["annotations"]["selfheal"] =
        json!("action=rollback namespace=payments deployment=api");
    let ingested = parse(&v, &no_defaults());
    let rejection = only_rejection(&ingested);
    assert_eq!(rejection, &cross_namespace("payments", "default"));
    assert_eq!(
        ingested.ignored[0].message,
        "the selfheal directive sets target.namespace `payments`, but the alert itself is from `default`; a directive may only target the alert's own namespace and cluster unless SELFHEAL_ALLOW_CROSS_NAMESPACE_DIRECTIVES is true"
    );
    // The same with a cluster label.
    v["alerts"][0]["labels"]["cluster"] = json!("tenant-a");
    v["alerts"][0]["annotations"]["selfheal"] =
        json!("action=rollback cluster=prod-eks deployment=api");
    let ingested = parse(&v, &no_defaults());
    assert_cross_cluster(&ingested);
}

#[test]
fn alertmanager_directive_overrides_labels() {
    let mut v = fixture("alertmanager/firing-single.json");
    v["alerts"][0]["annotations"]["selfheal"] =
        json!("action=restart namespace=prod deployment=y container=sidecar approval=true");
    let allow = Defaults {
        allow_cross_namespace: true,
        ..Defaults::default()
    };
    let ingested = parse(&v, &allow);
    let r = &only_request(&ingested).request;
    assert_eq!(r.action, Action::Restart);
    assert_eq!(r.target.namespace, "prod");
    assert_eq!(r.target.deployment.as_deref(), Some("y"));
    assert_eq!(r.target.container.as_deref(), Some("sidecar"));
    assert!(r.approval);
}

#[test]
fn unicode_names_are_sanitized_in_execution_names() {
    let mut v = fixture("alertmanager/firing-single.json");
    v["alerts"][0]["labels"]["deployment"] = json!("zahlungsdienst-über-alles-🚀");
    v["alerts"][0]["labels"]["alertname"] = json!("Bezahlung kaputt ✗");
    // Not a Kubernetes name (the contract's RFC 1123 rules): rejected, with
    // no execution to name.
    let ingested = parse(&v, &rollback_default());
    assert!(
        matches!(only_rejection(&ingested), Rejection::InvalidTarget { .. }),
        "{ingested:#?}"
    );

    let mut v = eventbridge_eks();
    v["detail"]["alarmName"] = json!("Überlast – Kasse");
    v["resources"][0] = json!("arn:aws:cloudwatch:us-east-1:123456789012:alarm:Überlast – Kasse");
    v["detail"]["configuration"]["metrics"][0]["metricStat"]["metric"]["dimensions"]["PodName"] = json!(
        format!("{}.{}.{}", "k".repeat(63), "k".repeat(63), "k".repeat(63))
    );
    let named = &parse(&v, &rollback_default()).requests[0];
    assert!(
        valid_name(&named.execution_name),
        "{}",
        named.execution_name
    );
    assert_eq!(named.execution_name.len(), 80);
}

/// kube-state-metrics names a StatefulSet's or DaemonSet's series with a
/// `statefulset` / `daemonset` label (and often `pod` too): the workload is
/// what the request targets, with the kind the label says.
#[test]
fn kube_state_metrics_statefulset_and_daemonset_labels_name_the_workload() {
    let mut v = fixture("alertmanager/firing-single.json");
    v["alerts"] = json!([
        alert(
            "firing",
            json!({"alertname": "KubeStatefulSetUpdateNotRolledOut", "namespace": "data", "statefulset": "db", "pod": "db-2", "job": "kube-state-metrics"}),
            json!({"selfheal": "action=pause"}),
            "1111111111111111",
        ),
        alert(
            "firing",
            json!({"alertname": "KubeDaemonSetRolloutStuck", "namespace": "kube-system", "daemonset": "log-agent", "container": "shipper"}),
            json!({"selfheal": "action=rollback"}),
            "2222222222222222",
        ),
    ]);
    let ingested = parse(&v, &no_defaults());
    assert!(ingested.ignored.is_empty(), "{ingested:#?}");
    let [sts, ds] = [&ingested.requests[0], &ingested.requests[1]];
    assert_wants(
        &sts.request,
        Action::Pause,
        Target {
            namespace: "data".into(),
            stateful_set: Some("db".into()),
            ..Target::default()
        },
    );
    assert!(
        sts.execution_name.starts_with("pause-db-"),
        "{}",
        sts.execution_name
    );
    assert_wants(
        &ds.request,
        Action::Rollback,
        Target {
            namespace: "kube-system".into(),
            daemon_set: Some("log-agent".into()),
            container: Some("shipper".into()),
            ..Target::default()
        },
    );
    // The request a handler receives says the kind in the contract's words.
    let json = serde_json::to_value(&ds.request).unwrap();
    assert_eq!(json["target"]["daemonSet"], "log-agent");
    assert!(json["target"].get("deployment").is_none(), "{json}");

    // A CloudWatch description names the kind the same way.
    let mut v = eventbridge_eks();
    v["detail"]["configuration"]["description"] =
        json!("selfheal: action=restart namespace=shop statefulset=db");
    let ingested = parse(&v, &no_defaults());
    let r = &only_request(&ingested).request;
    assert_eq!(r.target.stateful_set.as_deref(), Some("db"));
    assert_eq!(r.target.deployment, None);
}

#[test]
fn alertmanager_other_version_is_unsupported() {
    let mut v = fixture("alertmanager/firing-single.json");
    v["version"] = json!("3");
    let err = parse_err(&v, &no_defaults());
    assert!(matches!(err, Error::Unsupported(_)), "{err}");
    assert!(err.to_string().contains("\"3\""));
}

// ---- manual ------------------------------------------------------------------

#[test]
fn manual_request_passes_through_with_a_stable_name() {
    let text = br#"{
      "action": "rollback",
      "target": { "cluster": "prod-eks", "namespace": "shop", "deployment": "checkout", "container": "api" },
      "reason": "5xx rate above 5% for 3 minutes",
      "dryRun": false,
      "force": false
    }"#;
    let ingested = parse_event(text, &rollback_default()).unwrap();
    assert_eq!(ingested.kind, EventKind::Manual);
    let named = only_request(&ingested);
    assert_eq!(named.request.action, Action::Rollback);
    assert_eq!(named.request.target.container.as_deref(), Some("api"));
    assert_eq!(named.request.alarm, None, "manual stays manual");
    assert!(named.execution_name.starts_with("rollback-checkout-"));
    // Same request, different formatting and key order: same name.
    let reordered = br#"{"target":{"container":"api","deployment":"checkout","namespace":"shop","cluster":"prod-eks"},"reason":"5xx rate above 5% for 3 minutes","action":"rollback"}"#;
    let again = parse_event(reordered, &no_defaults()).unwrap();
    assert_eq!(again.requests[0].execution_name, named.execution_name);
    let different = br#"{"target":{"container":"api","deployment":"checkout","namespace":"shop","cluster":"prod-eks"},"reason":"second try","action":"rollback"}"#;
    let other = parse_event(different, &no_defaults()).unwrap();
    assert_ne!(other.requests[0].execution_name, named.execution_name);
}

#[test]
fn manual_request_errors_are_typed() {
    let err = parse_event(
        br#"{"action":"rollback","target":{"namespace":"shop"}}"#,
        &no_defaults(),
    )
    .unwrap_err();
    assert!(matches!(err, Error::InvalidRequest { .. }), "{err}");
    assert!(err.to_string().contains("deployment"), "{err}");
    let err = parse_event(
        br#"{"action":"explode","target":{"namespace":"shop","deployment":"x"}}"#,
        &no_defaults(),
    )
    .unwrap_err();
    assert_invalid_event(&err, EventKind::Manual);
}

// ---- whole-payload errors ----------------------------------------------------------

#[test]
fn oversized_payload_is_refused_before_parsing() {
    let mut body = b"{\"pad\":\"".to_vec();
    body.resize(MAX_EVENT_BYTES + 1, b'a');
    let err = parse_event(&body, &no_defaults()).unwrap_err();
    assert!(
        matches!(err, Error::TooLarge { size, limit } if size == MAX_EVENT_BYTES + 1 && limit == 256 * 1024),
        "{err}"
    );
    // A real event padded up to exactly the limit is still accepted.
    let mut v = fixture("alertmanager/firing-single.json");
    let base = serde_json::to_vec(&v).unwrap().len();
    v["commonAnnotations"]["pad"] = json!("");
    let overhead = serde_json::to_vec(&v).unwrap().len() - base;
    v["commonAnnotations"]["pad"] = json!("p".repeat(MAX_EVENT_BYTES - base - overhead));
    let body = serde_json::to_vec(&v).unwrap();
    assert_eq!(body.len(), MAX_EVENT_BYTES);
    assert_eq!(
        parse_event(&body, &rollback_default())
            .unwrap()
            .requests
            .len(),
        1
    );
}

#[test]
fn non_json_and_unknown_shapes_are_typed_errors() {
    let err = parse_event(b"<html>502</html>", &no_defaults()).unwrap_err();
    assert!(matches!(err, Error::Malformed { .. }), "{err}");
    assert!(err.to_string().contains("expected value"), "{err}");
    assert_eq!(err.error_type(), "EventMalformed");
    let err = parse_event(b"", &no_defaults()).unwrap_err();
    assert!(matches!(err, Error::Malformed { .. }), "{err}");
    let err = parse_event(
        br#"{"Records":[{"eventSource":"aws:sqs","body":"{}"}]}"#,
        &no_defaults(),
    )
    .unwrap_err();
    assert!(matches!(err, Error::Unsupported(_)), "{err}");
    assert!(err.to_string().contains("want aws:sns"), "{err}");
    let err = parse_event(b"[1,2]", &no_defaults()).unwrap_err();
    assert!(matches!(err, Error::Unsupported(_)), "{err}");
    let err = parse_event(br#"{"hello":"world"}"#, &no_defaults()).unwrap_err();
    assert!(err.to_string().contains("hello"), "{err}");

    let mut v = eventbridge_eks();
    v["detail-type"] = json!("EC2 Instance State-change Notification");
    let err = parse_err(&v, &no_defaults());
    assert!(matches!(err, Error::Unsupported(_)), "{err}");
    assert!(err.to_string().contains("EC2 Instance"), "{err}");

    let mut v = eventbridge_eks();
    v["detail"]["state"]["timestamp"] = json!("not a time");
    let err = parse_err(&v, &no_defaults());
    assert_invalid_event(&err, EventKind::EventBridgeAlarm);

    let mut v = fixture("alertmanager/firing-single.json");
    v["alerts"] = json!("not a list");
    let err = parse_err(&v, &no_defaults());
    assert_invalid_event(&err, EventKind::Alertmanager);
}

#[test]
fn ingested_serializes_for_logs() {
    let v = fixture("alertmanager/firing-single.json");
    let out = serde_json::to_value(parse(&v, &no_defaults())).unwrap();
    assert_eq!(out["kind"], "alertmanager");
    assert_eq!(out["requests"], json!([]));
    assert_eq!(out["ignored"][0]["id"], "928e0cea74916f65");
    assert_eq!(
        out["ignored"][0]["reason"]["rejected"]["missingField"]["field"],
        "action"
    );
    let v = fixture("alertmanager/firing-single.json");
    let out = serde_json::to_value(parse(&v, &rollback_default())).unwrap();
    assert_eq!(out["requests"][0]["request"]["target"]["deployment"], "x");
    assert!(out["requests"][0]["executionName"].is_string());
}

// ---- robustness: no input panics ------------------------------------------------------

const FIXTURES: [&str; 6] = [
    "cloudwatch/eventbridge-single-metric-alarm.json",
    "cloudwatch/eventbridge-ok-from-alarm.json",
    "cloudwatch/sns-alarm-single-metric.json",
    "cloudwatch/lambda-alarm-action-metric-math.json",
    "alertmanager/firing-single.json",
    "alertmanager/resolved-single.json",
];

fn check_no_panic(body: &[u8], defaults: &Defaults) {
    let result = std::panic::catch_unwind(|| parse_event(body, defaults));
    let outcome = result.unwrap_or_else(|_| {
        panic!(
            "parse_event panicked on {:?}",
            String::from_utf8_lossy(body)
        )
    });
    if let Ok(ingested) = outcome {
        for r in &ingested.requests {
            assert!(valid_name(&r.execution_name), "{}", r.execution_name);
            r.request.validate().unwrap();
        }
    }
}

#[test]
fn truncated_and_mutated_fixtures_never_panic() {
    let defaults = rollback_default();
    let mut seed: u64 = 0x5eed;
    let mut next = move || {
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        seed >> 33
    };
    let interesting = b"{}[]\":,0-9eE.nultrfasALRMOK\\ \xff\xc3";
    for path in FIXTURES {
        let original = serde_json::to_vec(&fixture(path)).unwrap();
        for len in 0..original.len() {
            check_no_panic(&original[..len], &defaults);
        }
        for _ in 0..2_000 {
            let mut body = original.clone();
            for _ in 0..=(next() % 4) {
                let at = (next() as usize) % body.len();
                body[at] = interesting[(next() as usize) % interesting.len()];
            }
            check_no_panic(&body, &defaults);
        }
    }
}

/// Replace every node of each fixture (and of the JSON inside SNS `Message`
/// and `reasonData`) by values of other types: typed errors, never panics.
#[test]
fn structurally_mutated_fixtures_never_panic() {
    fn paths(v: &Value, here: String, out: &mut Vec<String>) {
        out.push(here.clone());
        match v {
            Value::Object(m) => {
                for (k, c) in m {
                    paths(
                        c,
                        format!("{here}/{}", k.replace('~', "~0").replace('/', "~1")),
                        out,
                    );
                }
            }
            Value::Array(a) => {
                for (i, c) in a.iter().enumerate() {
                    paths(c, format!("{here}/{i}"), out);
                }
            }
            _ => {}
        }
    }
    let replacements = [
        Value::Null,
        json!(0),
        json!(-1.5e300),
        json!(""),
        json!("ALARM"),
        json!("firing"),
        json!([]),
        json!({}),
        json!(true),
    ];
    let defaults = rollback_default();
    for path in FIXTURES {
        let original = fixture(path);
        let mut all = Vec::new();
        paths(&original, String::new(), &mut all);
        for p in all.iter().filter(|p| !p.is_empty()) {
            for r in &replacements {
                let mut v = original.clone();
                *v.pointer_mut(p).unwrap() = r.clone();
                check_no_panic(&serde_json::to_vec(&v).unwrap(), &defaults);
            }
        }
    }
    // The JSON-in-a-string layers.
    let sns = fixture("cloudwatch/sns-alarm-single-metric.json");
    let message: Value =
        serde_json::from_str(sns["Records"][0]["Sns"]["Message"].as_str().unwrap()).unwrap();
    let mut inner = Vec::new();
    paths(&message, String::new(), &mut inner);
    for p in inner.iter().filter(|p| !p.is_empty()) {
        for r in &replacements {
            let v = sns_with(|m| *m.pointer_mut(p).unwrap() = r.clone());
            check_no_panic(&serde_json::to_vec(&v).unwrap(), &defaults);
        }
    }
    let eb = eventbridge_eks();
    let reason: Value =
        serde_json::from_str(eb["detail"]["state"]["reasonData"].as_str().unwrap()).unwrap();
    let mut inner = Vec::new();
    paths(&reason, String::new(), &mut inner);
    for p in inner.iter().filter(|p| !p.is_empty()) {
        for r in &replacements {
            let mut data = reason.clone();
            *data.pointer_mut(p).unwrap() = r.clone();
            let mut v = eb.clone();
            v["detail"]["state"]["reasonData"] = Value::String(data.to_string());
            check_no_panic(&serde_json::to_vec(&v).unwrap(), &defaults);
        }
    }
}
