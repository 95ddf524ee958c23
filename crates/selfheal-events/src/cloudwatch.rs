//! CloudWatch alarms, whichever way they arrive (docs/alarms.md §4): EventBridge
//! state change, SNS notification, or Lambda alarm action. All three are
//! reduced to one [`AlarmView`] so resolution and naming cannot drift apart.

use std::collections::BTreeMap;

use aws_lambda_events::cloudwatch_alarms::{
    CloudWatchAlarm, CloudWatchAlarmData, CloudWatchAlarmState, CloudWatchAlarmStateReasonData,
    CloudWatchAlarmStateValue,
};
use aws_lambda_events::eventbridge::EventBridgeEvent;
use aws_lambda_events::sns::SnsEvent;
use selfheal_contract::AlarmRef;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::resolve::{Found, resolve, set_once, strip_controls};
use crate::{
    Defaults, Entry, Error, EventKind, IgnoreReason, Ignored, NamedRequest, Rejection, directive,
    impact_score, naming, workload_name,
};

/// EventBridge `detail-type` of alarm state changes.
pub const STATE_CHANGE_DETAIL_TYPE: &str = "CloudWatch Alarm State Change";

/// Alarm configuration as EventBridge and alarm actions send it.
///
/// Our own type rather than `CloudWatchMetricAlarmConfiguration`, whose
/// `metricStat` is mandatory: metric-math expressions (`e1 = m1/m2`) have
/// none, and composite alarms have `alarmRule` and no metrics at all.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AlarmConfiguration {
    pub description: Option<String>,
    #[serde(default)]
    pub metrics: Vec<MetricQuery>,
    /// Present on composite alarms.
    pub alarm_rule: Option<String>,
}

/// One entry of `configuration.metrics`: a metric or an expression.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MetricQuery {
    pub id: Option<String>,
    pub expression: Option<String>,
    pub metric_stat: Option<MetricStat>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MetricStat {
    pub metric: Metric,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Metric {
    pub namespace: Option<String>,
    pub name: Option<String>,
    #[serde(default)]
    pub dimensions: BTreeMap<String, String>,
}

/// The alarm JSON inside an SNS `Message`.
///
/// Our own type rather than `sns::CloudWatchAlarmPayload`, which requires
/// fields real notifications omit or send as `null`: `AlarmDescription` is
/// `null` for alarms without one, and composite alarms have no `Trigger`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SnsAlarmMessage {
    pub alarm_name: String,
    pub alarm_description: Option<String>,
    #[serde(default, rename = "AWSAccountId")]
    pub aws_account_id: Option<String>,
    pub new_state_value: String,
    pub new_state_reason: Option<String>,
    pub state_change_time: Option<String>,
    pub region: Option<String>,
    pub alarm_arn: Option<String>,
    pub old_state_value: Option<String>,
    pub trigger: Option<SnsTrigger>,
    /// Present on composite alarms.
    pub alarm_rule: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SnsTrigger {
    pub metric_name: Option<String>,
    pub namespace: Option<String>,
    pub threshold: Option<f64>,
    #[serde(default)]
    pub dimensions: Vec<SnsDimension>,
    /// Metric-math alarms list their queries here instead of `Dimensions`.
    #[serde(default)]
    pub metrics: Vec<SnsMetricQuery>,
}

/// SNS spells dimensions as `{"value": …, "name": …}` (lower case).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SnsDimension {
    pub name: String,
    pub value: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SnsMetricQuery {
    pub id: Option<String>,
    pub expression: Option<String>,
    pub metric_stat: Option<SnsMetricStat>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SnsMetricStat {
    pub metric: SnsMetric,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SnsMetric {
    #[serde(default)]
    pub dimensions: Vec<SnsDimension>,
}

/// What every delivery path tells us about one alarm transition.
#[derive(Debug, Clone, PartialEq)]
struct AlarmView {
    name: String,
    arn: String,
    /// `ALARM`, `OK`, `INSUFFICIENT_DATA`; `None` when the event has no state.
    state: Option<String>,
    /// State change time, normalised (epoch milliseconds when parseable) so
    /// the EventBridge and SNS copies of one transition get the same name.
    changed_at: String,
    description: Option<String>,
    reason: Option<String>,
    /// `(name, value)` pairs from every metric of the alarm.
    dimensions: Vec<(String, String)>,
    /// No metrics at all: a composite alarm.
    composite: bool,
    impact: Option<f64>,
    /// The current state's `actionsSuppressedBy` (`Alarm`, `WaitPeriod`,
    /// `ExtensionPeriod`) and `actionsSuppressedReason`: CloudWatch holds
    /// this composite alarm's actions back on purpose. SNS messages never
    /// carry it, as SNS is itself one of the suppressed actions.
    suppressed: Option<(String, Option<String>)>,
}

type Config = AlarmConfiguration;

pub(crate) fn from_eventbridge(value: Value, defaults: &Defaults) -> Result<Entry, Error> {
    let event: EventBridgeEvent<CloudWatchAlarmData<Config>> = serde_json::from_value(value)
        .map_err(|source| Error::InvalidEvent {
            kind: EventKind::EventBridgeAlarm,
            source,
        })?;
    let arn = event
        .resources
        .as_deref()
        .unwrap_or_default()
        .iter()
        .find(|r| r.contains(":alarm:"))
        .cloned()
        .unwrap_or_else(|| {
            synth_arn(
                event.region.as_deref(),
                event.account.as_deref(),
                &event.detail.alarm_name,
            )
        });
    let fallback_time = event.time.map(|t| t.timestamp_millis().to_string());
    Ok(to_entry(
        view_from_data(event.detail, arn, fallback_time),
        defaults,
    ))
}

pub(crate) fn from_alarm_action(value: Value, defaults: &Defaults) -> Result<Entry, Error> {
    let alarm: CloudWatchAlarm<Config> =
        serde_json::from_value(value).map_err(|source| Error::InvalidEvent {
            kind: EventKind::AlarmAction,
            source,
        })?;
    let arn = alarm.alarm_arn.clone().unwrap_or_else(|| {
        synth_arn(
            alarm.region.as_deref(),
            alarm.account_id.as_deref(),
            &alarm.alarm_data.alarm_name,
        )
    });
    let fallback_time = Some(alarm.time.timestamp_millis().to_string());
    Ok(to_entry(
        view_from_data(alarm.alarm_data, arn, fallback_time),
        defaults,
    ))
}

/// An SNS event: each record's `Message` is a CloudWatch alarm or, from
/// Amazon Managed Service for Prometheus, an Alertmanager alert group
/// ([`crate::amp`]); the kind is [`EventKind::SnsAlertmanager`] when every
/// readable record is an alert group.
pub(crate) fn from_sns(
    value: Value,
    defaults: &Defaults,
) -> Result<(EventKind, Vec<Entry>), Error> {
    let event: SnsEvent = serde_json::from_value(value).map_err(|source| Error::InvalidEvent {
        kind: EventKind::SnsAlarm,
        source,
    })?;
    let mut entries = Vec::with_capacity(event.records.len());
    let mut first_problem = None;
    let (mut alarms, mut groups) = (0_usize, 0_usize);
    for record in event.records {
        let sns = record.sns;
        let problem = match serde_json::from_str::<SnsAlarmMessage>(&sns.message) {
            Ok(message) => {
                alarms += 1;
                let fallback = sns.timestamp.timestamp_millis().to_string();
                entries.push(to_entry(view_from_sns(message, fallback), defaults));
                continue;
            }
            Err(e) => match crate::amp::from_sns_message(&sns.message, defaults) {
                Some(Ok(alerts)) => {
                    groups += 1;
                    entries.extend(alerts);
                    continue;
                }
                Some(Err(e)) => format!(
                    "SNS message {} is an Alertmanager alert group with a malformed field: {e}",
                    sns.message_id
                ),
                None => format!(
                    "SNS message {} is not a CloudWatch alarm, nor an Alertmanager alert group \
                     (AWS's JSON sns.default.message template): {e}",
                    sns.message_id
                ),
            },
        };
        first_problem.get_or_insert_with(|| problem.clone());
        entries.push(Entry::Ignored(Ignored::new(
            sns.subject,
            Some(sns.message_id),
            IgnoreReason::Rejected(Rejection::Unreadable { message: problem }),
        )));
    }
    // No record was readable: this is not an event we support at all.
    if alarms + groups == 0 {
        return Err(Error::Unsupported(
            first_problem.unwrap_or_else(|| "SNS event without records".into()),
        ));
    }
    let kind = if alarms == 0 {
        EventKind::SnsAlertmanager
    } else {
        EventKind::SnsAlarm
    };
    Ok((kind, entries))
}

fn view_from_data(
    data: CloudWatchAlarmData<Config>,
    arn: String,
    fallback_time: Option<String>,
) -> AlarmView {
    let state: Option<CloudWatchAlarmState<CloudWatchAlarmStateReasonData>> = data.state;
    let impact = state.as_ref().and_then(|s| match &s.reason_data {
        Some(CloudWatchAlarmStateReasonData::Metric(m)) => {
            impact_score(max(&m.recent_datapoints), Some(m.threshold))
        }
        _ => None,
    });
    let changed_at = state
        .as_ref()
        .map(|s| s.timestamp.timestamp_millis().to_string())
        .or(fallback_time)
        .unwrap_or_default();
    // Only the current state counts: a `previousState` that was suppressed is
    // exactly the delivery CloudWatch sends once the suppression has ended.
    let suppressed = state.as_ref().and_then(|s| {
        let by = s.actions_suppressed_by.as_deref()?.trim();
        (!by.is_empty()).then(|| (by.to_owned(), s.actions_suppressed_reason.clone()))
    });
    let dimensions = data
        .configuration
        .metrics
        .iter()
        .filter_map(|m| m.metric_stat.as_ref())
        .flat_map(|s| s.metric.dimensions.iter())
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    AlarmView {
        name: data.alarm_name,
        arn,
        state: state.as_ref().map(|s| state_name(&s.value).to_owned()),
        changed_at,
        description: data.configuration.description,
        reason: state.map(|s| s.reason),
        dimensions,
        composite: data.configuration.metrics.is_empty(),
        impact,
        suppressed,
    }
}

fn view_from_sns(m: SnsAlarmMessage, fallback_time: String) -> AlarmView {
    let changed_at = m
        .state_change_time
        .as_deref()
        .map(|t| parse_time(t).map_or_else(|| t.to_owned(), |ms| ms.to_string()))
        .unwrap_or(fallback_time);
    let arn = m.alarm_arn.clone().unwrap_or_else(|| {
        synth_arn(
            m.region.as_deref(),
            m.aws_account_id.as_deref(),
            &m.alarm_name,
        )
    });
    let trigger = m.trigger.unwrap_or_default();
    // SNS messages carry no reasonData: read the datapoints from the reason text.
    let impact = impact_score(
        max(&datapoints_from_reason(
            m.new_state_reason.as_deref().unwrap_or_default(),
        )),
        trigger.threshold,
    );
    let composite = m.alarm_rule.is_some()
        || (trigger.metric_name.is_none()
            && trigger.metrics.is_empty()
            && trigger.dimensions.is_empty());
    let dimensions = trigger
        .dimensions
        .iter()
        .chain(
            trigger
                .metrics
                .iter()
                .filter_map(|q| q.metric_stat.as_ref())
                .flat_map(|s| s.metric.dimensions.iter()),
        )
        .map(|d| (d.name.clone(), d.value.clone()))
        .collect();
    AlarmView {
        name: m.alarm_name,
        arn,
        state: Some(m.new_state_value),
        changed_at,
        description: m.alarm_description,
        reason: m.new_state_reason,
        dimensions,
        composite,
        impact,
        suppressed: None,
    }
}

fn to_entry(view: AlarmView, defaults: &Defaults) -> Entry {
    let reason = match (view.state.as_deref(), &view.suppressed) {
        (None, _) => IgnoreReason::Rejected(Rejection::NoState),
        // Before `build`: CloudWatch decided this alarm acts on nothing now,
        // whatever its directive says (or lacks).
        (Some("ALARM"), Some((by, reason))) => IgnoreReason::Suppressed {
            by: by.clone(),
            reason: reason.clone(),
        },
        (Some("ALARM"), None) => match build(&view, defaults) {
            Ok(request) => return Entry::Request(Box::new(request)),
            Err(r) => IgnoreReason::Rejected(r),
        },
        (Some(other), _) => IgnoreReason::NotFiring {
            state: other.to_owned(),
        },
    };
    Entry::Ignored(Ignored::new(
        Some(strip_controls(&view.name)),
        Some(strip_controls(&view.arn)),
        reason,
    ))
}

fn build(view: &AlarmView, defaults: &Defaults) -> Result<NamedRequest, Rejection> {
    let directive = match view.description.as_deref() {
        Some(text) => directive::from_description(text)?,
        None => None,
    };
    if view.composite && directive.is_none() {
        return Err(Rejection::CompositeWithoutDirective);
    }
    let found = found_from_dimensions(&view.dimensions)?;
    let resolved = resolve(directive.as_ref(), &found, defaults, "dimensions")?;
    let execution_name = naming::execution_name(
        &[resolved.action.as_str(), workload_name(&resolved.target)],
        &format!("cloudwatch\n{}\n{}", view.arn, view.changed_at),
    );
    let reason = Some(match &view.reason {
        Some(r) => format!("CloudWatch alarm {} in ALARM: {r}", view.name),
        None => format!("CloudWatch alarm {} in ALARM", view.name),
    });
    let alarm = AlarmRef {
        source: "cloudwatch".into(),
        name: Some(view.name.clone()),
        id: Some(view.arn.clone()),
        impact_score: view.impact,
    };
    Ok(NamedRequest {
        execution_name,
        request: resolved.into_request(reason, alarm),
    })
}

/// Map dimensions to target fields (docs/alarms.md §4). Metric-math alarms spread
/// them over several metrics; disagreeing values are rejected, not picked.
fn found_from_dimensions(dimensions: &[(String, String)]) -> Result<Found, Rejection> {
    let mut found = Found::default();
    for (name, value) in dimensions {
        match name.as_str() {
            "ClusterName" => set_once(&mut found.cluster, "target.cluster", value)?,
            "Namespace" => set_once(&mut found.namespace, "target.namespace", value)?,
            // Container Insights carries the workload name in PodName.
            "PodName" | "Deployment" => {
                set_once(&mut found.deployment, "target.deployment", value)?
            }
            "ContainerName" | "Container" => {
                set_once(&mut found.container, "target.container", value)?
            }
            _ => {}
        }
    }
    Ok(found)
}

fn state_name(value: &CloudWatchAlarmStateValue) -> &'static str {
    match value {
        CloudWatchAlarmStateValue::Alarm => "ALARM",
        CloudWatchAlarmStateValue::Ok => "OK",
        CloudWatchAlarmStateValue::InsufficientData => "INSUFFICIENT_DATA",
        _ => "UNKNOWN",
    }
}

fn synth_arn(region: Option<&str>, account: Option<&str>, name: &str) -> String {
    format!(
        "arn:aws:cloudwatch:{}:{}:alarm:{name}",
        region.unwrap_or_default(),
        account.unwrap_or_default()
    )
}

fn max(values: &[f64]) -> Option<f64> {
    values
        .iter()
        .copied()
        .filter(|v| v.is_finite())
        .reduce(f64::max)
}

/// Alarm timestamps use `+0000` offsets; accept that and RFC 3339.
fn parse_time(text: &str) -> Option<i64> {
    let ts: jiff::Timestamp = text.parse().ok().or_else(|| {
        jiff::fmt::strtime::parse("%Y-%m-%dT%H:%M:%S%.f%z", text)
            .ok()?
            .to_timestamp()
            .ok()
    })?;
    Some(ts.as_millisecond())
}

/// Datapoints from a reason like `… 2 datapoints [10.25 (05/10/20 06:25:00), 10.0 (…)] were …`.
fn datapoints_from_reason(reason: &str) -> Vec<f64> {
    let Some(start) = reason
        .find("datapoints [")
        .or_else(|| reason.find("datapoint ["))
    else {
        return Vec::new();
    };
    let rest = &reason[start..];
    let Some(open) = rest.find('[') else {
        return Vec::new();
    };
    let Some(close) = rest[open..].find(']') else {
        return Vec::new();
    };
    rest[open + 1..open + close]
        .split("),")
        .filter_map(|item| item.split_whitespace().next()?.parse::<f64>().ok())
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn datapoints_parsed_from_reason_text() {
        let r = "Threshold Crossed: 2 out of the last 2 datapoints [10.25 (05/10/20 06:25:00), 10.0 (05/10/20 06:20:00)] were greater";
        assert_eq!(datapoints_from_reason(r), vec![10.25, 10.0]);
        assert_eq!(
            datapoints_from_reason("1 out of the last 1 datapoints [99.5 (02/10/19 16:59:00)] was"),
            vec![99.5]
        );
        assert!(datapoints_from_reason("no data [").is_empty());
        assert!(datapoints_from_reason("datapoints [x (y), ").is_empty());
    }

    #[test]
    fn times_with_and_without_colon_offsets_agree() {
        let a = parse_time("2019-10-02T17:04:40.989+0000").unwrap();
        let b = parse_time("2019-10-02T17:04:40.989Z").unwrap();
        assert_eq!(a, b);
        assert_eq!(a, 1_570_035_880_989);
        assert_eq!(parse_time("yesterday"), None);
    }

    #[test]
    fn dimension_conflicts_rejected() {
        let dims = vec![
            ("PodName".to_owned(), "a".to_owned()),
            ("Deployment".to_owned(), "b".to_owned()),
        ];
        let err = found_from_dimensions(&dims).unwrap_err();
        assert!(matches!(
            err,
            Rejection::Conflict {
                field: "target.deployment",
                ..
            }
        ));
    }
}
