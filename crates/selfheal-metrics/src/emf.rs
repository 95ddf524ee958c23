//! The structure the CloudWatch embedded metric format specification asks of
//! a document, checked on one log line: tests validate every record the code
//! can write with it, and name the metrics a line yields.
//!
//! Checked (the specification's MUST rules): the line is one JSON object; it
//! has an `_aws` object with an integer `Timestamp` and a `CloudWatchMetrics`
//! array of MetricDirectives, and nothing else; each directive has a
//! `Namespace` (1–255 characters), a non-empty `Dimensions` array of
//! DimensionSets of at most [`MAX_DIMENSIONS`] keys, and a `Metrics` array
//! of at most [`MAX_METRICS`] MetricDefinitions, each with a `Name` and an
//! optional `Unit` from [`UNITS`] (and `StorageResolution` 1 or 60); every
//! dimension key is a top-level string member and every metric name a
//! top-level number or array of at most 100 numbers.

use serde_json::{Map, Value};

/// At most this many dimension keys per DimensionSet.
pub const MAX_DIMENSIONS: usize = 30;
/// At most this many MetricDefinitions per directive.
pub const MAX_METRICS: usize = 100;
/// At most this many values in an array metric target.
pub const MAX_VALUES: usize = 100;

/// The valid CloudWatch units (`MetricDatum`'s `Unit`).
pub const UNITS: [&str; 27] = [
    "Seconds",
    "Microseconds",
    "Milliseconds",
    "Bytes",
    "Kilobytes",
    "Megabytes",
    "Gigabytes",
    "Terabytes",
    "Bits",
    "Kilobits",
    "Megabits",
    "Gigabits",
    "Terabits",
    "Percent",
    "Count",
    "Bytes/Second",
    "Kilobytes/Second",
    "Megabytes/Second",
    "Gigabytes/Second",
    "Terabytes/Second",
    "Bits/Second",
    "Kilobits/Second",
    "Megabits/Second",
    "Gigabits/Second",
    "Terabits/Second",
    "Count/Second",
    "None",
];

/// One metric a valid document yields: under one dimension set.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Extracted {
    pub namespace: String,
    pub name: String,
    /// `None` when the definition has no `Unit`.
    pub unit: Option<String>,
    pub dimensions: Vec<String>,
}

/// Check `line` against the specification; the metrics it yields, or every
/// problem found.
pub fn validate(line: &str) -> Result<Vec<Extracted>, Vec<String>> {
    let mut problems = Vec::new();
    let root: Map<String, Value> = match serde_json::from_str::<Value>(line) {
        Ok(Value::Object(root)) => root,
        Ok(other) => return Err(vec![format!("not a JSON object: {other}")]),
        Err(e) => return Err(vec![format!("not JSON: {e}")]),
    };
    let Some(aws) = root.get("_aws").and_then(Value::as_object) else {
        return Err(vec!["no `_aws` object".into()]);
    };
    for key in aws.keys() {
        if !matches!(
            key.as_str(),
            "Timestamp" | "CloudWatchMetrics" | "LogGroupName"
        ) {
            problems.push(format!("`_aws` has an unknown member `{key}`"));
        }
    }
    if !aws
        .get("Timestamp")
        .is_some_and(|t| t.is_i64() || t.is_u64())
    {
        problems.push("`_aws.Timestamp` is not an integer (milliseconds since the epoch)".into());
    }
    let mut extracted = Vec::new();
    match aws.get("CloudWatchMetrics").and_then(Value::as_array) {
        None => problems.push("`_aws.CloudWatchMetrics` is not an array".into()),
        Some(directives) => {
            for (i, directive) in directives.iter().enumerate() {
                directive_problems(&root, i, directive, &mut problems, &mut extracted);
            }
        }
    }
    if problems.is_empty() {
        Ok(extracted)
    } else {
        Err(problems)
    }
}

fn name_ok(name: &str) -> bool {
    (1..=255).contains(&name.chars().count())
}

/// `value` as an object whose members are among `members`; what is wrong
/// with it, named by `at`, goes to `problems` (`None`: not an object).
fn object_of<'a>(
    value: &'a Value,
    at: &str,
    members: &[&str],
    problems: &mut Vec<String>,
) -> Option<&'a Map<String, Value>> {
    let Some(object) = value.as_object() else {
        problems.push(format!("{at} is not an object"));
        return None;
    };
    for key in object.keys().filter(|k| !members.contains(&k.as_str())) {
        problems.push(format!("{at} has an unknown member `{key}`"));
    }
    Some(object)
}

/// `at` holds `len` `things`, and the specification allows at most `max`.
fn at_most(at: &str, len: usize, max: usize, things: &str, problems: &mut Vec<String>) {
    if len > max {
        problems.push(format!("{at} has {len} {things} (at most {max})"));
    }
}

fn directive_problems(
    root: &Map<String, Value>,
    i: usize,
    directive: &Value,
    problems: &mut Vec<String>,
    extracted: &mut Vec<Extracted>,
) {
    let at = format!("CloudWatchMetrics[{i}]");
    let members = ["Namespace", "Dimensions", "Metrics"];
    let Some(directive) = object_of(directive, &at, &members, problems) else {
        return;
    };
    let namespace = directive
        .get("Namespace")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if !name_ok(namespace) {
        problems.push(format!(
            "{at}.Namespace is not a string of 1-255 characters"
        ));
    }
    let mut sets: Vec<Vec<String>> = Vec::new();
    match directive.get("Dimensions").and_then(Value::as_array) {
        None => problems.push(format!("{at}.Dimensions is not an array")),
        Some(d) if d.is_empty() => problems.push(format!("{at}.Dimensions is empty")),
        Some(d) => {
            for (j, set) in d.iter().enumerate() {
                let Some(keys) = set.as_array() else {
                    problems.push(format!("{at}.Dimensions[{j}] is not an array"));
                    continue;
                };
                let set_at = format!("{at}.Dimensions[{j}]");
                at_most(&set_at, keys.len(), MAX_DIMENSIONS, "keys", problems);
                let mut names = Vec::new();
                for key in keys {
                    let Some(key) = key.as_str().filter(|k| name_ok(k)) else {
                        problems.push(format!("{at}.Dimensions[{j}]: {key} is not a name"));
                        continue;
                    };
                    match root.get(key) {
                        Some(Value::String(v)) if (1..=1024).contains(&v.chars().count()) => {}
                        Some(other) => problems.push(format!(
                            "dimension `{key}` is not a string of 1-1024 characters: {other}"
                        )),
                        None => {
                            problems.push(format!("dimension `{key}` is not a top-level member"))
                        }
                    }
                    names.push(key.to_owned());
                }
                sets.push(names);
            }
        }
    }
    let Some(metrics) = directive.get("Metrics").and_then(Value::as_array) else {
        problems.push(format!("{at}.Metrics is not an array"));
        return;
    };
    let metrics_at = format!("{at}.Metrics");
    at_most(
        &metrics_at,
        metrics.len(),
        MAX_METRICS,
        "definitions",
        problems,
    );
    for (j, definition) in metrics.iter().enumerate() {
        let members = ["Name", "Unit", "StorageResolution"];
        let Some(definition) = object_of(
            definition,
            &format!("{at}.Metrics[{j}]"),
            &members,
            problems,
        ) else {
            continue;
        };
        let Some(name) = definition
            .get("Name")
            .and_then(Value::as_str)
            .filter(|n| name_ok(n))
        else {
            problems.push(format!("{at}.Metrics[{j}].Name is not a name"));
            continue;
        };
        let unit = match definition.get("Unit") {
            None => None,
            Some(Value::String(u)) if UNITS.contains(&u.as_str()) => Some(u.clone()),
            Some(other) => {
                problems.push(format!(
                    "metric `{name}`: unit {other} is not a CloudWatch unit"
                ));
                None
            }
        };
        if let Some(resolution) = definition.get("StorageResolution")
            && resolution != 1
            && resolution != 60
        {
            problems.push(format!(
                "metric `{name}`: StorageResolution {resolution} is not 1 or 60"
            ));
        }
        match root.get(name) {
            Some(Value::Number(_)) => {}
            Some(Value::Array(values))
                if values.len() <= MAX_VALUES && values.iter().all(Value::is_number) => {}
            Some(other) => problems.push(format!(
                "metric `{name}` is not a number or an array of at most {MAX_VALUES} numbers: {other}"
            )),
            None => problems.push(format!("metric `{name}` is not a top-level member")),
        }
        for set in &sets {
            extracted.push(Extracted {
                namespace: namespace.to_owned(),
                name: name.to_owned(),
                unit: unit.clone(),
                dimensions: set.clone(),
            });
        }
    }
}
