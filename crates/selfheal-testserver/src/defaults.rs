//! Server-side defaulting and unknown-field pruning, as the recordings show
//! (tests/fixtures/k8s/create-and-history.json: defaults filled in on create;
//! events.json: unknown fields like `reportingController` silently dropped).

use serde_json::{Map, Value, json};

use crate::store::Kind;

/// Decodes the object through its k8s-openapi type (dropping unknown fields,
/// like the real server's decoder) and fills in the recorded defaults.
pub(crate) fn apply(kind: Kind, obj: Value) -> Result<Value, serde_json::Error> {
    use k8s_openapi::api::apps::v1::{
        ControllerRevision, DaemonSet, Deployment, ReplicaSet, StatefulSet,
    };
    use k8s_openapi::api::core::v1::{Event, Namespace, Node, Pod, Service, ServiceAccount};
    fn through<T: serde::de::DeserializeOwned + serde::Serialize>(
        obj: Value,
    ) -> Result<Value, serde_json::Error> {
        serde_json::to_value(serde_json::from_value::<T>(obj)?)
    }
    let mut v = match kind {
        Kind::Deployment => through::<Deployment>(obj)?,
        Kind::ReplicaSet => through::<ReplicaSet>(obj)?,
        Kind::StatefulSet => through::<StatefulSet>(obj)?,
        Kind::DaemonSet => through::<DaemonSet>(obj)?,
        Kind::ControllerRevision => through::<ControllerRevision>(obj)?,
        Kind::Pod => through::<Pod>(obj)?,
        Kind::Event => through::<Event>(obj)?,
        Kind::Namespace => through::<Namespace>(obj)?,
        Kind::Node => through::<Node>(obj)?,
        Kind::ServiceAccount => through::<ServiceAccount>(obj)?,
        Kind::Service => through::<Service>(obj)?,
    };
    match kind {
        Kind::Deployment => deployment(&mut v),
        Kind::ReplicaSet => replica_set(&mut v),
        Kind::StatefulSet => stateful_set(&mut v),
        Kind::DaemonSet => daemon_set(&mut v),
        Kind::Pod => pod(&mut v),
        Kind::Event => event(&mut v),
        Kind::Namespace => v = namespace(v),
        Kind::Node => node(&mut v),
        Kind::Service => service(&mut v),
        Kind::ServiceAccount | Kind::ControllerRevision => {}
    }
    Ok(v)
}

fn obj_mut<'a>(v: &'a mut Value, key: &str) -> Option<&'a mut Map<String, Value>> {
    let map = v.as_object_mut()?;
    let entry = map.entry(key.to_string()).or_insert_with(|| json!({}));
    if !entry.is_object() {
        *entry = json!({});
    }
    entry.as_object_mut()
}

fn default_key(map: &mut Map<String, Value>, key: &str, value: Value) {
    if map.get(key).is_none_or(Value::is_null) {
        map.insert(key.to_string(), value);
    }
}

fn deployment(v: &mut Value) {
    if let Some(spec) = obj_mut(v, "spec") {
        default_key(spec, "replicas", json!(1));
        default_key(spec, "revisionHistoryLimit", json!(10));
        default_key(spec, "progressDeadlineSeconds", json!(600));
        rolling_update(spec, "strategy", json!("25%"), json!("25%"));
    }
    if let Some(template) = v.pointer_mut("/spec/template") {
        pod_template(template);
    }
    if let Some(map) = v.as_object_mut() {
        map.entry("status").or_insert_with(|| json!({}));
    }
}

/// A Deployment's `strategy` or a DaemonSet's `updateStrategy`: type
/// RollingUpdate unless given, and then the two limits unless given.
fn rolling_update(
    spec: &mut Map<String, Value>,
    field: &str,
    max_unavailable: Value,
    max_surge: Value,
) {
    let strategy = spec.entry(field).or_insert_with(|| json!({}));
    if let Some(strategy) = strategy.as_object_mut() {
        default_key(strategy, "type", json!("RollingUpdate"));
        if strategy.get("type").and_then(Value::as_str) == Some("RollingUpdate") {
            let ru = strategy.entry("rollingUpdate").or_insert_with(|| json!({}));
            if let Some(ru) = ru.as_object_mut() {
                default_key(ru, "maxUnavailable", max_unavailable);
                default_key(ru, "maxSurge", max_surge);
            }
        }
    }
}

fn replica_set(v: &mut Value) {
    if let Some(spec) = obj_mut(v, "spec") {
        default_key(spec, "replicas", json!(1));
    }
    if let Some(template) = v.pointer_mut("/spec/template") {
        pod_template(template);
    }
    if let Some(map) = v.as_object_mut() {
        map.entry("status")
            .or_insert_with(|| json!({"replicas": 0}));
    }
}

/// statefulset-history.json's create response: OrderedReady, RollingUpdate
/// with partition 0 (also when a patch nulls it), history limit 10, and the
/// status a new StatefulSet shows (`availableReplicas` is not omitted).
fn stateful_set(v: &mut Value) {
    if let Some(spec) = obj_mut(v, "spec") {
        default_key(spec, "replicas", json!(1));
        default_key(spec, "podManagementPolicy", json!("OrderedReady"));
        default_key(spec, "revisionHistoryLimit", json!(10));
        let strategy = spec.entry("updateStrategy").or_insert_with(|| json!({}));
        if let Some(strategy) = strategy.as_object_mut() {
            if strategy.get("type").is_none_or(Value::is_null) {
                strategy.insert("type".into(), json!("RollingUpdate"));
                default_key(strategy, "rollingUpdate", json!({}));
            }
            if strategy.get("type").and_then(Value::as_str) == Some("RollingUpdate")
                && let Some(ru) = strategy
                    .get_mut("rollingUpdate")
                    .and_then(Value::as_object_mut)
            {
                default_key(ru, "partition", json!(0));
            }
        }
    }
    if let Some(template) = v.pointer_mut("/spec/template") {
        pod_template(template);
    }
    if let Some(status) = obj_mut(v, "status") {
        default_key(status, "replicas", json!(0));
        default_key(status, "availableReplicas", json!(0));
    }
}

/// daemonset-history.json's create response: RollingUpdate with
/// maxUnavailable 1 and maxSurge 0, history limit 10, and the four counts a
/// DaemonSet status always shows.
fn daemon_set(v: &mut Value) {
    if let Some(spec) = obj_mut(v, "spec") {
        default_key(spec, "revisionHistoryLimit", json!(10));
        rolling_update(spec, "updateStrategy", json!(1), json!(0));
    }
    if let Some(template) = v.pointer_mut("/spec/template") {
        pod_template(template);
    }
    if let Some(status) = obj_mut(v, "status") {
        for count in [
            "currentNumberScheduled",
            "numberMisscheduled",
            "desiredNumberScheduled",
            "numberReady",
        ] {
            default_key(status, count, json!(0));
        }
    }
}

/// The zero values a Node's status shows before any kubelet reported
/// (daemonset-history.json #0).
fn node(v: &mut Value) {
    obj_mut(v, "spec");
    if let Some(status) = obj_mut(v, "status") {
        default_key(
            status,
            "daemonEndpoints",
            json!({"kubeletEndpoint": {"Port": 0}}),
        );
        let info: Map<String, Value> = [
            "machineID",
            "systemUUID",
            "bootID",
            "kernelVersion",
            "osImage",
            "containerRuntimeVersion",
            "kubeletVersion",
            "kubeProxyVersion",
            "operatingSystem",
            "architecture",
        ]
        .into_iter()
        .map(|k| (k.to_string(), json!("")))
        .collect();
        default_key(status, "nodeInfo", Value::Object(info));
    }
}

/// Service defaults (statefulset-history.json #1): TCP ports targeting
/// themselves, a single-stack IPv4 ClusterIP service.
fn service(v: &mut Value) {
    if let Some(spec) = obj_mut(v, "spec") {
        if let Some(ports) = spec.get_mut("ports").and_then(Value::as_array_mut) {
            for p in ports.iter_mut().filter_map(Value::as_object_mut) {
                default_key(p, "protocol", json!("TCP"));
                let port = p.get("port").cloned().unwrap_or(Value::Null);
                default_key(p, "targetPort", port);
            }
        }
        default_key(spec, "type", json!("ClusterIP"));
        default_key(spec, "sessionAffinity", json!("None"));
        if let Some(ip) = spec.get("clusterIP").cloned().filter(|ip| !ip.is_null()) {
            default_key(spec, "clusterIPs", json!([ip]));
        }
        default_key(spec, "ipFamilies", json!(["IPv4"]));
        default_key(spec, "ipFamilyPolicy", json!("SingleStack"));
        default_key(spec, "internalTrafficPolicy", json!("Cluster"));
    }
    if let Some(status) = obj_mut(v, "status") {
        default_key(status, "loadBalancer", json!({}));
    }
}

/// Template defaults; `creationTimestamp: null` is what the real server shows
/// in a template's metadata.
fn pod_template(template: &mut Value) {
    if let Some(meta) = obj_mut(template, "metadata") {
        meta.insert("creationTimestamp".into(), Value::Null);
    }
    if let Some(spec) = template.get_mut("spec") {
        pod_spec(spec);
    }
}

pub(crate) fn pod_spec(spec: &mut Value) {
    let Some(map) = spec.as_object_mut() else {
        return;
    };
    for list in ["initContainers", "containers"] {
        if let Some(containers) = map.get_mut(list).and_then(Value::as_array_mut) {
            for c in containers {
                container(c);
            }
        }
    }
    default_key(map, "restartPolicy", json!("Always"));
    default_key(map, "terminationGracePeriodSeconds", json!(30));
    default_key(map, "dnsPolicy", json!("ClusterFirst"));
    default_key(map, "securityContext", json!({}));
    default_key(map, "schedulerName", json!("default-scheduler"));
}

fn container(c: &mut Value) {
    let Some(map) = c.as_object_mut() else { return };
    if let Some(ports) = map.get_mut("ports").and_then(Value::as_array_mut) {
        for p in ports {
            if let Some(p) = p.as_object_mut() {
                default_key(p, "protocol", json!("TCP"));
            }
        }
    }
    default_key(map, "resources", json!({}));
    default_key(map, "terminationMessagePath", json!("/dev/termination-log"));
    default_key(map, "terminationMessagePolicy", json!("File"));
    let image = map.get("image").and_then(Value::as_str).unwrap_or_default();
    let last = image.rsplit('/').next().unwrap_or_default();
    let pull = if image.contains('@') || (last.contains(':') && !last.ends_with(":latest")) {
        "IfNotPresent"
    } else {
        "Always"
    };
    default_key(map, "imagePullPolicy", json!(pull));
}

/// Pod defaults plus what admission adds on a real cluster (service-account
/// token volume, default tolerations, priority).
fn pod(v: &mut Value) {
    let name_suffix = crate::random_suffix(5);
    if let Some(spec) = v.get_mut("spec") {
        pod_spec(spec);
        let Some(map) = spec.as_object_mut() else {
            return;
        };
        default_key(map, "serviceAccountName", json!("default"));
        let sa = map
            .get("serviceAccountName")
            .cloned()
            .unwrap_or(json!("default"));
        default_key(map, "serviceAccount", sa);
        let has_token_volume = map
            .get("volumes")
            .and_then(Value::as_array)
            .is_some_and(|vs| {
                vs.iter().any(|v| {
                    v["name"]
                        .as_str()
                        .is_some_and(|n| n.starts_with("kube-api-access-"))
                })
            });
        if !has_token_volume {
            let vol_name = format!("kube-api-access-{name_suffix}");
            let volume = json!({"name": vol_name, "projected": {"sources": [
                {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}}
            ], "defaultMode": 420}});
            let vols = map.entry("volumes").or_insert_with(|| json!([]));
            if let Some(vols) = vols.as_array_mut() {
                vols.push(volume);
            }
            if let Some(containers) = map.get_mut("containers").and_then(Value::as_array_mut) {
                for c in containers {
                    if let Some(c) = c.as_object_mut() {
                        let mounts = c.entry("volumeMounts").or_insert_with(|| json!([]));
                        if let Some(mounts) = mounts.as_array_mut() {
                            mounts.push(json!({"name": vol_name, "readOnly": true, "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"}));
                        }
                    }
                }
            }
        }
        default_key(
            map,
            "tolerations",
            json!([
                {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
                {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}
            ]),
        );
        default_key(map, "priority", json!(0));
        default_key(map, "enableServiceLinks", json!(true));
        default_key(map, "preemptionPolicy", json!("PreemptLowerPriority"));
    }
    if let Some(status) = obj_mut(v, "status") {
        default_key(status, "phase", json!("Pending"));
        default_key(status, "qosClass", json!("BestEffort"));
        // A Go struct, never omitted: `lastState: {}` even when a status
        // writer leaves it out (the recorder's pods/status PATCH does).
        if let Some(statuses) = status
            .get_mut("containerStatuses")
            .and_then(Value::as_array_mut)
        {
            for c in statuses.iter_mut().filter_map(Value::as_object_mut) {
                default_key(c, "lastState", json!({}));
            }
        }
    }
}

fn event(v: &mut Value) {
    let Some(map) = v.as_object_mut() else { return };
    default_key(map, "eventTime", Value::Null);
    if !map.contains_key("eventTime") {
        map.insert("eventTime".into(), Value::Null);
    }
    if map.get("reportingComponent").is_none_or(Value::is_null) {
        map.insert("reportingComponent".into(), json!(""));
    }
    if map.get("reportingInstance").is_none_or(Value::is_null) {
        map.insert("reportingInstance".into(), json!(""));
    }
}

/// Namespace defaults: finalizer, phase and the `kubernetes.io/metadata.name` label.
pub(crate) fn namespace(mut v: Value) -> Value {
    let name = v
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    if let Some(meta) = obj_mut(&mut v, "metadata") {
        let labels = meta.entry("labels").or_insert_with(|| json!({}));
        if let Some(labels) = labels.as_object_mut() {
            labels.insert("kubernetes.io/metadata.name".into(), json!(name));
        }
    }
    if let Some(spec) = obj_mut(&mut v, "spec") {
        default_key(spec, "finalizers", json!(["kubernetes"]));
    }
    if let Some(status) = obj_mut(&mut v, "status") {
        default_key(status, "phase", json!("Active"));
    }
    v
}
