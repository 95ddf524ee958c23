//! `kubectl rollout status` rules and messages (docs/kubectl-semantics.md §6,
//! §7).
//!
//! A line-for-line port of kubectl's `DeploymentStatusViewer`,
//! `StatefulSetStatusViewer` and `DaemonSetStatusViewer` `Status` for
//! revision 0, so a verify step and a human running kubectl agree on the
//! words as well as the verdict. kubectl's trailing newline is dropped.
//! The pause or hold (and `selfheal.dev/paused-by`) is reported beside the
//! verdict.

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};

use crate::keys;
use crate::workload::WorkloadRef;

/// Progressing reason the controller sets once `progressDeadlineSeconds` passed.
pub const TIMED_OUT_REASON: &str = "ProgressDeadlineExceeded";

/// The record type is `verify`'s output, so it lives with the contract.
pub use selfheal_contract::rollout::{RolloutState, RolloutStatus};

/// kubectl's error for a StatefulSet or DaemonSet that does not roll
/// (`OnDelete`); kubectl prints it after `error: ` and exits 1.
pub const ROLLING_UPDATE_ONLY: &str =
    "rollout status is only available for RollingUpdate strategy type";

/// Evaluate like kubectl's status viewer for the workload's kind (revision
/// 0), and say whether it is paused (held) and by whom.
///
/// Absent numbers count as 0, as Go's zero values do; a workload without a
/// status therefore waits for its spec to be observed. A StatefulSet or
/// DaemonSet whose strategy is not `RollingUpdate` is `done` with kubectl's
/// error as the message: kubectl's viewer answers "done" too (it stops
/// watching), as there is no rollout to wait for.
pub fn rollout_status<'w>(workload: impl Into<WorkloadRef<'w>>) -> RolloutStatus {
    let workload = workload.into();
    let mut status = match workload {
        WorkloadRef::Deployment(d) => kubectl_status(d),
        WorkloadRef::StatefulSet(s) => statefulset_status(s),
        WorkloadRef::DaemonSet(d) => daemonset_status(d),
    };
    status.paused = workload.hold().is_held();
    if status.paused {
        status.paused_by = workload
            .annotation(keys::PAUSED_BY)
            .filter(|by| !by.is_empty())
            .map(str::to_owned);
    }
    status
}

/// kubectl's `StatefulSetStatusViewer.Status`. With the API's defaults a
/// RollingUpdate StatefulSet always has `rollingUpdate.partition` (0 unless
/// set), so kubectl reports every finished update as a partitioned one.
fn statefulset_status(sts: &StatefulSet) -> RolloutStatus {
    let spec = sts.spec.clone().unwrap_or_default();
    let status = sts.status.clone().unwrap_or_default();
    let strategy = spec.update_strategy.unwrap_or_default();
    if strategy.type_.as_deref() != Some("RollingUpdate") {
        return RolloutStatus::new(RolloutState::Done, ROLLING_UPDATE_ONLY.into());
    }
    let observed = status.observed_generation.unwrap_or(0);
    if observed == 0 || sts.metadata.generation.unwrap_or(0) > observed {
        return RolloutStatus::new(
            RolloutState::Waiting,
            "Waiting for statefulset spec update to be observed...".into(),
        );
    }
    // i64: Go's int32 arithmetic wraps where Rust's would panic on the
    // values a malformed object can hold.
    let ready = i64::from(status.ready_replicas.unwrap_or(0));
    let updated = i64::from(status.updated_replicas.unwrap_or(0));
    let replicas = spec.replicas.map(i64::from);
    if let Some(replicas) = replicas
        && ready < replicas
    {
        return RolloutStatus::new(
            RolloutState::Waiting,
            format!("Waiting for {} pods to be ready...", replicas - ready),
        );
    }
    if let Some(rolling) = strategy.rolling_update {
        if let (Some(replicas), Some(partition)) = (replicas, rolling.partition.map(i64::from))
            && updated < replicas - partition
        {
            return RolloutStatus::new(
                RolloutState::Waiting,
                format!(
                    "Waiting for partitioned roll out to finish: {updated} out of {} new pods have been updated...",
                    replicas - partition
                ),
            );
        }
        return RolloutStatus::new(
            RolloutState::Done,
            format!("partitioned roll out complete: {updated} new pods have been updated..."),
        );
    }
    let update_revision = status.update_revision.unwrap_or_default();
    let current_revision = status.current_revision.unwrap_or_default();
    if update_revision != current_revision {
        return RolloutStatus::new(
            RolloutState::Waiting,
            format!(
                "waiting for statefulset rolling update to complete {updated} pods at revision {update_revision}..."
            ),
        );
    }
    RolloutStatus::new(
        RolloutState::Done,
        format!(
            "statefulset rolling update complete {} pods at revision {current_revision}...",
            status.current_replicas.unwrap_or(0)
        ),
    )
}

/// kubectl's `DaemonSetStatusViewer.Status`.
fn daemonset_status(ds: &DaemonSet) -> RolloutStatus {
    if WorkloadRef::DaemonSet(ds).strategy_type() != Some("RollingUpdate") {
        return RolloutStatus::new(RolloutState::Done, ROLLING_UPDATE_ONLY.into());
    }
    let name = ds.metadata.name.as_deref().unwrap_or_default();
    let status = ds.status.clone().unwrap_or_default();
    if ds.metadata.generation.unwrap_or(0) > status.observed_generation.unwrap_or(0) {
        return RolloutStatus::new(
            RolloutState::Waiting,
            "Waiting for daemon set spec update to be observed...".into(),
        );
    }
    let desired = status.desired_number_scheduled;
    let updated = status.updated_number_scheduled.unwrap_or(0);
    let available = status.number_available.unwrap_or(0);
    if updated < desired {
        return RolloutStatus::new(
            RolloutState::Waiting,
            format!(
                "Waiting for daemon set {name:?} rollout to finish: {updated} out of {desired} new pods have been updated..."
            ),
        );
    }
    if available < desired {
        return RolloutStatus::new(
            RolloutState::Waiting,
            format!(
                "Waiting for daemon set {name:?} rollout to finish: {available} of {desired} updated pods are available..."
            ),
        );
    }
    RolloutStatus::new(
        RolloutState::Done,
        format!("daemon set {name:?} successfully rolled out"),
    )
}

fn kubectl_status(deployment: &Deployment) -> RolloutStatus {
    let name = deployment.metadata.name.as_deref().unwrap_or_default();
    let generation = deployment.metadata.generation.unwrap_or(0);
    let status = deployment.status.clone().unwrap_or_default();
    if generation > status.observed_generation.unwrap_or(0) {
        return RolloutStatus::new(
            RolloutState::Waiting,
            "Waiting for deployment spec update to be observed...".into(),
        );
    }
    let timed_out = status
        .conditions
        .iter()
        .flatten()
        .any(|c| c.type_ == "Progressing" && c.reason.as_deref() == Some(TIMED_OUT_REASON));
    if timed_out {
        return RolloutStatus::new(
            RolloutState::Failed,
            format!("deployment {name:?} exceeded its progress deadline"),
        );
    }
    let updated = i64::from(status.updated_replicas.unwrap_or(0));
    let replicas = i64::from(status.replicas.unwrap_or(0));
    let available = i64::from(status.available_replicas.unwrap_or(0));
    let waiting = |detail: String| {
        RolloutStatus::new(
            RolloutState::Waiting,
            format!("Waiting for deployment {name:?} rollout to finish: {detail}..."),
        )
    };
    if let Some(desired) = deployment
        .spec
        .as_ref()
        .and_then(|s| s.replicas)
        .map(i64::from)
        && updated < desired
    {
        return waiting(format!(
            "{updated} out of {desired} new replicas have been updated"
        ));
    }
    if replicas > updated {
        return waiting(format!(
            "{} old replicas are pending termination",
            replicas - updated
        ));
    }
    if available < updated {
        return waiting(format!(
            "{available} of {updated} updated replicas are available"
        ));
    }
    RolloutStatus::new(
        RolloutState::Done,
        format!("deployment {name:?} successfully rolled out"),
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::testutil::fixture;

    fn recorded() -> Vec<(String, Deployment)> {
        fixture("status-progression.json")["steps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                (
                    s["note"].as_str().unwrap().to_owned(),
                    serde_json::from_value(s["deployment"].clone()).unwrap(),
                )
            })
            .collect()
    }

    /// A complete rollout at revision 3, for the tests to edit its status.
    fn revision_3() -> Deployment {
        serde_json::from_value(crate::testutil::deployment_json(&[("api", "api:1")], 3)).unwrap()
    }

    #[test]
    fn recorded_progression_matches_kubectl_rules_step_by_step() {
        use RolloutState::*;
        const DONE: &str = r#"deployment "checkout" successfully rolled out"#;
        const OBSERVING: &str = "Waiting for deployment spec update to be observed...";
        const UPDATING: &str = r#"Waiting for deployment "checkout" rollout to finish: 1 out of 2 new replicas have been updated..."#;
        const TERMINATING: &str = r#"Waiting for deployment "checkout" rollout to finish: 1 old replicas are pending termination..."#;
        const STUCK: &str = r#"Waiting for deployment "stuck" rollout to finish: 0 of 1 updated replicas are available..."#;
        const EXCEEDED: &str = r#"deployment "stuck" exceeded its progress deadline"#;
        let expected = [
            (Done, DONE),
            // PATCH response: generation 15, observedGeneration 14.
            (Waiting, OBSERVING),
            (Waiting, UPDATING),
            (Waiting, UPDATING),
            (Waiting, UPDATING),
            (Waiting, TERMINATING),
            (Done, DONE),
            (Done, DONE),
            // `stuck`: created (no status yet), then waiting, then deadline exceeded.
            (Waiting, OBSERVING),
            (Waiting, STUCK),
            (Waiting, STUCK),
            (Failed, EXCEEDED),
        ];
        let steps = recorded();
        assert_eq!(steps.len(), expected.len());
        for ((note, deployment), (state, message)) in steps.iter().zip(expected) {
            let status = rollout_status(deployment);
            assert_eq!(status.state, state, "step {note:?}");
            assert_eq!(status.message, message, "step {note:?}");
        }
    }

    #[test]
    fn old_replicas_pending_and_available_rules_in_order() {
        let mut d = revision_3();
        let status = d.status.as_mut().unwrap();
        status.replicas = Some(4);
        status.updated_replicas = Some(2);
        assert_eq!(
            rollout_status(&d).message,
            r#"Waiting for deployment "checkout" rollout to finish: 2 old replicas are pending termination..."#
        );
        let status = d.status.as_mut().unwrap();
        status.replicas = Some(2);
        status.available_replicas = Some(1);
        let s = rollout_status(&d);
        assert_eq!(s.state, RolloutState::Waiting);
        assert_eq!(
            s.message,
            r#"Waiting for deployment "checkout" rollout to finish: 1 of 2 updated replicas are available..."#
        );
    }

    #[test]
    fn a_pause_and_who_made_it_are_reported_beside_kubectl_verdict() {
        let mut d = revision_3();
        let running = rollout_status(&d);
        assert_eq!(
            serde_json::to_value(&running).unwrap(),
            serde_json::json!({"state": "done", "message": r#"deployment "checkout" successfully rolled out"#}),
            "no pause fields when not paused"
        );
        d.spec.as_mut().unwrap().paused = Some(true);
        let by_someone = rollout_status(&d);
        assert_eq!(
            (by_someone.paused, by_someone.paused_by.as_deref()),
            (true, None)
        );
        assert_eq!(
            by_someone.message, running.message,
            "kubectl's words unchanged"
        );
        d.metadata
            .annotations
            .get_or_insert_default()
            .insert(keys::PAUSED_BY.into(), keys::PAUSED_BY_SELFHEAL.into());
        assert_eq!(
            serde_json::to_value(rollout_status(&d)).unwrap(),
            serde_json::json!({"state": "done", "message": r#"deployment "checkout" successfully rolled out"#,
                               "paused": true, "pausedBy": "selfheal"})
        );
        d.spec.as_mut().unwrap().paused = Some(false);
        let resumed = rollout_status(&d);
        assert_eq!(
            (resumed.paused, resumed.paused_by),
            (false, None),
            "a stale paused-by on a running Deployment is not reported"
        );
    }

    #[test]
    fn extreme_counts_do_not_overflow() {
        let mut d = revision_3();
        d.status.as_mut().unwrap().updated_replicas = Some(i32::MIN);
        d.status.as_mut().unwrap().replicas = Some(i32::MAX);
        assert_eq!(rollout_status(&d).state, RolloutState::Waiting);
        let mut sts = crate::testutil::Recorded::ledger();
        sts.object["spec"]["replicas"] = serde_json::json!(i32::MAX);
        sts.object["spec"]["updateStrategy"]["rollingUpdate"]["partition"] =
            serde_json::json!(i32::MIN);
        sts.object["status"]["readyReplicas"] = serde_json::json!(i32::MAX);
        let s = sts.with(|w| rollout_status(w));
        assert_eq!(
            s.message,
            "Waiting for partitioned roll out to finish: 2 out of 4294967295 new pods have been updated..."
        );
        sts.object["status"]["readyReplicas"] = serde_json::json!(i32::MIN);
        assert!(
            sts.with(|w| rollout_status(w))
                .message
                .starts_with("Waiting for 4294967295 pods")
        );
    }

    #[test]
    fn deadline_wins_over_replica_counts_but_not_over_unobserved_spec() {
        let mut d = revision_3();
        let status = d.status.as_mut().unwrap();
        status.updated_replicas = Some(0);
        status.conditions.as_mut().unwrap()[1].reason = Some(TIMED_OUT_REASON.into());
        assert_eq!(rollout_status(&d).state, RolloutState::Failed);
        d.metadata.generation = Some(4);
        assert_eq!(
            rollout_status(&d).message,
            "Waiting for deployment spec update to be observed..."
        );
    }
}
