//! The `selfheal:` directive (docs/alarms.md §3): the operator's explicit word on
//! what to do, so it wins over dimensions, labels and defaults.

use selfheal_contract::Action;

use crate::Rejection;
use crate::resolve::Found;

/// Keys a directive may set, in the order the design lists them.
pub const DIRECTIVE_KEYS: [&str; 10] = [
    "action",
    "cluster",
    "namespace",
    "deployment",
    "statefulset",
    "daemonset",
    "container",
    "pod",
    "dryRun",
    "approval",
];

/// What a directive said; `None` means "not mentioned", so lower sources fill it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Directive {
    pub action: Option<Action>,
    /// The target fields it names: the same ones dimensions and labels carry.
    pub target: Found,
    pub dry_run: Option<bool>,
    pub approval: Option<bool>,
}

/// The directive keyword. Lowercase only: the EventBridge rule in
/// template.yaml matches `wildcard: "*selfheal:*"`, which is case-sensitive.
pub const KEYWORD: &str = "selfheal:";

/// Find the `selfheal:` line in a CloudWatch alarm description.
///
/// Only a line that *starts* with `selfheal:` counts (prose that mentions the
/// word does not); two such lines are ambiguous and rejected. A line that
/// starts with the keyword in another case (`Selfheal:`, `SELFHEAL:`) is
/// rejected too: the EventBridge rule would not deliver such an alarm unless
/// its name has the prefix, so accepting it here would hide that.
pub fn from_description(description: &str) -> Result<Option<Directive>, Rejection> {
    let mut found: Option<&str> = None;
    for line in description.lines() {
        let Some(rest) = strip_keyword(line.trim_start())? else {
            continue;
        };
        if found.is_some() {
            return Err(directive_problem(
                "more than one `selfheal:` line in the alarm description".into(),
            ));
        }
        found = Some(rest);
    }
    found.map(parse_pairs).transpose()
}

/// Parse an Alertmanager `selfheal` annotation (`key=value …`; a leading
/// `selfheal:` is tolerated so one text works in both places, and, as in a
/// description, only in lowercase).
pub fn from_annotation(text: &str) -> Result<Directive, Rejection> {
    let text = text.trim_start();
    parse_pairs(strip_keyword(text)?.unwrap_or(text))
}

/// Parse whitespace-separated `key=value` pairs.
pub fn parse_pairs(text: &str) -> Result<Directive, Rejection> {
    let mut d = Directive::default();
    for pair in text.split_whitespace() {
        let Some((key, value)) = pair.split_once('=') else {
            return Err(directive_problem(format!(
                "malformed pair `{pair}` (want key=value)"
            )));
        };
        if key.is_empty() || value.is_empty() {
            return Err(directive_problem(format!(
                "malformed pair `{pair}` (want key=value, both non-empty)"
            )));
        }
        let duplicate = match key {
            "action" => {
                let action = parse_action(value).ok_or_else(|| {
                    directive_problem(format!(
                        "unknown action `{value}` (want rollback, pause, resume or restart)"
                    ))
                })?;
                d.action.replace(action).is_some()
            }
            "cluster" => d.target.cluster.replace(value.to_owned()).is_some(),
            "namespace" => d.target.namespace.replace(value.to_owned()).is_some(),
            "deployment" => d.target.deployment.replace(value.to_owned()).is_some(),
            "statefulset" => d.target.stateful_set.replace(value.to_owned()).is_some(),
            "daemonset" => d.target.daemon_set.replace(value.to_owned()).is_some(),
            "container" => d.target.container.replace(value.to_owned()).is_some(),
            "pod" => d.target.pod.replace(value.to_owned()).is_some(),
            "dryRun" => d.dry_run.replace(parse_bool(key, value)?).is_some(),
            "approval" => d.approval.replace(parse_bool(key, value)?).is_some(),
            _ => {
                return Err(directive_problem(format!(
                    "unknown key `{key}` (known: {})",
                    DIRECTIVE_KEYS.join(", ")
                )));
            }
        };
        if duplicate {
            return Err(directive_problem(format!("key `{key}` given twice")));
        }
    }
    Ok(d)
}

/// `rollback|pause|resume|restart`, any case; anything else is `None`, never a guess.
pub fn parse_action(text: &str) -> Option<Action> {
    match text.to_ascii_lowercase().as_str() {
        "rollback" => Some(Action::Rollback),
        "pause" => Some(Action::Pause),
        "resume" => Some(Action::Resume),
        "restart" => Some(Action::Restart),
        _ => None,
    }
}

fn parse_bool(key: &str, value: &str) -> Result<bool, Rejection> {
    match value.to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(directive_problem(format!(
            "`{key}={value}`: want true or false"
        ))),
    }
}

/// The text after a leading lowercase `selfheal:`; `None` when the text does
/// not start with the keyword in any case; a rejection when it starts with it
/// in another case.
fn strip_keyword(text: &str) -> Result<Option<&str>, Rejection> {
    let Some(head) = text.get(..KEYWORD.len()) else {
        return Ok(None);
    };
    if head == KEYWORD {
        return Ok(Some(&text[KEYWORD.len()..]));
    }
    if head.eq_ignore_ascii_case(KEYWORD) {
        return Err(directive_problem(format!(
            "keyword `{head}` must be lowercase `{KEYWORD}` (the EventBridge rule matches only `{KEYWORD}`)"
        )));
    }
    Ok(None)
}

fn directive_problem(problem: String) -> Rejection {
    Rejection::Directive { problem }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_key() {
        let d = parse_pairs(
            "action=rollback cluster=prod namespace=shop deployment=checkout container=api dryRun=true approval=false",
        )
        .unwrap();
        assert_eq!(
            d,
            Directive {
                action: Some(Action::Rollback),
                target: Found {
                    cluster: Some("prod".into()),
                    namespace: Some("shop".into()),
                    deployment: Some("checkout".into()),
                    container: Some("api".into()),
                    ..Found::default()
                },
                dry_run: Some(true),
                approval: Some(false),
            }
        );
        let d = parse_pairs("statefulset=db daemonset=agent").unwrap();
        assert_eq!(d.target.stateful_set.as_deref(), Some("db"));
        assert_eq!(d.target.daemon_set.as_deref(), Some("agent"));
    }

    #[test]
    fn description_line_found_among_prose() {
        let text = "High 5xx on checkout.\n  selfheal: action=pause namespace=shop\nSee runbook.";
        let d = from_description(text).unwrap().unwrap();
        assert_eq!(d.action, Some(Action::Pause));
        assert_eq!(d.target.namespace.as_deref(), Some("shop"));
        assert_eq!(
            from_description("mentions selfheal: only mid-line").unwrap(),
            None
        );
    }

    #[test]
    fn rejects_bad_directives_naming_the_problem() {
        let cases = [
            ("action=rollback colour=blue", "unknown key `colour`"),
            ("action", "malformed pair `action`"),
            ("namespace=", "malformed pair `namespace=`"),
            ("=x", "malformed pair `=x`"),
            ("action=explode", "unknown action `explode`"),
            ("dryRun=yes", "`dryRun=yes`: want true or false"),
            ("pod=a pod=b", "key `pod` given twice"),
        ];
        for (text, want) in cases {
            let err = parse_pairs(text).unwrap_err();
            assert!(err.to_string().contains(want), "{text}: {err}");
        }
        let err = from_description("selfheal: action=pause\nselfheal: action=resume").unwrap_err();
        assert!(err.to_string().contains("more than one"), "{err}");
    }

    #[test]
    fn keyword_in_another_case_is_rejected_naming_the_lowercase_form() {
        for text in [
            "Selfheal: action=rollback namespace=shop",
            "SELFHEAL: action=rollback",
            "  sElFhEaL:action=pause",
        ] {
            let description = format!("Checkout 5xx.\n{text}\nSee the runbook.");
            let err = from_description(&description).unwrap_err();
            assert!(
                matches!(&err, Rejection::Directive { problem } if problem.contains("must be lowercase `selfheal:`")),
                "{text}: {err:?}"
            );
            let keyword = text.trim_start().get(..9).unwrap();
            assert_eq!(
                err.to_string(),
                format!(
                    "selfheal directive: keyword `{keyword}` must be lowercase `selfheal:` (the EventBridge rule matches only `selfheal:`)"
                )
            );
            let err = from_annotation(text).unwrap_err();
            assert!(
                err.to_string().contains("must be lowercase `selfheal:`"),
                "{text}: {err}"
            );
        }
        // Even next to a valid lowercase line, in either order: never skipped.
        for description in [
            "selfheal: action=pause\nSELFHEAL: action=resume",
            "SELFHEAL: action=resume\nselfheal: action=pause",
        ] {
            let err = from_description(description).unwrap_err();
            assert!(err.to_string().contains("must be lowercase"), "{err}");
        }
    }

    #[test]
    fn lowercase_keyword_is_accepted_and_other_words_are_not_keywords() {
        let d = from_description("selfheal: action=rollback namespace=shop")
            .unwrap()
            .unwrap();
        assert_eq!(d.action, Some(Action::Rollback));
        assert_eq!(d.target.namespace.as_deref(), Some("shop"));
        // Keys and values keep their documented case rules (action any case).
        let d = from_annotation("selfheal: action=ROLLBACK dryRun=TRUE").unwrap();
        assert_eq!(d.action, Some(Action::Rollback));
        assert_eq!(d.dry_run, Some(true));
        // Prose that starts with the word but not the keyword is not a directive,
        // in any case.
        for text in [
            "Selfhealing is on for this alarm.",
            "SELFHEAL without colon",
            "selfheal",
            "Self heal: later",
        ] {
            assert_eq!(from_description(text).unwrap(), None, "{text}");
        }
        // A short or multi-byte start never panics on the byte slice.
        assert_eq!(from_description("é").unwrap(), None);
        assert_eq!(from_description("selfhea\u{e9}: x").unwrap(), None);
        assert_eq!(from_description("selfheal\u{e9}x").unwrap(), None);
    }

    #[test]
    fn annotation_tolerates_prefix() {
        let a = from_annotation("selfheal: action=restart").unwrap();
        let b = from_annotation("action=restart").unwrap();
        assert_eq!(a, b);
        assert_eq!(a.action, Some(Action::Restart));
    }
}
