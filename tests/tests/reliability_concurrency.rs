//! Concurrency: two `selfheal run` processes on the same Deployment, a burst
//! of repeated alarms, and a rollback storm across 100 Deployments held to
//! the policy's `max_actions_per_window` (guard `rateLimit`). Each test
//! asserts the final Deployments, not just outcomes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "reliability_common/mod.rs"]
mod common;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{API_1, API_2, Cluster, NOW, annotation, clock_at, invoke_rollback, rollback_request};
use selfheal_core::{Guard, OutcomeStatus, Policy};
use serde_json::Value;

/// The `selfheal` CLI (crates/selfheal-cli), built with the other workspace
/// binaries (see `build_workspace_bins` for why one selection).
fn selfheal_binary() -> PathBuf {
    selfheal_tests::tools::workspace_bin("selfheal")
}

#[tokio::test]
async fn two_cli_processes_on_the_same_deployment_exactly_one_applies() {
    let bin = selfheal_binary();
    let c = Cluster::with_bad_rollout(&["checkout"]).await;
    // Both processes read before either writes often enough; whatever the
    // interleaving, the guarded patch and the cooldown leave one winner.
    c.server.faults().latency(Duration::from_millis(150));
    let mut children = Vec::new();
    for i in 0..2 {
        let request = c.dir.path().join(format!("request-{i}.json"));
        std::fs::write(
            &request,
            serde_json::to_string(&rollback_request("checkout", &format!("cli-{i}"))).unwrap(),
        )
        .unwrap();
        let mut cmd = Command::new(&bin);
        cmd.arg("run")
            .arg("--request")
            .arg(&request)
            .arg("--kubeconfig")
            .arg(&c.kubeconfig)
            .env_remove("KUBECONFIG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (name, _, _) in selfheal_core::POLICY_VARIABLES {
            cmd.env_remove(name);
        }
        children.push(cmd.spawn().expect("spawn selfheal"));
    }
    let outputs: Vec<_> = tokio::task::spawn_blocking(move || {
        children
            .into_iter()
            .map(|child| child.wait_with_output().unwrap())
            .collect::<Vec<_>>()
    })
    .await
    .unwrap();
    c.server.faults().clear();
    let mut outcomes: Vec<Value> = outputs
        .iter()
        .map(|o| {
            assert!(
                o.status.success(),
                "selfheal failed: {}",
                String::from_utf8_lossy(&o.stderr)
            );
            serde_json::from_slice(&o.stdout).unwrap()
        })
        .collect();
    outcomes.sort_by_key(|o| o["status"].as_str().unwrap().to_owned());
    assert_eq!(outcomes[0]["status"], "applied", "{outcomes:#?}");
    assert_eq!(outcomes[1]["status"], "refused", "{outcomes:#?}");
    assert_eq!(outcomes[1]["guard"], "cooldown");
    assert!(
        outcomes[1]["message"]
            .as_str()
            .unwrap()
            .contains("cooldown"),
        "{}",
        outcomes[1]["message"]
    );
    assert_rolled_back_once(&c);
}

#[tokio::test]
async fn twenty_repeated_alarms_within_the_cooldown_roll_back_exactly_once() {
    let c = Cluster::with_bad_rollout(&["checkout"]).await;
    let state = std::sync::Arc::new(c.handler_state(&[]).await);
    // All twenty invocations at once, as a flapping alarm re-notifying would
    // start twenty executions (distinct names, so ingest dedup does not help).
    let runs = (0..20).map(|i| {
        let state = state.clone();
        tokio::spawn(
            async move { invoke_rollback(&state, "checkout", &format!("alarm-{i}")).await },
        )
    });
    let outcomes: Vec<_> = futures::future::join_all(runs)
        .await
        .into_iter()
        .map(|r| r.unwrap().unwrap())
        .collect();
    let applied = outcomes
        .iter()
        .filter(|o| o.status == OutcomeStatus::Applied)
        .count();
    assert_eq!(applied, 1, "{outcomes:#?}");
    for o in outcomes
        .iter()
        .filter(|o| o.status != OutcomeStatus::Applied)
    {
        assert_eq!(o.status, OutcomeStatus::Refused, "{o:?}");
        assert_eq!(o.guard, Some(Guard::Cooldown), "{o:?}");
    }
    assert_rolled_back_once(&c);
}

#[tokio::test]
async fn rollback_storm_across_100_deployments_stops_at_max_actions_per_window() {
    let names: Vec<String> = (0..100).map(|i| format!("svc-{i:03}")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let started = std::time::Instant::now();
    let c = Cluster::fleet_with_bad_rollout(&refs).await;
    eprintln!("storm: 100 deployments seeded in {:?}", started.elapsed());
    let policy = Policy::from_lookup(|k| match k {
        "SELFHEAL_MAX_ACTIONS" => Some("10".into()),
        "SELFHEAL_ACTION_WINDOW_SECONDS" => Some("600".into()),
        _ => None,
    })
    .unwrap();
    let remediator = c.remediator(policy.clone());
    let mut applied = Vec::new();
    for name in &names {
        let outcome = remediator
            .remediate(&rollback_request(name, &format!("storm-{name}")))
            .await
            .unwrap();
        match outcome.status {
            OutcomeStatus::Applied => applied.push(name.clone()),
            OutcomeStatus::Refused => {
                assert_eq!(outcome.guard, Some(Guard::RateLimit), "{outcome:?}");
                assert!(
                    outcome.message.contains("at most 10"),
                    "{}",
                    outcome.message
                );
                assert!(outcome.changes.is_empty());
            }
            other => panic!("{name}: unexpected {other:?}"),
        }
    }
    eprintln!("storm: 100 remediations done at {:?}", started.elapsed());
    assert_eq!(applied, names[..10], "the first ten act, in order");
    for (i, name) in names.iter().enumerate() {
        let expected = if i < 10 { API_1 } else { API_2 };
        assert_eq!(c.image(name, "api"), expected, "{name}");
        let d = c.deployment(name);
        assert_eq!(
            annotation(&d, "selfheal.dev/last-remediation").is_some(),
            i < 10,
            "{name}"
        );
    }
    assert_eq!(c.rollback_events(), 10);

    // Acting again on one already counted is not a new Deployment: not limited.
    let again = remediator
        .remediate(&rollback_request(&names[0], "storm-again"))
        .await
        .unwrap();
    assert_ne!(again.guard, Some(Guard::RateLimit), "{again:?}");

    // Once the window has passed, the next Deployment is acted on.
    let later: jiff::Timestamp = NOW.parse().unwrap();
    let later = (later + jiff::SignedDuration::from_secs(601)).to_string();
    let outcome = c
        .remediator(policy)
        .with_clock(clock_at(&later))
        .remediate(&rollback_request(&names[10], "storm-later"))
        .await
        .unwrap();
    assert_eq!(outcome.status, OutcomeStatus::Applied, "{outcome:?}");
    assert_eq!(c.image(&names[10], "api"), API_1);
}

/// checkout runs `API_1` again after exactly one rollback: one audit Event,
/// one accepted PATCH.
fn assert_rolled_back_once(c: &Cluster) {
    assert_eq!(c.image("checkout", "api"), API_1);
    assert_eq!(c.rollback_events(), 1);
    assert_eq!(c.accepted_patches(), 1, "{:?}", c.log());
}
