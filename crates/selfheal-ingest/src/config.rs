//! Configuration from environment variables, parsed once at start-up.

use secrecy::SecretString;
use selfheal_aws::SwitchConfig;
use selfheal_contract::env::{self, Invalid};
use selfheal_events::Defaults;

use crate::Error;
use crate::secret::SecretSource;

/// Every variable `ingest` reads: (name, default, meaning). README lists these.
pub const VARIABLES: &[(&str, &str, &str)] = &[
    (
        IngestConfig::STATE_MACHINE_VAR,
        "(required)",
        "ARN of the remediate-deployment state machine to start",
    ),
    (
        IngestConfig::SECRET_PARAM_VAR,
        "(unset)",
        "SSM SecureString parameter holding the webhook bearer secret",
    ),
    (
        IngestConfig::SECRET_ARN_VAR,
        "(unset)",
        "Secrets Manager secret (ARN or name) holding the webhook bearer secret",
    ),
    (
        IngestConfig::SECRET_VAR,
        "(unset)",
        "the webhook bearer secret itself; local tests only",
    ),
    (
        IngestConfig::CONCURRENCY_VAR,
        "8",
        "StartExecution calls in flight at once for one event",
    ),
    (
        IngestConfig::MAX_ALERTS_VAR,
        "100",
        "most alerts one event (webhook) may carry; more: 400, nothing started (1-1000)",
    ),
    (
        Defaults::CLUSTER_VAR,
        "(unset)",
        "cluster for alarms that name none",
    ),
    (
        Defaults::ACTION_VAR,
        "(unset)",
        "action for alarms that name none (unset: such alarms are rejected)",
    ),
    (
        Defaults::ALLOW_CROSS_NAMESPACE_VAR,
        "false",
        "`true` lets a directive name another namespace or cluster than the alert's own labels (dimensions)",
    ),
    (
        selfheal_aws::switch::PARAMETER_VAR,
        "(unset)",
        "SSM String parameter of the off switch: `on` starts executions; anything else starts none (alerts listed as ignored, `disabled`)",
    ),
    (
        selfheal_aws::switch::CACHE_SECONDS_VAR,
        "10",
        "seconds a read switch value is used before the parameter is read again (0-300)",
    ),
];

/// What `ingest` needs to know, from the environment.
#[derive(Debug, Clone)]
pub struct IngestConfig {
    pub state_machine_arn: String,
    pub defaults: Defaults,
    /// Where the webhook's bearer secret lives; `Disabled` refuses every HTTP request.
    pub secret: SecretSource,
    /// StartExecution calls in flight at once (Step Functions' StartExecution
    /// token bucket refills at a few hundred per second; 8 stays well inside it).
    pub concurrency: usize,
    /// Most alerts one event may carry; a larger one starts nothing
    /// (webhook: 400). Alertmanager's `max_alerts` must be at most this.
    pub max_alerts: usize,
    /// The off switch; `None`: executions are always started.
    pub switch: Option<SwitchConfig>,
}

impl IngestConfig {
    pub const STATE_MACHINE_VAR: &'static str = "SELFHEAL_STATE_MACHINE_ARN";
    pub const SECRET_PARAM_VAR: &'static str = "SELFHEAL_WEBHOOK_SECRET_PARAM";
    pub const SECRET_ARN_VAR: &'static str = "SELFHEAL_WEBHOOK_SECRET_ARN";
    pub const SECRET_VAR: &'static str = "SELFHEAL_WEBHOOK_SECRET";
    pub const CONCURRENCY_VAR: &'static str = "SELFHEAL_INGEST_CONCURRENCY";
    pub const DEFAULT_CONCURRENCY: usize = 8;
    pub const MAX_ALERTS_VAR: &'static str = "SELFHEAL_MAX_ALERTS_PER_WEBHOOK";
    /// 100 alerts at concurrency 8 is 13 rounds of StartExecution: about a
    /// second against Step Functions, well inside ingest's 20 s timeout.
    pub const DEFAULT_MAX_ALERTS: usize = 100;
    /// Upper bound of [`Self::MAX_ALERTS_VAR`]: 1,000 starts take about 10 s in
    /// the throughput benchmark (docs/alarms.md §9), half the function's timeout.
    pub const MAX_MAX_ALERTS: usize = 1000;

    /// Read the configuration through `lookup` (`selfheal_contract::env::process`, a map in tests).
    /// Empty values count as unset. At most one secret source may be set:
    /// two would leave it unclear which one the webhook checks.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, Error> {
        let get = |k: &str| env::get(&lookup, k);
        let state_machine_arn = get(Self::STATE_MACHINE_VAR)
            .map(|v| v.trim().to_owned())
            .ok_or(Error::Config(Invalid {
                variable: Self::STATE_MACHINE_VAR,
                reason: "required: the ARN of the state machine to start".into(),
            }))?;
        if !state_machine_arn.starts_with("arn:") || !state_machine_arn.contains(":stateMachine:") {
            return Err(Error::Config(Invalid {
                variable: Self::STATE_MACHINE_VAR,
                reason: format!(
                    "{state_machine_arn:?} is not a state machine ARN (arn:…:states:…:stateMachine:NAME)"
                ),
            }));
        }

        let defaults =
            Defaults::from_lookup(|k| lookup(k)).map_err(|source| Error::Defaults { source })?;

        let mut sources = Vec::new();
        if let Some(name) = get(Self::SECRET_PARAM_VAR) {
            sources.push((
                Self::SECRET_PARAM_VAR,
                SecretSource::SsmParameter {
                    name: name.trim().to_owned(),
                },
            ));
        }
        if let Some(id) = get(Self::SECRET_ARN_VAR) {
            sources.push((
                Self::SECRET_ARN_VAR,
                SecretSource::SecretsManager {
                    id: id.trim().to_owned(),
                },
            ));
        }
        if let Some(value) = get(Self::SECRET_VAR) {
            sources.push((
                Self::SECRET_VAR,
                SecretSource::Value(SecretString::from(value.trim().to_owned())),
            ));
        }
        let secret = match sources.len() {
            0 => SecretSource::Disabled,
            1 => sources.remove(0).1,
            _ => {
                let names: Vec<&str> = sources.iter().map(|(name, _)| *name).collect();
                return Err(Error::Config(Invalid {
                    variable: Self::SECRET_PARAM_VAR,
                    reason: format!("set only one of {}", names.join(", ")),
                }));
            }
        };

        let bounded = |variable: &'static str, default: usize, max: usize| match get(variable) {
            None => Ok(default),
            Some(text) => text
                .trim()
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=max).contains(n))
                .ok_or_else(|| {
                    Error::Config(Invalid {
                        variable,
                        reason: format!("{text:?} is not a whole number from 1 to {max}"),
                    })
                }),
        };
        let concurrency = bounded(Self::CONCURRENCY_VAR, Self::DEFAULT_CONCURRENCY, 256)?;
        let max_alerts = bounded(
            Self::MAX_ALERTS_VAR,
            Self::DEFAULT_MAX_ALERTS,
            Self::MAX_MAX_ALERTS,
        )?;

        let switch = SwitchConfig::from_lookup(&lookup).map_err(|error| match error {
            selfheal_aws::Error::Config(invalid) => Error::Config(invalid),
            other => Error::Config(Invalid {
                variable: selfheal_aws::switch::PARAMETER_VAR,
                reason: other.to_string(),
            }),
        })?;

        Ok(IngestConfig {
            state_machine_arn,
            defaults,
            secret,
            concurrency,
            max_alerts,
            switch,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use secrecy::ExposeSecret;
    use selfheal_events::Action;

    use super::*;

    const ARN: &str = "arn:aws:states:eu-west-1:123456789012:stateMachine:remediate-deployment";

    fn config(vars: &[(&str, &str)]) -> Result<IngestConfig, Error> {
        IngestConfig::from_lookup(selfheal_contract::env::from_pairs(vars))
    }

    /// The state machine's ARN and `extra`.
    fn with_arn<'a>(extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
        let mut vars = vec![(IngestConfig::STATE_MACHINE_VAR, ARN)];
        vars.extend_from_slice(extra);
        vars
    }

    fn config_with_arn(extra: &[(&str, &str)]) -> Result<IngestConfig, Error> {
        config(&with_arn(extra))
    }

    #[test]
    fn minimal_config_has_webhook_disabled() {
        let c = config_with_arn(&[]).unwrap();
        assert_eq!(c.state_machine_arn, ARN);
        assert!(matches!(c.secret, SecretSource::Disabled));
        assert_eq!(c.concurrency, 8);
        assert_eq!(c.max_alerts, 100);
        assert_eq!(c.defaults, Defaults::default());
        assert_eq!(c.switch, None);
    }

    #[test]
    fn reads_the_off_switch() {
        use selfheal_aws::switch::{CACHE_SECONDS_VAR, PARAMETER_VAR};
        let c = config_with_arn(&[
            (PARAMETER_VAR, "/selfheal/prod/switch"),
            (CACHE_SECONDS_VAR, "3"),
        ])
        .unwrap();
        assert_eq!(
            c.switch,
            Some(SwitchConfig {
                parameter: "/selfheal/prod/switch".into(),
                cache: std::time::Duration::from_secs(3),
            })
        );
        let err =
            config_with_arn(&[(PARAMETER_VAR, "/p"), (CACHE_SECONDS_VAR, "soon")]).unwrap_err();
        assert!(
            matches!(&err, Error::Config(Invalid { variable, .. }) if *variable == CACHE_SECONDS_VAR),
            "{err}"
        );
        assert_eq!(err.error_type(), "NonRetryableConfig");
    }

    #[test]
    fn reads_every_variable() {
        let c = config_with_arn(&[
            (IngestConfig::SECRET_VAR, " s3cret \n"),
            (IngestConfig::CONCURRENCY_VAR, "32"),
            (IngestConfig::MAX_ALERTS_VAR, " 1000 "),
            ("SELFHEAL_DEFAULT_CLUSTER", "prod"),
            ("SELFHEAL_DEFAULT_ACTION", "restart"),
        ])
        .unwrap();
        let SecretSource::Value(secret) = &c.secret else {
            panic!("expected a value secret, got {:?}", c.secret)
        };
        assert_eq!(secret.expose_secret(), "s3cret");
        assert_eq!(c.concurrency, 32);
        assert_eq!(c.max_alerts, 1000);
        assert_eq!(c.defaults.cluster.as_deref(), Some("prod"));
        assert_eq!(c.defaults.action, Some(Action::Restart));

        let c = config_with_arn(&[(IngestConfig::SECRET_PARAM_VAR, "/selfheal/webhook")]).unwrap();
        assert!(
            matches!(&c.secret, SecretSource::SsmParameter { name } if name == "/selfheal/webhook")
        );
        let c = config_with_arn(&[(IngestConfig::SECRET_ARN_VAR, "selfheal/webhook")]).unwrap();
        assert!(
            matches!(&c.secret, SecretSource::SecretsManager { id } if id == "selfheal/webhook")
        );
    }

    #[test]
    fn rejects_bad_values_naming_the_variable() {
        use IngestConfig as C;
        let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
            (vec![], C::STATE_MACHINE_VAR),
            (
                vec![(C::STATE_MACHINE_VAR, "remediate")],
                C::STATE_MACHINE_VAR,
            ),
            (with_arn(&[(C::CONCURRENCY_VAR, "0")]), C::CONCURRENCY_VAR),
            (
                with_arn(&[(C::CONCURRENCY_VAR, "many")]),
                C::CONCURRENCY_VAR,
            ),
            (with_arn(&[(C::MAX_ALERTS_VAR, "0")]), C::MAX_ALERTS_VAR),
            (with_arn(&[(C::MAX_ALERTS_VAR, "1001")]), C::MAX_ALERTS_VAR),
            (
                with_arn(&[(C::SECRET_VAR, "a"), (C::SECRET_ARN_VAR, "b")]),
                C::SECRET_PARAM_VAR,
            ),
        ];
        for (vars, variable) in cases {
            let err = config(&vars).unwrap_err();
            assert!(
                matches!(&err, Error::Config(Invalid { variable: v, .. }) if *v == variable),
                "{vars:?}: {err}"
            );
            assert_eq!(err.error_type(), "NonRetryableConfig");
        }
        let err = config_with_arn(&[("SELFHEAL_DEFAULT_ACTION", "nuke")]).unwrap_err();
        assert!(matches!(err, Error::Defaults { .. }), "{err}");
        assert_eq!(err.error_type(), "NonRetryableConfig");
    }
}
