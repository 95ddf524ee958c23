use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::{Value, json};

use super::*;
use crate::emf::{Extracted, validate};

fn at() -> Timestamp {
    "2026-12-06T04:00:00.123Z".parse().unwrap()
}

/// One record of every shape the functions write: each action outcome kind
/// (plain, refused with a guard, error), each `verify` kind, the report with
/// and without a recovery, and ingest with every ignore reason and with none.
fn every_shape() -> Vec<String> {
    let d = Duration::from_micros(12_345);
    let plain = Ended::Status {
        status: "applied",
        guard: None,
    };
    let refused = Ended::Status {
        status: "refused",
        guard: Some("cooldown"),
    };
    let error = Ended::Error {
        error_type: "RetryableApiError",
    };
    let mut lines = Vec::new();
    for ended in [plain, refused, error] {
        lines.push(remediation("rollback", ended, d, at()).to_line().unwrap());
    }
    let done = Ended::Status {
        status: "done",
        guard: None,
    };
    for ended in [done, error] {
        lines.push(rollout_check(ended, d, at()).to_line().unwrap());
    }
    for recovered in [Some(93_000), None] {
        let body = ReportBody {
            action: "rollback".into(),
            time_to_recovered_ms: recovered,
            verify_checks: 4,
            escalations: 1,
            execution: "arn:aws:states:eu-west-1:123456789012:execution:sm:x".into(),
        };
        lines.push(report(body, at()).to_line().unwrap());
    }
    let all: Vec<(IgnoredReason, u64)> = IgnoredReason::ALL.iter().map(|r| (*r, 2)).collect();
    lines.extend(ingest(7, 3, &all, at()).to_lines().unwrap());
    lines.extend(ingest(0, 0, &[], at()).to_lines().unwrap());
    lines
}

#[test]
fn every_record_the_code_can_write_is_a_valid_emf_document() {
    let mut seen: BTreeSet<(String, String, Vec<String>)> = BTreeSet::new();
    for line in every_shape() {
        assert!(!line.contains('\n'), "one line: {line}");
        let extracted = validate(&line).unwrap_or_else(|p| panic!("{line}: {p:?}"));
        assert!(!extracted.is_empty(), "{line}");
        for Extracted {
            namespace,
            name,
            unit,
            dimensions,
        } in extracted
        {
            assert_eq!(namespace, NAMESPACE, "{line}");
            let published = published(&name).unwrap_or_else(|| panic!("{name} not in PUBLISHED"));
            assert_eq!(unit.as_deref(), Some(published.unit.as_str()), "{line}");
            assert!(
                published
                    .dimension_sets
                    .iter()
                    .any(|set| *set == dimensions.as_slice()),
                "{name} under {dimensions:?} is not in PUBLISHED"
            );
            seen.insert((name, published.unit.as_str().to_owned(), dimensions));
        }
    }
    // And PUBLISHED names nothing no record carries.
    let listed: BTreeSet<(String, String, Vec<String>)> = PUBLISHED
        .iter()
        .flat_map(|p| {
            p.dimension_sets.iter().map(|set| {
                (
                    p.name.to_owned(),
                    p.unit.as_str().to_owned(),
                    set.iter().map(|d| (*d).to_owned()).collect(),
                )
            })
        })
        .collect();
    assert_eq!(seen, listed);
}

#[test]
fn a_refusal_counts_by_action_status_and_by_guard() {
    let record = remediation(
        "pause",
        Ended::Status {
            status: "refused",
            guard: Some("cooldown"),
        },
        Duration::from_micros(1_500),
        at(),
    );
    let line: Value = serde_json::from_str(&record.to_line().unwrap()).unwrap();
    assert_eq!(
        line,
        json!({
            "_aws": {
                "Timestamp": 1_796_529_600_123_i64,
                "CloudWatchMetrics": [
                    {
                        "Namespace": "Selfheal",
                        "Dimensions": [["Action", "Status"]],
                        "Metrics": [
                            {"Name": "Remediations", "Unit": "Count"},
                            {"Name": "HandlerDuration", "Unit": "Milliseconds"}
                        ]
                    },
                    {
                        "Namespace": "Selfheal",
                        "Dimensions": [["Guard"]],
                        "Metrics": [{"Name": "Remediations", "Unit": "Count"}]
                    }
                ]
            },
            "Action": "pause",
            "Status": "refused",
            "Guard": "cooldown",
            "Remediations": 1,
            "HandlerDuration": 1.5
        })
    );
}

#[test]
fn an_error_is_status_error_with_its_error_type_as_a_property() {
    let record = rollout_check(
        Ended::Error {
            error_type: "NonRetryableForbidden",
        },
        Duration::from_millis(3),
        at(),
    );
    let body = record.body();
    assert_eq!(
        (body.action.as_str(), body.status.as_str()),
        ("verify", STATUS_ERROR)
    );
    assert_eq!(body.error_type.as_deref(), Some("NonRetryableForbidden"));
    assert_eq!(body.rollout_checks, Some(1));
    assert_eq!(body.remediations, None);
    let extracted = validate(&record.to_line().unwrap()).unwrap();
    assert!(
        extracted
            .iter()
            .all(|e| e.dimensions == ["Action", "Status"])
    );
}

#[test]
fn a_report_without_recovery_has_no_time_to_recovered() {
    let body = ReportBody {
        action: "pause".into(),
        time_to_recovered_ms: None,
        verify_checks: 0,
        escalations: 0,
        execution: "e".into(),
    };
    let line = report(body, at()).to_line().unwrap();
    let names: BTreeSet<String> = validate(&line)
        .unwrap()
        .into_iter()
        .map(|e| e.name)
        .collect();
    assert_eq!(
        names,
        BTreeSet::from(["VerifyChecks".to_owned(), "Escalations".to_owned()])
    );
    assert!(!line.contains("TimeToRecoveredMs"), "{line}");
}

#[test]
fn ingest_sums_reasons_and_skips_empty_ones() {
    let records = ingest(
        5,
        1,
        &[
            (IgnoredReason::NotFiring, 1),
            (IgnoredReason::Rejected, 1),
            (IgnoredReason::NotFiring, 2),
            (IgnoredReason::Disabled, 0),
        ],
        at(),
    );
    assert_eq!(records.counts.body().alarms_received, 5);
    assert_eq!(records.counts.body().executions_started, 1);
    let ignored: Vec<(&str, u64)> = records
        .ignored
        .iter()
        .map(|r| (r.body().reason, r.body().alarms_ignored))
        .collect();
    assert_eq!(ignored, [("notFiring", 3), ("rejected", 1)]);
}

#[test]
fn the_validator_finds_what_the_specification_forbids() {
    let good = remediation(
        "rollback",
        Ended::Status {
            status: "applied",
            guard: None,
        },
        Duration::ZERO,
        at(),
    )
    .to_line()
    .unwrap();
    let good: Value = serde_json::from_str(&good).unwrap();
    assert!(validate(&good.to_string()).is_ok());

    let broken = |edit: &dyn Fn(&mut Value), expect: &str| {
        let mut doc = good.clone();
        edit(&mut doc);
        let problems = validate(&doc.to_string()).expect_err(expect);
        assert!(
            problems.iter().any(|p| p.contains(expect)),
            "{expect}: {problems:?}"
        );
    };
    broken(
        &|d| {
            d.as_object_mut().unwrap().remove("Status");
        },
        "dimension `Status` is not a top-level member",
    );
    broken(
        &|d| d["Status"] = json!(3),
        "dimension `Status` is not a string",
    );
    broken(
        &|d| {
            d.as_object_mut().unwrap().remove("Remediations");
        },
        "metric `Remediations` is not a top-level member",
    );
    broken(
        &|d| d["Remediations"] = json!("1"),
        "metric `Remediations` is not a number",
    );
    broken(
        &|d| d["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Unit"] = json!("Things"),
        "is not a CloudWatch unit",
    );
    broken(
        &|d| d["_aws"]["Timestamp"] = json!("2026-12-06"),
        "Timestamp` is not an integer",
    );
    broken(
        &|d| {
            d["_aws"].as_object_mut().unwrap().remove("Timestamp");
        },
        "Timestamp` is not an integer",
    );
    broken(
        &|d| d["_aws"]["CloudWatchMetrics"][0]["Dimensions"] = json!([]),
        "Dimensions is empty",
    );
    broken(
        &|d| d["_aws"]["CloudWatchMetrics"][0]["Namespace"] = json!(""),
        "Namespace is not a string",
    );
    broken(
        &|d| {
            let keys: Vec<String> = (0..31).map(|i| format!("D{i}")).collect();
            for k in &keys {
                d[k] = json!("x");
            }
            d["_aws"]["CloudWatchMetrics"][0]["Dimensions"] = json!([keys]);
        },
        "has 31 keys (at most 30)",
    );
    broken(
        &|d| {
            let metrics: Vec<Value> = (0..101)
                .map(|i| {
                    d[format!("M{i}")] = json!(1);
                    json!({"Name": format!("M{i}")})
                })
                .collect();
            d["_aws"]["CloudWatchMetrics"][0]["Metrics"] = json!(metrics);
        },
        "has 101 definitions (at most 100)",
    );
    broken(
        &|d| d["_aws"]["Extra"] = json!(1),
        "`_aws` has an unknown member `Extra`",
    );
    assert!(validate("[1]").is_err());
    assert!(validate("{\"Remediations\": 1}").is_err());
}
