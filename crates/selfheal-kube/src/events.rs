//! The audit Event written on a Deployment after an applied action
//! (docs/guards.md §4). core/v1, because `kubectl describe` and most dashboards
//! read those; its field is `reportingComponent` (the events.k8s.io spelling
//! `reportingController` is silently dropped, tests/fixtures/k8s/events.json).

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::Api;
use kube::api::PostParams;
use selfheal_core::Action;

use crate::error::{Call, Result};

/// Who reports the Event (`source.component`, `reportingComponent`,
/// `reportingInstance`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reporter {
    pub component: String,
    pub instance: String,
}

/// Build the Event for an action applied to `deployment` (the object as the
/// PATCH returned it, so `resourceVersion` names the version we produced).
pub fn build_event(
    deployment: &Deployment,
    action: Action,
    message: &str,
    reporter: &Reporter,
    now: jiff::Timestamp,
) -> Event {
    let meta = &deployment.metadata;
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
            kind: Some("Deployment".into()),
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

/// POST the Event into the Deployment's namespace.
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
    use super::*;

    #[test]
    fn event_matches_the_recorded_shape() {
        let deployment: Deployment = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "checkout", "namespace": "shop",
                "uid": "3a4925c1-786f-4b23-adb6-0d3b57e345db", "resourceVersion": "637"}
        }))
        .unwrap();
        let reporter = Reporter {
            component: "selfheal".into(),
            instance: "selfheal-7d9f".into(),
        };
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
