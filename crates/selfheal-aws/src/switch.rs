//! The off switch: one SSM `String` parameter that every action function and
//! `ingest` read before they act. `on` lets them act; `off` stops every new
//! action within [`DEFAULT_CACHE`] without a redeploy (the runbook's command is
//! `aws ssm put-parameter --name /selfheal/<stack>/switch --type String
//! --value off --overwrite`). Any other value counts as off: a typo must not
//! leave selfheal acting while the operator believes it stopped.
//!
//! Each process reads the parameter at most once per cache period, so a
//! warm function does not call SSM on every invocation. A failed read falls
//! back to the last value read (logged); with no value read yet it is
//! [`Error::SwitchUnavailable`], `RetryableAwsError`, which the state
//! machine's `Retry` (and ingest's callers) retry.
//!
//! The value handling ([`parse_value`]) and the cache ([`SwitchCache`]) are
//! pure and take the current time as an argument; [`OffSwitch`] adds the SSM
//! client and the clock.

use std::time::{Duration, Instant};

use aws_config::SdkConfig;
use tokio::sync::Mutex;

use selfheal_contract::env::Invalid;

use crate::Error;

/// Name of the SSM parameter holding the switch; unset: no switch (the
/// functions act as before, and need no SSM access).
pub const PARAMETER_VAR: &str = "SELFHEAL_SWITCH_PARAMETER";
/// Seconds a read value is used before the parameter is read again.
pub const CACHE_SECONDS_VAR: &str = "SELFHEAL_SWITCH_CACHE_SECONDS";
/// How long a flip may take to reach a warm function.
pub const DEFAULT_CACHE: Duration = Duration::from_secs(10);
/// Upper bound of [`CACHE_SECONDS_VAR`]: longer would make "stop within
/// seconds" untrue.
pub const MAX_CACHE_SECONDS: u64 = 300;

/// The switch's variables: (name, default, meaning). functions/README.md and
/// docs/alarms.md §8 list them.
pub const VARIABLES: &[(&str, &str, &str)] = &[
    (
        PARAMETER_VAR,
        "(unset)",
        "SSM String parameter of the off switch: `on` acts, anything else stops every new action",
    ),
    (
        CACHE_SECONDS_VAR,
        "10",
        "seconds a read switch value is used before the parameter is read again (0-300)",
    ),
];

/// Where the switch is and how long a read value is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SwitchConfig {
    /// The SSM parameter's name.
    pub parameter: String,
    /// How long a read value is used.
    pub cache: Duration,
}

impl SwitchConfig {
    /// From the variables above through `lookup`; `None` when
    /// [`PARAMETER_VAR`] is unset or blank. Blank values count as unset.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Option<Self>, Error> {
        let get = |name: &str| selfheal_contract::env::get(&lookup, name);
        let cache = match get(CACHE_SECONDS_VAR) {
            None => DEFAULT_CACHE,
            Some(text) => match text.parse::<u64>() {
                Ok(secs) if secs <= MAX_CACHE_SECONDS => Duration::from_secs(secs),
                _ => {
                    return Err(Error::Config(Invalid {
                        variable: CACHE_SECONDS_VAR,
                        reason: format!(
                            "expected whole seconds 0..={MAX_CACHE_SECONDS}, got {text:?}"
                        ),
                    }));
                }
            },
        };
        let Some(parameter) = get(PARAMETER_VAR) else {
            return Ok(None);
        };
        if parameter.chars().any(char::is_whitespace) {
            return Err(Error::Config(Invalid {
                variable: PARAMETER_VAR,
                reason: format!("{parameter:?} is not an SSM parameter name"),
            }));
        }
        Ok(Some(SwitchConfig { parameter, cache }))
    }
}

/// What a parameter value means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SwitchValue {
    On,
    Off,
    /// Neither `on` nor `off`: treated as off.
    Unrecognised,
}

/// `on` and `off`, surrounding whitespace ignored (a value written from a
/// file ends in a newline); everything else, other cases included, is
/// [`SwitchValue::Unrecognised`].
pub fn parse_value(text: &str) -> SwitchValue {
    match text.trim() {
        "on" => SwitchValue::On,
        "off" => SwitchValue::Off,
        _ => SwitchValue::Unrecognised,
    }
}

/// The switch as the functions see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SwitchState {
    On,
    Off(SwitchedOff),
}

/// Why selfheal is not acting: the parameter and the value read from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SwitchedOff {
    pub parameter: String,
    pub value: String,
}

impl std::fmt::Display for SwitchedOff {
    /// `selfheal is switched off (SSM parameter /x = off)`; an unrecognised
    /// value is quoted and said to count as off.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let SwitchedOff { parameter, value } = self;
        match parse_value(value) {
            SwitchValue::Off => write!(
                f,
                "selfheal is switched off (SSM parameter {parameter} = off)"
            ),
            _ => write!(
                f,
                "selfheal is switched off (SSM parameter {parameter} = {value:?}, which is not `on` or `off` and counts as off)"
            ),
        }
    }
}

impl SwitchState {
    fn from_value(parameter: &str, value: &str) -> Self {
        match parse_value(value) {
            SwitchValue::On => SwitchState::On,
            SwitchValue::Off | SwitchValue::Unrecognised => SwitchState::Off(SwitchedOff {
                parameter: parameter.to_owned(),
                value: value.trim().to_owned(),
            }),
        }
    }
}

/// The last value read and until when it is used.
#[derive(Debug, Clone)]
struct Cached {
    value: String,
    until: Instant,
}

/// What [`SwitchCache::store`] learned from a read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    pub state: SwitchState,
    /// The value differs from the previous read (or is the first read).
    pub changed: bool,
    /// The value is neither `on` nor `off` and was not the previous read's
    /// value either: log it now, not on every read.
    pub unrecognised: bool,
}

/// The per-process cache, pure: every method takes the current time.
#[derive(Debug, Clone)]
pub struct SwitchCache {
    parameter: String,
    ttl: Duration,
    cached: Option<Cached>,
}

impl SwitchCache {
    pub fn new(config: &SwitchConfig) -> Self {
        SwitchCache {
            parameter: config.parameter.clone(),
            ttl: config.cache,
            cached: None,
        }
    }

    pub fn parameter(&self) -> &str {
        &self.parameter
    }

    /// The cached state while it is younger than the cache period; `None`:
    /// read the parameter.
    pub fn fresh(&self, now: Instant) -> Option<SwitchState> {
        self.cached
            .as_ref()
            .filter(|c| now < c.until)
            .map(|c| SwitchState::from_value(&self.parameter, &c.value))
    }

    /// A read returned `value`: cache it for one period.
    pub fn store(&mut self, now: Instant, value: &str) -> Stored {
        let value = value.trim().to_owned();
        let previous = self.cached.as_ref().map(|c| c.value.as_str());
        let changed = previous != Some(value.as_str());
        let unrecognised = changed && parse_value(&value) == SwitchValue::Unrecognised;
        let state = SwitchState::from_value(&self.parameter, &value);
        self.cached = Some(Cached {
            value,
            until: now + self.ttl,
        });
        Stored {
            state,
            changed,
            unrecognised,
        }
    }

    /// A read failed: the last value read, kept for another period so an SSM
    /// outage costs one failed read per period, not one per invocation;
    /// `None` when nothing was ever read.
    pub fn fall_back(&mut self, now: Instant) -> Option<SwitchState> {
        let cached = self.cached.as_mut()?;
        cached.until = now + self.ttl;
        Some(SwitchState::from_value(&self.parameter, &cached.value))
    }
}

/// The switch with its SSM client, built once per process and shared by
/// every invocation.
#[derive(Debug)]
pub struct OffSwitch {
    ssm: aws_sdk_ssm::Client,
    cache: Mutex<SwitchCache>,
}

impl OffSwitch {
    /// An SSM client from `sdk` (selfheal's timeouts, [`crate::load`]).
    pub fn new(config: &SwitchConfig, sdk: &SdkConfig) -> Self {
        Self::with_client(config, aws_sdk_ssm::Client::new(sdk))
    }

    pub fn with_client(config: &SwitchConfig, ssm: aws_sdk_ssm::Client) -> Self {
        OffSwitch {
            ssm,
            cache: Mutex::new(SwitchCache::new(config)),
        }
    }

    /// The switch now: cached, else read from SSM. The lock is held across
    /// the read, so concurrent invocations of one process share one call.
    pub async fn state(&self) -> Result<SwitchState, Error> {
        let mut cache = self.cache.lock().await;
        if let Some(state) = cache.fresh(Instant::now()) {
            return Ok(state);
        }
        let parameter = cache.parameter().to_owned();
        match self.read(&parameter).await {
            Ok(value) => {
                let stored = cache.store(Instant::now(), &value);
                if stored.unrecognised {
                    tracing::warn!(
                        parameter = %parameter,
                        value = %value.trim(),
                        "off switch holds neither `on` nor `off`: counted as off"
                    );
                } else if stored.changed {
                    tracing::info!(
                        parameter = %parameter,
                        value = %value.trim(),
                        "off switch read"
                    );
                }
                Ok(stored.state)
            }
            Err(error) => match cache.fall_back(Instant::now()) {
                Some(state) => {
                    tracing::warn!(
                        parameter = %parameter,
                        error = %error,
                        on = state == SwitchState::On,
                        "off switch unreadable: using the value read last"
                    );
                    Ok(state)
                }
                None => {
                    tracing::error!(
                        parameter = %parameter,
                        error_type = error.error_type(),
                        error = %error,
                        "off switch unreadable and never read: nothing is done"
                    );
                    Err(error)
                }
            },
        }
    }

    async fn read(&self, parameter: &str) -> Result<String, Error> {
        let unavailable = |message: String| Error::SwitchUnavailable {
            parameter: parameter.to_owned(),
            message,
        };
        let output = self
            .ssm
            .get_parameter()
            .name(parameter)
            .send()
            .await
            .map_err(|e| unavailable(aws_sdk_ssm::error::DisplayErrorContext(e).to_string()))?;
        output
            .parameter()
            .and_then(|p| p.value())
            .map(str::to_owned)
            .ok_or_else(|| unavailable("the parameter has no value".to_owned()))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn config(vars: &[(&str, &str)]) -> Result<Option<SwitchConfig>, Error> {
        let map: HashMap<&str, &str> = vars.iter().copied().collect();
        SwitchConfig::from_lookup(|k| map.get(k).map(|v| (*v).to_owned()))
    }

    fn cache(ttl: Duration) -> SwitchCache {
        SwitchCache::new(&SwitchConfig {
            parameter: "/selfheal/prod/switch".into(),
            cache: ttl,
        })
    }

    fn off(value: &str) -> SwitchState {
        SwitchState::Off(SwitchedOff {
            parameter: "/selfheal/prod/switch".into(),
            value: value.into(),
        })
    }

    #[test]
    fn only_on_acts() {
        assert_eq!(parse_value("on"), SwitchValue::On);
        assert_eq!(parse_value(" on\n"), SwitchValue::On);
        assert_eq!(parse_value("off"), SwitchValue::Off);
        assert_eq!(parse_value("off\n"), SwitchValue::Off);
        for other in ["", "ON", "On", "true", "1", "yes", "enabled", "o n", "onn"] {
            assert_eq!(parse_value(other), SwitchValue::Unrecognised, "{other:?}");
            assert!(matches!(
                SwitchState::from_value("/p", other),
                SwitchState::Off(_)
            ));
        }
    }

    #[test]
    fn messages_name_the_parameter_and_value() {
        let SwitchState::Off(o) = off("off") else {
            unreachable!()
        };
        assert_eq!(
            o.to_string(),
            "selfheal is switched off (SSM parameter /selfheal/prod/switch = off)"
        );
        let SwitchState::Off(o) = off("ON") else {
            unreachable!()
        };
        assert_eq!(
            o.to_string(),
            "selfheal is switched off (SSM parameter /selfheal/prod/switch = \"ON\", which is not `on` or `off` and counts as off)"
        );
    }

    #[test]
    fn config_defaults_bounds_and_unset() {
        assert_eq!(config(&[]).unwrap(), None);
        assert_eq!(config(&[(PARAMETER_VAR, "  ")]).unwrap(), None);
        // The cache variable is checked even without a parameter: a typo
        // there should not wait until someone sets the parameter.
        assert!(config(&[(CACHE_SECONDS_VAR, "ten")]).is_err());
        assert_eq!(
            config(&[(PARAMETER_VAR, " /selfheal/prod/switch ")]).unwrap(),
            Some(SwitchConfig {
                parameter: "/selfheal/prod/switch".into(),
                cache: DEFAULT_CACHE,
            })
        );
        for (text, secs) in [("0", 0), ("1", 1), ("300", 300), ("", 10)] {
            let c = config(&[(PARAMETER_VAR, "/p"), (CACHE_SECONDS_VAR, text)])
                .unwrap()
                .unwrap();
            assert_eq!(c.cache, Duration::from_secs(secs), "{text:?}");
        }
        for bad in ["-1", "301", "1.5", "ten"] {
            let err = config(&[(PARAMETER_VAR, "/p"), (CACHE_SECONDS_VAR, bad)]).unwrap_err();
            assert_eq!(err.error_type(), "NonRetryableConfig");
            assert!(err.to_string().contains(CACHE_SECONDS_VAR), "{err}");
            assert!(err.to_string().contains("0..=300"), "{err}");
        }
        let err = config(&[(PARAMETER_VAR, "/self heal")]).unwrap_err();
        assert!(err.to_string().contains(PARAMETER_VAR), "{err}");
        // The documented default is the code's.
        assert_eq!(VARIABLES[1].1, DEFAULT_CACHE.as_secs().to_string());
    }

    /// A cache with a 10 s period, the instant it starts at, and the period.
    fn ten_second_cache() -> (SwitchCache, Instant, Duration) {
        let ttl = Duration::from_secs(10);
        (cache(ttl), Instant::now(), ttl)
    }

    #[test]
    fn a_read_value_is_used_for_one_period() {
        let (mut c, t0, ttl) = ten_second_cache();
        assert_eq!(c.fresh(t0), None, "nothing read yet");
        let stored = c.store(t0, "on\n");
        assert_eq!(stored.state, SwitchState::On);
        assert!(stored.changed && !stored.unrecognised);
        assert_eq!(c.fresh(t0 + Duration::from_secs(9)), Some(SwitchState::On));
        assert_eq!(c.fresh(t0 + ttl), None, "expired at the period's end");

        // The flip is seen at the next read.
        let t1 = t0 + ttl;
        let stored = c.store(t1, "off");
        assert_eq!(stored.state, off("off"));
        assert!(stored.changed);
        assert_eq!(c.fresh(t1 + Duration::from_secs(1)), Some(off("off")));
        let stored = c.store(t1 + ttl, "off");
        assert!(!stored.changed, "same value again");
    }

    #[test]
    fn zero_period_reads_every_time() {
        let t0 = Instant::now();
        let mut c = cache(Duration::ZERO);
        c.store(t0, "on");
        assert_eq!(c.fresh(t0), None);
    }

    #[test]
    fn an_unrecognised_value_is_reported_once() {
        let t0 = Instant::now();
        let ttl = Duration::from_secs(1);
        let mut c = cache(ttl);
        let first = c.store(t0, "OFF");
        assert_eq!(first.state, off("OFF"));
        assert!(first.unrecognised);
        let again = c.store(t0 + ttl, "OFF");
        assert_eq!(again.state, off("OFF"));
        assert!(!again.unrecognised, "same value: not reported again");
        let other = c.store(t0 + ttl * 2, "disabled");
        assert!(other.unrecognised, "a different unrecognised value is");
        let fixed = c.store(t0 + ttl * 3, "on");
        assert!(!fixed.unrecognised && fixed.changed);
    }

    #[test]
    fn a_failed_read_keeps_the_last_value_for_another_period() {
        let (mut c, t0, ttl) = ten_second_cache();
        assert_eq!(c.fall_back(t0), None, "nothing to fall back on");
        assert_eq!(c.fresh(t0), None);

        c.store(t0, "off");
        let t1 = t0 + ttl;
        assert_eq!(c.fresh(t1), None);
        assert_eq!(c.fall_back(t1), Some(off("off")));
        // The next read is one period after the failure, not at once.
        assert_eq!(c.fresh(t1 + Duration::from_secs(9)), Some(off("off")));
        assert_eq!(c.fresh(t1 + ttl), None);
        assert_eq!(c.store(t1 + ttl, "on").state, SwitchState::On);
    }

    #[test]
    fn switch_errors_have_stable_names() {
        let e = Error::SwitchUnavailable {
            parameter: "/p".into(),
            message: "ThrottlingException".into(),
        };
        assert_eq!(e.error_type(), "RetryableAwsError");
        assert_eq!(
            e.to_string(),
            "cannot read the off switch (SSM parameter /p): ThrottlingException"
        );
    }
}
