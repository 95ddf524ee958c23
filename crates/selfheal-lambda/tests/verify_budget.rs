//! `verify` with the state machine's `watch` budget, against the test API
//! server: it watches at most what is left of the budget, answers `done`
//! the moment the rollout finishes, and says how much budget is left.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use lambda_runtime::{Context, LambdaEvent};
use selfheal_core::RolloutState;
use selfheal_lambda::{AppState, FunctionConfig, VerifyOutput, handle_verify};
use selfheal_testserver::{TestServer, fixtures};
use serde_json::json;

/// A server whose `shop/checkout` has a new api image the (stopped)
/// controller has not observed yet, and a verify state for it.
async fn stuck_rollout() -> (TestServer, AppState, tempfile::TempDir) {
    let server = TestServer::start().await.unwrap();
    fixtures::rollout_waiting(&server).await;
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    server.write_kubeconfig(&kubeconfig).unwrap();
    let path = kubeconfig.display().to_string();
    let config =
        FunctionConfig::from_lookup(|k| (k == "SELFHEAL_KUBECONFIG").then(|| path.clone()))
            .unwrap();
    (server, AppState::new(config).await.unwrap(), dir)
}

/// `verify` of checkout with a 660 s budget of which `spent` is gone.
async fn verify(state: &AppState, spent: Duration) -> (VerifyOutput, Duration) {
    let started_at = jiff::Timestamp::now() - jiff::SignedDuration::try_from(spent).unwrap();
    let payload = json!({
        "target": {"namespace": "shop", "deployment": "checkout"},
        "watch": {"startedAt": started_at.to_string(), "budgetSeconds": 660}
    });
    let started = Instant::now();
    let out = handle_verify(state, LambdaEvent::new(payload, Context::default()))
        .await
        .unwrap();
    (out, started.elapsed())
}

#[tokio::test]
async fn the_watch_never_outlasts_the_budget() {
    let (_server, state, _dir) = stuck_rollout().await;
    let (out, took) = verify(&state, Duration::from_secs(658)).await;
    assert_eq!(out.status.state, RolloutState::Waiting, "{out:?}");
    assert_eq!(out.remaining_seconds, Some(0));
    assert!(
        (Duration::from_millis(1500)..Duration::from_secs(4)).contains(&took),
        "{took:?}"
    );
    let (out, took) = verify(&state, Duration::from_secs(700)).await;
    assert_eq!(
        (out.status.state, out.remaining_seconds),
        (RolloutState::Waiting, Some(0))
    );
    assert!(
        took < Duration::from_secs(1),
        "a spent budget is one read, took {took:?}"
    );
    assert_eq!(
        serde_json::to_value(&out).unwrap()["remainingSeconds"],
        0,
        "CheckRollout reads remainingSeconds"
    );
}

#[tokio::test]
async fn done_comes_the_moment_the_rollout_finishes_with_the_budget_left() {
    let (server, state, _dir) = stuck_rollout().await;
    server
        .controller()
        .resume_automatic_after(Duration::from_millis(300));
    let (out, took) = verify(&state, Duration::from_secs(10)).await;
    assert_eq!(out.status.state, RolloutState::Done, "{out:?}");
    assert!(took < Duration::from_secs(3), "{took:?}");
    let left = out.remaining_seconds.unwrap();
    assert!((645..=650).contains(&left), "{left} s left");
    // The answer counts its window, so the state machine needs no counter.
    let watch = out.watch.unwrap();
    assert_eq!(watch.attempts, 1);
    let elapsed = watch.finished_at.duration_since(watch.started_at);
    assert!(
        (jiff::SignedDuration::from_secs(10)..jiff::SignedDuration::from_secs(14))
            .contains(&elapsed),
        "{watch:?}"
    );
}
