//! `selfheal status --watch [--timeout D]`: the verify step's watch
//! ([`Remediator::watch_status_of`], any workload kind) in windows of [`WATCH_WINDOW`] until the
//! rollout is done or failed, as `kubectl rollout status` waits.

use std::time::Duration;

use selfheal_core::{RolloutState, RolloutStatus, WorkloadKind};
use selfheal_kube::{Remediator, WATCH_WINDOW};
use tokio::time::Instant;

use crate::Error;

/// Below this much time left, no further window is started (the watch's
/// `timeoutSeconds` rounds to whole seconds; half a second is none).
const LAST_WINDOW: Duration = Duration::from_millis(500);

/// Parse `--timeout` like kubectl's: `90s`, `5m`, `1h30m`, `250ms`, or `0`
/// (no limit, kubectl's default).
pub fn parse_timeout(text: &str) -> Result<Duration, String> {
    let bad = || format!("invalid duration {text:?}: use e.g. 90s, 5m, 1h30m");
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    if text.is_empty() {
        return Err(bad());
    }
    let mut total = Duration::ZERO;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
        let value: u64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let seconds_per = match &rest[..unit] {
            "h" => 3600,
            "m" => 60,
            "s" => 1,
            "ms" => {
                total += Duration::from_millis(value);
                rest = &rest[unit..];
                continue;
            }
            _ => return Err(bad()),
        };
        total += Duration::from_secs(value.checked_mul(seconds_per).ok_or_else(bad)?);
        rest = &rest[unit..];
    }
    Ok(total)
}

/// The next window with `left` of the timeout remaining (`None`: no
/// timeout): a full one, the rest of the timeout, or none once it is spent.
pub fn next_window(left: Option<Duration>) -> Option<Duration> {
    match left {
        None => Some(WATCH_WINDOW),
        Some(left) if left < LAST_WINDOW => None,
        Some(left) => Some(left.min(WATCH_WINDOW)),
    }
}

/// Watch until done or failed, or until `timeout` (zero or `None`: no
/// limit) has passed; the last verdict is the answer either way.
pub async fn until_finished(
    remediator: &Remediator,
    (kind, namespace, name): (WorkloadKind, &str, &str),
    timeout: Option<Duration>,
) -> Result<RolloutStatus, Error> {
    let deadline = timeout.filter(|t| !t.is_zero()).map(|t| Instant::now() + t);
    let mut window = next_window(deadline.map(|d| d.saturating_duration_since(Instant::now())))
        .unwrap_or_default();
    loop {
        let status = remediator
            .watch_status_of(namespace, kind, name, window)
            .await
            .map_err(|source| Error::Kube { source })?;
        let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        match next_window(left) {
            Some(next) if status.state == RolloutState::Waiting => window = next,
            _ => return Ok(status),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_read_like_kubectl() {
        let s = Duration::from_secs;
        assert_eq!(parse_timeout("90s").unwrap(), s(90));
        assert_eq!(parse_timeout("5m").unwrap(), s(300));
        assert_eq!(parse_timeout("1h30m").unwrap(), s(5400));
        assert_eq!(parse_timeout("1m30s").unwrap(), s(90));
        assert_eq!(
            parse_timeout("1500ms").unwrap(),
            Duration::from_millis(1500)
        );
        assert_eq!(parse_timeout("0").unwrap(), Duration::ZERO);
        for bad in ["", "5", "m", "5x", "-1s", "1.5s", "99999999999999999999h"] {
            assert!(parse_timeout(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn windows_fill_the_timeout_and_stop_when_it_is_spent() {
        assert_eq!(next_window(None), Some(WATCH_WINDOW));
        assert_eq!(
            next_window(Some(Duration::from_secs(600))),
            Some(WATCH_WINDOW)
        );
        assert_eq!(
            next_window(Some(Duration::from_secs(4))),
            Some(Duration::from_secs(4))
        );
        assert_eq!(next_window(Some(Duration::from_millis(499))), None);
        assert_eq!(next_window(Some(Duration::ZERO)), None);
    }
}
