//! Building the one JSON Patch every write sends, audit annotations included.

use std::collections::BTreeMap;

use json_patch::jsonptr::PointerBuf;
use json_patch::{
    AddOperation, Patch, PatchOperation, RemoveOperation, ReplaceOperation, TestOperation,
};
use serde_json::Value;

use super::{Ctx, Decision, Plan};
use crate::guards::{self, HistoryRecord, LastRemediation};
use crate::{Action, ApprovedBy, Error, OutcomeStatus, RemediationOutcome, keys};

/// A JSON pointer from raw tokens; `/` and `~` in keys are escaped (`~1`, `~0`).
pub(super) fn ptr<'t>(tokens: impl IntoIterator<Item = &'t str>) -> PointerBuf {
    PointerBuf::from_tokens(tokens)
}

/// RFC 3339 in UTC with whole seconds, like kubectl's `restartedAt`.
pub fn rfc3339(now: jiff::Timestamp) -> String {
    jiff::Timestamp::from_second(now.as_second())
        .unwrap_or(now)
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// `kubernetes.io/change-cause` for an action that rolls out a new pod
/// template (rollback, restart): one line saying what selfheal did, which the
/// controller copies onto the ReplicaSet it rolls out, so `kubectl rollout
/// history` shows it. Pause and resume roll out nothing: setting it then
/// would relabel the running revision, whose cause was someone's deploy.
fn change_cause(outcome: &RemediationOutcome, reason: Option<&str>) -> Option<String> {
    let mut cause = format!("selfheal {}", outcome.action);
    match outcome.action {
        Action::Rollback => {
            if let Some(to) = outcome.revision.as_ref().and_then(|r| r.to) {
                cause.push_str(&format!(" to revision {to}"));
            }
            let changes: Vec<String> = outcome
                .changes
                .iter()
                .map(|c| format!("{} {} -> {}", c.container, c.from, c.to))
                .collect();
            if !changes.is_empty() {
                cause.push_str(&format!(": {}", changes.join(", ")));
            }
        }
        Action::Restart => {}
        Action::Pause | Action::Resume => return None,
    }
    if let Some(reason) = reason {
        cause.push_str(&format!(" (reason: {reason})"));
    }
    Some(cause)
}

/// Serialize a typed object for a patch value.
pub(super) fn to_value<T: serde::Serialize>(what: &'static str, value: &T) -> Result<Value, Error> {
    serde_json::to_value(value).map_err(|source| Error::Serialize { what, source })
}

/// Serialize one of selfheal's JSON annotation values.
pub(super) fn to_string<T: serde::Serialize>(
    what: &'static str,
    value: &T,
) -> Result<String, Error> {
    serde_json::to_string(value).map_err(|source| Error::Serialize { what, source })
}

/// Ops in the order they are added; annotation ops are appended by [`Ctx::finish`].
#[derive(Debug, Default)]
pub(super) struct PatchBuilder {
    ops: Vec<PatchOperation>,
    set: BTreeMap<String, String>,
    remove: Vec<String>,
    replace_all: Option<BTreeMap<String, String>>,
}

impl PatchBuilder {
    pub fn test(&mut self, path: PointerBuf, value: Value) {
        self.ops
            .push(PatchOperation::Test(TestOperation { path, value }));
    }

    pub fn replace(&mut self, path: PointerBuf, value: Value) {
        self.ops
            .push(PatchOperation::Replace(ReplaceOperation { path, value }));
    }

    /// `add` creates a member or overwrites an existing one, so it is the op
    /// for fields the server may have omitted (`spec.paused`, annotations).
    pub fn add(&mut self, path: PointerBuf, value: Value) {
        self.ops
            .push(PatchOperation::Add(AddOperation { path, value }));
    }

    /// Set one of selfheal's annotations on the Deployment.
    pub fn set_annotation(&mut self, key: &str, value: String) {
        self.set.insert(key.to_owned(), value);
    }

    /// Remove an annotation if the Deployment has it (a `remove` of a missing
    /// member would fail the whole patch).
    pub fn remove_annotation(&mut self, key: &str) {
        self.remove.push(key.to_owned());
    }

    /// Replace `/metadata/annotations` wholesale (kubectl's undo); selfheal's
    /// own set/remove still apply on top.
    pub fn replace_annotations(&mut self, annotations: BTreeMap<String, String>) {
        self.replace_all = Some(annotations);
    }
}

impl Ctx<'_> {
    /// Lift a pause or hold in `patch`: a Deployment's `spec.paused` back to
    /// false; a StatefulSet's or DaemonSet's update strategy back to the one
    /// selfheal's hold recorded (or, for a `force`d resume of someone
    /// else's hold, the released strategy); the marks go with it.
    pub(super) fn lift_hold(&self, patch: &mut PatchBuilder) -> Result<(), Error> {
        let workload = self.workload();
        patch.remove_annotation(keys::PAUSED_BY);
        if workload.kind() == crate::WorkloadKind::Deployment {
            patch.replace(ptr(["spec", "paused"]), Value::Bool(false));
            return Ok(());
        }
        let strategy = workload
            .held_strategy()
            .filter(|_| workload.held_by_selfheal())
            .or_else(|| workload.released_strategy())
            .ok_or_else(|| self.invalid("no update strategy to restore"))?;
        patch.add(ptr(["spec", "updateStrategy"]), strategy);
        patch.remove_annotation(keys::HELD_STRATEGY);
        Ok(())
    }

    /// A builder whose first ops test `/metadata/generation` and, when the
    /// workload has labels, `/metadata/labels`: everything a plan reads from
    /// a Deployment (spec, annotations, labels) is then guarded, so a write
    /// against a changed object fails with 422 and is re-planned. A
    /// StatefulSet's or DaemonSet's generation moves with its spec only, so
    /// their patches also test `/metadata/annotations` when there are any
    /// (the audit trail, bad images and the recorded hold live there).
    ///
    /// Not `resourceVersion`: the deployment controller rewrites `status`
    /// (new resourceVersion, same generation) again and again during exactly
    /// the failing rollouts selfheal acts on, and each of those would cost a
    /// 422, a re-read and a re-plan, or exhaust the retries. The API server
    /// bumps a Deployment's generation on every spec or annotation change
    /// (recorded in tests/fixtures/k8s/watch.json and conflict.json), never on a
    /// status write. Without a generation a write cannot be guarded, so that
    /// is an invalid object.
    pub(super) fn patch(&self) -> Result<PatchBuilder, Error> {
        let meta = self.workload().metadata();
        let generation = meta.generation.ok_or_else(|| {
            self.invalid("metadata.generation is missing, so a write cannot be guarded")
        })?;
        let mut builder = PatchBuilder::default();
        builder.test(ptr(["metadata", "generation"]), Value::from(generation));
        if let Some(labels) = meta.labels.as_ref().filter(|l| !l.is_empty()) {
            builder.test(ptr(["metadata", "labels"]), to_value("labels", labels)?);
        }
        if !self.workload().generation_covers_annotations()
            && let Some(annotations) = meta.annotations.as_ref().filter(|a| !a.is_empty())
        {
            builder.test(
                ptr(["metadata", "annotations"]),
                to_value("annotations", annotations)?,
            );
        }
        Ok(builder)
    }

    /// Add the audit annotations, emit the annotation ops and wrap it all in a
    /// [`Plan`]. `outcome` carries the changes the audit record repeats.
    pub(super) fn finish(
        &self,
        mut builder: PatchBuilder,
        mut outcome: RemediationOutcome,
    ) -> Result<Decision, Error> {
        outcome.status = OutcomeStatus::Applied;
        let request = self.request();
        let reason = guards::one_line_reason(request.reason.as_deref());
        let entry = HistoryRecord {
            action: self.action(),
            at: rfc3339(self.input.now),
            execution: request.execution.clone(),
            reason: reason.clone(),
            changes: outcome.changes.clone(),
            approved_by: request.approved_by.as_deref().map(ApprovedBy::clean),
        };
        builder.set_annotation(
            keys::LAST_REMEDIATION,
            to_string(
                "last-remediation annotation",
                &LastRemediation::from(&entry),
            )?,
        );
        let history = guards::record_history(guards::history(self.workload()), entry);
        builder.set_annotation(keys::HISTORY, to_string("history annotation", &history)?);
        if let Some(cause) = change_cause(&outcome, reason.as_deref()) {
            builder.set_annotation(keys::CHANGE_CAUSE, cause);
        }
        if self.action() == Action::Rollback && !outcome.changes.is_empty() {
            let bad =
                guards::record_bad_images(guards::bad_images(self.workload()), &outcome.changes);
            builder.set_annotation(keys::BAD_IMAGES, to_string("bad-images annotation", &bad)?);
        }

        let PatchBuilder {
            mut ops,
            set,
            remove,
            replace_all,
        } = builder;
        let existing = self.workload().metadata().annotations.as_ref();
        let annotations_path = || ptr(["metadata", "annotations"]);
        match replace_all {
            Some(mut all) => {
                for key in &remove {
                    all.remove(key);
                }
                all.extend(set.iter().map(|(k, v)| (k.clone(), v.clone())));
                let value = to_value("annotations", &all)?;
                ops.push(if existing.is_some() {
                    PatchOperation::Replace(ReplaceOperation {
                        path: annotations_path(),
                        value,
                    })
                } else {
                    PatchOperation::Add(AddOperation {
                        path: annotations_path(),
                        value,
                    })
                });
            }
            None => match existing {
                None => ops.push(PatchOperation::Add(AddOperation {
                    path: annotations_path(),
                    value: to_value("annotations", &set)?,
                })),
                Some(existing) => {
                    for key in remove.iter().filter(|k| existing.contains_key(*k)) {
                        ops.push(PatchOperation::Remove(RemoveOperation {
                            path: ptr(["metadata", "annotations", key.as_str()]),
                        }));
                    }
                    for (key, value) in &set {
                        ops.push(PatchOperation::Add(AddOperation {
                            path: ptr(["metadata", "annotations", key.as_str()]),
                            value: Value::from(value.as_str()),
                        }));
                    }
                }
            },
        }

        let mut event_message = outcome.message.clone();
        if let Some(reason) = request.reason.as_deref().filter(|r| !r.trim().is_empty()) {
            event_message.push_str(&format!(" (reason: {})", reason.trim()));
        }
        if let Some(by) = &request.approved_by {
            event_message.push_str(&format!(" (approved by {})", by.describe()));
        }
        Ok(Decision::Apply(Box::new(Plan {
            patch: Patch(ops),
            outcome,
            event_message,
            annotations: set,
            dry_run: request.dry_run || self.input.policy.dry_run,
        })))
    }
}
