//! The audit Event written on a workload after an applied action
//! (docs/guards.md §4). core/v1, because `kubectl describe` and most dashboards
//! read those; its field is `reportingComponent` (the events.k8s.io spelling
//! `reportingController` is silently dropped, tests/fixtures/k8s/events.json).

use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::Api;
use kube::api::PostParams;
use selfheal_core::{Action, WorkloadRef};

use crate::error::{Call, Result};

/// Who reports the Event (`source.component`, `reportingComponent`,
/// `reportingInstance`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reporter {
    pub component: String,
    pub instance: String,
}

/// Build the Event for an action applied to `workload` (the object as the
/// PATCH returned it, so `resourceVersion` names the version we produced;
/// `involvedObject.kind` is its kind).
pub fn build_event<'w>(
    workload: impl Into<WorkloadRef<'w>>,
    action: Action,
    message: &str,
    reporter: &Reporter,
    now: jiff::Timestamp,
) -> Event {
    let workload = workload.into();
    let meta = workload.metadata();
    let name = meta.name.clone().unwrap_or_default();
    let namespace = meta.namespace.clone();
    Event {
        metadata: ObjectMeta {
            generate_name: Some(format!("{name}.")),
            namespace: namespace.clone(),
            ..ObjectMeta::default()
        },
        involved_object: ObjectReference {
            api_version: Some("apps/v1".into()),
            kind: Some(workload.kind().as_str().into()),
            name: Some(name),
            namespace,
            uid: meta.uid.clone(),
            resource_version: meta.resource_version.clone(),
            field_path: None,
        },
        reason: Some(action.event_reason().into()),
        message: Some(message.into()),
        type_: Some("Normal".into()),
        action: Some(action.as_str().into()),
        source: Some(EventSource {
            component: Some(reporter.component.clone()),
            host: None,
        }),
        reporting_component: Some(reporter.component.clone()),
        reporting_instance: Some(reporter.instance.clone()),
        first_timestamp: Some(Time(now)),
        last_timestamp: Some(Time(now)),
        count: Some(1),
        ..Event::default()
    }
}

/// POST the Event into the workload's namespace.
pub async fn post_event(client: &kube::Client, event: &Event) -> Result<Event> {
    let namespace = event.metadata.namespace.as_deref().unwrap_or_default();
    let events: Api<Event> = Api::namespaced(client.clone(), namespace);
    let params = PostParams {
        field_manager: Some(crate::FIELD_MANAGER.into()),
        ..PostParams::default()
    };
    events.create(&params, event).await.map_err(|e| {
        Call {
            verb: "create",
            kind: "Event",
            namespace,
            name: event.metadata.generate_name.as_deref().unwrap_or_default(),
        }
        .error(e)
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};

    use super::*;

    fn reporter() -> Reporter {
        Reporter {
            component: "selfheal".into(),
            instance: "selfheal-7d9f".into(),
        }
    }

    #[test]
    fn the_involved_object_names_the_kind_acted_on() {
        let meta =
            serde_json::json!({"metadata": {"name": "ledger", "namespace": "bank", "uid": "u1"}});
        let now: jiff::Timestamp = "2026-11-26T19:24:48Z".parse().unwrap();
        let sts: StatefulSet = serde_json::from_value(meta.clone()).unwrap();
        let ds: DaemonSet = serde_json::from_value(meta).unwrap();
        for (workload, kind) in [
            (WorkloadRef::from(&sts), "StatefulSet"),
            (WorkloadRef::from(&ds), "DaemonSet"),
        ] {
            let ev = build_event(workload, Action::Pause, "held", &reporter(), now);
            let object = &ev.involved_object;
            assert_eq!(object.kind.as_deref(), Some(kind));
            assert_eq!(object.api_version.as_deref(), Some("apps/v1"));
            assert_eq!(
                (object.name.as_deref(), object.uid.as_deref()),
                (Some("ledger"), Some("u1"))
            );
            assert_eq!(ev.reason.as_deref(), Some("SelfhealPause"));
            assert_eq!(ev.metadata.namespace.as_deref(), Some("bank"));
        }
    }

    #[test]
    fn event_matches_the_recorded_shape() {
        let deployment: Deployment = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "checkout", "namespace": "shop",
                "uid": "3a4925c1-786f-4b23-adb6-0d3b57e345db", "resourceVersion": "637"}
        }))
        .unwrap();
        let reporter = reporter();
        let now: jiff::Timestamp = "2026-11-26T19:24:48Z".parse().unwrap();
        let ev = build_event(
            &deployment,
            Action::Rollback,
            "Rolled back container api",
            &reporter,
            now,
        );
        let json = serde_json::to_value(&ev).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "apiVersion": "v1",
                "kind": "Event",
                "metadata": {"generateName": "checkout.", "namespace": "shop"},
                "involvedObject": {
                    "kind": "Deployment", "namespace": "shop", "name": "checkout",
                    "uid": "3a4925c1-786f-4b23-adb6-0d3b57e345db",
                    "apiVersion": "apps/v1", "resourceVersion": "637"
                },
                "action": "rollback",
                "reason": "SelfhealRollback",
                "message": "Rolled back container api",
                "type": "Normal",
                "source": {"component": "selfheal"},
                "firstTimestamp": "2026-11-26T19:24:48Z",
                "lastTimestamp": "2026-11-26T19:24:48Z",
                "count": 1,
                "reportingComponent": "selfheal",
                "reportingInstance": "selfheal-7d9f"
            })
        );
    }
}
