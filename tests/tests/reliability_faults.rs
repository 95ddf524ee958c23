//! Faults through the real remediation path: the real `rollback` Lambda
//! handler (`selfheal_lambda::handle_action`, the function the binary runs,
//! with its state built as at cold start) and the kube adapter against the
//! test API server with injected faults. Every test asserts the final
//! Deployment: exactly the intended change, or none.
//!
//! Retries: the adapter re-plans on 409/422 and after a PATCH without an
//! answer (bounded by the re-plan budget); it does not retry 5xx itself. Those
//! surface as `RetryableApiError`, which the state machine's `Retry`
//! (remediate-deployment.asl.json: 3 attempts, 2 s backoff) retries, so the
//! 5xx tests drive the handler the way that `Retry` does: up to 4 invocations.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "reliability_common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use common::{API_1, API_2, API_3, Cluster, ENVOY, annotation, invoke_rollback};
use selfheal_core::{Guard, OutcomeStatus, Policy, RemediationOutcome};
use selfheal_lambda::HandlerError;
use selfheal_testserver::Reset;
use serde_json::json;

/// What every plan reads before it writes: the Deployment, its ReplicaSets
/// and pods (the request log's lines).
const READS: &[&str] = &["GET checkout 200", "GET replicasets 200", "GET pods 200"];

/// `checkout` mid bad rollout, and the `rollback` handler's state for it.
async fn checkout_and_handler() -> (Cluster, selfheal_lambda::AppState) {
    let c = Cluster::with_bad_rollout(&["checkout"]).await;
    let state = c.handler_state(&[]).await;
    (c, state)
}

/// The state machine's `Retry` on `RetryableApiError`: first try + 3 retries.
const STATE_MACHINE_ATTEMPTS: usize = 4;

/// The intended change and nothing else: api back to 1.0.0, envoy untouched,
/// audit annotations written, exactly one audit Event.
fn assert_rolled_back_once(c: &Cluster) {
    assert_eq!(c.image("checkout", "api"), API_1);
    assert_eq!(c.image("checkout", "envoy"), ENVOY);
    let d = c.deployment("checkout");
    assert_eq!(d["metadata"]["annotations"]["team"], "payments");
    let bad = annotation(&d, "selfheal.dev/bad-images").expect("bad-images written");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&bad).unwrap(),
        json!({"api": [API_2]})
    );
    assert_eq!(c.rollback_events(), 1, "exactly one audit Event");
    let applied = c.accepted_patches();
    assert!(
        applied <= 1,
        "at most one PATCH accepted, log {:?}",
        c.log()
    );
}

/// Nothing written by selfheal: the bad image (or whatever a concurrent
/// writer left) stays, no audit annotation, no Event.
fn assert_untouched_by_selfheal(c: &Cluster, api: &str) {
    assert_eq!(c.image("checkout", "api"), api);
    assert_eq!(c.image("checkout", "envoy"), ENVOY);
    let d = c.deployment("checkout");
    assert_eq!(annotation(&d, "selfheal.dev/last-remediation"), None);
    assert_eq!(annotation(&d, "selfheal.dev/bad-images"), None);
    assert_eq!(c.rollback_events(), 0);
}

// --------------------------------------------------------------- 409 / 422 --

#[tokio::test]
async fn conflict_409_on_first_patch_replans_and_applies() {
    let (c, state) = checkout_and_handler().await;
    let faults = c.server.faults();
    let inner = faults.clone();
    faults.before_next("PATCH", move || {
        inner.fail_next(1, 409);
    });
    let outcome = invoke_rollback(&state, "checkout", "exec-409")
        .await
        .unwrap();
    assert_eq!(outcome.status, OutcomeStatus::Applied, "{outcome:?}");
    assert_eq!(outcome.changes.len(), 1);
    assert_eq!(
        (
            outcome.changes[0].from.as_str(),
            outcome.changes[0].to.as_str()
        ),
        (API_2, API_1)
    );
    assert_eq!(
        c.log(),
        [
            READS,
            &["PATCH checkout 409"],
            READS,
            &["PATCH checkout 200", "POST events 201"]
        ]
        .concat()
    );
    assert_rolled_back_once(&c);
}

#[tokio::test]
async fn conflict_409_after_someone_paused_it_is_refused_by_the_replan() {
    let (c, state) = checkout_and_handler().await;
    let (faults, writer) = (c.server.faults(), c.store_writer());
    let inner = faults.clone();
    faults.before_next("PATCH", move || {
        // `kubectl rollout pause` lands first; our write then conflicts.
        writer.edit("checkout", |d| d["spec"]["paused"] = json!(true));
        inner.fail_next(1, 409);
    });
    let outcome = invoke_rollback(&state, "checkout", "exec-409-paused")
        .await
        .unwrap();
    assert_refused(&outcome, Guard::Paused, "paused deployment");
    assert!(outcome.changes.is_empty());
    assert_untouched_by_selfheal(&c, API_2);
    assert_eq!(c.deployment("checkout")["spec"]["paused"], true);
}

#[tokio::test]
async fn unprocessable_422_concurrent_hotfix_image_is_kept_not_overwritten() {
    let (c, state) = checkout_and_handler().await;
    let writer = c.store_writer();
    // CI ships a hotfix between our read and our PATCH: the patch's `test`
    // ops (generation, image) fail with 422.
    c.server.faults().before_next("PATCH", move || {
        writer.set_image("checkout", "api", API_3);
    });
    let outcome = invoke_rollback(&state, "checkout", "exec-422")
        .await
        .unwrap();
    let moved = format!("container api now runs {API_3} (we read {API_2})");
    assert_refused(&outcome, Guard::Conflict, &moved);
    assert_eq!(
        c.log(),
        [READS, &["PATCH checkout 422"], READS].concat(),
        "one rejected PATCH, then a re-read and no second write"
    );
    assert_untouched_by_selfheal(&c, API_3);
}

#[tokio::test]
async fn unprocessable_422_unrelated_concurrent_scale_replans_and_keeps_both_changes() {
    let c = Cluster::with_bad_rollout(&["checkout"]).await;
    let writer = c.store_writer();
    c.server.faults().before_next("PATCH", move || {
        writer.edit("checkout", |d| d["spec"]["replicas"] = json!(3));
    });
    let outcome = c
        .remediator(Policy::default())
        .remediate(&common::rollback_request("checkout", "exec-422-scale"))
        .await
        .unwrap();
    assert_eq!(outcome.status, OutcomeStatus::Applied, "{outcome:?}");
    let patches: Vec<String> = c
        .log()
        .into_iter()
        .filter(|l| l.starts_with("PATCH"))
        .collect();
    assert_eq!(patches, ["PATCH checkout 422", "PATCH checkout 200"]);
    assert_rolled_back_once(&c);
    assert_eq!(
        c.deployment("checkout")["spec"]["replicas"],
        3,
        "their scale stays"
    );
}

#[tokio::test]
async fn status_only_update_between_read_and_patch_does_not_conflict() {
    let (c, state) = checkout_and_handler().await;
    let writer = c.store_writer();
    let before = c.deployment("checkout");
    // The deployment controller updates status mid-rollout (new
    // resourceVersion, same generation): the guarded fields did not move.
    c.server.faults().before_next("PATCH", move || {
        writer.edit_status("checkout", |d| {
            d["status"]["unavailableReplicas"] = json!(1);
            d["status"]["readyReplicas"] = json!(0);
        });
    });
    let outcome = invoke_rollback(&state, "checkout", "exec-status-churn")
        .await
        .unwrap();
    assert_eq!(outcome.status, OutcomeStatus::Applied, "{outcome:?}");
    assert_eq!(
        c.log(),
        [READS, &["PATCH checkout 200", "POST events 201"]].concat(),
        "no 422, no re-read"
    );
    assert_rolled_back_once(&c);
    let after = c.deployment("checkout");
    assert_ne!(
        after["metadata"]["resourceVersion"], before["metadata"]["resourceVersion"],
        "the status write did happen"
    );
}

#[tokio::test]
async fn label_only_change_between_read_and_patch_is_replanned_opt_out_refused() {
    let (c, state) = checkout_and_handler().await;
    let writer = c.store_writer();
    let generation = c.deployment("checkout")["metadata"]["generation"].clone();
    // Someone opts the Deployment out (a label write: same generation)
    // between our read and our PATCH: the labels `test` op fails, and the
    // re-plan sees the opt-out.
    c.server.faults().before_next("PATCH", move || {
        writer.edit("checkout", |d| {
            d["metadata"]["labels"]
                .as_object_mut()
                .unwrap()
                .remove("selfheal.dev/enabled");
        });
    });
    let outcome = invoke_rollback(&state, "checkout", "exec-opt-out")
        .await
        .unwrap();
    assert_eq!(outcome.status, OutcomeStatus::Refused, "{outcome:?}");
    assert_eq!(outcome.guard, Some(Guard::OptIn));
    assert_eq!(c.log(), [READS, &["PATCH checkout 422"], READS].concat());
    assert_untouched_by_selfheal(&c, API_2);
    assert_eq!(
        c.deployment("checkout")["metadata"]["generation"],
        generation,
        "a label write keeps the generation, so only the labels test caught it"
    );
}

// ------------------------------------------------------- 5xx and latency --

#[tokio::test]
async fn server_errors_5xx_burst_within_retry_budget_applies_exactly_once() {
    let (c, state) = checkout_and_handler().await;
    c.server.faults().fail_next(3, 503);
    let mut errors = Vec::new();
    let mut outcome = None;
    for _ in 0..STATE_MACHINE_ATTEMPTS {
        match invoke_rollback(&state, "checkout", "exec-5xx").await {
            Ok(o) => {
                outcome = Some(o);
                break;
            }
            Err(e) => {
                assert!(e.is_retryable(), "{e}");
                // Nothing half-applied between attempts.
                assert_untouched_by_selfheal(&c, API_2);
                errors.push(e.error_type());
            }
        }
    }
    assert_eq!(errors, ["RetryableApiError"; 3]);
    let outcome = outcome.expect("the fourth attempt succeeds");
    assert_eq!(outcome.status, OutcomeStatus::Applied);
    assert_rolled_back_once(&c);
}

#[tokio::test]
async fn server_errors_5xx_beyond_retry_budget_end_retryable_and_unchanged() {
    let (c, state) = checkout_and_handler().await;
    c.server.faults().fail_next(1000, 500);
    for _ in 0..STATE_MACHINE_ATTEMPTS {
        let e = invoke_rollback(&state, "checkout", "exec-500")
            .await
            .unwrap_err();
        assert_eq!(e.error_type(), "RetryableApiError", "{e}");
        assert!(e.to_string().contains("500"), "{e}");
    }
    assert!(c.log().iter().all(|l| l.ends_with(" 500")), "{:?}", c.log());
    assert_untouched_by_selfheal(&c, API_2);
}

#[tokio::test]
async fn latency_2s_per_request_still_applies_once_within_the_handler_timeout() {
    let (c, state) = checkout_and_handler().await;
    c.server.faults().latency(Duration::from_secs(2));
    let started = Instant::now();
    let outcome = invoke_rollback(&state, "checkout", "exec-slow")
        .await
        .unwrap();
    let took = started.elapsed();
    c.server.faults().clear();
    assert_eq!(outcome.status, OutcomeStatus::Applied, "{outcome:?}");
    // GET + LIST + PATCH + Event POST, each 2 s late, well inside the
    // adapter's 20 s read timeout and a 60 s handler timeout.
    assert!(took >= Duration::from_secs(8), "{took:?}");
    assert!(took < Duration::from_secs(20), "{took:?}");
    assert_rolled_back_once(&c);
}

// ------------------------------------------------------- connection reset --

/// One `rollback` of `checkout` while the next `resets` PATCHes lose their
/// connection (`when`: before or after the server applied them).
async fn rollback_with_resets(
    resets: u32,
    when: Reset,
    execution: &str,
) -> (Cluster, Result<RemediationOutcome, HandlerError>) {
    let (c, state) = checkout_and_handler().await;
    c.server.faults().reset_next(resets, "PATCH", when);
    let outcome = invoke_rollback(&state, "checkout", execution).await;
    (c, outcome)
}

#[tokio::test]
async fn connection_reset_after_the_patch_applied_reports_applied_from_a_reread() {
    let (c, outcome) = rollback_with_resets(1, Reset::AfterApplying, "exec-reset-after").await;
    let outcome = outcome.unwrap();
    assert_eq!(outcome.status, OutcomeStatus::Applied, "{outcome:?}");
    assert!(
        outcome.message.contains("confirmed by re-reading"),
        "{}",
        outcome.message
    );
    assert_eq!(outcome.changes[0].to, API_1);
    assert_eq!(
        c.log(),
        [
            READS,
            &["PATCH checkout 0", "GET checkout 200", "POST events 201"]
        ]
        .concat(),
        "no second PATCH: the re-read found our audit record"
    );
    assert_rolled_back_once(&c);
}

#[tokio::test]
async fn connection_reset_before_the_patch_applied_replans_and_applies_once() {
    let (c, outcome) = rollback_with_resets(1, Reset::BeforeApplying, "exec-reset-before").await;
    let outcome = outcome.unwrap();
    assert_eq!(outcome.status, OutcomeStatus::Applied, "{outcome:?}");
    assert!(!outcome.message.contains("confirmed by re-reading"));
    assert_eq!(
        c.log(),
        [
            READS,
            &["PATCH checkout 0", "GET checkout 200"],
            READS,
            &["PATCH checkout 200", "POST events 201"]
        ]
        .concat()
    );
    assert_rolled_back_once(&c);
}

#[tokio::test]
async fn connection_reset_on_every_patch_ends_retryable_and_unchanged() {
    let (c, outcome) = rollback_with_resets(100, Reset::BeforeApplying, "exec-reset-always").await;
    let e = outcome.unwrap_err();
    assert_eq!(e.error_type(), "RetryableApiError", "{e}");
    let resets = c.log().iter().filter(|l| *l == "PATCH checkout 0").count();
    assert_eq!(resets, 4, "first try + re-plan budget of 3: {:?}", c.log());
    assert_untouched_by_selfheal(&c, API_2);
}

/// `outcome` is a refusal by `guard` whose message mentions `mentions`.
fn assert_refused(outcome: &RemediationOutcome, guard: Guard, mentions: &str) {
    assert_eq!(outcome.status, OutcomeStatus::Refused, "{outcome:?}");
    assert_eq!(outcome.guard, Some(guard), "{outcome:?}");
    assert!(outcome.message.contains(mentions), "{}", outcome.message);
}
