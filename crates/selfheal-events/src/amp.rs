//! Alert groups from Amazon Managed Service for Prometheus (AMP), whose alert
//! manager can notify only SNS (docs/alarms.md §1). With AWS's documented
//! JSON `sns.default.message` template, the SNS `Message` is the alert group
//! as JSON: the webhook's fields without `version`, `groupKey`,
//! `truncatedAlerts` and `externalURL`, and with Go's `time.Time` text for
//! `startsAt`/`endsAt`. Each alert then goes through the same resolution and
//! naming as a webhook alert ([`crate::alertmanager`]).

use std::borrow::Cow;

use serde_json::Value;

use crate::alertmanager::{AlertGroup, alert_entry};
use crate::{Defaults, Entry};

/// The alerts of an SNS message that is an alert group, or `None` when the
/// message is something else (not a JSON object with an `alerts` array and
/// a `receiver`).
pub(crate) fn from_sns_message(
    message: &str,
    defaults: &Defaults,
) -> Option<Result<Vec<Entry>, serde_json::Error>> {
    let text = escape_controls_in_strings(message);
    let Ok(Value::Object(object)) = serde_json::from_str::<Value>(&text) else {
        return None;
    };
    if !(object.get("alerts").is_some_and(Value::is_array) && object.contains_key("receiver")) {
        return None;
    }
    Some(
        serde_json::from_value::<AlertGroup>(Value::Object(object)).map(|group| {
            group
                .alerts
                .iter()
                .map(|alert| alert_entry(alert, defaults))
                .collect()
        }),
    )
}

/// The template pastes label and annotation values between quotes without
/// escaping them, so a multi-line annotation (a `description: |` block)
/// arrives with raw line breaks inside a JSON string, which JSON forbids.
/// Inside strings only, control characters become `\u00XX` escapes; a value
/// holding `"` or `\` still breaks the message (AWS's note on the template).
fn escape_controls_in_strings(text: &str) -> Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    let (mut in_string, mut escaped) = (false, false);
    for c in text.chars() {
        if in_string && (c as u32) < 0x20 {
            out.push_str(&format!("\\u{:04x}", c as u32));
            escaped = false;
            continue;
        }
        match c {
            '"' if !escaped => in_string = !in_string,
            _ => {}
        }
        escaped = in_string && c == '\\' && !escaped;
        out.push(c);
    }
    Cow::Owned(out)
}

/// `startsAt` as an instant in RFC 3339, whichever way it was written: the
/// webhook's RFC 3339, or Go's `time.Time` text the SNS template prints
/// (`2026-12-06 01:02:03.456 +0000 UTC`, possibly followed by a monotonic
/// clock reading ` m=+12.345`). One alert delivered either way thus gets one
/// execution name. Anything else is kept verbatim.
pub(crate) fn normalize_time(text: &str) -> String {
    if let Ok(t) = text.parse::<jiff::Timestamp>() {
        return t.to_string();
    }
    let without_monotonic = text.split(" m=").next().unwrap_or(text);
    // Drop the zone abbreviation (`UTC`, `CET`…): the numeric offset decides.
    let mut parts = without_monotonic.rsplitn(2, ' ');
    let (Some(_abbreviation), Some(rest)) = (parts.next(), parts.next()) else {
        return text.to_owned();
    };
    jiff::fmt::strtime::parse("%Y-%m-%d %H:%M:%S%.f %z", rest)
        .and_then(|parsed| parsed.to_timestamp())
        .map_or_else(|_| text.to_owned(), |t| t.to_string())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn go_time_text_and_rfc3339_name_the_same_instant() {
        let want = "2026-11-26T19:11:48.278Z";
        assert_eq!(normalize_time("2026-11-26T19:11:48.278Z"), want);
        assert_eq!(normalize_time("2026-11-26 19:11:48.278 +0000 UTC"), want);
        assert_eq!(
            normalize_time("2026-11-26 20:11:48.278 +0100 CET m=+3.000000001"),
            want
        );
        assert_eq!(
            normalize_time("2026-11-26 19:11:48 +0000 UTC"),
            "2026-11-26T19:11:48Z"
        );
        assert_eq!(normalize_time("yesterday"), "yesterday");
        assert_eq!(normalize_time(""), "");
    }

    #[test]
    fn control_characters_are_escaped_inside_strings_only() {
        let raw = "{\"a\": \"line one\nline\ttwo\", \"b\": \"x\\\"\n\"}";
        let fixed = escape_controls_in_strings(raw);
        let value: Value = serde_json::from_str(&fixed).unwrap();
        assert_eq!(value["a"], "line one\nline\ttwo");
        assert_eq!(value["b"], "x\"\n");
        let plain = "{\"a\": 1}";
        assert!(matches!(
            escape_controls_in_strings(plain),
            Cow::Borrowed(_)
        ));
        // Whitespace between tokens stays as it is.
        let pretty = "{\n  \"a\": \"x\"\n}";
        assert_eq!(escape_controls_in_strings(pretty), pretty);
    }

    #[test]
    fn only_alert_groups_are_recognised() {
        let d = Defaults::default();
        assert!(from_sns_message("{\"AlarmName\": \"x\"}", &d).is_none());
        assert!(from_sns_message("not json", &d).is_none());
        assert!(from_sns_message("{\"alerts\": []}", &d).is_none());
        let empty = from_sns_message("{\"receiver\": \"r\", \"alerts\": []}", &d);
        assert!(empty.unwrap().unwrap().is_empty());
        let bad = from_sns_message("{\"receiver\": \"r\", \"alerts\": [{\"labels\": 1}]}", &d);
        assert!(bad.unwrap().is_err());
    }
}
