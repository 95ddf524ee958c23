//! Loop prevention end to end: a bad image is rolled back, CI deploys the
//! same bad image again, the alarm fires again: selfheal does not oscillate
//! (guard `oscillation`, from `selfheal.dev/bad-images`), and a new image
//! deployed later is neither reverted nor blocked.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "reliability_common/mod.rs"]
mod common;

use common::{API_1, API_2, API_3, Cluster, ENVOY, NOW, annotation, clock_at, rollback_request};
use selfheal_core::{Guard, OutcomeStatus, Policy, RolloutState};
use serde_json::{Value, json};

fn at(minutes: i64) -> String {
    let t0: jiff::Timestamp = NOW.parse().unwrap();
    (t0 + jiff::SignedDuration::from_mins(minutes)).to_string()
}

fn bad_images(c: &Cluster) -> Value {
    serde_json::from_str(&annotation(&c.deployment("checkout"), "selfheal.dev/bad-images").unwrap())
        .unwrap()
}

#[tokio::test]
async fn redeployed_bad_image_is_refused_as_oscillation_and_a_new_image_is_not_blocked() {
    let c = Cluster::with_bad_rollout(&["checkout"]).await;
    let selfheal = |minutes: i64| {
        c.remediator(Policy::default())
            .with_clock(clock_at(&at(minutes)))
    };

    // 1. The alarm: api 1.1.0 is rolled back to 1.0.0 and remembered as bad.
    let first = selfheal(0)
        .remediate(&rollback_request("checkout", "alarm-1"))
        .await
        .unwrap();
    assert_eq!(first.status, OutcomeStatus::Applied, "{first:?}");
    assert!(c.server.controller().settle().await);
    assert_eq!(c.image("checkout", "api"), API_1);
    assert_eq!(bad_images(&c), json!({"api": [API_2]}));

    // 2. CI re-deploys the same bad image (kubectl set image); our
    //    annotations survive its strategic merge patch.
    c.set_image("checkout", "api", API_2).await;
    assert!(c.server.controller().settle().await);
    assert_eq!(bad_images(&c), json!({"api": [API_2]}));

    // 3. The alarm fires again within the cooldown: refused by the cooldown.
    let soon = selfheal(2)
        .remediate(&rollback_request("checkout", "alarm-2"))
        .await
        .unwrap();
    assert_eq!(soon.status, OutcomeStatus::Refused);
    assert_eq!(soon.guard, Some(Guard::Cooldown));

    // 4. And after the cooldown: refused as an oscillation, saying why.
    let later = selfheal(30)
        .remediate(&rollback_request("checkout", "alarm-3"))
        .await
        .unwrap();
    assert_eq!(later.status, OutcomeStatus::Refused, "{later:?}");
    assert_eq!(later.guard, Some(Guard::Oscillation));
    assert!(
        later.message.contains(API_2) && later.message.contains("re-deployed"),
        "{}",
        later.message
    );
    assert_eq!(
        c.image("checkout", "api"),
        API_2,
        "selfheal did not flip it back"
    );
    assert_eq!(c.rollback_events(), 1);

    // 5. A new image later: it rolls out, selfheal does not touch it.
    c.set_image("checkout", "api", API_3).await;
    assert!(c.server.controller().settle().await);
    let status = selfheal(40).status(common::NS, "checkout").await.unwrap();
    assert_eq!(status.state, RolloutState::Done, "{status:?}");
    assert_eq!(c.image("checkout", "api"), API_3);

    // 6. If that one goes bad too, it is rolled back like any other, to the
    //    newest image not known to be bad (1.0.0, skipping 1.1.0).
    let third = selfheal(60)
        .remediate(&rollback_request("checkout", "alarm-4"))
        .await
        .unwrap();
    assert_eq!(third.status, OutcomeStatus::Applied, "{third:?}");
    assert_eq!(
        (third.changes[0].from.as_str(), third.changes[0].to.as_str()),
        (API_3, API_1)
    );
    assert_eq!(c.image("checkout", "api"), API_1);
    assert_eq!(c.image("checkout", "envoy"), ENVOY);
    assert_eq!(bad_images(&c), json!({"api": [API_2, API_3]}));
    assert_eq!(c.rollback_events(), 2);
}

#[tokio::test]
async fn forced_rollback_of_a_redeployed_bad_image_is_allowed() {
    let c = Cluster::with_bad_rollout(&["checkout"]).await;
    let selfheal = c.remediator(Policy::default());
    selfheal
        .remediate(&rollback_request("checkout", "alarm-1"))
        .await
        .unwrap();
    assert!(c.server.controller().settle().await);
    c.set_image("checkout", "api", API_2).await;
    assert!(c.server.controller().settle().await);
    let mut forced = rollback_request("checkout", "human-1");
    forced.force = true;
    let outcome = selfheal.remediate(&forced).await.unwrap();
    assert_eq!(outcome.status, OutcomeStatus::Applied, "{outcome:?}");
    assert_eq!(c.image("checkout", "api"), API_1);
}
