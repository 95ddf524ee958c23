//! pause, resume and restart: `kubectl rollout pause|resume|restart`
//! semantics as JSON Patches, plus selfheal's pause bookkeeping.

use serde_json::{Map, Value};

use super::patch::ptr;
use super::{Ctx, Decision, OutcomeStatus};
use crate::guards::Refusal;
use crate::{Error, Guard, RolloutState, keys, rollout_status};

/// Pause. Already paused is `skipped` (kubectl errors). A pause raised by an
/// alarm (the request carries `alarm.impactScore`) must also find a rollout in
/// progress and a score at or above the policy threshold (docs/guards.md §3); a
/// manual pause pauses like kubectl. Marks the pause `paused-by: selfheal`.
pub(super) fn pause(ctx: &Ctx<'_>) -> Result<Decision, Error> {
    if ctx.paused() {
        return Ok(ctx.skipped(format!("deployment {} is already paused", ctx.who)));
    }
    let impact = ctx.request().alarm.as_ref().and_then(|a| a.impact_score);
    if let Some(score) = impact {
        let status = rollout_status(ctx.deployment());
        if status.state == RolloutState::Done {
            return Ok(ctx.refused(Refusal::new(
                Guard::NoRolloutInProgress,
                format!(
                    "deployment {} has no rollout in progress to pause ({})",
                    ctx.who, status.message
                ),
            )));
        }
        let threshold = ctx.input.policy.pause_impact_threshold;
        // A NaN score (a broken alarm) refuses too.
        if score.is_nan() || score < threshold {
            return Ok(ctx.refused(Refusal::new(
                Guard::ImpactBelowThreshold,
                format!(
                    "alarm impact score {score} is below the pause threshold {threshold} for deployment {}",
                    ctx.who
                ),
            )));
        }
    }
    let mut patch = ctx.patch()?;
    patch.add(ptr(["spec", "paused"]), Value::Bool(true));
    patch.set_annotation(keys::PAUSED_BY, keys::PAUSED_BY_SELFHEAL.to_owned());
    let mut message = format!("paused deployment {}", ctx.who);
    if let Some(score) = impact {
        message.push_str(&format!(" during its rollout (alarm impact score {score})"));
    }
    let outcome = ctx.outcome(OutcomeStatus::Applied, message);
    ctx.finish(patch, outcome)
}

/// Resume. Not paused is `skipped`. A pause someone else made is theirs to
/// lift unless the request says `force`.
pub(super) fn resume(ctx: &Ctx<'_>) -> Result<Decision, Error> {
    if !ctx.paused() {
        return Ok(ctx.skipped(format!("deployment {} is not paused", ctx.who)));
    }
    if !ctx.paused_by_selfheal() && !ctx.request().force {
        return Ok(ctx.refused(Refusal::new(
            Guard::Paused,
            format!(
                "deployment {} was paused by someone other than selfheal (no {}={}); set force to resume it anyway",
                ctx.who,
                keys::PAUSED_BY,
                keys::PAUSED_BY_SELFHEAL
            ),
        )));
    }
    let mut patch = ctx.patch()?;
    patch.replace(ptr(["spec", "paused"]), Value::Bool(false));
    patch.remove_annotation(keys::PAUSED_BY);
    let outcome = ctx.outcome(
        OutcomeStatus::Applied,
        format!("resumed deployment {}", ctx.who),
    );
    ctx.finish(patch, outcome)
}

/// Restart: stamp `kubectl.kubernetes.io/restartedAt` on the pod template, as
/// `kubectl rollout restart` does, which rolls every pod. A paused Deployment
/// is refused with kubectl's words, whoever paused it: the new template would
/// not roll out until resumed anyway.
pub(super) fn restart(ctx: &Ctx<'_>) -> Result<Decision, Error> {
    if ctx.paused() {
        return Ok(ctx.refused(Refusal::new(
            Guard::Paused,
            format!(
                "deployments.apps {:?} can't restart paused deployment (run rollout resume first)",
                ctx.name()
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
        format!("restarted deployment {}", ctx.who),
    );
    outcome.revision = Some(ctx.revision_before());
    ctx.finish(patch, outcome)
}
