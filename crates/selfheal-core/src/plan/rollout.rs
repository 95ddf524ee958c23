//! pause, resume and restart: `kubectl rollout pause|resume|restart`
//! semantics as JSON Patches, plus selfheal's pause bookkeeping.
//!
//! A StatefulSet or DaemonSet cannot be paused (`kubectl rollout pause`
//! refuses both), so selfheal's `pause` holds it with its update strategy
//! and `resume` restores the strategy the hold recorded
//! (docs/kubectl-semantics.md §7).

use serde_json::{Map, Value};

use super::patch::{ptr, to_string};
use super::{Ctx, Decision, OutcomeStatus};
use crate::guards::Refusal;
use crate::workload::Hold;
use crate::{Error, Guard, WorkloadKind, keys, rollout_status};

/// How the workload is held, for messages.
fn describe(hold: Hold) -> String {
    match hold {
        Hold::None => "not held".into(),
        Hold::Paused => "spec.paused".into(),
        Hold::Partition {
            partition,
            replicas,
        } => format!("updateStrategy.rollingUpdate.partition {partition} of {replicas} replicas"),
        Hold::OnDelete => "updateStrategy OnDelete".into(),
    }
}

/// Pause. Already paused (or held) is `skipped` (kubectl errors). A pause
/// raised by an alarm (the request carries `alarm.impactScore`) must also
/// find a rollout in progress and a score at or above the policy threshold
/// (docs/guards.md §3); a manual pause pauses like kubectl. Marks the pause
/// `paused-by: selfheal`. A StatefulSet is held with `partition = replicas`,
/// a DaemonSet with `OnDelete`; the strategy replaced is recorded in
/// `selfheal.dev/held-strategy`.
pub(super) fn pause(ctx: &Ctx<'_>) -> Result<Decision, Error> {
    let workload = ctx.workload();
    let hold = workload.hold();
    if hold.is_held() {
        let message = match hold {
            Hold::Paused => format!("deployment {} is already paused", ctx.who),
            _ => format!(
                "{} {} is already held ({})",
                ctx.noun(),
                ctx.who,
                describe(hold)
            ),
        };
        return Ok(ctx.skipped(message));
    }
    // `partition = 0` would hold nothing, and resume would find no hold.
    if workload.kind() == WorkloadKind::StatefulSet && workload.replicas() == Some(0) {
        return Ok(ctx.skipped(format!(
            "statefulset {} has 0 replicas: there is no pod to hold",
            ctx.who
        )));
    }
    let impact = ctx.request().alarm.as_ref().and_then(|a| a.impact_score);
    if let Some(score) = impact {
        if !workload.rollout_in_progress() {
            let status = rollout_status(workload);
            return Ok(ctx.refused(Refusal::new(
                Guard::NoRolloutInProgress,
                format!(
                    "{} {} has no rollout in progress to pause ({})",
                    ctx.noun(),
                    ctx.who,
                    status.message
                ),
            )));
        }
        let threshold = ctx.input.policy.pause_impact_threshold;
        // A NaN score (a broken alarm) refuses too.
        if score.is_nan() || score < threshold {
            return Ok(ctx.refused(Refusal::new(
                Guard::ImpactBelowThreshold,
                format!(
                    "alarm impact score {score} is below the pause threshold {threshold} for {} {}",
                    ctx.noun(),
                    ctx.who
                ),
            )));
        }
    }
    let mut patch = ctx.patch()?;
    let mut message = match ctx.kind() {
        WorkloadKind::Deployment => {
            patch.add(ptr(["spec", "paused"]), Value::Bool(true));
            format!("paused deployment {}", ctx.who)
        }
        _ => {
            let previous = workload
                .update_strategy()
                .ok_or_else(|| ctx.invalid("no update strategy"))?;
            let held = workload
                .holding_strategy(&previous)
                .ok_or_else(|| ctx.invalid("spec.updateStrategy is not an object"))?;
            patch.add(ptr(["spec", "updateStrategy"]), held);
            patch.set_annotation(
                keys::HELD_STRATEGY,
                to_string("held-strategy annotation", &previous)?,
            );
            let how = match workload.replicas() {
                Some(replicas) => {
                    format!("updateStrategy.rollingUpdate.partition set to its {replicas} replicas")
                }
                None => "updateStrategy set to OnDelete".to_owned(),
            };
            format!(
                "held {} {}: {how} (the previous strategy is recorded for resume)",
                ctx.noun(),
                ctx.who
            )
        }
    };
    patch.set_annotation(keys::PAUSED_BY, keys::PAUSED_BY_SELFHEAL.to_owned());
    if let Some(score) = impact {
        message.push_str(&format!(" during its rollout (alarm impact score {score})"));
    }
    let outcome = ctx.outcome(OutcomeStatus::Applied, message);
    ctx.finish(patch, outcome)
}

/// Resume. Not paused (or held) is `skipped`. A pause or hold someone else
/// made is theirs to lift unless the request says `force`. A StatefulSet's
/// or DaemonSet's recorded strategy comes back exactly as it was.
pub(super) fn resume(ctx: &Ctx<'_>) -> Result<Decision, Error> {
    let deployment = ctx.kind() == WorkloadKind::Deployment;
    let hold = ctx.workload().hold();
    if !hold.is_held() {
        let state = if deployment { "paused" } else { "held" };
        return Ok(ctx.skipped(format!("{} {} is not {state}", ctx.noun(), ctx.who)));
    }
    if !ctx.paused_by_selfheal() && !ctx.request().force {
        let message = if deployment {
            format!(
                "deployment {} was paused by someone other than selfheal (no {}={}); set force to resume it anyway",
                ctx.who,
                keys::PAUSED_BY,
                keys::PAUSED_BY_SELFHEAL
            )
        } else {
            format!(
                "{} {} is held by someone other than selfheal ({}, and no {} recorded by a selfheal hold); set force to resume it anyway",
                ctx.noun(),
                ctx.who,
                describe(hold),
                keys::HELD_STRATEGY
            )
        };
        return Ok(ctx.refused(Refusal::new(Guard::Paused, message)));
    }
    let mut patch = ctx.patch()?;
    ctx.lift_hold(&mut patch)?;
    let outcome = ctx.outcome(
        OutcomeStatus::Applied,
        format!("resumed {} {}", ctx.noun(), ctx.who),
    );
    ctx.finish(patch, outcome)
}

/// Restart: stamp `kubectl.kubernetes.io/restartedAt` on the pod template, as
/// `kubectl rollout restart` does, which rolls every pod. A paused Deployment
/// is refused with kubectl's words, whoever paused it: the new template would
/// not roll out until resumed anyway. A StatefulSet or DaemonSet selfheal
/// holds is refused the same way (kubectl restarts them whatever their
/// strategy, so a hold someone else set is theirs and does not refuse).
pub(super) fn restart(ctx: &Ctx<'_>) -> Result<Decision, Error> {
    let hold = ctx.workload().hold();
    if hold == Hold::Paused {
        return Ok(ctx.refused(Refusal::new(
            Guard::Paused,
            format!(
                "deployments.apps {:?} can't restart paused deployment (run rollout resume first)",
                ctx.name()
            ),
        )));
    }
    if hold.is_held() && ctx.paused_by_selfheal() {
        return Ok(ctx.refused(Refusal::new(
            Guard::Paused,
            format!(
                "{}.apps {:?} is held by selfheal ({}), so restarted pods would not roll out: resume it first",
                ctx.kind().plural(),
                ctx.name(),
                describe(hold)
            ),
        )));
    }
    let at = Value::from(super::rfc3339(ctx.input.now));
    let mut patch = ctx.patch()?;
    match &ctx.template.metadata {
        None => {
            let annotations = Map::from_iter([(keys::RESTARTED_AT.to_owned(), at)]);
            let metadata = Map::from_iter([("annotations".to_owned(), Value::Object(annotations))]);
            patch.add(
                ptr(["spec", "template", "metadata"]),
                Value::Object(metadata),
            );
        }
        Some(meta) if meta.annotations.is_none() => {
            let annotations = Map::from_iter([(keys::RESTARTED_AT.to_owned(), at)]);
            patch.add(
                ptr(["spec", "template", "metadata", "annotations"]),
                Value::Object(annotations),
            );
        }
        Some(_) => patch.add(
            ptr([
                "spec",
                "template",
                "metadata",
                "annotations",
                keys::RESTARTED_AT,
            ]),
            at,
        ),
    }
    let mut outcome = ctx.outcome(
        OutcomeStatus::Applied,
        format!("restarted {} {}", ctx.noun(), ctx.who),
    );
    outcome.revision = Some(ctx.revision_before());
    ctx.finish(patch, outcome)
}
