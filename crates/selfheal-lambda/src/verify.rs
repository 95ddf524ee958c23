//! How long one `verify` invocation watches: the state machine's rollout
//! budget (statemachines/README.md, "The rollout watch") as time, so the
//! budget stays the same however long each window turns out to be.

use std::time::Duration;

pub use selfheal_core::WatchSpan;
use serde::{Deserialize, Serialize};

/// `verify`'s optional `watch` input: when the state machine started
/// watching this rollout (`StartVerify`'s `$$.State.EnteredTime`) and how
/// many seconds it allows in all (`VerifyTimeoutSeconds`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WatchBudget {
    pub started_at: jiff::Timestamp,
    pub budget_seconds: u64,
}

impl WatchBudget {
    /// Budget left at `now` (zero once spent).
    pub fn remaining(&self, now: jiff::Timestamp) -> Duration {
        let budget = Duration::from_secs(self.budget_seconds);
        let spent = now.duration_since(self.started_at);
        // A clock behind `started_at` has spent nothing.
        let spent = Duration::try_from(spent).unwrap_or_default();
        budget.saturating_sub(spent)
    }
}

/// The longest window of one invocation the state machine calls (with a
/// budget): the default budget (660 s, `VerifyTimeoutSeconds`) in one
/// call, so a rollout costs one Verify state however long it takes. The
/// function's Timeout (template.yaml, 720 s) leaves 60 s beyond it for the
/// reads around the watch (each within the client's 20 s read timeout).
pub const BUDGETED_WINDOW: Duration = Duration::from_secs(660);

/// This invocation's watch window: with the state machine's budget, what is
/// left of it up to [`BUDGETED_WINDOW`]; without one (a direct invocation),
/// one watch segment ([`selfheal_kube::WATCH_WINDOW`], 15 s).
pub fn window(budget: Option<&WatchBudget>, now: jiff::Timestamp) -> Duration {
    budget.map_or(selfheal_kube::WATCH_WINDOW, |b| {
        b.remaining(now).min(BUDGETED_WINDOW)
    })
}

/// `window` cut to end when the kube client's credentials are due for
/// renewal (`valid_until`: an EKS token is renewed after 14 minutes and
/// accepted for 15), so a long watch never outlives its token: the next
/// window then starts with a fresh client.
pub fn within_credentials(
    window: Duration,
    valid_until: Option<jiff::Timestamp>,
    now: jiff::Timestamp,
) -> Duration {
    valid_until.map_or(window, |until| {
        let left = Duration::try_from(until.duration_since(now)).unwrap_or_default();
        window.min(left)
    })
}

/// What `verify` reads of its previous answer (`previous`, the state
/// machine's `$.verify`): its span, if any.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct PreviousAnswer {
    #[serde(default)]
    pub watch: Option<WatchSpan>,
}

impl WatchBudget {
    /// The span after one more window ending `now`: it continues `previous`
    /// when that belongs to the same watch (same start; after an escalation
    /// the previous answer is the first remediation's), else it is the first.
    pub fn span(&self, previous: Option<&WatchSpan>, now: jiff::Timestamp) -> WatchSpan {
        let before = previous
            .filter(|p| p.started_at == self.started_at)
            .map_or(0, |p| p.attempts);
        WatchSpan {
            started_at: self.started_at,
            attempts: before.saturating_add(1),
            finished_at: now,
        }
    }
}

/// Whole seconds of budget left after the window, for the state machine's
/// `CheckRollout` (`remainingSeconds` > 0: watch again).
pub fn remaining_seconds(budget: &WatchBudget, now: jiff::Timestamp) -> u64 {
    budget.remaining(now).as_secs()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn at(s: &str) -> jiff::Timestamp {
        s.parse().unwrap()
    }

    fn budget() -> WatchBudget {
        serde_json::from_value(serde_json::json!({
            "startedAt": "2026-11-26T19:12:00.000Z", "budgetSeconds": 660
        }))
        .unwrap()
    }

    #[test]
    fn the_window_is_the_budget_left_up_to_the_longest() {
        let b = budget();
        assert_eq!(
            window(None, at("2026-11-26T20:00:00Z")),
            Duration::from_secs(15),
            "no budget: one segment"
        );
        assert_eq!(
            window(Some(&b), at("2026-11-26T19:12:00Z")),
            BUDGETED_WINDOW,
            "the whole default budget in one call"
        );
        assert_eq!(
            window(Some(&b), at("2026-11-26T19:14:00Z")),
            Duration::from_secs(540)
        );
        assert_eq!(
            window(Some(&b), at("2026-11-26T19:22:55.5Z")),
            Duration::from_millis(4_500),
            "655.5 s of 660 spent"
        );
        assert_eq!(window(Some(&b), at("2026-11-26T19:23:01Z")), Duration::ZERO);
        let long = WatchBudget {
            budget_seconds: 3600,
            ..b
        };
        assert_eq!(
            window(Some(&long), at("2026-11-26T19:12:00Z")),
            BUDGETED_WINDOW,
            "a longer budget takes several calls"
        );
    }

    #[test]
    fn remaining_seconds_count_down_to_zero_and_never_below() {
        let b = budget();
        assert_eq!(remaining_seconds(&b, at("2026-11-26T19:12:15Z")), 645);
        assert_eq!(remaining_seconds(&b, at("2026-11-26T19:22:59.9Z")), 0);
        assert_eq!(remaining_seconds(&b, at("2026-11-26T19:30:00Z")), 0);
        // A Lambda clock slightly behind Step Functions' spends nothing.
        assert_eq!(remaining_seconds(&b, at("2026-11-26T19:11:59Z")), 660);
    }

    #[test]
    fn a_window_ends_before_the_credentials_do() {
        let now = at("2026-11-26T19:12:00Z");
        let window = Duration::from_secs(660);
        assert_eq!(within_credentials(window, None, now), window);
        assert_eq!(
            within_credentials(window, Some(at("2026-11-26T19:26:00Z")), now),
            window,
            "a fresh client (14 minutes) outlasts the window"
        );
        assert_eq!(
            within_credentials(window, Some(at("2026-11-26T19:16:00Z")), now),
            Duration::from_secs(240)
        );
        assert_eq!(
            within_credentials(window, Some(at("2026-11-26T19:11:00Z")), now),
            Duration::ZERO
        );
    }

    #[test]
    fn the_span_counts_windows_of_the_same_watch_only() {
        let b = budget();
        let first = b.span(None, at("2026-11-26T19:23:00Z"));
        assert_eq!(
            (first.started_at, first.attempts, first.finished_at),
            (b.started_at, 1, at("2026-11-26T19:23:00Z"))
        );
        let second = b.span(Some(&first), at("2026-11-26T19:24:00Z"));
        assert_eq!(
            (second.attempts, second.finished_at),
            (2, at("2026-11-26T19:24:00Z"))
        );
        // An escalation's watch starts later: the restart's span is not its.
        let later = WatchBudget {
            started_at: at("2026-11-26T19:30:00Z"),
            ..b
        };
        assert_eq!(
            later
                .span(Some(&second), at("2026-11-26T19:31:00Z"))
                .attempts,
            1
        );
        let previous: PreviousAnswer = serde_json::from_value(serde_json::json!({
            "state": "waiting", "message": "m", "target": {"namespace": "shop"},
            "remainingSeconds": 600,
            "watch": {"startedAt": "2026-11-26T19:12:00Z", "attempts": 1, "finishedAt": "2026-11-26T19:23:00Z"}
        }))
        .unwrap();
        assert_eq!(previous.watch, Some(first));
    }

    #[test]
    fn a_malformed_budget_is_refused() {
        for bad in [
            serde_json::json!({"startedAt": "yesterday", "budgetSeconds": 660}),
            serde_json::json!({"startedAt": "2026-11-26T19:12:00Z", "budgetSeconds": -1}),
            serde_json::json!({"startedAt": "2026-11-26T19:12:00Z"}),
            serde_json::json!({"startedAt": "2026-11-26T19:12:00Z", "budgetSeconds": 1, "x": 1}),
        ] {
            assert!(
                serde_json::from_value::<WatchBudget>(bad.clone()).is_err(),
                "{bad}"
            );
        }
    }
}
