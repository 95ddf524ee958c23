//! Function-wide policy (from environment in the Lambdas, flags in the CLI).

use std::time::Duration;

use crate::Error;

/// What selfheal may do on its own (docs/guards.md).
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    /// Act only on Deployments labelled `selfheal.dev/enabled=true`.
    pub require_opt_in: bool,
    /// Namespaces allowed; `None` = all except `denied_namespaces`.
    pub allowed_namespaces: Option<Vec<String>>,
    /// Always refused (default: kube-system, kube-public, kube-node-lease;
    /// empty only when configured as [`DENY_NO_NAMESPACE`]).
    pub denied_namespaces: Vec<String>,
    /// Same action on the same Deployment within this window is refused unless `force`.
    pub cooldown: Duration,
    /// Proceed on Argo CD / Flux managed Deployments (the outcome still says so).
    pub allow_gitops: bool,
    /// Every request is a dry run regardless of its own `dryRun`.
    pub dry_run: bool,
    /// Alarm-driven pauses need at least this impact score.
    pub pause_impact_threshold: f64,
    /// At most this many Deployments acted on per `action_window`, across
    /// every namespace the policy allows (`None` = no limit): a storm of
    /// alarms must not let selfheal rewrite a whole cluster on its own.
    pub max_actions_per_window: Option<u32>,
    /// The sliding window `max_actions_per_window` counts over.
    pub action_window: Duration,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            require_opt_in: true,
            allowed_namespaces: None,
            denied_namespaces: DEFAULT_DENIED_NAMESPACES
                .iter()
                .map(|s| (*s).to_owned())
                .collect(),
            cooldown: Duration::from_secs(DEFAULT_COOLDOWN_SECONDS),
            allow_gitops: false,
            dry_run: false,
            pause_impact_threshold: DEFAULT_PAUSE_IMPACT_THRESHOLD,
            max_actions_per_window: None,
            action_window: Duration::from_secs(DEFAULT_ACTION_WINDOW_SECONDS),
        }
    }
}

const DEFAULT_DENIED_NAMESPACES: [&str; 3] = ["kube-system", "kube-public", "kube-node-lease"];
const DEFAULT_COOLDOWN_SECONDS: u64 = 600;
const DEFAULT_PAUSE_IMPACT_THRESHOLD: f64 = 1.0;
const DEFAULT_ACTION_WINDOW_SECONDS: u64 = 3600;

pub const REQUIRE_OPT_IN: &str = "SELFHEAL_REQUIRE_OPT_IN";
pub const ALLOWED_NAMESPACES: &str = "SELFHEAL_ALLOWED_NAMESPACES";
pub const DENIED_NAMESPACES: &str = "SELFHEAL_DENIED_NAMESPACES";
pub const COOLDOWN_SECONDS: &str = "SELFHEAL_COOLDOWN_SECONDS";
pub const ALLOW_GITOPS: &str = "SELFHEAL_ALLOW_GITOPS";
pub const DRY_RUN: &str = "SELFHEAL_DRY_RUN";
pub const PAUSE_IMPACT_THRESHOLD: &str = "SELFHEAL_PAUSE_IMPACT_THRESHOLD";
pub const MAX_ACTIONS: &str = "SELFHEAL_MAX_ACTIONS";
pub const ACTION_WINDOW_SECONDS: &str = "SELFHEAL_ACTION_WINDOW_SECONDS";

/// The value of `SELFHEAL_DENIED_NAMESPACES` that denies no namespace.
/// Uppercase, so it can never be a namespace name; a blank value is unset
/// (the default list), because a stack parameter left empty must not open
/// the system namespaces.
pub const DENY_NO_NAMESPACE: &str = "NONE";

/// Every policy variable as `(name, default, meaning)`, for README and `--help`.
pub const POLICY_VARIABLES: &[(&str, &str, &str)] = &[
    (
        REQUIRE_OPT_IN,
        "true",
        "Act only on Deployments labelled selfheal.dev/enabled=true (true/false).",
    ),
    (
        ALLOWED_NAMESPACES,
        "(unset: all)",
        "Comma-separated namespaces selfheal may act in; unset or empty allows every namespace not denied.",
    ),
    (
        DENIED_NAMESPACES,
        "kube-system,kube-public,kube-node-lease",
        "Comma-separated namespaces always refused; unset or empty keeps the default, NONE denies none.",
    ),
    (
        COOLDOWN_SECONDS,
        "600",
        "Seconds during which the same action on the same Deployment is refused unless forced (0 disables).",
    ),
    (
        ALLOW_GITOPS,
        "false",
        "Act on Deployments managed by Argo CD or Flux, whose sync may undo the change (true/false).",
    ),
    (
        DRY_RUN,
        "false",
        "Send every write with dryRun=All, whatever the request says (true/false).",
    ),
    (
        PAUSE_IMPACT_THRESHOLD,
        "1.0",
        "Minimum alarm impact score for an alarm-driven pause (a non-negative number).",
    ),
    (
        MAX_ACTIONS,
        "(unset: no limit)",
        "At most this many Deployments acted on per action window, counted from their selfheal.dev/last-remediation annotations (0 or unset: no limit).",
    ),
    (
        ACTION_WINDOW_SECONDS,
        "3600",
        "Seconds of the sliding window SELFHEAL_MAX_ACTIONS counts over (1 or more).",
    ),
];

impl Policy {
    /// Read the policy from configuration. Pure: callers pass the lookup,
    /// e.g. [`crate::env::process`]. Unset or blank variables take their
    /// default ([`POLICY_VARIABLES`]); `SELFHEAL_DENIED_NAMESPACES=NONE`
    /// ([`DENY_NO_NAMESPACE`]) is the only way to deny no namespace.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Policy, Error> {
        let set = |name: &str| crate::env::get(&lookup, name);
        let mut policy = Policy::default();
        if let Some(v) = set(REQUIRE_OPT_IN) {
            policy.require_opt_in = parse_bool(REQUIRE_OPT_IN, &v)?;
        }
        if let Some(v) = set(ALLOWED_NAMESPACES) {
            let list = parse_namespaces(ALLOWED_NAMESPACES, &v)?;
            policy.allowed_namespaces = (!list.is_empty()).then_some(list);
        }
        if let Some(v) = set(DENIED_NAMESPACES) {
            policy.denied_namespaces = parse_denied_namespaces(&v)?;
        }
        if let Some(v) = set(COOLDOWN_SECONDS) {
            let secs: u64 = v
                .trim()
                .parse()
                .map_err(|_| invalid(COOLDOWN_SECONDS, &v, "expected whole seconds (0 or more)"))?;
            policy.cooldown = Duration::from_secs(secs);
        }
        if let Some(v) = set(ALLOW_GITOPS) {
            policy.allow_gitops = parse_bool(ALLOW_GITOPS, &v)?;
        }
        if let Some(v) = set(DRY_RUN) {
            policy.dry_run = parse_bool(DRY_RUN, &v)?;
        }
        if let Some(v) = set(PAUSE_IMPACT_THRESHOLD) {
            let threshold: f64 = v.trim().parse().map_err(|_| {
                invalid(PAUSE_IMPACT_THRESHOLD, &v, "expected a number such as 1.5")
            })?;
            if !threshold.is_finite() || threshold < 0.0 {
                return Err(invalid(
                    PAUSE_IMPACT_THRESHOLD,
                    &v,
                    "expected a finite number, 0 or more",
                ));
            }
            policy.pause_impact_threshold = threshold;
        }
        if let Some(v) = set(MAX_ACTIONS) {
            let max: u32 = v.trim().parse().map_err(|_| {
                invalid(
                    MAX_ACTIONS,
                    &v,
                    "expected a whole number of actions (0 or more)",
                )
            })?;
            policy.max_actions_per_window = (max > 0).then_some(max);
        }
        if let Some(v) = set(ACTION_WINDOW_SECONDS) {
            let secs: u64 = v.trim().parse().ok().filter(|s| *s > 0).ok_or_else(|| {
                invalid(
                    ACTION_WINDOW_SECONDS,
                    &v,
                    "expected whole seconds (1 or more)",
                )
            })?;
            policy.action_window = Duration::from_secs(secs);
        }
        Ok(policy)
    }
}

fn invalid(variable: &str, value: &str, reason: &str) -> Error {
    Error::InvalidConfig {
        variable: variable.to_owned(),
        value: value.to_owned(),
        reason: reason.to_owned(),
    }
}

fn parse_bool(variable: &str, value: &str) -> Result<bool, Error> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" => Ok(true),
        "false" | "0" | "no" => Ok(false),
        _ => Err(invalid(variable, value, "expected true or false")),
    }
}

/// `NONE` alone, or namespace names; `NONE` among names is a mistake that
/// must not silently keep or drop the list.
fn parse_denied_namespaces(value: &str) -> Result<Vec<String>, Error> {
    if value.trim() == DENY_NO_NAMESPACE {
        return Ok(Vec::new());
    }
    if value
        .split(',')
        .any(|item| item.trim() == DENY_NO_NAMESPACE)
    {
        return Err(invalid(
            DENIED_NAMESPACES,
            value,
            &format!("{DENY_NO_NAMESPACE} denies no namespace and must stand alone"),
        ));
    }
    let list = parse_namespaces(DENIED_NAMESPACES, value)?;
    if list.is_empty() {
        // Only commas and blanks, e.g. ",": not a list, and not NONE either.
        return Err(invalid(
            DENIED_NAMESPACES,
            value,
            &format!(
                "no namespace named; leave it empty for the default or set {DENY_NO_NAMESPACE}"
            ),
        ));
    }
    Ok(list)
}

/// Comma-separated namespace names, each a valid DNS-1123 label, so a typo
/// like `kube system` fails loudly instead of silently matching nothing.
fn parse_namespaces(variable: &str, value: &str) -> Result<Vec<String>, Error> {
    let mut list = Vec::new();
    for item in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let valid = item.len() <= 63
            && item
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !item.starts_with('-')
            && !item.ends_with('-');
        if !valid {
            return Err(invalid(
                variable,
                value,
                &format!(
                    "{item:?} is not a namespace name (lowercase letters, digits, '-', at most 63)"
                ),
            ));
        }
        if !list.iter().any(|n| n == item) {
            list.push(item.to_owned());
        }
    }
    Ok(list)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn from(vars: &[(&str, &str)]) -> Result<Policy, Error> {
        Policy::from_lookup(crate::env::from_pairs(vars))
    }

    #[test]
    fn nothing_set_gives_the_documented_defaults() {
        let policy = from(&[]).unwrap();
        assert_eq!(policy, Policy::default());
        assert!(policy.require_opt_in);
        assert_eq!(policy.allowed_namespaces, None);
        assert_eq!(
            policy.denied_namespaces,
            ["kube-system", "kube-public", "kube-node-lease"]
        );
        assert_eq!(policy.cooldown, Duration::from_secs(600));
        assert!(!policy.allow_gitops && !policy.dry_run);
        assert_eq!(policy.pause_impact_threshold, 1.0);
        // The table documents the same defaults.
        let defaults: HashMap<&str, &str> =
            POLICY_VARIABLES.iter().map(|(n, d, _)| (*n, *d)).collect();
        assert_eq!(defaults.len(), 9);
        assert_eq!(policy.max_actions_per_window, None);
        assert_eq!(
            defaults[ACTION_WINDOW_SECONDS],
            DEFAULT_ACTION_WINDOW_SECONDS.to_string()
        );
        assert_eq!(
            defaults[DENIED_NAMESPACES],
            DEFAULT_DENIED_NAMESPACES.join(",")
        );
        assert_eq!(
            defaults[COOLDOWN_SECONDS],
            DEFAULT_COOLDOWN_SECONDS.to_string()
        );
    }

    #[test]
    fn every_variable_is_parsed() {
        let policy = from(&[
            (REQUIRE_OPT_IN, "False"),
            (ALLOWED_NAMESPACES, " shop, payments ,,shop"),
            (DENIED_NAMESPACES, "kube-system"),
            (COOLDOWN_SECONDS, "0"),
            (ALLOW_GITOPS, "true"),
            (DRY_RUN, "1"),
            (PAUSE_IMPACT_THRESHOLD, "2.5"),
            (MAX_ACTIONS, "10"),
            (ACTION_WINDOW_SECONDS, "300"),
        ])
        .unwrap();
        assert_eq!(
            policy,
            Policy {
                require_opt_in: false,
                allowed_namespaces: Some(vec!["shop".into(), "payments".into()]),
                denied_namespaces: vec!["kube-system".into()],
                cooldown: Duration::ZERO,
                allow_gitops: true,
                dry_run: true,
                pause_impact_threshold: 2.5,
                max_actions_per_window: Some(10),
                action_window: Duration::from_secs(300),
            }
        );
    }

    #[test]
    fn zero_max_actions_means_no_limit() {
        assert_eq!(
            from(&[(MAX_ACTIONS, "0")]).unwrap().max_actions_per_window,
            None
        );
    }

    #[test]
    fn blank_values_mean_default_even_for_the_deny_list() {
        for blank in ["", " ", "\t"] {
            let policy = from(&[
                (ALLOWED_NAMESPACES, blank),
                (REQUIRE_OPT_IN, blank),
                (DENIED_NAMESPACES, blank),
            ])
            .unwrap();
            assert_eq!(policy, Policy::default(), "{blank:?}");
            assert_eq!(
                policy.denied_namespaces, DEFAULT_DENIED_NAMESPACES,
                "{blank:?}"
            );
        }
    }

    #[test]
    fn only_none_denies_no_namespace() {
        for value in ["NONE", " NONE "] {
            let policy = from(&[(DENIED_NAMESPACES, value)]).unwrap();
            assert!(policy.denied_namespaces.is_empty(), "{value:?}");
        }
        // Lowercase `none` is a namespace called "none", not the keyword.
        assert_eq!(
            from(&[(DENIED_NAMESPACES, "none")])
                .unwrap()
                .denied_namespaces,
            ["none"]
        );
    }

    #[test]
    fn invalid_values_name_the_variable_value_and_reason() {
        let cases = [
            (REQUIRE_OPT_IN, "maybe", "true or false"),
            (ALLOW_GITOPS, "on", "true or false"),
            (COOLDOWN_SECONDS, "10m", "whole seconds"),
            (COOLDOWN_SECONDS, "-5", "whole seconds"),
            (PAUSE_IMPACT_THRESHOLD, "high", "number"),
            (PAUSE_IMPACT_THRESHOLD, "-1", "0 or more"),
            (PAUSE_IMPACT_THRESHOLD, "inf", "finite"),
            (DENIED_NAMESPACES, "kube system", "not a namespace name"),
            (DENIED_NAMESPACES, "NONE,shop", "must stand alone"),
            (DENIED_NAMESPACES, "kube-system, NONE", "must stand alone"),
            (DENIED_NAMESPACES, ",", "no namespace named"),
            (DENIED_NAMESPACES, "None", "not a namespace name"),
            (ALLOWED_NAMESPACES, "Shop", "not a namespace name"),
            (MAX_ACTIONS, "-1", "whole number"),
            (MAX_ACTIONS, "ten", "whole number"),
            (ACTION_WINDOW_SECONDS, "0", "1 or more"),
            (ACTION_WINDOW_SECONDS, "1h", "1 or more"),
        ];
        for (variable, value, reason) in cases {
            match from(&[(variable, value)]) {
                Err(Error::InvalidConfig {
                    variable: v,
                    value: val,
                    reason: r,
                }) => {
                    assert_eq!((v.as_str(), val.as_str()), (variable, value));
                    assert!(r.contains(reason), "{variable}={value}: {r}");
                }
                other => panic!("{variable}={value}: expected InvalidConfig, got {other:?}"),
            }
        }
        let message = from(&[(COOLDOWN_SECONDS, "10m")]).unwrap_err().to_string();
        assert_eq!(
            message,
            "invalid configuration SELFHEAL_COOLDOWN_SECONDS=\"10m\": expected whole seconds (0 or more)"
        );
    }
}
