//! Alertmanager webhook (version 4) notifications (docs/alarms.md §4). One
//! notification groups many alerts; each becomes a request or an
//! [`Ignored`] entry on its own.

use std::collections::BTreeMap;

use selfheal_contract::AlarmRef;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::resolve::{Found, resolve, strip_controls};
use crate::{
    Defaults, Entry, Error, EventKind, IgnoreReason, Ignored, NamedRequest, Rejection, directive,
    impact_score, naming, workload_name,
};

/// Annotation holding a `key=value …` directive.
pub const DIRECTIVE_ANNOTATION: &str = "selfheal";

/// The webhook body (Alertmanager `docs/configuration.md`, `<webhook_config>`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Webhook {
    pub version: String,
    #[serde(default)]
    pub group_key: String,
    /// Alerts dropped because of `max_alerts`.
    #[serde(default)]
    pub truncated_alerts: u64,
    #[serde(default, rename = "externalURL")]
    pub external_url: String,
    /// The alert group itself, the part AMP's SNS message carries too.
    #[serde(flatten)]
    pub group: AlertGroup,
}

/// An alert group: the webhook's group fields, and the whole SNS message of
/// AMP's documented template ([`crate::amp`]), where the empty maps are left
/// out.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AlertGroup {
    /// `firing` or `resolved` for the group; each alert has its own.
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub receiver: String,
    #[serde(default)]
    pub group_labels: BTreeMap<String, String>,
    #[serde(default)]
    pub common_labels: BTreeMap<String, String>,
    #[serde(default)]
    pub common_annotations: BTreeMap<String, String>,
    pub alerts: Vec<Alert>,
}

/// One alert of a notification.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Alert {
    pub status: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    #[serde(default)]
    pub starts_at: String,
    #[serde(default)]
    pub ends_at: String,
    #[serde(default, rename = "generatorURL")]
    pub generator_url: String,
    #[serde(default)]
    pub fingerprint: String,
}

impl Alert {
    /// The alert's fingerprint, computed from its labels when the sender left
    /// it out (the same value Alertmanager would have sent).
    pub fn identity(&self) -> String {
        if self.fingerprint.is_empty() {
            format!("{:016x}", fingerprint(&self.labels))
        } else {
            self.fingerprint.clone()
        }
    }
}

/// Prometheus `LabelSet.Fingerprint`: FNV-1a 64 over the sorted labels, each
/// name and value followed by the separator byte 0xff.
pub fn fingerprint(labels: &BTreeMap<String, String>) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    const SEPARATOR: u8 = 0xff;
    let mut hash = OFFSET;
    let mut add = |bytes: &[u8]| {
        for &b in bytes {
            hash ^= u64::from(b);
            hash = hash.wrapping_mul(PRIME);
        }
    };
    for (name, value) in labels {
        add(name.as_bytes());
        add(&[SEPARATOR]);
        add(value.as_bytes());
        add(&[SEPARATOR]);
    }
    hash
}

pub(crate) fn from_webhook(value: Value, defaults: &Defaults) -> Result<Vec<Entry>, Error> {
    let hook: Webhook = serde_json::from_value(value).map_err(|source| Error::InvalidEvent {
        kind: EventKind::Alertmanager,
        source,
    })?;
    if hook.version != "4" {
        return Err(Error::Unsupported(format!(
            "Alertmanager webhook version {:?} (want \"4\")",
            hook.version
        )));
    }
    let mut entries: Vec<Entry> = hook
        .group
        .alerts
        .iter()
        .map(|a| alert_entry(a, defaults))
        .collect();
    if hook.truncated_alerts > 0 {
        entries.push(Entry::Ignored(Ignored::new(
            hook.group.group_labels.get("alertname").cloned(),
            Some(hook.group_key.clone()),
            IgnoreReason::Truncated {
                count: hook.truncated_alerts,
            },
        )));
    }
    Ok(entries)
}

/// One alert of a webhook or of an SNS alert group ([`crate::amp`]).
pub(crate) fn alert_entry(alert: &Alert, defaults: &Defaults) -> Entry {
    let name = alert
        .labels
        .get("alertname")
        .map(|name| strip_controls(name));
    let id = alert.identity();
    let reason = if alert.status == "firing" {
        match build(alert, name.as_deref(), &id, defaults) {
            Ok(request) => return Entry::Request(Box::new(request)),
            Err(r) => IgnoreReason::Rejected(r),
        }
    } else {
        IgnoreReason::NotFiring {
            state: alert.status.clone(),
        }
    };
    Entry::Ignored(Ignored::new(name, Some(id), reason))
}

fn build(
    alert: &Alert,
    name: Option<&str>,
    id: &str,
    defaults: &Defaults,
) -> Result<NamedRequest, Rejection> {
    let directive = alert
        .annotations
        .get(DIRECTIVE_ANNOTATION)
        .map(|text| directive::from_annotation(text))
        .transpose()?;
    let label = |k: &str| alert.labels.get(k).filter(|v| !v.is_empty()).cloned();
    let found = Found {
        cluster: label("cluster"),
        namespace: label("namespace"),
        deployment: label("deployment"),
        stateful_set: label("statefulset"),
        daemon_set: label("daemonset"),
        pod: label("pod"),
        container: label("container"),
    };
    let resolved = resolve(directive.as_ref(), &found, defaults, "labels")?;
    // Re-sent notifications repeat startsAt verbatim; normalising still helps
    // when a proxy re-encodes the time, and gives the SNS copy of an alert
    // (Go's time text, [`crate::amp`]) the webhook copy's execution name.
    let starts_at = crate::amp::normalize_time(&alert.starts_at);
    let execution_name = naming::execution_name(
        &[resolved.action.as_str(), workload_name(&resolved.target)],
        &format!("alertmanager\n{id}\n{starts_at}"),
    );
    let number = |k: &str| alert.annotations.get(k)?.trim().parse::<f64>().ok();
    let alarm = AlarmRef {
        source: "alertmanager".into(),
        name: name.map(str::to_owned),
        id: Some(id.to_owned()),
        impact_score: impact_score(number("value"), number("threshold")),
    };
    let what = name.unwrap_or("alert");
    let reason = Some(
        match alert
            .annotations
            .get("summary")
            .or_else(|| alert.annotations.get("description"))
        {
            Some(text) => format!("Alertmanager {what} firing: {text}"),
            None => format!("Alertmanager {what} firing"),
        },
    );
    Ok(NamedRequest {
        execution_name,
        request: resolved.into_request(reason, alarm),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_matches_prometheus() {
        // Values from the captured fixtures (Alertmanager 0.25).
        let hex = |labels: &[(&str, &str)]| {
            let labels: BTreeMap<String, String> = labels
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect();
            format!("{:016x}", fingerprint(&labels))
        };
        let half_bricked = [
            ("alertname", "DeploymentHalfBricked"),
            ("container", "app"),
            ("deployment", "x"),
            ("namespace", "default"),
            ("severity", "critical"),
        ];
        assert_eq!(hex(&half_bricked), "928e0cea74916f65");
        let manual = [
            ("alertname", "ManualTest"),
            ("deployment", "y"),
            ("namespace", "default"),
        ];
        assert_eq!(hex(&manual), "26408e0ac635ef00");
    }
}
