//! One view of the three workload kinds, so every planner, guard and the
//! rollout status run once for all of them (docs/kubectl-semantics.md §7).
//!
//! A Deployment pauses with `spec.paused`; a StatefulSet or a DaemonSet has
//! no such field (`kubectl rollout pause` refuses both), so selfheal *holds*
//! them with their own update strategy: a StatefulSet with
//! `updateStrategy.rollingUpdate.partition = replicas` (no pod is replaced),
//! a DaemonSet with `updateStrategy.type = OnDelete`. The strategy the hold
//! replaced is recorded on the object ([`keys::HELD_STRATEGY`]) so that
//! `resume` restores exactly it.

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use serde_json::{Value, json};

use crate::{WorkloadKind, keys};

/// A borrowed Deployment, StatefulSet or DaemonSet: what the adapter read.
#[derive(Debug, Clone, Copy)]
pub enum WorkloadRef<'a> {
    Deployment(&'a Deployment),
    StatefulSet(&'a StatefulSet),
    DaemonSet(&'a DaemonSet),
}

impl<'a> From<&'a Deployment> for WorkloadRef<'a> {
    fn from(d: &'a Deployment) -> Self {
        WorkloadRef::Deployment(d)
    }
}

impl<'a> From<&'a StatefulSet> for WorkloadRef<'a> {
    fn from(s: &'a StatefulSet) -> Self {
        WorkloadRef::StatefulSet(s)
    }
}

impl<'a> From<&'a DaemonSet> for WorkloadRef<'a> {
    fn from(d: &'a DaemonSet) -> Self {
        WorkloadRef::DaemonSet(d)
    }
}

/// How a rollout is held back, if it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hold {
    /// Rolls out as it should.
    None,
    /// Deployment `spec.paused`.
    Paused,
    /// StatefulSet `RollingUpdate` with `partition` at or above `replicas`
    /// (no ordinal is below the partition, so no pod is replaced).
    Partition { partition: i32, replicas: i32 },
    /// DaemonSet (or StatefulSet) `updateStrategy.type: OnDelete`: a pod
    /// only changes when someone deletes it.
    OnDelete,
}

impl Hold {
    pub fn is_held(self) -> bool {
        self != Hold::None
    }
}

impl<'a> WorkloadRef<'a> {
    pub fn kind(self) -> WorkloadKind {
        match self {
            WorkloadRef::Deployment(_) => WorkloadKind::Deployment,
            WorkloadRef::StatefulSet(_) => WorkloadKind::StatefulSet,
            WorkloadRef::DaemonSet(_) => WorkloadKind::DaemonSet,
        }
    }

    pub fn metadata(self) -> &'a ObjectMeta {
        match self {
            WorkloadRef::Deployment(d) => &d.metadata,
            WorkloadRef::StatefulSet(s) => &s.metadata,
            WorkloadRef::DaemonSet(d) => &d.metadata,
        }
    }

    /// `metadata.name`, empty when missing.
    pub fn name(self) -> &'a str {
        self.metadata().name.as_deref().unwrap_or_default()
    }

    /// `metadata.namespace`, empty when missing.
    pub fn namespace(self) -> &'a str {
        self.metadata().namespace.as_deref().unwrap_or_default()
    }

    /// `namespace/name`, for messages.
    pub fn who(self) -> String {
        format!("{}/{}", self.namespace(), self.name())
    }

    pub fn generation(self) -> Option<i64> {
        self.metadata().generation
    }

    /// Whether the object has a `spec` at all.
    pub fn has_spec(self) -> bool {
        match self {
            WorkloadRef::Deployment(d) => d.spec.is_some(),
            WorkloadRef::StatefulSet(s) => s.spec.is_some(),
            WorkloadRef::DaemonSet(d) => d.spec.is_some(),
        }
    }

    /// `spec.template`, `None` without a spec.
    pub fn template(self) -> Option<&'a PodTemplateSpec> {
        match self {
            WorkloadRef::Deployment(d) => d.spec.as_ref().map(|s| &s.template),
            WorkloadRef::StatefulSet(s) => s.spec.as_ref().map(|s| &s.template),
            WorkloadRef::DaemonSet(d) => d.spec.as_ref().map(|s| &s.template),
        }
    }

    /// `spec.selector`, `None` without a spec.
    pub fn selector(self) -> Option<&'a LabelSelector> {
        match self {
            WorkloadRef::Deployment(d) => d.spec.as_ref().map(|s| &s.selector),
            WorkloadRef::StatefulSet(s) => s.spec.as_ref().map(|s| &s.selector),
            WorkloadRef::DaemonSet(d) => d.spec.as_ref().map(|s| &s.selector),
        }
    }

    /// `spec.replicas` (the API's default 1 when absent); a DaemonSet has
    /// no replica count and answers `None`.
    pub fn replicas(self) -> Option<i32> {
        match self {
            WorkloadRef::Deployment(d) => Some(d.spec.as_ref()?.replicas.unwrap_or(1)),
            WorkloadRef::StatefulSet(s) => Some(s.spec.as_ref()?.replicas.unwrap_or(1)),
            WorkloadRef::DaemonSet(_) => None,
        }
    }

    pub fn annotation(self, key: &str) -> Option<&'a str> {
        self.metadata()
            .annotations
            .as_ref()?
            .get(key)
            .map(String::as_str)
    }

    pub fn label(self, key: &str) -> Option<&'a str> {
        self.metadata()
            .labels
            .as_ref()?
            .get(key)
            .map(String::as_str)
    }

    pub fn as_deployment(self) -> Option<&'a Deployment> {
        match self {
            WorkloadRef::Deployment(d) => Some(d),
            _ => None,
        }
    }

    /// Whether the generation guard also covers annotations: the API server
    /// bumps a Deployment's generation on an annotation change, not a
    /// StatefulSet's or DaemonSet's (spec only), so their patches also test
    /// the annotations they were planned against.
    pub fn generation_covers_annotations(self) -> bool {
        self.kind() == WorkloadKind::Deployment
    }

    /// `spec.updateStrategy.type` of a StatefulSet or DaemonSet (`RollingUpdate`
    /// or `OnDelete`); `None` for a Deployment or when absent.
    pub fn strategy_type(self) -> Option<&'a str> {
        match self {
            WorkloadRef::Deployment(_) => None,
            WorkloadRef::StatefulSet(s) => {
                s.spec.as_ref()?.update_strategy.as_ref()?.type_.as_deref()
            }
            WorkloadRef::DaemonSet(d) => {
                d.spec.as_ref()?.update_strategy.as_ref()?.type_.as_deref()
            }
        }
    }

    /// What holds the rollout back now (see [`Hold`]).
    pub fn hold(self) -> Hold {
        match self {
            WorkloadRef::Deployment(d) => {
                if d.spec.as_ref().and_then(|s| s.paused).unwrap_or(false) {
                    Hold::Paused
                } else {
                    Hold::None
                }
            }
            WorkloadRef::StatefulSet(s) => {
                let Some(spec) = s.spec.as_ref() else {
                    return Hold::None;
                };
                if self.strategy_type() == Some("OnDelete") {
                    return Hold::OnDelete;
                }
                let partition = spec
                    .update_strategy
                    .as_ref()
                    .and_then(|u| u.rolling_update.as_ref())
                    .and_then(|r| r.partition)
                    .unwrap_or(0);
                let replicas = spec.replicas.unwrap_or(1);
                if partition > 0 && partition >= replicas {
                    Hold::Partition {
                        partition,
                        replicas,
                    }
                } else {
                    Hold::None
                }
            }
            WorkloadRef::DaemonSet(_) => {
                if self.strategy_type() == Some("OnDelete") {
                    Hold::OnDelete
                } else {
                    Hold::None
                }
            }
        }
    }

    /// `spec.updateStrategy` as JSON, or the API server's default for the
    /// kind when absent (a real object always has it); `None` for a
    /// Deployment, which is paused instead.
    pub fn update_strategy(self) -> Option<Value> {
        let stored = match self {
            WorkloadRef::Deployment(_) => return None,
            WorkloadRef::StatefulSet(s) => s
                .spec
                .as_ref()
                .and_then(|s| s.update_strategy.as_ref())
                .and_then(|u| serde_json::to_value(u).ok()),
            WorkloadRef::DaemonSet(d) => d
                .spec
                .as_ref()
                .and_then(|s| s.update_strategy.as_ref())
                .and_then(|u| serde_json::to_value(u).ok()),
        };
        Some(
            stored
                .filter(|v| v.as_object().is_some_and(|o| !o.is_empty()))
                .unwrap_or_else(|| default_strategy(self.kind())),
        )
    }

    /// The strategy a selfheal hold recorded in [`keys::HELD_STRATEGY`]:
    /// a JSON object with a `type`. Absent or malformed reads as `None`
    /// (a hand-edited value must not be written back as a strategy).
    pub fn held_strategy(self) -> Option<Value> {
        let value: Value = serde_json::from_str(self.annotation(keys::HELD_STRATEGY)?).ok()?;
        value
            .get("type")
            .and_then(Value::as_str)
            .is_some()
            .then_some(value)
    }

    /// Whether the current hold is one selfheal made: held, marked
    /// `selfheal.dev/paused-by: selfheal`, and (StatefulSet, DaemonSet) with
    /// the replaced strategy on record to restore.
    pub fn held_by_selfheal(self) -> bool {
        if !self.hold().is_held()
            || self.annotation(keys::PAUSED_BY) != Some(keys::PAUSED_BY_SELFHEAL)
        {
            return false;
        }
        self.kind() == WorkloadKind::Deployment || self.held_strategy().is_some()
    }

    /// The strategy that holds this StatefulSet or DaemonSet: `strategy`
    /// (its current one) with `partition = replicas`, or `OnDelete`.
    pub fn holding_strategy(self, strategy: &Value) -> Option<Value> {
        match self {
            WorkloadRef::Deployment(_) => None,
            WorkloadRef::StatefulSet(_) => {
                let mut held = strategy.clone();
                let object = held.as_object_mut()?;
                object.insert("type".into(), Value::from("RollingUpdate"));
                let rolling = object.entry("rollingUpdate").or_insert_with(|| json!({}));
                if !rolling.is_object() {
                    *rolling = json!({});
                }
                rolling
                    .as_object_mut()?
                    .insert("partition".into(), Value::from(self.replicas()?));
                Some(held)
            }
            WorkloadRef::DaemonSet(_) => Some(json!({"type": "OnDelete"})),
        }
    }

    /// The strategy that lifts a hold nobody recorded (a `force`d resume of
    /// someone else's hold): a StatefulSet keeps its strategy with
    /// `partition` 0, a DaemonSet gets the API's default rolling update.
    pub fn released_strategy(self) -> Option<Value> {
        match self {
            WorkloadRef::Deployment(_) => None,
            WorkloadRef::StatefulSet(_) => {
                let mut strategy = self.update_strategy()?;
                if strategy.get("type").and_then(Value::as_str) == Some("OnDelete") {
                    return Some(default_strategy(WorkloadKind::StatefulSet));
                }
                if let Some(rolling) = strategy
                    .get_mut("rollingUpdate")
                    .and_then(Value::as_object_mut)
                {
                    rolling.insert("partition".into(), Value::from(0));
                }
                Some(strategy)
            }
            WorkloadRef::DaemonSet(_) => Some(default_strategy(WorkloadKind::DaemonSet)),
        }
    }

    /// Whether a rollout is under way (the alarm-driven pause acts only
    /// then): a Deployment whose `kubectl rollout status` is not done; a
    /// StatefulSet whose spec is not observed yet, whose `updateRevision`
    /// differs from `currentRevision` or with fewer `updatedReplicas` than
    /// replicas; a DaemonSet whose spec is not observed yet or with fewer
    /// `updatedNumberScheduled` than `desiredNumberScheduled`.
    pub fn rollout_in_progress(self) -> bool {
        let unobserved =
            |observed: Option<i64>| self.generation().unwrap_or(0) > observed.unwrap_or(0);
        match self {
            WorkloadRef::Deployment(d) => !crate::rollout_status(d).is_done(),
            WorkloadRef::StatefulSet(s) => s.status.as_ref().is_none_or(|status| {
                unobserved(status.observed_generation)
                    || status.update_revision != status.current_revision
                    || status.updated_replicas.unwrap_or(0) < self.replicas().unwrap_or(1)
            }),
            WorkloadRef::DaemonSet(d) => d.status.as_ref().is_none_or(|status| {
                unobserved(status.observed_generation)
                    || status.updated_number_scheduled.unwrap_or(0)
                        < status.desired_number_scheduled
            }),
        }
    }
}

/// What the API server stores when a StatefulSet or DaemonSet is created
/// without an update strategy (recorded in statefulset-history.json and
/// daemonset-history.json).
pub fn default_strategy(kind: WorkloadKind) -> Value {
    match kind {
        WorkloadKind::DaemonSet => {
            json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}})
        }
        WorkloadKind::StatefulSet | WorkloadKind::Deployment => {
            json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 0}})
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::testutil::Recorded;

    #[test]
    fn holds_by_kind_and_strategy() {
        let mut sts = Recorded::ledger();
        let hold = |r: &Recorded| r.with(|w| w.hold());
        assert_eq!(hold(&sts), Hold::None, "partition 0 holds nothing");
        sts.object["spec"]["updateStrategy"]["rollingUpdate"]["partition"] = json!(1);
        assert_eq!(hold(&sts), Hold::None, "a canary partition below replicas");
        sts.object["spec"]["updateStrategy"]["rollingUpdate"]["partition"] = json!(5);
        assert_eq!(
            hold(&sts),
            Hold::Partition {
                partition: 5,
                replicas: 2
            }
        );
        sts.object["spec"]["updateStrategy"] = json!({"type": "OnDelete"});
        assert_eq!(hold(&sts), Hold::OnDelete);
        let mut ds = Recorded::node_agent();
        assert_eq!(hold(&ds), Hold::None);
        ds.object["spec"]["updateStrategy"] = json!({"type": "OnDelete"});
        assert_eq!(hold(&ds), Hold::OnDelete);
        // Without a recorded strategy, a mark alone is not selfheal's hold.
        let marked = ds.annotate(keys::PAUSED_BY, keys::PAUSED_BY_SELFHEAL);
        assert!(!marked.with(|w| w.held_by_selfheal()));
        let recorded = marked.annotate(keys::HELD_STRATEGY, r#"{"type":"RollingUpdate"}"#);
        assert!(recorded.with(|w| w.held_by_selfheal()));
        let malformed = recorded.annotate(keys::HELD_STRATEGY, r#"{"rollingUpdate":{}}"#);
        assert!(
            !malformed.with(|w| w.held_by_selfheal()),
            "no type: not a strategy"
        );
    }

    #[test]
    fn a_partition_hold_keeps_the_other_rolling_update_fields() {
        let sts = Recorded::ledger();
        let strategy = json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 0, "maxUnavailable": 2}});
        let held = sts.with(|w| w.holding_strategy(&strategy)).unwrap();
        assert_eq!(
            held,
            json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 2, "maxUnavailable": 2}})
        );
        let mut bare = sts.clone();
        bare.object["spec"]
            .as_object_mut()
            .unwrap()
            .remove("updateStrategy");
        assert_eq!(
            bare.with(|w| w.update_strategy()),
            Some(default_strategy(WorkloadKind::StatefulSet)),
            "an absent strategy reads as the API's default"
        );
    }
}
