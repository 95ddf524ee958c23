//! Rollback planners (docs/kubectl-semantics.md §2, §3): half-brick (one
//! container's image) and template scope (`kubectl rollout undo` parity).
//!
//! Init containers are handled exactly like regular containers: a release
//! that bumps a migration init container alongside the app is diffed and
//! reverted per container, under `spec.template.spec.initContainers`.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::PodTemplateSpec;
use serde_json::Value;

use super::patch::{ptr, to_value};
use super::{Ctx, Decision, OutcomeStatus};
use crate::evidence::{self, ContainerEvidence};
use crate::guards::{self, Refusal};
use crate::history::{self, ContainerList, Revision, RevisionSource};
use crate::{Change, Error, Guard, RevisionInfo, keys};

/// kubectl's `annotationsToSkip`: the Deployment keeps its own values of these
/// instead of copying the ReplicaSet's.
const KUBECTL_ANNOTATIONS_TO_SKIP: [&str; 6] = [
    keys::LAST_APPLIED,
    keys::REVISION,
    keys::REVISION_HISTORY,
    keys::DESIRED_REPLICAS,
    keys::MAX_REPLICAS,
    keys::ROLLBACK_TO,
];

/// Our own annotations, kept from the Deployment for the same reason: the
/// controller copied them onto each ReplicaSet when it was created, so the
/// ReplicaSet's copy is stale (an old bad-images list, a pause long over).
const SELFHEAL_ANNOTATIONS_TO_KEEP: [&str; 4] = [
    keys::LAST_REMEDIATION,
    keys::HISTORY,
    keys::BAD_IMAGES,
    keys::PAUSED_BY,
];

/// kubectl's refusal, naming the Deployment like kubectl does.
pub(super) fn paused_refusal(name: &str) -> Refusal {
    Refusal::new(
        Guard::Paused,
        format!(
            "you cannot rollback a paused deployment; resume it first with 'kubectl rollout resume deployment/{name}' and try again"
        ),
    )
}

/// A restart only adds `kubectl.kubernetes.io/restartedAt`; treating that as
/// "a different template" would make a rollback after selfheal's own restart
/// (the escalation path) see no image change. So history comparisons ignore it.
fn same_workload(a: &PodTemplateSpec, b: &PodTemplateSpec) -> bool {
    fn without_restart(t: &PodTemplateSpec) -> PodTemplateSpec {
        let mut t = t.clone();
        if let Some(annotations) = t.metadata.as_mut().and_then(|m| m.annotations.as_mut()) {
            annotations.remove(keys::RESTARTED_AT);
        }
        if let Some(meta) = t.metadata.as_mut()
            && meta.annotations.as_ref().is_some_and(BTreeMap::is_empty)
        {
            meta.annotations = None;
        }
        t
    }
    a.spec == b.spec && history::equal_ignoring_hash(&without_restart(a), &without_restart(b))
}

/// One offending container and where it goes back to.
#[derive(Debug)]
struct Revert<'a> {
    list: ContainerList,
    index: usize,
    name: &'a str,
    from: &'a str,
    to: &'a str,
}

/// A container of the current template: where it is, its name, its image.
type Image<'a> = ((ContainerList, usize), &'a str, &'a str);

/// How the offending containers were chosen, for the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chosen {
    /// `target.container`: the request wins.
    Requested,
    /// The changed containers the pods show failing.
    ByEvidence,
    /// No changed container is failing (unknown, healthy, or no pods):
    /// every changed container.
    EveryChanged,
}

/// Half-brick rollback: revert only the offending containers' images, and
/// report what the current revision's pods say about every container.
pub(super) fn half_brick(ctx: &Ctx<'_>) -> Result<Decision, Error> {
    let evidence = evidence::of_workload(
        ctx.workload(),
        ctx.input.replica_sets,
        ctx.input.controller_revisions,
        ctx.input.pods,
    );
    let mut decision = half_brick_with(ctx, &evidence)?;
    match &mut decision {
        Decision::Apply(plan) => plan.outcome.evidence = evidence,
        Decision::Done(outcome) => outcome.evidence = evidence,
    }
    Ok(decision)
}

/// Offending = `target.container`, else the changed containers (image
/// differs between the current template, the Deployment's own, which may be
/// ahead of its ReplicaSets, and the newest older revision) that the pods'
/// `evidence` shows failing; when none of them is, every changed container,
/// unless a container that did not change is the one failing: then the
/// image is not the problem and the rollback is refused
/// (`unchangedContainerFailing`). "Older" = any revision
/// running a different workload than the current template, newest first;
/// revisions that only differ by a restart are skipped. Per container, the
/// image to return to is the newest older one that differs from the current
/// image and is not known-bad. Containers that did not exist in a revision are
/// skipped for it (adding or removing containers needs `scope: template`).
fn half_brick_with(ctx: &Ctx<'_>, evidence: &[ContainerEvidence]) -> Result<Decision, Error> {
    let current = ctx.template;
    let mut images = Vec::new();
    for (list, index, name, image) in history::containers(current) {
        let image = image
            .filter(|i| !i.is_empty())
            .ok_or_else(|| ctx.invalid(&format!("container {name:?} has no image")))?;
        images.push(((list, index), name, image));
    }

    let wanted = ctx.request().target.container.as_deref();
    if let Some(wanted) = wanted
        && !images.iter().any(|(_, name, _)| *name == wanted)
    {
        let known: Vec<&str> = images.iter().map(|(_, n, _)| *n).collect();
        return Ok(ctx.refused(Refusal::new(
            Guard::UnknownContainer,
            format!(
                "{} {} has no container {wanted:?} (containers: {})",
                ctx.noun(),
                ctx.who,
                known.join(", ")
            ),
        )));
    }

    let history = ctx.history();
    // Lazily, newest first: most plans look at one or two revisions, and a
    // ControllerRevision's template is parsed only when looked at.
    let older = || {
        history
            .newest_first()
            .filter(|r| r.template().is_some_and(|t| !same_workload(t, current)))
    };
    let Some(newest_older) = older().next() else {
        return Ok(ctx.refused(Refusal::new(
            Guard::NoHistory,
            format!(
                "{} {} has no older revision to roll back to (no rollout history found)",
                ctx.noun(),
                ctx.who
            ),
        )));
    };

    let (offending, chosen): (Vec<Image<'_>>, Chosen) = match wanted {
        Some(wanted) => (
            images
                .iter()
                .copied()
                .filter(|(_, n, _)| *n == wanted)
                .collect(),
            Chosen::Requested,
        ),
        None => {
            let changed: Vec<_> = images
                .iter()
                .copied()
                .filter(|(_, name, image)| {
                    newest_older.image(name).is_some_and(|old| old != *image)
                })
                .collect();
            let failing = |name: &str| {
                evidence
                    .iter()
                    .any(|e| e.container == name && e.is_failing())
            };
            let failing_changed: Vec<_> = changed
                .iter()
                .copied()
                .filter(|(_, name, _)| failing(name))
                .collect();
            let innocent: Vec<&str> = evidence
                .iter()
                .filter(|e| e.is_failing() && !changed.iter().any(|(_, n, _)| *n == e.container))
                .map(|e| e.container.as_str())
                .collect();
            if !failing_changed.is_empty() {
                (failing_changed, Chosen::ByEvidence)
            } else if !changed.is_empty() && !innocent.is_empty() {
                let changed_names: Vec<&str> = changed.iter().map(|(_, n, _)| *n).collect();
                return Ok(ctx.refused(Refusal::new(
                    Guard::UnchangedContainerFailing,
                    format!(
                        "the pods of {noun} {} show {} failing, whose image did not change, and no changed container ({}) failing (pod evidence: {}); rolling back would revert an image that is not the problem: restart the {noun} or ask a person, or name a container in target.container to roll it back anyway",
                        ctx.who,
                        innocent.join(", "),
                        changed_names.join(", "),
                        evidence::summary(evidence),
                        noun = ctx.noun()
                    ),
                )));
            } else {
                (changed, Chosen::EveryChanged)
            }
        }
    };
    if offending.is_empty() {
        return Ok(ctx.refused(Refusal::new(
            Guard::NoImageChange,
            format!(
                "no container image of {} {} differs from revision {}; a configuration-only change needs scope \"template\"",
                ctx.noun(),
                ctx.who,
                newest_older.number
            ),
        )));
    }

    let bad = guards::bad_images(ctx.workload());
    // Rolling back away from an image we already rolled back away from means
    // someone (CI, a human) deployed it again: doing it twice would start a
    // tug of war, so a human decides (force overrides).
    if !ctx.request().force
        && let Some((_, name, from)) = offending.iter().find(|(_, name, from)| {
            bad.get(*name)
                .is_some_and(|list| list.iter().any(|b| b == from))
        })
    {
        return Ok(ctx.refused(Refusal::new(
            Guard::Oscillation,
            format!(
                "container {name:?} of {} {} runs {from} again, an image selfheal already rolled back away from; it was re-deployed, and rolling back again would oscillate with whoever deploys it: fix the image, or set force to roll back anyway",
                ctx.noun(),
                ctx.who
            ),
        )));
    }
    let mut reverts = Vec::with_capacity(offending.len());
    for ((list, index), name, from) in offending {
        let known_bad = bad.get(name).map(Vec::as_slice).unwrap_or_default();
        let to = older().find_map(|r| {
            r.image(name)
                .filter(|image| *image != from && !known_bad.iter().any(|b| b == image))
        });
        let Some(to) = to else {
            return Ok(ctx.refused(Refusal::new(
                Guard::NoPreviousImage,
                format!(
                    "no older revision of {} {} runs container {name:?} with an image other than the current {from} and the known-bad ones",
                    ctx.noun(),
                    ctx.who
                ),
            )));
        };
        reverts.push(Revert {
            list,
            index,
            name,
            from,
            to,
        });
    }

    let unpause = match ctx.lift_on_rollback() {
        Ok(unpause) => unpause,
        Err(refusal) => return Ok(ctx.refused(refusal)),
    };

    let mut patch = ctx.patch()?;
    for r in &reverts {
        let index = r.index.to_string();
        let container = ["spec", "template", "spec", r.list.field(), index.as_str()];
        patch.test(
            ptr(container.iter().copied().chain(["name"])),
            Value::from(r.name),
        );
        patch.test(
            ptr(container.iter().copied().chain(["image"])),
            Value::from(r.from),
        );
        patch.replace(
            ptr(container.iter().copied().chain(["image"])),
            Value::from(r.to),
        );
    }
    if unpause {
        ctx.lift_hold(&mut patch)?;
    }

    let changes: Vec<Change> = reverts
        .iter()
        .map(|r| Change {
            container: r.name.to_owned(),
            from: r.from.to_owned(),
            to: r.to.to_owned(),
        })
        .collect();
    let described: Vec<String> = reverts
        .iter()
        .map(|r| format!("container {} from {} to {}", r.name, r.from, r.to))
        .collect();
    let mut message = format!(
        "rolled back {} {}: {}",
        ctx.noun(),
        ctx.who,
        described.join(", ")
    );
    if unpause {
        message.push_str(ctx.resumed_note());
    }
    message.push_str(&evidence_note(chosen, reverts.len(), evidence));
    let mut outcome = ctx.outcome(OutcomeStatus::Applied, message);
    outcome.changes = changes;
    outcome.revision = Some(ctx.revision_before());
    ctx.finish(patch, outcome)
}

/// What the message says about the choice: the pods' evidence when there is
/// any, and, when several containers went back because none was shown
/// failing, that the choice fell back to every changed container, so a
/// person reading the outcome knows how precise it was. One changed
/// container needs no choice, so its message says nothing about one.
fn evidence_note(chosen: Chosen, reverted: usize, evidence: &[ContainerEvidence]) -> String {
    let summary = evidence::summary(evidence);
    let fell_back = chosen == Chosen::EveryChanged && reverted > 1;
    match (fell_back, evidence.is_empty()) {
        (false, true) => String::new(),
        (false, false) => format!(" (pod evidence: {summary})"),
        (true, true) => {
            " (no pod evidence names a failing container, so every changed container)".to_owned()
        }
        (true, false) => format!(
            " (no changed container is failing on the current revision's pods, so every changed container; pod evidence: {summary})"
        ),
    }
}

/// Template rollback with `kubectl rollout undo` parity: the revision to
/// restore is `toRevision` or the second-highest; its template replaces the
/// Deployment's and the annotations follow kubectl's skip-list rule.
///
/// Deliberate differences from kubectl: the skip message names the revision
/// actually compared (kubectl prints 0 when no revision was given); selfheal's
/// own annotations keep the Deployment's values; `kubernetes.io/change-cause`
/// says what selfheal did instead of repeating the restored ReplicaSet's; a
/// pause made by selfheal is lifted in the same patch instead of refused; the
/// patch also tests the generation and labels.
pub(super) fn undo(ctx: &Ctx<'_>) -> Result<Decision, Error> {
    let history = ctx.history();
    let revision = match ctx.request().to_revision {
        Some(n) if n != 0 => {
            let found = if n > 0 { history.revision(n) } else { None };
            match found {
                Some(r) => r,
                None => {
                    return Ok(ctx.refused(Refusal::new(
                        Guard::RevisionNotFound,
                        format!(
                            "unable to find specified revision {n} in history of {} {}",
                            ctx.noun(),
                            ctx.who
                        ),
                    )));
                }
            }
        }
        _ => match history.previous() {
            Some(r) => r,
            None => {
                return Ok(ctx.refused(Refusal::new(
                    Guard::NoHistory,
                    format!(
                        "no rollout history found for {} {:?}",
                        ctx.noun(),
                        ctx.name()
                    ),
                )));
            }
        },
    };

    let unpause = match ctx.lift_on_rollback() {
        Ok(unpause) => unpause,
        Err(refusal) => return Ok(ctx.refused(refusal)),
    };

    let template = revision.template().ok_or_else(|| Error::InvalidObject {
        kind: match revision.source {
            RevisionSource::ReplicaSet(_) => "ReplicaSet",
            RevisionSource::ControllerRevision(_) => "ControllerRevision",
        },
        reason: format!(
            "{}: {} holds no pod template",
            revision.name(),
            match revision.source {
                RevisionSource::ReplicaSet(_) => "spec.template",
                RevisionSource::ControllerRevision(_) => "data.spec.template",
            }
        ),
    })?;
    if history::equal_ignoring_hash(template, ctx.template) {
        return Ok(ctx.skipped(format!(
            "{} {} skipped rollback (current template already matches revision {})",
            ctx.noun(),
            ctx.who,
            revision.number
        )));
    }
    let restored = history::template_without_hash(template);

    let mut patch = ctx.patch()?;
    patch.replace(
        ptr(["spec", "template"]),
        to_value("pod template", &restored)?,
    );
    if unpause {
        ctx.lift_hold(&mut patch)?;
    }
    // kubectl copies a ReplicaSet's annotations back onto the Deployment; a
    // ControllerRevision carries none, and its undo patch touches only
    // the template.
    if revision.replica_set().is_some() {
        patch.replace_annotations(undo_annotations(ctx, revision));
    }

    let current_images = history::images_by_container(ctx.template);
    let changes: Vec<Change> = history::container_images(&restored)
        .filter_map(|(name, to)| {
            let from = current_images.get(name)?;
            (from != to).then(|| Change {
                container: name.to_owned(),
                from: from.clone(),
                to: to.to_owned(),
            })
        })
        .collect();
    let mut message = format!(
        "rolled back {} {} to revision {}",
        ctx.noun(),
        ctx.who,
        revision.number
    );
    if unpause {
        message.push_str(ctx.resumed_note());
    }
    let mut outcome = ctx.outcome(OutcomeStatus::Applied, message);
    outcome.changes = changes;
    outcome.revision = Some(RevisionInfo {
        to: Some(revision.number),
        ..ctx.revision_before()
    });
    ctx.finish(patch, outcome)
}

/// kubectl's annotation rule: the Deployment's values of the skip-list keys,
/// every other annotation from the ReplicaSet (selfheal's own keys included
/// in the skip-list here; the audit record is added by `finish`).
fn undo_annotations(ctx: &Ctx<'_>, revision: &Revision<'_>) -> BTreeMap<String, String> {
    let skip = |k: &str| {
        KUBECTL_ANNOTATIONS_TO_SKIP.contains(&k) || SELFHEAL_ANNOTATIONS_TO_KEEP.contains(&k)
    };
    let mut annotations = BTreeMap::new();
    if let Some(own) = &ctx.workload().metadata().annotations {
        annotations.extend(
            own.iter()
                .filter(|(k, _)| skip(k))
                .map(|(k, v)| (k.clone(), v.clone())),
        );
    }
    if let Some(theirs) = &revision.metadata().annotations {
        annotations.extend(
            theirs
                .iter()
                .filter(|(k, _)| !skip(k))
                .map(|(k, v)| (k.clone(), v.clone())),
        );
    }
    annotations
}
