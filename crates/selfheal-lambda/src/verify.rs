//! How long one `verify` invocation watches: the state machine's rollout
//! budget (statemachines/README.md, "The rollout watch") as time, so the
//! budget stays the same however long each window turns out to be.

use std::time::Duration;

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

/// This invocation's watch window: `longest` ([`selfheal_kube::WATCH_WINDOW`]),
/// cut to what is left of the budget when the state machine gives one.
pub fn window(budget: Option<&WatchBudget>, now: jiff::Timestamp, longest: Duration) -> Duration {
    budget.map_or(longest, |b| b.remaining(now).min(longest))
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

    const LONGEST: Duration = Duration::from_secs(15);

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
    fn the_window_is_the_longest_until_the_budget_runs_short() {
        let b = budget();
        assert_eq!(window(None, at("2026-11-26T20:00:00Z"), LONGEST), LONGEST);
        assert_eq!(
            window(Some(&b), at("2026-11-26T19:12:00Z"), LONGEST),
            LONGEST
        );
        assert_eq!(
            window(Some(&b), at("2026-11-26T19:22:55.5Z"), LONGEST),
            Duration::from_millis(4_500),
            "655.5 s of 660 spent"
        );
        assert_eq!(
            window(Some(&b), at("2026-11-26T19:23:01Z"), LONGEST),
            Duration::ZERO
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
