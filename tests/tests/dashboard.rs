//! The dashboard and selfheal's own alarms (README "Metrics and dashboard")
//! plot only what exists: every `Selfheal` metric a widget or alarm names
//! (explicitly or in a `SEARCH` expression) is one the code writes, under a
//! dimension set it writes (`selfheal_metrics::PUBLISHED`), and every one
//! the code writes is plotted; every function and both state machines get
//! their AWS metrics widgets, by template.yaml logical ids that exist.
//!
//! The body is `deploy/dashboard.json`, which the CDK app reads
//! (`cdk/scripts/check-synth.mjs` checks the synthesized body is that
//! file); template.yaml carries it on one line, and this test keeps the two
//! equal. Pure: reads files, starts nothing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use selfheal_core::{Action, OutcomeStatus};
use selfheal_metrics::{NAMESPACE, PUBLISHED};
use selfheal_tests::yaml::Value as Yaml;
use serde_json::Value as Json;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn template() -> Yaml {
    let text = std::fs::read_to_string(root().join("template.yaml")).unwrap();
    selfheal_tests::yaml::from_str(&text).unwrap()
}

/// `!Sub "…"` (a YAML tag) as its string.
fn sub_string(value: &Yaml) -> &str {
    match value {
        Yaml::Tagged(tagged) if tagged.tag == "!Sub" => tagged.value.as_str().expect("!Sub text"),
        other => panic!("expected `!Sub` text, got {other:?}"),
    }
}

/// `!Ref X` as X.
fn ref_name(value: &Yaml) -> Option<&str> {
    match value {
        Yaml::Tagged(tagged) if tagged.tag == "!Ref" => tagged.value.as_str(),
        _ => None,
    }
}

fn dashboard_file() -> (String, Json) {
    let text = std::fs::read_to_string(root().join("deploy/dashboard.json")).unwrap();
    let json = serde_json::from_str(&text).unwrap();
    (text, json)
}

/// One metric a widget or alarm plots.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Plotted {
    namespace: String,
    name: String,
    /// Dimension name → value (`None` for a SEARCH schema's dimension).
    dimensions: BTreeMap<String, Option<String>>,
}

/// `SEARCH('{Namespace,Dim,…} MetricName="X"', 'Stat', period)`.
fn parse_search(expression: &str) -> Plotted {
    let inner = expression
        .strip_prefix("SEARCH('{")
        .unwrap_or_else(|| panic!("only SEARCH expressions are plotted: {expression}"));
    let (schema, rest) = inner.split_once('}').expect("schema ends with }");
    let mut parts = schema.split(',').map(str::trim);
    let namespace = parts.next().unwrap().to_owned();
    let dimensions = parts.map(|d| (d.to_owned(), None)).collect();
    let name = rest
        .split_once("MetricName=\"")
        .and_then(|(_, r)| r.split_once('"'))
        .map(|(name, _)| name.to_owned())
        .unwrap_or_else(|| panic!("SEARCH without MetricName=\"…\": {expression}"));
    Plotted {
        namespace,
        name,
        dimensions,
    }
}

/// `[namespace, name, dim, value, …, {options}]` or `[{expression}]`.
fn parse_metric(entry: &Json) -> Plotted {
    let items = entry.as_array().expect("a metrics entry is an array");
    if let Some(expression) = items[0].get("expression").and_then(Json::as_str) {
        return parse_search(expression);
    }
    let strings: Vec<&str> = items.iter().filter_map(Json::as_str).collect();
    assert!(
        strings.len() >= 2 && strings.len().is_multiple_of(2) && !strings.contains(&"..."),
        "[namespace, metric, (dimension, value)*] spelled out: {entry}"
    );
    Plotted {
        namespace: strings[0].to_owned(),
        name: strings[1].to_owned(),
        dimensions: strings[2..]
            .chunks(2)
            .map(|kv| (kv[0].to_owned(), Some(kv[1].to_owned())))
            .collect(),
    }
}

fn plotted(dashboard: &Json) -> Vec<(String, Plotted)> {
    let mut out = Vec::new();
    for widget in dashboard["widgets"].as_array().expect("widgets") {
        let title = widget["properties"]["title"]
            .as_str()
            .unwrap_or("?")
            .to_owned();
        assert_eq!(widget["type"], "metric", "{title}: only metric widgets");
        let metrics = widget["properties"]["metrics"].as_array().expect("metrics");
        assert!(!metrics.is_empty(), "{title}: an empty widget");
        for entry in metrics {
            out.push((title.clone(), parse_metric(entry)));
        }
    }
    out
}

/// A `Selfheal` metric must be published under exactly these dimension names.
fn assert_published(what: &str, metric: &Plotted) {
    assert_eq!(metric.namespace, NAMESPACE, "{what}");
    let published = selfheal_metrics::published(&metric.name)
        .unwrap_or_else(|| panic!("{what}: {} is not a metric the code writes", metric.name));
    let names: BTreeSet<&str> = metric.dimensions.keys().map(String::as_str).collect();
    assert!(
        published
            .dimension_sets
            .iter()
            .any(|set| set.iter().copied().collect::<BTreeSet<_>>() == names),
        "{what}: {} is not written under the dimensions {names:?} (only {:?})",
        metric.name,
        published.dimension_sets
    );
}

#[test]
fn template_yaml_carries_deploy_dashboard_json_on_one_line() {
    let template = template();
    let body = sub_string(&template["Resources"]["Dashboard"]["Properties"]["DashboardBody"]);
    let (_, file) = dashboard_file();
    let compact = serde_json::to_string(&file).unwrap();
    assert!(
        !body.trim().contains('\n'),
        "template.yaml's DashboardBody is one line"
    );
    let parsed: Json = serde_json::from_str(body).unwrap();
    assert_eq!(
        parsed, file,
        "template.yaml's DashboardBody must be deploy/dashboard.json; the line is:\n{compact}"
    );
}

#[test]
fn every_selfheal_metric_plotted_is_written_and_every_written_one_is_plotted() {
    let (_, dashboard) = dashboard_file();
    let mut names = BTreeSet::new();
    for (title, metric) in plotted(&dashboard) {
        if metric.namespace == NAMESPACE {
            assert_published(&format!("widget {title:?}"), &metric);
            names.insert(metric.name);
        } else {
            assert!(
                ["AWS/Lambda", "AWS/States"].contains(&metric.namespace.as_str()),
                "{title}: {metric:?}"
            );
        }
    }
    let written: BTreeSet<String> = PUBLISHED.iter().map(|p| p.name.to_owned()).collect();
    assert_eq!(names, written, "metrics written but not on the dashboard");
}

#[test]
fn every_function_and_state_machine_has_its_aws_metrics() {
    let template = template();
    let resources = template["Resources"].as_mapping().unwrap();
    let type_of = |name: &str| resources.get(name).and_then(|r| r["Type"].as_str());
    let (text, dashboard) = dashboard_file();
    let mut seen: BTreeSet<(String, String, String)> = BTreeSet::new();
    for (title, metric) in plotted(&dashboard) {
        if metric.namespace == NAMESPACE {
            continue;
        }
        let (dimension, value) = metric.dimensions.iter().next().expect("one dimension");
        let logical = value
            .as_deref()
            .and_then(|v| v.strip_prefix("${"))
            .and_then(|v| v.strip_suffix('}'))
            .unwrap_or_else(|| panic!("{title}: {value:?} is not a ${{LogicalId}}"));
        let expected = match dimension.as_str() {
            "FunctionName" => "AWS::Serverless::Function",
            "StateMachineArn" => "AWS::Serverless::StateMachine",
            other => panic!("{title}: dimension {other}"),
        };
        assert_eq!(type_of(logical), Some(expected), "{title}: {logical}");
        seen.insert((metric.namespace, metric.name, logical.to_owned()));
    }
    let mut functions: Vec<String> = std::fs::read_dir(root().join("functions"))
        .unwrap()
        .filter_map(|e| {
            let e = e.ok()?;
            e.path().join("Cargo.toml").exists().then(|| {
                let name = e.file_name().to_string_lossy().into_owned();
                format!("{}{}Function", name[..1].to_uppercase(), &name[1..])
            })
        })
        .collect();
    functions.sort();
    assert_eq!(functions.len(), 8, "{functions:?}");
    for function in &functions {
        for name in ["Errors", "Duration"] {
            let key = ("AWS/Lambda".to_owned(), name.to_owned(), function.clone());
            assert!(seen.contains(&key), "no {name} widget line for {function}");
        }
    }
    for machine in [
        "RemediateDeploymentStateMachine",
        "RemediateFleetStateMachine",
    ] {
        for name in ["ExecutionsFailed", "ExecutionsTimedOut"] {
            let key = ("AWS/States".to_owned(), name.to_owned(), machine.to_owned());
            assert!(seen.contains(&key), "no {name} widget line for {machine}");
        }
    }
    // Every `${…}` is one of those (or a pseudo parameter): nothing the
    // CDK app's Fn::Sub could leave unfilled.
    for name in text.split("${").skip(1).filter_map(|r| r.split_once('}')) {
        let name = name.0;
        assert!(
            name.starts_with("AWS::") || type_of(name).is_some(),
            "${{{name}}} is not a template.yaml resource"
        );
    }
}

#[test]
fn selfheal_alarms_watch_written_metrics_notify_and_stay_out_of_ingest() {
    let template = template();
    let prefix = template["Parameters"]["AlarmNamePrefix"]["Default"]
        .as_str()
        .unwrap();
    let mut alarms = 0;
    for (name, resource) in template["Resources"].as_mapping().unwrap() {
        let name = name.as_str().unwrap();
        // The example alarms (condition CreateExamples) are inputs to ingest.
        if resource["Type"] != "AWS::CloudWatch::Alarm" || resource.get("Condition").is_some() {
            continue;
        }
        alarms += 1;
        let p = &resource["Properties"];
        let actions: Vec<Option<&str>> = p["AlarmActions"]
            .as_sequence()
            .unwrap()
            .iter()
            .map(ref_name)
            .collect();
        assert_eq!(actions, [Some("NotificationTopic")], "{name}");
        let alarm_name = sub_string(&p["AlarmName"]);
        assert!(!alarm_name.starts_with(prefix), "{name}: {alarm_name}");
        let description = p["AlarmDescription"].as_str().unwrap();
        assert!(!description.contains("selfheal:"), "{name}: {description}");
        let metrics = p["Metrics"].as_sequence().cloned().unwrap_or_default();
        for metric in metrics.iter().filter_map(|m| m.get("MetricStat")) {
            let m = &metric["Metric"];
            if m["Namespace"] != NAMESPACE {
                continue;
            }
            let dimensions: BTreeMap<String, Option<String>> = m["Dimensions"]
                .as_sequence()
                .unwrap()
                .iter()
                .map(|d| {
                    let value = d["Value"].as_str().unwrap().to_owned();
                    (d["Name"].as_str().unwrap().to_owned(), Some(value))
                })
                .collect();
            let plotted = Plotted {
                namespace: NAMESPACE.to_owned(),
                name: m["MetricName"].as_str().unwrap().to_owned(),
                dimensions,
            };
            assert_published(name, &plotted);
            // Values the code writes, not typos.
            let action = plotted.dimensions["Action"].as_deref().unwrap();
            assert!(
                [
                    Action::Rollback,
                    Action::Pause,
                    Action::Resume,
                    Action::Restart
                ]
                .iter()
                .any(|a| a.as_str() == action),
                "{name}: Action {action}"
            );
            assert_eq!(
                plotted.dimensions["Status"].as_deref(),
                Some(OutcomeStatus::Refused.as_str()),
                "{name}"
            );
        }
    }
    assert_eq!(alarms, 2, "ExecutionsFailedAlarm and IngestErrorsAlarm");
}
